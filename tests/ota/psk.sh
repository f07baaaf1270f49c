#!/bin/sh
# PSK-TLS (issue 14): `ota serve --psk-listen` speaks the same Amd B exchange
# over TLS 1.2 with TLS_PSK_WITH_AES_128_CBC_SHA256 only; each device's PSK
# is diversified in the keystore's token from a PSK master by device id
# (never stored, never printed) and its PSK identity is its device id.
# The agent does PSK through libcurl (libcurl has no PSK option; its
# OpenSSL backend hands over the SSL_CTX, where OpenSSL's PSK callback goes),
# and openssl s_client checks the listener independently.
# Happy paths: agent and s_client with the device's PSK. Tampered twins:
# a wrong PSK, another device's identity with our PSK, an unknown identity,
# a non-PSK cipher, TLS 1.3, certificate TLS, plain HTTP: all refused at
# the handshake. X-Admin-From bound to the TLS identity (another device's
# real PSK, our X-Admin-From): 403, logged, nothing changed. The same
# binding with client certificates (`--client-ca`, CN = device id).
set -u
S=${1:?usage: psk.sh path/to/scpkit}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/ota_lib.sh"
ota_begin psk

expect 0 keystore_setup ks
expect 0 "$S" keystore generate --dir ks --label psk --type aes128
SCPKIT_CUSTODIAN_PIN_1=alice-pin-1 SCPKIT_CUSTODIAN_PIN_2=bob-pin-22 expect 0 \
    "$S" keystore activate --dir ks psk:1 --reason test --custodian alice --custodian bob
expect 0 "$S" ota init --dir srv --keystore ks --self-signed localhost
for d in 1 2; do
    id=$(device_setup ks dev$d) && [ -n "$id" ] && ok || bad "device $d"
    eval ID$d=$id
    expect 0 "$S" ota device add --dir srv --id "$id" --master fleet:1 --kdf kdf3 --kvn 1
    expect 0 "$S" ota device psk --dir srv --id "$id" --psk-master psk:1 --out d$d.psk
    [ "$(stat -c %a d$d.psk)" = 600 ] && [ "$(wc -c <d$d.psk)" = 33 ] && ok || bad "psk file $d"
    hasnt "$T/out" "$(cat d$d.psk)"
done
[ "$(cat d1.psk)" != "$(cat d2.psk)" ] && ok || bad "two devices, one PSK"
expect 1 "$S" ota device psk --dir srv --id NOSUCH --psk-master psk:1 --out x.psk
expect 0 "$S" keystore generate --dir ks --label psk2 --type aes128          # pre-activation
expect 2 "$S" ota device psk --dir srv --id "$ID1" --psk-master psk2:1 --out x.psk
[ ! -e x.psk ] && ok || bad "a PSK from an inactive master"
# --psk-listen needs an active --psk-master
expect 5 "$S" ota serve --dir srv --listen 127.0.0.1:0 --psk-listen 127.0.0.1:0 --psk-master psk2:1
expect 0 "$S" ota campaign create --dir srv --name pd --target all --put-data 0101=0102
expect 0 server_start srv --psk-listen 127.0.0.1:0 --psk-master psk:1
PSKPORT=$(cat srv/psk.port)
PSKURL="https://127.0.0.1:$PSKPORT/"
job() { "$S" ota campaign show --dir srv "$2" --json | python3 -c \
    "import json,sys; print([x['state'] for x in json.load(sys.stdin)['devices'] if x['id']=='$1'][0])"; }
sclient() { # sclient ARGS...: handshake + a GET (answered 405: POST only), output in $T/sc
    printf 'GET /server/adminagent HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' |
        timeout 20 openssl s_client -connect "127.0.0.1:$PSKPORT" -tls1_2 -ign_eof "$@" >"$T/sc" 2>&1
}

# --- openssl s_client: the PSK handshake, and what it refuses
sclient -psk_identity "$ID2" -psk "$(cat d2.psk)" -cipher PSK-AES128-CBC-SHA256
has "$T/sc" "Cipher is PSK-AES128-CBC-SHA256"
has "$T/sc" "Protocol  *: TLSv1.2"
has "$T/sc" "HTTP/1.1 405"
hasnt "$T/sc" "BEGIN CERTIFICATE"                            # no certificate involved
sed 's/^\(.\)/X\1/; s/^X0/1/; s/^X[^0]/0/' d2.psk >wrong.psk   # first digit changed
[ "$(cut -c2- wrong.psk)" = "$(cut -c2- d2.psk)" ] && [ "$(cat wrong.psk)" != "$(cat d2.psk)" ] &&
    ok || bad "wrong PSK file"
sclient -psk_identity "$ID2" -psk "$(cat wrong.psk)" -cipher PSK-AES128-CBC-SHA256
hasnt "$T/sc" "HTTP/1.1"
sclient -psk_identity "$ID2" -psk "$(cat d1.psk)" -cipher PSK-AES128-CBC-SHA256   # another device's identity
hasnt "$T/sc" "HTTP/1.1"
sclient -psk_identity NOSUCHDEVICE -psk "$(cat d1.psk)" -cipher PSK-AES128-CBC-SHA256
hasnt "$T/sc" "HTTP/1.1"
has srv/server.log "event=psk-refused identity=NOSUCHDEVICE reason=\"unknown device\""
sclient -psk_identity '<bad id>' -psk "$(cat d1.psk)" -cipher PSK-AES128-CBC-SHA256
hasnt "$T/sc" "HTTP/1.1"
has srv/server.log "identity=(not a device id) reason=\"malformed identity\""
sclient -cipher ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256     # not PSK
hasnt "$T/sc" "HTTP/1.1"
printf 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
    timeout 20 openssl s_client -connect "127.0.0.1:$PSKPORT" -tls1_3 -ign_eof -psk_identity "$ID2" \
    -psk "$(cat d2.psk)" >"$T/sc" 2>&1
