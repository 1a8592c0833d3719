#!/usr/bin/env bash
# bench/load.sh: load test of the real responder behind a real nginx, driven by wrk.
#
# Builds the release binary, then in a temporary folder: a copy of the sample
# installation `ct/` pointed at a sample license API on loopback, `tokenusage fcgi` on a
# unix socket, and Debian's nginx on a free loopback port passing `\.php$` to it exactly as
# a site would (`/etc/nginx/fastcgi_params`, `SCRIPT_FILENAME $document_root$fastcgi_script_name`).
# After one warm-up request it runs wrk against page 1, a late page (?page=34) and the CSV
# download (?action=download), then prints one table, the responder's peak RSS and the
# sample API's call counts. Exits non-zero on any socket error or non-200 response.
#
# Only loopback and unix sockets; every wait is bounded; everything it started is stopped
# and the temporary folder removed at exit, on failure and on Ctrl-C alike. The setup is
# bench/lib.sh, shared with bench/run.sh (issue 5's figures as one table).
#
# Usage: bash bench/load.sh [load|attack]
#   DURATION=60       seconds of load in all (split in three, one part per URL) ...
#   PER_URL=1         ... or DURATION seconds for each URL
#   CONNECTIONS=64    wrk connections (concurrency); THREADS=2 wrk threads
#   TIMEOUT=10        seconds after which wrk counts a request as timed out
#   TRANSACTIONS=10000  transactions in the sample API's history
#   WORKERS=N         tokenusage --workers (unset: its default)
#   KEEP_TMP=1        keep the temporary folder (logs, configs) and print its path
#
# Attack mode: bash bench/load.sh attack (or MODE=attack bash bench/load.sh), about 2 min.
# A "real admin" (curl, one page-1 view at a time through nginx) measures its latency
# while one thing misbehaves, each row on a fresh tokenusage: idle16, idle200 (idle
# connections on the FastCGI socket), trickle16 (BEGIN_REQUEST, then PARAMS a byte at a
# time), keepalive (nginx upstream keepalive 32 + fastcgi_keep_conn on, wrk -c64),
# api-hang, api-hang-5 (the license API never answers, caches warm, 1 or 5 admins),
# session-lock (--auth php-session; 64 requests on a session file PHP holds locked).
# One table: the admin's p50/p99/max/count beside a baseline (the same admin loop on the
# same setup, nothing misbehaving), PASS when p99 < 1.5 s and every view was the
# dashboard. Exit 0 all rows passed, 1 some failed, 2 the run failed. Details:
# bench/attack.sh; the hostile sockets: bench/attack.py (python3). Also needs curl, wrk,
# flock, php-cli (session-lock). Settings (with TRANSACTIONS, WORKERS, THREADS, KEEP_TMP):
#   ATTACK_SECONDS=10   seconds of each row's attack (the admin's window)
#   BASELINE_SECONDS=3  seconds of each row's baseline, just before its attack
#   ADMIN_TIMEOUT=5     seconds after which the admin's curl gives up (a failed view,
#                       counted as ADMIN_TIMEOUT: shown as ">=", a lower bound)
#   TRICKLE_INTERVAL=10 seconds between two bytes of a trickle16 connection
#   ATTACK_ROWS="idle16 idle200 trickle16 keepalive api-hang api-hang-5 session-lock"
#                       the rows to run, in order; api-hang-cold (the API hangs with
#                       nothing on hand: an info row) can be added
set -euo pipefail

