#!/bin/sh
# Many servers, one fleet (issue 15): three `scpkit ota serve` processes on
# one registry (PostgreSQL: three server directories naming one database;
# SQLite: three processes on one directory's file), nine devices, a
# rotation campaign, the agents split between the servers and started at
# once. Server A kills itself (SIGKILL, SCPKIT_OTA_FAULT) in the middle of
# a session, its device's lease still held: the other servers refuse that
# device (409, Retry-After) until the lease expires, then one takes it
# over and the device's agent, moved there, finishes. At the end every
# device has converged (its only key set is the new one, which opens a
# channel; the registry agrees), both surviving servers and their status
# pages report the same progress from the database, and the event log,
# read from the database, shows no device with two holders at once: no
# lease taken while another holder's was unexpired and unreleased, no
# event from a dialog that did not hold the device's lease at that moment.
set -u
S=${1:?usage: multi.sh path/to/scpkit}
T=$(mktemp -d /tmp/scpkit-ota-multi.XXXXXX)
PA= PB= PC= AGENTS=
trap 'for p in $AGENTS $PA $PB $PC; do stop_pid $p; done; pg_stop; [ -z "${KEEP:-}" ] && rm -rf "$T"' EXIT INT TERM
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/ota_lib.sh"
ota_backend "$T" || exit 1
cd "$T" || exit 1
N=9

expect 0 keystore_setup ks
expect 0 "$S" ota init --dir srvA --keystore ks --self-signed localhost
if [ -n "${SCPKIT_OTA_DB:-}" ]; then
    # one certificate for the three (as behind one load balancer's name)
    for x in B C; do
        expect 0 "$S" ota init --dir srv$x --keystore ks --self-signed localhost
        cp srvA/tls/cert.pem srvA/tls/key.pem srv$x/tls/
    done
    DB=srvB DC=srvC
else
    DB=srvA DC=srvA
fi
i=1
while [ $i -le $N ]; do
    id=$(device_setup ks dev$i) && [ -n "$id" ] && ok || bad "device $i"
    eval ID$i=$id
    expect 0 "$S" ota device add --dir srvA --id "$id" --master fleet:1 --kdf kdf3 --kvn 1
    i=$((i + 1))
done
expect 0 "$S" ota campaign create --dir srvA --name r --target all \
    --rotate-keys --new-master fleet2:1 --new-kdf kdf3 --new-kvn 2
has "$T/out" "$N devices"

# start NAME DIR LEASE-MS [ENV=V]: one server (sequentially: the port files are the
# directory's), its PID in P<NAME>, ports in PORT<NAME>, ADMIN<NAME>
start() {
    _n=$1 _d=$2 _l=$3; shift 3
    rm -f "$_d/https.port" "$_d/admin.port"
    env "$@" timeout -s KILL 360 "$S" ota serve --dir "$_d" --listen 127.0.0.1:0 \
        --admin-listen 127.0.0.1:0 --log "$T/$_n.log" --lease $_l --step-timeout 3000 \
        2>>"$T/$_n.err" &
    eval P$_n=$!
    wait_for 20 test -s "$_d/admin.port" || { bad "server $_n did not start"; cat "$T/$_n.err" >&2; return 1; }
    eval PORT$_n=$(cat "$_d/https.port") ADMIN$_n=$(cat "$_d/admin.port")
}
# A dies at its 12th fault point: inside its second or third session. Its
# leases run 15 s (each server sets the leases it takes), the others' 4 s
start A srvA 15000 SCPKIT_OTA_FAULT=server:12
start B "$DB" 4000
start C "$DC" 4000

# agent K SERVER-PORT RETRIES: the agent of devK, in the background
agent() {
    "$S" agent --server "https://localhost:$2/" --ca srvA/tls/cert.pem --card dev$1 \
        --retries $3 >"$T/agent$1.out" 2>&1 &
    eval AG$1=$!
    AGENTS="$AGENTS $!"
}
i=1
while [ $i -le $N ]; do
    case $i in 1|2|3|4) agent $i $PORTA 0 ;; 5|6|7) agent $i $PORTB 20 ;; *) agent $i $PORTC 20 ;; esac
    i=$((i + 1))
done
# A's agents end (A dies under them, or they finish first)
for i in 1 2 3 4; do eval "wait \$AG$i"; eval "echo \$? >$T/rc$i"; done
wait_for 10 grep -q "fault injected" "$T/A.err" && ok || bad "server A did not die mid-session"
wait $PA 2>/dev/null; PA=
# a device A held mid-session: its lease is still A's, unexpired
HELD=$(reg_sql srvA "select id from device where lease_owner is not null and lease_until > $(date +%s%3N) + 5000 order by id limit 1")
[ -n "$HELD" ] && ok || bad "no lease left held by the dead server"
if [ -n "$HELD" ]; then
    # the survivors refuse it while the dead holder's lease runs
    for p in $PORTB $PORTC; do
        c=$(curl -sS --cacert srvA/tls/cert.pem --max-time 10 -o /dev/null -w '%{http_code}' -X POST \
            -H 'X-Admin-Protocol: globalplatform-remote-admin/1.0' \
            -H "X-Admin-From: //se-id/id/$HELD" "https://localhost:$p/server/adminagent")
        [ "$c" = 409 ] && ok || bad "server on $p: HTTP $c for a device the dead server holds"
    done
