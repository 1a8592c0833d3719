//! The development HTTP server: tiny_http reads and writes HTTP/1.1 (keep-alive,
//! pipelining, `HEAD`, `Expect: 100-continue`), a fixed pool of our worker threads runs
//! the [`Handler`], and a stop closes everything it opened.
//!
//! I/O: serves a TCP listener the caller bound (port 0 for a free one), on tiny_http's
//! threads (one accepting, one per open connection) and `workers` handler threads; at stop
//! it shuts down the listener and every connection accepted on it.
//!
//! What tiny_http decides for us: a request head must be ASCII (else the connection is
//! closed unanswered), idle connections stay open until the client or a stop closes them,
//! and a body left unread is read and thrown away before the connection's next request.

use std::fs;
use std::io::{self, Read};
use std::mem::ManuallyDrop;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use tiny_http::{HTTPVersion, Header, StatusCode};

use super::{Handler, HttpRequest, HttpResponse};

/// The largest request body read; a bigger one gets 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How long a stop waits for the handlers still running (their sockets already shut down).
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// How often [`HttpServer::wait`] looks at the shutdown flag.
const FLAG_POLL: Duration = Duration::from_millis(100);
/// Headers the server writes itself; a handler's own are dropped.
const FRAMING: [&str; 3] = ["Content-Length", "Connection", "Transfer-Encoding"];

/// A running server; stops (gracefully) when dropped.
pub struct HttpServer {
    addr: SocketAddr,
    shutdown: Arc<AtomicBool>,
    running: Option<Running>,
}

/// What a stop needs: the tiny_http server, to unblock the workers waiting on it, and
/// word from each worker that it is done.
struct Running {
    server: Arc<tiny_http::Server>,
    workers: usize,
    done: Receiver<()>,
    /// Why tiny_http stopped accepting, when it did on its own.
    failure: Arc<Mutex<Option<io::Error>>>,
}

impl HttpServer {
    /// Serves `listener` with `workers` handler threads (at least one) until
    /// [`stop`](Self::stop), drop, or `shutdown` being set and [`wait`](Self::wait)
    /// noticing it. Handlers that wait should watch `shutdown`: a stop sets it, and an
    /// answer finished after that is never sent.
    pub fn start(
        listener: TcpListener,
        workers: usize,
        handler: Handler,
        shutdown: Arc<AtomicBool>,
    ) -> io::Result<HttpServer> {
        let addr = listener.local_addr()?;
        let server = tiny_http::Server::from_listener(listener, None).map_err(io::Error::other)?;
        let server = Arc::new(server);
        let failure = Arc::new(Mutex::new(None));
        let (done_tx, done) = mpsc::channel();
        let workers = workers.max(1);
        let mut running = Running {
            server: Arc::clone(&server),
            workers: 0,
            done,
            failure: Arc::clone(&failure),
        };
        for i in 0..workers {
            let worker = Worker {
                server: Arc::clone(&server),
                handler: Arc::clone(&handler),
                shutdown: Arc::clone(&shutdown),
                failure: Arc::clone(&failure),
                addr,
            };
            let done = done_tx.clone();
            let spawned = thread::Builder::new()
                .name(format!("http-worker-{i}"))
                .spawn(move || {
                    worker.run();
                    let _ = done.send(());
                });
            if let Err(e) = spawned {
                // Stop the workers already running before reporting.
                drop(HttpServer {
                    addr,
                    shutdown,
                    running: Some(running),
                });
                return Err(e);
            }
            running.workers += 1;
        }
        Ok(HttpServer {
            addr,
            shutdown,
            running: Some(running),
        })
    }

    /// The address served (`127.0.0.1:PORT` for a loopback listener).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Blocks until the shutdown flag is set (checked every 100 ms), then stops.
    pub fn wait(mut self) -> io::Result<()> {
        while !self.shutdown.load(Ordering::SeqCst) {
            thread::sleep(FLAG_POLL);
        }
        self.finish()
    }

