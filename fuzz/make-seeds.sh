#!/usr/bin/env bash
# Regenerates the seed corpus in fuzz/seeds/ from real producers of each format:
# FastCGI requests as nginx and libfcgi's cgi-fcgi send them, session files written by
# PHP with both serialize handlers, cache files written by PHP's json_encode, and the
# sample license API's answers. Hand-written seeds (edge cases, the contract's examples,
# the tests' query strings and cookies) are written here too, so the whole corpus can be
# rebuilt. Needs php, curl, nginx and cgi-fcgi (Debian: php-cli curl nginx libfcgi-bin).
#
# Usage: fuzz/make-seeds.sh      (from anywhere; overwrites fuzz/seeds/*/ files it makes)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=fuzz/seeds
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
for dir in fastcgi_records php_config php_session query_and_cookies api_json cache_files; do
    mkdir -p "$seeds/$dir"
done

# --- fastcgi_records ------------------------------------------------------------------
# Each seed starts with the target's chunking header: byte 0 says how many size bytes
# follow (n % 4 + 1); a size of 0 means "all the rest".
whole=$'\x00\x00'  # one chunk
small=$'\x02\x01\x03\x08'  # chunks of 1, 3 and 8 bytes in turn

# A FastCGI server that records the first request it gets (up to the empty STDIN record).
cat >"$work/capture.php" <<'PHP'
<?php
[$_, $socket, $out] = $argv;
@unlink($socket);
$server = stream_socket_server("unix://$socket", $errno, $error) or die("$error\n");
$conn = stream_socket_accept($server, 20) or die("no connection\n");
stream_set_timeout($conn, 3);
$data = '';
for (;;) {
    while (strlen($data) >= 8) {
        $h = unpack('Cversion/Ctype/nid/nlen/Cpad', $data);
        if (strlen($data) < 8 + $h['len'] + $h['pad']) break;
        $record = substr($data, 0, 8 + $h['len'] + $h['pad']);
        $done[] = $record;
        $data = substr($data, strlen($record));
        if ($h['type'] == 5 && $h['len'] == 0) break 2;
    }
    $chunk = fread($conn, 65536);
    if ($chunk === '' || $chunk === false) break;
    $data .= $chunk;
}
file_put_contents($out, implode('', $done ?? []) . $data);
PHP

capture() { # capture OUT: starts the recorder on $work/fcgi.sock
    rm -f "$work/fcgi.sock"
    php "$work/capture.php" "$work/fcgi.sock" "$1" &
    pids+=($!)
    for _ in $(seq 100); do [ -S "$work/fcgi.sock" ] && return; sleep 0.05; done
    echo "capture server did not start" >&2
    exit 1
}

# libfcgi's client, as a CGI-to-FastCGI bridge sends a POST.
capture "$work/cgi-fcgi.bin"
printf 'refresh=1&x=%%41' | env -i REQUEST_METHOD=POST QUERY_STRING='action=refresh_data&token=0123' \
    CONTENT_TYPE=application/x-www-form-urlencoded CONTENT_LENGTH=15 \
    SCRIPT_FILENAME=/var/www/site/ct/admin/tokenusage.php HTTP_COOKIE='PHPSESSID=abc; tokenusage_csrf=0123' \
    cgi-fcgi -bind -connect "$work/fcgi.sock" >/dev/null 2>&1 || true
wait "${pids[-1]}" || true

# nginx with Debian's fastcgi_params, as the README's site configuration has it.
mkdir -p "$work/nginx/tmp" "$work/site/ct/admin"
port=$(php -r '$s=stream_socket_server("tcp://127.0.0.1:0");echo explode(":",stream_socket_get_name($s,false))[1];')
cat >"$work/nginx/nginx.conf" <<CONF
user root;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $work/nginx/tmp/body;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    proxy_temp_path $work/nginx/tmp/proxy;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        root $work/site;
        location ~ \.php\$ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass unix:$work/fcgi.sock;
        }
    }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
# Any answer will do (nothing listens on the FastCGI socket yet): nginx is up. Without it
# the captures below would be empty, so stop before any seed is written.
nginx_up=0
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && { nginx_up=1; break; }
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.05
done
if [ "$nginx_up" != 1 ]; then
    echo "nginx did not start on 127.0.0.1:$port; no seed was written" >&2
    cat "$work/nginx/error.log" >&2 2>/dev/null || true
    exit 1
fi
capture "$work/nginx-get.bin"
curl -s -o /dev/null -H 'Cookie: lang=en; PHPSESSID=adminser1; PHPSESSID=other' \
    "http://127.0.0.1:$port/ct/admin/tokenusage.php?action=download&page=2" || true
