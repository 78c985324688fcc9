#!/bin/sh
# rtunnel .apk post-install (Alpine): owners and modes as the systemd
# tmpfiles.d entry sets them elsewhere; the service is neither added to a
# runlevel nor started.
mkdir -p /etc/rtunnel /var/lib/rtunnel
chown root:rtunnel /etc/rtunnel
chmod 0750 /etc/rtunnel
chown rtunnel:rtunnel /var/lib/rtunnel
chmod 0700 /var/lib/rtunnel
if [ -f /etc/rtunnel/rtunnel.yaml ]; then
	chgrp rtunnel /etc/rtunnel/rtunnel.yaml
	chmod 0640 /etc/rtunnel/rtunnel.yaml
fi
cat >&2 <<'MSG'
rtunnel installed; the service is not started. Next:
  1. edit /etc/rtunnel/rtunnel.yaml
  2. put the key in /etc/rtunnel/id_ed25519 (owner rtunnel, mode 0600) and the
     server's host key in /etc/rtunnel/known_hosts
  3. rtunnel check --config /etc/rtunnel/rtunnel.yaml
  4. rc-update add rtunnel default && rc-service rtunnel start
MSG
exit 0
