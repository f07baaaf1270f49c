#!/bin/sh
# Build every libFuzzer target with clang (ASan+UBSan) and run each for
# SECONDS seconds (default 60) on a scratch copy of its committed corpus.
# Usage: sh fuzz/run.sh [SECONDS]      (make fuzz FUZZ_SECONDS=N)
# New inputs go to build-fuzz/corpus/<name>/; crashes to
# build-fuzz/crashes/<name>/ and the script exits non-zero.
set -eu
secs=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SCP_FUZZ_BUILD:-$root/build-fuzz}
jobs=${SCP_FUZZ_JOBS:-2}

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DSCP_FUZZ=ON \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=""
for src in "$root"/fuzz/fuzz_*.c; do
    targets="$targets $(basename "$src" .c)"
done
# only the fuzz targets: the rest of the tree is built and tested by make check
# shellcheck disable=SC2086
cmake --build "$build" -j"$jobs" --target $targets

status=0
for src in "$root"/fuzz/fuzz_*.c; do
    target=$(basename "$src" .c)
    name=${target#fuzz_}
    work="$build/corpus/$name"
    crashes="$build/crashes/$name"
    mkdir -p "$work" "$crashes"
    echo "== $target: ${secs}s"
    if ! "$build/fuzz/$target" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 \
            -print_final_stats=1 -artifact_prefix="$crashes/" \
            "$work" "$root/fuzz/corpus/$name" >"$build/$target.log" 2>&1; then
        echo "!! $target failed: see $build/$target.log and $crashes/"
        tail -40 "$build/$target.log"
        status=1
    else
        grep -E "^stat::(number_of_executed_units|new_units_added)|^#[0-9]+ *DONE" \
            "$build/$target.log" || true
    fi
done
exit $status