wait "${pids[-1]}" || true
capture "$work/nginx-post.bin"
curl -s -o /dev/null -X POST --data-binary "$(printf 'a=%.0s1' $(seq 40))" \
    -H 'Cookie: tokenusage_csrf=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff' \
    "http://127.0.0.1:$port/ct/admin/tokenusage.php?action=clear_cache&token=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff" || true
wait "${pids[-1]}" || true

for name in cgi-fcgi nginx-get nginx-post; do
    [ -s "$work/$name.bin" ] || { echo "no $name request was captured; no seed was written" >&2; exit 1; }
done
for name in cgi-fcgi nginx-get nginx-post; do
    { printf '%s' "$whole"; cat "$work/$name.bin"; } >"$seeds/fastcgi_records/$name"
done
{ printf '%s' "$small"; cat "$work/nginx-get.bin"; } >"$seeds/fastcgi_records/nginx-get-small-chunks"

# Hand-made streams for what the servers above never send.
php -r '
function rec($type, $id, $content, $pad = null) {
    $pad ??= (8 - strlen($content) % 8) % 8;
    return pack("CCnnCC", 1, $type, $id, strlen($content), $pad, 0) . $content . str_repeat("\0", $pad);
}
function pair($n, $v) {
    $len = fn($s) => strlen($s) < 128 ? chr(strlen($s)) : pack("N", strlen($s) | 0x80000000);
    return $len($n) . $len($v) . $n . $v;
}
function put($name, $bytes) { file_put_contents("'"$seeds"'/fastcgi_records/$name", $bytes); }
$begin = fn($id, $keep) => rec(1, $id, pack("nCx5", 1, $keep));
// GET_VALUES on the management id, as a server probing limits sends it.
put("get-values", "\x00\x00" . rec(9, 0, pair("FCGI_MAX_CONNS", "") . pair("FCGI_MAX_REQS", "") . pair("FCGI_MPXS_CONNS", "")));
// Two requests on one kept-alive connection, the second aborted mid-way.
put("two-requests-abort", "\x01\x05\x40" .
    $begin(1, 1) . rec(4, 1, pair("QUERY_STRING", "page=3")) . rec(4, 1, "") . rec(5, 1, "") .
    $begin(2, 1) . rec(4, 2, pair("REQUEST_METHOD", "GET")) . rec(2, 2, ""));
// Long-form lengths, a value split across two PARAMS records, odd padding.
$long = pair("HTTP_COOKIE", str_repeat("k=v; ", 40)) . pack("NN", 0x80000004, 0x80000003) . "NAMEval";
put("long-lengths-split-params", "\x00\x00" . $begin(7, 0) .
    rec(4, 7, substr($long, 0, 50), 3) . rec(4, 7, substr($long, 50), 0) . rec(4, 7, "") . rec(5, 7, "body", 255));
// An unknown record type, then a record of the wrong version.
put("unknown-type-bad-version", "\x00\x00" . rec(42, 0, "x") . "\x02\x01\x00\x01\x00\x00\x00\x00");
// A pair whose length runs past the record.
put("truncated-pair", "\x00\x00" . $begin(1, 0) . rec(4, 1, "\x05\x7fSHORT"));
'

# --- php_config -----------------------------------------------------------------------
cp ct/dat/config.inc.php "$seeds/php_config/sample-config.inc.php"
cat >"$seeds/php_config/every-spelling.php" <<'PHP'
<?php
const PREFIX = 'ck_', SCALE = 0x1F + 0b101 + 017 + 1_000;
define("EMAIL_DOMAIN", "example.com");
$license_config = [
    'license_key' => PREFIX . "live-\x41\u{1F600}\$notvar",
    'domain' => <<<EOT
      shop.example.com
      EOT,
    'email' => 'admin@' . EMAIL_DOMAIN,
    'demo_mode' => (bool) "0",
    "api_url" => 'https://license.example.net/api.php?x=\'1\'',
    5 => -1.5e3, '07' => .5, true => null, [1, 2, [3]],
];
$license_config['nested']['deep'][] = (int) '12abc';
$config = array('timezone' => 'Europe/Berlin', 'admin_language' => 'de',);
$demo_mode = !false;
if ($x) { $license_config = []; } // skipped, not run
/* a comment with ?> inside */ # hash comment
date_default_timezone_set('America/New_York');
return;
$license_config = null;
PHP
cat >"$seeds/php_config/broken.php" <<'PHP'
<?php
$license_config = array('license_key' => 'abc', 'domain' => 'd.example', 'email' =>
$license_config['email'] = "unterminated;
define('DEMO_MODE', 1 + );
$a = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]];
$s = 'text'; $s['k'] = 1;
?>
<html>inline <?= $x ?> <?php $license_config['domain'] = 'after-html.example';
PHP

