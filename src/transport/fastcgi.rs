//! The FastCGI 1.0 responder: binds or inherits a listening socket, accepts connections on
//! one thread and serves them on a fixed pool of worker threads.
//!
//! I/O: sockets (unix and TCP), the unix socket file it creates (mode set, removed when
//! shutdown begins or the listener is dropped), and `tokenusage: ` lines on stderr. The
//! wire format lives in [`crate::fastcgi`]; each request is answered by the handler given
//! to [`serve`].

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::fastcgi::{
    self as codec, CodecError, Decoder, Limits, MANAGEMENT_ID, ProtocolStatus, ROLE_RESPONDER,
    Record, RecordType,
};
use crate::request::Request;
use crate::response::Response;

/// How often blocked threads look at the shutdown flag.
const TICK: Duration = Duration::from_millis(200);
/// How long `serve` keeps queuing waiting connections after shutdown is requested, and
/// then how long it waits for the workers to finish them.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// Pause after a failed `accept()` (EMFILE and the like), so the loop does not spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// How long a refused request's leftover input is read and dropped before closing.
const LINGER: Duration = Duration::from_secs(2);

/// What answers each request; a panic in it becomes a 500 for that request only.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// A listening socket, unix or TCP.
#[derive(Debug)]
pub enum Listener {
    /// `created` is the socket file [`bind`] made, which the listener owns: [`serve`]
    /// removes it when shutdown begins, dropping the listener at the latest. `None` for
    /// an inherited socket, whose file belongs to whoever made it.
    Unix {
        listener: UnixListener,
        created: Option<PathBuf>,
    },
    Tcp(TcpListener),
}

/// Binds `unix:/path.sock` (a stale socket file there is removed first, the new one gets
/// `socket_mode`, e.g. 0o660) or `HOST:PORT`.
pub fn bind(spec: &str, socket_mode: u32) -> io::Result<Listener> {
    let Some(path) = spec.strip_prefix("unix:") else {
        return TcpListener::bind(spec).map(Listener::Tcp);
    };
    let path = Path::new(path);
    remove_stale_socket(path)?;
    let listener = Listener::Unix {
        listener: UnixListener::bind(path)?,
        created: Some(path.to_path_buf()),
    };
    // On error the listener is dropped, which removes the file again.
    fs::set_permissions(path, fs::Permissions::from_mode(socket_mode))?;
    Ok(listener)
}

/// Removes a socket file nobody listens on; refuses to touch anything else.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
        Ok(meta) if !meta.file_type().is_socket() => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        )),
        Ok(_) if UnixStream::connect(path).is_ok() => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("another process is listening on {}", path.display()),
        )),
        Ok(_) => fs::remove_file(path),
    }
}

/// The listening socket on fd 0, as spawn-fcgi, mod_fcgid and systemd's
/// `StandardInput=socket` pass it; `None` when fd 0 is anything else.
///
/// Takes ownership of fd 0, so only the first call can return a listener.
pub fn listener_from_fd0() -> Option<Listener> {
    static TAKEN: AtomicBool = AtomicBool::new(false);
    if !is_listening_socket(0) || TAKEN.swap(true, Ordering::SeqCst) {
        return None;
    }
    // SAFETY: fd 0 is a listening socket, and TAKEN makes this its only owner (stdin is
    // never read in FastCGI mode).
    unsafe { listener_from_fd(0) }
}

fn is_listening_socket(fd: RawFd) -> bool {
    let mut accepting: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the pointers are to locals of the sizes passed.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&raw mut accepting).cast(),
            &mut len,
        )
    };
    rc == 0 && accepting != 0
}

/// Wraps a listening socket's fd by its address family.
///
/// # Safety
/// `fd` must be a listening socket that nothing else owns; on `Some` the listener owns it.
unsafe fn listener_from_fd(fd: RawFd) -> Option<Listener> {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: the pointers are to locals of the sizes passed.
    let rc = unsafe { libc::getsockname(fd, (&raw mut addr).cast(), &mut len) };
    if rc != 0 {
        return None;
    }
    // SAFETY (both arms): the caller hands over sole ownership of a listening socket.
    match libc::c_int::from(addr.ss_family) {
        libc::AF_UNIX => Some(Listener::Unix {
            listener: unsafe { UnixListener::from_raw_fd(fd) },
            created: None,
        }),
        libc::AF_INET | libc::AF_INET6 => {
            Some(Listener::Tcp(unsafe { TcpListener::from_raw_fd(fd) }))
        }
        _ => None,
    }
}

