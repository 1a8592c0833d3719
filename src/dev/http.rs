//! A tiny HTTP/1.1 server on std's `TcpListener`, for the sample license API and the
//! demo's preview of the real page (like `php -S`), plus the CGI bridge the preview needs.
//!
//! I/O: accepts TCP connections, reads requests and writes responses on them, and spawns
//! a bounded pool of worker threads. One poller thread (the caller's) watches the listener
//! and every idle keep-alive connection with `poll(2)`; a worker only holds a connection
//! while it reads, handles and answers one request, so idle keep-alive clients (browsers,
//! the license client's connection pool) never pin a worker. Parsing helpers are pure.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::transport::request::Request;
use crate::transport::response::{Response, reason_phrase, write_header_line};

/// The largest request head (request line and headers) accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The largest request body accepted; bigger ones get 413 and the connection closed.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Read and write time-out on every connection.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an idle keep-alive connection is kept open.
pub const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(30);
/// How often the poller looks at the shutdown flag.
const POLL_INTERVAL_MS: libc::c_int = 100;
/// Idle connections kept at most; the oldest are closed beyond this.
const MAX_IDLE_CONNECTIONS: usize = 1024;
/// How long `serve_http` waits for in-flight requests after shutdown before returning.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
const MAX_HEADERS: usize = 100;

/// The request handler every worker calls.
pub type Handler = Arc<dyn Fn(&HttpRequest) -> HttpResponse + Send + Sync>;

/// One parsed HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method as sent (`GET`, `HEAD`, ...).
    pub method: String,
    /// The raw request-target: `/path?query` (or absolute-form, or `*`).
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Headers in arrival order; values kept as bytes (they may be obs-text).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body (from `Content-Length`; empty otherwise).
    pub body: Vec<u8>,
    /// The client's address.
    pub remote_addr: SocketAddr,
    /// The address the client connected to.
    pub local_addr: SocketAddr,
}

impl HttpRequest {
    /// The first value of a header (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The path part of the target, without the query (`/` for absolute-form without one).
    pub fn path(&self) -> &str {
        let origin = origin_form(&self.target);
        origin.split_once('?').map_or(origin, |(path, _)| path)
    }

    /// The query string without the `?`, or "" when there is none.
    pub fn query(&self) -> &str {
        origin_form(&self.target)
            .split_once('?')
            .map_or("", |(_, query)| query)
    }
}

/// The target in origin-form: an absolute-form `http://host/p?q` becomes `/p?q`.
fn origin_form(target: &str) -> &str {
    // Compared as bytes: slicing the str could split a multi-byte character.
    let lower_starts = |prefix: &str| {
        target
            .as_bytes()
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
    };
    let rest = if lower_starts("http://") {
        &target[7..]
    } else if lower_starts("https://") {
        &target[8..]
    } else {
        return target;
    };
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
        // `http://host?q`: an empty path and the query.
        Some(i) => &rest[i..],
        None => "/",
    }
}

/// Writes a streamed body to the connection.
pub type BodyWriter = Box<dyn FnOnce(&mut dyn Write) -> io::Result<()> + Send>;

/// A response body.
pub enum HttpBody {
    /// Owned bytes.
    Bytes(Vec<u8>),
    /// Bytes shared between responses (a pre-rendered document).
    Shared(Arc<[u8]>),
    /// A body of known length written piecewise, so a huge body need not sit in memory.
    /// The function must write exactly `len` bytes.
    Stream { len: u64, write: BodyWriter },
}

impl HttpBody {
    /// The body's length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            HttpBody::Bytes(b) => b.len() as u64,
            HttpBody::Shared(b) => b.len() as u64,
            HttpBody::Stream { len, .. } => *len,
        }
    }

    /// True when the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn write_to(self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            HttpBody::Bytes(b) => out.write_all(&b),
            HttpBody::Shared(b) => out.write_all(&b),
            HttpBody::Stream { len, write } => {
                let mut counted = CountingWriter {
                    inner: out,
                    left: len,
                };
                write(&mut counted)?;
                if counted.left != 0 {
                    return Err(io::Error::other("streamed body shorter than its length"));
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for HttpBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpBody::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            HttpBody::Shared(b) => write!(f, "Shared({} bytes)", b.len()),
            HttpBody::Stream { len, .. } => write!(f, "Stream({len} bytes)"),
        }
    }
}