# --- php_session ----------------------------------------------------------------------
for handler in php php_serialize; do
    dir="$work/sessions-$handler"
    mkdir -p "$dir"
    php -d error_reporting=0 -d session.save_path="$dir" -d session.serialize_handler=$handler -r '
        session_id("abc"); session_start();
        $_SESSION["admin_logged_in"] = true;
        $_SESSION["x"] = [1, "y" => new stdClass];
        session_write_close();'
    install -m 644 "$dir/sess_abc" "$seeds/php_session/real-$handler-admin"
    php -d error_reporting=0 -d session.save_path="$dir" -d session.serialize_handler=$handler -r '
        class Legacy implements Serializable {
            function serialize() { return "raw|data"; }
            function unserialize($d) {}
        }
        class User { public $name = "ann"; protected $role = "admin"; private $id = 5; }
        session_id("all"); session_start();
        $_SESSION["admin_user"] = "ann";
        $_SESSION["user"] = ["role" => "admin", "id" => 5, 7 => -0.0];
        $_SESSION["floats"] = [1.5, 1.0E+25, NAN, INF, -INF, PHP_INT_MIN];
        $_SESSION["text"] = "quote\" semi; pipe| brace} nul\0 \xff";
        $_SESSION["obj"] = new User;
        $_SESSION["legacy"] = new Legacy;
        $_SESSION["again"] = $_SESSION["obj"];
        $list = [1, 2];
        $_SESSION["ref1"] = &$list;
        $_SESSION["ref2"] = &$list;
        $_SESSION["nothing"] = null;
        $_SESSION["spaced key"] = false;
        session_write_close();'
    install -m 644 "$dir/sess_all" "$seeds/php_session/real-$handler-every-type"
done
printf 'admin_logged_in|b:1;admin_user|s:4:"ann"' >"$seeds/php_session/truncated-php"
printf 'a:2:{s:15:"admin_logged_in";b:1;i:0;a:1:{i:0;R:9;}}' >"$seeds/php_session/bad-reference"
printf 'a:1:{s:1:"x";O:8:"stdClass":1:{s:1:"a";a:1:{i:0;a:1:{i:0;a:0:{}}}}}' >"$seeds/php_session/nested-serialize"

# --- query_and_cookies ----------------------------------------------------------------
q="$seeds/query_and_cookies"
printf 'action=download' >"$q/download"
printf 'action=refresh_data&token=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef&page=10' >"$q/refresh-with-token"
printf 'action=Clear_Cache;page=99999999999999999999999999&debug=0&asset=dashboard.css' >"$q/mixed-case-huge-page-asset"
printf 'action=show&page=2&action=&%%zz=%%4&+=%%e2%%82%%ac&token=%%00' >"$q/unknown-action-bad-escapes"
printf 'lang=en; PHPSESSID=adminser1; PHPSESSID=other' >"$q/cookie-two-sessions"
printf 'PHPSESSID=abc%%2F..%%2Fx; tokenusage_csrf=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff' >"$q/cookie-token"
printf 'PHPSESSID="quoted value"; =empty; novalue; tokenusage_csrf=ZZ;;  PHPSESSID=' >"$q/cookie-malformed"
printf 'PHPSESSID=../../../etc/passwd; PHPSESSID=ok,-1' >"$q/cookie-traversal"

# --- api_json ---------------------------------------------------------------------------
a="$seeds/api_json"
start_api() { # start_api NAME ARGS...: the sample API's URL in $api
    cargo run -q -- sample-api --listen 127.0.0.1:0 --transactions 20 --anchor 1795169051 "$@" >"$work/api.out" 2>&1 &
    pids+=($!)
    api=
    for _ in $(seq 600); do api=$(head -n1 "$work/api.out" 2>/dev/null); [ -n "$api" ] && break; sleep 0.1; done
    [ -n "$api" ] || { echo "sample API did not start" >&2; exit 1; }
}
fetch() { # fetch OUT ENDPOINT [LIMIT]
    curl -s "$api?endpoint=$2&license_key=DEMO-4F9A&domain=demo.example.com&email=owner%40demo.example.com&limit=${3:-10000}" >"$1"
}
start_api
fetch "$a/sample-pricing" pricing/current
fetch "$a/sample-user-info" user/info
fetch "$a/sample-user-stats" user/stats
fetch "$a/sample-history" credits/history
fetch "$a/sample-unknown-endpoint" nope
for fault in garbage truncated refused status500; do
    curl -s "${api%/projects/api.php}/__control/fault?name=$fault" >/dev/null
    fetch "$a/sample-fault-$fault" credits/history
