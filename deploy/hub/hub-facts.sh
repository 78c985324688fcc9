#!/usr/bin/env bash
# Checks, against this machine's real OpenSSH, every hub-side fact that
# deploy/hub/HUB.md relies on: which accounts sshd accepts for tunnel-only
# logins, how the authorized_keys options behave, and how fast a dead
# session's port comes free.
#
# Needs root (it adds and removes throwaway system users rthub-*) and runs
# an sshd on 127.0.0.1 only. Takes about 80 s.
#   deploy/hub/hub-facts.sh                 # ClientAlive timed at 2s x 3
#   RTUNNEL_HUB_FACTS_FULL=1 deploy/hub/hub-facts.sh   # also at 15s x 3 (+2 min)
# Prints one PASS/FAIL line per fact and "N passed, N failed"; exits 1 on a failure.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SNIPPET=$HERE/sshd_config.d/rtunnel-hub.conf
# Below the ephemeral range (32768+), where a busy machine's outgoing
# connections could already hold a port.
SSHD_PORT=${RTUNNEL_HUB_FACTS_PORT:-22022}
TARGET_PORT=$((SSHD_PORT + 1)) # the remote's "local" service
P=$((SSHD_PORT + 2))           # the tunnel port the hub listens on
P2=$((SSHD_PORT + 3))          # a port no key permits

[ "$(id -u)" = 0 ] || { echo "hub-facts: needs root (adds throwaway users)" >&2; exit 2; }
for t in sshd ssh ssh-keygen python3 adduser useradd userdel ss; do
	command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] ||
		{ echo "hub-facts: $t not installed" >&2; exit 2; }
done
SSHD=$(command -v sshd || echo /usr/sbin/sshd)
for port in "$SSHD_PORT" "$TARGET_PORT" "$P" "$P2"; do
	if ss -Htan exclude time-wait "sport = :$port" | grep -q .; then
		echo "hub-facts: port $port is in use; set RTUNNEL_HUB_FACTS_PORT to a free base port" >&2
		exit 2
	fi
done

W=$(mktemp -d /tmp/rtunnel-hub-facts.XXXXXX)
USERS=(rthub-nologin rthub-false rthub-missing rthub-useradd)
SSHD_PID='' TARGET_PID=''
CLIENTS=() # every background ssh, so none outlives the script (a live
# client keeps its sshd session, and with it its user, alive)
cleanup() {
	local p
	for p in "${CLIENTS[@]}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
	[ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null
	[ -n "$TARGET_PID" ] && kill "$TARGET_PID" 2>/dev/null
	sleep 1
	for u in "${USERS[@]}"; do userdel -r "$u" >/dev/null 2>&1; done
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0 failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); [ -s "$W/sshd.log" ] && sed 's/^/    sshd: /' "$W/sshd.log" | tail -5; }

ssh-keygen -q -t ed25519 -N '' -f "$W/hostkey"
ssh-keygen -q -t ed25519 -N '' -C rthub-client -f "$W/client"
echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 "$W/hostkey.pub")" >"$W/known_hosts"

# The remote's local service: greets every connection.
python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
while True:
    c, _ = s.accept(); c.sendall(b"hello-from-remote\n"); c.close()
' "$TARGET_PORT" &
TARGET_PID=$!

