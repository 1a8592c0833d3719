//! Slow and idle peers on the FastCGI socket cannot starve an admin: the real binary on a
//! real unix socket, beside connections that send nothing, trickle a request a byte at a
//! time, or stay open after a keep-alive request.
//!
//! Every helper thread stops by itself (a flag, checked every 50 ms) and every wait is
//! bounded; a helper stuck in `connect` on a server that stopped accepting ends when the
//! server does.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::fcgi::{self, PARAMS, RESPONDER};
use crate::support::*;

/// How soon a real request must be answered while the socket is under attack.
const ANSWER_WITHIN: Duration = Duration::from_millis(1500);
/// The server's default deadline for a whole request head (`ServerOptions::head_timeout`).
const HEAD_DEADLINE: Duration = Duration::from_secs(10);

/// Connections that connect and send nothing, opened from a background thread (`connect`
/// blocks once a server stops accepting) and held until dropped.
struct Idlers {
    stop: Arc<AtomicBool>,
    opened: Arc<AtomicUsize>,
}

impl Idlers {
    fn open(socket: &Path, count: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let opened = Arc::new(AtomicUsize::new(0));
        let (socket, flag, tally) = (socket.to_path_buf(), Arc::clone(&stop), Arc::clone(&opened));
        thread::spawn(move || {
            let mut held = Vec::with_capacity(count);
            for _ in 0..count {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(stream) = UnixStream::connect(&socket) {
                    held.push(stream);
                    tally.fetch_add(1, Ordering::SeqCst);
                }
            }
            while !flag.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(50));
            }
        });
        Idlers { stop, opened }
    }

    /// Waits until all `count` are connected or `limit` passes; how many are.
    fn wait_for(&self, count: usize, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        while self.opened.load(Ordering::SeqCst) < count && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        self.opened.load(Ordering::SeqCst)
    }
}

impl Drop for Idlers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The start of a request that never ends: BEGIN_REQUEST (keep-alive), then the header
/// of a PARAMS record announcing 4000 bytes, of which the trickler sends one at a time.
fn endless_head() -> Vec<u8> {
    let mut out = fcgi::begin(1, RESPONDER, true);
    out.extend([1, PARAMS, 0, 1, 0x0f, 0xa0, 0, 0]);
    out
}

/// Connections that each send [`endless_head`], then one more byte every `every`; one the
/// server closes is opened again, so the pressure lasts as long as the test.
struct Tricklers {
    stop: Arc<AtomicBool>,
    started: Arc<AtomicUsize>,
}

impl Tricklers {
    fn start(socket: &Path, count: usize, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicUsize::new(0));
        let (socket, flag, tally) = (
            socket.to_path_buf(),
            Arc::clone(&stop),
            Arc::clone(&started),
        );
        thread::spawn(move || {
            let open = |socket: &PathBuf| -> Option<UnixStream> {
                let mut stream = connect(socket, Duration::from_secs(1)).ok()?;
                stream.write_all(&endless_head()).ok()?;
                Some(stream)
            };
            let mut streams: Vec<Option<UnixStream>> = Vec::with_capacity(count);
            for _ in 0..count {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                streams.push(open(&socket));
                tally.fetch_add(1, Ordering::SeqCst);
            }
            let mut next_round = Instant::now() + every;
            while !flag.load(Ordering::SeqCst) {
                if Instant::now() < next_round {
                    thread::sleep(Duration::from_millis(50));
                    continue;
                }
                next_round += every;
                for slot in &mut streams {
                    let alive = slot.as_mut().is_some_and(|s| s.write_all(b"x").is_ok());
                    if !alive {
                        *slot = open(&socket);
                    }
                }
            }
        });
        Tricklers { stop, started }
    }

    fn wait_for(&self, count: usize, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        while self.started.load(Ordering::SeqCst) < count && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        self.started.load(Ordering::SeqCst)
    }
}

