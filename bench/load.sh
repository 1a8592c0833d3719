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
# and the temporary folder removed at exit, on failure and on Ctrl-C alike.
#
# Usage: bash bench/load.sh
#   DURATION=60       seconds of load in all (split in three, one part per URL) ...
#   PER_URL=1         ... or DURATION seconds for each URL
#   CONNECTIONS=64    wrk connections (concurrency); THREADS=2 wrk threads
#   TIMEOUT=10        seconds after which wrk counts a request as timed out
#   TRANSACTIONS=10000  transactions in the sample API's history
#   WORKERS=N         tokenusage --workers (unset: its default)
#   KEEP_TMP=1        keep the temporary folder (logs, configs) and print its path
set -euo pipefail

DURATION=${DURATION:-60}
PER_URL=${PER_URL:-0}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
TIMEOUT=${TIMEOUT:-10}
TRANSACTIONS=${TRANSACTIONS:-10000}
WORKERS=${WORKERS:-}
KEEP_TMP=${KEEP_TMP:-0}

die() {
    echo "load.sh: $*" >&2
    exit 2
}

for name in DURATION CONNECTIONS THREADS TIMEOUT TRANSACTIONS; do
    [[ ${!name} =~ ^[0-9]+$ && ${!name} -gt 0 ]] || die "$name must be a positive integer, not '${!name}'"
done
[[ -z $WORKERS || $WORKERS =~ ^[1-9][0-9]*$ ]] || die "WORKERS must be a positive integer"
((CONNECTIONS >= THREADS)) || die "CONNECTIONS must be at least THREADS"
if [[ $PER_URL != 1 ]] && ((DURATION < 3)); then
    die "DURATION must be at least 3 (one second per URL), or set PER_URL=1"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX ]] || die "nginx is not installed (apt-get install -y nginx)"
command -v wrk >/dev/null || die "wrk is not installed (apt-get install -y wrk)"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN=$ROOT/target/release/tokenusage

log() { echo "== $*"; }

# ---------------------------------------------------------------------------------------
# Cleanup: every process started here is in PIDS; the EXIT trap stops them (TERM, then
# KILL after 10 s), prints the logs' tails when the run failed, and removes the folder.
# INT and TERM turn into an exit so the EXIT trap runs on Ctrl-C too.
PIDS=()
TMP=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    local deadline=$((SECONDS + 10))
    for pid in "${PIDS[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "load.sh: process $pid did not stop on SIGTERM; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n $TMP && -d $TMP ]]; then
        if ((rc != 0)); then
            show_logs >&2
        fi
        if [[ $KEEP_TMP == 1 ]]; then
            echo "load.sh: kept $TMP" >&2
        else
            rm -rf -- "$TMP"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The logs, for a failed run: nginx's error messages counted by kind (the ids, times and
# clients taken out) with the first and last lines, then the tails of the two stderrs.
# nginx's warning that a large upstream response (the CSV) was buffered to a temporary
# file is normal with Debian's default buffers: left out.
show_logs() {
    local log=$TMP/nginx/error.log
    if [[ -f $log ]]; then
        echo "---- nginx error.log: messages by kind (most frequent first)"
        grep -v 'buffered to a temporary file' "$log" |
            sed -E 's/^[0-9\/]+ [0-9:]+ (\[[a-z]+\]) [0-9#]+: (\*[0-9]+ )?/\1 /; s/, client: .*, request: "([A-Z]+ [^ ]*).*/ (\1)/' |
            sort | uniq -c | sort -rn | head -n 15 || true
        echo "---- nginx error.log (first 10 and last 20 lines)"
        grep -v 'buffered to a temporary file' "$log" | head -n 10 || true
        echo "   ..."
        grep -v 'buffered to a temporary file' "$log" | tail -n 20 || true
    fi
    if [[ -f $TMP/tokenusage.err ]]; then
        echo "---- tokenusage stderr (last 40 lines)"
        tail -n 40 "$TMP/tokenusage.err"
    fi
    if [[ -f $TMP/sample-api.err ]]; then
        echo "---- sample API stderr (last 20 lines)"
        tail -n 20 "$TMP/sample-api.err"
    fi
}

