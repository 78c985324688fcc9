#!/bin/sh
# rtunnel postremove (deb postrm / rpm %postun): forget the removed units.
# The rtunnel user and /etc/rtunnel (key, known_hosts) are kept, as Debian
# does for system users and for files the package did not ship; purge also
# drops the state directory.
set -eu

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi

if [ "${1:-}" = purge ]; then
	rm -rf /var/lib/rtunnel
fi
exit 0
