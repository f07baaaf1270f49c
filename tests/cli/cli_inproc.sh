#!/bin/sh
# End-to-end tests of the scpkit CLI against the virtual card in process
# (--card DIR, no pcscd): info, every level, S16, AES-256, put/delete/
# rotate, apdu through the channel, diversification (GPPro KDF3 known
# answer), wrong-key behaviour, key-file modes, redaction, and --json
# output parsed by a JSON parser. Usage: cli_inproc.sh path/to/scpkit
set -u
S=${1:?usage: cli_inproc.sh path/to/scpkit}
[ -x "$S" ] || { echo "no scpkit binary at $S" >&2; exit 1; }
T=$(mktemp -d /tmp/scpkit-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
. "$(dirname "$0")/../lib.sh"

K256=000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F

# --- a YubiKey-like card: info without authentication
# --help after any command or subcommand: usage on stdout, exit 0
for c in "keys put" "keystore init" "audit" "card init" "apdu -v"; do
    expect 0 "$S" $c --help
    has "$T/out" "scpkit"
done
expect 1 "$S" audit nonsense
expect 0 "$S" card init --state "$T/yk"
expect 0 "$S" info --card "$T/yk"
has "$T/out" "SCP03:.*i = 60"
has "$T/out" "strongest level 33"
has "$T/out" "KVN FF key 01: AES-128"
has "$T/out" "ic_fabricator"
hasnt "$T/err" "warning"          # info does not authenticate
expect 0 "$S" info --card "$T/yk" --json
json "$T/out" 'd["ok"] and d["recognition"]["scp"][0]["i"] == "60" and len(d["keys"]) == 3 and "cplc" in d and "lifecycle" not in d'
expect 0 "$S" info --card "$T/yk" --auth --json       # authenticates for the life cycle
json "$T/out" 'd["lifecycle"] == "SECURED"'
has "$T/err" "warning: no key given"

# --- every level on a gp23 card (i = 71: S16), strongest by default
expect 0 "$S" card init --state "$T/gp" --profile gp23
for l in mac:01 mac+enc:03 mac+rmac:11 mac+enc+rmac:13 all:33 13:13; do
    expect 0 "$S" apdu --card "$T/gp" --level "${l%%:*}" -v 80CA00E000
    has "$T/err" "level ${l##*:}, S16"
    has "$T/out" "^E012C00401FF8810.* 9000"
done
expect 0 "$S" apdu --card "$T/gp" -v 80CA00E000
has "$T/err" "level 33, S16"
has "$T/err" "warning: no key given"
# a level the YubiKey profile (level 33 only, i = 60 has no S16) does not offer
expect 0 "$S" apdu --card "$T/yk" -v 80CA00E000
has "$T/err" "level 33, S8"
expect 1 "$S" apdu --card "$T/yk" --level 31 80CA00E000

# --- AES-256 key set, through the channel, with --json
expect 0 "$S" card init --state "$T/a256" --profile gp23 --key $K256 --kvn 5
expect 0 "$S" apdu --card "$T/a256" --key $K256 --json 80CA00E000 80CA006600
json "$T/out" 'd["ok"] and d["responses"][0]["sw"] == "9000" and d["responses"][0]["data"].startswith("E012C004010588") and len(d["responses"]) == 2'
hasnt "$T/err" "warning"

# --- wrong key: exit 3, one INITIALIZE UPDATE, no EXTERNAL AUTHENTICATE,
# no retry; the card counts each INITIALIZE UPDATE as a try until an
# EXTERNAL AUTHENTICATE proves the key, so its count goes down all the same
BADK=FF$(echo $K256 | cut -c3-)
expect 3 "$S" apdu --card "$T/a256" --key $BADK -v 80CA00E000
has "$T/err" "cryptogram does not match"
has "$T/err" "not retrying"
if [ "$(grep -c 'INITIALIZE UPDATE' "$T/err")" -eq 1 ]; then ok; else bad "IU sent more than once"; fi
hasnt "$T/err" "EXTERNAL AUTHENTICATE"
expect 3 "$S" apdu --card "$T/a256" --key $BADK --json 80CA00E000
json "$T/out" 'not d["ok"] and d["exit_code"] == 3 and "cryptogram" in d["error"]'
expect 0 "$S" card show --state "$T/a256"
has "$T/out" "failures 2"
# the right key clears the count
expect 0 "$S" apdu --card "$T/a256" --key $K256 80CA00E000
expect 0 "$S" card show --state "$T/a256"
has "$T/out" "failures 0"
# a host that does send a bad EXTERNAL AUTHENTICATE: one try (counted at
# INITIALIZE UPDATE, not twice), and scpkit reports the card's answer in words
expect 4 "$S" apdu --card "$T/a256" --plain 805005001000112233445566778899AABBCCDDEEFF 8482330020$(printf '%064d' 0)
has "$T/out" "^6300 (authentication failed)"
expect 0 "$S" card show --state "$T/a256"
has "$T/out" "failures 1"

# --- put / list / delete on the gp23 card (factory keys; a GP card keeps
# its initial set when a new one is added: only the yubikey profile drops it)
N2=202122232425262728292A2B2C2D2E2F
N3=303132333435363738393A3B3C3D3E3F
expect 0 "$S" keys put --card "$T/gp" --new-kvn 2 --new-key $N2 -v
has "$T/out" "KVN 02 added"
hasnt "$T/err" "$N2" # never in the trace
has "$T/err" "key data redacted"
expect 0 "$S" keys list --card "$T/gp" --json
json "$T/out" 'any(k["kvn"] == 2 for k in d["keys"]) and any(k["kvn"] == 255 for k in d["keys"])'
expect 0 "$S" keys put --card "$T/gp" --kvn 2 --key $N2 --new-kvn 3 --new-key $N3
expect 0 "$S" apdu --card "$T/gp" --kvn 3 --key $N3 80CA00E000
# --replace: same KVN, new keys; without it the set in use is refused
# before the card is asked
expect 1 "$S" keys put --card "$T/gp" --kvn 3 --key $N3 --new-kvn 3 --new-key $N2
has "$T/err" "the set in use: add --replace"
expect 0 "$S" keys put --card "$T/gp" --kvn 3 --key $N3 --new-kvn 3 --new-key $N2 --replace
has "$T/out" "KVN 03 replaced"
expect 3 "$S" apdu --card "$T/gp" --kvn 3 --key $N3 80CA00E000
expect 0 "$S" keys put --card "$T/gp" --kvn 3 --key $N2 --new-kvn 3 --new-key $N3 --replace
expect 0 "$S" keys delete --card "$T/gp" --kvn 2 --auth-kvn 3 --key $N3 --json
json "$T/out" 'd["deleted_kvn"] == 2'
expect 0 "$S" keys list --card "$T/gp" --json
json "$T/out" 'not any(k["kvn"] == 2 for k in d["keys"]) and any(k["kvn"] == 3 for k in d["keys"])'
expect 4 "$S" apdu --card "$T/gp" --kvn 2 --key $N2 80CA00E000
has "$T/err" "6A88 (referenced data not found)"
expect 1 "$S" keys put --card "$T/gp" --key $N3 --new-kvn 4 --generate   # --generate needs --out

# --- rotate the factory keys of the YubiKey-like card (AES-128, level 33)
expect 0 "$S" keys rotate --card "$T/yk" --new-kvn 1 --generate --out "$T/k1.json" --json
json "$T/out" 'd["ok"] and d["old_kvn"] == 255 and d["new_kvn"] == 1 and d["level"] == 0x33 and len(d["kcv_enc"]) == 6'
if [ "$(stat -c %a "$T/k1.json")" = 600 ]; then ok; else bad "key file mode $(stat -c %a "$T/k1.json")"; fi
hasnt "$T/out" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["enc"])' "$T/k1.json")"
expect 3 "$S" apdu --card "$T/yk" 80CA00E000         # the factory keys are gone
expect 0 "$S" apdu --card "$T/yk" --keyfile "$T/k1.json" 80CA00E000
has "$T/out" "^E01AC0040101"   # + the SCP11b key 13/01 (C0 06 13 01 B1 20 F0 00)
expect 5 "$S" keys rotate --card "$T/yk" --keyfile "$T/k1.json" --new-kvn 2 --generate --out "$T/k1.json"
has "$T/err" "never overwrites"
chmod 644 "$T/k1.json"
expect 5 "$S" apdu --card "$T/yk" --keyfile "$T/k1.json" 80CA00E000
has "$T/err" "mode 0644"
chmod 600 "$T/k1.json"
# the YubiKey profile takes AES-128 only: a refused PUT KEY is reported with
# the sets the card holds, and the old keys still work
expect 4 "$S" keys rotate --card "$T/yk" --keyfile "$T/k1.json" --new-kvn 2 --generate --key-len 32 --out "$T/k2.json"
has "$T/err" "old set KVN 01: yes; new set KVN 02: no"
expect 0 "$S" apdu --card "$T/yk" --keyfile "$T/k1.json" 80CA00E000
# rotate again, AES-256 on the gp23 card, from a key file
expect 0 "$S" keys rotate --card "$T/gp" --kvn 3 --key $N3 --new-kvn 4 --generate --key-len 32 --out "$T/k4.json"
has "$T/out" "KVN 03 replaced by KVN 04 (AES-256"
expect 4 "$S" apdu --card "$T/gp" --kvn 3 --key $N3 80CA00E000
expect 0 "$S" apdu --card "$T/gp" --keyfile "$T/k4.json" -v 80CA00E000
has "$T/err" "KVN 04, level 33, S16"