# Drops a process that has been waited for from PIDS, so cleanup never signals its id
# (which the kernel may by then have given to another process).
forget_pid() {
    local pid kept=()
    for pid in "${PIDS[@]}"; do
        [[ $pid == "$1" ]] || kept+=("$pid")
    done
    PIDS=("${kept[@]}")
}

# The names of the processes this run depends on that are no longer running.
stopped_processes() {
    local names=()
    kill -0 "$API_PID" 2>/dev/null || names+=("the sample API")
    kill -0 "$TU_PID" 2>/dev/null || names+=("tokenusage")
    kill -0 "$NGINX_PID" 2>/dev/null || names+=("nginx")
    echo "${names[*]}"
}

# An HTTP/1.1 GET over bash's /dev/tcp (no curl needed), bounded by `timeout`:
# http_get HOST PORT TARGET OUT_FILE writes the whole response and prints the status code.
http_get() {
    local host=$1 port=$2 target=$3 out=$4
    timeout 120 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n" "$2" "$0" "$1" >&3
        cat <&3' "$host" "$port" "$target" >"$out" || true
    head -n 1 "$out" | awk '{ print $2 }'
}

# The body of a response written by http_get.
http_body() {
    awk 'body { print } /^\r?$/ { body = 1 }' "$1"
}

# True when a TCP port appears in the kernel's tables (listening or in a connection).
port_in_use() {
    local hex
    hex=$(printf ':%04X ' "$1")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -qi -- "$hex"
}

