//! The FastCGI 1.0 responder: binds or inherits a listening socket; one poll loop thread
//! accepts connections, reads request heads and keeps idle keep-alive connections, and a
//! fixed pool of worker threads handles complete requests.
//!
//! A connection holds a worker only while its complete request is handled and the
//! response written, so idle, slow or hostile peers cost a descriptor and a few bytes,
//! never a worker (see [`poller`] for the deadlines, the connection cap and the memory
//! budget that bound them).
//!
//! I/O: sockets (unix and TCP), the unix socket file it creates (mode set, removed when
//! shutdown begins or the listener is dropped), and `tokenusage: ` lines on stderr. The
//! wire format lives in [`crate::transport::fastcgi::codec`]; each request is answered by the handler given
//! to [`serve`].

pub mod codec;
mod policy;
mod poller;
mod protocol;
mod worker;

use std::fs;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::transport::fastcgi::codec::{Decoder, Limits};
pub use crate::transport::fastcgi::policy::AllowedClients;
use crate::transport::request::Request;
use crate::transport::response::Response;
use crate::transport::systemd;

/// How often the poll loop looks at the shutdown flag, at least.
const TICK: Duration = Duration::from_millis(200);
/// How long `serve` keeps reading the requests begun after shutdown is requested, and
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
    bind_socket_file(
        spec,
        &SocketFile {
            mode: socket_mode,
            ..SocketFile::default()
        },
    )
}

/// Who may use the unix socket file [`bind_socket_file`] creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketFile {
    /// Permissions, e.g. 0o660.
    pub mode: u32,
    /// The file's owner (a uid); `None` keeps ours.
    pub owner: Option<u32>,
    /// The file's group (a gid); `None` keeps ours.
    pub group: Option<u32>,
}

impl Default for SocketFile {
    fn default() -> Self {
        SocketFile {
            mode: 0o660,
            owner: None,
            group: None,
        }
    }
}

/// Binds like [`bind`]; a unix socket file gets `file`'s owner and group, then its mode.
pub fn bind_socket_file(spec: &str, file: &SocketFile) -> io::Result<Listener> {
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
    if file.owner.is_some() || file.group.is_some() {
        std::os::unix::fs::chown(path, file.owner, file.group).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("cannot give {} its owner or group: {err}", path.display()),
            )
        })?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(file.mode))?;
    Ok(listener)
}

/// The uid of `user`, a user name or a number (`www-data`, `33`).
pub fn user_id(user: &str) -> io::Result<u32> {
    account_id(user, "user", |name| {
        let mut buf = vec![0 as libc::c_char; 16 << 10];
        // SAFETY: all-zero bytes are a valid passwd.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found = std::ptr::null_mut();
        // SAFETY: the pointers are to locals, `buf` of the length passed.
        let rc = unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                &mut entry,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        (rc == 0 && !found.is_null()).then_some(entry.pw_uid)
    })
}

