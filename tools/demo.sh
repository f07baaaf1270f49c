#!/bin/sh
# scpkit demo (make demo): a virtual card in a temporary directory, its
# card information, a key rotation from the factory test keys to freshly
# generated AES-128 keys at security level 33, proof that the old keys no
# longer open a channel, and a short summary. Usage: demo.sh path/to/scpkit
set -u
S=${1:?usage: demo.sh path/to/scpkit}
T=$(mktemp -d /tmp/scpkit-demo.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM

step() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "1. A virtual secure element (YubiKey profile: SCP03, AES-128, factory keys KVN FF)"
run "$S" card init --state "$T/card" || exit 1

step "2. What the card says about itself, before any authentication"
run "$S" info --card "$T/card" || exit 1

step "3. Rotate the factory keys to fresh random AES-128 keys (KVN 01) at level 33"
echo "   (the new keys are written to a 0600 file before the card is changed)"
run "$S" keys rotate --card "$T/card" --level 33 --new-kvn 1 --generate --key-len 16 \
    --out "$T/keys.json" || exit 1
ls -l "$T/keys.json" | awk '{ print "   key file:", $1, $NF }'

step "4. The old factory keys no longer open a channel (exit code 3, nothing retried)"
run "$S" apdu --card "$T/card" 80CA00E000 2>&1
old_rc=$?
echo "   exit code: $old_rc"

step "5. The new keys do: GET DATA (key information) sent through the channel"
run "$S" apdu --card "$T/card" --keyfile "$T/keys.json" -v 80CA00E000 >"$T/new.txt" 2>&1
new_rc=$?
grep -v '^[<>]' "$T/new.txt"

step "Summary"
if [ "$old_rc" -eq 3 ] && [ "$new_rc" -eq 0 ]; then
    echo "   card:      virtual, in $T/card (removed at exit)"
    echo "   before:    factory test keys 40..4F, KVN FF"
    echo "   after:     random AES-128 keys, KVN 01, level 33 (C-MAC, C-DEC, R-MAC, R-ENC)"
    echo "   old keys:  refused (exit 3)"
    echo "   new keys:  accepted; kept only in the 0600 key file"
    echo "   demo: OK"
else
    echo "   demo: FAILED (old keys exit $old_rc, want 3; new keys exit $new_rc, want 0)"
    exit 1
fi
