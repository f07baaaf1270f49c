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

# pid_alive PID: the process runs. One that has exited but is not reaped
# yet (a zombie: state Z in /proc/PID/stat, after the last ") ") still
# answers kill -0, and is not alive.
pid_alive() {
    kill -0 "$1" 2>/dev/null || return 1
    _st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
    [ "$_st" != Z ]
}
# stop_pid PID: SIGTERM, up to 10 s, then SIGKILL; only PIDs the test started
stop_pid() {
    _p=$1 _n=0
    kill -TERM "$_p" 2>/dev/null || return 0
    while pid_alive "$_p" && [ $_n -lt 100 ]; do sleep 0.1; _n=$((_n + 1)); done
    pid_alive "$_p" && kill -KILL "$_p" 2>/dev/null
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

# ---- PC/SC: pcscd is one per machine and its two vpcd slots (tcp 35963,
# 35964) are shared by every PC/SC test; a test uses a slot only once the
# card in it has proved to be its own ----
# pcsc_index NAME: opensc-tool's number for reader NAME (fails if unlisted)
pcsc_index() {
    _ix=$(opensc-tool -l 2>/dev/null | awk -v r="$1" 'index($0, r) { print $1; exit }')
    [ -n "$_ix" ] && echo "$_ix"
}
# pcsc_has_card NAME: reader NAME holds a card (anyone's)
pcsc_has_card() { opensc-tool -l 2>/dev/null | grep -E "^[0-9]+ +Yes +.*$1" >/dev/null; }
# pcsc_cin NAME: the CIN of the card in reader NAME (GET DATA 45, GPC
# H.6: "45 L CIN"), hex, no spaces
pcsc_cin() {
    _ix=$(pcsc_index "$1") || return 1
    opensc-tool -r "$_ix" -s 80CA004500 2>/dev/null |
        awk 'function hx(c) { return index("0123456789ABCDEF", c) - 1 }
             /^45 / { n = hx(substr($2, 1, 1)) * 16 + hx(substr($2, 2, 1)); s = ""
                      for (k = 3; k < 3 + n; k++) s = s $k; print s; exit }'
}
# pcsc_is_ours NAME CIN: the card in reader NAME answers with CIN
pcsc_is_ours() { [ "$(pcsc_cin "$1")" = "$2" ]; }
# pcscd_ensure LOG: reuse the running pcscd when its vpcd port answers,
# else start `pcscd --foreground` (PCSCD_PID, to end by PID); waits,
# bounded, for the vpcd readers. Fails when there are none.
pcscd_ensure() {
    PCSCD_PID=
    if ! ss -ltn 2>/dev/null | grep -q '[:.]35963 '; then
        mkdir -p /run/pcscd
        pcscd --foreground >>"$1" 2>&1 &
        PCSCD_PID=$!
    fi
    wait_for 20 pcsc_index "Virtual PCD 00 00"
}
# vpcd_attach CIN SECONDS LOG CMD...: start the card server "CMD...
# 127.0.0.1:PORT" (in the background, output to LOG) on a vpcd slot with
# no card in it, and keep it only once that reader's card answers with
# CIN (not another test's card that came in between). When both slots
# are busy, try again until SECONDS have passed. Sets VPCD_PID (end it by
# PID), VPCD_SLOT and VPCD_READER; fails when no slot came free.
vpcd_attach() {
    _cin=$1 _until=$(($(date +%s) + $2)) _log=$3
    shift 3
    VPCD_PID= VPCD_SLOT= VPCD_READER=
    while [ "$(date +%s)" -lt "$_until" ]; do
        for _s in 0 1; do
            _r="Virtual PCD 00 0$_s"
            pcsc_index "$_r" >/dev/null || continue
            pcsc_has_card "$_r" && continue
            "$@" "127.0.0.1:$((35963 + _s))" >>"$_log" 2>&1 &
            VPCD_PID=$!
            if wait_for 10 pcsc_is_ours "$_r" "$_cin"; then
                VPCD_SLOT=$_s VPCD_READER=$_r
                return 0
            fi
            stop_pid "$VPCD_PID"
            VPCD_PID=
        done
        sleep 2
    done
    return 1
}

# ---- PostgreSQL: a private cluster per test (initdb on a temporary
# directory, postgres on 127.0.0.1 and a free port, its unix socket in
# that directory), PID kept, stopped by PID, every wait bounded ----
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
# pg_as CMD...: run CMD as the cluster's owner. initdb and postgres refuse
# root: as root, CMD runs as the system user postgres (the postgresql
# package's), with no fork (setpriv execs, so $! is the server's PID).
pg_as() {
    if [ "$(id -u)" -eq 0 ]; then
        setpriv --reuid=postgres --regid=postgres --init-groups --reset-env -- "$@"
    else
        "$@"
    fi
}
# pg_free_port: a loopback TCP port nobody listens on now
pg_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# pg_start DIR: a new cluster (trust authentication, loopback only), its
# logs and PID file in DIR (made), its data in PG_BASE, a fresh directory
# under /tmp the postgres user can reach (DIR/pg.base names it). Sets PG_PID, PG_PORT, PG_BASE and PG_URL
# (postgresql://postgres@127.0.0.1:PORT/postgres). fsync is off unless
# PG_FSYNC=on: a test survives a process crash, not a power cut.
# Returns non-zero (cluster removed) when the server did not come up in
# 30 s.
pg_start() {
    PG_PID= PG_PORT= PG_URL=
    PG_BASE=$(mktemp -d /tmp/scpkit-pg.XXXXXX) || return 1
    chmod 755 "$PG_BASE"
    mkdir -p "$1" && echo "$PG_BASE" >"$1/pg.base"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$PG_BASE"
    if ! (cd /tmp && pg_as "$PG_BIN/initdb" -D "$PG_BASE/data" -A trust -U postgres -E UTF8 \
            --no-sync >"$1/initdb.log" 2>&1); then
        cat "$1/initdb.log" >&2; rm -rf "$PG_BASE"; return 1
    fi
    for _try in 1 2 3 4 5; do
        PG_PORT=$(pg_free_port) || break
        (cd /tmp || exit 1
         set -- "$PG_BIN/postgres" -D "$PG_BASE/data" -h 127.0.0.1 -p "$PG_PORT" -k "$PG_BASE" \
             -c fsync="${PG_FSYNC:-off}" -c max_connections=200
         [ "$(id -u)" -eq 0 ] &&
             exec setpriv --reuid=postgres --regid=postgres --init-groups --reset-env -- "$@"
         exec "$@") >>"$1/postgres.log" 2>&1 &
        PG_PID=$!
        if wait_for 30 "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
            PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
            echo "$PG_PID" >"$1/pg.pid"
            return 0
        fi
        kill -0 "$PG_PID" 2>/dev/null && stop_pid "$PG_PID"
    done
    cat "$1/postgres.log" >&2
    rm -rf "$PG_BASE"; PG_PID=
    return 1
}
# pg_stop: fast shutdown of the cluster pg_start made (SIGINT to its PID,
# up to 20 s, then SIGKILL), and its directory removed
pg_stop() {
    if [ -n "${PG_PID:-}" ]; then
        kill -INT "$PG_PID" 2>/dev/null
        _n=0
        while kill -0 "$PG_PID" 2>/dev/null && [ $_n -lt 200 ]; do sleep 0.1; _n=$((_n + 1)); done
        kill -0 "$PG_PID" 2>/dev/null && kill -KILL "$PG_PID" 2>/dev/null
        wait "$PG_PID" 2>/dev/null
    fi
    [ -n "${PG_BASE:-}" ] && rm -rf "$PG_BASE"
    PG_PID= PG_BASE= PG_URL=
    return 0
}
# pg_sql SQL: run SQL on the pg_start cluster (psql, unaligned, no header)
pg_sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$PG_URL" -c "$1"; }