done
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
start_api --hostile
fetch "$a/hostile-user-info" user/info
fetch "$a/hostile-history" credits/history 5
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
# The contract's examples (shared/license-api.md), bare data without the envelope.
cat >"$a/contract-pricing" <<'JSON'
{"pricing": {
   "image_processing":  {"price": "2.50", "unit": 10000},
   "input_tokens":      {"price": "0.20", "unit": 1000000},
   "completion_tokens": {"price": "0.80", "unit": 1000000},
   "cached_tokens":     {"price": "0.05", "unit": 1000000}},
 "currency": "USD",
 "updated_at": "2026-11-20 09:00:00"}
JSON
cat >"$a/contract-user-info" <<'JSON'
{"email": "owner@example.com", "license_type": "Pro", "domain": "example.com",
 "created_at": "2024-03-15 12:34:56", "status": "active"}
JSON
cat >"$a/contract-user-stats" <<'JSON'
{"balance": "12.3456", "total_tokens_used": 1234567, "total_credits_used": "45.6789",
 "total_api_calls": 890, "total_images_processed": 12345}
JSON
cat >"$a/contract-history" <<'JSON'
{"transactions": [
   {"id": 98231, "created_at": "2026-11-20 10:04:11", "transaction_type": "usage",
    "service_type": "image_search via openai", "amount": "-0.0125",
    "tokens_used": 1834, "images_processed": 1,
    "description": "AI image selection via openai (gpt-4o-mini) for gallery 5512"}],
 "total": 1}
JSON
printf '{"success": false, "error": "License not found"}' >"$a/contract-refused"
cat >"$a/lenient-everything" <<'JSON'
{"success": "1", "data": {"balance": null, "total_tokens_used": "1e30", "total_api_calls": -4.7,
 "email": 5, "status": true, "created_at": "not a date", "updated_at": ["x"],
 "pricing": {"image_processing": {"price": 0, "unit": "0"}, "input_tokens": {"price": "1e-300", "unit": 1}},
 "transactions": [{"id": null, "amount": "12", "transaction_type": "REFUND", "created_at": "2026-02-30 25:61:61",
   "description": "=HYPERLINK(\"x\") via  OpenAI (claude-3.5:sonnet) o1-mini. \u202e\ud83d\ude00"},
   {"amount": "-"}, 7]}}
JSON

# --- cache_files ------------------------------------------------------------------------
c="$seeds/cache_files"
php -r '
$data = json_decode(file_get_contents("'"$a"'/contract-pricing"), true);
file_put_contents("'"$c"'/php-pricing-cache.json", json_encode(["timestamp" => 1763629200, "data" => $data]));
$history = json_decode(file_get_contents("'"$a"'/sample-history"), true)["data"]["transactions"];
$history = array_slice($history, 0, 5);
$history[] = ["id" => "x/1", "created_at" => "2026-11-21 07:30:00", "transaction_type" => "purchase",
    "service_type" => "", "amount" => "25.00", "tokens_used" => "0", "images_processed" => null,
    "description" => "Credit purchase - order #77 / PHP \u{e9}\u{1F600}"];
file_put_contents("'"$c"'/php-transaction-cache.json",
    json_encode(["timestamp" => 1763629200, "domain" => "demo.example.com", "transactions" => $history]));
file_put_contents("'"$c"'/php-transaction-cache-pretty.json",
    json_encode(["timestamp" => 1763629200, "domain" => "demo.example.com", "transactions" => array_slice($history, 4)],
        JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE));
'
# The entry index beside a cache file (src/history.rs): tag, file length, mtime (ns),
# inode, timestamp, count, then each entry's start and end, little-endian.
php -r 'file_put_contents("'"$c"'/entry-index", "TUINDEX1" . pack("PPPPV", 100, 1763629200123456789, 77,
    1763629200, 3) . pack("V*", 10, 20, 21, 40, 41, 99));'
printf '{"timestamp":"1763629200","data":[]}' >"$c/wrong-shape"
printf '{"timestamp":9223372036854775807,"domain":"","transactions":[]}' >"$c/max-timestamp-empty"

echo "seeds: $(find "$seeds" -type f | wc -l) files, $(du -sh "$seeds" | cut -f1)"
