#!/bin/sh
# rtunnel .ipk prerm (OpenWrt): stop and disable on removal. opkg passes
# "upgrade" when the package is being replaced: the tunnel then stays up, so
# a router managed through it stays reachable.
[ -n "${IPKG_INSTROOT:-}" ] && exit 0
[ "${1:-}" = upgrade ] && exit 0
/etc/init.d/rtunnel stop >/dev/null 2>&1
/etc/init.d/rtunnel disable >/dev/null 2>&1
exit 0