/// The gid of `group`, a group name or a number (`www-data`, `33`).
pub fn group_id(group: &str) -> io::Result<u32> {
    account_id(group, "group", |name| {
        let mut buf = vec![0 as libc::c_char; 64 << 10];
        // SAFETY: all-zero bytes are a valid group.
        let mut entry: libc::group = unsafe { std::mem::zeroed() };
        let mut found = std::ptr::null_mut();
        // SAFETY: the pointers are to locals, `buf` of the length passed.
        let rc = unsafe {
            libc::getgrnam_r(
                name.as_ptr(),
                &mut entry,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        (rc == 0 && !found.is_null()).then_some(entry.gr_gid)
    })
}

/// `text` as a number, else the id `lookup` finds for it as a name; `kind` names it in
/// the error.
fn account_id(
    text: &str,
    kind: &str,
    lookup: impl FnOnce(&std::ffi::CStr) -> Option<u32>,
) -> io::Result<u32> {
    let text = text.trim();
    if let Ok(id) = text.parse::<u32>() {
        return Ok(id);
    }
    let unknown = || io::Error::new(io::ErrorKind::NotFound, format!("no {kind} named {text:?}"));
    let name = std::ffi::CString::new(text).map_err(|_| unknown())?;
    if text.is_empty() {
        return Err(unknown());
    }
    lookup(&name).ok_or_else(unknown)
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
    // SAFETY: stdin is never read in FastCGI mode.
    unsafe { take_inherited(0, &TAKEN) }
}

/// The listening socket systemd passes as fd 3 (`LISTEN_FDS`, see
/// [`crate::transport::systemd`]); `None` when fd 3 is anything else.
///
/// Takes ownership of fd 3, so only the first call can return a listener.
pub(crate) fn listener_from_fd3() -> Option<Listener> {
    static TAKEN: AtomicBool = AtomicBool::new(false);
    // SAFETY: called once LISTEN_FDS said systemd passed fd 3, which nothing else uses.
    unsafe { take_inherited(3, &TAKEN) }
}

/// Wraps the inherited socket `fd` when it is listening and `taken` was false.
///
/// # Safety
/// Nothing but the listener returned may use `fd` (`taken` guards against a second one).
unsafe fn take_inherited(fd: RawFd, taken: &AtomicBool) -> Option<Listener> {
    if !is_listening_socket(fd) || taken.swap(true, Ordering::SeqCst) {
        return None;
    }
    // SAFETY: `fd` is a listening socket, and `taken` makes this its only owner.
    unsafe { listener_from_fd(fd) }
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
    /// A connection and, over TCP, the peer's address.
    fn accept(&self) -> io::Result<(Stream, Option<IpAddr>)> {
        match self {
            Listener::Unix { listener, .. } => {
                listener.accept().map(|(s, _)| (Stream::Unix(s), None))
            }
            Listener::Tcp(listener) => listener
                .accept()
                .map(|(s, peer)| (Stream::Tcp(s), Some(peer.ip()))),
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
    /// Worker threads: requests handled at once (default 16).
    pub workers: usize,
    /// Open connections at most (default 1024, lowered to fit RLIMIT_NOFILE after 32 + 8
    /// per worker descriptors); a new one past it closes the longest-silent idle one.
    pub max_connections: usize,
    /// Longest a request head may take whole, BEGIN_REQUEST through the empty STDIN, from
    /// its first byte (from the accept for a connection's first request; default 10 s).
    pub head_timeout: Duration,
    /// Longest a kept-alive connection may wait for its next request (default 75 s).
    pub idle_timeout: Duration,
    /// Longest writing one response may take, whole (default 30 s; zero: no limit).
    pub write_timeout: Duration,
    /// Bytes of request heads being read and of requests waiting for a worker, all
    /// connections together (default 64 MiB); past it the largest head is closed.
    pub max_buffered_bytes: usize,
    /// Per-request size limits (default 1 MiB params, 1000 params, 1 MiB body).
    pub limits: Limits,
    /// The peers a TCP listener accepts (default loopback only); others are closed at
    /// once, with a log line. Unix sockets are guarded by their file's permissions.
    pub allowed_clients: AllowedClients,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            workers: 16,
            max_connections: 1024,
            head_timeout: Duration::from_secs(10),
            // Longer than nginx's upstream keepalive_timeout (60 s): the web server,
            // which knows when it will reuse a connection, closes it first, and never
            // sends a request on one we are closing.
            idle_timeout: Duration::from_secs(75),
            write_timeout: Duration::from_secs(30),
            max_buffered_bytes: 64 << 20,
            limits: Limits::default(),
            allowed_clients: AllowedClients::default(),
        }
    }
}

/// Serves FastCGI requests on `listener` until `shutdown` becomes true, then removes the
/// socket file [`bind`] made, takes the connections already waiting, reads the requests
/// begun (for up to 10 s) and lets the workers finish them (for up to 10 s more).
///
/// One poll loop thread accepts connections, reads request heads and keeps idle
/// keep-alive connections; `options.workers` threads handle complete requests and write
/// the responses. Errors from one connection or one `accept()` are logged and never end
/// the server; the error returned is from setup.
pub fn serve(
    mut listener: Listener,
    options: &ServerOptions,
    handler: Handler,
    shutdown: Arc<AtomicBool>,
) -> io::Result<()> {
    // Non-blocking, so a connection that vanishes between poll and accept cannot block
    // the loop, and taking the backlog at shutdown ends when it is empty.
    listener.set_nonblocking()?;
    let workers = options.workers.max(1);
    let open_files = open_file_limit();
    let max_connections = policy::connection_cap(options.max_connections, workers, open_files);
    if let Some(limit) = open_files.filter(|_| max_connections < options.max_connections) {
        eprintln!(
            "tokenusage: fastcgi: at most {max_connections} connections: the open-file \
             limit is {limit} (raise it, e.g. LimitNOFILE=, for more)"
        );
    }
    let options = ServerOptions {
        workers,
        max_connections,
        ..options.clone()
    };
    let (wake_worker, wake_loop) = UnixStream::pair()?;
    wake_worker.set_nonblocking(true)?;
    wake_loop.set_nonblocking(true)?;
    let (jobs, queue) = mpsc::channel();
    let (back, returned) = mpsc::channel();
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let pool = worker::Pool::start(
        workers,
        queue,
        worker::Context {
            handler,
            write_timeout: options.write_timeout,
            back,
            wake: wake_worker,
            queued_bytes: Arc::clone(&queued_bytes),
        },
    )?;
    // Why: with `Type=notify`, systemd starts the units ordered after this one (and
    // counts a restart as done) only now that requests can be answered.
    systemd::notify_ready();
    poller::run(
        &mut listener,
        poller::Setup {
            options,
            jobs,
            returned,
            wake: wake_loop,
            queued_bytes,
            shutdown,
        },
    );
    drop(listener);
    if !pool.finish(DRAIN_DEADLINE) {
        eprintln!("tokenusage: fastcgi: stopped with requests still in flight");
    }
    Ok(())
}

/// RLIMIT_NOFILE's soft value; `None` when unlimited or unknown.
fn open_file_limit() -> Option<u64> {
    // SAFETY: all-zero bytes are a valid rlimit.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is to a local of the right type.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Waits until `fd` has one of `events` (POLLIN, POLLOUT) or `timeout` passes; true
/// when it has. An interrupted wait is a wait that saw nothing.
fn wait_for(fd: RawFd, events: libc::c_short, timeout: Duration) -> io::Result<bool> {
    let mut pollfd = libc::pollfd {
        fd,
        events,
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

/// An accepted connection and the bytes read from it not yet taken as records; it moves
/// between the poll loop and a worker.
struct Conn {
    stream: Stream,
    decoder: Decoder,
}

impl Conn {
    fn new(stream: Stream) -> Self {
        Conn {
            stream,
            decoder: Decoder::new(),
        }
    }
}

/// An accepted connection's socket, non-blocking.
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_nonblocking(true),
            Stream::Tcp(s) => s.set_nonblocking(true),
        }
    }

    fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
        }
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tcp(s) => s.as_raw_fd(),
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
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("fd.sock");
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
    fn a_socket_owner_or_group_is_a_number_or_a_name_looked_up() {
        let lookup = |name: &std::ffi::CStr| (name == c"www-data").then_some(33);
        assert_eq!(account_id(" 65534 ", "group", lookup).unwrap(), 65534);
        assert_eq!(account_id("www-data", "group", lookup).unwrap(), 33);
        for unknown in ["nobody-here", "", "a\0b", "-1"] {
            let error = account_id(unknown, "user", lookup).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::NotFound, "{unknown:?}");
            assert!(error.to_string().starts_with("no user named"), "{error}");
        }
        assert_eq!(user_id("root").unwrap(), 0);
        assert_eq!(group_id("root").unwrap(), 0);
    }

    #[test]
    fn a_connected_socket_or_a_file_is_not_a_listener() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert!(!is_listening_socket(a.as_raw_fd()));
        let file = fs::File::open("/dev/null").unwrap();
        assert!(!is_listening_socket(file.as_raw_fd()));
    }
}