    /// Stops: sets the shutdown flag, shuts down the listener and every connection (idle
    /// keep-alive ones included, answers not sent yet never are), and waits at most 2 s
    /// for the handlers still running. Errors when tiny_http had stopped accepting on its
    /// own before.
    pub fn stop(mut self) -> io::Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> io::Result<()> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        self.shutdown.store(true, Ordering::SeqCst);
        for _ in 0..running.workers {
            running.server.unblock();
        }
        // At once, like a killed server: answers not sent yet never will be, and a
        // worker blocked on a client (writing to it, or reading a body it never sends)
        // is freed.
        shut_down_sockets(self.addr);
        let deadline = Instant::now() + DRAIN_GRACE;
        for _ in 0..running.workers {
            let left = deadline.saturating_duration_since(Instant::now());
            // A handler that ignores the flag is left to finish on its own.
            if running.done.recv_timeout(left).is_err() {
                break;
            }
        }
        // tiny_http's own stop, once no worker holds the server any more.
        drop(running.server);
        let failure = running
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        failure.map_or(Ok(()), Err)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Serves `listener` until `shutdown` is set, then stops (see [`HttpServer`]).
pub fn serve(
    listener: TcpListener,
    workers: usize,
    handler: Handler,
    shutdown: Arc<AtomicBool>,
) -> io::Result<()> {
    HttpServer::start(listener, workers, handler, shutdown)?.wait()
}

/// One handler thread: takes the next request tiny_http has read and answers it.
struct Worker {
    server: Arc<tiny_http::Server>,
    handler: Handler,
    shutdown: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<io::Error>>>,
    addr: SocketAddr,
}

impl Worker {
    fn run(self) {
        loop {
            let request = match self.server.recv() {
                Ok(request) => request,
                // Unblocked by a stop, or tiny_http's accept loop failed: either way no
                // request will come.
                Err(e) => {
                    if !self.shutdown.swap(true, Ordering::SeqCst) {
                        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                    }
                    return;
                }
            };
            if self.shutdown.load(Ordering::SeqCst) {
                leave_unanswered(request);
                continue;
            }
            self.answer(request);
        }
    }

    fn answer(&self, mut request: tiny_http::Request) {
        let http = match read_request(&mut request, self.addr) {
            Ok(http) => http,
            Err(status) => {
                let refusal = HttpResponse::text(status, format!("{status}\n"));
                let _ = request.respond(to_tiny(refusal));
                return;
            }
        };
        let response = panic::catch_unwind(AssertUnwindSafe(|| (self.handler)(&http)))
            .unwrap_or_else(|_| HttpResponse::text(500, "Internal Server Error\n"));
        // Stopping: a handler that gave up because of the stop has no answer to send.
        if self.shutdown.load(Ordering::SeqCst) {
            leave_unanswered(request);
            return;
        }
        // Errors here are the client's (gone, or a stream that failed mid-body).
        let _ = request.respond(to_tiny(response));
    }
}

/// Drops a request without a word: tiny_http answers a dropped request with 500, but not
/// one whose writer was taken.
fn leave_unanswered(request: tiny_http::Request) {
    drop(request.into_writer());
}

/// The request as handlers see it, body read; the status to refuse it with otherwise.
fn read_request(request: &mut tiny_http::Request, addr: SocketAddr) -> Result<HttpRequest, u16> {
    if request.body_length().is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(413);
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|_| 400_u16)?;
    if body.len() > MAX_BODY_BYTES {
        return Err(413);
    }
    let headers = request
        .headers()
        .iter()
        .map(|h| {
            let name = h.field.as_str().as_str().to_string();
            (name, h.value.as_str().as_bytes().to_vec())
        })
        .collect();
    let HTTPVersion(_, minor) = *request.http_version();
    Ok(HttpRequest {
        method: request.method().as_str().to_string(),
        target: request.url().to_string(),
        minor_version: minor.min(1),
        headers,
        body,
        remote_addr: request.remote_addr().copied().unwrap_or(addr),
        local_addr: addr,
    })
}

/// The response as tiny_http sends it: always with `Content-Length`, never chunked, the
/// body read while it is sent.
fn to_tiny(response: HttpResponse) -> tiny_http::Response<Box<dyn Read + Send>> {
    let len = usize::try_from(response.body.len()).unwrap_or(usize::MAX);
    let headers = response
        .headers
        .iter()
        .filter(|(name, _)| !FRAMING.iter().any(|f| name.eq_ignore_ascii_case(f)))
        .filter_map(|(name, value)| header(name, value))
        .collect();
    tiny_http::Response::new(
        StatusCode(response.status),
        headers,
        response.body.into_reader(),
        Some(len),
        None,
    )
    .with_chunked_threshold(usize::MAX)
}

