//! How the binary is started: a socket on fd 0 (spawn-fcgi, mod_fcgid, systemd), CGI by
//! environment, the demo, and bad arguments.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use tokenusage::dev::sample_api::SampleApiOptions;

#[test]
fn with_no_arguments_it_serves_fastcgi_on_a_listening_socket_passed_as_fd_0() {
    let api = sample_api(10);
    let install = Install::new("fd0", &api.url());
    let dir = TempDir::new("fd0");
    let socket = dir.0.join("inherited.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let mut child = Command::new(BIN)
        .env("TOKENUSAGE_AUTH", "none")
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(listener)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stream = UnixStream::connect(&socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let page = fastcgi_request(&mut stream, &page_params(&install, ""));
    assert_eq!(page.status, 200);
    assert!(page.text().contains("of 10 transactions"));
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "exits 0 on SIGTERM: {status:?}");
    assert!(
        socket.exists(),
        "an inherited socket file is not ours to remove"
    );
}

#[test]
fn with_gateway_interface_set_it_answers_one_cgi_request() {
    let api = sample_api(10);
    let install = Install::new("cgi-auto", &api.url());
    let page = cgi(&page_params(&install, ""), &[]);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("of 10 transactions"));
}

#[test]
fn cgi_keeps_non_utf8_variables_and_still_answers() {
    use std::os::unix::ffi::OsStrExt;
    let api = sample_api(10);
    let install = Install::new("cgi-bytes", &api.url());
    let mut command = Command::new(BIN);
    command.env_clear().env("TOKENUSAGE_AUTH", "none");
    for (k, v) in page_params(&install, "page=1") {
        command.env(k, v);
    }
    command.env("HTTP_X_ODD", std::ffi::OsStr::from_bytes(b"\xff\xfe"));
    let output = command.stdin(Stdio::null()).output().unwrap();
    let page = CgiResponse::parse(&output.stdout);
    assert_eq!(page.status, 200);
}

#[test]
fn a_page_makes_its_four_api_calls_in_parallel() {
    let api = sample_api_with(SampleApiOptions {
        transactions: 10,
        delay: Duration::from_millis(300),
        ..SampleApiOptions::default()
    });
    let install = Install::new("parallel", &api.url());
    let server = Server::start(&["--account-cache-seconds", "0"]);
    assert_eq!(server.get(&install, "").status, 200);
    assert_eq!(
        api.max_in_flight(),
        4,
        "all four endpoints were called at once"
    );
    api.reset_calls();
    // Warm: pricing and history come from the caches, user/info and user/stats together.
    assert_eq!(server.get(&install, "").status, 200);
    assert_eq!(api.max_in_flight(), 2);
    assert_eq!(api.calls("credits/history"), 0);
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    let output = Command::new(BIN).arg("--bogus").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown option --bogus"));
    let output = Command::new(BIN)
        .env_remove("GATEWAY_INTERFACE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no FastCGI socket on fd 0"));
}

#[test]
fn with_no_subcommand_a_listen_address_in_use_is_reported_as_such() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let output = Command::new(BIN)
        .args(["--listen", &address])
        .env_remove("GATEWAY_INTERFACE")
        .env("TOKENUSAGE_AUTH", "none")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {address}"))
            && stderr.contains("Address already in use"),
        "{stderr}"
    );
    assert!(!stderr.contains("no FastCGI socket on fd 0"), "{stderr}");
}

#[test]
fn a_start_that_fails_after_binding_leaves_no_socket_file() {
    let dir = TempDir::new("failed-start");
    let socket = dir.0.join("tokenusage.sock");
    let output = Command::new(BIN)
        .args(["fcgi", "--listen", &format!("unix:{}", socket.display())])
        .args(["--auth", "bogus"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bogus"), "{stderr}");
    assert!(!socket.exists(), "the socket file was left behind");
}

#[test]
fn the_demo_serves_the_real_page_over_http_on_loopback() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", &listen, "--transactions", "600"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(&listen).is_err() {
        if Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("demo did not start: {err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let page = http_get(&format!("http://{listen}/ct/admin/tokenusage.php?page=2"));
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(
        texts(&page.text(), ".pagination-info span")[0],
        "Showing 301-600 of 600 transactions (Page 2 of 2)"
    );
    assert!(out.contains(&format!("http://{listen}/ct/admin/tokenusage.php")));
    assert!(status.success());
    let _ = std::io::stdout().flush();
}
