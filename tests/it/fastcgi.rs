//! The FastCGI server on real sockets: `serve` runs in a thread with a small echo handler
//! and is driven by `cgi-fcgi` (Debian's libfcgi-bin) and by hand-written records.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tokenusage::transport::fastcgi::codec::Limits;
use tokenusage::transport::fastcgi::{Listener, ServerOptions, bind, serve};
use tokenusage::transport::request::Request;
use tokenusage::transport::response::Response;

use crate::support::fcgi::{
    ABORT_REQUEST, BEGIN_REQUEST, END_REQUEST, GET_VALUES, GET_VALUES_RESULT, PARAMS, STDIN,
    UNKNOWN_TYPE, begin, exchange, pairs, read_record, read_reply, record, request, stream,
};
use crate::support::{closed_within, connect};

/// Every socket read and write in these tests gives up after this long.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Echoes what a test needs to see; `?panic` panics, `?size=N` answers N bytes.
fn echo(request: &Request) -> Response {
    let query = request.query_string();
    if query == "panic" {
        panic!("the test handler panics on purpose");
    }
    if let Some(size) = query.strip_prefix("size=") {
        return Response::text(200, vec![b'x'; size.parse().unwrap_or(0)]);
    }
    let body = format!(
        "query={query}\nmethod={}\nafter={}\nbad={:?}\nparams={}\nbody={}\n",
        request.param("REQUEST_METHOD"),
        request.param("AFTER"),
        request.param_bytes("BAD"),
        request.params.len(),
        String::from_utf8_lossy(&request.body),
    );
    Response::text(200, body)
}

enum Address {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

struct TestServer {
    address: Address,
    shutdown: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl TestServer {
    fn tcp(options: ServerOptions) -> Self {
        let listener = bind("127.0.0.1:0", 0o660).unwrap();
        let Listener::Tcp(tcp) = &listener else {
            panic!("HOST:PORT gave a unix listener");
        };
        let address = Address::Tcp(tcp.local_addr().unwrap());
        Self::start(listener, address, options)
    }

    fn unix(options: ServerOptions, mode: u32) -> Self {
        let path = unique_socket_path();
        let listener = bind(&format!("unix:{}", path.display()), mode).unwrap();
        Self::start(listener, Address::Unix(path), options)
    }

    fn start(listener: Listener, address: Address, options: ServerOptions) -> Self {
        let shutdown = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&shutdown);
        let thread = thread::spawn(move || serve(listener, &options, Arc::new(echo), flag));
        TestServer {
            address,
            shutdown,
            thread: Some(thread),
        }
    }

    /// What `cgi-fcgi -connect` takes: `host:port` or a socket path.
    fn connect_spec(&self) -> String {
        match &self.address {
            Address::Tcp(addr) => addr.to_string(),
            Address::Unix(path) => path.display().to_string(),
        }
    }

    /// A unix socket connection whose reads give up after `timeout`.
    fn unix_stream(&self, timeout: Duration) -> UnixStream {
        let Address::Unix(path) = &self.address else {
            panic!("not a unix socket server");
        };
        connect(path, timeout).unwrap()
    }

    fn connect(&self) -> Box<dyn Duplex> {
        match &self.address {
            Address::Tcp(addr) => {
                let stream = TcpStream::connect_timeout(addr, TIMEOUT).unwrap();
                stream.set_read_timeout(Some(TIMEOUT)).unwrap();
                stream.set_write_timeout(Some(TIMEOUT)).unwrap();
                Box::new(stream)
            }
            Address::Unix(path) => Box::new(connect(path, TIMEOUT).unwrap()),
        }
    }

    /// Sets the shutdown flag and waits for `serve` to return; gives how long it took.
    fn stop(mut self) -> Duration {
        let started = Instant::now();
        self.shutdown.store(true, Ordering::SeqCst);
        let thread = self.thread.take().unwrap();
        while !thread.is_finished() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "serve did not return"
            );
            thread::sleep(Duration::from_millis(10));
        }
        thread.join().unwrap().unwrap();
        started.elapsed()
    }
}

impl Drop for TestServer {
    /// A failing test still stops its server.
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
    }
}

trait Duplex: Read + Write {}
impl<T: Read + Write> Duplex for T {}

fn unique_socket_path() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!("tu-fcgi-{}-{n}.sock", std::process::id()))
}