# mkuser NAME SHELL adduser|useradd: a system user the way an operator would make it.
mkuser() {
	userdel -r "$1" >/dev/null 2>&1
	if [ "$3" = adduser ]; then
		adduser --quiet --system --group --home "/var/lib/$1" --shell "$2" "$1" 2>/dev/null
	else
		useradd --system --user-group --create-home --home-dir "/var/lib/$1" --shell "$2" "$1" 2>/dev/null
	fi
	install -d -m 0700 -o "$1" -g "$1" "/var/lib/$1/.ssh"
}
# setkey USER OPTIONS: the client key with these options is the only authorized key.
setkey() {
	printf '%s %s\n' "$2" "$(cat "$W/client.pub")" >"/var/lib/$1/.ssh/authorized_keys"
	chown "$1:$1" "/var/lib/$1/.ssh/authorized_keys"
	chmod 0600 "/var/lib/$1/.ssh/authorized_keys"
}
key_line() { # permitlisten permitopen
	echo "restrict,port-forwarding,permitlisten=\"$1\",permitopen=\"$2\",command=\"/bin/false\""
}
# start_sshd [LogLevel] [extra lines...]: a fresh sshd with the hub snippet.
start_sshd() {
	local level=$1
	shift
	if [ -n "$SSHD_PID" ]; then kill "$SSHD_PID"; wait "$SSHD_PID" 2>/dev/null; fi
	{
		printf 'Port %s\nListenAddress 127.0.0.1\nHostKey %s/hostkey\nPidFile %s/sshd.pid\nLogLevel %s\n' \
			"$SSHD_PORT" "$W" "$W" "$level"
		printf '%s\n' "$@"
		echo "Include $SNIPPET"
	} >"$W/sshd_config"
	"$SSHD" -t -f "$W/sshd_config" || { echo "hub-facts: sshd -t failed" >&2; exit 1; }
	: >"$W/sshd.log"
	"$SSHD" -D -e -f "$W/sshd_config" 2>>"$W/sshd.log" &
	SSHD_PID=$!
	for _ in $(seq 50); do ss -ltn | grep -q "127.0.0.1:$SSHD_PORT " && return; sleep 0.1; done
	echo "hub-facts: sshd did not start" >&2
	exit 1
}
SSH=(ssh -F /dev/null -o BatchMode=yes -o UserKnownHostsFile="$W/known_hosts" -o StrictHostKeyChecking=yes
	-o IdentitiesOnly=yes -i "$W/client" -p "$SSHD_PORT" -o ExitOnForwardFailure=yes)

# tunnel USER RSPEC [PORT]: ssh -N -R RSPEC; sets GOT to what a connection to
# the hub's PORT read, and SSH_ERR to ssh's stderr. Returns 0 if it got through.
tunnel() {
	local port=${3:-$P} pid
	GOT=
	"${SSH[@]}" -o ServerAliveInterval=1 -N -R "$2" "$1@127.0.0.1" 2>"$W/ssh.err" &
	pid=$!
	CLIENTS+=("$pid")
	for _ in $(seq 25); do
		sleep 0.2
		kill -0 "$pid" 2>/dev/null || break
		GOT=$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && head -1 <&3" 2>/dev/null) && [ -n "$GOT" ] && break
	done
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	SSH_ERR=$(tr '\n' ' ' <"$W/ssh.err")
	[ "$GOT" = hello-from-remote ]
}
logged() { grep -q -- "$1" "$W/sshd.log"; }

GOOD=$(key_line "localhost:$P" 255.255.255.255:9)
R="localhost:$P:127.0.0.1:$TARGET_PORT"

echo "== the snippet =="
start_sshd VERBOSE "UsePAM yes"
effective=$("$SSHD" -T -f "$W/sshd_config")
if grep -qx 'clientaliveinterval 15' <<<"$effective" && grep -qx 'maxstartups 100:30:1000' <<<"$effective" &&
	grep -qx 'passwordauthentication no' <<<"$effective" && grep -qx 'unusedconnectiontimeout none' <<<"$effective"; then
	pass "rtunnel-hub.conf passes sshd -t and is in force (sshd -T)"
else fail "rtunnel-hub.conf not in force"; fi

echo "== accounts for tunnel-only logins (UsePAM yes, as Debian ships sshd) =="
for spec in "rthub-nologin /usr/sbin/nologin adduser" "rthub-false /bin/false adduser" \
	"rthub-useradd /usr/sbin/nologin useradd"; do
	read -r u sh how <<<"$spec"
	mkuser "$u" "$sh" "$how"
	setkey "$u" "$GOOD"
	pw=$(getent shadow "$u" | cut -d: -f2)
	if tunnel "$u" "$R"; then
		pass "$how --system, shell $sh (not in /etc/shells), password '$pw': ssh -N -R works"
	else fail "$how --system, shell $sh: ssh -N -R failed: $SSH_ERR"; fi
done
mkuser rthub-missing /nonexistent/shell adduser
setkey rthub-missing "$GOOD"
: >"$W/sshd.log"
if ! tunnel rthub-missing "$R" && logged "shell /nonexistent/shell does not exist"; then
	pass "a shell that does not exist is refused even with -N (\"not allowed because shell ... does not exist\")"
else fail "nonexistent shell was not refused as expected"; fi

: >"$W/sshd.log"
out=$("${SSH[@]}" rthub-nologin@127.0.0.1 id 2>&1)
st=$?
if [ "$st" = 1 ] && [ "$out" = "This account is currently not available." ]; then
	pass "without -N the forced command runs through the login shell: nologin answers, exit 1, no shell"
else fail "without -N: exit $st, output '$out'"; fi