# --- key files that are refused: bad JSON, mixed lengths, a bad KVN, a symlink
printf '{"kvn": 1, "enc": "00' >"$T/bad1.json"
printf '{"kvn": 1, "enc": "%s", "mac": "%s", "dek": "%s"}' $N2 $N2 $K256 >"$T/bad2.json"
printf '{"kvn": 300, "key": "%s"}' $N2 >"$T/bad3.json"
chmod 600 "$T/bad1.json" "$T/bad2.json" "$T/bad3.json"
ln -s "$T/k1.json" "$T/link.json"
for f in bad1 bad2 bad3 link; do
    expect 5 "$S" apdu --card "$T/yk" --keyfile "$T/$f.json" 80CA00E000
    has "$T/err" "refused\|symbolic"
done

# --- status and lifecycle through the channel
expect 0 "$S" status --card "$T/gp" --keyfile "$T/k4.json" --json
json "$T/out" 'd["entries"][0]["kind"] == "ISD" and d["entries"][0]["lifecycle"] == "SECURED"'
# GPC tables 11-4/11-5: the store application answers 07, which is SELECTABLE
json "$T/out" 'any(e["kind"] == "APP" and e["lifecycle"] == "SELECTABLE" for e in d["entries"])'
expect 1 "$S" lifecycle --card "$T/gp" --keyfile "$T/k4.json" terminated     # needs --yes
expect 1 "$S" lifecycle --card "$T/gp" sleepy
expect 0 "$S" lifecycle --card "$T/gp" --keyfile "$T/k4.json" card_locked --json
json "$T/out" 'd["lifecycle"] == "CARD_LOCKED"'
expect 0 "$S" info --card "$T/gp" --keyfile "$T/k4.json" --json
json "$T/out" 'd["lifecycle"] == "CARD_LOCKED"'
expect 0 "$S" lifecycle --card "$T/gp" --keyfile "$T/k4.json" secured
expect 0 "$S" info --card "$T/gp" --keyfile "$T/k4.json" --json
json "$T/out" 'd["lifecycle"] == "SECURED"'