impl Listener {
    fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Unix { listener, .. } => listener.accept().map(|(s, _)| Stream::Unix(s)),
            Listener::Tcp(listener) => listener.accept().map(|(s, _)| Stream::Tcp(s)),
        }
    }

    fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Listener::Unix { listener, .. } => listener.set_nonblocking(true),
            Listener::Tcp(listener) => listener.set_nonblocking(true),
        }
    }

    fn raw_fd(&self) -> RawFd {
        match self {
            Listener::Unix { listener, .. } => listener.as_raw_fd(),
            Listener::Tcp(listener) => listener.as_raw_fd(),
        }
    }

    /// Removes the socket file [`bind`] created, at most once: a second removal could
    /// delete the socket a new instance has bound at the same path since.
    fn unlink(&mut self) {
        let Listener::Unix { created, .. } = self else {
            return;
        };
        let Some(path) = created.take() else {
            return;
        };
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => eprintln!(
                "tokenusage: fastcgi: cannot remove {}: {err}",
                path.display()
            ),
        }
    }
}

impl Drop for Listener {
    /// A start that fails after `bind` leaves no socket file behind.
    fn drop(&mut self) {
        self.unlink();
    }
}

/// How the server runs; see each field's default.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Worker threads, hence concurrent connections (default 16).
    pub workers: usize,
    /// Longest wait for the next bytes from a connection, idle keep-alive included
    /// (default 30 s).
    pub read_timeout: Duration,
    /// Longest a write to a connection may block (default 30 s).
    pub write_timeout: Duration,
    /// Per-request size limits (default 1 MiB params, 1000 params, 1 MiB body).
    pub limits: Limits,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            workers: 16,
            read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            limits: Limits::default(),
        }
    }
}

/// Serves FastCGI requests on `listener` until `shutdown` becomes true, then removes the
/// socket file [`bind`] made, queues the connections already waiting (for up to 10 s) and
/// lets the workers finish them (for up to 10 s more).
///
/// Connections are handed to `options.workers` threads over a bounded queue; while all
/// are busy, new connections wait in the kernel's backlog. Errors from one connection or
/// one `accept()` are logged and never end the server; the error returned is from setup.
pub fn serve(
    mut listener: Listener,
    options: &ServerOptions,
    handler: Handler,
    shutdown: Arc<AtomicBool>,
) -> io::Result<()> {
    // Non-blocking, so a connection that vanishes between poll and accept cannot block
    // the accept loop, and draining the backlog ends when it is empty.
    listener.set_nonblocking()?;
    let workers = options.workers.max(1);
    let shared = Arc::new(Shared {
        options: ServerOptions {
            workers,
            ..options.clone()
        },
        handler,
        shutdown,
    });
    let (sender, receiver) = mpsc::sync_channel::<Stream>(workers);
    let receiver = Arc::new(Mutex::new(receiver));
    let mut threads = Vec::with_capacity(workers);
    for i in 0..workers {
        let (receiver, shared) = (Arc::clone(&receiver), Arc::clone(&shared));
        let spawned = thread::Builder::new()
            .name(format!("fastcgi-{i}"))
            .spawn(move || work(&receiver, &shared));
        match spawned {
            Ok(thread) => threads.push(thread),
            Err(err) => {
                drop(sender);
                finish(listener, threads);
                return Err(err);
            }
        }
    }
    let accepted = accept_loop(&listener, &sender, &shared.shutdown);
    // Stop new arrivals, then serve the connections already accepted or waiting in the
    // backlog: dropping them would make the web server answer 502.
    listener.unlink();
    let drain_deadline = Instant::now() + DRAIN_DEADLINE;
    let result = accepted.map(|latest| drain_backlog(latest, &listener, &sender, drain_deadline));
    drop(sender);
    finish(listener, threads);
    result
}