echo "== UsePAM no =="
start_sshd VERBOSE "UsePAM no"
if ! tunnel rthub-nologin "$R" && logged "not allowed because account is locked"; then
	pass "UsePAM no: a '!' (locked) password makes sshd refuse the key login"
else fail "UsePAM no with '!' password was not refused"; fi
usermod -p '*' rthub-nologin
if tunnel rthub-nologin "$R"; then
	pass "UsePAM no: after usermod -p '*' (no password, not locked) ssh -N -R works"
else fail "UsePAM no with '*' password: $SSH_ERR"; fi

echo "== authorized_keys options =="
start_sshd VERBOSE "UsePAM yes"
# Ask for the wildcard address, with a key that permits it: GatewayPorts no
# still binds loopback only.
setkey rthub-nologin "$(key_line "*:$P" 255.255.255.255:9)"
"${SSH[@]}" -N -R "0.0.0.0:$P:127.0.0.1:$TARGET_PORT" rthub-nologin@127.0.0.1 2>/dev/null &
pid=$!
CLIENTS+=("$pid")
for _ in $(seq 25); do ss -ltn | grep -q ":$P " && break; sleep 0.2; done
listeners=$(ss -ltnH "sport = :$P" | awk '{print $4}' | sort | tr '\n' ' ')
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
setkey rthub-nologin "$GOOD"
if [[ $listeners == *"127.0.0.1:$P "* && $listeners != *0.0.0.0* && $listeners != *"[::]"* && $listeners != *"*:"* ]]; then
	pass "GatewayPorts no: even -R 0.0.0.0:$P listens on loopback only ($listeners)"
else fail "tunnel port listens on '$listeners'; want loopback only"; fi
if ! tunnel rthub-nologin "localhost:$P2:127.0.0.1:$TARGET_PORT" "$P2" &&
	[[ $SSH_ERR == *"remote port forwarding failed for listen port $P2"* ]]; then
	pass "a port other than permitlisten's is refused: \"remote port forwarding failed\""
else fail "other port not refused: $SSH_ERR"; fi
if ! tunnel rthub-nologin "127.0.0.1:$P:127.0.0.1:$TARGET_PORT"; then
	pass "permitlisten compares text: \"localhost:$P\" does not allow 127.0.0.1:$P"
else fail "127.0.0.1 matched permitlisten=localhost"; fi
for bad in none '""' localhost:0 '"none"' '"localhost:0"'; do
	setkey rthub-nologin "restrict,port-forwarding,permitlisten=$bad,permitopen=\"255.255.255.255:9\",command=\"/bin/false\""
	: >"$W/sshd.log"
	if ! tunnel rthub-nologin "$R" && [[ $SSH_ERR == *"Permission denied (publickey)"* ]] &&
		logged "Failed publickey" && ! logged "bad key options"; then
		pass "permitlisten=$bad rejects the whole key; LogLevel VERBOSE says only \"Failed publickey\""
	else fail "permitlisten=$bad: $SSH_ERR"; fi
done
setkey rthub-nologin "restrict,port-forwarding,permitlisten=\"none\",permitopen=\"255.255.255.255:9\",command=\"/bin/false\""
start_sshd DEBUG "UsePAM yes"
tunnel rthub-nologin "$R"
if logged "bad key options: invalid permission port"; then
	pass "only LogLevel DEBUG names the reason: \"bad key options: invalid permission port\""
else fail "DEBUG log has no 'bad key options'"; fi
start_sshd VERBOSE "UsePAM yes"
setkey rthub-nologin "restrict,permitlisten=\"localhost:$P\",permitopen=\"255.255.255.255:9\",command=\"/bin/false\""
if ! tunnel rthub-nologin "$R"; then
	pass "restrict + permitlisten without port-forwarding: every -R is refused"
else fail "forward allowed without port-forwarding"; fi
setkey rthub-nologin 'restrict,port-forwarding,permitopen="255.255.255.255:9",command="/bin/false"'
if tunnel rthub-nologin "localhost:$P2:127.0.0.1:$TARGET_PORT" "$P2"; then
	pass "trap: restrict,port-forwarding with permitopen only lets -R bind ANY port (name permitlisten too)"
else fail "permitopen-only key did not allow an arbitrary -R: $SSH_ERR"; fi
setkey rthub-nologin "$(key_line 255.255.255.255:9 "127.0.0.1:$TARGET_PORT")"
w_ok=$("${SSH[@]}" -W "127.0.0.1:$TARGET_PORT" rthub-nologin@127.0.0.1 </dev/null 2>/dev/null | head -1)
"${SSH[@]}" -W "127.0.0.1:$SSHD_PORT" rthub-nologin@127.0.0.1 </dev/null >"$W/w.out" 2>&1
if [ "$w_ok" = hello-from-remote ] && grep -q "administratively prohibited" "$W/w.out"; then
	pass "permitopen (ProxyJump / ssh -W) reaches the named address only"