# --- diversification: GlobalPlatformPro TestPlaintextKeys KDF3 known answer
expect 0 "$S" diversify --scheme kdf3 --master 404142434445464748494A4B4C4D4E4F --kdd 00010203040506070809
has "$T/out" "enc: KCV E79C05"
has "$T/out" "mac: KCV D1BD77"
has "$T/out" "dek: KCV 3FDE8C"
hasnt "$T/out" "key "
expect 0 "$S" diversify --scheme kdf3 --master 404142434445464748494A4B4C4D4E4F --kdd 00010203040506070809 --json --show-keys
json "$T/out" 'd["kcv_enc"] == "E79C05" and len(d["enc"]) == 32'
# tampered twin: another KDD gives other KCVs
expect 0 "$S" diversify --scheme kdf3 --master 404142434445464748494A4B4C4D4E4F --kdd 00010203040506070808
hasnt "$T/out" "E79C05"

# --- a diversified card: keys put from diversify, then --kdf/--master
KDD=$("$S" card show --state "$T/gp" | awk '$1 == "kdd" { print $2 }')
M=A0A1A2A3A4A5A6A7A8A9AAABACADAEAF
"$S" diversify --scheme kdf3 --master $M --kdd "$KDD" --show-keys --json >"$T/div.json"
E=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["enc"], d["mac"], d["dek"])' "$T/div.json")
set -- $E
expect 0 "$S" keys put --card "$T/gp" --keyfile "$T/k4.json" --new-kvn 5 --new-enc "$1" --new-mac "$2" --new-dek "$3"
expect 0 "$S" apdu --card "$T/gp" --kvn 5 --kdf kdf3 --master $M 80CA00E000
expect 3 "$S" apdu --card "$T/gp" --kvn 5 --kdf sp800-108 --master $M 80CA00E000