fn options() -> ServerOptions {
    ServerOptions::default()
}

fn options_with(limits: Limits) -> ServerOptions {
    ServerOptions {
        limits,
        ..ServerOptions::default()
    }
}

// ---- Hand-written records (the client in support::fcgi) ----

/// A GET as a bare request: REQUEST_METHOD and QUERY_STRING only.
fn get(id: u16, keep_conn: bool, query: &str) -> Vec<u8> {
    let params: [(&[u8], &[u8]); 2] = [
        (b"REQUEST_METHOD", b"GET"),
        (b"QUERY_STRING", query.as_bytes()),
    ];
    request(id, keep_conn, &params, b"")
}

/// True when the server closed the connection (EOF or reset) within the timeout.
fn is_closed(conn: &mut dyn Duplex) -> bool {
    match conn.read(&mut [0u8; 1]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(err) => err.kind() == io::ErrorKind::ConnectionReset,
    }
}

/// A fresh connection still gets a normal answer.
fn assert_serves(server: &TestServer) {
    let mut conn = server.connect();
    let reply = exchange(&mut *conn, &get(1, false, "still=up")).unwrap();
    assert!(reply.text().contains("query=still=up"), "{}", reply.text());
}

/// Runs `cgi-fcgi -bind -connect <spec>` as a web server would for a GET.
fn cgi_fcgi(spec: &str, query: &str) -> String {
    let mut child = Command::new("cgi-fcgi")
        .args(["-bind", "-connect", spec])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("REQUEST_METHOD", "GET")
        .env("SCRIPT_FILENAME", "/srv/ct/admin/tokenusage.php")
        .env("QUERY_STRING", query)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cgi-fcgi (Debian's libfcgi-bin) is installed");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("cgi-fcgi did not finish in 10 s");
        }
        thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "cgi-fcgi failed: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

// ---- An independent client ----

#[test]
fn cgi_fcgi_gets_the_handlers_page_over_tcp() {
    let server = TestServer::tcp(options());
    let page = cgi_fcgi(&server.connect_spec(), "action=show&page=2");
    assert!(page.starts_with("Status: 200 OK\r\n"), "{page}");
    assert!(page.contains("query=action=show&page=2\n"), "{page}");
    assert!(page.contains("method=GET\n"), "{page}");
    server.stop();
}

#[test]
fn cgi_fcgi_gets_the_handlers_page_over_a_unix_socket() {
    let server = TestServer::unix(options(), 0o660);
    let page = cgi_fcgi(&server.connect_spec(), "via=unix");
    assert!(page.starts_with("Status: 200 OK\r\n"), "{page}");
    assert!(page.contains("query=via=unix\n"), "{page}");
    server.stop();
}

// ---- Sockets ----

#[test]
fn a_unix_socket_gets_its_mode_and_is_removed_at_shutdown() {
    let server = TestServer::unix(options(), 0o600);
    let Address::Unix(path) = &server.address else {
        unreachable!()
    };
    let path = path.clone();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    server.stop();
    assert!(!path.exists());
}

#[test]
fn bind_replaces_a_stale_socket_but_not_a_live_one_or_a_regular_file() {
    let path = unique_socket_path();
    let spec = format!("unix:{}", path.display());
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists(), "a dropped listener leaves its file behind");
    let live = bind(&spec, 0o660).expect("a stale socket file is replaced");
    let err = bind(&spec, 0o660).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    drop(live);
    assert!(
        !path.exists(),
        "our listener removes the socket file it made"
    );

    std::fs::write(&path, "not a socket").unwrap();
    assert!(bind(&spec, 0o660).is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
    std::fs::remove_file(&path).unwrap();
}

// ---- Requests and connections ----

#[test]
fn two_requests_share_one_keep_alive_connection_on_a_unix_socket() {
    let server = TestServer::unix(options(), 0o660);
    let mut conn = server.connect();
    let params: [(&[u8], &[u8]); 1] = [(b"QUERY_STRING", b"first")];
    let first = exchange(&mut *conn, &request(1, true, &params, b"posted body")).unwrap();
    assert_eq!(first.protocol_status, 0);
    assert!(first.text().contains("query=first\n"));
    assert!(first.text().contains("body=posted body\n"));
    let second = exchange(&mut *conn, &get(2, true, "second")).unwrap();
    assert!(second.text().contains("query=second\n"));
    server.stop();
}

#[test]
fn the_connection_closes_after_a_request_without_keep_conn() {
    let server = TestServer::tcp(options());
    let mut conn = server.connect();
    let reply = exchange(&mut *conn, &get(1, false, "once")).unwrap();
    assert!(reply.text().contains("query=once\n"));
    assert_eq!(reply.record_sizes.last(), Some(&0), "STDOUT ends empty");
    assert!(is_closed(&mut *conn));
    server.stop();
}

#[test]
fn get_values_reports_the_connection_cap_the_worker_count_and_no_multiplexing() {
    let server = TestServer::tcp(ServerOptions {
        workers: 3,
        max_connections: 5,
        ..options()
    });
    let mut conn = server.connect();
    let names: [(&[u8], &[u8]); 4] = [
        (b"FCGI_MAX_CONNS", b""),
        (b"FCGI_MAX_REQS", b""),
        (b"FCGI_MPXS_CONNS", b""),
        (b"NOT_A_VARIABLE", b""),
    ];
    conn.write_all(&record(GET_VALUES, 0, &pairs(&names)))
        .unwrap();
    let reply = read_record(&mut *conn).unwrap();
    assert_eq!((reply.kind, reply.id), (GET_VALUES_RESULT, 0));
    let expected: [(&[u8], &[u8]); 3] = [
        (b"FCGI_MAX_CONNS", b"5"),
        (b"FCGI_MAX_REQS", b"3"),
        (b"FCGI_MPXS_CONNS", b"0"),
    ];
    assert_eq!(reply.content, pairs(&expected));
    server.stop();
}

#[test]
fn an_unknown_record_type_gets_unknown_type_and_the_connection_stays_usable() {
    let server = TestServer::tcp(options());
    let mut conn = server.connect();
    conn.write_all(&record(99, 0, b"whatever")).unwrap();
    let reply = read_record(&mut *conn).unwrap();
    assert_eq!((reply.kind, reply.id), (UNKNOWN_TYPE, 0));
    assert_eq!(reply.content, [99, 0, 0, 0, 0, 0, 0, 0]);
    let after = exchange(&mut *conn, &get(1, false, "after=unknown")).unwrap();
    assert!(after.text().contains("query=after=unknown"));
    server.stop();
}

#[test]
fn a_wrong_version_closes_the_connection_and_the_next_connection_is_served() {
    let server = TestServer::tcp(options());
    let mut conn = server.connect();
    let mut bad = begin(1, 1, true);
    bad[0] = 2;
    conn.write_all(&bad).unwrap();
    assert!(is_closed(&mut *conn));
    assert_serves(&server);
    server.stop();
}

#[test]
fn a_peer_closing_mid_header_or_mid_request_leaves_the_server_serving() {
    let server = TestServer::tcp(options());
    let mut conn = server.connect();
    conn.write_all(&[1, 1, 0]).unwrap();
    drop(conn);
    let mut conn = server.connect();
    let whole = get(1, true, "cut");
    conn.write_all(&whole[..whole.len() - 12]).unwrap();
    drop(conn);
    assert_serves(&server);
    server.stop();
}

#[test]
fn ten_thousand_params_reach_the_handler() {
    let server = TestServer::tcp(options_with(Limits {
        max_params_count: 20_000,
        ..Limits::default()
    }));
    let names: Vec<String> = (0..10_000).map(|i| format!("HTTP_X_P{i}")).collect();
    let mut params: Vec<(&[u8], &[u8])> = names.iter().map(|n| (n.as_bytes(), &b"v"[..])).collect();
    params.push((b"QUERY_STRING", b"many"));
    let mut conn = server.connect();
    let text = exchange(&mut *conn, &request(1, false, &params, b""))
        .unwrap()
        .text();
    assert!(text.contains("params=10001\n"), "{text}");
    assert!(text.contains("query=many\n"), "{text}");
    server.stop();
}

#[test]
fn a_non_utf8_param_value_keeps_the_params_after_it() {
    let server = TestServer::tcp(options());
    let params: [(&[u8], &[u8]); 3] = [
        (b"BAD", b"\xff\xfe"),
        (b"AFTER", b"seen"),
        (b"QUERY_STRING", b"q"),
    ];
    let mut conn = server.connect();
    let text = exchange(&mut *conn, &request(1, false, &params, b""))
        .unwrap()
        .text();
    assert!(text.contains("bad=Some([255, 254])\n"), "{text}");
    assert!(text.contains("after=seen\n"), "{text}");
    assert!(text.contains("query=q\n"), "{text}");
    server.stop();
}

#[test]
fn a_response_over_65535_bytes_arrives_in_records_of_at_most_65535() {
    let server = TestServer::tcp(options());
    let mut conn = server.connect();
    let reply = exchange(&mut *conn, &get(1, false, "size=200000")).unwrap();
    assert!(reply.record_sizes.len() >= 4, "{:?}", reply.record_sizes);
    assert!(reply.record_sizes.iter().all(|&size| size <= 65535));
    assert_eq!(reply.record_sizes.last(), Some(&0));
    let body_start = reply
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap()
        + 4;
    assert_eq!(reply.stdout.len() - body_start, 200_000);
    server.stop();
}

#[test]
fn a_handler_panic_gives_500_and_end_request_and_the_server_keeps_serving() {
    let server = TestServer::tcp(options());
    let mut conn = server.connect();
    let reply = exchange(&mut *conn, &get(1, true, "panic")).unwrap();
    assert_eq!(reply.protocol_status, 0);
    assert!(
        reply
            .text()
            .starts_with("Status: 500 Internal Server Error\r\n")
    );
    assert!(reply.text().ends_with("\r\n\r\n500 Internal Server Error"));
    let after = exchange(&mut *conn, &get(2, true, "after-panic")).unwrap();
    assert!(after.text().contains("query=after-panic"));
    assert_serves(&server);
    server.stop();
}

#[test]
fn a_second_request_id_on_a_busy_connection_gets_cant_mpx_conn() {
    let server = TestServer::tcp(options());
    let mut conn = server.connect();
    conn.write_all(&begin(1, 1, true)).unwrap();
    conn.write_all(&begin(2, 1, true)).unwrap();
    let refusal = read_record(&mut *conn).unwrap();
    assert_eq!((refusal.kind, refusal.id), (END_REQUEST, 2));
    assert_eq!(refusal.content[4], 1, "FCGI_CANT_MPX_CONN");
    let params: [(&[u8], &[u8]); 1] = [(b"QUERY_STRING", b"one")];
    conn.write_all(&stream(PARAMS, 1, &pairs(&params))).unwrap();
    conn.write_all(&stream(STDIN, 1, b"")).unwrap();
    let reply = read_reply(&mut *conn, 1).unwrap();
    assert!(reply.text().contains("query=one\n"));
    server.stop();
}

#[test]
fn a_role_other_than_responder_gets_unknown_role() {
    let server = TestServer::tcp(options());
    let mut conn = server.connect();
    conn.write_all(&begin(1, 2, false)).unwrap();
    let refusal = read_record(&mut *conn).unwrap();
    assert_eq!((refusal.kind, refusal.id), (END_REQUEST, 1));
    assert_eq!(refusal.content[4], 3, "FCGI_UNKNOWN_ROLE");
    assert!(is_closed(&mut *conn));
    server.stop();
}

#[test]
fn abort_request_ends_the_request_and_keep_alive_goes_on() {
    let server = TestServer::tcp(options());
    let mut conn = server.connect();
    conn.write_all(&begin(1, 1, true)).unwrap();
    conn.write_all(&record(PARAMS, 1, &pairs(&[(b"A", b"1")])))
        .unwrap();
    conn.write_all(&record(ABORT_REQUEST, 1, &[])).unwrap();
    let end = read_record(&mut *conn).unwrap();
    assert_eq!((end.kind, end.id, end.content[4]), (END_REQUEST, 1, 0));
    let next = exchange(&mut *conn, &get(2, false, "next")).unwrap();
    assert!(next.text().contains("query=next\n"));
    server.stop();
}

#[test]
fn params_over_the_count_limit_get_413_and_the_connection_closes() {
    let server = TestServer::tcp(options_with(Limits {
        max_params_count: 5,
        ..Limits::default()
    }));
    let names: Vec<String> = (0..10).map(|i| format!("P{i}")).collect();
    let params: Vec<(&[u8], &[u8])> = names.iter().map(|n| (n.as_bytes(), &b"v"[..])).collect();
    let mut conn = server.connect();
    let reply = exchange(&mut *conn, &request(1, true, &params, b"")).unwrap();
    assert!(reply.text().starts_with("Status: 413 "), "{}", reply.text());
    assert!(is_closed(&mut *conn));
    drop(conn);
    assert_serves(&server);
    server.stop();
}

#[test]
fn a_body_over_the_limit_gets_413_and_the_connection_closes() {
    let server = TestServer::tcp(options_with(Limits {
        max_stdin_bytes: 1000,
        ..Limits::default()
    }));
    let mut conn = server.connect();
    let reply = exchange(&mut *conn, &request(1, true, &[], &[b'b'; 5000])).unwrap();
    assert!(reply.text().starts_with("Status: 413 "), "{}", reply.text());
    assert!(is_closed(&mut *conn));
    drop(conn);
    server.stop();
}

#[test]
fn more_clients_than_workers_are_all_served() {
    let server = Arc::new(TestServer::tcp(ServerOptions {
        workers: 2,
        ..options()
    }));
    let clients: Vec<_> = (0..10)
        .map(|i| {
            let server = Arc::clone(&server);
            thread::spawn(move || {
                let mut conn = server.connect();
                exchange(&mut *conn, &get(1, false, &format!("client={i}")))
                    .unwrap()
                    .text()
                    .contains(&format!("query=client={i}\n"))
            })
        })
        .collect();
    for client in clients {
        assert!(client.join().unwrap());
    }
    let server = Arc::into_inner(server).unwrap();
    server.stop();
}

#[test]
fn shutdown_returns_promptly_with_an_idle_keep_alive_connection_open() {
    let server = TestServer::tcp(options());
    let mut conn = server.connect();
    exchange(&mut *conn, &get(1, true, "then-idle")).unwrap();
    let took = server.stop();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(is_closed(&mut *conn));
}

#[test]
fn random_records_never_stop_the_server() {
    let server = TestServer::tcp(options());
    let Address::Tcp(addr) = server.address else {
        unreachable!()
    };
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..300 {
        // Well-framed records of random types, ids and contents reach the request
        // state machine; the odd flipped byte breaks the framing too.
        let mut garbage = Vec::new();
        for _ in 0..20 {
            let kind = (next() % 13) as u8;
            let mut content: Vec<u8> = (0..next() % 40).map(|_| next() as u8).collect();
            if kind == BEGIN_REQUEST {
                let (role, flags) = ((next() % 3) as u8 + 1, (next() % 2) as u8);
                content = vec![0, role, flags, 0, 0, 0, 0, 0];
            }
            garbage.extend(record(kind, (next() % 3) as u16, &content));
        }
        if next() % 4 == 0 {
            let at = next() as usize % garbage.len();
            garbage[at] = next() as u8;
        }
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(TIMEOUT)).unwrap();
        let _ = conn.write_all(&garbage);
        let _ = conn.shutdown(std::net::Shutdown::Write);
        let _ = io::copy(&mut conn, &mut io::sink());
    }
    assert_serves(&server);
    server.stop();
}

