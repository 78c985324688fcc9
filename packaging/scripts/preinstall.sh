#!/bin/sh
# rtunnel preinstall (deb preinst / rpm %pre): create the rtunnel system user
# before unpacking, so /etc/rtunnel and its config are unpacked with group
# rtunnel instead of falling back to root. postinstall.sh repeats this.
set -eu

if getent passwd rtunnel >/dev/null 2>&1; then
	exit 0
fi
# The package's sysusers.d file is not unpacked yet, so the same line is
# given inline; keep it equal to packaging/sysusers.d/rtunnel.conf.
if command -v systemd-sysusers >/dev/null 2>&1 &&
	systemd-sysusers --inline 'u rtunnel - "rtunnel reverse SSH tunnel" /var/lib/rtunnel /usr/sbin/nologin'; then
	exit 0
fi
nologin=/usr/sbin/nologin
[ -x "$nologin" ] || nologin=/sbin/nologin
useradd --system --user-group --no-create-home \
	--home-dir /var/lib/rtunnel --shell "$nologin" \
	--comment 'rtunnel reverse SSH tunnel' rtunnel
