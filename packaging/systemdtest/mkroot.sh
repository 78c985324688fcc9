#!/usr/bin/env bash
# Builds (once) the Debian 12 root that the systemd test boots with
# systemd-nspawn, and prints its path. The root is cached under
# $RTUNNEL_SYSTEMD_CACHE (default /var/cache/rtunnel), in a directory named
# after a hash of everything that goes into it, so a changed package list
# builds a new root instead of reusing a stale one. Run as root.
set -euo pipefail

cache=${RTUNNEL_SYSTEMD_CACHE:-/var/cache/rtunnel}
suite=bookworm
# The mirror apt already uses on this machine, else Debian's CDN.
mirror=${RTUNNEL_DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)}
mirror=${mirror:-http://deb.debian.org/debian}
# systemd as PID 1 (systemd-sysv gives /sbin/init), a hub and a target sshd,
# the ssh client that goes through the tunnel, nft to hold the hub silent.
packages=systemd,systemd-sysv,dbus,openssh-server,openssh-client,iproute2,procps,nftables
# Bump when the customisation below changes.
recipe=1

key=$(printf '%s\n' "$suite" "$mirror" "$packages" "$recipe" | sha256sum | cut -c1-12)
root=$cache/systemd-root-$key
if [ -x "$root/usr/lib/systemd/systemd" ] && [ -e "$root/.rtunnel-root-complete" ]; then
	echo "$root"
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	echo "mkroot: building $root needs root (debootstrap)" >&2
	exit 1
fi
if ! command -v debootstrap >/dev/null || ! command -v systemd-nspawn >/dev/null; then
	echo "mkroot: debootstrap or systemd-nspawn missing: run scripts/install-deps.sh --systemd" >&2
	exit 1
fi

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.systemd-root-$key.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "mkroot: debootstrap $suite from $mirror into $root (a few minutes, once)" >&2
debootstrap --variant=minbase --include="$packages" "$suite" "$tmp" "$mirror" >"$tmp.log" 2>&1 || {
	tail -30 "$tmp.log" >&2
	echo "mkroot: debootstrap failed; full log: $tmp.log" >&2
	exit 1
}
rm -f "$tmp.log"

# The test starts its own sshds as units of its own; the distribution's
# would take port 22 and its host-key generation slows the boot. Gettys
# have no terminal to serve in a container without a console.
for unit in ssh.service ssh.socket console-getty.service getty@tty1.service \
	systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
	e2scrub_all.timer fstrim.timer; do
	ln -sf /dev/null "$tmp/etc/systemd/system/$unit"
done
# sshd refuses to start without its privilege separation directory.
echo 'd /run/sshd 0755 root root -' >"$tmp/usr/lib/tmpfiles.d/rtunnel-test-sshd.conf"
echo rtunnel-systemd-test >"$tmp/etc/hostname"
touch "$tmp/.rtunnel-root-complete"

rm -rf "$root"
mv "$tmp" "$root"
trap - EXIT
echo "$root"
