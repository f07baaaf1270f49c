#!/bin/sh
# Hostile input (issue 14): curl as an independent HTTP client, checking the
# Amd B headers and codes, and sending what a broken or hostile agent would:
# missing headers, wrong method, a body on the first POST, an unknown
# device, a wrong Content-Type, an oversized body, a malformed script, a
# garbage R-APDU, a replayed POST (byte-identical answer) and an
# out-of-order one, a client too slow to send its request, a card whose keys do not match (wrong
# card cryptogram), SIGTERM with a session in flight. Each ends only that
# session, with its reason in the log and the registry; the job stays
# pending (not failed, not done) and the other devices finish their jobs.
# TLS: openssl s_client refuses a server it cannot verify, TLS 1.1 is
# refused, plain HTTP gets no answer; /metrics counts what happened.
set -u
S=${1:?usage: hostile.sh path/to/scpkit}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/ota_lib.sh"
CODEC="python3 $HERE/script_codec.py"
ota_begin ho

expect 0 keystore_setup ks
expect 0 "$S" ota init --dir srv --keystore ks --self-signed localhost
for d in 1 2 3; do
    id=$(device_setup ks dev$d) && [ -n "$id" ] && ok || bad "device $d"
    eval ID$d=$id
done
expect 0 "$S" ota device add --dir srv --id "$ID1" --master fleet:1 --kdf kdf3 --kvn 1
expect 0 "$S" ota device add --dir srv --id "$ID2" --master fleet:1 --kdf kdf3 --kvn 1
expect 0 "$S" ota device add --dir srv --id "$ID3" --master fleet2:1 --kdf kdf3 --kvn 1  # wrong keys
expect 0 "$S" ota campaign create --dir srv --name h --target all --put-data 0101=0102
expect 0 server_start srv --max-body 1024 --step-timeout 30000 --lease 40000 --io-timeout 2
U="https://localhost:$PORT/server/adminagent"
P="X-Admin-Protocol: globalplatform-remote-admin/1.0"
F1="X-Admin-From: //se-id/id/$ID1"
RCT="Content-Type: application/vnd.globalplatform.card-content-mgt-response;version=1.0"
# post NAME URL [curl args]: headers to $T/NAME.h, body to $T/NAME.b, code to $T/NAME.c
post() {
    _n=$1 _u=$2; shift 2
    curl -sS --cacert srv/tls/cert.pem --max-time 10 -D "$T/$_n.h" -o "$T/$_n.b" -w '%{http_code}' \
        -X POST "$@" "$_u" >"$T/$_n.c" 2>"$T/$_n.e"
}
code() { if [ "$(cat "$T/$1.c")" = "$2" ]; then ok; else bad "$1: HTTP $(cat "$T/$1.c"), want $2"; fi; }
next_uri() { sed -n 's/^X-Admin-Next-URI: *\([^\r]*\).*/\1/Ip' "$T/$1.h"; }
job_state() { # job_state DEVICE: state/attempts of campaign h
    "$S" ota campaign show --dir srv h --json | python3 -c \
        "import json,sys; d=[x for x in json.load(sys.stdin)['devices'] if x['id']=='$1'][0]; print(d['state'], d['attempts'])"
}
# a dialog opened by curl: the first script, checked against Amd B
open_dialog() {
    post $1 "$U" -H "$P" -H "$F1"
    code $1 200
    has "$T/$1.h" "X-Admin-Protocol: globalplatform-remote-admin/1.0"
    has "$T/$1.h" "Content-Type: application/vnd.globalplatform.card-content-mgt;version=1.0"
    NEXT="https://localhost:$PORT$(next_uri $1)"
}

# --- refused before any session: method, headers, body, device
curl -sS --cacert srv/tls/cert.pem -o /dev/null -w '%{http_code}' -H "$P" -H "$F1" "$U" >"$T/get.c"; code get 405
post noproto "$U" -H "$F1"; code noproto 400
post nofrom "$U" -H "$P"; code nofrom 400
post badfrom "$U" -H "$P" -H "X-Admin-From: //se-id/id/../../etc"; code badfrom 400
post body1 "$U" -H "$P" -H "$F1" --data-binary @/etc/hostname; code body1 400
post unknown "$U" -H "$P" -H "X-Admin-From: //se-id/id/NOSUCHDEVICE"; code unknown 403
post path "https://localhost:$PORT/other" -H "$P" -H "$F1"; code path 404
[ "$(job_state "$ID1")" = "pending 0" ] && ok || bad "refused requests changed the job"