/// A header tiny_http can send: a name that is an HTTP token (else dropped), a value
/// without CR or LF (so a header can never be split) and with any other byte outside
/// printable ASCII percent-encoded.
fn header(name: &str, value: &str) -> Option<Header> {
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return None;
    }
    let mut clean = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'\r' | b'\n' => {}
            b' '..=b'~' | b'\t' => clean.push(char::from(byte)),
            other => clean.push_str(&format!("%{other:02X}")),
        }
    }
    Header::from_bytes(name.as_bytes(), clean.as_bytes()).ok()
}

/// Shuts down every socket of this process bound to `addr`: the listener and the
/// connections accepted on it.
///
/// Why: tiny_http keeps no handle on its connections and never closes an idle keep-alive
/// one, even once the server is dropped; a request later sent on it waits for ever in a
/// queue nobody reads (tiny-http/tiny-http#244). Clients here keep connections (the
/// license client's pool, browsers), and a stopped sample API must refuse them, not hang
/// them. Shutting down, unlike closing, leaves each descriptor to its owner and wakes
/// the thread blocked on it.
fn shut_down_sockets(addr: SocketAddr) {
    let listing = fs::read_dir("/proc/self/fd").or_else(|_| fs::read_dir("/dev/fd"));
    let Ok(listing) = listing else {
        return;
    };
    let fds: Vec<RawFd> = listing
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        // SAFETY: the descriptor is only borrowed, never closed (ManuallyDrop). If it was
        // closed meanwhile or is no TCP socket, the calls below fail (EBADF, ENOTSOCK) and
        // nothing happens; a socket reusing the number is shut down only when it is bound
        // to our address, that is, when it is ours.
        let socket = ManuallyDrop::new(unsafe { TcpStream::from_raw_fd(fd) });
        if socket.local_addr().is_ok_and(|local| bound_to(local, addr)) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// Whether a socket's local address `local` belongs to a server listening on `addr`
/// (a wildcard listener owns its port on every address).
fn bound_to(local: SocketAddr, addr: SocketAddr) -> bool {
    local.port() == addr.port() && (addr.ip().is_unspecified() || local.ip() == addr.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::http::HttpBody;
    use std::io::Write;

    /// The head tiny_http writes for `response`.
    fn head_of(response: HttpResponse) -> String {
        let mut out = Vec::new();
        to_tiny(response)
            .raw_print(&mut out, HTTPVersion(1, 1), &[], true, None)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn handler_framing_headers_and_line_breaks_never_reach_the_wire() {
        let response = HttpResponse::text(200, "abc")
            .with_header("Content-Length", "999")
            .with_header("Connection", "close")
            .with_header("Transfer-Encoding", "chunked")
            .with_header("X-A", "1\r\nSet-Cookie: x=1")
            .with_header("X-Utf8", "caf\u{e9}")
            .with_header("Bad Name", "dropped");
        let head = head_of(response);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("\r\nX-A: 1Set-Cookie: x=1\r\n"), "{head}");
        assert!(head.contains("\r\nX-Utf8: caf%C3%A9\r\n"), "{head}");
        assert!(head.contains("\r\nContent-Length: 3\r\n"), "{head}");
        for absent in ["999", "Connection", "chunked", "Bad Name"] {
            assert!(!head.contains(absent), "{absent} in {head}");
        }
    }

    #[test]
    fn a_large_body_goes_out_with_its_length_not_chunked() {
        let huge = 60 * 1024 * 1024;
        let body = HttpBody::stream(huge, io::repeat(b'x'));
        let tiny = to_tiny(HttpResponse::json(200, body));
        assert_eq!(tiny.data_length(), Some(huge as usize));
        let head = head_of(HttpResponse::json(200, vec![b'x'; 100_000]));
        assert!(head.contains("\r\nContent-Length: 100000\r\n"), "{head}");
        assert!(!head.contains("chunked"), "{head}");
    }

    #[test]
    fn only_sockets_on_the_servers_port_are_its_own() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(bound_to("127.0.0.1:8080".parse().unwrap(), addr));
        assert!(!bound_to("127.0.0.1:8081".parse().unwrap(), addr));
        assert!(!bound_to("127.0.0.2:8080".parse().unwrap(), addr));
        let wildcard: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(bound_to("10.0.0.1:8080".parse().unwrap(), wildcard));
    }

    /// Reads one response: head text and body (by Content-Length).
    fn read_response(stream: &mut TcpStream) -> (String, Vec<u8>) {
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        while !raw.ends_with(b"\r\n\r\n") {
            assert_eq!(
                stream.read(&mut byte).unwrap(),
                1,
                "connection closed early"
            );
            raw.push(byte[0]);
        }
        let head = String::from_utf8(raw).unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).unwrap();
        (head, body)
    }

    fn connect(addr: SocketAddr) -> TcpStream {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    }

    #[test]
    fn the_server_keeps_connections_alive_refuses_what_it_cannot_serve_and_stops() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let handler: Handler = Arc::new(|req: &HttpRequest| {
            if req.path() == "/panic" {
                panic!("handler bug");
            }
            HttpResponse::text(
                200,
                format!("{} {} {}", req.method, req.path(), req.body.len()),
            )
        });
        let shutdown = Arc::new(AtomicBool::new(false));
        let server = HttpServer::start(listener, 2, handler, shutdown).unwrap();
        let addr = server.addr();

        let mut client = connect(addr);
        // Two requests on one connection, the second pipelined with a body.
        client
            .write_all(
                b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n\
                  POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
            )
            .unwrap();
        let (head, body) = read_response(&mut client);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(body, b"GET /one 0");
        let (_, body) = read_response(&mut client);
        assert_eq!(body, b"POST /two 3");
        // The same connection, after going idle, is still served; HEAD gets no body.
        thread::sleep(Duration::from_millis(300));
        client
            .write_all(b"HEAD /three HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            client.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.contains("Content-Length: 13\r\n"), "{head}");
        client
            .write_all(b"GET /four HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let (_, body) = read_response(&mut client);
        assert_eq!(body, b"GET /four 0");
        assert_eq!(
            client.read(&mut byte).unwrap(),
            0,
            "closed after Connection: close"
        );

        let mut bad = connect(addr);
        bad.write_all(b"\x16\x03\x01 not http\r\n\r\n").unwrap();
        let mut answer = String::new();
        bad.read_to_string(&mut answer).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );

        let mut big = connect(addr);
        write!(
            big,
            "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        )
        .unwrap();
        let (head, _) = read_response(&mut big);
        assert!(head.starts_with("HTTP/1.1 413 "), "{head}");
        // tiny_http reads the announced body before the connection's next request.
        drop(big);

        let mut panicky = connect(addr);
        panicky
            .write_all(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let (head, _) = read_response(&mut panicky);
        assert!(head.starts_with("HTTP/1.1 500 "), "{head}");

        // An idle keep-alive connection neither delays the stop nor outlives it.
        let mut idle = connect(addr);
        idle.write_all(b"GET /idle HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        read_response(&mut idle);
        let asked = Instant::now();
        server.stop().unwrap();
        assert!(asked.elapsed() < Duration::from_secs(1));
        assert_eq!(idle.read(&mut byte).unwrap(), 0, "closed by the stop");
        assert!(
            TcpStream::connect(addr).is_err(),
            "nothing listens any more"
        );
    }

    #[test]
    fn a_stop_sends_no_answer_a_waiting_handler_gave_up_on() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let shutdown = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let handler: Handler = {
            let (shutdown, started) = (Arc::clone(&shutdown), Arc::clone(&started));
            Arc::new(move |_: &HttpRequest| {
                started.store(true, Ordering::SeqCst);
                while !shutdown.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(10));
                }
                HttpResponse::text(503, "gave up\n")
            })
        };
        let server = HttpServer::start(listener, 1, handler, shutdown).unwrap();
        let mut client = connect(server.addr());
        client
            .write_all(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        while !started.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(10));
        }
        server.stop().unwrap();
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    }
}