# --- issue 11 item 12: apdu --app on an S16 card (the application does not
# answer GET DATA 66: S8/S16 comes from the ISD, read before selecting it)
expect 0 "$S" card init --state "$T/s16" --profile gp23
expect 0 "$S" apdu --card "$T/s16" --app F07363706B697401 -v 80DA00420101 80CA004200
has "$T/out" "^01 9000"
has "$T/err" "level 33, S16"
if [ "$(grep -c 'INITIALIZE UPDATE' "$T/err")" -eq 1 ]; then ok; else bad "IU sent more than once"; fi
# any number of APDUs: 70 arguments, a file with comments, stdin
set --
i=0; while [ $i -lt 70 ]; do set -- "$@" 80CA00E000; i=$((i + 1)); done
expect 0 "$S" apdu --card "$T/s16" --json "$@"
json "$T/out" 'len(d["responses"]) == 70 and all(r["sw"] == "9000" for r in d["responses"])'
printf '# read the key information\n\n  80 CA 00 E0 00  \r\n80CA006600\n' >"$T/cmds.txt"
expect 0 "$S" apdu --card "$T/s16" --json -f "$T/cmds.txt" 80CA9F7F00
json "$T/out" '[r["command"] for r in d["responses"]] == ["80CA9F7F00", "80CAE00E000"[:0] + "80CA00E000", "80CA006600"]'
printf '80CA00E000\n80CA9F7F00\n' | "$S" apdu --card "$T/s16" --json -f - >"$T/out" 2>"$T/err"
json "$T/out" 'len(d["responses"]) == 2 and d["ok"]'
# a bad line: refused before anything is sent (no INITIALIZE UPDATE)
printf '80CA00E000\n80CA00E0\n80CA0\n' >"$T/bad.txt"
expect 1 "$S" apdu --card "$T/s16" -v -f "$T/bad.txt"
has "$T/err" "line 3 of .*bad.txt.*nothing was sent"
hasnt "$T/err" "INITIALIZE UPDATE"
expect 1 "$S" apdu --card "$T/s16" 80CA00E000 80CA0000FF01
has "$T/err" "argument 2: .*not a well-formed APDU"
# an error status stops the list and says how many were not sent
expect 4 "$S" apdu --card "$T/s16" 80CA00E000 80CAFFFF00 80CA00E000 80CA00E000
has "$T/err" "APDU 2 of 4: the card answered 6A88"
has "$T/err" "the 2 APDUs after it were not sent"
# keys list: GET DATA E0 exactly once
expect 0 "$S" keys list --card "$T/s16" -v
if [ "$(grep -c '^> 80CA00E0' "$T/err")" -eq 1 ]; then ok; else bad "GET DATA E0 sent $(grep -c '^> 80CA00E0' "$T/err") times"; fi
# numbers: every KVN is hex ("010" is 0x10, never octal 8); counts are decimal
expect 0 "$S" card init --state "$T/hx" --profile gp23 --kvn 10
expect 0 "$S" keys list --card "$T/hx" --json
json "$T/out" 'all(k["kvn"] == 0x10 for k in d["keys"])'
expect 0 "$S" apdu --card "$T/hx" --kvn 010 80CA00E000
expect 0 "$S" apdu --card "$T/hx" --kvn 0x10 80CA00E000
expect 1 "$S" apdu --card "$T/hx" --kvn 1G 80CA00E000
has "$T/err" "in hex"
expect 1 "$S" keys put --card "$T/hx" --kvn 10 --new-kvn 20 --generate --key-len 0x10 --out "$T/kl.json"
has "$T/err" "decimal"
expect 1 "$S" keys put --card "$T/hx" --kvn 10 --new-kvn 20 --generate --key-len 016 --out "$T/kl.json"
# key files: one JSON object and nothing after it
printf '{"kvn": 1, "key": "%s"} trailing' $N2 >"$T/bad4.json"
printf '{"kvn": 1, "key": "%s"}{"kvn": 2}' $N2 >"$T/bad5.json"
printf '{"kvn": 1, "key": "%s",}' $N2 >"$T/bad6.json"
printf '{"kvn": 16, "key": "%s"}\n\n' 404142434445464748494A4B4C4D4E4F >"$T/good.json"
chmod 600 "$T/bad4.json" "$T/bad5.json" "$T/bad6.json" "$T/good.json"
for f in bad4 bad5; do
    expect 5 "$S" apdu --card "$T/hx" --keyfile "$T/$f.json" 80CA00E000
    has "$T/err" "after the JSON object"
