# Shared by the OTA shell tests (POSIX sh; after tests/lib.sh): a private
# keystore with two active masters, virtual devices, and an OTA server on
# an ephemeral loopback port, started under `timeout` and stopped by PID.
export SCPKIT_SO_PIN=so-pin-4711 SCPKIT_USER_PIN=user-pin-0815 SCPKIT_ACTOR=ota-test

# keystore_setup DIR: init, fleet:1 and fleet2:1 generated and activated
keystore_setup() {
    "$S" keystore init --dir "$1" >/dev/null || return 1
    for m in fleet fleet2; do
        "$S" keystore generate --dir "$1" --label $m --type aes128 >/dev/null || return 1
    done
    SCPKIT_CUSTODIAN_PIN=alice-pin-1 "$S" keystore custodian-add --dir "$1" alice >/dev/null &&
    SCPKIT_CUSTODIAN_PIN=bob-pin-22 "$S" keystore custodian-add --dir "$1" bob >/dev/null || return 1
    for k in fleet:1 fleet2:1; do
        SCPKIT_CUSTODIAN_PIN_1=alice-pin-1 SCPKIT_CUSTODIAN_PIN_2=bob-pin-22 \
            "$S" keystore activate --dir "$1" $k --reason test --custodian alice --custodian bob \
            >/dev/null || return 1
    done
}

# device_setup KS CARD: a virtual card moved onto fleet:1 kdf3 KVN 1; prints its id
device_setup() {
    "$S" card init --state "$2" >/dev/null &&
    "$S" keystore rotate --dir "$1" --card "$2" --new-master fleet:1 --new-kdf kdf3 --new-kvn 1 \
        >/dev/null || return 1
    "$S" info --card "$2" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["device_id"])'
}

# server_start SRV [OPTIONS...]: sets SRV_PID, PORT, ADMIN (bounded: 300 s, OTA_SERVER_LIMIT;
# converge.sh keeps one server through its whole agent loop)
server_start() {
    _d=$1; shift
    rm -f "$_d/https.port" "$_d/admin.port"
    timeout -s KILL "${OTA_SERVER_LIMIT:-300}" "$S" ota serve --dir "$_d" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
        --log "$_d/server.log" "$@" 2>>"$_d/server.err" &
    SRV_PID=$!
    if ! wait_for 20 test -s "$_d/admin.port"; then
        echo "server did not start:" >&2; cat "$_d/server.err" >&2; return 1
    fi
    PORT=$(cat "$_d/https.port"); ADMIN=$(cat "$_d/admin.port")
}

# ota_backend DIR: the registry backend the suite runs on. SCPKIT_TEST_DB=pg:
# a private PostgreSQL cluster (tests/lib.sh pg_start, state under DIR;
# the test's trap runs pg_stop) whose URL `ota init` takes from
# SCPKIT_OTA_DB; otherwise SQLite in the server directory.
ota_backend() {
    if [ "${SCPKIT_TEST_DB:-sqlite}" = pg ]; then
        pg_start "$1/pg" || { echo "ota_backend: PostgreSQL did not start" >&2; return 1; }
        export SCPKIT_OTA_DB="$PG_URL"
    else
        unset SCPKIT_OTA_DB
    fi
}
# reg_sql SRV SQL: one query on the registry of server directory SRV,
# rows '|'-separated, NULL as empty (sqlite3 or psql, by backend)
reg_sql() {
    if [ -n "${SCPKIT_OTA_DB:-}" ]; then
        psql -X -q -A -t -v ON_ERROR_STOP=1 "$SCPKIT_OTA_DB" -c "$2"
    else
        sqlite3 "$1/registry.db" "$2"
    fi
}
# ota_begin TAG: the common start of an OTA test script: a private
# directory $T (/tmp/scpkit-ota-TAG.*, kept when KEEP is set), the backend
# the run asks for (SQLite, or a private PostgreSQL cluster), cd into $T.
# On exit the server in $SRV_PID and the cluster are stopped by PID.
ota_begin() {
    T=$(mktemp -d "/tmp/scpkit-ota-$1.XXXXXX") || exit 1
    SRV_PID=
    trap '[ -n "$SRV_PID" ] && stop_pid $SRV_PID; pg_stop; [ -z "${KEEP:-}" ] && rm -rf "$T"' EXIT INT TERM
    ota_backend "$T" || exit 1
    cd "$T" || exit 1
}
