#!/bin/sh
# Chaos (issue 15): a key-rotation campaign over N virtual devices run by
# `scpkit fleet simulate` (agents drop connections and crash) against two
# `scpkit ota serve` processes sharing one registry, while a random server
# is killed with SIGKILL every few seconds and restarted on its port.
# At the end: every device converged to the new keys, proved by an SCP03
# channel on each card with keys diversified in the keystore (`fleet
# verify`, a C check that does not take the registry's word), no card holds
# a key set the registry does not name, and every device's step history
# for the campaign is complete and in order. With SCPKIT_TEST_DB=pg the
# registry is a private PostgreSQL cluster, which is also stopped at once
# (immediate shutdown, as a crash) and restarted once during the run.
#   chaos.sh SCPKIT [N] [KILL_EVERY_S] [MAX_KILLS] [SIM_TIMEOUT_S]
# make check: 500 devices, a few kills; make soak: 10,000 devices.
# Processes by PID only (servers under timeout(1)), 127.0.0.1 only, every
# wait bounded.
set -u
S=${1:?usage: chaos.sh path/to/scpkit [N] [KILL_EVERY_S] [MAX_KILLS] [SIM_TIMEOUT_S]}
N=${2:-500}
EVERY=${3:-3}
MAXK=${4:-5}
SIMT=${5:-600}
NSRV=2
T=$(mktemp -d /tmp/scpkit-chaos.XXXXXX)
TP1= TP2= SIM=
cleanup() {
    for p in $SIM $TP1 $TP2; do stop_pid "$p"; done
    pg_stop
    [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT INT TERM
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/../ota/ota_lib.sh"
cd "$T" || exit 1
t0=$(date +%s)

# pg_bounce: PostgreSQL stopped at once (SIGQUIT: immediate shutdown, crash
# recovery at the next start), down for 2 s, started again on its data and port
pg_bounce() {
    kill -QUIT "$PG_PID" 2>/dev/null
    _n=0
    while kill -0 "$PG_PID" 2>/dev/null && [ $_n -lt 200 ]; do sleep 0.1; _n=$((_n + 1)); done
    wait "$PG_PID" 2>/dev/null
    sleep 2
    (cd /tmp || exit 1
     set -- "$PG_BIN/postgres" -D "$PG_BASE/data" -h 127.0.0.1 -p "$PG_PORT" -k "$PG_BASE" \
         -c fsync="${PG_FSYNC:-off}" -c max_connections=200
     [ "$(id -u)" -eq 0 ] &&
         exec setpriv --reuid=postgres --regid=postgres --init-groups --reset-env -- "$@"
     exec "$@") >>"$T/pg/postgres.log" 2>&1 &
    PG_PID=$!
    wait_for 30 "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
}

# srv_start I PORT: server I on 127.0.0.1:PORT (0: any), its timeout(1) PID in TPI
srv_start() {
    rm -f srv/https.port
    timeout -s KILL $((SIMT + 300)) "$S" ota serve --dir srv --listen "127.0.0.1:$2" \
        --log "srv/server$1.log" --lease 3000 --step-timeout 2500 --io-timeout 10 \
        2>>"srv/server$1.err" &
    eval "TP$1=$!"
    wait_for 20 test -s srv/https.port || { echo "server $1 did not start" >&2; return 1; }
    eval "PORT$1=$(cat srv/https.port)"
}
# srv_kill I: SIGKILL to the server process itself (timeout's child)
srv_kill() {
    eval "_tp=\$TP$1"
    _sp=$(pgrep -P "$_tp" | head -1)
    [ -n "$_sp" ] && kill -KILL "$_sp" 2>/dev/null
    wait "$_tp" 2>/dev/null
}

expect 0 ota_backend "$T"       # SQLite, or PostgreSQL with SCPKIT_TEST_DB=pg
expect 0 keystore_setup ks
expect 0 "$S" ota init --dir srv --keystore ks --self-signed localhost
expect 0 "$S" fleet provision --dir srv --cards cards --devices "$N" --master fleet:1 --kdf kdf3 \
    --kvn 1 --json
cp "$T/out" provision.json
for i in 1 2; do expect 0 srv_start $i 0; done
expect 0 "$S" ota campaign create --dir srv --name rot --target all \
    --rotate-keys --new-master fleet2:1 --new-kdf kdf3 --new-kvn 2
MARK=$(reg_sql srv "select coalesce(max(id),0) from event")
t1=$(date +%s)
"$S" fleet simulate --cards cards --server "https://localhost:$PORT1/" \
    --server "https://localhost:$PORT2/" --ca srv/tls/cert.pem --concurrency 200 \
    --drop-rate 0.05 --crash-rate 0.02 --timeout "$SIMT" --json >sim.json 2>sim.err &
SIM=$!
kills=0 bounced=0
while kill -0 "$SIM" 2>/dev/null && [ $(($(date +%s) - t1)) -lt $((SIMT + 30)) ]; do
    sleep "$EVERY"
    kill -0 "$SIM" 2>/dev/null || break
    [ "$kills" -ge "$MAXK" ] && continue
    i=$(($(od -An -N1 -tu1 /dev/urandom) % NSRV + 1))
    srv_kill $i
    kills=$((kills + 1))
    eval "_port=\$PORT$i"
    srv_start $i "$_port" || bad "server $i did not come back on port $_port"
    if [ -n "${SCPKIT_OTA_DB:-}" ] && [ "$bounced" -eq 0 ] && [ "$kills" -ge 2 ]; then
        pg_bounce && bounced=1 || bad "PostgreSQL did not come back"
    fi
done
wait "$SIM"; simrc=$?; SIM=
t2=$(date +%s)
[ "$simrc" -eq 0 ] && ok || { bad "simulate exit $simrc"; cat sim.json sim.err >&2; }
json sim.json "d['devices'] == $N and d['converged'] == $N and d['failed'] == 0"
[ "$kills" -ge 1 ] && ok || bad "no server was killed ($kills)"
[ -z "${SCPKIT_OTA_DB:-}" ] || [ "$bounced" -eq 1 ] && ok || bad "PostgreSQL was not restarted"
for i in 1 2; do eval "stop_pid \$TP$i"; done; TP1= TP2=

expect 0 "$S" ota campaign show --dir srv rot --json
json "$T/out" "d['done'] == $N and d['failed'] == 0 and d['running'] == 0"
# the proof, on the cards: the new keys open a channel, nothing else is there
expect 0 "$S" fleet verify --dir srv --cards cards --master fleet2:1 --kdf kdf3 --kvn 2 \
    --campaign rot --json
cp "$T/out" verify.json
json verify.json "d['proved'] == $N and d['failed'] == 0"
# every device's history: intent, new keys proved, old keys deleted, job done, in that order
reg_sql srv "select device, what, coalesce(detail,'') from event where id > $MARK order by id" >events.txt
python3 - events.txt cards/fleet.csv >history.txt 2>&1 <<'PY'
import sys
events, index = sys.argv[1], sys.argv[2]
want = ["put-key-intent", "new-keys-confirmed", "old-keys-deleted", "job-done"]
ev = {}
for row in open(events):
    dev, what, detail = (row.rstrip("\n").split("|", 2) + ["", ""])[:3]
    ev.setdefault(dev, []).append((what, detail))
bad = 0
for line in open(index):
    dev = line.strip().split(",")[1]
    seq, k = ev.get(dev, []), 0
    for what, detail in seq:
        if k < len(want) and what == want[k] and (what != "job-done" or detail == "rot"):
            k += 1
    if k < len(want):
        bad += 1
        if bad <= 5:
            print("incomplete history for", dev, [w for w, _ in seq])
print("devices with incomplete history:", bad)
sys.exit(1 if bad else 0)
PY
[ $? -eq 0 ] && ok || { bad "job history"; cat history.txt >&2; }
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("chaos: %d devices, %d server kills, %d drops, %d agent crashes, %d failovers, rotation %.0f s (%.1f sessions/s), simulator CPU %.1f s" % (d["devices"], int(sys.argv[2]), d["drops"], d["crashes"], d["failovers"], d["seconds"], d["sessions_per_second"], d["simulator_cpu_seconds"]))' sim.json "$kills"
echo "chaos: provision $(python3 -c 'import json; print("%.0f" % json.load(open("provision.json"))["seconds"])') s, verify $(python3 -c 'import json; print("%.0f" % json.load(open("verify.json"))["seconds"])') s, total $(($(date +%s) - t0)) s"
finish chaos "$N devices, $kills kills, ${SCPKIT_TEST_DB:-sqlite}"
