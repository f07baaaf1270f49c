#!/bin/sh
# tests/ota/test_ota_registry on the backend SCPKIT_TEST_DB names (sqlite,
# or pg: a private PostgreSQL cluster, started and stopped by PID here).
set -u
B=${1:?usage: registry_unit.sh path/to/test_ota_registry}
T=$(mktemp -d /tmp/scpkit-ota-reg.XXXXXX)
trap 'pg_stop; rm -rf "$T"' EXIT INT TERM
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/ota_lib.sh"
ota_backend "$T" || exit 1
"$B" "$T"
