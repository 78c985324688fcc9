#!/usr/bin/env bash
# Installs what rtunnel's tests, demo and bench need on Debian/Ubuntu, only
# when missing. Run as root (CI and the README's fresh machine are root).
set -euo pipefail

want=()
need() { # need BINARY PACKAGE
	if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$1" ] && [ ! -x "/sbin/$1" ]; then
		want+=("$2")
	fi
}
need sshd openssh-server
need ssh openssh-client
need ssh-keygen openssh-client
need ip iproute2
need ss iproute2
need nft nftables
need pgrep procps
need git git
need ping iputils-ping
if [ "${1:-}" = "--bench" ] || [ "${1:-}" = "--test" ] || [ "${1:-}" = "--fleet" ]; then
	need autossh autossh
fi
if [ "${1:-}" = "--test" ] || [ "${1:-}" = "--fleet" ]; then
	# fleet/: a login user for the hub, and the hub-side fleet view.
	need useradd passwd
	need prometheus prometheus
	need prometheus-blackbox-exporter prometheus-blackbox-exporter
fi
if [ "${1:-}" = "--test" ]; then
	# deploy/check.sh: alert rules, unit files, shell scripts.
	need promtool prometheus
	need shellcheck shellcheck
	need systemd-analyze systemd
	need dpkg-deb dpkg
	need runuser util-linux
fi

if [ "${1:-}" = "--systemd" ]; then
	# make systemd-test: a container booted from a debootstrap root.
	need systemd-nspawn systemd-container
	need debootstrap debootstrap
	need nsenter util-linux
	need dpkg-deb dpkg
fi

if [ "${1:-}" = "--release" ]; then
	# make release-test: foreign binaries under emulation, rpm metadata.
	need qemu-aarch64-static qemu-user-static
	need qemu-arm-static qemu-user-static
	need qemu-mipsel-static qemu-user-static
	need rpm rpm
	need rpm2cpio rpm
	need cpio cpio
	need dpkg-deb dpkg
fi

if [ ${#want[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing ${want[*]}; run as root or install them: apt-get install ${want[*]}" >&2
	exit 1
fi
# Unique package names.
mapfile -t pkgs < <(printf '%s\n' "${want[@]}" | sort -u)
echo "install-deps: installing ${pkgs[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
# The Debian package starts sshd where systemd runs; rtunnel's tests start their own.
mkdir -p /run/sshd