impl From<Vec<u8>> for HttpBody {
    fn from(bytes: Vec<u8>) -> Self {
        HttpBody::Bytes(bytes)
    }
}

impl From<String> for HttpBody {
    fn from(text: String) -> Self {
        HttpBody::Bytes(text.into_bytes())
    }
}

impl From<&str> for HttpBody {
    fn from(text: &str) -> Self {
        HttpBody::Bytes(text.as_bytes().to_vec())
    }
}

impl From<Arc<[u8]>> for HttpBody {
    fn from(bytes: Arc<[u8]>) -> Self {
        HttpBody::Shared(bytes)
    }
}

/// Refuses to write past the promised length, so a faulty stream cannot desync the
/// connection.
struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    left: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(io::Error::other("streamed body longer than its length"));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A response as the server writes it; `Content-Length` and `Connection` are added by the
/// server (any the handler sets are dropped).
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: HttpBody,
}

impl HttpResponse {
    /// A response with the given status, content type and body.
    pub fn new(status: u16, content_type: &str, body: impl Into<HttpBody>) -> Self {
        HttpResponse {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<HttpBody>) -> Self {
        Self::new(status, "text/plain; charset=UTF-8", body)
    }

    /// A JSON response.
    pub fn json(status: u16, body: impl Into<HttpBody>) -> Self {
        Self::new(status, "application/json", body)
    }
}

impl From<Response> for HttpResponse {
    fn from(response: Response) -> Self {
        HttpResponse {
            status: response.status,
            headers: response.headers,
            body: HttpBody::Bytes(response.body),
        }
    }
}

/// Builds the CGI meta-variables nginx's `fastcgi_params` would send for `req`, with the
/// page at `script_filename` served as `script_name`.
///
/// Headers become `HTTP_*` (upper-cased, `-` to `_`); like nginx, header names that
/// contain `_` are dropped so `X_Forwarded_For` cannot pose as `X-Forwarded-For`, and
/// repeated headers are joined (`; ` for cookies, `, ` otherwise).
pub fn cgi_request_from_http(
    req: &HttpRequest,
    script_filename: &Path,
    script_name: &str,
) -> Request {
    let text = |s: &str| s.as_bytes().to_vec();
    let mut params: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut push = |name: &str, value: Vec<u8>| params.push((name.as_bytes().to_vec(), value));

    let host = req
        .header("Host")
        .map(|h| String::from_utf8_lossy(h).into_owned());
    let server_name = host
        .as_deref()
        .map(host_without_port)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| req.local_addr.ip().to_string());

    push("GATEWAY_INTERFACE", text("CGI/1.1"));
    push(
        "SERVER_SOFTWARE",
        text(concat!("tokenusage/", env!("CARGO_PKG_VERSION"))),
    );
    push(
        "SERVER_PROTOCOL",
        text(&format!("HTTP/1.{}", req.minor_version)),
    );
    push("REQUEST_SCHEME", text("http"));
    push("REQUEST_METHOD", text(&req.method));
    push("QUERY_STRING", text(req.query()));
    push("REQUEST_URI", text(&req.target));
    push("DOCUMENT_URI", text(req.path()));
    push("SCRIPT_NAME", text(script_name));
    push(
        "SCRIPT_FILENAME",
        script_filename.as_os_str().as_encoded_bytes().to_vec(),
    );
    push("REMOTE_ADDR", text(&req.remote_addr.ip().to_string()));
    push("REMOTE_PORT", text(&req.remote_addr.port().to_string()));
    push("SERVER_ADDR", text(&req.local_addr.ip().to_string()));
    push("SERVER_PORT", text(&req.local_addr.port().to_string()));
    push("SERVER_NAME", text(&server_name));
    // php-cgi refuses to run without it when force-cgi-redirect is on.
    push("REDIRECT_STATUS", text("200"));
    push(
        "CONTENT_TYPE",
        req.header("Content-Type")
            .map(<[u8]>::to_vec)
            .unwrap_or_default(),
    );
    let content_length = if req.body.is_empty() && req.header("Content-Length").is_none() {
        String::new()
    } else {
        req.body.len().to_string()
    };
    push("CONTENT_LENGTH", text(&content_length));