# --- a dialog by hand: the first script is SELECT ISD + INITIALIZE UPDATE
open_dialog s1
$CODEC decode "$T/s1.b" >"$T/s1.apdus" && ok || bad "first script does not decode"
has "$T/s1.apdus" "^00A4040008F07363706B697401"
has "$T/s1.apdus" "^80500100"
case "$NEXT" in *"/server/adminagent?d="*"&s=1") ok ;; *) bad "Next-URI $NEXT" ;; esac
# the card answers (scpkit apdu --plain relays the plain commands, as an agent would)
"$S" apdu --card dev1 --plain $(cat "$T/s1.apdus") --json >"$T/r1.json" 2>/dev/null
python3 -c 'import json,sys; print(" ".join(r["data"]+r["sw"] for r in json.load(open(sys.argv[1]))["responses"]))' "$T/r1.json" >"$T/r1.hex"
$CODEC encode $(cat "$T/r1.hex") >"$T/r1.body"
post s2 "$NEXT" -H "$P" -H "$F1" -H "$RCT" -H "X-Admin-Script-Status: ok" --data-binary @"$T/r1.body"
code s2 200
# the duplicate of that POST: the same answer, byte for byte (fact sheet §7)
post s2dup "$NEXT" -H "$P" -H "$F1" -H "$RCT" -H "X-Admin-Script-Status: ok" -H "X-Admin-Resume: true" --data-binary @"$T/r1.body"
code s2dup 200
cmp -s "$T/s2.b" "$T/s2dup.b" && ok || bad "duplicate POST got a different answer"
has srv/server.log "event=replayed"
# the same step with another body is a replay attack: the session ends
printf '\257\200\043\002\220\000\000\000' >"$T/other.body"
post s2bad "$NEXT" -H "$P" -H "$F1" -H "$RCT" -H "X-Admin-Script-Status: ok" --data-binary @"$T/other.body"
code s2bad 409
has srv/server.log 'reason="replayed or out-of-order POST"'
[ "$(job_state "$ID1")" = "pending 1" ] && ok || bad "after a replay: job $(job_state "$ID1"), want pending 1"
post s3 "$NEXT" -H "$P" -H "$F1" -H "$RCT" -H "X-Admin-Script-Status: ok" --data-binary @"$T/r1.body"
code s3 404        # the dialog is gone

# --- each of these ends its session with its reason; the job stays pending
hostile() { # hostile NAME WANT-CODE REASON curl-args... (FROM, STEP may override)
    _n=$1 _w=$2 _r=$3; shift 3
    open_dialog ${_n}0
    post $_n "$(echo "$NEXT" | sed "s/s=1\$/s=${STEP:-1}/")" -H "$P" -H "${FROM:-$F1}" "$@"
    code $_n $_w
    has srv/server.log "reason=\"$_r"
    [ "$(job_state "$ID1" | cut -d' ' -f1)" = pending ] && ok || bad "$_n: job $(job_state "$ID1")"
}
hostile ctype 415 "wrong Content-Type" -H "Content-Type: text/plain" -H "X-Admin-Script-Status: ok" --data-binary @"$T/r1.body"
head -c 2000 /dev/zero >"$T/big.body"
hostile big 413 "response script larger than the body limit" -H "$RCT" -H "X-Admin-Script-Status: ok" --data-binary @"$T/big.body"
printf '\257\200\043\377\001' >"$T/mal.body"
hostile malformed 409 "malformed response script" -H "$RCT" -H "X-Admin-Script-Status: ok" --data-binary @"$T/mal.body"
$CODEC encode 6F108408A000000151000000A5049F6501FF9000 0102039000 >"$T/garbage.body"
hostile garbage 409 "malformed INITIALIZE UPDATE response" -H "$RCT" -H "X-Admin-Script-Status: ok" --data-binary @"$T/garbage.body"
hostile status 409 "agent reports script status \"security-error" -H "X-Admin-Script-Status: security-error"
hostile nostatus 409 "agent reports script status \"(none)" -H "$RCT" --data-binary @"$T/r1.body"
FROM="X-Admin-From: //se-id/id/$ID2" hostile from 403 "X-Admin-From does not match" -H "$RCT" -H "X-Admin-Script-Status: ok" --data-binary @"$T/r1.body"
STEP=7 hostile order 409 "replayed or out-of-order POST" -H "$RCT" -H "X-Admin-Script-Status: ok" --data-binary @"$T/r1.body"