// ---- Slow, idle and greedy peers (short deadlines through ServerOptions) ----

fn quick(options: ServerOptions) -> TestServer {
    TestServer::unix(options, 0o600)
}

#[test]
fn a_new_connection_that_sends_nothing_is_closed_at_the_head_deadline() {
    let server = quick(ServerOptions {
        head_timeout: Duration::from_millis(500),
        ..options()
    });
    let mut silent = server.unix_stream(TIMEOUT);
    let started = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(3)));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400), "closed after {took:?}");
    assert_serves(&server);
    server.stop();
}

#[test]
fn a_kept_alive_connection_idles_until_the_idle_timeout_and_not_longer() {
    let server = quick(ServerOptions {
        head_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(1500),
        ..options()
    });
    let mut conn = server.unix_stream(TIMEOUT);
    exchange(&mut conn, &get(1, true, "first")).unwrap();
    // Past the head deadline, well before the idle timeout: still open and usable.
    assert!(!closed_within(&mut conn, Duration::from_millis(700)));
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    let second = exchange(&mut conn, &get(2, true, "second")).unwrap();
    assert!(second.text().contains("query=second\n"));
    let idle_since = Instant::now();
    assert!(closed_within(&mut conn, Duration::from_secs(4)));
    let idled = idle_since.elapsed();
    assert!(
        idled >= Duration::from_millis(1300),
        "closed after {idled:?} idle"
    );
    server.stop();
}

