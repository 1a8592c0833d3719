//! `tokenusage notify` over the real binary: the sample API on loopback, a loopback webhook
//! receiver (tiny_http) and a sendmail-compatible recorder (a shell script that keeps
//! each message in a file).

use std::fs;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::Value;
use tokenusage::dev::sample_api::SampleApiOptions;

use crate::support::*;

/// A webhook on loopback that records every JSON body and answers the status set.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    status: Arc<AtomicU16>,
    server: Arc<tiny_http::Server>,
}

impl Receiver {
    fn start() -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (srv, got, answer) = (server.clone(), bodies.clone(), status.clone());
        thread::spawn(move || {
            for mut request in srv.incoming_requests() {
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                let code = answer.load(Ordering::SeqCst);
                if code == 200 {
                    got.lock()
                        .unwrap()
                        .push(serde_json::from_str(&body).unwrap_or(Value::Null));
                }
                let _ = request.respond(tiny_http::Response::empty(code));
            }
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hooks/T000/B000/secretpath"),
            bodies,
            status,
            server,
        }
    }

    /// The `kind`/`level` of each alert received, of one kind.
    fn levels(&self, kind: &str) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b["kind"] == kind)
            .map(|b| b["level"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// A sendmail-compatible recorder: each message into its own file in `dir`.
fn recorder(dir: &std::path::Path) -> String {
    let script = dir.join("sendmail");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat > \"{}/mail.$$.$(date +%s%N)\"\n",
            dir.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    format!("{} -t", script.display())
}

fn mails(dir: &std::path::Path) -> Vec<String> {
    let mut found: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("mail."))
        .map(|e| fs::read_to_string(e.path()).unwrap())
        .collect();
    found.sort();
    found
}

fn notify(install: &Install, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("notify")
        .arg("--root")
        .arg(&install.ct)
        .args(["--account-cache-seconds", "0", "-t", "5"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn the_balance_alerts_once_per_crossing_by_webhook_and_email() {
    let api = sample_api_with(SampleApiOptions {
        transactions: 5,
        balance: 48.0,
        ..SampleApiOptions::default()
    });
    let install = Install::new("notify-balance", &api.url());
    let receiver = Receiver::start();
    let box_dir = TempDir::new("notify-mail");
    let sendmail = recorder(&box_dir.0);
    let args = [
        "-w",
        "5",
        "-c",
        "1",
        "--webhook",
        &receiver.url,
        "--mail-to",
        "admin@example.com",
        "--sendmail",
        &sendmail,
    ];
    for balance in [48.0, 3.0, 3.0, 0.5, 48.0, 3.0] {
        api.set_balance(balance);
        let out = notify(&install, &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        receiver.levels("balance"),
        ["warning", "critical", "recovered", "warning"]
    );
    let bodies = receiver.bodies.lock().unwrap().clone();
    let first = bodies.iter().find(|b| b["kind"] == "balance").unwrap();
    assert_eq!(first["text"], "[demo.example.com] Credits low: $3.00 left");
    assert_eq!(first["balance"], 3.0);
    let mails = mails(&box_dir.0);
    assert_eq!(mails.len(), bodies.len(), "one email per alert");
    assert!(
        mails
            .iter()
            .any(|m| m.contains("Subject: [demo.example.com] Credits critically low: $0.50 left"))
    );
    assert!(
        mails
            .iter()
            .all(|m| m.starts_with("To: admin@example.com\r\n")
                && m.contains("Content-Type: text/html; charset=UTF-8"))
    );
    // The state is ours: private, holding no key.
    let state = install.ct.join("dat/tokenusage_notify.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn two_runs_at_once_alert_once() {
    let api = sample_api_with(SampleApiOptions {
        transactions: 5,
        balance: 3.0,
        ..SampleApiOptions::default()
    });
    let install = Install::new("notify-race", &api.url());
    let receiver = Receiver::start();
    let runs: Vec<_> = (0..2)
        .map(|_| {
            Command::new(BIN)
                .arg("notify")
                .arg("--root")
                .arg(&install.ct)
                .args(["-w", "5", "--webhook", &receiver.url])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut run in runs {
        assert!(run.wait().unwrap().success());
    }
    assert_eq!(receiver.levels("balance"), ["warning"]);
}

#[test]
fn a_webhook_that_fails_leaves_the_alert_for_the_next_run_and_never_logs_its_path() {
    let api = sample_api_with(SampleApiOptions {
        transactions: 5,
        balance: 3.0,
        ..SampleApiOptions::default()
    });
    let install = Install::new("notify-retry", &api.url());
    let receiver = Receiver::start();
    receiver.status.store(500, Ordering::SeqCst);
    let failed = notify(&install, &["-w", "5", "--webhook", &receiver.url]);
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("answered HTTP 500"), "{stderr}");
    assert!(!stderr.contains("secretpath"), "{stderr}");
    receiver.status.store(200, Ordering::SeqCst);
    assert!(
        notify(&install, &["-w", "5", "--webhook", &receiver.url])
            .status
            .success()
    );
    assert!(
        notify(&install, &["-w", "5", "--webhook", &receiver.url])
            .status
            .success()
    );
    assert_eq!(receiver.levels("balance"), ["warning"]);
}

#[test]
fn an_unusual_day_alerts_once_and_a_dry_run_sends_nothing() {
    // The sample API's five transactions a year back: only the days below count.
    let api = sample_api_with(SampleApiOptions {
        transactions: 5,
        anchor: Some(chrono::Utc::now().timestamp() - 365 * 86_400),
        ..SampleApiOptions::default()
    });
    let install = Install::new("notify-unusual", &api.url());
    // The PHP page's cache file of yesterday: a dollar a day for two months, then ten
    // dollars yesterday.
    let today = chrono::Utc::now().date_naive();
    let entries: Vec<String> = (1..=60)
        .map(|back| {
            let day = today - chrono::Duration::days(back);
            let amount = if back == 1 { "-10.0000" } else { "-1.0000" };
            format!(
                r#"{{"id":{back},"created_at":"{day} 12:00:00","transaction_type":"usage","service_type":"tag_generation via google","amount":"{amount}","tokens_used":5,"images_processed":1,"description":"d"}}"#
            )
        })
        .collect();
    write_history_file(
        &install,
        &(today - chrono::Duration::days(1)).to_string(),
        &entries,
    );
    let receiver = Receiver::start();
    let dry = notify(&install, &["--webhook", &receiver.url, "--dry-run"]);
    assert!(dry.status.success());
    let printed = String::from_utf8_lossy(&dry.stdout);
    assert!(
        printed.contains("would send: [demo.example.com] Unusual spend on"),
        "{printed}"
    );
    assert!(
        receiver.bodies.lock().unwrap().is_empty(),
        "a dry run sends nothing"
    );
    assert!(
        !install.ct.join("dat/tokenusage_notify.json").exists(),
        "nor keeps state"
    );

    for _ in 0..2 {
        assert!(
            notify(&install, &["--webhook", &receiver.url])
                .status
                .success()
        );
    }
    let unusual: Vec<Value> = receiver
        .bodies
        .lock()
        .unwrap()
        .iter()
        .filter(|b| b["kind"] == "unusual")
        .cloned()
        .collect();
    assert_eq!(unusual.len(), 1, "{unusual:?}");
    assert_eq!(unusual[0]["service"], "tag_generation via CTZ-AI");
    assert_eq!(unusual[0]["spend"], 10.0);
}

#[test]
fn test_sends_one_alert_to_each_destination_and_no_destination_is_an_error() {
    let api = sample_api(5);
    let install = Install::new("notify-test", &api.url());
    let receiver = Receiver::start();
    let box_dir = TempDir::new("notify-test-mail");
    let sendmail = recorder(&box_dir.0);
    let out = notify(
        &install,
        &[
            "--test",
            "--webhook",
            &receiver.url,
            "--mail-to",
            "a@example.com",
            "--sendmail",
            &sendmail,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(receiver.levels("test"), ["test"]);
    assert_eq!(mails(&box_dir.0).len(), 1);
    let nowhere = notify(&install, &[]);
    assert_eq!(nowhere.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&nowhere.stderr).contains("give --mail-to or --webhook"));
    thread::sleep(Duration::from_millis(10));
}
