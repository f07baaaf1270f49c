# Shared by the shell tests (and bench/pcsc_roundtrip.sh); POSIX sh.
# Checks that count and keep going (they write $T/out and $T/err, so set T
# to a scratch directory first; when LOG is set, every command's output is
# also appended to it), and bounded handling of the processes a test starts.

checks=0
fails=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
# expect RC CMD...: run CMD (stdout to $T/out, stderr to $T/err), check its exit code
expect() {
    want=$1; shift
    "$@" >"$T/out" 2>"$T/err"; got=$?
    [ -n "${LOG:-}" ] && cat "$T/out" "$T/err" >>"$LOG"
    if [ "$got" -eq "$want" ]; then ok; else
        bad "exit $got, want $want: $*"; sed 's/^/    /' "$T/out" "$T/err" >&2; fi
}
has() { if grep -q -- "$2" "$1"; then ok; else bad "$1 lacks \"$2\""; sed 's/^/    /' "$1" >&2; fi; }
# hasnt FILE TEXT: TEXT nowhere in FILE, in any letter case
hasnt() { if grep -qi -- "$2" "$1"; then bad "$1 has \"$2\""; else ok; fi; }
json() { # json FILE PYTHON-EXPR: the expression over d must be true
    if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" 2>/dev/null
    then ok; else bad "json check failed: $2"; sed 's/^/    /' "$1" >&2; fi
}
# finish NAME [NOTE]: the summary line; exit status 0 only if nothing failed
finish() {
    echo "$1: $checks checks, $fails failed${2:+ ($2)}"
    [ "$fails" -eq 0 ]
}

# skip WHY: this machine lacks something the test needs. A person running
# it gets the reason and exit 77 (CTest: skipped); in CI (CI=true) a skip
# is a failure, since scripts/deps.sh installs everything the tests use.
skip() {
    echo "${0##*/}: skipped: $*" >&2
    if [ "${CI:-}" = true ]; then
        echo "${0##*/}: CI=true: a skip is a failure" >&2
        exit 1
    fi
    exit 77
}

# stop_pid PID: SIGTERM, up to 10 s, then SIGKILL; only PIDs the test started
stop_pid() {
    _p=$1 _n=0
    kill -TERM "$_p" 2>/dev/null || return 0
    while kill -0 "$_p" 2>/dev/null && [ $_n -lt 100 ]; do sleep 0.1; _n=$((_n + 1)); done
    kill -0 "$_p" 2>/dev/null && kill -KILL "$_p" 2>/dev/null
    wait "$_p" 2>/dev/null
    return 0
}
# wait_for SECONDS CMD...: poll CMD (output discarded) every 0.2 s, bounded
wait_for() {
    _left=$(($1 * 5)); shift
    while [ "$_left" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2; _left=$((_left - 1))
    done
    return 1
}
