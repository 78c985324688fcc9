#!/bin/sh
# rtunnel .apk pre-install (Alpine): the rtunnel system user, made before
# unpacking so /etc/rtunnel is unpacked with group rtunnel. BusyBox
# addgroup/adduser: Alpine has no useradd.
addgroup -S rtunnel 2>/dev/null
adduser -S -D -H -h /var/lib/rtunnel -s /sbin/nologin -G rtunnel \
	-g 'rtunnel reverse SSH tunnel' rtunnel 2>/dev/null
exit 0
