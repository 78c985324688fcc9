#!/bin/sh
# rtunnel postinstall (deb postinst / rpm %post). Safe without a running
# systemd (containers, chroots): it never starts or restarts the service,
# because on a machine reached through its own tunnel a restart in the middle
# of `apt upgrade` would cut the operator's session and with it the upgrade.
set -eu

# 1. The rtunnel system user (normally made by preinstall.sh already).
if ! getent passwd rtunnel >/dev/null 2>&1; then
	if command -v systemd-sysusers >/dev/null 2>&1 &&
		[ -f /usr/lib/sysusers.d/rtunnel.conf ] &&
		systemd-sysusers /usr/lib/sysusers.d/rtunnel.conf; then
		:
	else
		nologin=/usr/sbin/nologin
		[ -x "$nologin" ] || nologin=/sbin/nologin
		useradd --system --user-group --no-create-home \
			--home-dir /var/lib/rtunnel --shell "$nologin" \
			--comment 'rtunnel reverse SSH tunnel' rtunnel
	fi
fi

# 2. Directories: /etc/rtunnel readable by the rtunnel group only, state dir
# private to rtunnel (tmpfiles.d/rtunnel.conf says the same for boot).
mkdir -p /etc/rtunnel /var/lib/rtunnel
chown root:rtunnel /etc/rtunnel
chmod 0750 /etc/rtunnel
chown rtunnel:rtunnel /var/lib/rtunnel
chmod 0700 /var/lib/rtunnel

# 3. The config holds no secret but says where the key is and which hosts
# are trusted: root writes it, rtunnel reads it. The admin may have deleted it.
if [ -f /etc/rtunnel/rtunnel.yaml ]; then
	chgrp rtunnel /etc/rtunnel/rtunnel.yaml
	chmod 0640 /etc/rtunnel/rtunnel.yaml
fi

# 4. Let a running systemd see new or changed units; start nothing.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
	running=$(systemctl list-units --plain --no-legend --state=active \
		'rtunnel.service' 'rtunnel@*.service' 2>/dev/null | awk '{printf "%s%s", sep, $1; sep = " "}')
	if [ -n "$running" ]; then
		echo "rtunnel: $running still run the old binary;" \
			"restart them when a short tunnel drop is acceptable." >&2
	fi
fi

# First install: tell the admin what is left to do (deb: "configure" with no
# old version; rpm: $1 = 1).
case "${1:-}:${2:-}" in
configure: | 1:)
	cat >&2 <<'MSG'
rtunnel installed; the service is not started. Next:
  1. edit /etc/rtunnel/rtunnel.yaml
  2. put the key in /etc/rtunnel/id_ed25519 (owner rtunnel, mode 0600) and the
     server's host key in /etc/rtunnel/known_hosts
  3. rtunnel check --config /etc/rtunnel/rtunnel.yaml
  4. systemctl enable --now rtunnel
MSG
	;;
esac
exit 0
