#!/bin/sh
# scpkit fleet provision / simulate / verify on loopback (issue 15): a
# small fleet of virtual cards provisioned from the keystore and registered
# in bulk, a key-rotation campaign run by the simulator (all agents in one
# process) with dropped connections, latency and agent crashes, then every
# card proved by an SCP03 channel with the registry's keys.
# Tampered twins: a card rotated behind the registry's back, a registry
# that names another key set, a simulator that does not trust the server's
# certificate, provisioning over an existing fleet: each refused.
set -u
S=${1:?usage: fleet.sh path/to/scpkit}
N=${FLEET_N:-40}
T=$(mktemp -d /tmp/scpkit-fleet.XXXXXX)
SRV_PID=
trap '[ -n "$SRV_PID" ] && stop_pid $SRV_PID; pg_stop; rm -rf "$T"' EXIT INT TERM
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/../ota/ota_lib.sh"
cd "$T" || exit 1

expect 0 ota_backend "$T"       # SQLite, or PostgreSQL with SCPKIT_TEST_DB=pg
expect 0 keystore_setup ks
expect 0 "$S" ota init --dir srv --keystore ks --self-signed localhost
expect 0 "$S" fleet provision --dir srv --cards cards --devices "$N" --master fleet:1 --kdf kdf3 \
    --kvn 1 --jobs 4 --json
json "$T/out" "d['devices'] == $N and d['ok']"
[ "$(wc -l <cards/fleet.csv)" -eq "$N" ] && ok || bad "fleet.csv has not $N lines"
expect 0 "$S" ota device list --dir srv --json
json "$T/out" "len(d['devices']) == $N and all(x['kvn'] == 1 and x['master'] == 'fleet:1' for x in d['devices'])"
# every card has its own identity, and the index names it
expect 0 "$S" info --card cards/c0000003 --json
ID3=$(sed -n 4p cards/fleet.csv | cut -d, -f2)
json "$T/out" "d['device_id'] == '$ID3'"
[ "$(cut -d, -f2 cards/fleet.csv | sort -u | wc -l)" -eq "$N" ] && ok || bad "device ids not unique"
# the provisioned keys are the keystore's for each card (not the factory's)
expect 0 "$S" fleet verify --dir srv --cards cards --master fleet:1 --kdf kdf3 --kvn 1
has "$T/out" "$N proved"
expect 3 "$S" apdu --card cards/c0000000 80CA00E000                         # factory keys: refused
# twin: never over an existing fleet
expect 5 "$S" fleet provision --dir srv --cards cards --devices 2 --master fleet:1 --kdf kdf3 --kvn 1

expect 0 server_start srv --lease 4000 --step-timeout 3000
expect 0 "$S" ota campaign create --dir srv --name r2 --target all \
    --rotate-keys --new-master fleet2:1 --new-kdf kdf3 --new-kvn 2
# twin first: a simulator that does not trust the certificate gets nowhere
"$S" ota init --dir other --keystore ks --self-signed localhost >/dev/null
expect 4 "$S" fleet simulate --cards cards --server "https://localhost:$PORT/" \
    --ca other/tls/cert.pem --retries 0 --max-sessions 1 --timeout 60 --json
json "$T/out" "d['converged'] == 0 and d['failed'] == $N and 'certificate' in d['reasons'][0]['reason'].lower()"
expect 0 "$S" ota campaign show --dir srv r2 --json
json "$T/out" "d['pending'] == $N"
# the run: drops, latency, crashes
expect 0 "$S" fleet simulate --cards cards --server "https://localhost:$PORT/" --ca srv/tls/cert.pem \
    --concurrency 16 --drop-rate 0.1 --crash-rate 0.05 --latency 5 --timeout 240 --seed 7 --json
cp "$T/out" sim.json
json sim.json "d['devices'] == $N and d['converged'] == $N and d['failed'] == 0 and d['drops'] > 0 and d['crashes'] > 0 and d['sessions'] >= $N and d['seconds'] > 0"
expect 0 "$S" ota campaign show --dir srv r2 --json
json "$T/out" "d['done'] == $N"
expect 0 "$S" fleet verify --dir srv --cards cards --master fleet2:1 --kdf kdf3 --kvn 2 --campaign r2 --json
json "$T/out" "d['proved'] == $N and d['failed'] == 0"
# nothing left: a second run converges at once, with one session per device
expect 0 "$S" fleet simulate --cards cards --server "https://localhost:$PORT/" --ca srv/tls/cert.pem --json
json "$T/out" "d['converged'] == $N and d['sessions'] == $N and d['sessions_with_scripts'] == 0"
stop_pid "$SRV_PID"; SRV_PID=

# twins for verify: the old set is expected (registry disagrees), and a card
# moved to keys the registry does not know
expect 3 "$S" fleet verify --dir srv --cards cards --master fleet:1 --kdf kdf3 --kvn 1
has "$T/out" "expected fleet:1 KVN 01"
C5=cards/c0000005; ID5=$(sed -n 6p cards/fleet.csv | cut -d, -f2)
expect 0 "$S" keystore rotate --dir ks --card $C5 --keystore ks --master fleet2:1 --kdf kdf3 --kvn 2 \
    --new-master fleet:1 --new-kdf kdf3 --new-kvn 3
expect 3 "$S" fleet verify --dir srv --cards cards --json
json "$T/out" "d['failed'] == 1 and d['failures'][0]['device'] == '$ID5' and 'KVN 03' in d['failures'][0]['reason']"
finish fleet