fi
# A's agents move to B and C; the leases A left expire, then are taken over
for i in 1 2 3 4; do
    if [ "$(cat "$T/rc$i")" != 0 ]; then
        case $i in 1|3) agent $i $PORTB 20 ;; *) agent $i $PORTC 20 ;; esac
    fi
done
i=1
while [ $i -le $N ]; do
    eval "_p=\$AG$i"
    wait "$_p"; rc=$?
    [ $rc -eq 0 ] && ok || { bad "agent $i: exit $rc"; sed 's/^/    /' "$T/agent$i.out" >&2; }
    i=$((i + 1))
done
AGENTS=

# --- every device converged: card, registry, the new keys open a channel
i=1
while [ $i -le $N ]; do
    expect 0 "$S" info --card dev$i --json
    json "$T/out" "sorted({k['kvn'] for k in d['keys']}) == [2]"
    expect 0 "$S" apdu --card dev$i --keystore ks --master fleet2:1 --kdf kdf3 80CA00E000
    i=$((i + 1))
done
expect 0 reg_sql srvA "select count(*) from device where kvn = 2 and master = 'fleet2:1' and next_kvn is null and prev_kvn is null"
has "$T/out" "^$N$"
# --- progress from the database, the same through every server
expect 0 "$S" ota campaign show --dir "$DB" r --json
json "$T/out" "d['done'] == $N and d['total'] == $N and d['failed'] == 0"
cp "$T/out" "$T/showB.json"
expect 0 "$S" ota campaign show --dir "$DC" r --json
json "$T/out" "d['done'] == $N and d['total'] == $N"
for a in $ADMINB $ADMINC; do
    curl -sS --max-time 10 -o "$T/st$a.json" "http://127.0.0.1:$a/campaign/r.json" && ok || bad "status page on $a"
    json "$T/st$a.json" "d['done'] == $N and d['pending'] == 0 and d['running'] == 0"
done
# --- the event log: never two holders at once; a dead holder's lease taken over
expect 0 reg_sql srvA "select device, id, time, coalesce(dialog, ''), what, coalesce(detail, '') from event where device is not null order by device, id"
cp "$T/out" "$T/events"
cat >"$T/check.py" <<'PY'
import re, sys
bad = []; takeovers = 0; leases = 0; servers = set()
cur = {}  # device -> [holder dialog, server, until, released]
for line in open(sys.argv[1]):
    dev, eid, t, dialog, what, detail = line.rstrip("\n").split("|", 5)
    t = int(t)
    h = cur.get(dev)
    if what == "lease":
        leases += 1
        until = int(re.search(r"until=(\d+)", detail).group(1))
        server = re.search(r"holder=(\S+)", detail).group(1)
        servers.add(server)
        if h and h[0] != dialog and not h[3]:
            if t <= h[2]:
                bad.append(f"{dev}: {dialog} took the lease at {t} while {h[0]} held it until {h[2]}")
            takeovers += 1
        cur[dev] = [dialog, server, until, False]
    elif what == "lease-released":
        if not h or h[0] != dialog:
            bad.append(f"{dev}: {dialog} released a lease it did not hold")
        else:
            h[3] = True
    elif dialog:
        if not h or h[0] != dialog or h[3]:
            bad.append(f"{dev}: event {eid} ({what}) from {dialog}, lease holder {h and h[0]}")
print(f"{leases} leases by {len(servers)} servers, {takeovers} taken over from a dead holder,"
      f" {len(bad)} violations")
for b in bad[:10]:
    print("  " + b)
sys.exit(1 if bad or takeovers < 1 or len(servers) < 3 or leases < len(cur) else 0)
PY
expect 0 python3 "$T/check.py" "$T/events"
cat "$T/out"
# tampered twins: a second holder taking a device's lease at the moment
# the first holder took it, and an event from a dialog without the lease
awk -F'|' 'BEGIN { OFS = "|" } { print } $5 == "lease" && !done { $4 = "INTRUDER"; print; done = 1 }' \
    "$T/events" >"$T/events.2"
expect 1 python3 "$T/check.py" "$T/events.2"
has "$T/out" "INTRUDER took the lease"
awk -F'|' 'BEGIN { OFS = "|" } { print } $5 == "job-done" && !done { $4 = "OTHERDIALOG"; print; done = 1 }' \
    "$T/events" >"$T/events.3"
expect 1 python3 "$T/check.py" "$T/events.3"
has "$T/out" "from OTHERDIALOG"
for x in B C; do eval "stop_pid \$P$x"; eval "P$x="; done
finish ota_multi "$N devices, 3 servers, one killed"
