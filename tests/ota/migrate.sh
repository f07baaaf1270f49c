#!/bin/sh
# Registry schema versions (issue 15), on the backend SCPKIT_TEST_DB names:
# a registry made by scpkit before versioning (tests/ota/registry_v1.sql,
# SQLite, and its PostgreSQL twin registry_v1_pg.sql: the version-1 schema
# and a few rows, no schema_version) is upgraded on open, its rows intact;
# one from a newer scpkit is refused by every command and left untouched;
# a migration that fails leaves nothing of itself (one transaction);
# `ota init --db` never prints the conninfo's password, also when the
# database cannot be reached.
set -u
S=${1:?usage: migrate.sh path/to/scpkit}
T=$(mktemp -d /tmp/scpkit-ota-mig.XXXXXX)
trap 'pg_stop; rm -rf "$T"' EXIT INT TERM
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/ota_lib.sh"
ota_backend "$T" || exit 1
cd "$T" || exit 1
mkdir -p ks

# load_v1 SRV: a version-1 registry in a server directory, as an older
# scpkit left it (its ota.json names the keystore only: SQLite; for
# PostgreSQL the directory names the database)
load_v1() {
    mkdir -p "$1" && chmod 700 "$1"
    if [ -n "${SCPKIT_OTA_DB:-}" ]; then
        printf '{ "keystore": "%s", "db": "%s" }\n' "$T/ks" "$SCPKIT_OTA_DB" >"$1/ota.json"
        psql -X -q -v ON_ERROR_STOP=1 "$SCPKIT_OTA_DB" -f "$HERE/registry_v1_pg.sql" >/dev/null
    else
        printf '{ "keystore": "%s" }\n' "$T/ks" >"$1/ota.json"
        sqlite3 "$1/registry.db" <"$HERE/registry_v1.sql"
    fi
}
wipe() { # an empty database again
    if [ -n "${SCPKIT_OTA_DB:-}" ]; then
        pg_sql "SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public" >/dev/null
    else
        rm -f "$1/registry.db" "$1/registry.db-wal" "$1/registry.db-shm"
    fi
}
objects() { # objects() SRV NAMES: how many of these tables/indexes exist
    if [ -n "${SCPKIT_OTA_DB:-}" ]; then
        reg_sql "$1" "select count(*) from pg_class where relname in ($2)"
    else
        reg_sql "$1" "select count(*) from sqlite_master where name in ($2)"
    fi
}

# --- version 1 -> 2, rows intact
expect 0 load_v1 srv
expect 0 objects srv "'schema_version','job_campaign'"
has "$T/out" "^0$"
expect 0 "$S" ota device list --dir srv --json
json "$T/out" "sorted((x['id'], x['kvn'], x['next_kvn']) for x in d['devices']) == [('DEV-MID', 1, 2), ('DEV-OLD', 1, 0)]"
expect 0 reg_sql srv "select version from schema_version order by version"
[ "$(tr '\n' ' ' <"$T/out")" = "1 2 " ] && ok || bad "schema_version rows: $(cat "$T/out")"
expect 0 objects srv "'schema_version','job_campaign','event_device'"
has "$T/out" "^3$"
expect 0 reg_sql srv "select count(*) from device where lease_holder is null"
has "$T/out" "^2$"
expect 0 "$S" ota campaign show --dir srv old --json
json "$T/out" "d['pending'] == 1 and d['running'] == 1 and d['total'] == 2"
expect 0 reg_sql srv "select attempts, reason from job where device = 'DEV-MID'"
has "$T/out" "^2|lost connection$"
# it works as a current registry: new rows get fresh ids
expect 0 "$S" ota device add --dir srv --id DEV-NEW --master fleet:1 --kdf kdf3 --kvn 1
expect 0 "$S" ota campaign create --dir srv --name new --target list:DEV-NEW \
    --rotate-keys --new-master fleet2:1 --new-kdf kdf3 --new-kvn 2
expect 0 reg_sql srv "select id from job where campaign = 'new'"
has "$T/out" "^3$"
# opening again changes nothing
expect 0 "$S" ota device list --dir srv
expect 0 reg_sql srv "select count(*) from schema_version"
has "$T/out" "^2$"

# --- a registry from a newer scpkit: refused, untouched
expect 0 reg_sql srv "insert into schema_version(version, applied) values(3, 0)"
expect 5 "$S" ota device list --dir srv
has "$T/err" "schema version 3 is newer than this scpkit's (2)"
expect 5 "$S" ota campaign show --dir srv old
has "$T/err" "newer"
expect 5 "$S" ota device add --dir srv --id DEV-X --master fleet:1 --kdf kdf3 --kvn 1
expect 5 "$S" ota serve --dir srv --listen 127.0.0.1:0
has "$T/err" "newer"
expect 0 reg_sql srv "select count(*) from device"
has "$T/out" "^3$"
expect 0 reg_sql srv "select max(version) from schema_version"
has "$T/out" "^3$"

# --- a failing migration leaves nothing: a version-1 registry whose
# device table already has the column version 2 adds
wipe srv
expect 0 load_v1 srv
expect 0 reg_sql srv "alter table device add column lease_holder text"
expect 5 "$S" ota device list --dir srv
has "$T/err" "migration to schema version 2 failed"
expect 0 objects srv "'schema_version','job_campaign','event_device'"
has "$T/out" "^0$"

# --- ota init --db: the password never printed (trust authentication
# ignores it; the refused connection's error neither)
if [ -n "${SCPKIT_OTA_DB:-}" ]; then
    wipe srv
    url=$(echo "$SCPKIT_OTA_DB" | sed 's|://postgres@|://postgres:hunter2-secret@|')
    expect 0 "$S" ota init --dir srv2 --keystore ks --self-signed localhost --db "$url"
    has "$T/out" "postgres:\*\*\*@127.0.0.1"
    hasnt "$T/out" "hunter2"
    expect 0 "$S" ota init --dir srv3 --keystore ks --self-signed localhost --db "$url" --json
    json "$T/out" "d['backend'] == 'postgresql' and 'hunter2' not in str(d)"
    expect 0 "$S" ota device add --dir srv2 --id SHARED-1 --master fleet:1 --kdf kdf3 --kvn 1
    expect 0 "$S" ota device list --dir srv3 --json     # two server directories, one database
    json "$T/out" "[x['id'] for x in d['devices']] == ['SHARED-1']"
    [ "$(stat -c %a srv2/ota.json)" = 600 ] && ok || bad "srv2/ota.json mode"
fi
expect 5 "$S" ota init --dir srv4 --keystore ks --self-signed localhost \
    --db "postgresql://fleet:hunter2-secret@127.0.0.1:1/ota?connect_timeout=3"
hasnt "$T/err" "hunter2"
has "$T/err" "fleet:\*\*\*@127.0.0.1:1"
[ ! -e srv4/ota.json ] && ok || bad "a failed init left srv4/ota.json"
expect 5 "$S" ota init --dir srv5 --keystore ks --self-signed localhost --db "mysql://x"
has "$T/err" "unknown database"
finish ota_migrate