MODE=${MODE:-load}
if (($# > 0)); then
    MODE=$1
    shift
fi
[[ $MODE == load || $MODE == attack ]] || {
    echo "load.sh: unknown mode '$MODE' (load or attack)" >&2
    exit 2
}
(($# == 0)) || {
    echo "load.sh: unexpected arguments: $*" >&2
    exit 2
}

DURATION=${DURATION:-60}
PER_URL=${PER_URL:-0}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
TIMEOUT=${TIMEOUT:-10}
TRANSACTIONS=${TRANSACTIONS:-10000}
WORKERS=${WORKERS:-}
KEEP_TMP=${KEEP_TMP:-0}

BENCH_NAME=load.sh
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ $MODE == attack ]]; then
    # shellcheck source=bench/attack.sh
    source "$ROOT/bench/attack.sh"
    exit 2 # attack.sh exits itself
fi

for name in DURATION CONNECTIONS THREADS TIMEOUT TRANSACTIONS; do
    [[ ${!name} =~ ^[0-9]+$ && ${!name} -gt 0 ]] || die "$name must be a positive integer, not '${!name}'"
done
[[ -z $WORKERS || $WORKERS =~ ^[1-9][0-9]*$ ]] || die "WORKERS must be a positive integer"
((CONNECTIONS >= THREADS)) || die "CONNECTIONS must be at least THREADS"
if [[ $PER_URL != 1 ]] && ((DURATION < 3)); then
    die "DURATION must be at least 3 (one second per URL), or set PER_URL=1"
fi
[[ -x $NGINX ]] || die "nginx is not installed (apt-get install -y nginx)"
command -v wrk >/dev/null || die "wrk is not installed (apt-get install -y wrk)"

# ---------------------------------------------------------------------------------------
build_release
make_tmp load

log "starting the sample API ($TRANSACTIONS transactions)"
start_sample_api sample-api "the sample API" "$TRANSACTIONS"
echo "   $API_URL"

# The sample installation pointed at it.
SITE=$TMP/site
copy_installation "$SITE/ct" "$API_URL"

SOCKET=$TMP/tokenusage.sock
log "starting tokenusage fcgi on unix:$SOCKET (--auth none: the load test is about the responder, not the admin check)"
FCGI_ARGS=()
[[ -n $WORKERS ]] && FCGI_ARGS+=(--workers "$WORKERS")
start_fcgi tokenusage tokenusage "$SOCKET" "${FCGI_ARGS[@]}"

start_nginx

PAGE=/ct/admin/tokenusage.php
TARGETS=("$PAGE" "$PAGE?page=34" "$PAGE?action=download")
BASE=http://127.0.0.1:$PORT

# ---------------------------------------------------------------------------------------
log "warming the caches: GET $BASE$PAGE"
status=$(http_get 127.0.0.1 "$PORT" "$PAGE" "$TMP/warmup.http")
[[ $status == 200 ]] || die "the warm-up request got status '${status:-none}', not 200"
echo "   200, $(wc -c <"$TMP/warmup.http") bytes"
echo "   tokenusage after warm-up: VmRSS $(proc_status "$TU_PID" VmRSS), VmHWM $(proc_status "$TU_PID" VmHWM)"

# Seconds per URL: DURATION each, or DURATION split in three (the remainder to the first).
DURATIONS=()
for i in 0 1 2; do
    if [[ $PER_URL == 1 ]]; then
        DURATIONS+=("$DURATION")
    else
        DURATIONS+=($((DURATION / 3 + (i < DURATION % 3 ? 1 : 0))))
    fi
done

FAILED=0
ROWS=()
for i in 0 1 2; do
    target=${TARGETS[$i]}
    seconds=${DURATIONS[$i]}
    out=$TMP/wrk-$i.txt
    # A stopped process would only turn the rest of the run into a flood of 502s.
    stopped=$(stopped_processes)
    if [[ -n $stopped ]]; then
        echo "load.sh: not running $target: stopped: $stopped" >&2
        FAILED=1
        ROWS+=("$target|-|-|-|-|not run|-")
        continue
    fi
    log "wrk -t$THREADS -c$CONNECTIONS -d${seconds}s --timeout ${TIMEOUT}s --latency $BASE$target"
    # wrk stops itself after -d; `timeout` bounds it in case it does not.
    timeout --kill-after=10 $((seconds + TIMEOUT + 30)) \
        wrk -t "$THREADS" -c "$CONNECTIONS" -d "${seconds}s" --timeout "${TIMEOUT}s" --latency \
        -s "$ROOT/bench/status.lua" "$BASE$target" >"$out" 2>&1 </dev/null &
    WRK_PID=$!
    PIDS+=("$WRK_PID")
    wrk_rc=0
    wait "$WRK_PID" || wrk_rc=$?
    forget_pid "$WRK_PID"
    sed 's/^/   /' "$out"
    if ((wrk_rc != 0)) || ! read_wrk_output "$out"; then
        echo "load.sh: wrk failed (exit $wrk_rc) for $target" >&2
        FAILED=1
        ROWS+=("$target|-|-|-|-|wrk failed|-")
        continue
    fi
    non200=${W[non200]}
    non200_detail=${W[non200_detail]}
    errors=$((W[connect] + W[read] + W[write] + W[timeout]))
    if ((errors > 0 || non200 > 0 || W[requests] == 0)); then
        FAILED=1
    fi
    if ((W[counted] != W[requests])); then
        echo "load.sh: wrk completed ${W[requests]} requests but status.lua counted ${W[counted]}" >&2
        FAILED=1
    fi
    rps=$(awk -v n="${W[requests]}" -v us="${W[duration_us]}" 'BEGIN { printf "%.1f", n / (us / 1e6) }')
    p50=$(awk -v us="${W[p50_us]}" 'BEGIN { printf "%.2f ms", us / 1000 }')
    p99=$(awk -v us="${W[p99_us]}" 'BEGIN { printf "%.2f ms", us / 1000 }')
    avg=$(awk -v b="${W[bytes]}" -v n="${W[requests]}" 'BEGIN { if (n > 0) printf "%.0f", b / n; else print 0 }')
    ROWS+=("$target|${W[requests]}|$rps|$p50|$p99|${W[connect]}/${W[read]}/${W[write]}/${W[timeout]}|$non200${non200_detail:+ (${non200_detail# })}")
    echo "   -> ${W[requests]} requests in ${seconds}s, $avg bytes each on average;" \
        "tokenusage VmRSS $(proc_status "$TU_PID" VmRSS), VmHWM $(proc_status "$TU_PID" VmHWM)"
done

# ---------------------------------------------------------------------------------------
HWM=$(proc_status "$TU_PID" VmHWM)
RSS=$(proc_status "$TU_PID" VmRSS)
stopped=$(stopped_processes)
if [[ -n $stopped ]]; then
    echo "load.sh: no longer running: $stopped" >&2
    FAILED=1
fi
http_get "$API_HOST" "$API_PORT" /__control/calls "$TMP/calls.http" >/dev/null 2>&1
CALLS=$(http_body "$TMP/calls.http" | tr -d '\r')
NGINX_ERRORS=$(grep -cE '\[(error|crit|alert|emerg)\]' "$TMP/nginx/error.log" || true)
TU_LINES=$(grep -vc -- '--auth none' "$TMP/tokenusage.err" || true)

echo
if [[ $PER_URL == 1 ]]; then
    mode="$DURATION s per URL"
else
    mode="$DURATION s in all, split over the three URLs"
fi
echo "tokenusage load test: $BASE, $CONNECTIONS connections, $THREADS wrk threads, $mode," \
    "$TRANSACTIONS transactions, $(nproc) CPUs"
fmt='%-42s %9s %10s %11s %11s %22s  %s\n'
# shellcheck disable=SC2059
printf "$fmt" URL requests requests/s "p50" "p99" "socket errors c/r/w/t" "non-200"
for row in "${ROWS[@]}"; do
    IFS='|' read -r url n rps p50 p99 errs non200 <<<"$row"
    # shellcheck disable=SC2059
    printf "$fmt" "$url" "$n" "$rps" "$p50" "$p99" "$errs" "$non200"
done
echo
echo "tokenusage (pid $TU_PID) peak RSS (VmHWM): ${HWM:-unavailable}; RSS at the end (VmRSS): ${RSS:-unavailable}"
echo "sample API calls (/__control/calls): ${CALLS:-unavailable}"
echo "nginx error.log: $NGINX_ERRORS lines at [error] or worse;" \
    "tokenusage stderr: $TU_LINES lines besides the --auth none warning"

if ((FAILED != 0)); then
    echo "FAILED: socket errors or non-200 responses (logs below)"
    exit 1
fi
echo "OK: no socket errors, no non-200 responses"
