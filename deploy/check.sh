#!/usr/bin/env bash
# Static checks of everything under packaging/ and deploy/, with the real
# tools: systemd-analyze, systemd-sysusers/-tmpfiles, promtool, sshd, python3
# and ShellCheck. A missing tool is skipped ("skip: X not installed") unless
# RTUNNEL_REQUIRE_SSHD=1 (as in CI), which makes it a failure.
# RTUNNEL_HUB_FACTS=1 also runs deploy/hub/hub-facts.sh (root; adds throwaway
# users and starts sshd on 127.0.0.1).
#
# Ends with "N passed, N failed, N skipped"; exits 1 if anything failed.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
REQUIRE=${RTUNNEL_REQUIRE_SSHD:-0}
W=$(mktemp -d /tmp/rtunnel-check.XXXXXX)
trap 'rm -rf "$W"' EXIT

passed=0 failed=0 skipped=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
# have TOOL PACKAGE: is TOOL installed? If not, skip or fail per REQUIRE.
have() {
	command -v "$1" >/dev/null 2>&1 && return 0
	if [ "$REQUIRE" = 1 ]; then
		bad "$1 not installed (apt-get install $2)"
	else
		echo "skip: $1 not installed (apt-get install $2)"
		skipped=$((skipped + 1))
	fi
	return 1
}
# show FILE: indented output of a failed check.
show() { sed 's/^/    /' "$1"; }

# Every metric named in rules and dashboard must be one rtunnel exports.
METRICS="rtunnel_tunnel_up rtunnel_forward_up rtunnel_connect_attempts_total
rtunnel_connected_since_seconds rtunnel_reconnects_total rtunnel_backoff_seconds
rtunnel_keepalive_rtt_seconds rtunnel_keepalive_missed_total rtunnel_forward_refused_total
rtunnel_connections_total rtunnel_connections_active rtunnel_connections_rejected_total
rtunnel_bytes_total rtunnel_build_info"

UNITS=(packaging/systemd/rtunnel.service packaging/systemd/rtunnel@.service)

# --- systemd units ---------------------------------------------------------
if have systemd-analyze systemd; then
	# A throwaway root: the distribution's units, our two, and a stand-in
	# /usr/bin/rtunnel, so verify neither needs the real binary nor touches /.
	R=$W/root
	mkdir -p "$R/usr/bin" "$R/etc/systemd/system" "$R/usr/lib/systemd"
	sysunits=/usr/lib/systemd/system
	[ -d $sysunits ] || sysunits=/lib/systemd/system
	cp -a "$sysunits" "$R/usr/lib/systemd/"
	printf '#!/bin/sh\nexit 0\n' >"$R/usr/bin/rtunnel"
	chmod 0755 "$R/usr/bin/rtunnel"
	cp "${UNITS[@]}" "$R/etc/systemd/system/"
	# verify exits 0 on unknown keys and bad values, but prints them: any
	# output is a failure.
	if systemd-analyze --root="$R" verify rtunnel.service rtunnel@check.service >"$W/verify" 2>&1 &&
		[ ! -s "$W/verify" ]; then
		ok "systemd-analyze verify rtunnel.service rtunnel@.service"
	else
		bad "systemd-analyze verify"
		show "$W/verify"
	fi
	for u in "${UNITS[@]}"; do
		for want in Type=notify WatchdogSec=30 Restart=always RestartPreventExitStatus=78 \
			StartLimitIntervalSec=0 User=rtunnel ProtectSystem=strict CapabilityBoundingSet=; do
			grep -qx "$want" "$u" || bad "$u lacks $want"
		done
	done
	grep -q '^ExecStart=/usr/bin/rtunnel up --config /etc/rtunnel/%i.yaml$' packaging/systemd/rtunnel@.service ||
		bad "rtunnel@.service does not run /etc/rtunnel/%i.yaml"
fi

