#!/bin/sh
# rtunnel .apk pre-deinstall (Alpine): stop it and drop it from every
# runlevel, so no dangling service is left. The user and /etc/rtunnel stay.
rc-service rtunnel stop >/dev/null 2>&1
rc-update del rtunnel >/dev/null 2>&1
exit 0
