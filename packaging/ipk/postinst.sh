#!/bin/sh
# rtunnel .ipk postinst (OpenWrt): nothing to do in an image build
# (IPKG_INSTROOT set); on a router, tell the admin what is left. The service
# is not enabled: with the example config it could not connect anyway.
[ -n "${IPKG_INSTROOT:-}" ] && exit 0
chmod 0700 /etc/rtunnel
chmod 0600 /etc/rtunnel/rtunnel.yaml 2>/dev/null
cat >&2 <<'MSG'
rtunnel installed; the service is not started. Next:
  1. edit /etc/rtunnel/rtunnel.yaml
  2. put the key in /etc/rtunnel/id_ed25519 (mode 0600) and the server's
     host key in /etc/rtunnel/known_hosts
  3. rtunnel check --config /etc/rtunnel/rtunnel.yaml
  4. /etc/init.d/rtunnel enable && /etc/init.d/rtunnel start
MSG
exit 0