# --- a slow client: headers never finished; the server closes within its I/O timeout
start=$(date +%s)
(printf 'POST /server/adminagent HTTP/1.1\r\nHost: localhost\r\nX-Admin-Pro'; sleep 7) |
    (timeout 12 openssl s_client -quiet -connect 127.0.0.1:$PORT -CAfile srv/tls/cert.pem >"$T/slow.out" 2>&1
     date +%s >"$T/slow.end")
[ $(( $(cat "$T/slow.end") - start )) -lt 6 ] && ok || bad "a slow client held its connection $(( $(cat "$T/slow.end") - start )) s"
# (a slow agent between steps: the step timeout, tests/ota/actions.sh)

# --- a card whose keys are not the registry's: wrong card cryptogram, never EXTERNAL AUTHENTICATE
expect 4 "$S" agent --server "https://localhost:$PORT/" --ca srv/tls/cert.pem --card dev3 --retries 0
has srv/server.log "event=wrong-cryptogram kvn=01"
[ "$(job_state "$ID3" | cut -d' ' -f1)" = failed ] && ok || bad "dev3: job $(job_state "$ID3")"

# --- TLS: no trust, old protocol, plain HTTP
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/o.key" -out "$T/other.pem" \
    -subj /CN=localhost -days 1 >/dev/null 2>&1
expect 1 sh -c "echo | timeout 10 openssl s_client -connect 127.0.0.1:$PORT -servername localhost -CAfile '$T/other.pem' -verify_return_error"
# (s_client's own exit status reports the server's close without close_notify after a bare handshake)
expect 0 sh -c "echo | timeout 10 openssl s_client -connect 127.0.0.1:$PORT -servername localhost -CAfile srv/tls/cert.pem -verify_return_error -verify_hostname localhost; true"
has "$T/out" "Verify return code: 0 (ok)"
has "$T/out" "Verified peername: localhost"
has "$T/out" "New, TLSv1.[23]"
expect 1 sh -c "echo | timeout 10 openssl s_client -connect 127.0.0.1:$PORT -tls1_1 -CAfile srv/tls/cert.pem"
expect 0 sh -c "curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -X POST -H '$P' -H '$F1' http://127.0.0.1:$PORT/server/adminagent || true"
hasnt "$T/out" "200"
expect 2 "$S" agent --server "https://localhost:$PORT/" --ca "$T/other.pem" --card dev2 --retries 0
expect 1 "$S" agent --server "http://localhost:$PORT/" --ca srv/tls/cert.pem --card dev2

# --- SIGTERM with a session in flight: ended cleanly, resumed by the next start
open_dialog term0
stop_pid $SRV_PID; SRV_PID=
has srv/server.log 'reason="server shutdown"'
has srv/server.log "event=stopped"
expect 0 server_start srv --max-body 1024 --step-timeout 30000 --lease 40000 --io-timeout 2

# --- the other devices, and dev1 itself, finish their jobs
expect 0 "$S" agent --server "https://localhost:$PORT/" --ca srv/tls/cert.pem --card dev1
expect 0 "$S" agent --server "https://localhost:$PORT/" --ca srv/tls/cert.pem --card dev2
expect 0 "$S" ota campaign show --dir srv h --json
json "$T/out" "d['done'] == 2 and d['failed'] == 1"
curl -sS --max-time 5 "http://127.0.0.1:$ADMIN/metrics" >"$T/metrics"
has "$T/metrics" "^scpkit_ota_sessions_completed_total 2"
has "$T/metrics" "^scpkit_ota_sessions_aborted_total"
has "$T/metrics" "^process_cpu_seconds_total"
BE=sqlite; [ -n "${SCPKIT_OTA_DB:-}" ] && BE=postgresql
has "$T/metrics" "^scpkit_ota_registry_statements_total{backend=\"$BE\"} [1-9]"
has "$T/metrics" "^scpkit_ota_registry_round_trips_total"
# no key material in the log or the registry: the PUT DATA value appears nowhere either
hasnt srv/server.log "0102 "
expect 0 reg_sql srv "select count(*) from event where what='session-aborted'"
[ "$(cat "$T/out")" -ge 8 ] && ok || bad "aborted sessions recorded: $(cat "$T/out")"
finish ota_hostile
