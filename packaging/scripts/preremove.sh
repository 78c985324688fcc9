#!/bin/sh
# rtunnel preremove (deb prerm / rpm %preun): stop the services on removal
# only. On upgrade they keep running, so a machine managed through its own
# tunnel stays reachable while the package is replaced.
set -eu

case "${1:-}" in
remove | 0) ;; # deb: remove; rpm: $1 = 0 packages left
*) exit 0 ;;   # deb: upgrade, deconfigure, failed-upgrade; rpm: $1 >= 1
esac

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	# Like rpm's %systemd_preun: stop and disable, instances of
	# rtunnel@.service too; errors must not block removal.
	systemctl disable --now rtunnel.service >/dev/null 2>&1 || true
	for unit in $(systemctl list-units --plain --no-legend --all 'rtunnel@*.service' 2>/dev/null | awk '{print $1}'); do
		systemctl disable --now "$unit" >/dev/null 2>&1 || true
	done
elif command -v systemctl >/dev/null 2>&1; then
	# No running systemd (image build, container): drop the enable symlinks
	# so they do not dangle once the unit file is gone.
	systemctl disable rtunnel.service >/dev/null 2>&1 || true
fi
exit 0
