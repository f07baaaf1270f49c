#!/bin/sh
# The keystore from the command line, on a private SoftHSM2 token in a
# temporary directory, and end to end with the in-process virtual card:
# init, generate, lifecycle (a forbidden transition refused), quorum by
# custodians and by shares, Shamir/XOR ceremonies through files and stdin,
# derive (KCVs equal the software `scpkit diversify`), a card provisioned
# and rotated with keys that only the keystore knows, `audit verify`
# catching a tampered record, and no key byte in any output, the DB or the
# token files. Usage: cli_keystore.sh path/to/scpkit
set -u
S=${1:?usage: cli_keystore.sh path/to/scpkit}
T=$(mktemp -d /tmp/scpkit-ks.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
KS=$T/ks
LOG=$T/all-output.log
: >"$LOG"
. "$(dirname "$0")/../lib.sh"
export SCPKIT_SO_PIN=so-pin-4711 SCPKIT_USER_PIN=user-pin-0815 SCPKIT_ACTOR=cli-test

field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# --- init: a private token, the mechanism report, modes
expect 0 "$S" keystore init --dir "$KS"
has "$T/out" "CKM_AES_CMAC *yes"
has "$T/out" "CKM_SP800_108_COUNTER_KDF *NO"
[ "$(stat -c %a "$KS")" = 700 ] && ok || bad "keystore dir not 0700"
[ "$(stat -c %a "$KS/keystore.db")" = 600 ] && ok || bad "keystore.db not 0600"
has "$KS/softhsm2.conf" "tokendir = $KS/tokens"
expect 5 "$S" keystore init --dir "$KS"                  # already there
SCPKIT_USER_PIN=wrong-pin expect 3 "$S" keystore list --dir "$KS"
chmod 750 "$KS"; expect 3 "$S" keystore list --dir "$KS"; chmod 700 "$KS"   # group access refused
SCPKIT_USER_PIN= expect 1 setsid -w "$S" keystore list --dir "$KS" </dev/null   # no tty: no prompt

# --- another PKCS#11 module's existing token is adopted (user PIN only)
mkdir -m 700 "$T/ext-tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$T/ext-tokens" >"$T/ext.conf"
if SOFTHSM2_CONF="$T/ext.conf" softhsm2-util --init-token --free --label ext --so-pin ext-so-1 --pin ext-user-1 >/dev/null 2>&1; then
    SOFTHSM2_CONF="$T/ext.conf" SCPKIT_SO_PIN= SCPKIT_USER_PIN=ext-user-1 \
        expect 0 "$S" keystore init --dir "$T/ks-ext" --pkcs11-module /usr/lib/softhsm/libsofthsm2.so --token ext
    has "$T/out" "existing token adopted"
    # the module is code: it comes from the operator, never from keystore.db
    SOFTHSM2_CONF="$T/ext.conf" SCPKIT_USER_PIN=ext-user-1 \
        expect 1 "$S" keystore generate --dir "$T/ks-ext" --label other --type aes256
    has "$T/err" "external PKCS#11 module: name it with --pkcs11-module"
    python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("update config set v = ? where k = ?", (sys.argv[2], "module")); c.commit()' "$T/ks-ext/keystore.db" "$T/evil.so"
    printf 'not a module' >"$T/evil.so"
    SOFTHSM2_CONF="$T/ext.conf" SCPKIT_USER_PIN=ext-user-1 \
        expect 0 "$S" keystore generate --dir "$T/ks-ext" --label other --type aes256 --pkcs11-module /usr/lib/softhsm/libsofthsm2.so
    SOFTHSM2_CONF="$T/ext.conf" SCPKIT_USER_PIN=ext-user-1 SCPKIT_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so \
        expect 0 "$S" audit verify --dir "$T/ks-ext"
    chmod 666 "$T/evil.so"
    SOFTHSM2_CONF="$T/ext.conf" SCPKIT_USER_PIN=ext-user-1 \
        expect 3 "$S" keystore list --dir "$T/ks-ext" --pkcs11-module "$T/evil.so"
    has "$T/err" "not a regular file owned by root or you and closed to writes by others"
    SOFTHSM2_CONF="$T/ext.conf" SCPKIT_USER_PIN=ext-user-1 \
        expect 1 "$S" keystore list --dir "$T/ks-ext" --pkcs11-module relative/x.so
    has "$T/err" "give an absolute path"
    [ ! -e "$T/ks-ext/softhsm2.conf" ] && ok || bad "a private conf was written for an external module"
    SOFTHSM2_CONF="$T/ext.conf" SCPKIT_SO_PIN= SCPKIT_USER_PIN=ext-user-1 \
        expect 1 "$S" keystore init --dir "$T/ks-ext2" --pkcs11-module /usr/lib/softhsm/libsofthsm2.so --token missing
else
    bad "softhsm2-util could not make a token"
fi

# --- generate, lifecycle, quorum by custodians
expect 0 "$S" keystore generate --dir "$KS" --label fleet --type aes128
has "$T/out" "fleet:1 aes128 KCV [0-9A-F]\{6\} pre-activation"
expect 5 "$S" keystore derive --dir "$KS" --master fleet:1 --kdf kdf3 --kdd 00010203040506070809
expect 1 "$S" keystore state --dir "$KS" fleet:1 active --reason "no quorum"
expect 5 "$S" keystore state --dir "$KS" fleet:1 suspended --reason "not allowed from pre-activation"
SCPKIT_CUSTODIAN_PIN=alice-pin expect 0 "$S" keystore custodian-add --dir "$KS" alice
SCPKIT_CUSTODIAN_PIN=bob-pin-2 expect 0 "$S" keystore custodian-add --dir "$KS" bob
SCPKIT_CUSTODIAN_PIN_1=alice-pin SCPKIT_CUSTODIAN_PIN_2=alice-pin \
    expect 3 "$S" keystore activate --dir "$KS" fleet:1 --reason r --custodian alice --custodian alice
SCPKIT_CUSTODIAN_PIN_1=alice-pin SCPKIT_CUSTODIAN_PIN_2=wrong-pin \
    expect 3 "$S" keystore activate --dir "$KS" fleet:1 --reason r --custodian alice --custodian bob
SCPKIT_CUSTODIAN_PIN_1=alice-pin SCPKIT_CUSTODIAN_PIN_2=bob-pin-2 \
    expect 0 "$S" keystore activate --dir "$KS" fleet:1 --reason "go live" --custodian alice --custodian bob
has "$T/out" "fleet:1 aes128 KCV .* active"

# --- an XOR ceremony on stdout, recombined from stdin in the same token
expect 0 "$S" keystore split --dir "$KS" --master xor --type aes128 --scheme xor -n 3
has "$T/err" "secret shares"
grep '^share' "$T/out" | sed 's/^share [0-9]*: //' >"$T/xor.txt"
[ "$(wc -l <"$T/xor.txt")" -eq 3 ] && ok || bad "3 XOR components"
XKCV=$(sed -n 's/^xor:1 aes128 KCV \([0-9A-F]*\).*/\1/p' "$T/out")
expect 0 sh -c "\"$S\" keystore combine --dir \"$KS\" --master xor-copy --kcv $XKCV <\"$T/xor.txt\""
has "$T/out" "xor-copy:1 aes128 KCV $XKCV"
head -2 "$T/xor.txt" >"$T/xor2.txt"
expect 3 sh -c "\"$S\" keystore combine --dir \"$KS\" --master xor-bad <\"$T/xor2.txt\""
has "$T/err" "not enough shares"
# the XOR master's value, for the grep at the end (the components are public here)
XMASTER=$(python3 -c '
import sys
v = None
for line in open(sys.argv[1]):
    b = bytes.fromhex(line.strip().split(":")[4])
    v = b if v is None else bytes(x ^ y for x, y in zip(v, b))
print(v.hex().upper())' "$T/xor.txt")

# --- a Shamir 3-of-5 ceremony into files (0600), any 3 activate, 2 do not
mkdir -m 700 "$T/shares"
expect 0 "$S" keystore split --dir "$KS" --master cer:1 --type aes256 --scheme shamir -m 3 -n 5 --out-dir "$T/shares"
[ "$(stat -c %a "$T/shares/cer-1-share-4.txt")" = 600 ] && ok || bad "share file not 0600"
hasnt "$T/out" "scpkit-shamir"                           # nothing on stdout but the key line
expect 3 "$S" keystore activate --dir "$KS" cer:1 --reason two --share-file "$T/shares/cer-1-share-1.txt" --share-file "$T/shares/cer-1-share-2.txt"
python3 -c 'import sys; p = open(sys.argv[1]).read().strip().split(":"); v = p[4]
p[4] = v[:5] + ("1" if v[5] != "1" else "2") + v[6:]; print(":".join(p))' "$T/shares/cer-1-share-3.txt" >"$T/flipped.txt"
expect 5 "$S" keystore activate --dir "$KS" cer:1 --reason flipped --share-file "$T/shares/cer-1-share-1.txt" --share-file "$T/shares/cer-1-share-2.txt" --share-file "$T/flipped.txt"
expect 0 "$S" keystore activate --dir "$KS" cer:1 --reason quorum --share-file "$T/shares/cer-1-share-5.txt" --share-file "$T/shares/cer-1-share-1.txt" --share-file "$T/shares/cer-1-share-3.txt"
has "$T/out" "cer:1 aes256 .* active (shamir)"

# --- derive: KCVs only, equal to the software reference
SCPKIT_CUSTODIAN_PIN_1=alice-pin SCPKIT_CUSTODIAN_PIN_2=bob-pin-2 \
    expect 0 "$S" keystore activate --dir "$KS" xor:1 --reason live --custodian alice --custodian bob
expect 0 "$S" keystore derive --dir "$KS" --master xor:1 --kdf kdf3 --kdd 0A0B0C0D0E0F10111213 --json
HSM_ENC=$(field "$T/out" kcv_enc)
expect 0 "$S" diversify --scheme kdf3 --master "$XMASTER" --kdd 0A0B0C0D0E0F10111213 --json
[ "$HSM_ENC" = "$(field "$T/out" kcv_enc)" ] && ok || bad "HSM KCV $HSM_ENC differs from software"
# (software keys, to look for them later; this output is not part of the log)
"$S" diversify --scheme kdf3 --master "$XMASTER" --kdd 0A0B0C0D0E0F10111213 --show-keys --json >"$T/soft.json"
SOFT_ENC=$(field "$T/soft.json" enc)

# --- end to end: a virtual card provisioned and rotated from the keystore only
expect 0 "$S" card init --state "$T/card"
if [ -d "$T/card" ]; then
    # provisioning: factory keys -> keys of xor:1 (kdf3) for this card, KVN 01
    expect 0 "$S" keystore rotate --dir "$KS" --card "$T/card" --new-master xor:1 --new-kdf kdf3 --new-kvn 1
    has "$T/out" "Rotated card [0-9A-F]\{20\}: KVN FF -> 01"
    CARD=$(sed -n 's/^Rotated card \([0-9A-F]*\):.*/\1/p' "$T/out")
    # the card opens with keystore keys only
    expect 0 "$S" apdu --card "$T/card" --keystore "$KS" --master xor:1 --kdf kdf3 80CA00E000
    has "$T/out" "9000"
    expect 3 "$S" apdu --card "$T/card" --kvn 1 --key 404142434445464748494A4B4C4D4E4F 80CA00E000
    expect 0 "$S" keystore cards --dir "$KS"
    has "$T/out" "$CARD  xor:1 kdf3 *KVN 01$"
    # rotation to a new master version, generated in the token
    expect 0 "$S" keystore generate --dir "$KS" --label xor --type aes128
    SCPKIT_CUSTODIAN_PIN_1=bob-pin-2 SCPKIT_CUSTODIAN_PIN_2=alice-pin \
        expect 0 "$S" keystore activate --dir "$KS" xor:2 --reason rotation --custodian bob --custodian alice
    expect 0 "$S" keystore cards --dir "$KS"
    has "$T/out" "$CARD  xor:1 .*BEHIND"
    expect 0 "$S" keystore rotate --card "$T/card" --keystore "$KS" --master xor:1 --kdf kdf3 --new-master xor:2 --new-kvn 2
    has "$T/out" "KVN 01 -> 02, keys from xor:2"
    expect 3 "$S" apdu --card "$T/card" --keystore "$KS" --master xor:1 --kdf kdf3 80CA00E000
    expect 0 "$S" apdu --card "$T/card" --keystore "$KS" --master xor:2 --kdf kdf3 80CA00E000
    expect 0 "$S" keystore cards --dir "$KS" --json
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); c=d["cards"][0]; sys.exit(0 if c["version"] == 2 and c["kvn"] == 2 and not c["behind"] else 1)' "$T/out" && ok || bad "cards json after rotation"
    # the card record follows; only active masters open sessions
    python3 -c 'import sqlite3,sys; r=sqlite3.connect(sys.argv[1]).execute("select master_label, master_version, kvn from cards where kdd=?", (sys.argv[2],)).fetchone(); sys.exit(0 if r == ("xor", 2, 2) else 1)' "$KS/keystore.db" "$CARD" && ok || bad "card record not xor:2 kvn 2"
    expect 0 "$S" keystore state --dir "$KS" xor:2 suspended --reason incident
    expect 5 "$S" apdu --card "$T/card" --keystore "$KS" --master xor:2 --kdf kdf3 80CA00E000
    has "$T/err" "xor:2 is suspended: only an active master key opens sessions"
else
    bad "scpkit card init made no card: the end-to-end part cannot run"
fi

# --- audit: intact, then a tampered copy names the record
expect 0 "$S" audit verify --dir "$KS"
has "$T/out" "audit log intact"
expect 0 "$S" audit show --dir "$KS" --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if len(d["records"]) > 20 and all("op" in r for r in d["records"]) else 1)' "$T/out" && ok || bad "audit show json"
cp -p "$KS/keystore.db" "$T/db.saved"
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript("drop trigger audit_no_update; update audit set actor = \"mallory\" where seq = 7;"); c.commit()' "$KS/keystore.db"
expect 5 "$S" audit verify --dir "$KS"
has "$T/err" "record 7 was edited"
cp -p "$T/db.saved" "$KS/keystore.db"
expect 0 "$S" audit verify --dir "$KS"

# --- nothing secret anywhere: outputs, DB, token files (raw and hex)
python3 - "$XMASTER" "$SOFT_ENC" "$LOG" "$KS" <<'EOF' && ok || bad "a key was found (see above)"
import os, sys
secrets = [bytes.fromhex(h) for h in sys.argv[1:3]]
paths = [sys.argv[3]] + [os.path.join(d, f) for d, _, fs in os.walk(sys.argv[4]) for f in fs]
hit = False
for p in paths:
    data = open(p, "rb").read()
    for s in secrets:
        for form in (s, s.hex().encode(), s.hex().upper().encode()):
            if form in data:
                print("secret found in", p, file=sys.stderr)
                hit = True
sys.exit(1 if hit or len(paths) < 5 else 0)
EOF
# the grep can fail: the key is found where it is
printf '%s\n' "$XMASTER" >"$T/probe"
grep -q "$XMASTER" "$T/probe" && ok || bad "probe"

finish cli_keystore
