#!/bin/sh
# Tampering with keystore.db, one protected table at a time (issue 12):
# keys, key_history, cards, custodians, pending (intents), audit and its
# head. For each: a row edited, a row deleted, a row added (or rows
# swapped / the log cut short), each on a fresh copy of an intact keystore;
# `audit verify` must say TAMPERED (exit 5) and name what, and the intact
# copy must verify (exit 0) before and after: no false alarm, no miss.
# Also: the errors that are not tampering get their own message (wrong PIN,
# missing token, locked keystore, full disk, damaged database).
# Usage: tamper.sh path/to/scpkit
set -u
S=${1:?usage: tamper.sh path/to/scpkit}
S=$(cd "$(dirname "$S")" && pwd)/$(basename "$S")
T=$(mktemp -d /tmp/scpkit-tamper.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
. "$(dirname "$0")/../lib.sh"
export SCPKIT_SO_PIN=so-pin-4711 SCPKIT_USER_PIN=user-pin-0815 SCPKIT_ACTOR=tamper-test
unset SCP_KS_CRASH_AT SCP_KS_CRASH_TRACE SCP_KS_FAULT
KS=$T/ks
cust() { SCPKIT_CUSTODIAN_PIN_1=alice-pin SCPKIT_CUSTODIAN_PIN_2=bob-pin-2 "$@"; }

# ---- an intact keystore with a row in every table
expect 0 "$S" keystore init --dir "$KS"
expect 0 "$S" keystore generate --dir "$KS" --label a --type aes128
cp -a "$KS" "$T/early"
cp -a "$KS/$(readlink "$KS/tokens")" "$T/early-token"
expect 0 "$S" keystore generate --dir "$KS" --label b --type aes128
SCPKIT_CUSTODIAN_PIN=alice-pin expect 0 "$S" keystore custodian-add --dir "$KS" alice
SCPKIT_CUSTODIAN_PIN=bob-pin-2 expect 0 "$S" keystore custodian-add --dir "$KS" bob
cust expect 0 "$S" keystore activate --dir "$KS" a:1 --reason t --custodian alice --custodian bob
expect 0 "$S" keystore state --dir "$KS" a:1 suspended --reason t
if "$S" card init --state "$T/card" >/dev/null 2>&1; then
    cust expect 0 "$S" keystore activate --dir "$KS" b:1 --reason t --custodian alice --custodian bob
    expect 0 "$S" keystore rotate --dir "$KS" --card "$T/card" --new-master b:1 --new-kdf kdf3 --new-kvn 1
else
    bad "scpkit card init failed"
fi
expect 0 "$S" audit verify --dir "$KS"
has "$T/out" "audit log intact"
cp -a "$KS" "$T/intact"

# tamper NAME SQL EXPECTED-TEXT: on a fresh copy, SQL (triggers dropped
# first, as an attacker would), then verify must fail naming it
tamper() {
    rm -rf "$KS"; cp -a "$T/intact" "$KS"
    python3 - "$KS/keystore.db" "$2" <<'EOF' || bad "$1: the SQL failed"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.executescript("DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;" + sys.argv[2])
c.commit()
EOF
    expect 5 "$S" audit verify --dir "$KS"
    has "$T/err" "TAMPERED"
    has "$T/err" "$3"
}

# keys: edit (state: dual control bypassed), delete, add
tamper keys-edit "UPDATE keys SET state = 'active' WHERE label = 'a'" "table keys: row \"a:1\" was added or edited"
tamper keys-delete "DELETE FROM keys WHERE label = 'b'" "table keys: a row recorded in the audit log was deleted"
tamper keys-add "INSERT INTO keys SELECT 'c', version, type, length, kcv, kcv_kind, state, origin, created, changed, mac FROM keys WHERE label = 'b'" "table keys: row \"c:1\" was added"
# key_history: edit, delete, swap two rows' order
tamper history-edit "UPDATE key_history SET reason = 'nothing to see' WHERE id = 1" "table key_history: row \"1\" was added or edited"
tamper history-delete "DELETE FROM key_history WHERE id = (SELECT MAX(id) FROM key_history)" "table key_history: a row recorded in the audit log was deleted"
tamper history-reorder "UPDATE key_history SET id = -id WHERE id IN (1, 2); UPDATE key_history SET id = 2 WHERE id = -1; UPDATE key_history SET id = 1 WHERE id = -2" "table key_history: row \"[12]\" was added or edited"
# cards: edit (point a card at another master), delete, add
tamper cards-edit "UPDATE cards SET kvn = 7" "table cards: row \"[0-9A-F]*\" was added or edited"
tamper cards-delete "DELETE FROM cards" "table cards: a row recorded in the audit log was deleted"
tamper cards-add "INSERT INTO cards VALUES('00000000000000000000', 'b', 1, 'kdf3', 1, 0)" "table cards: row \"00000000000000000000\" was added"
# custodians: delete (quorum shrunk), add (a copy under another name)
tamper custodians-delete "DELETE FROM custodians WHERE name = 'bob'" "table custodians: a row recorded in the audit log was deleted"
tamper custodians-add "INSERT INTO custodians SELECT 'mallory', salt, verifier, mac FROM custodians WHERE name = 'alice'" "table custodians: row \"mallory\" was added"
# pending: a forged intent (would destroy a key on recovery) is refused
rm -rf "$KS"; cp -a "$T/intact" "$KS"
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("INSERT INTO pending(op,label,version,arg,reason,actor,mac) VALUES(?,?,?,?,?,?,?)", ("destroy","b",1,"aes128","x","m",bytes(32))); c.commit()' "$KS/keystore.db"
expect 5 "$S" keystore list --dir "$KS"
has "$T/err" "interrupted-operation record .* fails its HMAC"
expect 0 sh -c "cd '$KS' && python3 -c 'import sqlite3; print(sqlite3.connect(\"keystore.db\").execute(\"select state from keys where label=\\\"b\\\"\").fetchone()[0])'"
has "$T/out" "active"
# audit: edit, delete a record, reorder, cut short with the head moved back
tamper audit-edit "UPDATE audit SET actor = 'mallory' WHERE seq = 3" "record 3 was edited"
tamper audit-delete "DELETE FROM audit WHERE seq = 4" "record 4 is missing"
tamper audit-reorder "UPDATE audit SET seq = -seq WHERE seq IN (5, 6); UPDATE audit SET seq = 6 WHERE seq = -5; UPDATE audit SET seq = 5 WHERE seq = -6" "record 5 does not follow record 4"
tamper audit-truncate "DELETE FROM audit WHERE seq > 3; UPDATE head SET seq = 3, hash = (SELECT hash FROM audit WHERE seq = 3), mac = (SELECT mac FROM audit WHERE seq = 3)" "log truncated"
tamper audit-tail "DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)" "log truncated\|the head is at"
tamper head-delete "DELETE FROM head" "the audit head is missing"
tamper head-forge "UPDATE head SET mac = zeroblob(32)" "the audit head is forged"

# the token against the database: the token put back to a generation from
# before key b was generated is reported (b missing from the token)
rm -rf "$KS"; cp -a "$T/early" "$KS"
rm -rf "$KS"/tokens.g*; cp -a "$T/early-token" "$KS/$(readlink "$T/early/tokens")"
cp -p "$T/intact/keystore.db" "$KS/keystore.db"
expect 5 "$S" audit verify --dir "$KS"
has "$T/err" "TAMPERED: key b:1 is .* in the database but missing from the token"

# ---- errors that are not tampering: each its own message
rm -rf "$KS"; cp -a "$T/intact" "$KS"
SCPKIT_USER_PIN=wrong-pin expect 3 "$S" keystore list --dir "$KS"
has "$T/err" "wrong user PIN"
expect 5 "$S" keystore list --dir "$T/nothing-here"
has "$T/err" "no keystore in"
mkdir "$T/moved-tokens"; mv "$KS"/tokens.g* "$T/moved-tokens/"
rm -f "$KS/tokens"
expect 5 "$S" keystore list --dir "$KS"
has "$T/err" "no token in .*restore the token directory"
rm -rf "$KS"; cp -a "$T/intact" "$KS"
# locked: another process holds the writer lock past the wait
python3 -c 'import fcntl, sys, time; f = open(sys.argv[1], "a"); fcntl.flock(f, fcntl.LOCK_EX); open(sys.argv[2], "w").close(); time.sleep(20)' "$KS/lock" "$T/held" &
LP=$!
wait_for 15 test -e "$T/held" || bad "the lock holder did not start"
SCPKIT_KS_LOCK_WAIT=300 expect 5 "$S" keystore generate --dir "$KS" --label c --type aes128
has "$T/err" "keystore is locked: another scpkit process"
expect 0 "$S" keystore derive --dir "$KS" --master b:1 --kdf kdf3 --kdd 00112233445566778899
stop_pid $LP
# full disk (injected ENOSPC at the first write point of a generate)
SCP_KS_FAULT=enospc@1 expect 5 "$S" keystore generate --dir "$KS" --label c --type aes128
has "$T/err" "disk full"
SCP_KS_FAULT=enospc@8 expect 5 "$S" keystore generate --dir "$KS" --label c --type aes128
has "$T/err" "disk full"
expect 0 "$S" audit verify --dir "$KS"
expect 0 "$S" keystore generate --dir "$KS" --label c --type aes128
# a really full file system: a 3 MB tmpfs when this test may mount one
# (root), filled up while a keystore lives on it
mkdir -m 700 "$T/small"
if mount -t tmpfs -o size=3m,mode=700 tmpfs "$T/small" 2>/dev/null; then
    expect 0 "$S" keystore init --dir "$T/small/ks"
    expect 0 "$S" keystore generate --dir "$T/small/ks" --label f --type aes128
    dd if=/dev/zero of="$T/small/fill" bs=4096 2>/dev/null
    for i in 1 2 3; do
        expect 5 "$S" keystore generate --dir "$T/small/ks" --label g --type aes128
        has "$T/err" "disk full"
        rm -f "$T/small/fill.$i"
        dd if=/dev/zero of="$T/small/fill.$i" bs=512 2>/dev/null
    done
    rm -f "$T/small"/fill*
    expect 0 "$S" audit verify --dir "$T/small/ks"
    expect 0 "$S" keystore generate --dir "$T/small/ks" --label g --type aes128
    expect 0 "$S" audit verify --dir "$T/small/ks"
    umount "$T/small" || bad "umount $T/small"
else
    echo "NOTE: no tmpfs could be mounted (not root): the full disk is the injected ENOSPC above" >&2
fi
# a damaged database
rm -rf "$KS"; cp -a "$T/intact" "$KS"
python3 -c 'import sys; f=open(sys.argv[1], "r+b"); f.seek(0); f.write(b"garbage" * 20); f.close()' "$KS/keystore.db"
expect 5 "$S" keystore list --dir "$KS"
has "$T/err" "keystore.db is damaged .*restore it from a backup"
# the intact copy still verifies
rm -rf "$KS"; cp -a "$T/intact" "$KS"
expect 0 "$S" audit verify --dir "$KS"
# a relative --dir works from another directory afterwards
mkdir "$T/rel"
expect 0 sh -c "cd '$T' && '$S' keystore init --dir rel/ks"
has "$T/rel/ks/softhsm2.conf" "tokendir = $T/rel/ks/tokens"
expect 0 sh -c "cd / && '$S' keystore generate --dir '$T/rel/ks' --label r --type aes128"
finish tamper
