#!/usr/bin/env python3
"""bench/attack.py: hostile FastCGI clients for the attack mode of bench/load.sh.

    python3 bench/attack.py idle    --socket PATH --count N --seconds S
    python3 bench/attack.py trickle --socket PATH --count N --seconds S [--interval 10]
                                    [--script-filename PATH]

Both keep COUNT connections open on the unix socket PATH for S seconds, then close them
all and exit by themselves (SIGTERM or SIGINT end them early, the same way):

  idle     connects and sends nothing.
  trickle  sends a valid FastCGI BEGIN_REQUEST (id 1, responder), then the request's
           PARAMS record (a real page-1 request) one byte at a time, the first byte at
           once and one more every INTERVAL seconds.

A connection the server closes is opened again after --reconnect-delay seconds (1 s), so
the pressure stays; a connect refused or not taken (the listen backlog full: EAGAIN) is
tried again every 0.1 s. Nothing blocks: one poll loop, non-blocking sockets.

Output on stdout: `READY open=N` once every connection is open (or after --ready-after
seconds, 3 by default, with however many are open), then at the end one line
`SUMMARY mode=.. count=.. open_end=.. connects=.. connect_failures=.. closed_by_server=..
bytes_sent=.. bytes_received=.. open_max=.. server_closed_after=MIN-MAXs seconds=..`
(server_closed_after: how long the connections the server closed had been open).
"""

import argparse
import errno
import selectors
import signal
import socket
import struct
import sys
import time

FCGI_VERSION = 1
BEGIN_REQUEST = 1
PARAMS = 4
STDIN = 5
RESPONDER = 1


def record(kind, request_id, content):
    """One FastCGI record, padded to a multiple of 8 bytes."""
    padding = (-len(content)) % 8
    header = struct.pack(">BBHHBx", FCGI_VERSION, kind, request_id, len(content), padding)
    return header + content + b"\0" * padding


def length(n):
    return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 0x80000000)


def pairs(params):
    out = b""
    for name, value in params:
        name, value = name.encode(), value.encode()
        out += length(len(name)) + length(len(value)) + name + value
    return out


def trickle_bytes(script_filename):
    """BEGIN_REQUEST (sent whole) and the rest: PARAMS, the empty PARAMS, the empty STDIN."""
    begin = record(BEGIN_REQUEST, 1, struct.pack(">HB5x", RESPONDER, 0))
    params = pairs([
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/ct/admin/tokenusage.php"),
        ("SCRIPT_NAME", "/ct/admin/tokenusage.php"),
        ("SCRIPT_FILENAME", script_filename),
        ("QUERY_STRING", ""),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("SERVER_NAME", "127.0.0.1"),
        ("SERVER_PORT", "80"),
        ("HTTP_HOST", "127.0.0.1"),
    ])
    rest = record(PARAMS, 1, params) + record(PARAMS, 1, b"") + record(STDIN, 1, b"")
    return begin, rest


class Slot:
    def __init__(self):
        self.sock = None
        self.opened = 0.0
        self.next_connect = 0.0
        self.sent = 0          # bytes of `rest` sent (trickle)
        self.next_send = 0.0


def main():
    parser = argparse.ArgumentParser(description="hostile FastCGI clients (bench/load.sh attack)")
    parser.add_argument("mode", choices=["idle", "trickle"])
    parser.add_argument("--socket", required=True, help="the FastCGI unix socket")
    parser.add_argument("--count", type=int, required=True, help="connections kept open")
    parser.add_argument("--seconds", type=float, required=True, help="how long, then exit")
    parser.add_argument("--interval", type=float, default=10.0, help="trickle: seconds per byte")
    parser.add_argument("--reconnect-delay", type=float, default=1.0)
    parser.add_argument("--ready-after", type=float, default=3.0)
    parser.add_argument("--script-filename", default="/nonexistent/ct/admin/tokenusage.php")
    args = parser.parse_args()
    if not (1 <= args.count <= 5000) or not (0 < args.seconds <= 3600) or args.interval <= 0:
        parser.error("--count must be 1..5000, --seconds 0..3600, --interval > 0")

    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(True))

    begin, rest = trickle_bytes(args.script_filename)
    slots = [Slot() for _ in range(args.count)]
    sel = selectors.DefaultSelector()
    stats = dict(connects=0, connect_failures=0, closed_by_server=0, bytes_sent=0,
                 bytes_received=0, open_max=0)
    start = time.monotonic()
    deadline = start + args.seconds
    ready = False

    lifetimes = []  # seconds each connection the server closed had been open

    def close(slot, by_server, now):
        sel.unregister(slot.sock)
        slot.sock.close()
        slot.sock = None
        if by_server:
            stats["closed_by_server"] += 1
            lifetimes.append(now - slot.opened)
            slot.next_connect = now + args.reconnect_delay

    def send(slot, data, now):
        try:
            n = slot.sock.send(data)
        except BlockingIOError:
            return 0
        except OSError:
            close(slot, True, now)
            return -1
        stats["bytes_sent"] += n
        return n

    while not stop:
        now = time.monotonic()
        if now >= deadline:
            break
        for slot in slots:
            if slot.sock is None and now >= slot.next_connect:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.setblocking(False)
                rc = sock.connect_ex(args.socket)
                if rc not in (0, errno.EINPROGRESS):
                    sock.close()
                    stats["connect_failures"] += 1
                    slot.next_connect = now + 0.1
                    continue
                slot.sock = sock
                slot.opened = now
                sel.register(sock, selectors.EVENT_READ, slot)
                stats["connects"] += 1
                if args.mode == "trickle":
                    slot.sent = 0
                    if send(slot, begin, now) < 0:
                        continue
                    slot.next_send = now
            if args.mode == "trickle" and slot.sock is not None and now >= slot.next_send:
                if slot.sent < len(rest):
                    n = send(slot, rest[slot.sent:slot.sent + 1], now)
                    if n > 0:
                        slot.sent += n
                if slot.sock is not None:
                    slot.next_send = now + args.interval
        open_now = sum(1 for s in slots if s.sock is not None)
        stats["open_max"] = max(stats["open_max"], open_now)
        if not ready and (open_now == args.count or now - start >= args.ready_after):
            ready = True
            print(f"READY open={open_now}", flush=True)
        # Wait for a close (or an answer) from the server, at most 0.1 s.
        for key, _ in sel.select(timeout=0.1):
            slot = key.data
            try:
                data = slot.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                stats["bytes_received"] += len(data)
            else:
                close(slot, True, time.monotonic())

    open_end = sum(1 for s in slots if s.sock is not None)
    for slot in slots:
        if slot.sock is not None:
            close(slot, False, 0)
    if not ready:
        print(f"READY open={open_end}", flush=True)
    fields = " ".join(f"{k}={v}" for k, v in stats.items())
    held = (f"{min(lifetimes):.1f}-{max(lifetimes):.1f}s" if lifetimes else "-")
    print(f"SUMMARY mode={args.mode} count={args.count} open_end={open_end} {fields} "
          f"server_closed_after={held} seconds={time.monotonic() - start:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