else fail "permitopen: got '$w_ok', other: $(tr '\n' ' ' <"$W/w.out")"; fi
setkey rthub-nologin "$GOOD"

echo "== sessions that carry only -R forwards =="
start_sshd VERBOSE "UsePAM yes" "UnusedConnectionTimeout 3s"
"${SSH[@]}" -N -R "$R" rthub-nologin@127.0.0.1 2>/dev/null &
pid=$!
CLIENTS+=("$pid")
sleep 8
if ! kill -0 "$pid" 2>/dev/null && logged "terminating inactive connection"; then
	pass "UnusedConnectionTimeout 3s closes a session whose only use is a -R forward"
else fail "UnusedConnectionTimeout did not close the -R session"; kill "$pid" 2>/dev/null; fi
wait "$pid" 2>/dev/null

# clientalive INTERVAL POKE LIMIT: freeze a client that holds port P, then
# (if POKE > 0) connect to P every POKE seconds, as a master retrying
# `ssh -p P` or a scrape through the tunnel would. Sets CA_T to the seconds
# until sshd dropped the session and closed P, or -1 if P was still held
# after LIMIT seconds. Watches P's listener with ss, so that waiting adds no
# traffic of its own.
clientalive() {
	start_sshd VERBOSE "UsePAM yes" "ClientAliveInterval $1" "ClientAliveCountMax 3"
	local pid t0 now try held last=-1
	# The previous session may still be letting go of the port: retry until
	# this client really holds it, then freeze it.
	for try in $(seq 21); do
		[ "$try" = 21 ] && { echo "hub-facts: could not take port $P" >&2; exit 1; }
		"${SSH[@]}" -N -R "$R" rthub-nologin@127.0.0.1 2>/dev/null &
		pid=$!
		CLIENTS+=("$pid")
		held=no
		for _ in $(seq 30); do
			kill -0 "$pid" 2>/dev/null || break
			if [ "$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$P && head -1 <&3" 2>/dev/null)" = hello-from-remote ]; then
				held=yes
				break
			fi
			sleep 0.2
		done
		[ "$held" = yes ] && break
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		sleep 0.5
	done
	kill -STOP "$pid"
	t0=$(date +%s)
	CA_T=-1
	while :; do
		now=$(($(date +%s) - t0))
		if ! ss -Hltn "sport = :$P" | grep -q .; then
			CA_T=$now
			break
		fi
		[ "$now" -ge "$3" ] && break
		if [ "$2" -gt 0 ] && [ $((now % $2)) = 0 ] && [ "$now" != "$last" ]; then
			last=$now
			timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$P" 2>/dev/null
		fi
		sleep 0.2
	done
	kill -CONT "$pid"
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}
echo "== ClientAlive and a dead session's port =="
# OpenSSH 9.2 probes only when a poll times out with nothing to read and
# "now > last probe + interval" holds in whole seconds; the poll waits exactly
# the interval, so probes often come two intervals apart, and the 4th
# unanswered probe (count 3) ends the session: up to 2 x interval x 4.
runs="2"
[ "${RTUNNEL_HUB_FACTS_FULL:-0}" = 1 ] && runs="2 15"
for iv in $runs; do
	lo=$((iv * 3)) hi=$((iv * 2 * 4 + iv + 2))
	clientalive "$iv" 0 $((hi + 30))
	if [ "$CA_T" -ge "$lo" ] && [ "$CA_T" -le "$hi" ]; then
		pass "ClientAliveInterval $iv, CountMax 3: a frozen client's port is free after ${CA_T}s (window ${lo}-${hi}s; naive estimate $((iv * 3))s)"
	else fail "ClientAliveInterval $iv, CountMax 3: frozen client's port free after ${CA_T}s, outside ${lo}-${hi}s"; fi
done
# Connections to the dead session's port wake sshd's poll, so it never times
# out and never probes: the port stays held.
clientalive 2 1 40
if [ "$CA_T" = -1 ]; then
	pass "ClientAliveInterval 2: with a connection to the port every 1s, the frozen client's port is still held after 40s"
else fail "ClientAliveInterval 2 with a connection every 1s: port free after ${CA_T}s"; fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
