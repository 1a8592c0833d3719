# bench/lib.sh: the setup shared by bench/load.sh and bench/run.sh. Source it, never run it.
#
# Before sourcing, set BENCH_NAME (the script's name, used in messages) and optionally
# KEEP_TMP=1. Sourcing it goes to the repository's root, sets ROOT and BIN, and installs
# the traps: every process started through start_* below (or added to PIDS) is stopped at
# exit, on failure and on Ctrl-C alike (TERM, then KILL after 10 s), the logs' tails are
# printed when the run failed (unless the script set BENCH_QUIET_EXIT=1: a run that worked
# but reports a failed figure), and the temporary folder is removed.
#
# What it offers, in the order a script uses it:
#   build_release                         cargo build --release --locked
#   make_tmp KIND                         TMP=$(mktemp -d .../tokenusage-KIND.XXXXXX)
#   start_sample_api NAME LABEL N [ARG..] tokenusage sample-api on 127.0.0.1:0, N
#                                         transactions ending 2026-11-20 10:04:11 (a fixed
#                                         --anchor); sets API_PID API_URL API_HOST API_PORT
#   copy_installation CT API_URL [DOMAIN] the sample installation ct/ (admin page, config,
#                                         languages; no cache files) at CT, pointed at API_URL
#   start_fcgi NAME LABEL SOCKET [ARG..]  tokenusage fcgi --listen unix:SOCKET --auth none
#                                         (--auth $FCGI_AUTH when set); sets TU_PID
#   start_nginx                           Debian's nginx on a free loopback port, root $SITE,
#                                         `\.php$` to unix:$SOCKET, $NGINX_LOCATIONS first;
#                                         sets PORT and NGINX_PID (NGINX_DIR, NGINX_HTTP,
#                                         NGINX_PHP, NGINX_PASS: a second, different nginx)
#   stop_process PID [GRACE]              stops one process started here before the exit
#   http_get, http_body, proc_status, stopped_processes, forget_pid, read_wrk_output
#
# Only loopback and unix sockets; every wait is bounded.

BENCH_NAME=${BENCH_NAME:-bench}
KEEP_TMP=${KEEP_TMP:-0}

die() {
    echo "$BENCH_NAME: $*" >&2
    exit 2
}

log() { echo "== $*"; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN=$ROOT/target/release/tokenusage
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# ---------------------------------------------------------------------------------------
# Cleanup: every process started here is in PIDS; the EXIT trap stops them (TERM, then
# KILL after 10 s), prints the logs' tails when the run failed, and removes the folder.
# INT and TERM turn into an exit so the EXIT trap runs on Ctrl-C too.
PIDS=()
TMP=
# The processes a run depends on, "pid|name" (stopped_processes), and the stderr files
# shown after a failed run, "kind|label|path" (show_logs).
WATCHED=()
LOGS=()
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
            echo "$BENCH_NAME: process $pid did not stop on SIGTERM; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n $TMP && -d $TMP ]]; then
        if ((rc != 0)) && [[ ${BENCH_QUIET_EXIT:-0} != 1 ]]; then
            show_logs >&2
        fi
        if [[ $KEEP_TMP == 1 ]]; then
            echo "$BENCH_NAME: kept $TMP" >&2
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
# clients taken out) with the first and last lines, then the tails of the responders' and
# the sample APIs' stderr. nginx's warning that a large upstream response (the CSV) was
# buffered to a temporary file is normal with Debian's default buffers: left out.
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
    local entry kind k label path
    for kind in tokenusage sample-api; do
        for entry in "${LOGS[@]}"; do
            IFS='|' read -r k label path <<<"$entry"
            [[ $k == "$kind" && -f $path ]] || continue
            label=${label#the }
            if [[ $kind == tokenusage ]]; then
                echo "---- $label stderr (last 40 lines)"
                tail -n 40 "$path"
            else
                echo "---- $label stderr (last 20 lines)"
                tail -n 20 "$path"
            fi
        done
    done
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

# stop_process PID [GRACE]: stops one process started here (in PIDS) before the run ends:
# TERM, then KILL after GRACE seconds (default 10); it is then neither in PIDS nor in
# WATCHED, so its end is no failure and cleanup never signals its id again.
stop_process() {
    local pid=$1 grace=${2:-10} entry kept=()
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + grace))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "$BENCH_NAME: process $pid did not stop on SIGTERM within $grace s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
    for entry in "${WATCHED[@]}"; do
        [[ ${entry%%|*} == "$pid" ]] || kept+=("$entry")
    done
    WATCHED=("${kept[@]}")
}