impl Drop for Tricklers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A page request on a new connection (no keep-alive), from a thread so that even a
/// `connect` that blocks is bounded: its status and how long it took, or why there was
/// none within `limit`.
fn page_within(socket: &Path, install: &Install, limit: Duration) -> Result<u16, String> {
    let (sender, receiver) = mpsc::channel();
    let (socket, params) = (socket.to_path_buf(), page_params(install, ""));
    let started = Instant::now();
    thread::spawn(move || {
        let answer = connect(&socket, limit)
            .and_then(|mut stream| try_fastcgi_request(&mut stream, &params))
            .map(|page| page.status);
        let _ = sender.send(answer);
    });
    match receiver.recv_timeout(limit) {
        Ok(Ok(status)) if started.elapsed() <= limit => Ok(status),
        Ok(Ok(status)) => Err(format!("{status} only after {:?}", started.elapsed())),
        Ok(Err(err)) => Err(format!("failed after {:?}: {err}", started.elapsed())),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

/// One page request with FCGI_KEEP_CONN on `stream`, which stays open afterwards.
fn keep_alive_page(stream: &mut UnixStream, install: &Install, id: u16) -> io::Result<u16> {
    let params = page_params(install, "");
    let pairs: Vec<(&[u8], &[u8])> = params
        .iter()
        .map(|(name, value)| (name.as_bytes(), value.as_bytes()))
        .collect();
    let reply = fcgi::exchange(stream, &fcgi::request(id, true, &pairs, b""))?;
    Ok(CgiResponse::parse(&reply.stdout).status)
}

#[test]
fn an_admin_is_answered_at_once_beside_200_idle_and_16_trickling_connections() {
    let api = sample_api(100);
    let install = Install::new("slow-peers", &api.url());
    let server = Server::start(&[]);
    assert_eq!(server.get(&install, "").status, 200, "the warm-up page");

    // The tricklers first: on a server whose connections hold workers they take all 16.
    let tricklers = Tricklers::start(&server.socket, 16, Duration::from_millis(1500));
    assert_eq!(tricklers.wait_for(16, Duration::from_secs(5)), 16);
    let idlers = Idlers::open(&server.socket, 200);
    let connected = idlers.wait_for(200, Duration::from_secs(5));
    for attempt in 1..=3 {
        let answer = page_within(&server.socket, &install, ANSWER_WITHIN);
        assert_eq!(
            answer,
            Ok(200),
            "request {attempt} beside {connected} idle and 16 trickling connections"
        );
        thread::sleep(Duration::from_millis(300));
    }
    drop((idlers, tricklers));
}

#[test]
fn idle_keep_alive_connections_hold_no_worker() {
    let api = sample_api(100);
    let install = Install::new("keep-alive-idle", &api.url());
    let server = Server::start(&["--workers", "2"]);
    assert_eq!(server.get(&install, "").status, 200, "the warm-up page");

    // Twice as many kept-alive connections as workers, each idle after one request.
    let mut kept = Vec::new();
    for n in 1..=4u16 {
        let mut stream = connect(&server.socket, ANSWER_WITHIN).unwrap();
        let status = keep_alive_page(&mut stream, &install, n)
            .unwrap_or_else(|err| panic!("keep-alive connection {n} unanswered: {err}"));
        assert_eq!(status, 200, "keep-alive connection {n}");
        kept.push(stream);
    }
    assert_eq!(
        page_within(&server.socket, &install, ANSWER_WITHIN),
        Ok(200),
        "a fifth connection with 4 idle keep-alive connections open"
    );
    // The kept connections still work: idle is not closed.
    for (n, stream) in kept.iter_mut().enumerate() {
        assert_eq!(
            keep_alive_page(stream, &install, 10).unwrap(),
            200,
            "kept {n}"
        );
    }
}

#[test]
fn a_request_head_trickled_a_byte_a_second_is_closed_at_the_deadline() {
    let server = Server::start(&[]);
    let mut stream = connect(&server.socket, Duration::from_secs(1)).unwrap();
    let started = Instant::now();
    stream.write_all(&endless_head()).unwrap();
    let closed_after = loop {
        let elapsed = started.elapsed();
        assert!(
            elapsed < HEAD_DEADLINE + Duration::from_secs(5),
            "still open after {elapsed:?} of trickling"
        );
        // Each turn waits a second for the close, then sends one more byte.
        if closed_within(&mut stream, Duration::from_secs(1)) || stream.write_all(b"x").is_err() {
            break started.elapsed();
        }
    };
    assert!(
        closed_after >= HEAD_DEADLINE - Duration::from_secs(1),
        "closed after {closed_after:?}, before the deadline"
    );
    assert!(
        closed_after <= HEAD_DEADLINE + Duration::from_millis(2500),
        "closed after {closed_after:?}"
    );
}

#[test]
fn more_idle_connections_than_descriptors_close_the_oldest_and_an_admin_is_answered() {
    let api = sample_api(100);
    let install = Install::new("conn-cap", &api.url());
    // 64 descriptors cannot hold 200 connections: the cap (taken from RLIMIT_NOFILE)
    // closes the oldest idle ones to make room.
    let server = Server::start_with_limit(64, &["--workers", "2"]);
    assert_eq!(server.get(&install, "").status, 200, "the warm-up page");

    let mut oldest: Vec<UnixStream> = (0..5)
        .map(|_| UnixStream::connect(&server.socket).unwrap())
        .collect();
    let idlers = Idlers::open(&server.socket, 200);
    let connected = idlers.wait_for(200, Duration::from_secs(5));
    assert_eq!(connected, 200, "every idle connection was accepted");
    for attempt in 1..=3 {
        assert_eq!(
            page_within(&server.socket, &install, ANSWER_WITHIN),
            Ok(200),
            "request {attempt} beside 205 idle connections"
        );
    }
    for (n, stream) in oldest.iter_mut().enumerate() {
        assert!(
            closed_within(stream, Duration::from_secs(2)),
            "the oldest idle connection {n} was closed"
        );
    }
    drop(idlers);
}
