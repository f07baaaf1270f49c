#!/bin/sh
# A FIFO given where scpkit reads a card's state or a key file is refused
# at once, never waited on (issue 11 item 11): open(O_NONBLOCK) and a
# regular-file check before any read. Each command runs under a 10 s
# timeout: a blocked open would show as exit 124.
# Usage: fifo_files.sh path/to/scpkit
set -u
S=${1:?usage: fifo_files.sh path/to/scpkit}
T=$(mktemp -d "${TMPDIR:-/tmp}/scpfifo.XXXXXX")
. "$(dirname "$0")/../lib.sh"
trap 'rm -rf "$T"' EXIT

# refused WHAT CMD...: CMD fails, promptly, saying why
refused() {
    what=$1
    shift
    timeout 10 "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc -eq 124 ]; then bad "$what: blocked on the FIFO"
    elif [ $rc -eq 0 ]; then bad "$what: accepted"
    else ok; has "$T/err" "not a regular file"; fi
}

# the state file of a card
mkdir -m 700 "$T/c1"
mkfifo -m 600 "$T/c1/card.state"
refused "card show" "$S" card show --state "$T/c1"
refused "info --card" "$S" info --card "$T/c1"

# the SCP11 state beside a good card state
expect 0 "$S" card init --state "$T/c2" --profile gp23
rm -f "$T/c2/scp11.state"
mkfifo -m 600 "$T/c2/scp11.state"
refused "scp11.state" "$S" info --card "$T/c2"

# a key file
expect 0 "$S" card init --state "$T/c3" --profile gp23
mkfifo -m 600 "$T/keys.json"
refused "key file" "$S" apdu --card "$T/c3" --keyfile "$T/keys.json" 80CA00E000

finish fifo_files
