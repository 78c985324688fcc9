package sshconfig

import (
	"strconv"
	"strings"
)

// ignored are OpenSSH client keywords with no bearing on a tunnel rtunnel
// makes: interactive use, X11, multiplexing, logging, authentication
// methods rtunnel does not offer, and deprecated ones ssh itself ignores.
var ignored = map[string]bool{
	"addkeystoagent": true, "batchmode": true, "canonicaldomains": true, "canonicalizefallbacklocal": true,
	"canonicalizemaxdots": true, "canonicalizepermittedcnames": true, "casignaturealgorithms": true,
	"challengeresponseauthentication": true, "channeltimeout": true, "checkhostip": true, "compression": true,
	"connectionattempts": true, "controlmaster": true, "controlpath": true, "controlpersist": true,
	"enableescapecommandline": true, "enablesshkeysign": true, "escapechar": true, "fingerprinthash": true,
	"forkafterauthentication": true, "forwardagent": true, "forwardx11": true, "forwardx11timeout": true,
	"forwardx11trusted": true, "gatewayports": true, "hostbasedacceptedalgorithms": true,
	"hostbasedauthentication": true, "hostbasedkeytypes": true, "ipqos": true, "kbdinteractiveauthentication": true,
	"kbdinteractivedevices": true, "localcommand": true, "loglevel": true, "logverbose": true,
	"nohostauthenticationforlocalhost": true, "numberofpasswordprompts": true, "obscurekeystroketiming": true,
	"passwordauthentication": true, "permitlocalcommand": true, "permitremoteopen": true,
	"preferredauthentications": true, "pubkeyacceptedalgorithms": true, "pubkeyacceptedkeytypes": true,
	"rekeylimit": true, "remotecommand": true, "requesttty": true, "requiredrsasize": true, "securitykeyprovider": true,
	"sendenv": true, "sessiontype": true, "setenv": true, "stdinnull": true, "streamlocalbindmask": true,
	"streamlocalbindunlink": true, "syslogfacility": true, "tag": true, "tcpkeepalive": true, "tunneldevice": true,
	"updatehostkeys": true, "verifyhostkeydns": true, "visualhostkey": true, "xauthlocation": true,
	"usekeychain": true, "protocol": true, "cipher": true, "useroaming": true, "rsaauthentication": true,
	"rhostsrsaauthentication": true, "compressionlevel": true, "fallbacktorsh": true, "usersh": true,
	"useprivilegedport": true, "usersakeys": true, "gssapiauthentication": true, "gssapidelegatecredentials": true,
	"gssapikeyexchange": true, "gssapiclientidentity": true, "gssapiserveridentity": true, "gssapitrustdns": true,
	"gssapirenewalforcesrekey": true, "gssapikexalgorithms": true, "identityfile2": true,
}

// refused are keywords that change how the connection is made; each is
// refused only with a value that does something (not "no" or "none").
var refused = map[string]struct{ neutral, why string }{
	"knownhostscommand":    {"none", "it runs a command to list host keys; rtunnel reads known_hosts files only"},
	"canonicalizehostname": {"no", "it rewrites the host name through DNS search domains; write the full name in HostName"},
	"bindaddress":          {"", "rtunnel does not choose the source address of its connection"},
	"bindinterface":        {"", "rtunnel does not choose the source interface of its connection"},
	"addressfamily":        {"any", "rtunnel dials the addresses the name resolves to; write an address literal in HostName to pick one family"},
	"tunnel":               {"no", "rtunnel does not forward tun/tap devices"},
	"pkcs11provider":       {"none", "rtunnel reads keys from files (certificates and agents are separate issues)"},
	"revokedhostkeys":      {"none", "rtunnel has no revoked-host-keys file; mark the key @revoked in known_hosts instead"},
	"pubkeyauthentication": {"yes", "public keys are the only way rtunnel logs in"},
	"proxyusefdpass":       {"no", "it goes with ProxyCommand, which rtunnel does not run"},
	"dynamicforward":       {"", "rtunnel has no SOCKS proxy"},
}

// other handles every keyword without a meaning of its own in Host.
func (r *resolver) other(kw string, args []string, src Source, active bool) error {
	if ignored[kw] {
		return nil
	}
	if ref, ok := refused[kw]; ok {
		if !active || ref.neutral != "" && strings.EqualFold(strings.Join(args, " "), ref.neutral) ||
			kw == "pubkeyauthentication" && strings.EqualFold(args[0], "true") ||
			kw == "canonicalizehostname" && strings.EqualFold(args[0], "false") ||
			kw == "tunnel" && strings.EqualFold(args[0], "false") {
			return nil
		}
		return r.unsupported(src, canonicalName(kw), ref.why)
	}
	if r.ignoreUnknown != "" && matchList(kw, r.ignoreUnknown, true) {
		return nil
	}
	return &Error{File: src.File, Line: src.Line, Msg: "unknown keyword " + strconv.Quote(kw) + " (ssh refuses it too; list it in IgnoreUnknown if another ssh version knows it)"}
}

// canonicalName spells a refused keyword as the manual does.
func canonicalName(kw string) string {
	names := map[string]string{"knownhostscommand": "KnownHostsCommand", "canonicalizehostname": "CanonicalizeHostname",
		"bindaddress": "BindAddress", "bindinterface": "BindInterface", "addressfamily": "AddressFamily", "tunnel": "Tunnel",
		"pkcs11provider": "PKCS11Provider", "revokedhostkeys": "RevokedHostKeys", "pubkeyauthentication": "PubkeyAuthentication",
		"proxyusefdpass": "ProxyUseFdpass", "dynamicforward": "DynamicForward"}
	return names[kw]
}
