#!/usr/bin/env bash
# bench/run.sh: issue 5's performance figures, measured side by side in one run and
# printed as one table (figure, command, value, reference, ratio, target, PASS/FAIL).
#
# This machine is shared and noisy, so every figure is a median or a ratio against a
# reference measured in the same run, and the requests behind a ratio are interleaved
# (A, B, A, B, ...) so drift in the machine's load hits both sides alike.
#
# In a temporary folder, with the setup of bench/lib.sh (shared with bench/load.sh):
#   - sample APIs on loopback: 10,000 transactions; the same with --delay-ms 100; 100,000
#   - copies of ct/ under one nginx root ($TMP/site): ct (the main one), lat0/ct and
#     lat30/ct (on the slow API), big/ct (100,000 transactions), i1/ct ... i100/ct (each
#     with its own domain demo-N.example.com)
#   - tokenusage fcgi --auth none: "main" (ct and big, default options), "lat0"
#     (--account-cache-seconds 0), "lat30" (default account cache), "multi" (i1..i100)
#   - Debian's nginx on a free loopback port: /lat0/, /lat30/ and /iN/ go to their own
#     responders, every other .php to "main"; static/ holds the saved page and CSV
#     (/w64/ is for a diagnosis: a responder with --workers 64, started only then).
# Figures:
#   1 latency floor: warm and cold views with the API delaying each call by 100 ms,
#     against what the PHP page (calls in sequence) needs at least
#   2 throughput: wrk on page 1 against nginx serving the saved page, p50 and p99; the same
#     through an nginx upstream with keepalive 32 and fastcgi_keep_conn on
#   3 page 34 against page 1: sequential latency and wrk throughput
#   4 CSV: 10,000 rows against the same CSV as a static file; 100,000 rows against 10,000
#   5 memory: peak RSS during the throughput run; 100 installations in one process
#   6 CGI: one request with process start against FastCGI (cgi-fcgi) and through nginx
#   7 kept history of 100,000: page 300 against page 1; the first view after a fetch by
#     another process against a warm view; the database against the same JSON
#
# Exit status: 0 every figure passed, 1 some figure failed, 2 the run itself failed
# (a request answered other than 200, a process stopped, a tool missing; logs are shown).
#
# Usage: bash bench/run.sh
#   BUILD=0           use target/release/tokenusage as it is (default: cargo build first)
#   WRK_SECONDS=10    seconds of each wrk run (page 1, the saved page, page 34)
#   DIAGNOSE=auto     when the throughput figure fails: the same wrk run on a new responder
#                     with --workers 64; when the CGI or throughput figure fails: callgrind
#                     (top 20) of one CGI run and of 10 warm FastCGI views; when the 100-installation figure
#                     fails: those rounds again in a new process with MALLOC_ARENA_MAX=2,
#                     then with --memory-budget-mb 8 (info rows). 1: always, 0: never
#   KEEP_TMP=1        keep the temporary folder (logs, configs, raw timings, profiles)
set -euo pipefail
export LC_ALL=C

BUILD=${BUILD:-1}
DIAGNOSE=${DIAGNOSE:-auto}
WRK_SECONDS=${WRK_SECONDS:-10}
KEEP_TMP=${KEEP_TMP:-0}

DELAY_MS=100          # the slow sample API's delay per call
CONNECTIONS=32        # wrk concurrency for the throughput figures
WARM_RUNS=20          # sequential warm views per latency figure
COLD_RUNS=10          # cold views
CSV_RUNS=10           # downloads of each CSV
CGI_RUNS=50           # CGI, cgi-fcgi and nginx requests each
INSTALLATIONS=100     # installations served by one process (memory figure)
ROUNDS=3              # page views of each of them
PARALLEL=4            # ... this many at a time
BIG=100000            # transactions of the large CSV and kept history
FETCH_RUNS=${FETCH_RUNS:-7}  # history fetches by another process, each then viewed

BENCH_NAME=run.sh
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $WRK_SECONDS =~ ^[1-9][0-9]*$ ]] || die "WRK_SECONDS must be a positive integer"
[[ $DIAGNOSE =~ ^(auto|0|1)$ ]] || die "DIAGNOSE must be auto, 0 or 1"
[[ -x $NGINX ]] || die "nginx is not installed (apt-get install -y nginx)"
for tool in wrk curl jq cgi-fcgi md5sum; do
    command -v "$tool" >/dev/null || die "$tool is not installed (sudo bash .ci/install installs wrk, curl, jq and cgi-fcgi; md5sum is coreutils)"
done

START=$SECONDS
echo "tokenusage bench/run.sh: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), nproc $(nproc)," \
    "load average $(cut -d ' ' -f 1-3 /proc/loadavg) (other work on this machine adds noise:" \
    "compare the ratios, not the absolute figures)"

# ---------------------------------------------------------------------------------------
# Helpers.

