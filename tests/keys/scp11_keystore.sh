#!/bin/sh
# SCP11 with the off-card entity's key in the keystore (issue 16 item 5),
# end to end with the in-process virtual card: an EC CA key and an OCE key
# made in the token, the CA's certificate and the OCE chain issued by
# `scpkit keystore ca` (signed in the token), the card given the CA
# (`card init --oce-ca`), then SCP11a and SCP11c opened with
# --keystore DIR --oce-label L: ShSes comes from CKM_ECDH1_DERIVE inside the
# token, each one an audit record. An imported OCE key (PKCS#8 file, then
# unwrapped into the token) works the same. Tampered twins: a wrong label,
# a key not active (pre-activation, then suspended), a chain from another
# CA (the card refuses it), a chain whose leaf is another key, --oce-key
# and --oce-label together, a CA certificate that is not the CA key's.
# `audit verify` holds at the end. Usage: scp11_keystore.sh path/to/scpkit
set -u
S=${1:?usage: scp11_keystore.sh path/to/scpkit}
T=$(mktemp -d /tmp/scpkit-ks11.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
KS=$T/ks
. "$(dirname "$0")/../lib.sh"
export SCPKIT_SO_PIN=so-pin-4711 SCPKIT_USER_PIN=user-pin-0815 SCPKIT_ACTOR=scp11-test
cust() { SCPKIT_CUSTODIAN_PIN_1=alice-pin SCPKIT_CUSTODIAN_PIN_2=bob-pin-2 "$@"; }
act() { cust expect 0 "$S" keystore activate --dir "$KS" "$1" --reason "in service" --custodian alice --custodian bob; }
audits() { sqlite3 "$KS/keystore.db" "SELECT COUNT(*) FROM audit WHERE op = '$1' AND result = ${2:-0}"; }

expect 0 "$S" keystore init --dir "$KS"
SCPKIT_CUSTODIAN_PIN=alice-pin expect 0 "$S" keystore custodian-add --dir "$KS" alice
SCPKIT_CUSTODIAN_PIN=bob-pin-2 expect 0 "$S" keystore custodian-add --dir "$KS" bob

# --- the CA and the OCE key, made in the token
expect 0 "$S" keystore generate --dir "$KS" --label oca --type ec-p256
has "$T/out" "oca:1 ec-p256 KCV [0-9A-F]* pre-activation (generated)"
expect 5 "$S" keystore ca cert --dir "$KS" --ca oca --cn "Lab OCE CA" --out "$T/ca.pem"
has "$T/err" "pre-activation: only an active key may be used"
act oca:1
expect 0 "$S" keystore ca cert --dir "$KS" --ca oca --cn "Lab OCE CA" --out "$T/ca.pem"
expect 0 openssl x509 -in "$T/ca.pem" -noout -text
has "$T/out" "CA:TRUE"
has "$T/out" "Certificate Sign"
expect 0 "$S" keystore generate --dir "$KS" --label oce --type ec-p256
act oce:1
expect 0 "$S" keystore ca issue --dir "$KS" --ca oca --ca-cert "$T/ca.pem" --subject oce --cn "Lab OCE" --out "$T/oce.pem"
# OpenSSL agrees: the leaf verifies under the CA, for key agreement
expect 0 openssl verify -CAfile "$T/ca.pem" "$T/oce.pem"
expect 0 openssl x509 -in "$T/oce.pem" -noout -text
has "$T/out" "Key Agreement"
[ "$(grep -c 'BEGIN CERTIFICATE' "$T/oce.pem")" = 1 ] && ok || bad "the root went into the OCE chain"
expect 0 "$S" keystore public --dir "$KS" oce --out "$T/oce-pub.pem"
expect 0 openssl x509 -in "$T/oce.pem" -noout -pubkey
cmp -s "$T/out" "$T/oce-pub.pem" && ok || bad "the leaf's key is not the token's"

# --- the card trusts the lab CA; 11a and 11c with SK.OCE in the token
expect 0 "$S" card init --state "$T/yk" --oce-ca "$T/ca.pem"
CA="$T/yk/sd-ca.pem"
before=$(audits ecdh)
for v in 11a 11c; do
    expect 0 "$S" apdu --card "$T/yk" --scp $v --sd-ca "$CA" --keystore "$KS" --oce-label oce --oce-chain "$T/oce.pem" --json 80CA00E000
    json "$T/out" 'd["ok"] and d["responses"][0]["sw"] == "9000"'
done
[ "$(audits ecdh)" = $((before + 2)) ] && ok || bad "no audit record per ECDH: $(audits ecdh) after $before"
# key management over 11a with the token's key (PUT KEY under the S-DEK)
expect 0 "$S" keys put --card "$T/yk" --scp 11a --sd-ca "$CA" --keystore "$KS" --oce-label oce:1 --oce-chain "$T/oce.pem" --new-kvn 2 --new-key 000102030405060708090A0B0C0D0E0F
expect 0 "$S" keys list --card "$T/yk" --kvn 2 --key 000102030405060708090A0B0C0D0E0F
has "$T/out" "KVN 02 key 01: AES-128"

# --- an imported OCE key (PKCS#8 file -> unwrapped into the token)
expect 0 openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/imp.key"
expect 0 "$S" keystore import-ec --dir "$KS" --label imp --in "$T/imp.key"
has "$T/out" "imp:1 ec-p256 KCV [0-9A-F]* pre-activation (import)"
act imp:1
expect 0 "$S" keystore ca issue --dir "$KS" --ca oca --ca-cert "$T/ca.pem" --pub "$T/imp.key" --cn "imported OCE" --out "$T/imp.pem"
expect 0 "$S" apdu --card "$T/yk" --scp 11a --sd-ca "$CA" --keystore "$KS" --oce-label imp --oce-chain "$T/imp.pem" 80CA00E000
has "$T/out" "9000"
expect 5 "$S" keystore import-ec --dir "$KS" --label imp3 --in "$T/ca.pem"
hasnt "$T/out" "imp3"

# --- tampered twins
# a label the keystore does not have
expect 5 "$S" apdu --card "$T/yk" --scp 11a --sd-ca "$CA" --keystore "$KS" --oce-label nosuch --oce-chain "$T/oce.pem" 80CA00E000
has "$T/err" "oce-label nosuch"
# an AES master under that name
expect 0 "$S" keystore generate --dir "$KS" --label aes --type aes128
expect 1 "$S" apdu --card "$T/yk" --scp 11a --sd-ca "$CA" --keystore "$KS" --oce-label aes --oce-chain "$T/oce.pem" 80CA00E000
has "$T/err" "not an EC key pair"
# a key not active: pre-activation, then suspended
expect 0 "$S" keystore generate --dir "$KS" --label idle --type ec-p256
expect 0 "$S" keystore ca issue --dir "$KS" --ca oca --ca-cert "$T/ca.pem" --subject idle --cn "idle OCE" --out "$T/idle.pem"
expect 5 "$S" apdu --card "$T/yk" --scp 11a --sd-ca "$CA" --keystore "$KS" --oce-label idle --oce-chain "$T/idle.pem" 80CA00E000
has "$T/err" "pre-activation: only an active key may be used"
expect 0 "$S" keystore state --dir "$KS" oce:1 suspended --reason pause
expect 5 "$S" apdu --card "$T/yk" --scp 11c --sd-ca "$CA" --keystore "$KS" --oce-label oce --oce-chain "$T/oce.pem" 80CA00E000
has "$T/err" "suspended: only an active key may be used"
act oce:1
# a chain from another CA (its own key in the token): the card refuses the PSO
expect 0 "$S" keystore generate --dir "$KS" --label rogue --type ec-p256
act rogue:1
expect 0 "$S" keystore ca cert --dir "$KS" --ca rogue --cn "Rogue CA" --out "$T/rogue-ca.pem"
expect 0 "$S" keystore ca issue --dir "$KS" --ca rogue --ca-cert "$T/rogue-ca.pem" --subject oce --cn "Lab OCE" --out "$T/rogue.pem"
expect 3 "$S" apdu --card "$T/yk" --scp 11a --sd-ca "$CA" --keystore "$KS" --oce-label oce --oce-chain "$T/rogue.pem" 80CA00E000
has "$T/err" "OCE certificate 1 of 1 refused by the card (PSO): 6A80"
# a chain whose leaf is another key than the label's
expect 5 "$S" apdu --card "$T/yk" --scp 11a --sd-ca "$CA" --keystore "$KS" --oce-label oce --oce-chain "$T/imp.pem" 80CA00E000
has "$T/err" "is not for the keystore key oce"
# both key sources, or no keystore
expect 1 "$S" apdu --card "$T/yk" --scp 11a --sd-ca "$CA" --keystore "$KS" --oce-label oce --oce-key "$T/imp.key" --oce-chain "$T/oce.pem" 80CA00E000
expect 1 "$S" apdu --card "$T/yk" --scp 11a --sd-ca "$CA" --oce-label oce --oce-chain "$T/oce.pem" 80CA00E000
has "$T/err" "needs --keystore DIR"
# a CA certificate that is not the CA key's; a self-signed cert of another key
expect 1 "$S" keystore ca issue --dir "$KS" --ca oca --ca-cert "$T/rogue-ca.pem" --subject oce --cn x --out "$T/x.pem"
has "$T/err" "the issuer certificate's public key is not the key of oca"
[ ! -e "$T/x.pem" ] && ok || bad "a certificate was written for a wrong issuer"
# every ECDH was recorded, refusals included; the audit holds
[ "$(audits ecdh)" -ge 4 ] && ok || bad "ECDH audit records: $(audits ecdh)"
[ "$(sqlite3 "$KS/keystore.db" "SELECT COUNT(*) FROM audit WHERE op = 'ecdh' AND result != 0")" -ge 2 ] && ok || bad "refused ECDHs not recorded"
expect 0 "$S" audit verify --dir "$KS"
expect 0 "$S" keystore list --dir "$KS"
has "$T/out" "ec-p256"
# the private keys are not in any token file in clear (the token encrypts
# them; the imported scalar appears nowhere)
D=$(openssl pkey -in "$T/imp.key" -noout -text 2>/dev/null | sed -n '/priv:/,/pub:/p' | grep -v 'priv:\|pub:' | tr -d ' :\n' | sed 's/^00//' | tr a-f A-F)
if [ -n "$D" ]; then
    found=0
    for f in $(find "$KS" -type f); do
        xxd -p "$f" | tr -d '\n' | tr a-f A-F | grep -q "$D" && found=1
    done
    [ $found -eq 0 ] && ok || bad "the imported private scalar is in a keystore file"
else
    bad "could not read the test key's scalar"
fi
finish scp11_keystore
