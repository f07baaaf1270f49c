#!/bin/sh
# Convergence (issue 14): a kill -9 of the server, and separately of the
# agent, at every fault point of a key rotation (SCPKIT_OTA_FAULT=WHO:N, the
# process SIGKILLs itself at its N-th point: after the intent is recorded,
# after a POST arrives, after a card answer is checked, before an answer
# leaves; in the agent before and after the card runs a script). After
# each kill: the card holds no key set the registry does not know; after
# the next session: the job is done, the registry's KVN is the card's only
# set and its keys open a channel. Every point is counted; the loop ends
# at the first N that is not reached (the rotation ran through).
set -u
S=${1:?usage: converge.sh path/to/scpkit [server|agent]}
WHO=${2:-server agent}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/ota_lib.sh"
ota_begin cv

expect 0 keystore_setup ks
ID=$(device_setup ks dev1) && [ -n "$ID" ] && ok || bad "device setup"
expect 0 "$S" ota init --dir srv --keystore ks --self-signed localhost
expect 0 "$S" ota device add --dir srv --id "$ID" --master fleet:1 --kdf kdf3 --kvn 1
AG="--server https://localhost:PORT/ --ca srv/tls/cert.pem --card dev1"
SOPTS="--lease 600 --step-timeout 400"
agent() { "$S" agent --server "https://localhost:$PORT/" --ca srv/tls/cert.pem --card dev1 "$@"; }

# every KVN on the card is one the registry names (cur, next or prev)
known_only() {
    "$S" info --card dev1 --json >"$T/card.json" 2>/dev/null &&
    "$S" ota device list --dir srv --json >"$T/reg.json" &&
    python3 - "$T/card.json" "$T/reg.json" <<'PY'
import json, sys
card = {k["kvn"] for k in json.load(open(sys.argv[1]))["keys"]}
d = json.load(open(sys.argv[2]))["devices"][0]
known = {d["kvn"], d["next_kvn"], d["prev_kvn"]} - {0}
sys.exit(0 if card and card <= known else (print("card", card, "registry", known) or 1))
PY
}

# converged KVN MASTER CAMPAIGN: the job done, the registry's set is the
# card's only set (the keys themselves: `apdu` at the end of each loop)
converged() {
    expect 0 "$S" info --card dev1 --json
    json "$T/out" "sorted({k['kvn'] for k in d['keys']}) == [$1]"
    expect 0 reg_sql srv "select kvn, master, coalesce(next_kvn, 0), coalesce(prev_kvn, 0) from device"
    has "$T/out" "^$1|$2|0|0\$"
    expect 0 reg_sql srv "select state from job where campaign = '$3'"
    has "$T/out" "^done\$"
}

cur=1 i=0 runs=0
for who in $WHO; do
    n=1
    while [ $n -le 40 ]; do
        i=$((i + 1))
        kvn=$((cur % 3 + 1))
        if [ $((i % 2)) -eq 1 ]; then m=fleet2:1; else m=fleet:1; fi
        expect 0 "$S" ota campaign create --dir srv --name "c$i" --target "list:$ID" \
            --rotate-keys --new-master $m --new-kdf kdf3 --new-kvn $kvn
        : >srv/server.err
        if [ $who = server ]; then
            export SCPKIT_OTA_FAULT=server:$n
            server_start srv $SOPTS || bad "server start"
            unset SCPKIT_OTA_FAULT
            agent --retries 0 >"$T/a1" 2>&1
            wait_for 5 grep -q "fault injected" srv/server.err
            if grep -q "fault injected" srv/server.err; then
                hit=1; wait $SRV_PID    # it is gone: reap it (stop_pid would wait on a zombie)
            else
                hit=0; stop_pid $SRV_PID
            fi
            server_start srv $SOPTS || bad "server restart"
        else
            [ -z "$SRV_PID" ] && { server_start srv $SOPTS || bad "server start"; }
            SCPKIT_OTA_FAULT=agent:$n agent --retries 0 >"$T/a1" 2>&1
            if [ $? -eq 137 ]; then hit=1; else hit=0; fi
        fi
        if [ $hit -eq 1 ]; then
            runs=$((runs + 1))
            known_only && ok || bad "$who fault $n: the card holds keys the registry does not know"
        fi
        # the next sessions converge (bounded retries: leases expire in 0.6 s)
        expect 0 agent --retries 12
        converged $kvn $m "c$i"
        cur=$kvn
        [ $who = server ] && { stop_pid $SRV_PID; SRV_PID=; }
        [ $hit -eq 0 ] && break
        n=$((n + 1))
    done
    expect 0 "$S" apdu --card dev1 --keystore ks --master "$m" --kdf kdf3 80CA00E000
    echo "$who: killed at $((n - 1)) fault points, each converged"
    [ $n -ge 4 ] && ok || bad "$who: too few fault points reached ($((n - 1)))"
done
finish "ota_converge ($WHO)" "$runs kill -9 runs"