/// Queues `latest` (accepted as shutdown came), then the connections waiting in the
/// kernel's backlog, until the backlog is empty or `deadline` passes.
fn drain_backlog(
    latest: Option<Stream>,
    listener: &Listener,
    sender: &SyncSender<Stream>,
    deadline: Instant,
) {
    let backlog = std::iter::from_fn(|| listener.accept().ok());
    for stream in latest.into_iter().chain(backlog) {
        if !queue_before(deadline, stream, sender) {
            return;
        }
    }
}

/// Queues a connection once a worker is free; false when `deadline` passed first or the
/// workers are gone (the connection is then dropped).
fn queue_before(deadline: Instant, stream: Stream, sender: &SyncSender<Stream>) -> bool {
    let mut stream = stream;
    loop {
        match sender.try_send(stream) {
            Ok(()) => return true,
            Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                stream = back;
                thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return false,
        }
    }
}

/// What every worker needs.
struct Shared {
    options: ServerOptions,
    handler: Handler,
    shutdown: Arc<AtomicBool>,
}

/// Accepts connections and queues them for the workers until shutdown is requested;
/// returns the connection accepted as it came, if any, for the drain to queue.
fn accept_loop(
    listener: &Listener,
    sender: &SyncSender<Stream>,
    shutdown: &AtomicBool,
) -> io::Result<Option<Stream>> {
    while !shutdown.load(Ordering::SeqCst) {
        match wait_readable(listener.raw_fd(), TICK) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(err) => {
                eprintln!("tokenusage: fastcgi: poll failed: {err}");
                thread::sleep(ACCEPT_RETRY);
                continue;
            }
        }
        // Take every connection waiting, not one per poll: under load that saves a
        // poll() per request.
        while !shutdown.load(Ordering::SeqCst) {
            match listener.accept() {
                // Queued by the drain, within its deadline: the send below has none.
                Ok(stream) if shutdown.load(Ordering::SeqCst) => return Ok(Some(stream)),
                // Wait for a free worker: a worker notices shutdown within a tick, so this
                // cannot outlast it; sleeping between tries instead added 5 ms per queued
                // request.
                Ok(stream) => sender
                    .send(stream)
                    .map_err(|_| io::Error::other("all FastCGI workers have stopped"))?,
                Err(err) if is_transient(&err) => break,
                Err(err) => {
                    eprintln!("tokenusage: fastcgi: accept failed, retrying: {err}");
                    thread::sleep(ACCEPT_RETRY);
                    break;
                }
            }
        }
    }
    Ok(None)
}

/// Waits until `fd` is readable or `timeout` passes; true when readable.
fn wait_readable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd, count 1.
    let rc = unsafe { libc::poll(&mut pollfd, 1, millis) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(err)
        };
    }
    Ok(rc > 0)
}