    let mut joined: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, value) in &req.headers {
        if name.contains('_')
            || name.eq_ignore_ascii_case("Content-Type")
            || name.eq_ignore_ascii_case("Content-Length")
        {
            continue;
        }
        let var = format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"));
        match joined.iter_mut().find(|(n, _)| *n == var) {
            Some((_, existing)) => {
                let sep: &[u8] = if var == "HTTP_COOKIE" { b"; " } else { b", " };
                existing.extend_from_slice(sep);
                existing.extend_from_slice(value);
            }
            None => joined.push((var, value.clone())),
        }
    }
    for (name, value) in joined {
        push(&name, value);
    }

    Request {
        params,
        body: req.body.clone(),
    }
}

/// `example.com:8080` -> `example.com`, `[::1]:80` -> `[::1]`.
fn host_without_port(host: &str) -> &str {
    let host = host.trim();
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// A request head as parsed from the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    method: String,
    target: String,
    minor_version: u8,
    headers: Vec<(String, Vec<u8>)>,
}

/// Why a request could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BadRequest {
    /// Malformed head, bad `Content-Length`, unsupported transfer coding: 400.
    Malformed,
    /// Head over [`MAX_HEAD_BYTES`]: 400.
    HeadTooLarge,
    /// Body over [`MAX_BODY_BYTES`]: 413.
    BodyTooLarge,
}

impl BadRequest {
    fn status(self) -> u16 {
        match self {
            BadRequest::Malformed | BadRequest::HeadTooLarge => 400,
            BadRequest::BodyTooLarge => 413,
        }
    }
}

/// Parses a request head from the start of `buf`: `Ok(None)` while incomplete, else the
/// head and the number of bytes it took.
fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, BadRequest> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let consumed = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Err(BadRequest::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(BadRequest::HeadTooLarge),
        Err(_) => return Err(BadRequest::Malformed),
    };
    if consumed > MAX_HEAD_BYTES {
        return Err(BadRequest::HeadTooLarge);
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(BadRequest::Malformed);
    };
    let headers = req
        .headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect();
    Ok(Some((
        Head {
            method: method.to_string(),
            target: target.to_string(),
            minor_version: version,
            headers,
        },
        consumed,
    )))
}

/// The body length the head announces: 0 without `Content-Length`; chunked bodies and
/// conflicting or malformed lengths are refused.
fn body_length(headers: &[(String, Vec<u8>)]) -> Result<usize, BadRequest> {
    if headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("Transfer-Encoding"))
    {
        return Err(BadRequest::Malformed);
    }
    let mut length: Option<u64> = None;
    for (_, value) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
    {
        let text = std::str::from_utf8(value).map_err(|_| BadRequest::Malformed)?;
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadRequest::Malformed);
        }
        let n: u64 = text.parse().map_err(|_| BadRequest::BodyTooLarge)?;
        if length.is_some_and(|l| l != n) {
            return Err(BadRequest::Malformed);
        }
        length = Some(n);
    }
    match length {
        Some(n) if n > MAX_BODY_BYTES as u64 => Err(BadRequest::BodyTooLarge),
        Some(n) => Ok(n as usize),
        None => Ok(0),
    }
}