# The median of the numbers in a file, one a line.
median() {
    sort -g "$1" | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# 100000 -> 100,000, as the page shows counts.
commas() { sed -E ':a; s/^([0-9]+)([0-9]{3})/\1,\2/; ta' <<<"$1"; }

# calc EXPR: floating point arithmetic, printed with %.6g.
calc() { awk "BEGIN { printf \"%.6g\", $1 }"; }

# timed_get NAME URL: one GET with curl, its time_total in ms appended to $TMP/t/NAME;
# anything but a 200 ends the run.
timed_get() {
    local line code secs
    line=$(curl -s -o /dev/null --max-time 60 -w '%{http_code} %{time_total}' "$2" || true)
    read -r code secs <<<"$line"
    [[ $code == 200 ]] || die "GET $2 answered '${code:-nothing}', not 200"
    calc "$secs * 1000" >>"$TMP/t/$1"
    echo >>"$TMP/t/$1"
}

# fetch URL FILE: a GET saved to FILE, bounded; anything but a 200 ends the run.
fetch() {
    local code
    code=$(curl -s -o "$2" --max-time 120 -w '%{http_code}' "$1" || true)
    [[ $code == 200 ]] || die "GET $1 answered '${code:-nothing}', not 200"
}

# api_calls URL: the number of endpoint calls a sample API has answered so far.
api_calls() {
    curl -s --max-time 10 "${1%%/projects/*}/__control/calls" | jq '[.[]] | add'
}

# run_wrk NAME URL: wrk at $CONNECTIONS connections for $WRK_SECONDS with bench/status.lua,
# in the background (so Ctrl-C stops it) and bounded; its figures end up in W.
run_wrk() {
    local out=$TMP/wrk-$1.txt rc=0
    log "wrk -t2 -c$CONNECTIONS -d${WRK_SECONDS}s --latency $2"
    timeout --kill-after=10 $((WRK_SECONDS + 40)) \
        wrk -t 2 -c "$CONNECTIONS" -d "${WRK_SECONDS}s" --timeout 10s --latency \
        -s "$ROOT/bench/status.lua" "$2" >"$out" 2>&1 </dev/null &
    local pid=$!
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    forget_pid "$pid"
    ((rc == 0)) && read_wrk_output "$out" || die "wrk failed (exit $rc) for $2: $(tail -n 3 "$out")"
    local errors=$((W[connect] + W[read] + W[write] + W[timeout]))
    ((errors == 0 && W[non200] == 0 && W[requests] > 0)) ||
        die "wrk on $2: ${W[requests]} requests, socket errors $errors, non-200:${W[non200_detail]:- 0}"
    W[rps]=$(calc "${W[requests]} / (${W[duration_us]} / 1e6)")
    echo "   ${W[requests]} requests, $(printf %.0f "${W[rps]}") requests/s," \
        "p50 $(calc "${W[p50_us]} / 1000") ms, p99 $(calc "${W[p99_us]} / 1000") ms"
}

# cpu_ticks PID...: user + system CPU time of processes so far, in clock ticks.
cpu_ticks() {
    local pid total=0
    for pid in "$@"; do
        total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)

# cpu_per_request NAME URL: run_wrk NAME URL, and the CPU the main responder and nginx's
# workers spent per request meanwhile (ms), into W[cpu_tu] and W[cpu_nginx].
cpu_per_request() {
    local workers tu0 ng0 tu1 ng1
    read -r -a workers <<<"$(ps -o pid= --ppid "$NGINX_PID" | tr '\n' ' ')"
    tu0=$(cpu_ticks "$MAIN_PID")
    ng0=$(cpu_ticks "${workers[@]}")
    run_wrk "$1" "$2"
    tu1=$(cpu_ticks "$MAIN_PID")
    ng1=$(cpu_ticks "${workers[@]}")
    W[cpu_tu]=$(calc "($tu1 - $tu0) * 1000 / $CLK_TCK / ${W[requests]}")
    W[cpu_nginx]=$(calc "($ng1 - $ng0) * 1000 / $CLK_TCK / ${W[requests]}")
    echo "   CPU per request: tokenusage $(printf %.3f "${W[cpu_tu]}") ms, nginx workers $(printf %.3f "${W[cpu_nginx]}") ms"
}

# Checks that nothing this run depends on has stopped.
check_running() {
    local stopped
    stopped=$(stopped_processes)
    [[ -z $stopped ]] || die "no longer running: $stopped"
}

# The table: "figure|command|value|reference|ratio|target" rows; row OP LIMIT decides
# PASS/FAIL from the ratio (OP is <= or >=; "info" for none).
ROWS=()
FAILS=0
row() {
    local figure=$1 command=$2 value=$3 reference=$4 ratio=$5 op=$6 limit=${7:-}
    local result=info target=-
    if [[ $op != info ]]; then
        target="$op $limit"
        if awk -v r="$ratio" -v l="$limit" -v op="$op" \
            'BEGIN { exit !((op == "<=" && r <= l) || (op == ">=" && r >= l)) }'; then
            result=PASS
        else
            result=FAIL
            FAILS=$((FAILS + 1))
        fi
    fi
    LAST_RESULT=$result
    ROWS+=("$figure|$command|$value|$reference|$(printf %.2f "$ratio")|$target|$result")
}
# A duration in ms, with two decimals below 10 ms.
ms() { awk -v v="$1" 'BEGIN { printf (v < 10 ? "%.2f ms" : "%.1f ms"), v }'; }

# ---------------------------------------------------------------------------------------
# Setup.
if [[ $BUILD == 1 ]]; then
    build_release
fi
[[ -x $BIN ]] || die "no $BIN (run with BUILD=1)"
echo "   binary: $("$BIN" --version 2>/dev/null | head -n 1), built $(date -u -r "$BIN" '+%Y-%m-%d %H:%M:%S UTC')," \
    "HEAD $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown) (uncommitted changes are not shown)"
make_tmp run
mkdir -p "$TMP/t"
SITE=$TMP/site

log "starting the sample APIs: 10000 transactions; 10000 with --delay-ms $DELAY_MS; $BIG"
start_sample_api sample-api "the sample API" 10000
MAIN_API=$API_URL
start_sample_api sample-api-slow "the slow sample API" 10000 --delay-ms "$DELAY_MS"
SLOW_API=$API_URL
# $FETCH_RUNS more than $BIG, the newest hidden at first: each fetch of section 7 shows
# one more, so each adds a transaction to the kept history.
start_sample_api sample-api-big "the $BIG-transaction sample API" "$((BIG + FETCH_RUNS))"
curl -s --max-time 10 "${API_URL%%/projects/*}/__control/hide?newest=$FETCH_RUNS" >/dev/null
BIG_API=$API_URL
echo "   $MAIN_API, $SLOW_API (slow), $BIG_API (big)"

log "copying the installation: ct, lat0/ct, lat30/ct, big/ct, w64/ct, i1/ct ... i$INSTALLATIONS/ct"
copy_installation "$SITE/ct" "$MAIN_API"
copy_installation "$SITE/lat0/ct" "$SLOW_API"
copy_installation "$SITE/lat30/ct" "$SLOW_API"
copy_installation "$SITE/big/ct" "$BIG_API"
copy_installation "$SITE/w64/ct" "$MAIN_API"
for ((i = 1; i <= INSTALLATIONS; i++)); do
    copy_installation "$SITE/i$i/ct" "$MAIN_API" "demo-$i.example.com"
done

# The license API's credits/history is asked for limit=10000, and the sample API answers
# at most `limit` transactions, so the 100,000-row history cannot come from it through the
# responder: it is written here as the PHP page's cache file (fresh for an hour), from the
# big sample API's own answer for limit=100000, and the responder reads it from there.
config_value() {
    sed -n "s/^ *'$1' *=> *'\([^']*\)'.*/\1/p" ct/dat/config.inc.php | head -n 1
}
KEY=$(config_value license_key)
DOMAIN=$(config_value domain)
EMAIL=$(config_value email)
[[ -n $KEY && -n $DOMAIN && -n $EMAIL ]] || die "could not read the license config of ct/"
history_url() {
    echo "$BIG_API?endpoint=credits/history&limit=$1&license_key=$KEY&domain=$DOMAIN&email=$EMAIL"
}
fetch "$(history_url 10000)" "$TMP/history-10000.json"
CAPPED=$(jq '.data.transactions | length' "$TMP/history-10000.json")
fetch "$(history_url "$BIG")" "$TMP/history-big.json"
CACHE_DIR=$SITE/big/ct/dat/transaction_cache
mkdir -p "$CACHE_DIR"
CACHE_FILE=$CACHE_DIR/transactions_$(printf %s "$DOMAIN" | md5sum | cut -c 1-32)_$(date -u +%F).json
jq -c --argjson ts "$(date +%s)" --arg domain "$DOMAIN" \
    '{timestamp: $ts, domain: $domain, transactions: .data.transactions}' \
    "$TMP/history-big.json" >"$CACHE_FILE"
WRITTEN=$(jq '.transactions | length' "$CACHE_FILE")
rm -f "$TMP/history-big.json"
echo "   the sample API with $BIG transactions answers $CAPPED for limit=10000 (what tokenusage asks);" \
    "wrote $WRITTEN to big/ct/dat/transaction_cache/$(basename "$CACHE_FILE") ($(du -m "$CACHE_FILE" | cut -f 1) MB)"
((WRITTEN == BIG)) || die "the $BIG-transaction cache file holds $WRITTEN"

log "starting tokenusage fcgi --auth none: main, lat0 (--account-cache-seconds 0), lat30, multi"
start_fcgi tokenusage "tokenusage (main)" "$TMP/main.sock"
MAIN_PID=$TU_PID
start_fcgi tokenusage-lat0 "tokenusage (lat0)" "$TMP/lat0.sock" --account-cache-seconds 0
start_fcgi tokenusage-lat30 "tokenusage (lat30)" "$TMP/lat30.sock"
start_fcgi tokenusage-multi "tokenusage (multi)" "$TMP/multi.sock"
MULTI_PID=$TU_PID

SOCKET=$TMP/main.sock
location() {
    cat <<EOF
        location ~ $1 {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass unix:$2;
        }
EOF
}
PAGE_PATH=/ct/admin/tokenusage.php
NGINX_LOCATIONS="$(location '^/lat0/.*\.php$' "$TMP/lat0.sock")
$(location '^/lat30/.*\.php$' "$TMP/lat30.sock")
$(location '^/i[0-9]+/.*\.php$' "$TMP/multi.sock")
$(location '^/w64/.*\.php$' "$TMP/w64.sock")
        # The README's keepalive advice: /ka/ is the main installation's page through an
        # upstream that keeps 32 connections open.
        location ~ ^/ka/.*\.php\$ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root$PAGE_PATH;
            fastcgi_pass tokenusage_keepalive;
            fastcgi_keep_conn on;
        }"
