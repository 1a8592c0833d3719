#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, two at a time, niced, and
# prints a table: target, seconds, executions, corpus files, crashes.
#
# Usage: fuzz/run-all.sh SECONDS [TARGET...]
#   FUZZ_SANITIZER=none fuzz/run-all.sh 60   (if the address sanitizer will not build)
#   FUZZ_JOBS=1 fuzz/run-all.sh 600          (one at a time)
# Logs: fuzz/target/logs/TARGET.log; crash inputs: fuzz/artifacts/TARGET/.
# Exits 1 when any target crashed (or failed to run).
set -uo pipefail
seconds=${1:?usage: fuzz/run-all.sh SECONDS [TARGET...]}
shift
cd "$(dirname "$0")/.."
root=$PWD
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(fastcgi_records php_config php_session query_and_cookies api_json cache_files)
fi
sanitizer=${FUZZ_SANITIZER:-address}
jobs=${FUZZ_JOBS:-2}
logs=$root/fuzz/target/logs
mkdir -p "$logs"
# cargo-fuzz passes nightly-only flags (-Zsanitizer, -Cpasses=sancov-module); on a
# stable toolchain RUSTC_BOOTSTRAP=1 lets rustc accept them.
export RUSTC_BOOTSTRAP=1

# Build once up front, so the parallel runs below do not wait on each other's builds.
nice -n 10 cargo fuzz build --sanitizer "$sanitizer" >"$logs/build.log" 2>&1 ||
    { cat "$logs/build.log"; exit 1; }

run_one() { # run_one TARGET
    local target=$1 start
    mkdir -p "$root/fuzz/corpus/$target"
    start=$(date +%s)
    nice -n 10 cargo fuzz run --sanitizer "$sanitizer" "$target" \
        "$root/fuzz/corpus/$target" "$root/fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -timeout=25 -print_final_stats=1 \
        >"$logs/$target.log" 2>&1
    echo "$? $(($(date +%s) - start))" >"$logs/$target.status"
}

for target in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    echo "fuzzing $target for ${seconds}s (log: fuzz/target/logs/$target.log)" >&2
    run_one "$target" &
done
wait

failed=0
printf '%-18s %8s %14s %8s %8s\n' target seconds executions corpus crashes
for target in "${targets[@]}"; do
    read -r rc wall <"$logs/$target.status"
    log=$logs/$target.log
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -n1 | grep -o '[0-9]*$')
    corpus=$(find "$root/fuzz/corpus/$target" -type f | wc -l)
    crashes=$(grep -c 'Test unit written to' "$log")
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        failed=1
        [ "$crashes" -eq 0 ] && crashes="exit $rc"
    fi
    printf '%-18s %8s %14s %8s %8s\n' "$target" "$wall" "${execs:-?}" "$corpus" "$crashes"
done
exit "$failed"
