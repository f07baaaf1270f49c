#!/bin/sh
# bench/fleet.sh BUILD [N] [BACKEND]: a key rotation of N virtual devices
# (default 10000) by `scpkit fleet simulate` (one process, curl multi, no
# faults) against 1 and then 2 `scpkit ota serve` processes sharing one
# registry (BACKEND sqlite, the default, or pg: a private PostgreSQL
# cluster, tests/lib.sh pg_start). Prints, per run: wall time, rotations
# per second, the CPU seconds of the servers, of the simulator and of
# PostgreSQL (from /proc and getrusage), and the ratios: 2-process over
# 1-process throughput, and the same per CPU second the servers got.
# One JSON line per run appended to bench/fleet_results.json.
# Processes by PID (servers under timeout), 127.0.0.1 only.
set -u
B=${1:?usage: bench/fleet.sh BUILD [N] [sqlite|pg]}
N=${2:-10000}
BACKEND=${3:-sqlite}
S=$B/tools/scpkit
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/scpkit-fleet-bench.XXXXXX)
TPS=
. "$HERE/../tests/lib.sh"
. "$HERE/../tests/ota/ota_lib.sh"
trap 'for p in $TPS; do stop_pid $p; done; pg_stop; rm -rf "$T"' EXIT INT TERM
cd "$T" || exit 1
export SCPKIT_ACTOR=fleet-bench
[ "$BACKEND" = pg ] && export SCPKIT_TEST_DB=pg
ota_backend "$T" || exit 1
keystore_setup ks || { echo "keystore setup failed" >&2; exit 1; }
"$S" ota init --dir srv --keystore ks --self-signed localhost >/dev/null || exit 1
"$S" fleet provision --dir srv --cards cards --devices "$N" --master fleet:1 --kdf kdf3 --kvn 1 \
    --json >prov.json || { cat prov.json; exit 1; }
echo "fleet bench: $N devices, backend $BACKEND, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) (a shared, busy machine)"
python3 -c 'import json; d=json.load(open("prov.json")); print("provision: %d devices in %.1f s (%.0f/s), registry insert %.2f s" % (d["devices"], d["seconds"], d["per_second"], d["registry_seconds"]))'

# cpu PID...: user+system seconds of the processes (and their children
# already reaped) from /proc/PID/stat
cpu() {
    for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null; done | python3 -c '
import os, sys
t = 0
for line in sys.stdin:
    f = line[line.rindex(")") + 2:].split()
    t += sum(int(x) for x in f[11:15])
print("%.2f" % (t / os.sysconf("SC_CLK_TCK")))'
}
pg_procs() { [ -n "${PG_PID:-}" ] && { echo "$PG_PID"; pgrep -P "$PG_PID"; }; }

run=0 kvn=1
for k in 1 2; do
    TPS= SPIDS= URLS=
    for i in $(seq 1 "$k"); do
        rm -f srv/https.port
        timeout -s KILL 7200 "$S" ota serve --dir srv --listen 127.0.0.1:0 --log /dev/null \
            --io-timeout 120 --step-timeout 120000 --lease 300000 2>>srv/serve.err &
        TPS="$TPS $!"
        wait_for 20 test -s srv/https.port || { echo "server did not start" >&2; exit 1; }
        URLS="$URLS --server https://localhost:$(cat srv/https.port)/"
        SPIDS="$SPIDS $(pgrep -P $! | head -1)"
    done
    run=$((run + 1)); kvn=$((kvn + 1))
    [ $((run % 2)) -eq 1 ] && m=fleet2:1 || m=fleet:1
    "$S" ota campaign create --dir srv --name "bench$run" --target all --rotate-keys \
        --new-master $m --new-kdf kdf3 --new-kvn $kvn >/dev/null || exit 1
    c0=$(cpu $SPIDS); p0=$(cpu $(pg_procs))
    load0=$(cut -d' ' -f1 /proc/loadavg)
    # shellcheck disable=SC2086
    "$S" fleet simulate --cards cards $URLS --ca srv/tls/cert.pem --concurrency 400 \
        --timeout 7000 --json >sim$k.json 2>sim$k.err
    src=$?
    c1=$(cpu $SPIDS); p1=$(cpu $(pg_procs))
    load1=$(cut -d' ' -f1 /proc/loadavg)
    for p in $TPS; do stop_pid "$p"; done; TPS=
    python3 - sim$k.json "$k" "$c0" "$c1" "$p0" "$p1" "$BACKEND" "$N" "$load0" "$load1" "$src" <<'PY' >>res.txt
import json, sys
d = json.load(open(sys.argv[1]))
k, c0, c1, p0, p1 = int(sys.argv[2]), *map(float, sys.argv[3:7])
srv, pg = c1 - c0, p1 - p0
rot = d["sessions_with_scripts"]
r = {"backend": sys.argv[7], "devices": int(sys.argv[8]), "servers": k, "converged": d["converged"],
     "exit": int(sys.argv[11]), "seconds": round(d["seconds"], 1), "rotations": rot,
     "rotations_per_s": round(rot / d["seconds"], 2), "server_cpu_s": round(srv, 1),
     "simulator_cpu_s": round(d["simulator_cpu_seconds"], 1), "postgres_cpu_s": round(pg, 1),
     "server_cpu_ms_per_rotation": round(1000 * srv / max(rot, 1), 2),
     "server_cpu_share": round(srv / d["seconds"], 2),
     "load_before": float(sys.argv[9]), "load_after": float(sys.argv[10])}
print(json.dumps(r))
PY
done
python3 - res.txt <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
for r in rs:
    print("%(backend)s %(servers)d server(s): %(converged)d/%(devices)d converged in %(seconds).0f s, "
          "%(rotations_per_s).1f rotations/s; CPU s: servers %(server_cpu_s).0f (%(server_cpu_ms_per_rotation).1f ms "
          "per rotation, %(server_cpu_share).2f cores busy), simulator %(simulator_cpu_s).0f, postgres %(postgres_cpu_s).0f; "
          "load %(load_before).1f -> %(load_after).1f" % r)
if len(rs) == 2:
    a, b = rs
    print("scaling 1 -> 2 server processes: %.2fx throughput; per server CPU second: %.2fx; "
          "CPU left for servers (2 cores - simulator - postgres): %.2f / %.2f cores"
          % (b["rotations_per_s"] / a["rotations_per_s"],
             (b["rotations"] / max(b["server_cpu_s"], 0.01)) / (a["rotations"] / max(a["server_cpu_s"], 0.01)),
             2 - (a["simulator_cpu_s"] + a["postgres_cpu_s"]) / a["seconds"],
             2 - (b["simulator_cpu_s"] + b["postgres_cpu_s"]) / b["seconds"]))
PY
cat res.txt >>"$HERE/fleet_results.json"