NGINX_HTTP="    upstream tokenusage_keepalive { server unix:$SOCKET; keepalive 32; }"
start_nginx
BASE=http://127.0.0.1:$PORT
PAGE=$PAGE_PATH

log "warming up: page 1 and the CSV of ct (saved under static/), lat0, lat30"
mkdir -p "$SITE/static"
fetch "$BASE$PAGE" "$SITE/static/page1.html"
fetch "$BASE$PAGE?action=download" "$SITE/static/export10k.csv"
fetch "$BASE/lat0$PAGE" "$TMP/lat0.html"
fetch "$BASE/lat30$PAGE" "$TMP/lat30.html"
grep -qE 'of (10000|10,000) transactions' "$SITE/static/page1.html" ||
    die "page 1 does not show 10,000 transactions: $(grep -o 'Showing[^<]*' "$SITE/static/page1.html" | head -n 1)"
echo "   page 1: $(wc -c <"$SITE/static/page1.html") bytes; CSV: $(wc -c <"$SITE/static/export10k.csv") bytes," \
    "$(($(wc -l <"$SITE/static/export10k.csv") - 1)) rows"

# ---------------------------------------------------------------------------------------
# 2 and 5a: throughput on page 1 against the saved page; peak RSS during it (the peak is
# reset first where the kernel allows: `5` to /proc/PID/clear_refs). 3b: page 34.
HWM_SCOPE="(+ warm-up: peak not resettable)"
if echo 5 2>/dev/null >"/proc/$MAIN_PID/clear_refs"; then
    HWM_SCOPE="(peak reset just before)"