#[test]
fn at_the_connection_cap_the_longest_silent_idle_connection_makes_room_and_heads_go_last() {
    let server = quick(ServerOptions {
        workers: 1,
        max_connections: 4,
        ..options()
    });
    let pause = || thread::sleep(Duration::from_millis(100));
    let mut fresh_a = server.unix_stream(TIMEOUT);
    pause();
    let mut idle_b = server.unix_stream(TIMEOUT);
    exchange(&mut idle_b, &get(1, true, "b")).unwrap();
    pause();
    let mut head_c = server.unix_stream(TIMEOUT);
    head_c.write_all(&begin(1, 1, false)).unwrap();
    head_c
        .write_all(&record(PARAMS, 1, &pairs(&[(b"QUERY_STRING", b"c")])))
        .unwrap();
    pause();
    let mut fresh_d = server.unix_stream(TIMEOUT);
    pause();
    // Each newcomer past 4 closes the one silent longest among those with no request
    // in progress: A (new, silent), then B (idle since its answer), then D.
    let _e = server.unix_stream(TIMEOUT);
    assert!(closed_within(&mut fresh_a, Duration::from_secs(2)), "A");
    assert!(
        !closed_within(&mut idle_b, Duration::from_millis(200)),
        "B not yet"
    );
    let _f = server.unix_stream(TIMEOUT);
    assert!(closed_within(&mut idle_b, Duration::from_secs(2)), "B");
    let mut g = server.unix_stream(TIMEOUT);
    assert!(closed_within(&mut fresh_d, Duration::from_secs(2)), "D");
    // The head in progress was kept: it ends and is answered; so is the newest.
    head_c.write_all(&stream(PARAMS, 1, b"")).unwrap();
    head_c.write_all(&stream(STDIN, 1, b"")).unwrap();
    let reply = read_reply(&mut head_c, 1).unwrap();
    assert!(reply.text().contains("query=c\n"), "{}", reply.text());
    let reply = exchange(&mut g, &get(1, false, "g")).unwrap();
    assert!(reply.text().contains("query=g\n"));
    server.stop();
}

