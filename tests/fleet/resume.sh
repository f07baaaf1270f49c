#!/bin/sh
# A dialog resumed on a restarted server, then a lost answer
# (resume_after_restart.c): the agent's repeated POST gets the same answer,
# and the rotation finishes; the card then holds the new keys only.
# Without the server's fix the repeated POST was taken as the results of
# the restarted dialog's first script: a wrong card cryptogram, the job
# failed. On SQLite and on PostgreSQL (SCPKIT_TEST_DB=pg).
set -u
S=${1:?usage: resume.sh path/to/scpkit path/to/resume_after_restart}
R=${2:?usage: resume.sh path/to/scpkit path/to/resume_after_restart}
T=$(mktemp -d /tmp/scpkit-fleet-resume.XXXXXX)
SRV_PID= RPID=
trap 'for p in $RPID $SRV_PID; do stop_pid $p; done; pg_stop; rm -rf "$T"' EXIT INT TERM
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/../ota/ota_lib.sh"
cd "$T" || exit 1

expect 0 ota_backend "$T"
expect 0 keystore_setup ks
expect 0 "$S" ota init --dir srv --keystore ks --self-signed localhost
expect 0 "$S" fleet provision --dir srv --cards cards --devices 1 --master fleet:1 --kdf kdf3 --kvn 1
expect 0 server_start srv
expect 0 "$S" ota campaign create --dir srv --name r2 --target all \
    --rotate-keys --new-master fleet2:1 --new-kdf kdf3 --new-kvn 2
mkdir sync
"$R" cards/c0000000 "https://localhost:$PORT/" srv/tls/cert.pem sync >resume.out 2>&1 &
RPID=$!
wait_for 30 test -e sync/ready && ok || bad "no first script"
# kill -9 the server itself (timeout's child), start it again on its port
SP=$(pgrep -P "$SRV_PID" | head -1)
[ -n "$SP" ] && kill -KILL "$SP"; wait "$SRV_PID" 2>/dev/null
rm -f srv/https.port
timeout -s KILL 120 "$S" ota serve --dir srv --listen "127.0.0.1:$PORT" --log srv/server.log \
    2>>srv/server.err &
SRV_PID=$!
wait_for 20 test -s srv/https.port && ok || bad "the server did not come back"
touch sync/go
_n=0; while kill -0 "$RPID" 2>/dev/null && [ $_n -lt 600 ]; do sleep 0.1; _n=$((_n + 1)); done
wait "$RPID"; rrc=$?; RPID=
[ "$rrc" -eq 0 ] && ok || { bad "resume_after_restart exit $rrc"; cat resume.out >&2; }
has resume.out "the repeated POST got the same answer"
has srv/server.log "event=restart"
expect 0 "$S" ota campaign show --dir srv r2 --json
json "$T/out" "d['done'] == 1 and d['failed'] == 0"
stop_pid "$SRV_PID"; SRV_PID=
expect 0 "$S" fleet verify --dir srv --cards cards --master fleet2:1 --kdf kdf3 --kvn 2 --campaign r2
finish resume