fi
cpu_per_request page1 "$BASE$PAGE"
declare -A TP1=()
for k in "${!W[@]}"; do TP1[$k]=${W[$k]}; done
HWM_MAIN=$(proc_status "$MAIN_PID" VmHWM)
cpu_per_request static "$BASE/static/page1.html"
declare -A TPS=()
for k in "${!W[@]}"; do TPS[$k]=${W[$k]}; done
run_wrk keepalive "$BASE/ka$PAGE"
declare -A TPKA=()
for k in "${!W[@]}"; do TPKA[$k]=${W[$k]}; done
run_wrk page34 "$BASE$PAGE?page=34"
declare -A TP34=()
for k in "${!W[@]}"; do TP34[$k]=${W[$k]}; done
check_running

# 3a: page 34 against page 1, sequential and interleaved.
log "page 1 and page 34: $WARM_RUNS sequential views each, interleaved"
for ((i = 0; i < WARM_RUNS; i++)); do
    timed_get page1 "$BASE$PAGE"
    timed_get page34 "$BASE$PAGE?page=34"
done

# 4: the CSVs, interleaved: 10,000 rows, the same saved, 100,000 rows.
log "CSV: $CSV_RUNS downloads each of 10000 rows, the saved copy and $BIG rows, interleaved"
fetch "$BASE/big$PAGE" "$TMP/big.html"
grep -qE "of ($BIG|$(commas "$BIG")) transactions" "$TMP/big.html" ||
    die "big/ does not show $BIG transactions: $(grep -o 'Showing[^<]*' "$TMP/big.html" | head -n 1)"
fetch "$BASE/big$PAGE?action=download" "$TMP/big.csv"
BIG_ROWS=$(($(wc -l <"$TMP/big.csv") - 1))
((BIG_ROWS == BIG)) || die "the big CSV has $BIG_ROWS rows, not $BIG"
echo "   $BIG-row CSV: $(wc -c <"$TMP/big.csv") bytes"
rm -f "$TMP/big.csv"
for ((i = 0; i < CSV_RUNS; i++)); do
    timed_get csv10k "$BASE$PAGE?action=download"
    timed_get csv10k-static "$BASE/static/export10k.csv"
    timed_get csvbig "$BASE/big$PAGE?action=download"
done
check_running

# 7: big/'s kept history of 100,000: page 300 against page 1; the first view after another
# process (`tokenusage report`, as cron runs it) fetched a history with a new transaction
# (its page and summaries read again) against a warm view; the database against the JSON.
log "kept history: page 1 and page 300 of big/, $WARM_RUNS views each, interleaved"
for ((i = 0; i < WARM_RUNS; i++)); do
    timed_get bigp1 "$BASE/big$PAGE"
    timed_get bigp300 "$BASE/big$PAGE?page=300"
done
log "kept history: $FETCH_RUNS fetches by tokenusage report, each followed by a view and a warm view"
BIG_CT=$SITE/big/ct
for ((i = FETCH_RUNS - 1; i >= 0; i--)); do
    curl -s --max-time 10 "${BIG_API%%/projects/*}/__control/hide?newest=$i" >/dev/null
    # Today's cache file made an hour old, so that report fetches the history.
    for f in "$CACHE_DIR"/transactions_*.json; do
        jq -c '.timestamp -= 3700' "$f" >"$f.tmp" && mv "$f.tmp" "$f"
    done
    "$BIN" report --root "$BIG_CT" >/dev/null || die "tokenusage report on big/ failed"
    timed_get bigafter "$BASE/big$PAGE"
    timed_get bigwarm "$BASE/big$PAGE"
done
KEPT_ROWS=$(grep -oE "of [0-9,]+ transactions" <(curl -s --max-time 60 "$BASE/big$PAGE") | head -n 1 | tr -dc 0-9)
((KEPT_ROWS == BIG + FETCH_RUNS)) || die "big/ keeps $KEPT_ROWS transactions, not $((BIG + FETCH_RUNS))"
fetch "$(history_url "$((BIG + FETCH_RUNS))")" "$TMP/history-big-kept.json"
jq -c '.data.transactions' "$TMP/history-big-kept.json" >"$TMP/kept.json"
rm -f "$TMP/history-big-kept.json"
KEPT_DB_BYTES=$(cat "$BIG_CT"/dat/tokenusage_history.sqlite* | wc -c)
KEPT_JSON_BYTES=$(wc -c <"$TMP/kept.json")
echo "   kept: $KEPT_ROWS transactions; database $KEPT_DB_BYTES bytes (with -wal, -shm), as JSON $KEPT_JSON_BYTES bytes"

# 1: the latency floor, with the API delaying every call by $DELAY_MS ms.
log "latency floor: $WARM_RUNS warm views each of lat0 and lat30 (interleaved), then $COLD_RUNS cold views of lat0"
before_lat0=$(api_calls "$SLOW_API")
for ((i = 0; i < WARM_RUNS; i++)); do
    timed_get warm0 "$BASE/lat0$PAGE"
    after=$(api_calls "$SLOW_API")
    echo $((after - before_lat0)) >>"$TMP/t/calls-warm0"
    timed_get warm30 "$BASE/lat30$PAGE"
    before_lat0=$(api_calls "$SLOW_API")
    echo $((before_lat0 - after)) >>"$TMP/t/calls-warm30"