hasnt "$T/sc" "HTTP/1.1"
# plain HTTP gets no answer
c=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PSKPORT/server/adminagent" 2>/dev/null)
[ "$c" = 000 ] && ok || bad "plain HTTP answered $c"

# --- the agent over PSK-TLS
AG() { _c=$1; shift; "$S" agent --server "$PSKURL" --card "$_c" --retries 0 "$@"; }
expect 2 AG dev1 --psk-key-file wrong.psk                     # wrong PSK (dev1's identity)
expect 2 AG dev1 --psk-key-file d2.psk                        # another device's key, own identity
expect 2 AG dev1 --psk-identity "$ID2" --psk-key-file d1.psk  # another device's identity, own key
expect 2 "$S" agent --server "$PSKURL" --ca srv/tls/cert.pem --card dev1 --retries 0  # certificate TLS
# a PSK agent pointed at the certificate listener: no PSK suite there, no
# fallback to an unverified certificate
expect 2 "$S" agent --server "https://127.0.0.1:$PORT/" --card dev1 --retries 0 --psk-key-file d1.psk
[ "$(job "$ID1" pd)" = pending ] && ok || bad "refused handshakes changed the job"
# another device's real PSK and identity, our X-Admin-From: TLS is fine, the claim is not
expect 4 AG dev1 --psk-identity "$ID2" --psk-key-file d2.psk
has "$T/err" "X-Admin-From does not match the TLS identity"
has srv/server.log "device=$ID1 event=refused reason=\"X-Admin-From does not match the TLS identity\" tls_identity=$ID2"
[ "$(job "$ID1" pd)" = pending ] && [ "$(job "$ID2" pd)" = pending ] && ok || bad "the refused claim changed a job"
[ "$(reg_sql srv "SELECT count(*) FROM event WHERE device='$ID1' AND what='refused' AND detail LIKE '%TLS identity%'")" = 1 ] &&
    [ "$(reg_sql srv "SELECT count(*) FROM device WHERE lease_owner IS NOT NULL")" = 0 ] && ok ||
    bad "registry: the refusal event, or a lease taken"
# the happy paths
expect 0 AG dev1 --psk-key-file d1.psk
has "$T/out" "session done"
[ "$(job "$ID1" pd)" = done ] && ok || bad "dev1 over PSK: $(job "$ID1" pd)"
expect 0 AG dev2 --psk-key-file d2.psk --psk-identity "$ID2"
[ "$(job "$ID2" pd)" = done ] && ok || bad "dev2 over PSK: $(job "$ID2" pd)"
curl -sS --max-time 10 "http://127.0.0.1:$ADMIN/metrics" >"$T/metrics" && ok || bad "metrics"
has "$T/metrics" "scpkit_ota_identity_refused_total 1"
has "$T/metrics" "scpkit_ota_sessions_completed_total 2"
# the PSKs were never printed or logged
for f in srv/server.log srv/server.err; do hasnt $f "$(cat d1.psk)"; hasnt $f "$(cat d2.psk)"; done
stop_pid $SRV_PID; SRV_PID=

# --- X-Admin-From bound to a client certificate (--client-ca, CN = device id)
mkcert() { # mkcert NAME CN [CA]: NAME.crt/NAME.key, signed by CA (else self-signed)
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
        -out "$1.csr" -subj "/CN=$2" 2>/dev/null &&
    if [ -n "${3:-}" ]; then
        openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial \
            -out "$1.crt" -days 2 2>/dev/null
    else
        openssl x509 -req -in "$1.csr" -signkey "$1.key" -out "$1.crt" -days 2 2>/dev/null
    fi
}
mkcert ca "scpkit lab device CA" && mkcert c1 "$ID1" ca && mkcert c2 "$ID2" ca &&
    mkcert rogue "$ID1" && ok || bad "certificates"
expect 0 "$S" ota campaign create --dir srv --name pd2 --target all --put-data 0102=0304
expect 0 server_start srv --client-ca ca.crt
CU="https://localhost:$PORT/"
AC() { _c=$1; shift; "$S" agent --server "$CU" --ca srv/tls/cert.pem --card "$_c" --retries 0 "$@"; }
expect 2 AC dev1                                      # no client certificate
expect 2 AC dev1 --cert rogue.crt --key rogue.key     # the right CN, not from the CA
expect 4 AC dev1 --cert c2.crt --key c2.key           # another device's certificate
has "$T/err" "X-Admin-From does not match the TLS identity"
has srv/server.log "device=$ID1 event=refused reason=\"X-Admin-From does not match the TLS identity\" tls_identity=$ID2"
[ "$(job "$ID1" pd2)" = pending ] && ok || bad "the refused claim changed the job"
expect 0 AC dev1 --cert c1.crt --key c1.key
[ "$(job "$ID1" pd2)" = done ] && ok || bad "dev1 with its certificate: $(job "$ID1" pd2)"
stop_pid $SRV_PID; SRV_PID=
hasnt srv/server.err "AddressSanitizer\|LeakSanitizer\|runtime error"
finish ota_psk
