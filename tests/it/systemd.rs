//! Started by systemd: socket activation (the socket on fd 3, LISTEN_FDS and LISTEN_PID),
//! readiness notification (NOTIFY_SOCKET), restarts that lose no request while the socket
//! is held, and the socket options of a unit that lets the binary bind (owner, group,
//! allowed TCP clients). The test plays systemd: it binds and holds the socket.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::*;

/// The socket a test holds as systemd would, and the folder of its file and logs.
struct HeldSocket {
    listener: UnixListener,
    path: PathBuf,
    dir: TempDir,
}

impl HeldSocket {
    fn new(name: &str) -> Self {
        let dir = TempDir::new(name);
        let path = dir.0.join("tokenusage.sock");
        let listener = UnixListener::bind(&path).unwrap();
        HeldSocket {
            listener,
            path,
            dir,
        }
    }

    /// The binary with `args`, the held socket as fd 3 and `LISTEN_FDS=1`, `LISTEN_PID`
    /// its own pid, `--auth none` from the environment; `vars` added. Its stderr goes to
    /// `stderr-<n>.log` in the folder.
    fn activate(&self, n: usize, args: &[&str], vars: &[(&str, &str)]) -> Child {
        let fd = self.listener.as_raw_fd();
        let log = fs::File::create(self.dir.0.join(format!("stderr-{n}.log"))).unwrap();
        let mut environment = vec![
            ("GATEWAY_INTERFACE", None),
            ("NOTIFY_SOCKET", None),
            ("TOKENUSAGE_LISTEN", None),
            ("TOKENUSAGE_AUTH", Some("none")),
            ("LISTEN_FDS", Some("1")),
        ];
        environment.extend(vars.iter().map(|(name, value)| (*name, Some(*value))));
        let mut command = Command::new(BIN);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        with_pid_in_environment(&mut command, fd, &environment);
        command.spawn().unwrap()
    }

    fn stderr(&self, n: usize) -> String {
        fs::read_to_string(self.dir.0.join(format!("stderr-{n}.log"))).unwrap_or_default()
    }
}