done
for ((i = 0; i < COLD_RUNS; i++)); do
    rm -rf -- "$SITE/lat0/ct/dat/pricing_cache.json" "$SITE/lat0/ct/dat/transaction_cache" \
        "$SITE/lat0/ct/dat/tokenusage_last_good.json"
    before=$(api_calls "$SLOW_API")
    timed_get cold0 "$BASE/lat0$PAGE"
    echo $(($(api_calls "$SLOW_API") - before)) >>"$TMP/t/calls-cold0"
done
check_running

# 6: CGI with process start, against the same request to the FastCGI socket with
# cgi-fcgi (also a process start) and through nginx; interleaved, in one bounded bash
# whose environment is the CGI request's.
log "CGI: $CGI_RUNS runs each of tokenusage as CGI, cgi-fcgi on the socket and curl through nginx, interleaved"
cat >"$TMP/cgi-loop.sh" <<'EOF'
# cgi-loop.sh N BIN SOCKET URL: prints "kind exit-status microseconds" lines.
n=$1 bin=$2 socket=$3 url=$4
for ((i = 0; i < n; i++)); do
    t0=${EPOCHREALTIME/./}
    "$bin" >/dev/null 2>&1 </dev/null
    rc=$?
    echo "cgi $rc $((${EPOCHREALTIME/./} - t0))"
    t0=${EPOCHREALTIME/./}
    cgi-fcgi -bind -connect "$socket" >/dev/null 2>&1 </dev/null
    rc=$?
    echo "fcgi $rc $((${EPOCHREALTIME/./} - t0))"
    curl -s -o /dev/null --max-time 30 -w 'nginx %{http_code} %{time_total}\n' "$url"
done
EOF
CGI_ENV=(PATH=/usr/local/bin:/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET
    "SCRIPT_FILENAME=$SITE$PAGE" "SCRIPT_NAME=$PAGE" QUERY_STRING= "REQUEST_URI=$PAGE"
    SERVER_PROTOCOL=HTTP/1.1 "HTTP_HOST=127.0.0.1:$PORT" TOKENUSAGE_AUTH=none)
# One of each first, checked: the same page, status 200.
env -i "${CGI_ENV[@]}" timeout 30 "$BIN" </dev/null >"$TMP/cgi.out" 2>"$TMP/cgi.err" ||
    die "the CGI run failed: $(head -c 500 "$TMP/cgi.err")"
env -i "${CGI_ENV[@]}" timeout 30 cgi-fcgi -bind -connect "$TMP/main.sock" </dev/null >"$TMP/fcgi.out" 2>&1 ||
    die "cgi-fcgi failed: $(head -c 500 "$TMP/fcgi.out")"
for f in cgi fcgi; do
    head -n 1 "$TMP/$f.out" | grep -qi '^status: 200\|^content-type' ||
        die "$f answered: $(head -n 3 "$TMP/$f.out")"
    grep -qE 'of (10000|10,000) transactions' "$TMP/$f.out" || die "$f did not answer page 1"
done
timeout 300 env -i "${CGI_ENV[@]}" bash "$TMP/cgi-loop.sh" "$CGI_RUNS" "$BIN" "$TMP/main.sock" "$BASE$PAGE" \
    >"$TMP/t/cgi-loop" </dev/null || die "the CGI loop failed or took over 300 s"
awk '$1 != "nginx" && $2 != 0 || $1 == "nginx" && $2 != 200 { bad++ } END { exit bad > 0 }' "$TMP/t/cgi-loop" ||
    die "some CGI, cgi-fcgi or nginx request failed: $(awk '$2 != 0 && $2 != 200' "$TMP/t/cgi-loop" | head -n 3)"
awk '$1 == "cgi" { print $3 / 1000 }' "$TMP/t/cgi-loop" >"$TMP/t/cgi"
awk '$1 == "fcgi" { print $3 / 1000 }' "$TMP/t/cgi-loop" >"$TMP/t/fcgi"
awk '$1 == "nginx" { print $3 * 1000 }' "$TMP/t/cgi-loop" >"$TMP/t/fcgi-nginx"
check_running

# 5b: one process, $INSTALLATIONS installations, $ROUNDS rounds of one view of each.
log "memory: $ROUNDS rounds of one view of each of $INSTALLATIONS installations, $PARALLEL at a time, one process"
MULTI_TIMES=()
for ((r = 1; r <= ROUNDS; r++)); do
    t0=$SECONDS
    codes=$(for ((i = 1; i <= INSTALLATIONS; i++)); do echo "$BASE/i$i$PAGE"; done |
        timeout 600 xargs -P "$PARALLEL" -n 1 curl -s -o /dev/null --max-time 120 -w '%{http_code}\n' || true)
    ok=$(grep -c '^200$' <<<"$codes" || true)
    ((ok == INSTALLATIONS)) || die "round $r: $ok of $INSTALLATIONS views answered 200"
    MULTI_TIMES+=("$((SECONDS - t0)) s")
    echo "   round $r: $INSTALLATIONS views in $((SECONDS - t0)) s; VmRSS $(proc_status "$MULTI_PID" VmRSS), VmHWM $(proc_status "$MULTI_PID" VmHWM)"
done
HWM_MULTI=$(proc_status "$MULTI_PID" VmHWM)
check_running

