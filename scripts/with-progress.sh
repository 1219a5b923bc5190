#!/bin/sh
# Usage: scripts/with-progress.sh "what it does" command args...
# Runs a long, quiet command and says every PROGRESS_EVERY s (default 15) that it is still at
# it, with the elapsed time, whether or not the output is a terminal. Exits as the command.
label=$1
shift
start=$(date +%s)
echo "$label ..."
"$@" &
pid=$!
trap 'kill "$pid" 2>/dev/null' INT TERM
while kill -0 "$pid" 2>/dev/null; do
	i=0
	while [ $i -lt "${PROGRESS_EVERY:-15}" ] && kill -0 "$pid" 2>/dev/null; do
		sleep 1
		i=$((i + 1))
	done
	kill -0 "$pid" 2>/dev/null && echo "$label: still running, $(($(date +%s) - start)) s"
done
wait "$pid"
rc=$?
if [ $rc -eq 0 ]; then
	echo "$label: done in $(($(date +%s) - start)) s"
else
	echo "$label: failed (exit $rc) after $(($(date +%s) - start)) s"
fi
exit $rc
