package tunnel

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestResolveAlgorithms(t *testing.T) {
	def := ssh.SupportedAlgorithms().Ciphers
	without := func(drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(def), func(s string) bool { return slices.Contains(drop, s) })
	}
	cases := []struct {
		spec string
		want []string
	}{
		{"aes128-ctr,aes256-ctr", []string{"aes128-ctr", "aes256-ctr"}},
		{"+aes128-cbc", append(slices.Clone(def), "aes128-cbc")},
		{"+aes128-ctr", def}, // already there: no duplicate
		{"-aes128-ctr", without("aes128-ctr")},
		{"-aes*-ctr", without("aes128-ctr", "aes192-ctr", "aes256-ctr")},
		{"^chacha20-poly1305@openssh.com", append([]string{"chacha20-poly1305@openssh.com"}, without("chacha20-poly1305@openssh.com")...)},
	}
	for _, c := range cases {
		got, err := ResolveAlgorithms(KindCiphers, c.spec)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ResolveAlgorithms(ciphers, %q) = %q, %v; want %q", c.spec, got, err, c.want)
		}
	}
	for _, c := range []struct {
		kind AlgorithmKind
		spec string
		want string
	}{
		{KindCiphers, "aes128-ctr,blowfish-cbc", `ciphers: "blowfish-cbc" is not supported; supported: ` + strings.Join(def, ",")},
		{KindMACs, "hmac-md5", `macs: "hmac-md5" is not supported`},
		{KindKexAlgorithms, "+", "empty name"},
		{KindHostKeyAlgorithms, "-*", "the list is empty"},
	} {
		if _, err := ResolveAlgorithms(c.kind, c.spec); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ResolveAlgorithms(%s, %q) = %v, want an error containing %q", c.kind, c.spec, err, c.want)
		}
	}
}

// A host_key_algorithms list narrows what known_hosts offers, in the
// user's order, and never widens it to a type known_hosts lacks.
func TestHostKeyAlgorithmsNarrow(t *testing.T) {
	kh := []string{ssh.KeyAlgoED25519, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	if got := hostKeyAlgorithms(kh, []string{ssh.KeyAlgoRSASHA256, ssh.KeyAlgoECDSA256, ssh.KeyAlgoED25519}); !slices.Equal(got, []string{ssh.KeyAlgoRSASHA256, ssh.KeyAlgoED25519}) {
		t.Errorf("narrowed to %q", got)
	}
	if got := hostKeyAlgorithms(kh, nil); !slices.Equal(got, kh) {
		t.Errorf("no list: %q, want known_hosts' %q", got, kh)
	}
}