# ---------------------------------------------------------------------------------------
# The table.
warm0=$(median "$TMP/t/warm0")
warm30=$(median "$TMP/t/warm30")
cold0=$(median "$TMP/t/cold0")
calls_warm0=$(awk '{ s += $1 } END { printf "%.1f", s / NR }' "$TMP/t/calls-warm0")
calls_warm30=$(awk '{ s += $1 } END { printf "%.1f", s / NR }' "$TMP/t/calls-warm30")
calls_cold0=$(awk '{ s += $1 } END { printf "%.1f", s / NR }' "$TMP/t/calls-cold0")
row "1 warm view, API +${DELAY_MS} ms/call" \
    "${WARM_RUNS}x curl lat0 p1, --account-cache-seconds 0; $calls_warm0 API calls/view" \
    "$(ms "$warm0")" "$DELAY_MS ms" "$(calc "$warm0 / $DELAY_MS")" "<=" 1.10
row "1 cold view, API +${DELAY_MS} ms/call" \
    "${COLD_RUNS}x curl lat0 p1, caches rm'd first; $calls_cold0 API calls/view" \
    "$(ms "$cold0")" "$DELAY_MS ms" "$(calc "$cold0 / $DELAY_MS")" "<=" 1.30
row "1 warm view, default account cache" \
    "${WARM_RUNS}x curl lat30 p1 (30 s reuse); $calls_warm30 API calls/view" \
    "$(ms "$warm30")" "$DELAY_MS ms" "$(calc "$warm30 / $DELAY_MS")" info
row "1 PHP page warm: 2 calls in sequence" "2 x $DELAY_MS ms (computed) vs our warm view" \
    "$((2 * DELAY_MS)).0 ms" "$(ms "$warm0")" "$(calc "2 * $DELAY_MS / $warm0")" info
row "1 PHP page cold: 4 calls in sequence" "4 x $DELAY_MS ms (computed) vs our cold view" \
    "$((4 * DELAY_MS)).0 ms" "$(ms "$cold0")" "$(calc "4 * $DELAY_MS / $cold0")" info

row "2 throughput page 1 (req/s)" "wrk -c$CONNECTIONS -d${WRK_SECONDS}s p1 vs nginx static/page1.html" \
    "$(printf %.0f "${TP1[rps]}")" "$(printf %.0f "${TPS[rps]}")" "$(calc "${TP1[rps]} / ${TPS[rps]}")" ">=" 0.30
TP_RESULT=$LAST_RESULT
row "2 throughput page 1, p50" "same wrk runs (--latency)" \
    "$(ms "$(calc "${TP1[p50_us]} / 1000")")" "$(ms "$(calc "${TPS[p50_us]} / 1000")")" \
    "$(calc "${TP1[p50_us]} / ${TPS[p50_us]}")" info
row "2 throughput page 1, p99" "same wrk runs (--latency)" \
    "$(ms "$(calc "${TP1[p99_us]} / 1000")")" "$(ms "$(calc "${TPS[p99_us]} / 1000")")" \
    "$(calc "${TP1[p99_us]} / ${TPS[p99_us]}")" info
row "2 throughput p1, nginx keepalive" "wrk -c$CONNECTIONS -d${WRK_SECONDS}s via keepalive 32 vs p1 above" \
    "$(printf %.0f "${TPKA[rps]}")" "$(printf %.0f "${TP1[rps]}")" "$(calc "${TPKA[rps]} / ${TP1[rps]}")" info
row "2 keepalive p99" "same wrk run (--latency) vs p1 above" \
    "$(ms "$(calc "${TPKA[p99_us]} / 1000")")" "$(ms "$(calc "${TP1[p99_us]} / 1000")")" \
    "$(calc "${TPKA[p99_us]} / ${TP1[p99_us]}")" info
cpu_p1=$(calc "${TP1[cpu_tu]} + ${TP1[cpu_nginx]}")
cpu_static=$(calc "${TPS[cpu_tu]} + ${TPS[cpu_nginx]}")
row "2 CPU per request, page 1" "utime+stime of main + nginx workers during the wrk runs" \
    "$(printf '%.3f ms' "$cpu_p1")" "$(printf '%.3f ms' "$cpu_static")" "$(calc "$cpu_p1 / $cpu_static")" info

page1=$(median "$TMP/t/page1")
page34=$(median "$TMP/t/page34")
row "3 page 34 vs page 1, latency" "${WARM_RUNS}x curl each, interleaved, warm" \
    "$(ms "$page34")" "$(ms "$page1")" "$(calc "$page34 / $page1")" "<=" 1.10
row "3 page 34 vs page 1, req/s" "wrk -c$CONNECTIONS -d${WRK_SECONDS}s p34 vs p1 above" \
    "$(printf %.0f "${TP34[rps]}")" "$(printf %.0f "${TP1[rps]}")" "$(calc "${TP34[rps]} / ${TP1[rps]}")" ">=" 0.91

csv10k=$(median "$TMP/t/csv10k")
csvstatic=$(median "$TMP/t/csv10k-static")
csvbig=$(median "$TMP/t/csvbig")
row "4 CSV 10,000 rows vs static copy" "${CSV_RUNS}x curl ?action=download vs static/export10k.csv" \
    "$(ms "$csv10k")" "$(ms "$csvstatic")" "$(calc "$csv10k / $csvstatic")" "<=" 2.00
row "4 CSV 100,000 rows vs 10,000 rows" "${CSV_RUNS}x curl big/ download; history: cache file by run.sh" \
    "$(ms "$csvbig")" "$(ms "$csv10k")" "$(calc "$csvbig / $csv10k")" "<=" 11.0

bigp1=$(median "$TMP/t/bigp1")
bigp300=$(median "$TMP/t/bigp300")
bigafter=$(median "$TMP/t/bigafter")
bigwarm=$(median "$TMP/t/bigwarm")
row "7 kept 100,000: page 300 vs page 1" "${WARM_RUNS}x curl each of big/, interleaved, warm" \
    "$(ms "$bigp300")" "$(ms "$bigp1")" "$(calc "$bigp300 / $bigp1")" "<=" 1.10