#[test]
fn a_peer_that_never_reads_its_answer_frees_the_worker_at_the_write_deadline() {
    let server = quick(ServerOptions {
        workers: 1,
        write_timeout: Duration::from_millis(500),
        ..options()
    });
    let mut hog = server.unix_stream(TIMEOUT);
    hog.write_all(&get(1, false, "size=8000000")).unwrap();
    thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let mut next = server.unix_stream(TIMEOUT);
    let reply = exchange(&mut next, &get(1, false, "next")).unwrap();
    assert!(reply.text().contains("query=next\n"));
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(2), "answered after {waited:?}");
    drop(hog);
    server.stop();
}

#[test]
fn over_the_memory_budget_the_largest_request_head_is_closed() {
    let server = quick(ServerOptions {
        max_buffered_bytes: 100_000,
        ..options()
    });
    let head = |conn: &mut UnixStream, bytes: usize| {
        conn.write_all(&begin(1, 1, false)).unwrap();
        let value = vec![b'v'; bytes];
        let filler = pairs(&[(b"HTTP_X_FILLER", &value)]);
        for chunk in filler.chunks(60_000) {
            conn.write_all(&record(PARAMS, 1, chunk)).unwrap();
        }
    };
    let mut big = server.unix_stream(TIMEOUT);
    head(&mut big, 80_000);
    thread::sleep(Duration::from_millis(200));
    let mut small = server.unix_stream(TIMEOUT);
    head(&mut small, 30_000);
    assert!(
        closed_within(&mut big, Duration::from_secs(2)),
        "the largest head"
    );
    small
        .write_all(&record(PARAMS, 1, &pairs(&[(b"QUERY_STRING", b"small")])))
        .unwrap();
    small.write_all(&stream(PARAMS, 1, b"")).unwrap();
    small.write_all(&stream(STDIN, 1, b"")).unwrap();
    let reply = read_reply(&mut small, 1).unwrap();
    assert!(reply.text().contains("query=small\n"), "{}", reply.text());
    server.stop();
}
