#!/bin/sh
# rtunnel .apk post-upgrade (Alpine): the running service keeps the old
# binary until restarted; restarting here would cut a session that came in
# through the tunnel in the middle of `apk upgrade`.
if rc-service rtunnel status >/dev/null 2>&1; then
	echo "rtunnel: still runs the old binary; rc-service rtunnel restart when a short tunnel drop is acceptable." >&2
fi
exit 0