row "7 first view after a fetch vs warm" "${FETCH_RUNS}x: report fetches, then a view; limit: warm + 20 ms" \
    "$(ms "$bigafter")" "$(ms "$bigwarm")" "$(calc "$bigafter / ($bigwarm + 20)")" "<=" 1.00
row "7 kept database vs the same JSON" "tokenusage_history.sqlite* vs credits/history's transactions" \
    "$(calc "$KEPT_DB_BYTES / 1048576") MB" "$(calc "$KEPT_JSON_BYTES / 1048576") MB" "$(calc "$KEPT_DB_BYTES / $KEPT_JSON_BYTES")" "<=" 2.00

hwm_main_mb=$(calc "${HWM_MAIN%% *} / 1024")
hwm_multi_mb=$(calc "${HWM_MULTI%% *} / 1024")
row "5 peak RSS, throughput run" "VmHWM of main after wrk p1 $HWM_SCOPE" \
    "$(printf '%.1f MB' "$hwm_main_mb")" "40 MB" "$(calc "$hwm_main_mb / 40")" "<=" 1.00
row "5 peak RSS, $INSTALLATIONS installations" "VmHWM, 1 process, ${ROUNDS}x$INSTALLATIONS views ($PARALLEL at a time)" \
    "$(printf '%.1f MB' "$hwm_multi_mb")" "200 MB" "$(calc "$hwm_multi_mb / 200")" "<=" 1.00
MULTI_RESULT=$LAST_RESULT

cgi=$(median "$TMP/t/cgi")
fcgi=$(median "$TMP/t/fcgi")
fcgi_nginx=$(median "$TMP/t/fcgi-nginx")
row "6 CGI vs FastCGI (cgi-fcgi)" "${CGI_RUNS}x each, process start incl., p1, interleaved" \
    "$(ms "$cgi")" "$(ms "$fcgi")" "$(calc "$cgi / $fcgi")" "<=" 5.00
CGI_RESULT=$LAST_RESULT
row "6 CGI vs FastCGI through nginx" "${CGI_RUNS}x curl p1 (curl's time_total)" \
    "$(ms "$cgi")" "$(ms "$fcgi_nginx")" "$(calc "$cgi / $fcgi_nginx")" info

# ---------------------------------------------------------------------------------------
# Diagnosis of failed figures (DIAGNOSE): where the instructions go (callgrind; perf is
# not available here) and whether the memory is glibc's per-thread arenas or the parsed
# histories kept in memory.

# callgrind_top FILE [VIEWS]: the total and the 20 functions with the most instructions
# of their own, then the 12 of this crate with the most instructions in all (inclusive).
callgrind_top() {
    local total
    callgrind_annotate "$1" >"$1.self.txt" 2>/dev/null || true
    callgrind_annotate --inclusive=yes "$1" >"$1.inclusive.txt" 2>/dev/null || true
    total=$(awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }' "$1.self.txt")
    [[ -n $total ]] || total=0
    echo "   instructions: $total${2:+ in $2 views, $((total / $2)) per view}"
    echo "   -- self (top 20)"
    awk '/file:function/ { getline; on = 1; next } on && NF { print; if (++n == 20) exit }' "$1.self.txt" |
        sed -E 's# \[[^]]*\]$##; s#\./[^ ]*/([^/ ]*:)#\1#; s#\?\?\?:##' | cut -c 1-150 | sed 's/^/   /'
    echo "   -- inclusive, tokenusage:: functions (top 12)"
    awk '/file:function/ { getline; on = 1; next } on && /tokenusage::/ { print; if (++n == 12) exit }' "$1.inclusive.txt" |
        sed -E 's# \[[^]]*\]$##; s#\?\?\?:##' | cut -c 1-150 | sed 's/^/   /'
}

# direct_rounds SOCKET PID: $ROUNDS rounds of one view of each installation straight to
# a FastCGI socket ($PARALLEL at a time, cgi-fcgi); prints the process's VmHWM in kB.
direct_rounds() {
    local r
    for ((r = 1; r <= ROUNDS; r++)); do
        for ((i = 1; i <= INSTALLATIONS; i++)); do echo "$i"; done |
            timeout 600 xargs -P "$PARALLEL" -I '{}' env -i PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 \
                REQUEST_METHOD=GET "SCRIPT_FILENAME=$SITE/i{}$PAGE" "SCRIPT_NAME=$PAGE" QUERY_STRING= \
                timeout 120 cgi-fcgi -bind -connect "$1" >/dev/null 2>&1 ||
            die "a diagnosis round on $1 failed"
    done
    proc_status "$2" VmHWM | cut -d ' ' -f 1
}

DIAG_NOTES=()
diagnose() {
    [[ $DIAGNOSE == 1 ]] || [[ $DIAGNOSE == auto && $1 == FAIL ]]
}
if diagnose "$TP_RESULT"; then
    # With more connections than workers, connections wait in the responder's queue:
    # the same load on a responder with more workers than connections tells whether
    # that queue is what limits throughput.
    log "diagnosis: the throughput run again on a new responder with --workers 64"
    start_fcgi tokenusage-w64 "tokenusage (w64)" "$TMP/w64.sock" --workers 64
    fetch "$BASE/w64$PAGE" "$TMP/w64.html"
    run_wrk w64 "$BASE/w64$PAGE"
    row "2 diagnosis: --workers 64" "wrk -c$CONNECTIONS -d${WRK_SECONDS}s p1 on it (p50 $(ms "$(calc "${W[p50_us]} / 1000")")) vs static" \
        "$(printf %.0f "${W[rps]}")" "$(printf %.0f "${TPS[rps]}")" "$(calc "${W[rps]} / ${TPS[rps]}")" info
    kill -TERM "$TU_PID" 2>/dev/null || true
    wait "$TU_PID" 2>/dev/null || true
    forget_pid "$TU_PID"