done
expect 5 "$S" apdu --card "$T/hx" --keyfile "$T/bad6.json" 80CA00E000
expect 0 "$S" apdu --card "$T/hx" --keyfile "$T/good.json" 80CA00E000
# errors that name the cause and what to do
expect 4 "$S" apdu --card "$T/hx" --kvn 20 80CA00E000
has "$T/err" "INITIALIZE UPDATE refused: the card holds no such key set"
expect 1 "$S" lifecycle --card "$T/hx" sleepy
has "$T/err" "want initialized, secured"

# --- issue 11 item 13: common options before the command
expect 0 "$S" --card "$T/hx" --json keys list
json "$T/out" 'd["ok"] and d["keys"][0]["kvn"] == 0x10'
expect 0 "$S" -v --card "$T/hx" --kvn 10 apdu 80CA00E000
has "$T/err" "secure channel open: KVN 10"
expect 0 "$S" --json diversify --scheme kdf3 --master 404142434445464748494A4B4C4D4E4F --kdd 00010203040506070809
json "$T/out" 'd["kcv_enc"] == "E79C05"'
expect 1 "$S" --frobnicate info
has "$T/err" "not an option scpkit knows"
expect 1 "$S" --card "$T/hx"
has "$T/err" "no command"
expect 1 "$S" --json card show --state "$T/hx"
has "$T/err" "takes none of the common options"

# --- issue 13 item 5: one KVN rule (GPC 2.3.1 11.1.8 / PUT KEY P1 11.8.2.2:
# new sets 01..7F; FF is the factory set) for every command that changes keys
expect 1 "$S" keys put --card "$T/hx" --kvn 10 --new-kvn FE --new-key $N2
has "$T/err" "01..7F"
for k in 00 80 FF 100; do
    expect 1 "$S" keys put --card "$T/hx" --kvn 10 --new-kvn $k --new-key $N2
    expect 1 "$S" keys rotate --card "$T/hx" --kvn 10 --new-kvn $k --generate --out "$T/r$k.json"
    [ -e "$T/r$k.json" ] && bad "a key file was written for a refused KVN $k" || ok
done
expect 0 "$S" keys put --card "$T/hx" --kvn 10 --new-kvn 7F --new-key $N2 --json
json "$T/out" 'd["kvn"] == 0x7F and d["old_kvn"] == 0x10'
expect 0 "$S" keys rotate --card "$T/hx" --kvn 7f --key $N2 --new-kvn 0x01 --generate --out "$T/r01.json" --json
json "$T/out" 'd["old_kvn"] == 0x7F and d["new_kvn"] == 1'
expect 0 "$S" keys put --card "$T/hx" --keyfile "$T/r01.json" --new-kvn 20 --new-key $N3
expect 0 "$S" keys delete --card "$T/hx" --kvn 20 --keyfile "$T/r01.json"
has "$T/out" "KVN 20 deleted"
expect 0 "$S" keys list --card "$T/hx" --json
json "$T/out" '1 in {k["kvn"] for k in d["keys"]} and not {0x20, 0x7F} & {k["kvn"] for k in d["keys"]}'
expect 1 "$S" keys delete --card "$T/hx" --kvn 00 --keyfile "$T/r01.json"
has "$T/err" "01..FF"

# --- usage errors
expect 1 "$S" nosuchcommand
expect 1 "$S" info --card "$T/gp" --kvn 300
expect 1 "$S" apdu --card "$T/gp" --key 0011 80CA00E000
expect 0 "$S" --help
has "$T/out" "Exit codes"
expect 2 "$S" info --card "$T/missing"

finish cli_inproc