fn is_transient(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// Closes the listener and waits for the workers (bounded).
fn finish(listener: Listener, threads: Vec<JoinHandle<()>>) {
    drop(listener);
    let deadline = Instant::now() + DRAIN_DEADLINE;
    for thread in threads {
        while !thread.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        if thread.is_finished() {
            let _ = thread.join();
        }
    }
    if Instant::now() >= deadline {
        eprintln!("tokenusage: fastcgi: stopped with requests still in flight");
    }
}

/// A worker: serves queued connections until the queue is closed.
fn work(receiver: &Mutex<Receiver<Stream>>, shared: &Shared) {
    loop {
        let next = receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv();
        let Ok(stream) = next else { return };
        // The handler's panics are caught per request; this guard keeps a bug elsewhere
        // from shrinking the pool.
        if panic::catch_unwind(AssertUnwindSafe(|| serve_connection(stream, shared))).is_err() {
            eprintln!("tokenusage: fastcgi: connection handler panicked");
        }
    }
}

fn serve_connection(stream: Stream, shared: &Shared) {
    if let Err(err) = stream.configure(shared.options.write_timeout) {
        eprintln!("tokenusage: fastcgi: cannot set up connection: {err}");
        return;
    }
    let mut conn = Connection {
        stream,
        decoder: Decoder::new(),
        active: None,
        shared,
        opened: Instant::now(),
        served: false,
    };
    match conn.run() {
        Ok(()) => {}
        Err(ConnError::Codec(err)) => {
            eprintln!("tokenusage: fastcgi: closing connection: {err}");
            conn.refuse_active(&err);
        }
        Err(ConnError::Io(err)) if is_disconnect(&err) => {}
        Err(ConnError::Io(err)) => eprintln!("tokenusage: fastcgi: connection error: {err}"),
    }
}

/// A peer going away is normal for a keep-alive protocol, not worth a log line.
fn is_disconnect(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

enum ConnError {
    Io(io::Error),
    Codec(CodecError),
}

impl From<io::Error> for ConnError {
    fn from(err: io::Error) -> Self {
        ConnError::Io(err)
    }
}

impl From<CodecError> for ConnError {
    fn from(err: CodecError) -> Self {
        ConnError::Codec(err)
    }
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// The request being received on a connection (FastCGI allows one at a time here).
struct Active {
    id: u16,
    keep_conn: bool,
    params: Vec<u8>,
    body: Vec<u8>,
}

struct Connection<'a> {
    stream: Stream,
    decoder: Decoder,
    active: Option<Active>,
    shared: &'a Shared,
    /// When the connection was taken up: a new one gets a moment to send its first
    /// request even during shutdown.
    opened: Instant,
    /// True once a request was answered: only then is "between requests" idle.
    served: bool,
}

/// How long a connection accepted just before shutdown may take to send its request.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(2);

impl Connection<'_> {
    fn run(&mut self) -> Result<(), ConnError> {
        loop {
            while let Some(record) = self.decoder.next_record()? {
                if self.handle(record)? == Flow::Close {
                    return Ok(());
                }
            }
            if !self.fill()? {
                return Ok(());
            }
        }
    }

    /// Reads more bytes into the decoder; false when the peer closed, or when shutdown
    /// was requested while the connection sits between requests.
    fn fill(&mut self) -> Result<bool, ConnError> {
        let mut chunk = [0u8; 16 * 1024];
        let started = Instant::now();
        loop {
            let between_requests = self.active.is_none() && self.decoder.is_empty();
            let idle =
                between_requests && (self.served || self.opened.elapsed() >= FIRST_REQUEST_GRACE);
            if idle && self.shared.shutdown.load(Ordering::SeqCst) {
                return Ok(false);
            }
            // The socket's read timeout is one TICK, so the shutdown flag is seen while
            // waiting; the real read timeout is counted here.
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.decoder.feed(&chunk[..n]);
                    return Ok(true);
                }
                Err(err) if is_transient(&err) || err.kind() == io::ErrorKind::TimedOut => {
                    if started.elapsed() >= self.shared.options.read_timeout {
                        return Err(
                            io::Error::new(io::ErrorKind::TimedOut, "read timed out").into()
                        );
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    fn handle(&mut self, record: Record) -> Result<Flow, ConnError> {
        let id = record.request_id;
        if id == MANAGEMENT_ID {
            return self.handle_management(record);
        }
        match record.kind {
            RecordType::BeginRequest => self.begin(id, &record.content),
            RecordType::AbortRequest => self.abort(id),
            RecordType::Params => self.params(id, &record.content),
            RecordType::Stdin => self.stdin(id, &record.content),
            // DATA belongs to the FILTER role, which is refused at BEGIN_REQUEST.
            RecordType::Data => Ok(Flow::Continue),
            other => {
                let mut out = Vec::new();
                codec::encode_unknown_type(&mut out, other);
                self.send(&out)
            }
        }
    }

    fn handle_management(&mut self, record: Record) -> Result<Flow, ConnError> {
        let mut out = Vec::new();
        if record.kind == RecordType::GetValues {
            let names = codec::decode_params(&record.content, &self.shared.options.limits)?;
            let workers = self.shared.options.workers.to_string();
            let known: [(&[u8], &[u8]); 3] = [
                (b"FCGI_MAX_CONNS", workers.as_bytes()),
                (b"FCGI_MAX_REQS", workers.as_bytes()),
                (b"FCGI_MPXS_CONNS", b"0"),
            ];
            let answers: Vec<(&[u8], &[u8])> = known
                .into_iter()
                .filter(|(name, _)| names.iter().any(|(asked, _)| asked == name))
                .collect();
            codec::encode_get_values_result(&mut out, &answers);
        } else {
            codec::encode_unknown_type(&mut out, record.kind);
        }
        self.send(&out)
    }

    fn begin(&mut self, id: u16, content: &[u8]) -> Result<Flow, ConnError> {
        let begin = codec::decode_begin_request(content)?;
        let refusal = match &self.active {
            // A repeated BEGIN_REQUEST for the request in progress is ignored.
            Some(active) if active.id == id => return Ok(Flow::Continue),
            Some(_) => ProtocolStatus::CantMpxConn,
            None if begin.role != ROLE_RESPONDER => ProtocolStatus::UnknownRole,
            None => {
                self.active = Some(Active {
                    id,
                    keep_conn: begin.keep_conn,
                    params: Vec::new(),
                    body: Vec::new(),
                });
                return Ok(Flow::Continue);
            }
        };
        let mut out = Vec::new();
        codec::encode_end_request(&mut out, id, 0, refusal);
        self.send(&out)?;
        let closes = refusal == ProtocolStatus::UnknownRole && !begin.keep_conn;
        Ok(if closes { Flow::Close } else { Flow::Continue })
    }

    fn abort(&mut self, id: u16) -> Result<Flow, ConnError> {
        let Some(active) = self.active.take_if(|active| active.id == id) else {
            return Ok(Flow::Continue);
        };
        let mut out = Vec::new();
        codec::encode_end_request(&mut out, id, 0, ProtocolStatus::RequestComplete);
        self.send(&out)?;
        Ok(if active.keep_conn {
            Flow::Continue
        } else {
            Flow::Close
        })
    }

    fn params(&mut self, id: u16, content: &[u8]) -> Result<Flow, ConnError> {
        let limit = self.shared.options.limits.max_params_bytes;
        if let Some(active) = self.active.as_mut().filter(|active| active.id == id) {
            if active.params.len() + content.len() > limit {
                return Err(CodecError::ParamsTooLarge { limit }.into());
            }
            active.params.extend_from_slice(content);
        }
        Ok(Flow::Continue)
    }

    fn stdin(&mut self, id: u16, content: &[u8]) -> Result<Flow, ConnError> {
        let limits = self.shared.options.limits;
        let Some(active) = self.active.as_mut().filter(|active| active.id == id) else {
            return Ok(Flow::Continue);
        };
        if !content.is_empty() {
            if active.body.len() + content.len() > limits.max_stdin_bytes {
                let limit = limits.max_stdin_bytes;
                return Err(CodecError::BodyTooLarge { limit }.into());
            }
            active.body.extend_from_slice(content);
            return Ok(Flow::Continue);
        }
        // The empty STDIN record ends the request: answer it.
        let params = codec::decode_params(&active.params, &limits)?;
        let request = Request {
            params,
            body: std::mem::take(&mut active.body),
        };
        let (id, keep_conn) = (active.id, active.keep_conn);
        self.active = None;
        let response = super::handle_or_500("fastcgi", &*self.shared.handler, &request);
        self.send_response(id, &response)?;
        self.served = true;
        Ok(if keep_conn {
            Flow::Continue
        } else {
            Flow::Close
        })
    }

    /// Writes the response as STDOUT records, the empty STDOUT, then END_REQUEST.
    fn send_response(&mut self, id: u16, response: &Response) -> io::Result<()> {
        let mut records = StdoutRecords::new(&mut self.stream, id);
        response.write_cgi(&mut records)?;
        records.finish()
    }

    fn send(&mut self, bytes: &[u8]) -> Result<Flow, ConnError> {
        self.stream.write_all(bytes)?;
        Ok(Flow::Continue)
    }

    /// After malformed or oversized input: answers the request in progress, if any, with
    /// an error page and END_REQUEST, then lingers so the peer can read it.
    fn refuse_active(&mut self, err: &CodecError) {
        let Some(active) = self.active.take() else {
            return;
        };
        let response = Response::status_page(if err.is_limit() { 413 } else { 400 });
        if self.send_response(active.id, &response).is_ok() {
            self.linger();
        }
    }

    /// Closing a socket with unread input makes the kernel reset the connection, which
    /// can destroy the answer the peer has not read yet; so half-close, then read and
    /// drop what still comes, for a short while.
    fn linger(&mut self) {
        let _ = self.stream.shutdown_write();
        let deadline = Instant::now() + LINGER;
        let mut sink = [0u8; 16 * 1024];
        while Instant::now() < deadline {
            match self.stream.read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(err) if is_transient(&err) || err.kind() == io::ErrorKind::TimedOut => {}
                Err(_) => return,
            }
        }
    }
}

/// An accepted connection.
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    /// Blocking I/O with a one-TICK read timeout (see [`Connection::fill`]) and the
    /// configured write timeout (zero means none).
    fn configure(&self, write_timeout: Duration) -> io::Result<()> {
        let write_timeout = Some(write_timeout).filter(|t| !t.is_zero());
        match self {
            Stream::Unix(s) => {
                s.set_nonblocking(false)?;
                s.set_read_timeout(Some(TICK))?;
                s.set_write_timeout(write_timeout)
            }
            Stream::Tcp(s) => {
                s.set_nonblocking(false)?;
                s.set_read_timeout(Some(TICK))?;
                s.set_write_timeout(write_timeout)
            }
        }
    }

    fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

/// Writes a response as STDOUT records while it is produced, holding at most one
/// record's content: a 1.5 MB CSV is not copied whole, twice, per request in flight.
struct StdoutRecords<'a, W: Write> {
    out: &'a mut W,
    id: u16,
    /// The record being filled: room for its header, then its content; the data is
    /// copied once, into here, and the header written in front when it is sent.
    record: Vec<u8>,
}

impl<'a, W: Write> StdoutRecords<'a, W> {
    fn new(out: &'a mut W, id: u16) -> Self {
        let mut record = Vec::with_capacity(codec::HEADER_LEN + codec::MAX_CONTENT_LEN + 8);
        record.resize(codec::HEADER_LEN, 0);
        StdoutRecords { out, id, record }
    }

    fn content_len(&self) -> usize {
        self.record.len() - codec::HEADER_LEN
    }

    fn send_record(&mut self) -> io::Result<()> {
        let len = self.content_len();
        let header = codec::record_header(RecordType::Stdout, self.id, len);
        self.record[..codec::HEADER_LEN].copy_from_slice(&header);
        self.record
            .resize(self.record.len() + codec::padding(len), 0);
        self.out.write_all(&self.record)?;
        self.record.truncate(codec::HEADER_LEN);
        Ok(())
    }

    /// Sends what is left, the empty STDOUT that ends the stream, and END_REQUEST.
    fn finish(mut self) -> io::Result<()> {
        if self.content_len() > 0 {
            self.send_record()?;
        }
        self.record.clear();
        codec::encode_stream(&mut self.record, RecordType::Stdout, self.id, &[]);
        codec::encode_end_request(
            &mut self.record,
            self.id,
            0,
            ProtocolStatus::RequestComplete,
        );
        self.out.write_all(&self.record)?;
        self.out.flush()
    }
}

impl<W: Write> Write for StdoutRecords<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = codec::MAX_CONTENT_LEN - self.content_len();
        let taken = room.min(data.len());
        self.record.extend_from_slice(&data[..taken]);
        if self.content_len() == codec::MAX_CONTENT_LEN {
            self.send_record()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::IntoRawFd;

    #[test]
    fn a_listening_tcp_fd_becomes_a_tcp_listener() {
        let fd = TcpListener::bind("127.0.0.1:0").unwrap().into_raw_fd();
        assert!(is_listening_socket(fd));
        // SAFETY: the fd was just released by its listener.
        let listener = unsafe { listener_from_fd(fd) };
        assert!(matches!(listener, Some(Listener::Tcp(_))));
    }

    #[test]
    fn a_listening_unix_fd_becomes_a_unix_listener_that_owns_no_file() {
        let path = std::env::temp_dir().join(format!("tu-fd-{}.sock", std::process::id()));
        let _ = fs::remove_file(&path);
        let fd = UnixListener::bind(&path).unwrap().into_raw_fd();
        // SAFETY: the fd was just released by its listener.
        let listener = unsafe { listener_from_fd(fd) };
        assert!(matches!(
            listener,
            Some(Listener::Unix { created: None, .. })
        ));
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_connected_socket_or_a_file_is_not_a_listener() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert!(!is_listening_socket(a.as_raw_fd()));
        let file = fs::File::open("/dev/null").unwrap();
        assert!(!is_listening_socket(file.as_raw_fd()));
    }
}