/// Passes `fd` as fd 3 and sets the variables (`None`: unset) and LISTEN_PID to the
/// child's pid, as systemd does. Why in `pre_exec`: the pid is known only after the fork,
/// and a `Command` given any variable execs with its own copy of the environment, so
/// every variable is set here, in the child's own environment.
fn with_pid_in_environment(command: &mut Command, fd: RawFd, vars: &[(&str, Option<&str>)]) {
    let vars: Vec<(CString, Option<CString>)> = vars
        .iter()
        .map(|(name, value)| {
            let value = value.map(|value| CString::new(value).unwrap());
            (CString::new(*name).unwrap(), value)
        })
        .collect();
    // SAFETY: between fork and exec only dup2, fcntl, getpid, setenv and unsetenv of
    // strings made before the fork (glibc's malloc, which setenv uses, works after fork).
    unsafe {
        command.pre_exec(move || {
            pass_as_fd_3(fd)?;
            for (name, value) in &vars {
                let rc = match value {
                    Some(value) => libc::setenv(name.as_ptr(), value.as_ptr(), 1),
                    None => libc::unsetenv(name.as_ptr()),
                };
                if rc != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            let pid = decimal(libc::getpid() as u32);
            if libc::setenv(c"LISTEN_PID".as_ptr(), pid.as_ptr().cast(), 1) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Puts `fd` on fd 3 without close-on-exec, as systemd passes it.
fn pass_as_fd_3(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: descriptor calls only.
    let rc = unsafe {
        if fd == 3 {
            libc::fcntl(3, libc::F_SETFD, 0)
        } else {
            libc::dup2(fd, 3)
        }
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `n` in decimal, NUL-terminated, without allocating.
fn decimal(mut n: u32) -> [u8; 12] {
    let mut digits = [0u8; 12];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut out = [0u8; 12];
    for i in 0..len {
        out[i] = digits[len - 1 - i];
    }
    out
}

/// SIGTERM, then the exit status (within 20 s).
fn terminate(child: &mut Child) -> ExitStatus {
    // SAFETY: a signal to our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no exit within 20 s of SIGTERM");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// One GET of the page at `query` over a new connection to `socket`.
fn get(socket: &Path, install: &Install, query: &str) -> std::io::Result<CgiResponse> {
    let mut stream = connect(socket, Duration::from_secs(30))?;
    try_fastcgi_request(&mut stream, &page_params(install, query))
}

#[test]
fn with_listen_fds_it_serves_the_page_and_the_csv_on_fd_3_with_no_arguments_or_fcgi() {
    let api = sample_api(10);
    let install = Install::new("activated", &api.url());
    let socket = HeldSocket::new("activated");
    for (n, args) in [&[][..], &["fcgi"]].into_iter().enumerate() {
        let mut child = socket.activate(n, args, &[]);
        let page = get(&socket.path, &install, "").unwrap();
        assert_eq!(page.status, 200, "{args:?}: {}", socket.stderr(n));
        assert!(page.text().contains("of 10 transactions"), "{args:?}");
        let csv = get(&socket.path, &install, "action=download").unwrap();
        assert_eq!(csv.status, 200, "{args:?}");
        assert!(
            csv.header("content-type")
                .is_some_and(|t| t.starts_with("text/csv")),
            "{args:?}: {:?}",
            csv.headers
        );
        assert_eq!(csv.text().lines().count(), 11, "a header and 10 rows");
        let status = terminate(&mut child);
        assert!(
            status.success(),
            "{args:?}: {status:?}: {}",
            socket.stderr(n)
        );
        assert!(
            socket.path.exists(),
            "the socket file is systemd's to remove"
        );
    }
}

#[test]
fn listen_fds_for_another_process_is_ignored() {
    let socket = HeldSocket::new("other-pid");
    let fd = socket.listener.as_raw_fd();
    let mut command = Command::new(BIN);
    command
        .env_remove("GATEWAY_INTERFACE")
        .env("TOKENUSAGE_AUTH", "none")
        .env("LISTEN_FDS", "1")
        .env("LISTEN_PID", "1")
        .stdin(Stdio::null());
    // SAFETY: only dup2 or fcntl between fork and exec.
    unsafe {
        command.pre_exec(move || pass_as_fd_3(fd));
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no FastCGI socket on fd 0"), "{stderr}");
}

#[test]
fn a_passed_fd_3_that_is_not_a_listening_socket_is_refused() {
    let socket = HeldSocket::new("not-listening");
    let file = fs::File::open("/dev/null").unwrap();
    let fd = file.as_raw_fd();
    let mut command = Command::new(BIN);
    command.stdin(Stdio::null());
    let vars = [
        ("GATEWAY_INTERFACE", None),
        ("TOKENUSAGE_AUTH", Some("none")),
        ("LISTEN_FDS", Some("1")),
    ];
    with_pid_in_environment(&mut command, fd, &vars);
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("LISTEN_FDS") && stderr.contains("not a listening"),
        "{stderr}"
    );
    drop(socket);
}

#[test]
fn with_gateway_interface_set_listen_fds_is_ignored_and_the_cgi_request_answered() {
    let api = sample_api(10);
    let install = Install::new("cgi-listen-fds", &api.url());
    let socket = HeldSocket::new("cgi-listen-fds");
    let params = page_params(&install, "");
    let mut vars: Vec<(&str, Option<&str>)> = params
        .iter()
        .map(|(name, value)| (*name, Some(value.as_str())))
        .collect();
    vars.extend([("TOKENUSAGE_AUTH", Some("none")), ("LISTEN_FDS", Some("1"))]);
    let mut command = Command::new(BIN);
    command.stdin(Stdio::null());
    with_pid_in_environment(&mut command, socket.listener.as_raw_fd(), &vars);
    let output = command.output().unwrap();
    let page = CgiResponse::parse(&output.stdout);
    assert_eq!(
        page.status,
        200,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(page.text().contains("of 10 transactions"));
}

/// The next datagram on `notify`, within 20 s.
fn next_notice(notify: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let len = notify.recv(&mut buf).expect("a notice within 20 s");
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

#[test]
fn it_tells_systemd_when_it_is_ready_and_when_it_stops() {
    let api = sample_api(10);
    let install = Install::new("notify", &api.url());
    let socket = HeldSocket::new("notify");
    let notify_path = socket.dir.0.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let notify_var = notify_path.display().to_string();
    let mut child = socket.activate(0, &[], &[("NOTIFY_SOCKET", &notify_var)]);
    let ready = next_notice(&notify);
    assert!(
        ready.lines().any(|line| line == "READY=1"),
        "{ready:?}: {}",
        socket.stderr(0)
    );
    assert_eq!(get(&socket.path, &install, "").unwrap().status, 200);
    // SAFETY: a signal to our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let stopping = next_notice(&notify);
    assert!(
        stopping.lines().any(|line| line == "STOPPING=1"),
        "{stopping:?}"
    );
    assert!(terminate(&mut child).success());
}

#[test]
fn a_restart_under_socket_activation_loses_no_request() {
    const CLIENTS: usize = 3;
    const REQUESTS: usize = 80;
    let api = sample_api(10);
    let install = Arc::new(Install::new("restart", &api.url()));
    let socket = HeldSocket::new("restart");
    let mut child = socket.activate(0, &[], &[]);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (install, path) = (Arc::clone(&install), socket.path.clone());
            thread::spawn(move || {
                let mut statuses = Vec::new();
                for _ in 0..REQUESTS {
                    let answer = get(&path, &install, "page=1").map(|page| page.status);
                    statuses.push(answer.map_err(|err| err.to_string()));
                    thread::sleep(Duration::from_millis(50));
                }
                statuses
            })
        })
        .collect();
    for n in 1..=2 {
        thread::sleep(Duration::from_millis(1200));
        let status = terminate(&mut child);
        assert!(status.success(), "{status:?}: {}", socket.stderr(n - 1));
        child = socket.activate(n, &[], &[]);
    }
    let answers: Vec<_> = clients
        .into_iter()
        .flat_map(|client| client.join().unwrap())
        .collect();
    assert!(terminate(&mut child).success());
    assert_eq!(answers.len(), CLIENTS * REQUESTS);
    let lost: Vec<_> = answers.iter().filter(|a| **a != Ok(200)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} requests not answered 200: {lost:?}\n{}\n{}",
        lost.len(),
        answers.len(),
        socket.stderr(0),
        socket.stderr(1)
    );
}

#[test]
fn a_unix_socket_it_binds_gets_the_group_given() {
    let dir = TempDir::new("socket-group");
    let path = dir.0.join("tokenusage.sock");
    let listen = format!("unix:{}", path.display());
    // As root (CI) any group; otherwise one of ours.
    let gid = if unsafe { libc::geteuid() } == 0 {
        65534
    } else {
        unsafe { libc::getegid() }
    };
    let mut child = Command::new(BIN)
        .args([
            "fcgi",
            "--listen",
            &listen,
            "--auth",
            "none",
            "--socket-mode",
        ])
        .arg("0640")
        .env("TOKENUSAGE_SOCKET_GROUP", gid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&path).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        thread::sleep(Duration::from_millis(20));
    }
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.gid(), gid);
    assert_eq!(meta.mode() & 0o777, 0o640);
    assert!(terminate(&mut child).success());
}

#[test]
fn an_unknown_socket_owner_or_group_is_refused_by_name() {
    let dir = TempDir::new("socket-owner");
    let path = dir.0.join("tokenusage.sock");
    let listen = format!("unix:{}", path.display());
    for (option, expected) in [
        ("--socket-owner", "no user named \"no-such-user-x\""),
        ("--socket-group", "no group named \"no-such-user-x\""),
    ] {
        let output = Command::new(BIN)
            .args(["fcgi", "--listen", &listen, "--auth", "none"])
            .args([option, "no-such-user-x"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!path.exists(), "nothing bound");
    }
}

#[test]
fn a_tcp_client_not_allowed_is_closed_at_accept_with_a_log_line() {
    let api = sample_api(10);
    let install = Install::new("allow-clients", &api.url());
    let address = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(BIN)
        .args(["fcgi", "--listen", &address, "--auth", "none"])
        .args(["--allow-clients", "192.0.2.1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        if let Ok(stream) = std::net::TcpStream::connect(&address) {
            break stream;
        }
        assert!(Instant::now() < deadline, "server did not start");
        thread::sleep(Duration::from_millis(20));
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(try_fastcgi_request(&mut stream, &page_params(&install, "")).is_err());
    assert!(terminate(&mut child).success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("connection from 127.0.0.1 closed: not in --allow-clients"),
        "{stderr}"
    );
}