fi
if diagnose "$CGI_RESULT" || diagnose "$TP_RESULT"; then
    if command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null; then
        log "diagnosis: callgrind of one CGI run (page 1, warm cache files)"
        env -i "${CGI_ENV[@]}" timeout 300 valgrind --tool=callgrind \
            --callgrind-out-file="$TMP/callgrind-cgi.out" "$BIN" >/dev/null 2>"$TMP/callgrind-cgi.err" </dev/null ||
            die "callgrind of the CGI run failed: $(tail -n 3 "$TMP/callgrind-cgi.err")"
        callgrind_top "$TMP/callgrind-cgi.out" | tee "$TMP/callgrind-cgi.txt"

        log "diagnosis: callgrind of 10 warm FastCGI views of page 1 (cgi-fcgi, after one uncounted view)"
        valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$TMP/callgrind-fcgi.out" \
            "$BIN" fcgi --listen "unix:$TMP/callgrind.sock" --auth none --workers 2 \
            >"$TMP/callgrind-fcgi.stdout" 2>"$TMP/callgrind-fcgi.err" </dev/null &
        VG_PID=$!
        PIDS+=("$VG_PID")
        for _ in $(seq 300); do
            [[ -S $TMP/callgrind.sock ]] && break
            kill -0 "$VG_PID" 2>/dev/null || die "tokenusage under callgrind exited at start"
            sleep 0.1
        done
        [[ -S $TMP/callgrind.sock ]] || die "tokenusage under callgrind made no socket within 30 s"
        env -i "${CGI_ENV[@]}" timeout 120 cgi-fcgi -bind -connect "$TMP/callgrind.sock" >/dev/null </dev/null
        callgrind_control -i on "$VG_PID" >/dev/null 2>&1
        for ((i = 0; i < 10; i++)); do
            env -i "${CGI_ENV[@]}" timeout 120 cgi-fcgi -bind -connect "$TMP/callgrind.sock" >/dev/null </dev/null
        done
        callgrind_control -i off "$VG_PID" >/dev/null 2>&1
        kill -TERM "$VG_PID"
        for _ in $(seq 300); do
            kill -0 "$VG_PID" 2>/dev/null || break
            sleep 0.1
        done
        wait "$VG_PID" 2>/dev/null || true
        forget_pid "$VG_PID"
        callgrind_top "$TMP/callgrind-fcgi.out" 10 | tee "$TMP/callgrind-fcgi.txt"
    else
        DIAG_NOTES+=("callgrind: valgrind is not installed")
    fi
fi
if diagnose "$MULTI_RESULT"; then
    for variant in "arena|MALLOC_ARENA_MAX=2|" "budget||--memory-budget-mb 8"; do
        IFS='|' read -r name env_var option <<<"$variant"
        name=diag-$name
        log "diagnosis: the $INSTALLATIONS installations again (caches cleared) in a new process${env_var:+ with $env_var}${option:+ with $option}"
        rm -rf -- "$SITE"/i*/ct/dat/transaction_cache "$SITE"/i*/ct/dat/*.json
        # shellcheck disable=SC2086
        env ${env_var:-BENCH=1} "$BIN" fcgi --listen "unix:$TMP/$name.sock" --auth none $option \
            >"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null &
        pid=$!
        PIDS+=("$pid")
        for _ in $(seq 100); do
            [[ -S $TMP/$name.sock ]] && break
            sleep 0.1
        done
        hwm=$(direct_rounds "$TMP/$name.sock" "$pid")
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        forget_pid "$pid"
        mb=$(calc "$hwm / 1024")
        row "5 diagnosis: ${env_var:-$option}" "as above, new process, cgi-fcgi straight to its socket" \
            "$(printf '%.1f MB' "$mb")" "200 MB" "$(calc "$mb / 200")" info
    done
fi

echo
echo "tokenusage bench/run.sh: $BASE, nproc $(nproc), load average now $(cut -d ' ' -f 1-3 /proc/loadavg)," \
    "$((SECONDS - START)) s; medians; ratio = value / reference"
fmt='%-38s %-70s %11s %11s %6s %8s  %s\n'
# shellcheck disable=SC2059
printf "$fmt" figure command value reference ratio target result
# In figure order (the diagnosis rows were added last), stable.
while IFS='|' read -r figure command value reference ratio target result; do
    # shellcheck disable=SC2059
    printf "$fmt" "$figure" "$command" "$value" "$reference" "$ratio" "$target" "$result"
done < <(printf '%s\n' "${ROWS[@]}" | sort -s -n -k 1,1)
echo
echo "memory rounds: ${MULTI_TIMES[*]}; sample API calls: main $(curl -s --max-time 10 "${MAIN_API%%/projects/*}/__control/calls")"
NGINX_ERRORS=$(grep -cE '\[(error|crit|alert|emerg)\]' "$TMP/nginx/error.log" || true)
echo "nginx error.log: $NGINX_ERRORS lines at [error] or worse"
for note in "${DIAG_NOTES[@]}"; do
    echo "diagnosis: $note"
done
if ((FAILS > 0)); then
    echo "FAILED: $FAILS figure(s) missed their target"
    BENCH_QUIET_EXIT=1
    exit 1
fi
echo "OK: every figure met its target"
