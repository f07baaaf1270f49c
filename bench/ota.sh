#!/bin/sh
# bench/ota.sh BUILD [LEVELS]: the OTA benchmark (bench/ota_bench.c) on a
# private keystore, one `scpkit ota serve` process on loopback, and
# in-process virtual cards; figures to stdout and bench/ota_results.json.
# The server runs under `timeout` and is stopped by PID.
# OTA_DB=pg: the registry on a private PostgreSQL cluster (tests/lib.sh
# pg_start, fsync on), figures to bench/ota_results_pg.json
# (SCPKIT_PG_PIPELINE=0 as well: bench/ota_results_pg_nopipe.json).
# The registry's work per session (statements, round trips, commits and
# how many of them lazy) and the keystore's commits are read from the
# server's /metrics.
set -u
B=${1:?usage: bench/ota.sh BUILD [LEVELS]}
LEVELS=${2:-1,100,1000}
S=$B/tools/scpkit
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/scpkit-ota-bench.XXXXXX)
SRV_PID=
. "$HERE/../tests/lib.sh"
trap '[ -n "$SRV_PID" ] && stop_pid $SRV_PID; pg_stop; rm -rf "$T"' EXIT INT TERM
JSON=$HERE/ota_results.json DBOPT=
if [ "${OTA_DB:-sqlite}" = pg ]; then
    PG_FSYNC=on pg_start "$T/pg" || exit 1
    DBOPT="--db $PG_URL"
    JSON=$HERE/ota_results_pg.json
    [ "${SCPKIT_PG_PIPELINE:-1}" = 0 ] && JSON=$HERE/ota_results_pg_nopipe.json
fi
export SCPKIT_SO_PIN=bench-so-pin SCPKIT_USER_PIN=bench-user-pin SCPKIT_ACTOR=ota-bench
"$S" keystore init --dir "$T/ks" >/dev/null || exit 1
for m in fleet fleet2; do "$S" keystore generate --dir "$T/ks" --label $m --type aes128 >/dev/null || exit 1; done
SCPKIT_CUSTODIAN_PIN=custodian-a1 "$S" keystore custodian-add --dir "$T/ks" a >/dev/null
SCPKIT_CUSTODIAN_PIN=custodian-b2 "$S" keystore custodian-add --dir "$T/ks" b >/dev/null
for k in fleet:1 fleet2:1; do
    SCPKIT_CUSTODIAN_PIN_1=custodian-a1 SCPKIT_CUSTODIAN_PIN_2=custodian-b2 \
        "$S" keystore activate --dir "$T/ks" $k --reason bench --custodian a --custodian b >/dev/null || exit 1
done
"$S" ota init --dir "$T/srv" --keystore "$T/ks" --self-signed localhost $DBOPT >/dev/null || exit 1
timeout -s KILL 3600 ${OTA_SERVE_WRAP:-} "$S" ota serve --dir "$T/srv" --listen 127.0.0.1:0 --log /dev/null \
    --admin-listen 127.0.0.1:0 \
    --step-timeout 120000 --lease 300000 --io-timeout 120 &
SRV_PID=$!
wait_for 20 test -s "$T/srv/admin.port" || { echo "server did not start" >&2; exit 1; }
# the server's own PID (timeout's child), for its CPU time
SPID=$(pgrep -P "$SRV_PID" | head -1)
echo "OTA benchmark: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) (a shared, busy machine)," \
    "registry ${OTA_DB:-sqlite}${SCPKIT_PG_PIPELINE:+ SCPKIT_PG_PIPELINE=$SCPKIT_PG_PIPELINE}"
"$B/bench/ota_bench" --ks "$T/ks" --srv "$T/srv" --pid "${SPID:-$SRV_PID}" --cards "$T/cards" \
    --levels "$LEVELS" --json "$JSON" --admin "$(cat "$T/srv/admin.port")"
rc=$?
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $rc
