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
    let mut stream = UnixStream::connect(&socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let csv = fastcgi_request(&mut stream, &page_params(&install, "action=download"));
    assert_eq!(csv.status, 200);
    assert_eq!(
        csv.text().lines().count(),
        11,
        "a header and every transaction"
    );
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
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unexpected argument '--bogus'"), "{stderr}");
    let output = Command::new(BIN)
        .env_remove("GATEWAY_INTERFACE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no FastCGI socket on fd 0"));
}

/// Runs the binary with `args` and only the variables `vars`, stdin closed.
fn run(args: &[&str], vars: &[(&str, &str)]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn every_subcommand_s_help_exits_0_and_lists_what_it_takes() {
    for (args, expected) in [
        (
            &["--help"][..],
            &["fcgi", "cgi", "demo", "sample-api", "session-keys"][..],
        ),
        (&["-h"], &["fcgi", "session-keys", "--listen"]),
        (&["help"], &["fcgi", "session-keys"]),
        (
            &["fcgi", "--help"],
            &[
                "--listen",
                "--workers",
                "[default: 16]",
                "TOKENUSAGE_WORKERS",
                "--auth",
            ],
        ),
        (&["help", "fcgi"], &["--socket-mode", "[default: 0660]"]),
        (
            &["cgi", "--help"],
            &["TOKENUSAGE_AUTH", "[default: php-session]"],
        ),
        (&["cgi", "-h"], &["--auth"]),
        (
            &["demo", "--help"],
            &["--listen", "[default: 127.0.0.1:8780]", "--transactions"],
        ),
        (
            &["sample-api", "--help"],
            &[
                "[default: 127.0.0.1:8781]",
                "--fault",
                "gzip-bomb",
                "--seed",
                "--hostile",
            ],
        ),
        (
            &["session-keys", "--help"],
            &["--session-id", "--session-path", "[PATH]"],
        ),
    ] {
        let output = run(args, &[]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stdout}");
        assert!(stdout.contains("Usage: tokenusage"), "{args:?}: {stdout}");
        for text in expected {
            assert!(
                stdout.contains(text),
                "{args:?} does not say {text}: {stdout}"
            );
        }
    }
    let fcgi = String::from_utf8_lossy(&run(&["fcgi", "--help"], &[]).stdout).into_owned();
    for other in ["--transactions", "--fault", "--session-id"] {
        assert!(!fcgi.contains(other), "fcgi --help lists {other}");
    }
}

#[test]
fn the_version_is_printed_and_exits_0() {
    for flag in ["-V", "--version"] {
        let output = run(&[flag], &[]);
        assert_eq!(output.status.code(), Some(0));
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            format!("tokenusage {}", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn an_unknown_option_exits_2_and_names_it() {
    for args in [
        &["--bogus"][..],
        &["fcgi", "--bogus", "1"],
        &["demo", "--bogus"],
        &["sample-api", "--bogus"],
        &["session-keys", "--bogus", "--session-id", "a"],
    ] {
        let output = run(args, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("'--bogus'"), "{args:?}: {stderr}");
    }
    let output = run(&["bogus"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("'bogus'"));
}

#[test]
fn an_option_of_another_subcommand_is_refused() {
    for args in [
        &["demo", "--workers", "4"][..],
        &["sample-api", "--auth", "none"],
        &["fcgi", "--transactions", "10", "--listen", "127.0.0.1:0"],
        &["session-keys", "--auth", "none", "--session-id", "a"],
        &["--workers", "4", "demo"],
    ] {
        let output = run(args, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    }
}

#[test]
fn a_bad_value_in_a_variable_is_refused_naming_the_option_and_the_variable() {
    let workers = [("TOKENUSAGE_WORKERS", "abc")];
    for args in [
        &["fcgi", "--listen", "127.0.0.1:0"][..],
        &["--listen", "127.0.0.1:0"],
    ] {
        let output = run(args, &workers);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("--workers") && stderr.contains("TOKENUSAGE_WORKERS"),
            "{args:?}: {stderr}"
        );
    }
    // The same on the command line names the option alone.
    let output = run(&["fcgi", "--workers", "abc"], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--workers") && !stderr.contains("TOKENUSAGE_WORKERS"));
    // Not an option of the demo's: its variable does not stop the demo's checks.
    let output = run(&["demo", "--transactions", "x"], &workers);
    assert!(String::from_utf8_lossy(&output.stderr).contains("--transactions"));
}

#[test]
fn a_cgi_request_with_a_bad_variable_answers_what_to_fix_and_exits_2() {
    let output = run(
        &["--workers", "8"],
        &[
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("TOKENUSAGE_WORKERS", "abc"),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let page = CgiResponse::parse(&output.stdout);
    assert_eq!(page.status, 500);
    let text = page.text();
    assert!(
        text.contains("--workers") && text.contains("TOKENUSAGE_WORKERS"),
        "{text}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TOKENUSAGE_WORKERS"), "{stderr}");
    assert!(
        stderr.contains(r#"ignored"#) && stderr.contains(r#""--workers" "8""#),
        "{stderr}"
    );
}

#[test]
fn with_gateway_interface_set_help_is_a_visitor_s_word_and_the_request_is_answered() {
    let api = sample_api(10);
    let install = Install::new("cgi-help", &api.url());
    let mut vars: Vec<(&str, String)> = page_params(&install, "");
    vars.push(("TOKENUSAGE_AUTH", "none".into()));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for args in [&["--help"][..], &["cgi", "--help"], &["-V"]] {
        let output = run(args, &vars);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        let page = CgiResponse::parse(&output.stdout);
        assert_eq!(page.status, 200, "{args:?}");
        assert!(page.text().contains("of 10 transactions"), "{args:?}");
    }
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
    let listen = format!("unix:{}", socket.display());
    // Refused by Auth::new, after the socket was bound.
    let output = run(&["fcgi", "--listen", &listen, "--auth", "delegate"], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("tokenusage: error: --auth delegate needs --delegate-url"),
        "{stderr}"
    );
    assert!(!socket.exists(), "the socket file was left behind");
    // A mode that does not exist is refused with the command line, before binding.
    let output = run(&["fcgi", "--listen", &listen, "--auth", "bogus"], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
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