# A field of /proc/PID/status, e.g. "123456 kB".
proc_status() {
    awk -v key="$2:" '$1 == key { print $2, $3 }' "/proc/$1/status" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------
log "building the release binary"
cargo build --release --locked

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tokenusage-load.XXXXXX")
log "temporary folder $TMP"

# The sample installation, as the tests copy it: the admin page and the config only. The
# cache files a demo run may have left in ct/dat are not copied, so the history comes from
# the sample API started below.
SITE=$TMP/site
mkdir -p "$SITE/ct/dat"
cp -R ct/admin "$SITE/ct/admin"
[[ -d ct/dat/lang ]] && cp -R ct/dat/lang "$SITE/ct/dat/lang"

log "starting the sample API ($TRANSACTIONS transactions)"
# Made here, before the background process opens it, so the first poll finds it.
: >"$TMP/sample-api.out"
"$BIN" sample-api --listen 127.0.0.1:0 --transactions "$TRANSACTIONS" \
    >"$TMP/sample-api.out" 2>"$TMP/sample-api.err" </dev/null &
API_PID=$!
PIDS+=("$API_PID")
API_URL=
for _ in $(seq 100); do
    API_URL=$(grep -m 1 '^http://' "$TMP/sample-api.out" 2>/dev/null || true)
    [[ -n $API_URL ]] && break
    kill -0 "$API_PID" 2>/dev/null || die "the sample API exited at start"
    sleep 0.1
done
[[ -n $API_URL ]] || die "the sample API printed no URL within 10 s"
API_HOSTPORT=${API_URL#http://}
API_HOSTPORT=${API_HOSTPORT%%/*}
API_HOST=${API_HOSTPORT%:*}
API_PORT=${API_HOSTPORT##*:}
[[ $API_HOST == 127.0.0.1 ]] || die "the sample API is not on loopback: $API_URL"
echo "   $API_URL"

# Point the config's api_url at it.
sed "s|^\(\$license_config\['api_url'\] *= *\)'[^']*'|\1'$API_URL'|" \
    ct/dat/config.inc.php >"$SITE/ct/dat/config.inc.php"
grep -qF "'$API_URL'" "$SITE/ct/dat/config.inc.php" ||
    die "could not set api_url in the copy of ct/dat/config.inc.php"

# --auth none: this load test measures the responder (routing, caches, rendering, CSV,
# FastCGI), not the admin check, so no session files are involved. Never on a real site.
SOCKET=$TMP/tokenusage.sock
log "starting tokenusage fcgi on unix:$SOCKET (--auth none: the load test is about the responder, not the admin check)"
FCGI_ARGS=(fcgi --listen "unix:$SOCKET" --auth none)
[[ -n $WORKERS ]] && FCGI_ARGS+=(--workers "$WORKERS")
"$BIN" "${FCGI_ARGS[@]}" >"$TMP/tokenusage.out" 2>"$TMP/tokenusage.err" </dev/null &
TU_PID=$!
PIDS+=("$TU_PID")
for _ in $(seq 100); do
    [[ -S $SOCKET ]] && break
    kill -0 "$TU_PID" 2>/dev/null || die "tokenusage exited at start"
    sleep 0.1
done
[[ -S $SOCKET ]] || die "tokenusage made no socket within 10 s"

# nginx: its own config and prefix in the temporary folder, in the foreground of its own
# background process (daemon off), on a free loopback port (retried if taken meanwhile).
mkdir -p "$TMP/nginx/tmp"
USER_LINE=
[[ $(id -u) == 0 ]] && USER_LINE="user root;"
write_nginx_conf() {
    cat >"$TMP/nginx/nginx.conf" <<EOF
$USER_LINE
worker_processes auto;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/tmp/body;
    fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
    proxy_temp_path $TMP/nginx/tmp/proxy;
    uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
    scgi_temp_path $TMP/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$1;
        root $SITE;
        location ~ \.php\$ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass unix:$SOCKET;
        }
    }
}
EOF
}
PORT=
for attempt in 1 2 3 4 5; do
    candidate=$((20000 + RANDOM % 12000))
    port_in_use "$candidate" && continue
    write_nginx_conf "$candidate"
    log "starting nginx on 127.0.0.1:$candidate"
    "$NGINX" -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' \
        >"$TMP/nginx/stdout.log" 2>&1 </dev/null &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
            PORT=$candidate
            break
        fi
        kill -0 "$NGINX_PID" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n $PORT ]] && break
    if grep -q 'Address already in use' "$TMP/nginx/error.log" 2>/dev/null; then
        echo "   port $candidate was taken; trying another (attempt $attempt)"
        kill -TERM "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
        forget_pid "$NGINX_PID"
        : >"$TMP/nginx/error.log"
        continue
    fi
    die "nginx did not start: $(cat "$TMP/nginx/stdout.log")"
done
[[ -n $PORT ]] || die "found no free loopback port for nginx"

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
    summary=$(grep -m 1 '^SUMMARY ' "$out" || true)
    if ((wrk_rc != 0)) || [[ -z $summary ]]; then
        echo "load.sh: wrk failed (exit $wrk_rc) for $target" >&2
        FAILED=1
        ROWS+=("$target|-|-|-|-|wrk failed|-")
        continue
    fi
    declare -A s=()
    for pair in ${summary#SUMMARY }; do
        s[${pair%%=*}]=${pair#*=}
    done
    counted=0
    non200=0
    non200_detail=
    while read -r _ code n; do
        counted=$((counted + n))
        if [[ $code != 200 ]]; then
            non200=$((non200 + n))
            non200_detail+=" ${code}x$n"
        fi
    done < <(grep '^STATUS ' "$out" || true)
    errors=$((s[connect] + s[read] + s[write] + s[timeout]))
    if ((errors > 0 || non200 > 0 || s[requests] == 0)); then
        FAILED=1
    fi
    if ((counted != s[requests])); then
        echo "load.sh: wrk completed ${s[requests]} requests but status.lua counted $counted" >&2
        FAILED=1
    fi
    rps=$(awk -v n="${s[requests]}" -v us="${s[duration_us]}" 'BEGIN { printf "%.1f", n / (us / 1e6) }')
    p50=$(awk -v us="${s[p50_us]}" 'BEGIN { printf "%.2f ms", us / 1000 }')
    p99=$(awk -v us="${s[p99_us]}" 'BEGIN { printf "%.2f ms", us / 1000 }')
    avg=$(awk -v b="${s[bytes]}" -v n="${s[requests]}" 'BEGIN { if (n > 0) printf "%.0f", b / n; else print 0 }')
    ROWS+=("$target|${s[requests]}|$rps|$p50|$p99|${s[connect]}/${s[read]}/${s[write]}/${s[timeout]}|$non200${non200_detail:+ (${non200_detail# })}")
    echo "   -> ${s[requests]} requests in ${seconds}s, $avg bytes each on average;" \
        "tokenusage VmRSS $(proc_status "$TU_PID" VmRSS), VmHWM $(proc_status "$TU_PID" VmHWM)"
    unset s
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