# The names of the processes this run depends on that are no longer running.
stopped_processes() {
    local entry pid name names=()
    for entry in "${WATCHED[@]}"; do
        pid=${entry%%|*}
        name=${entry#*|}
        kill -0 "$pid" 2>/dev/null || names+=("$name")
    done
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
build_release() {
    log "building the release binary"
    cargo build --release --locked
}

# make_tmp KIND: the run's temporary folder, removed at exit.
make_tmp() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/tokenusage-$1.XXXXXX")
    log "temporary folder $TMP"
}

# start_sample_api NAME LABEL TRANSACTIONS [EXTRA ARGS...]: `tokenusage sample-api` on a
# free loopback port, its history ending at a fixed time (--anchor 1795169051: 2026-11-20
# 10:04:11 UTC, so every run serves the same bytes), output in $TMP/NAME.out and .err,
# waited for (10 s at most) until it prints its URL. LABEL names it in messages ("the
# sample API"). Sets API_PID, API_URL, API_HOST and API_PORT.
start_sample_api() {
    local name=$1 label=$2 transactions=$3
    shift 3
    # Made here, before the background process opens it, so the first poll finds it.
    : >"$TMP/$name.out"
    "$BIN" sample-api --listen 127.0.0.1:0 --transactions "$transactions" \
        --anchor 1795169051 "$@" \
        >"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null &
    API_PID=$!
    PIDS+=("$API_PID")
    WATCHED+=("$API_PID|$label")
    LOGS+=("sample-api|$label|$TMP/$name.err")
    API_URL=
    for _ in $(seq 100); do
        API_URL=$(grep -m 1 '^http://' "$TMP/$name.out" 2>/dev/null || true)
        [[ -n $API_URL ]] && break
        kill -0 "$API_PID" 2>/dev/null || die "$label exited at start"
        sleep 0.1
    done
    [[ -n $API_URL ]] || die "$label printed no URL within 10 s"
    API_HOSTPORT=${API_URL#http://}
    API_HOSTPORT=${API_HOSTPORT%%/*}
    API_HOST=${API_HOSTPORT%:*}
    API_PORT=${API_HOSTPORT##*:}
    [[ $API_HOST == 127.0.0.1 ]] || die "$label is not on loopback: $API_URL"
}

# copy_installation CT API_URL [DOMAIN]: the sample installation, as the tests copy it:
# the admin page, the languages and the config with api_url (and the domain, when given)
# replaced. The cache files a demo run may have left in ct/dat are not copied, so the
# history comes from the sample API.
copy_installation() {
    local ct=$1 url=$2 domain=${3:-}
    mkdir -p "$ct/dat"
    cp -R ct/admin "$ct/admin"
    [[ -d ct/dat/lang ]] && cp -R ct/dat/lang "$ct/dat/lang"
    sed "s|^\(\$license_config\['api_url'\] *= *\)'[^']*'|\1'$url'|" \
        ct/dat/config.inc.php >"$ct/dat/config.inc.php"
    grep -qF "'$url'" "$ct/dat/config.inc.php" ||
        die "could not set api_url in the copy of ct/dat/config.inc.php"
    if [[ -n $domain ]]; then
        sed -i "s|'domain' *=> *'demo.example.com'|'domain'      => '$domain'|" "$ct/dat/config.inc.php"
        grep -qF "'$domain'" "$ct/dat/config.inc.php" ||
            die "could not set the domain in the copy of ct/dat/config.inc.php"
    fi
}

# start_fcgi NAME LABEL SOCKET [EXTRA ARGS...]: `tokenusage fcgi --listen unix:SOCKET
# --auth none`, output in $TMP/NAME.out and .err, waited for (10 s at most) until the
# socket appears. Sets TU_PID. FCGI_AUTH=php-session (say) replaces `none`; its other
# options (--session-path ...) go in the extra args.
#
# --auth none: the benchmarks measure the responder (routing, caches, rendering, CSV,
# FastCGI), not the admin check, so no session files are involved. Never on a real site.
start_fcgi() {
    local name=$1 label=$2 socket=$3
    shift 3
    "$BIN" fcgi --listen "unix:$socket" --auth "${FCGI_AUTH:-none}" "$@" \
        >"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null &
    TU_PID=$!
    PIDS+=("$TU_PID")
    WATCHED+=("$TU_PID|$label")
    LOGS+=("tokenusage|$label|$TMP/$name.err")
    for _ in $(seq 100); do
        [[ -S $socket ]] && break
        kill -0 "$TU_PID" 2>/dev/null || die "$label exited at start"
        sleep 0.1
    done
    [[ -S $socket ]] || die "$label made no socket within 10 s"
}

# start_nginx: nginx with its own config and prefix in $TMP/nginx, in the foreground of its
# own background process (daemon off), on a free loopback port (retried if taken
# meanwhile). Serves $SITE, passes `\.php$` to unix:$SOCKET exactly as a site would
# (`/etc/nginx/fastcgi_params`, `SCRIPT_FILENAME $document_root$fastcgi_script_name`);
# NGINX_LOCATIONS (location blocks, optional) come before that one, so they win.
# Optional, for a second nginx beside the first: NGINX_DIR (its prefix, config and logs;
# default $TMP/nginx), NGINX_HTTP (lines in the http block, e.g. an upstream), NGINX_PHP
# (lines in the `\.php$` location, e.g. fastcgi_keep_conn on;), NGINX_PASS (what
# fastcgi_pass names; default unix:$SOCKET).
start_nginx() {
    [[ -x $NGINX ]] || die "nginx is not installed (apt-get install -y nginx)"
    local dir=${NGINX_DIR:-$TMP/nginx}
    mkdir -p "$dir/tmp"
    PORT=
    local attempt candidate
    for attempt in 1 2 3 4 5; do
        candidate=$((20000 + RANDOM % 12000))
        port_in_use "$candidate" && continue
        write_nginx_conf "$candidate"
        log "starting nginx on 127.0.0.1:$candidate"
        "$NGINX" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' \
            >"$dir/stdout.log" 2>&1 </dev/null &
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
        if grep -q 'Address already in use' "$dir/error.log" 2>/dev/null; then
            echo "   port $candidate was taken; trying another (attempt $attempt)"
            kill -TERM "$NGINX_PID" 2>/dev/null || true
            wait "$NGINX_PID" 2>/dev/null || true
            forget_pid "$NGINX_PID"
            : >"$dir/error.log"
            continue
        fi
        die "nginx did not start: $(cat "$dir/stdout.log")"
    done
    [[ -n $PORT ]] || die "found no free loopback port for nginx"
    WATCHED+=("$NGINX_PID|nginx")
}

write_nginx_conf() {
    local user_line= dir=${NGINX_DIR:-$TMP/nginx}
    [[ $(id -u) == 0 ]] && user_line="user root;"
    cat >"$dir/nginx.conf" <<EOF
$user_line
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    # The README's advice: buffers that hold a whole page (about 110 KB with 300 rows),
    # so nginx does not spool each answer to a temporary file.
    fastcgi_buffers 16 16k;
    client_body_temp_path $dir/tmp/body;
    fastcgi_temp_path $dir/tmp/fastcgi;
    proxy_temp_path $dir/tmp/proxy;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
${NGINX_HTTP:-}
    server {
        listen 127.0.0.1:$1;
        root $SITE;
${NGINX_LOCATIONS:-}
        location ~ \.php\$ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
${NGINX_PHP:-}
            fastcgi_pass ${NGINX_PASS:-unix:$SOCKET};
        }
    }
}
EOF
}

# read_wrk_output FILE: the figures of a wrk run made with `-s bench/status.lua`, into the
# global associative array W: the SUMMARY fields (requests, duration_us, bytes, connect,
# read, write, timeout, status, p50_us, p99_us, max_us), `counted` (responses counted by
# status), `non200` and `non200_detail` (" 502x3 ..."). Fails when there is no SUMMARY.
declare -gA W=()
read_wrk_output() {
    W=()
    local summary pair code n
    summary=$(grep -m 1 '^SUMMARY ' "$1" || true)
    [[ -n $summary ]] || return 1
    for pair in ${summary#SUMMARY }; do
        W[${pair%%=*}]=${pair#*=}
    done
    W[counted]=0
    W[non200]=0
    W[non200_detail]=
    while read -r _ code n; do
        W[counted]=$((W[counted] + n))
        if [[ $code != 200 ]]; then
            W[non200]=$((W[non200] + n))
            W[non200_detail]+=" ${code}x$n"
        fi
    done < <(grep '^STATUS ' "$1" || true)
}
