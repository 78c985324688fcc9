#!/usr/bin/env bash
# make demo: the Direct topology of the setup guide on one machine.
#   hub    = a throwaway OpenSSH sshd on 127.0.0.1 (the guide's "master"),
#            with the guide's locked-down authorized_keys line for the tunnel key;
#   remote = a second throwaway sshd standing for the remote's own sshd;
#   rtunnel dials the hub and forwards localhost:TUNNEL_PORT on it to the
#   remote's sshd; then real `ssh -p TUNNEL_PORT root@localhost` logs in
#   through the tunnel. Everything is removed afterwards.
set -euo pipefail
rtunnel=$(realpath "${1:-bin/rtunnel}")
[ -x "$rtunnel" ] || { echo "demo: build rtunnel first (make build)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "demo: run as root (the throwaway sshd needs it)" >&2; exit 1; }

dir=$(mktemp -d /tmp/rtunnel-demo.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT

# Ports come from below the kernel's ephemeral range, so that no outgoing
# connection can take one between this check and sshd's bind (a listener
# cannot bind a port an established connection is using), and away from the
# guide's 22xx.
ephemeral_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
port_lo=10000 port_hi=$((ephemeral_low - 1))
if [ "$port_hi" -le $((port_lo + 1000)) ]; then port_lo=20000 port_hi=39999; fi
free_port() { # a port no socket uses, in any state
	local p
	for _ in $(seq 1 50); do
		p=$((port_lo + (RANDOM * 32768 + RANDOM) % (port_hi - port_lo + 1)))
		if ! ss -Htan "sport = :$p" | grep -q .; then echo "$p"; return; fi
	done
	echo "demo: no free port found" >&2; exit 1
}
hub_port=$(free_port); remote_port=$(free_port); tunnel_port=$(free_port)
mkdir -p /run/sshd

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. keys: the remote's tunnel key, and the master's login key"
ssh-keygen -q -t ed25519 -N '' -C remote-tunnel -f "$dir/id_tunnel"
ssh-keygen -q -t ed25519 -N '' -C master-login -f "$dir/id_master"
echo "tunnel key: $(ssh-keygen -lf "$dir/id_tunnel.pub")"

start_sshd() { # name port authorized_keys_content
	local name=$1 port=$2
	mkdir -p "$dir/$name"
	ssh-keygen -q -t ed25519 -N '' -f "$dir/$name/host_key"
	printf '%s\n' "$3" >"$dir/$name/authorized_keys"
	cat >"$dir/$name/sshd_config" <<CFG
Port $port
ListenAddress 127.0.0.1
HostKey $dir/$name/host_key
PidFile $dir/$name/sshd.pid
AuthorizedKeysFile $dir/$name/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
GatewayPorts no
AllowTcpForwarding yes
ClientAliveInterval 15
ClientAliveCountMax 3
LogLevel VERBOSE
CFG
	/usr/sbin/sshd -D -e -f "$dir/$name/sshd_config" 2>"$dir/$name/sshd.log" &
	pids+=($!)
	for _ in $(seq 1 50); do
		ss -Htln "sport = :$port" | grep -q . && return
		sleep 0.1
	done
	echo "demo: $name sshd did not start:" >&2; cat "$dir/$name/sshd.log" >&2; exit 1
}

line="restrict,port-forwarding,permitlisten=\"localhost:$tunnel_port\",permitopen=\"255.255.255.255:9\",command=\"/bin/false\" $(cat "$dir/id_tunnel.pub")"
say "2. hub sshd on 127.0.0.1:$hub_port with the guide's locked-down key line"
echo "$line"
start_sshd hub "$hub_port" "$line"
say "3. the remote's own sshd on 127.0.0.1:$remote_port (accepts the master's key)"
start_sshd remote "$remote_port" "$(cat "$dir/id_master.pub")"

echo "[127.0.0.1]:$hub_port $(cut -d' ' -f1,2 "$dir/hub/host_key.pub")" >"$dir/known_hosts"
cat >"$dir/rtunnel.yaml" <<CFG
log: {level: info, format: text}
tunnels:
  - name: demo
    server: root@127.0.0.1:$hub_port
    identity: $dir/id_tunnel
    known_hosts: $dir/known_hosts
    forwards:
      - remote: localhost:$tunnel_port
        local: 127.0.0.1:$remote_port
    keepalive: {interval: 5s, count_max: 3}
CFG
say "4. rtunnel check, then rtunnel up"
"$rtunnel" check --config "$dir/rtunnel.yaml"
# Under systemd the unit's RuntimeDirectory= gives the control socket a home;
# by hand, the demo's own directory does.
mkdir -m 0750 "$dir/run"
RUNTIME_DIRECTORY="$dir/run" "$rtunnel" up --config "$dir/rtunnel.yaml" 2>"$dir/rtunnel.log" &
rt=$!
pids+=("$rt")
for _ in $(seq 1 100); do
	grep -q 'forward up' "$dir/rtunnel.log" && break
	kill -0 $rt 2>/dev/null || break
	sleep 0.1
done
cat "$dir/rtunnel.log"
grep -q 'forward up' "$dir/rtunnel.log" || { echo "demo: the tunnel did not come up" >&2; exit 1; }

say "5. master: ssh -p $tunnel_port root@localhost  (through the tunnel to the remote's sshd)"
echo "[localhost]:$tunnel_port $(cut -d' ' -f1,2 "$dir/remote/host_key.pub")" >"$dir/master_known_hosts"
out=$(ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i "$dir/id_master" \
	-o UserKnownHostsFile="$dir/master_known_hosts" -o StrictHostKeyChecking=yes \
	-p "$tunnel_port" root@localhost \
	'echo "hello from $(hostname), sshd pid $PPID, connection $SSH_CONNECTION"')
echo "$out"
echo "remote sshd saw: $(grep -m1 'Accepted publickey' "$dir/remote/sshd.log" || true)"
echo "rtunnel status (through its control socket):"
"$rtunnel" status --socket "$dir/run/control.sock"

say "6. SIGTERM rtunnel: it cancels the forward and exits 0"
kill -TERM $rt
status=0; wait $rt || status=$?
tail -n 2 "$dir/rtunnel.log"
echo "rtunnel exit status: $status"
if ss -Htln "sport = :$tunnel_port" | grep -q .; then
	echo "demo: port $tunnel_port is still held on the hub" >&2; exit 1
fi
echo "hub port $tunnel_port released"
[ "$status" = 0 ] && [[ "$out" == hello* ]] || exit 1
say "demo ok: logged in through rtunnel with real ssh"