# --- sysusers.d and tmpfiles.d, applied to an empty root -------------------
if have systemd-sysusers systemd && have systemd-tmpfiles systemd; then
	R=$W/usersroot
	mkdir -p "$R/etc"
	echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
	echo 'root:x:0:' >"$R/etc/group"
	if systemd-sysusers --root="$R" "$PWD/packaging/sysusers.d/rtunnel.conf" >"$W/sysusers" 2>&1 &&
		systemd-tmpfiles --root="$R" --create "$PWD/packaging/tmpfiles.d/rtunnel.conf" >>"$W/sysusers" 2>&1; then
		uid=$(awk -F: '$1 == "rtunnel" {print $3}' "$R/etc/passwd")
		gid=$(awk -F: '$1 == "rtunnel" {print $3}' "$R/etc/group")
		shell=$(awk -F: '$1 == "rtunnel" {print $7}' "$R/etc/passwd")
		home=$(awk -F: '$1 == "rtunnel" {print $6}' "$R/etc/passwd")
		got="$(stat -c '%a %u:%g' "$R/etc/rtunnel") $(stat -c '%a %u:%g' "$R/var/lib/rtunnel") $home $shell"
		want="750 0:$gid 700 $uid:$gid /var/lib/rtunnel /usr/sbin/nologin"
		if [ -n "$uid" ] && [ "$got" = "$want" ]; then
			ok "sysusers.d + tmpfiles.d: user rtunnel, /etc/rtunnel 0750 root:rtunnel, /var/lib/rtunnel 0700"
		else
			bad "sysusers.d/tmpfiles.d gave '$got', want '$want'"
		fi
	else
		bad "systemd-sysusers/systemd-tmpfiles"
		show "$W/sysusers"
	fi
fi

# --- Prometheus rules -------------------------------------------------------
if have promtool prometheus; then
	if promtool check rules deploy/prometheus/rtunnel.rules.yml >"$W/rules" 2>&1; then
		ok "promtool check rules deploy/prometheus/rtunnel.rules.yml"
	else
		bad "promtool check rules"
		show "$W/rules"
	fi
	# The hub's fleet config, with its rule file taken from here.
	sed "s|/etc/prometheus/rtunnel.rules.yml|$PWD/deploy/prometheus/rtunnel.rules.yml|" \
		deploy/prometheus/fleet.prometheus.yml >"$W/fleet.yml"
	if promtool check config "$W/fleet.yml" >"$W/fleetcfg" 2>&1; then
		ok "promtool check config deploy/prometheus/fleet.prometheus.yml"
	else
		bad "promtool check config deploy/prometheus/fleet.prometheus.yml"
		show "$W/fleetcfg"
	fi
	if promtool test rules deploy/prometheus/rtunnel.rules.test.yml >"$W/rtest" 2>&1; then
		ok "promtool test rules deploy/prometheus/rtunnel.rules.test.yml"
	else
		bad "promtool test rules"
		show "$W/rtest"
	fi
fi

# --- Grafana dashboard ------------------------------------------------------
if have python3 python3; then
	if python3 -m json.tool deploy/grafana/rtunnel.json >/dev/null 2>"$W/json"; then
		ok "deploy/grafana/rtunnel.json is valid JSON"
	else
		bad "deploy/grafana/rtunnel.json"
		show "$W/json"
	fi
	# Its queries, with Grafana's variables filled in, as a rules file that
	# promtool can parse.
	if python3 - deploy/grafana/rtunnel.json >"$W/dash.rules.yml" 2>"$W/dash.err" <<'EOF'; then
import json, sys
d = json.load(open(sys.argv[1]))
assert d["__inputs"][0]["name"] == "DS_PROMETHEUS", "datasource input must be DS_PROMETHEUS"
print("groups:\n  - name: dashboard\n    rules:")
n = 0
for p in d["panels"]:
    assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
    for t in p["targets"]:
        e = t["expr"].replace("$__rate_interval", "5m").replace("$instance", ".*").replace("$tunnel", ".*")
        n += 1
        print(f"      - record: dashboard:query{n}\n        expr: {json.dumps(e)}")
EOF
		if have promtool prometheus; then
			if promtool check rules "$W/dash.rules.yml" >"$W/dash" 2>&1; then
				ok "every dashboard query parses (promtool)"
			else
				bad "dashboard queries"
				show "$W/dash"
			fi
		fi
	else
		bad "dashboard structure"
		show "$W/dash.err"
	fi