/// Whether the connection stays open after this exchange: HTTP/1.1 unless
/// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
fn wants_keep_alive(minor_version: u8, headers: &[(String, Vec<u8>)]) -> bool {
    let has_token = |token: &str| {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Connection"))
            .flat_map(|(_, v)| v.split(|b| *b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    };
    if minor_version >= 1 {
        !has_token("close")
    } else {
        has_token("keep-alive")
    }
}

/// Writes the status line and headers of a server response.
fn write_head(
    out: &mut impl Write,
    status: u16,
    headers: &[(String, String)],
    content_length: u64,
    connection: Option<&str>,
) -> io::Result<()> {
    write!(out, "HTTP/1.1 {status} {}\r\n", reason_phrase(status))?;
    for (name, value) in headers {
        if ["Content-Length", "Connection", "Transfer-Encoding"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
        {
            continue;
        }
        write_header_line(out, name, value)?;
    }
    write!(out, "Content-Length: {content_length}\r\n")?;
    if let Some(connection) = connection {
        write!(out, "Connection: {connection}\r\n")?;
    }
    out.write_all(b"\r\n")
}

/// Serves HTTP on `listener` with `workers` handler threads until `shutdown` is set
/// (checked every 100 ms), then closes every connection and returns.
///
/// Errors only when the listener or the poller cannot be set up or polled; a bad request
/// gets 400 and its connection closed, and a panicking handler gets 500. Answers still
/// being computed when `shutdown` is set are not sent; handlers that wait should watch
/// `shutdown` too. In-flight handlers get 2 s to finish before this returns anyway.
pub fn serve_http(
    listener: TcpListener,
    workers: usize,
    handler: Handler,
    shutdown: Arc<AtomicBool>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let (wake_rx, wake_tx) = UnixStream::pair()?;
    wake_rx.set_nonblocking(true)?;
    wake_tx.set_nonblocking(true)?;

    let (job_tx, job_rx) = mpsc::channel::<Conn>();
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (back_tx, back_rx) = mpsc::channel::<Conn>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let busy: Busy = Arc::new(Mutex::new(HashMap::new()));

    let workers = workers.max(1);
    for i in 0..workers {
        let worker = Worker {
            jobs: Arc::clone(&job_rx),
            back: back_tx.clone(),
            wake: wake_tx.try_clone()?,
            handler: Arc::clone(&handler),
            shutdown: Arc::clone(&shutdown),
            busy: Arc::clone(&busy),
        };
        let done = done_tx.clone();
        thread::Builder::new()
            .name(format!("http-worker-{i}"))
            .spawn(move || {
                worker.run();
                let _ = done.send(());
            })?;
    }
    drop(done_tx);
    drop(back_tx);

    let result = poll_loop(&listener, &wake_rx, &job_tx, &back_rx, &shutdown);

    // Stop: no new jobs, and unblock every worker stuck reading or writing.
    drop(job_tx);
    shutdown.store(true, Ordering::SeqCst);
    for stream in lock(&busy).values() {
        let _ = stream.shutdown(Shutdown::Both);
    }
    let deadline = Instant::now() + DRAIN_GRACE;
    for _ in 0..workers {
        let left = deadline.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(left) {
            Ok(()) => {}
            // A handler that ignores `shutdown` is left to finish on its own.
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    result
}

/// A connection and the bytes read from it but not yet used.
struct Conn {
    id: u64,
    stream: TcpStream,
    buf: Vec<u8>,
    remote_addr: SocketAddr,
    local_addr: SocketAddr,
    idle_since: Instant,
}

/// Clones of the streams workers are serving, so shutdown can unblock them.
type Busy = Arc<Mutex<HashMap<u64, TcpStream>>>;

/// Locks a mutex, ignoring poisoning (the data are plain collections).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn poll_loop(
    listener: &TcpListener,
    wake_rx: &UnixStream,
    jobs: &Sender<Conn>,
    back: &Receiver<Conn>,
    shutdown: &AtomicBool,
) -> io::Result<()> {
    let mut idle: Vec<Conn> = Vec::new();
    let mut next_id: u64 = 0;
    let mut fds: Vec<libc::pollfd> = Vec::new();
    while !shutdown.load(Ordering::SeqCst) {
        while let Ok(mut conn) = back.try_recv() {
            conn.idle_since = Instant::now();
            idle.push(conn);
        }
        let now = Instant::now();
        idle.retain(|c| now.duration_since(c.idle_since) < KEEP_ALIVE_IDLE);
        if idle.len() > MAX_IDLE_CONNECTIONS {
            idle.sort_by_key(|c| c.idle_since);
            let excess = idle.len() - MAX_IDLE_CONNECTIONS;
            idle.drain(..excess);
        }

        fds.clear();
        let watch = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        fds.push(watch(listener.as_raw_fd()));
        fds.push(watch(wake_rx.as_raw_fd()));
        fds.extend(idle.iter().map(|c| watch(c.stream.as_raw_fd())));
        // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfds.
        let ready = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                POLL_INTERVAL_MS,
            )
        };
        if ready < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if ready == 0 {
            continue;
        }
        if fds[1].revents != 0 {
            let mut sink = [0u8; 256];
            while matches!((&*wake_rx).read(&mut sink), Ok(n) if n > 0) {}
        }
        // Readable (or closed, or errored) idle connections go to a worker, which reads
        // the request or notices the close.
        let mut still_idle = Vec::with_capacity(idle.len());
        for (conn, fd) in idle.drain(..).zip(&fds[2..]) {
            if fd.revents != 0 {
                let _ = jobs.send(conn);
            } else {
                still_idle.push(conn);
            }
        }
        idle = still_idle;
        if fds[0].revents != 0 {
            accept_all(listener, &mut idle, &mut next_id);
        }
    }
    Ok(())
}

/// Accepts every pending connection into `idle`, where the next poll sees its request.
fn accept_all(listener: &TcpListener, idle: &mut Vec<Conn>, next_id: &mut u64) {
    loop {
        match listener.accept() {
            Ok((stream, remote_addr)) => {
                let Ok(local_addr) = stream.local_addr() else {
                    continue;
                };
                // BSDs hand out accepted sockets non-blocking when the listener is.
                if stream.set_nonblocking(false).is_err()
                    || stream.set_read_timeout(Some(IO_TIMEOUT)).is_err()
                    || stream.set_write_timeout(Some(IO_TIMEOUT)).is_err()
                {
                    continue;
                }
                let _ = stream.set_nodelay(true);
                *next_id += 1;
                idle.push(Conn {
                    id: *next_id,
                    stream,
                    buf: Vec::new(),
                    remote_addr,
                    local_addr,
                    idle_since: Instant::now(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                // Out of file descriptors and the like: the listener stays readable, so
                // back off instead of spinning.
                thread::sleep(Duration::from_millis(10));
                return;
            }
        }
    }
}

/// One pool thread: takes a readable connection, serves the requests waiting on it and
/// hands it back to the poller while it stays open.
struct Worker {
    jobs: Arc<Mutex<Receiver<Conn>>>,
    back: Sender<Conn>,
    wake: UnixStream,
    handler: Handler,
    shutdown: Arc<AtomicBool>,
    busy: Busy,
}

impl Worker {
    fn run(self) {
        loop {
            let job = lock(&self.jobs).recv();
            let Ok(mut conn) = job else {
                return;
            };
            if let Ok(clone) = conn.stream.try_clone() {
                lock(&self.busy).insert(conn.id, clone);
            }
            // Checked after registering, so a shutdown either sees this stream or is seen
            // here.
            let keep = !self.shutdown.load(Ordering::SeqCst)
                && serve_connection(&mut conn, &self.handler, &self.shutdown);
            lock(&self.busy).remove(&conn.id);
            if keep && self.back.send(conn).is_ok() {
                let _ = (&self.wake).write(&[1]);
            }
        }
    }
}

/// Serves the requests available on `conn`; true when it stays open for more.
fn serve_connection(conn: &mut Conn, handler: &Handler, shutdown: &AtomicBool) -> bool {
    loop {
        let head = match read_head(&mut conn.stream, &mut conn.buf) {
            Ok(Some(head)) => head,
            Ok(None) | Err(ReadError::Io) => return false,
            Err(ReadError::Bad(bad)) => {
                refuse(&conn.stream, bad);
                return false;
            }
        };
        let body = match body_length(&head.headers) {
            Ok(len) => match read_body(&mut conn.stream, &mut conn.buf, len) {
                Ok(body) => body,
                Err(_) => return false,
            },
            Err(bad) => {
                refuse(&conn.stream, bad);
                return false;
            }
        };
        let keep_alive =
            wants_keep_alive(head.minor_version, &head.headers) && !shutdown.load(Ordering::SeqCst);
        let request = HttpRequest {
            method: head.method,
            target: head.target,
            minor_version: head.minor_version,
            headers: head.headers,
            body,
            remote_addr: conn.remote_addr,
            local_addr: conn.local_addr,
        };
        let head_only = request.method.eq_ignore_ascii_case("HEAD");
        let (response, keep_alive) =
            match panic::catch_unwind(AssertUnwindSafe(|| handler(&request))) {
                Ok(response) => (response, keep_alive),
                Err(_) => (HttpResponse::text(500, "Internal Server Error\n"), false),
            };
        // Shutting down: in-flight answers are dropped and every connection closed, so a
        // handler that gave up because of the shutdown is not mistaken for an answer.
        if shutdown.load(Ordering::SeqCst) {
            return false;
        }
        let connection = match (keep_alive, request.minor_version) {
            (false, _) => Some("close"),
            (true, 0) => Some("keep-alive"),
            (true, _) => None,
        };
        let mut out = BufWriter::with_capacity(64 * 1024, &conn.stream);
        let written = write_head(
            &mut out,
            response.status,
            &response.headers,
            response.body.len(),
            connection,
        )
        .and_then(|()| {
            if head_only {
                Ok(())
            } else {
                response.body.write_to(&mut out)
            }
        })
        .and_then(|()| out.flush());
        if written.is_err() || !keep_alive {
            return false;
        }
        if conn.buf.is_empty() {
            return true;
        }
        // A pipelined request is already buffered: serve it now.
    }
}

/// Answers a request that could not be read with its status, and closes.
fn refuse(stream: &TcpStream, bad: BadRequest) {
    let status = bad.status();
    let body = format!("{status} {}\n", reason_phrase(status));
    let mut out = BufWriter::new(stream);
    let headers = [(
        "Content-Type".to_string(),
        "text/plain; charset=UTF-8".to_string(),
    )];
    let _ = write_head(&mut out, status, &headers, body.len() as u64, Some("close"))
        .and_then(|()| out.write_all(body.as_bytes()))
        .and_then(|()| out.flush());
    let _ = stream.shutdown(Shutdown::Write);
}

enum ReadError {
    Io,
    Bad(BadRequest),
}

/// Reads until `buf` holds a whole head; `Ok(None)` when the client closed cleanly
/// between requests. The whole head must arrive within [`IO_TIMEOUT`], so a client
/// trickling bytes cannot hold a worker for ever.
fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Option<Head>, ReadError> {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut chunk = [0u8; 8192];
    let head = loop {
        if !buf.is_empty() {
            if let Some((head, consumed)) = parse_head(buf).map_err(ReadError::Bad)? {
                buf.drain(..consumed);
                break head;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(ReadError::Io);
        }
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err(ReadError::Io),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(ReadError::Io),
        }
    };
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|_| ReadError::Io)?;
    Ok(Some(head))
}

/// Takes a `len`-byte body from `buf` and then the stream.
fn read_body(stream: &mut TcpStream, buf: &mut Vec<u8>, len: usize) -> io::Result<Vec<u8>> {
    let from_buf = len.min(buf.len());
    let mut body: Vec<u8> = buf.drain(..from_buf).collect();
    if body.len() < len {
        let start = body.len();
        body.resize(len, 0);
        stream.read_exact(&mut body[start..])?;
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    }

    fn request(target: &str, headers: &[(&str, &str)]) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            target: target.into(),
            minor_version: 1,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: Vec::new(),
            remote_addr: addr(50000),
            local_addr: addr(8080),
        }
    }

    #[test]
    fn incomplete_head_asks_for_more() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
    }

    #[test]
    fn complete_head_reports_bytes_taken() {
        let raw = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\nNEXT";
        let (head, consumed) = parse_head(raw).unwrap().unwrap();
        assert_eq!(head.method, "GET");
        assert_eq!(head.target, "/a?b=1");
        assert_eq!(head.minor_version, 1);
        assert_eq!(&raw[consumed..], b"NEXT");
    }

    #[test]
    fn garbage_head_is_malformed() {
        assert_eq!(
            parse_head(b"\x00\x01\x02 nonsense\r\n\r\n"),
            Err(BadRequest::Malformed)
        );
        assert_eq!(
            parse_head(b"GET / HTTP/9.9\r\n\r\n"),
            Err(BadRequest::Malformed)
        );
    }

    #[test]
    fn head_over_16_kib_is_refused() {
        let mut raw = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        raw.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES + 1));
        assert_eq!(parse_head(&raw), Err(BadRequest::HeadTooLarge));
    }

    #[test]
    fn too_many_headers_are_refused() {
        let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            raw.extend(format!("X-{i}: 1\r\n").bytes());
        }
        raw.extend(b"\r\n");
        assert_eq!(parse_head(&raw), Err(BadRequest::HeadTooLarge));
    }

    #[test]
    fn mangled_requests_never_panic_the_parsers() {
        let valid = "GET http://h\u{e9}/a?b=%zz HTTP/1.1\r\nHost: [::1\r\nContent-Length: 3\r\n\
                     Connection: close, x\r\nX_Y: z\r\n\r\n";
        let mut state: u64 = 42;
        for _ in 0..5_000 {
            let mut raw = valid.as_bytes().to_vec();
            for _ in 0..4 {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let at = (state >> 33) as usize % raw.len();
                raw[at] = (state >> 17) as u8;
            }
            if let Ok(Some((head, _))) = parse_head(&raw) {
                let _ = body_length(&head.headers);
                let _ = wants_keep_alive(head.minor_version, &head.headers);
                let mut req = request(&head.target, &[]);
                req.headers = head.headers;
                let _ = cgi_request_from_http(&req, Path::new("/x"), "/x");
            }
        }
    }

    #[test]
    fn body_length_follows_content_length() {
        let h = |v: &str| vec![("Content-Length".to_string(), v.as_bytes().to_vec())];
        assert_eq!(body_length(&[]), Ok(0));
        assert_eq!(body_length(&h("12")), Ok(12));
        assert_eq!(body_length(&h("-1")), Err(BadRequest::Malformed));
        assert_eq!(body_length(&h("1e3")), Err(BadRequest::Malformed));
        assert_eq!(
            body_length(&h("99999999999999999999999")),
            Err(BadRequest::BodyTooLarge)
        );
        assert_eq!(
            body_length(&h(&(MAX_BODY_BYTES + 1).to_string())),
            Err(BadRequest::BodyTooLarge)
        );
    }

    #[test]
    fn conflicting_lengths_and_chunked_bodies_are_refused() {
        let two = vec![
            ("Content-Length".to_string(), b"1".to_vec()),
            ("content-length".to_string(), b"2".to_vec()),
        ];
        assert_eq!(body_length(&two), Err(BadRequest::Malformed));
        let chunked = vec![("Transfer-Encoding".to_string(), b"chunked".to_vec())];
        assert_eq!(body_length(&chunked), Err(BadRequest::Malformed));
    }

    #[test]
    fn keep_alive_depends_on_version_and_connection_header() {
        let conn = |v: &str| vec![("Connection".to_string(), v.as_bytes().to_vec())];
        assert!(wants_keep_alive(1, &[]));
        assert!(!wants_keep_alive(1, &conn("close")));
        assert!(!wants_keep_alive(1, &conn("Upgrade, Close")));
        assert!(!wants_keep_alive(0, &[]));
        assert!(wants_keep_alive(0, &conn("Keep-Alive")));
    }

    #[test]
    fn path_and_query_split_the_target() {
        let req = request("/ct/admin/tokenusage.php?page=2&x=%20", &[]);
        assert_eq!(req.path(), "/ct/admin/tokenusage.php");
        assert_eq!(req.query(), "page=2&x=%20");
        let absolute = request("http://example.com/a/b?q=1", &[]);
        assert_eq!(absolute.path(), "/a/b");
        assert_eq!(absolute.query(), "q=1");
        assert_eq!(request("http://example.com", &[]).path(), "/");
        assert_eq!(request("/plain", &[]).query(), "");
        assert_eq!(request("hé://x", &[]).path(), "hé://x");
    }

    #[test]
    fn host_port_is_stripped_for_server_name() {
        assert_eq!(host_without_port("example.com:8080"), "example.com");
        assert_eq!(host_without_port("example.com"), "example.com");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
    }

    #[test]
    fn cgi_request_carries_nginx_style_meta_variables() {
        let mut req = request(
            "/ct/admin/tokenusage.php?action=export_csv",
            &[
                ("Host", "localhost:8080"),
                ("Cookie", "a=1"),
                ("cookie", "b=2"),
                ("X-Forwarded-For", "10.0.0.1"),
                ("X_Forwarded_For", "spoofed"),
                ("Content-Type", "text/plain"),
            ],
        );
        req.body = b"hello".to_vec();
        let cgi = cgi_request_from_http(
            &req,
            Path::new("/srv/ct/admin/tokenusage.php"),
            "/ct/admin/tokenusage.php",
        );
        assert_eq!(cgi.param("REQUEST_METHOD"), "GET");
        assert_eq!(cgi.query_string(), "action=export_csv");
        assert_eq!(
            cgi.param("REQUEST_URI"),
            "/ct/admin/tokenusage.php?action=export_csv"
        );
        assert_eq!(cgi.param("DOCUMENT_URI"), "/ct/admin/tokenusage.php");
        assert_eq!(cgi.param("SCRIPT_NAME"), "/ct/admin/tokenusage.php");
        assert_eq!(cgi.param("SCRIPT_FILENAME"), "/srv/ct/admin/tokenusage.php");
        assert_eq!(cgi.param("GATEWAY_INTERFACE"), "CGI/1.1");
        assert_eq!(cgi.param("SERVER_PROTOCOL"), "HTTP/1.1");
        assert_eq!(cgi.param("REMOTE_ADDR"), "127.0.0.1");
        assert_eq!(cgi.param("REMOTE_PORT"), "50000");
        assert_eq!(cgi.param("SERVER_ADDR"), "127.0.0.1");
        assert_eq!(cgi.param("SERVER_PORT"), "8080");
        assert_eq!(cgi.param("SERVER_NAME"), "localhost");
        assert_eq!(cgi.param("HTTP_HOST"), "localhost:8080");
        assert_eq!(cgi.cookie_header(), "a=1; b=2");
        assert_eq!(cgi.param("HTTP_X_FORWARDED_FOR"), "10.0.0.1");
        assert_eq!(cgi.param("CONTENT_TYPE"), "text/plain");
        assert_eq!(cgi.param("CONTENT_LENGTH"), "5");
        assert!(cgi.param_bytes("HTTP_CONTENT_TYPE").is_none());
        assert_eq!(cgi.body, b"hello");
    }

    #[test]
    fn server_head_drops_handler_framing_headers_and_line_breaks() {
        let mut out = Vec::new();
        let headers = vec![
            ("Content-Length".to_string(), "999".to_string()),
            ("X-A".to_string(), "1\r\nSet-Cookie: x=1".to_string()),
        ];
        write_head(&mut out, 200, &headers, 3, Some("close")).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nX-A: 1Set-Cookie: x=1\r\nContent-Length: 3\r\n\
             Connection: close\r\n\r\n"
        );
    }

    #[test]
    fn streamed_body_must_match_its_length() {
        let short = HttpBody::Stream {
            len: 4,
            write: Box::new(|out| out.write_all(b"abc")),
        };
        assert!(short.write_to(&mut Vec::new()).is_err());
        let long = HttpBody::Stream {
            len: 2,
            write: Box::new(|out| out.write_all(b"abc")),
        };
        assert!(long.write_to(&mut Vec::new()).is_err());
        let mut out = Vec::new();
        let exact = HttpBody::Stream {
            len: 3,
            write: Box::new(|out| out.write_all(b"abc")),
        };
        exact.write_to(&mut out).unwrap();
        assert_eq!(out, b"abc");
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

    #[test]
    fn server_keeps_connections_alive_refuses_garbage_and_stops() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shutdown = Arc::new(AtomicBool::new(false));
        let handler: Handler = Arc::new(|req: &HttpRequest| {
            if req.path() == "/panic" {
                panic!("handler bug");
            }
            HttpResponse::text(
                200,
                format!("{} {} {}", req.method, req.path(), req.body.len()),
            )
        });
        let server = {
            let shutdown = Arc::clone(&shutdown);
            thread::spawn(move || serve_http(listener, 2, handler, shutdown))
        };

        let mut client = TcpStream::connect(addr(port)).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // Two requests on one connection, the second pipelined with a body.
        client
            .write_all(
                b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n\
                  POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
            )
            .unwrap();
        let (head, body) = read_response(&mut client);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(!head.contains("Connection: close"));
        assert_eq!(body, b"GET /one 0");
        let (_, body) = read_response(&mut client);
        assert_eq!(body, b"POST /two 3");
        // The same connection, after going idle, is still served.
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
        assert!(
            String::from_utf8(head)
                .unwrap()
                .contains("Content-Length: 13\r\n")
        );
        client
            .write_all(b"GET /four HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let (head, body) = read_response(&mut client);
        assert!(head.contains("Connection: close\r\n"));
        assert_eq!(body, b"GET /four 0");
        assert_eq!(
            client.read(&mut byte).unwrap(),
            0,
            "closed after Connection: close"
        );

        let mut bad = TcpStream::connect(addr(port)).unwrap();
        bad.write_all(b"\x16\x03\x01 not http\r\n\r\n").unwrap();
        let mut answer = String::new();
        bad.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"));

        let mut panicky = TcpStream::connect(addr(port)).unwrap();
        panicky
            .write_all(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        panicky.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 500 Internal Server Error\r\n"));

        // An idle keep-alive connection does not delay shutdown.
        let _idle = TcpStream::connect(addr(port)).unwrap();
        let asked = Instant::now();
        shutdown.store(true, Ordering::SeqCst);
        server.join().unwrap().unwrap();
        assert!(asked.elapsed() < Duration::from_secs(1));
    }
}
