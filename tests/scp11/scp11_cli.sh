#!/bin/bash
# scpkit's SCP11 options against the in-process virtual card (no pcscd):
# card init --oce-ca, info --json, apdu over 11b/11a/11c, PUT KEY of an
# SCP03 key set over SCP11a (encrypted under the S-DEK) and refused over
# SCP11b, the wrong anchor and missing options refused with their exit codes.
set -u
SCPKIT=${1:?usage: scp11_cli.sh path/to/scpkit}
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/scp11cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
. "$HERE/../lib.sh"
PY=python3
for p in /usr/bin/python3 python3; do
    if "$p" -c "import cryptography" 2>/dev/null; then PY=$p; break; fi
done
S=$SCPKIT
K=000102030405060708090A0B0C0D0E0F

expect 0 "$PY" "$HERE/scp11_client.py" mkoce "$T"
expect 0 "$S" card init --state "$T/yk" --oce-ca "$T/oce-ca.pem"
[ -f "$T/yk/sd-ca.pem" ] && ok || bad "no sd-ca.pem"
expect 0 "$S" info --card "$T/yk" --json
json "$T/out" '[e["variant"] for e in d["scp11"]] == ["11b", "11a", "11c"] and all(e["curve"] == "P-256" for e in d["scp11"])'
CA="$T/yk/sd-ca.pem"
OCE="--oce-key $T/oce.key --oce-chain $T/oce.pem"
expect 0 "$S" apdu --card "$T/yk" --scp 11b --sd-ca "$CA" --json 80CA00E000
json "$T/out" 'd["ok"] and d["responses"][0]["sw"] == "9000"'
for v in 11a 11c; do
    expect 0 "$S" apdu --card "$T/yk" --scp $v --sd-ca "$CA" $OCE 80CA00E000
    has "$T/out" "9000"
done
# an SCP03 key set put over SCP11a (S-DEK), then used
expect 0 "$S" keys put --card "$T/yk" --scp 11a --sd-ca "$CA" $OCE --new-kvn 2 --new-key $K
expect 0 "$S" keys list --card "$T/yk" --kvn 2 --key $K
has "$T/out" "KVN 02 key 01: AES-128"
# refusals: key management over 11b (card 6982 -> exit 4), the wrong anchor
# (exit 3), options missing (exit 1)
expect 4 "$S" keys put --card "$T/yk" --scp 11b --sd-ca "$CA" --new-kvn 3 --new-key $K
has "$T/err" "6982"
expect 3 "$S" apdu --card "$T/yk" --scp 11b --sd-ca "$T/oce-ca.pem" 80CA00E000
has "$T/err" "signature does not verify against the trust anchor"
expect 1 "$S" apdu --card "$T/yk" --scp 11a --sd-ca "$CA" 80CA00E000
has "$T/err" "needs --oce-key FILE and --oce-chain FILE"
expect 1 "$S" apdu --card "$T/yk" --scp 11b 80CA00E000
has "$T/err" "needs --sd-ca"
expect 1 "$S" apdu --card "$T/yk" --scp 12 80CA00E000
# a gp23 card without SCP11 keys: 11b is not offered
expect 0 "$S" card init --state "$T/gp" --profile gp23
expect 0 "$S" info --card "$T/gp" --json
json "$T/out" 'd["scp11"] == []'
expect 4 "$S" apdu --card "$T/gp" --scp 11b --sd-ca "$T/gp/sd-ca.pem" 80CA00E000
has "$T/err" "6A88"
# S16: a card whose i parameter has b1 answers SCP11 with 16-byte MACs;
# the host reads that from the recognition data, as for SCP03
expect 0 "$S" card init --state "$T/s16" --scp-i 61 --oce-ca "$T/oce-ca.pem"
expect 0 "$S" apdu --card "$T/s16" --scp 11b --sd-ca "$T/s16/sd-ca.pem" -v 80CA00E000
has "$T/err" "SCP11b channel open: key 13/01, level 33, S16"
has "$T/err" "^> 84CA00E010[0-9A-F]\{32\}00 "
has "$T/out" "^E032.* 9000"
for v in 11a 11c; do
    expect 0 "$S" apdu --card "$T/s16" --scp $v --sd-ca "$T/s16/sd-ca.pem" $OCE -v 80CA00E000
    has "$T/err" "level 33, S16"
done
finish scp11_cli