fi

# --- metric names -----------------------------------------------------------
unknown=$(grep -ohE 'rtunnel_[a-z_]+' deploy/prometheus/rtunnel.rules.yml deploy/prometheus/rtunnel.rules.test.yml deploy/grafana/rtunnel.json |
	sed -E 's/_(bucket|sum|count)$//' | sort -u | while read -r m; do
		grep -qw "$m" <<<"$METRICS" || echo "$m"
	done)
if [ -z "$unknown" ]; then
	ok "rules and dashboard use only metrics rtunnel exports"
else
	bad "unknown metrics: $(echo "$unknown" | tr '\n' ' ')"
fi

# --- hub sshd snippet -------------------------------------------------------
SSHD=$(command -v sshd || { [ -x /usr/sbin/sshd ] && echo /usr/sbin/sshd; })
if [ -n "$SSHD" ] || have sshd openssh-server; then
	ssh-keygen -q -t ed25519 -N '' -f "$W/hostkey"
	printf 'HostKey %s/hostkey\nInclude %s/deploy/hub/sshd_config.d/rtunnel-hub.conf\n' "$W" "$PWD" >"$W/sshd_config"
	if "$SSHD" -t -f "$W/sshd_config" >"$W/sshd" 2>&1; then
		ok "sshd -t with deploy/hub/sshd_config.d/rtunnel-hub.conf ($("$SSHD" -V 2>&1 | cut -d, -f1))"
	else
		bad "sshd -t rejects rtunnel-hub.conf"
		show "$W/sshd"
	fi
fi

# --- example config ---------------------------------------------------------
if have python3 python3; then
	if python3 -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' packaging/rtunnel.example.yaml 2>"$W/yaml"; then
		ok "packaging/rtunnel.example.yaml is valid YAML"
	elif grep -q "No module named 'yaml'" "$W/yaml"; then
		echo "skip: python3 yaml module not installed (apt-get install python3-yaml)"
		skipped=$((skipped + 1))
	else
		bad "packaging/rtunnel.example.yaml"
		show "$W/yaml"
	fi
fi
if [ -x bin/rtunnel ] || [ -x dist/rtunnel ]; then
	bin=bin/rtunnel
	[ -x $bin ] || bin=dist/rtunnel
	# Key files do not exist here: accept exactly those complaints.
	$bin check --config packaging/rtunnel.example.yaml >"$W/rcheck" 2>&1
	if ! grep -v -e 'identity /etc/rtunnel/id_ed25519' -e 'known_hosts /etc/rtunnel/known_hosts' \
		-e 'problem(s) in' "$W/rcheck" | grep -q .; then
		ok "$bin check accepts packaging/rtunnel.example.yaml (apart from the absent key files)"
	else
		bad "$bin check packaging/rtunnel.example.yaml"
		show "$W/rcheck"
	fi
fi

# --- shell scripts ----------------------------------------------------------
if command -v shellcheck >/dev/null 2>&1; then
	if shellcheck -s sh packaging/scripts/*.sh packaging/package.sh >"$W/sc" 2>&1 &&
		shellcheck deploy/check.sh deploy/hub/hub-facts.sh >>"$W/sc" 2>&1; then
		ok "shellcheck packaging/ and deploy/ scripts"
	else
		bad "shellcheck"
		show "$W/sc"
	fi
else
	echo "skip: shellcheck not installed (apt-get install shellcheck)"
	skipped=$((skipped + 1))
fi

# --- hub facts against a real sshd (opt-in) -------------------------------
if [ "${RTUNNEL_HUB_FACTS:-0}" = 1 ]; then
	if deploy/hub/hub-facts.sh >"$W/facts" 2>&1; then
		ok "deploy/hub/hub-facts.sh: $(tail -1 "$W/facts")"
	else
		bad "deploy/hub/hub-facts.sh"
		grep -E '^FAIL|passed' "$W/facts" | sed 's/^/    /'
	fi
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
