#!/bin/sh
# Key hex read from a key file never lingers in freed heap memory (issue
# 12): the CLI opens a channel with --keyfile under an LD_PRELOAD free()
# that reports any freed block still holding the key's hex. It fails with
# the json-c parse of the secret fields put back (json-c's tokenizer buffer
# is freed unwiped). Usage: freed_heap.sh path/to/scpkit path/to/freed_heap.so
set -u
S=${1:?usage: freed_heap.sh scpkit freed_heap.so}
H=${2:?usage: freed_heap.sh scpkit freed_heap.so}
T=$(mktemp -d /tmp/scpkit-freed.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
. "$(dirname "$0")/../lib.sh"
expect 0 "$S" card init --state "$T/card"
for key in 404142434445464748494A4B4C4D4E4F 404142434445464748494a4b4c4d4e4f; do
    printf '{"kvn": 255, "enc": "%s", "mac": "%s", "dek": "%s"}\n' $key $key $key >"$T/k.json"
    chmod 600 "$T/k.json"
    NEEDLE=$key LD_PRELOAD=$H expect 0 "$S" apdu --card "$T/card" --keyfile "$T/k.json" 80CA00E000
    hasnt "$T/err" "FREED-WITH-SECRET"
    printf '{"key": "%s", "kvn": 255}\n' $key >"$T/k.json"
    NEEDLE=$key LD_PRELOAD=$H expect 0 "$S" apdu --card "$T/card" --keyfile "$T/k.json" 80CA00E000
    hasnt "$T/err" "FREED-WITH-SECRET"
done
# the hook works: it sees a freed block that holds the needle
NEEDLE=E01AC004 LD_PRELOAD=$H expect 0 "$S" apdu --card "$T/card" --keyfile "$T/k.json" --json 80CA00E000
has "$T/err" "FREED-WITH-SECRET"
finish freed_heap
