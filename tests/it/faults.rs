//! Failure is boring: each fault of the resilience issue with its expected outcome, on the
//! real binary over a real socket against the sample API on loopback.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::support::*;
use tokenusage::dev::sample_api::{ENDPOINTS, Fault, OTHER_ENDPOINT, SampleApiOptions};

/// Makes every cache look an hour and a bit old, as if time had passed.
fn expire_caches(install: &Install) {
    for path in [install.pricing_cache(), today_file(install)] {
        if let Ok(text) = fs::read_to_string(&path) {
            let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
            let ts = json["timestamp"].as_i64().unwrap();
            json["timestamp"] = (ts - 4000).into();
            fs::write(&path, json.to_string()).unwrap();
        }
    }
}

/// The most memory the server process has held so far (`VmHWM`), in bytes.
fn peak_rss(server: &Server) -> u64 {
    let status = fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .expect("a VmHWM line");
    kib * 1024
}

fn banner(html: &str) -> String {
    texts(html, ".notice-warning").join(" | ")
}

#[test]
fn with_the_api_stopped_mid_run_the_last_good_data_shows_with_a_banner() {
    let api = sample_api(500);
    let install = Install::new("stopped", &api.url());
    let server = Server::start(&["--account-cache-seconds", "0"]);
    let good = server.get(&install, "").text();
    assert!(good.contains("of 500 transactions"));
    let balance = texts(&good, "#balance dd")[0].clone();
    drop(api);

    let page = server.get(&install, "");
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        banner(&html)
            .starts_with("Failed to connect to License API. Showing the last data received,"),
        "{}",
        banner(&html)
    );
    assert_eq!(texts(&html, "#balance dd")[0], balance);
    assert!(html.contains("of 500 transactions"));

    // Refresh Data with the server down: stale for every part, nothing lost.
    expire_caches(&install);
    let pricing_before = fs::read(install.pricing_cache()).unwrap();
    let html = server.click(&install, "refresh_data").text();
    assert!(banner(&html).contains("Failed to connect to License API"));
    assert!(
        texts(&html, ".notice-success").is_empty(),
        "no false success"
    );
    let footer = texts(&html, ".page-footer span");
    assert_eq!(footer[3], "Pricing: Cached", "never Live for cached data");
    assert_eq!(footer[4], "Transactions: Cached");
    assert!(html.contains("of 500 transactions"));
    assert_eq!(fs::read(install.pricing_cache()).unwrap(), pricing_before);

    // A restart keeps the last good user/info and user/stats (our file beside the caches).
    drop(server);
    let server = Server::start(&["--account-cache-seconds", "0"]);
    let html = server.get(&install, "").text();
    assert_eq!(texts(&html, "#balance dd")[0], balance);
    assert!(banner(&html).contains("Failed to connect to License API"));
    assert!(install.ct.join("dat/tokenusage_last_good.json").exists());
}

#[test]
fn http_500_garbage_truncated_json_and_refusals_show_stale_data_in_the_seeds_words() {
    let api = sample_api(50);
    let install = Install::new("bad-answers", &api.url());
    // Every fault is asked at once, not after a failed call's rest.
    let server = Server::start(&["--account-cache-seconds", "0", "--api-retry-after", "0"]);
    assert_eq!(server.get(&install, "").status, 200);
    for (fault, message) in [
        (Fault::Status500, "API returned HTTP 500"),
        (Fault::Garbage, "Invalid API response format"),
        (Fault::Truncated, "Invalid API response format"),
        (Fault::Refused, "License not found"),
    ] {
        api.set_fault(fault);
        expire_caches(&install);
        let page = server.get(&install, "");
        assert_eq!(page.status, 200, "{fault:?}");
        let html = page.text();
        assert!(
            banner(&html).starts_with(message),
            "{fault:?}: {}",
            banner(&html)
        );
        assert!(html.contains("of 50 transactions"), "{fault:?}");
    }
    // With nothing good at all, it is the error page.
    let fresh = Install::new("bad-answers-fresh", &api.url());
    api.set_fault(Fault::Truncated);
    let page = server.get(&fresh, "");
    assert_eq!(page.status, 200);
    assert_eq!(
        texts(&page.text(), "#unable-to-load p")[0],
        "Invalid API response format"
    );
}

#[test]
fn a_60_mb_answer_is_refused_with_a_clear_message() {
    let api = sample_api(10);
    api.set_fault(Fault::Huge);
    let install = Install::new("huge", &api.url());
    let server = Server::start(&[]);
    let page = server.get(&install, "");
    assert_eq!(page.status, 200);
    assert_eq!(
        texts(&page.text(), "#unable-to-load p")[0],
        "API response too large (over 40 MB)"
    );
    assert_eq!(server.get(&install, "").status, 200, "the process goes on");
}

#[test]
fn a_gzip_bomb_in_the_history_is_refused_without_inflating_it_and_the_rest_shows() {
    let api = sample_api(50);
    api.set_fault(Fault::GzipBomb);
    let install = Install::new("gzip-bomb", &api.url());
    let server = Server::start(&[]);
    let started = Instant::now();
    let page = server.get(&install, "");
    // 512 MiB once inflated: only a server that stops inflating at the cap stays small.
    let peak_mib = peak_rss(&server) / (1024 * 1024);
    eprintln!(
        "gzip bomb: page in {:?}, server peak RSS {peak_mib} MiB",
        started.elapsed()
    );
    assert!(peak_mib < 200, "peak RSS {peak_mib} MiB");
    assert_eq!(page.status, 200);
    let html = page.text();
    assert_eq!(
        texts(&html, "#history .error"),
        ["API response too large (over 40 MB)"]
    );
    assert_eq!(texts(&html, "#account dd")[0], "owner@demo.example.com");
    assert_eq!(texts(&html, "#balance dd")[0], "$12.3456");
    assert!(
        !texts(&html, "#pricing td.price").is_empty(),
        "pricing shows"
    );
    assert_eq!(server.get(&install, "").status, 200, "the process goes on");
}

#[test]
fn a_redirect_from_the_api_is_an_answer_and_never_followed() {
    let api = sample_api(50);
    // Another server with other figures: if it were asked, its data would show.
    let elsewhere = sample_api_with(SampleApiOptions {
        transactions: 7,
        balance: 99.5,
        ..SampleApiOptions::default()
    });
    api.set_redirect_target(&elsewhere.url());
    let install = Install::new("redirect", &api.url());
    let server = Server::start(&["--account-cache-seconds", "0"]);
    let good = server.get(&install, "").text();
    assert!(good.contains("of 50 transactions"));
    let balance = texts(&good, "#balance dd")[0].clone();

    api.set_fault(Fault::Redirect);
    expire_caches(&install);
    let html = server.get(&install, "").text();
    assert!(
        banner(&html).starts_with("API returned HTTP 302"),
        "banner {:?}, balance {:?}",
        banner(&html),
        texts(&html, "#balance dd")[0]
    );
    assert_eq!(texts(&html, "#balance dd")[0], balance);
    assert!(html.contains("of 50 transactions"));

    let html = server.act(&install, "refresh_data").text();
    assert!(banner(&html).contains("API returned HTTP 302"));
    assert_eq!(texts(&html, "#balance dd")[0], balance);
    assert!(html.contains("of 50 transactions"));
    let asked: usize = ENDPOINTS
        .iter()
        .chain([&OTHER_ENDPOINT])
        .map(|endpoint| elsewhere.calls(endpoint))
        .sum();
    assert_eq!(asked, 0, "the redirect target was never asked");
}

#[test]
fn a_hanging_api_is_cut_off_at_the_time_limit() {
    let api = sample_api(10);
    let install = Install::new("hang", &api.url());
    let server = Server::start(&[
        "--api-timeout",
        "2",
        "--api-connect-timeout",
        "1",
        "--account-cache-seconds",
        "0",
    ]);
    assert_eq!(server.get(&install, "").status, 200);
    api.set_fault(Fault::Hang);
    expire_caches(&install);
    let page = server.get(&install, "");
    assert_eq!(page.status, 200);
    assert!(banner(&page.text()).starts_with("Failed to connect to License API"));
}

#[test]
fn a_cache_folder_it_cannot_write_still_gives_the_page_with_a_warning_naming_it() {
    let api = sample_api(30);
    let install = Install::new("readonly", &api.url());
    // Run as `nobody`, like a web server user, over a dat folder it cannot write.
    let nobody = crate::session::nobody_uid();
    for dir in [&install.dir.0, &install.ct, &install.ct.join("admin")] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let dat = install.ct.join("dat");
    fs::set_permissions(&dat, fs::Permissions::from_mode(0o555)).unwrap();
    fs::set_permissions(install.config_path(), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(
        install.dir.0.join("site"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let server = Server::start_as(nobody, &[]);
    let page = server.get(&install, "");
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("of 30 transactions"));
    let warnings = texts(&html, ".notice-info").join(" | ");
    assert!(
        warnings.contains(&format!("Could not write the cache in {}", dat.display())),
        "{warnings}"
    );
    let names: Vec<String> = fs::read_dir(&dat)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["config.inc.php"], "nothing half-written");
}

#[test]
fn broken_cache_files_are_misses_and_replaced() {
    let api = sample_api(40);
    let install = Install::new("broken-cache", &api.url());
    let server = Server::start(&[]);
    server.get(&install, "");
    let file = today_file(&install);
    let good = fs::read(&file).unwrap();
    let future = format!(
        r#"{{"timestamp": {}, "domain": "demo.example.com", "transactions": []}}"#,
        chrono::Utc::now().timestamp() + 86_400
    );
    for (i, broken) in [
        good[..good.len() / 2].to_vec(),
        b"not json at all".to_vec(),
        br#"{"timestamp": 1, "transactions": "nope"}"#.to_vec(),
        future.into_bytes(),
    ]
    .into_iter()
    .enumerate()
    {
        fs::write(&file, &broken).unwrap();
        let page = server.get(&install, "");
        assert_eq!(page.status, 200, "case {i}");
        assert!(page.text().contains("of 40 transactions"), "case {i}");
        assert_eq!(
            api.calls("credits/history"),
            2 + i,
            "case {i}: a miss refetches"
        );
        let replaced = fs::read(&file).unwrap();
        assert!(
            tokenusage::data::cache::parse_transactions(&replaced)
                .is_some_and(|c| c.value.len() == 40),
            "case {i}: replaced with a good file"
        );
    }
}

#[test]
fn kill_9_during_cache_writes_never_leaves_a_torn_file() {
    let api = sample_api(10_000);
    let install = Install::new("kill9", &api.url());
    for round in 0..12 {
        let server = Server::start(&[]);
        let socket = server.socket.clone();
        let params = page_params(&install, "action=refresh_data");
        let clicker = std::thread::spawn(move || {
            // Refresh as fast as possible until the server dies under us.
            for _ in 0..50 {
                let answered = connect(&socket, Duration::from_secs(10))
                    .and_then(|mut stream| try_fastcgi_request(&mut stream, &params));
                if answered.is_err() {
                    return;
                }
            }
        });
        std::thread::sleep(Duration::from_millis(80 + 37 * round));
        server.kill9();
        let _ = clicker.join();
        for path in [install.pricing_cache(), today_file(&install)] {
            if let Ok(bytes) = fs::read(&path) {
                let whole = if path == install.pricing_cache() {
                    tokenusage::data::cache::parse_pricing(&bytes).is_some()
                } else {
                    tokenusage::data::cache::parse_transactions(&bytes).is_some()
                };
                assert!(whole, "round {round}: {} is torn", path.display());
            }
        }
    }
    let server = Server::start(&[]);
    let page = server.get(&install, "");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("of 10,000 transactions"));
}

#[test]
fn a_hundred_concurrent_requests_on_an_expired_cache_make_one_history_call() {
    let api = sample_api_with(SampleApiOptions {
        transactions: 2_000,
        delay: Duration::from_millis(300),
        ..SampleApiOptions::default()
    });
    let install = Install::new("stampede", &api.url());
    // Two processes sharing one ct/dat: the lock file works across them too.
    let servers = [Server::start(&[]), Server::start(&[])];
    let start = Arc::new(Barrier::new(100));
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let socket = servers[i % 2].socket.clone();
            let params = page_params(&install, "");
            let start = start.clone();
            std::thread::spawn(move || {
                let mut stream = connect(&socket, Duration::from_secs(120)).unwrap();
                start.wait();
                fastcgi_request(&mut stream, &params).status
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(api.calls("credits/history"), 1);
    assert_eq!(api.calls("pricing/current"), 1);
}

#[test]
fn malformed_fastcgi_records_end_their_connection_and_the_binary_keeps_serving() {
    let api = sample_api(10);
    let install = Install::new("malformed", &api.url());
    let server = Server::start(&[]);
    let junk: Vec<Vec<u8>> = vec![
        vec![9, 1, 0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0], // wrong version
        vec![1, 1, 0],                                        // truncated header
        vec![1, 4, 0, 1, 0xff, 0xff, 0, 0, 1, 2, 3],          // oversized length, then gone
        vec![1, 99, 0, 0, 0, 0, 0, 0],                        // unknown type
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),        // not FastCGI at all
    ];
    for bytes in junk {
        let mut stream = connect(&server.socket, Duration::from_secs(5)).unwrap();
        stream.write_all(&bytes).unwrap();
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    }
    // 10,000 parameters and a non-UTF-8 value: the request is answered or refused, cleanly.
    let mut params = page_params(&install, "");
    for i in 0..10_000 {
        params.push(("HTTP_X_FILLER", format!("{i}")));
    }
    let answer = server.request(&params);
    assert!(matches!(answer.status, 200 | 413), "{}", answer.status);
    assert_eq!(server.get(&install, "").status, 200, "still serving");
}

#[test]
fn sigterm_lets_requests_in_flight_finish_removes_the_socket_and_exits_0() {
    let api = sample_api_with(SampleApiOptions {
        transactions: 10,
        delay: Duration::from_millis(800),
        ..SampleApiOptions::default()
    });
    let install = Install::new("sigterm", &api.url());
    let server = Server::start(&[]);
    let socket = server.socket.clone();
    let params = page_params(&install, "");
    let in_flight = std::thread::spawn(move || {
        let mut stream = connect(&socket, Duration::from_secs(30)).unwrap();
        fastcgi_request(&mut stream, &params)
    });
    std::thread::sleep(Duration::from_millis(300));
    let socket = server.socket.clone();
    let status = server.terminate_and_wait();
    let page = in_flight.join().unwrap();
    assert_eq!(page.status, 200, "the request in flight finished");
    assert!(page.text().contains("of 10 transactions"));
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists(), "our socket file is removed");
}

#[test]
fn sighup_is_harmless() {
    let api = sample_api(10);
    let install = Install::new("sighup", &api.url());
    let server = Server::start(&[]);
    unsafe {
        libc::kill(server.child.id() as i32, libc::SIGHUP);
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(server.get(&install, "").status, 200);
}

#[test]
fn running_out_of_file_descriptors_is_logged_and_survived() {
    let api = sample_api(10);
    let install = Install::new("emfile", &api.url());
    let server = Server::start_with_limit(14, &[]);
    // More connections than descriptors: accept() fails with EMFILE for some of them.
    let hogs: Vec<UnixStream> = (0..80)
        .filter_map(|_| UnixStream::connect(&server.socket).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    drop(hogs);
    // The server sees the hogs go as it reads them: on a loaded machine that can take a
    // moment, during which a license API call may still find no descriptor (the error
    // card instead of the dashboard).
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        std::thread::sleep(Duration::from_millis(500));
        let page = server.get(&install, "");
        if page.text().contains("of 10 transactions") || Instant::now() > deadline {
            break page;
        }
    };
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("of 10 transactions"),
        "serving the dashboard again once descriptors are free"
    );
    let log = server.stop();
    assert!(
        log.to_lowercase().contains("too many open files"),
        "the accept error is logged: {log}"
    );
}

#[test]
fn sigterm_under_load_answers_every_connection_already_accepted() {
    let api = sample_api_with(SampleApiOptions {
        transactions: 10,
        delay: Duration::from_millis(400),
        ..SampleApiOptions::default()
    });
    let install = Install::new("sigterm-load", &api.url());
    let server = Server::start(&["--workers", "4", "--account-cache-seconds", "0"]);
    // Connected before SIGTERM: some are being served, the rest wait for a worker.
    let streams: Vec<UnixStream> = (0..24)
        .map(|_| connect(&server.socket, Duration::from_secs(30)).unwrap())
        .collect();
    let handles: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            let params = page_params(&install, "");
            std::thread::spawn(move || fastcgi_request(&mut stream, &params).status)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(150));
    let status = server.terminate_and_wait();
    let answers: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(answers, vec![200; 24], "no connection dropped unanswered");
    assert!(status.success());
}

/// Views the page and times it.
fn timed_view(server: &Server, install: &Install) -> (CgiResponse, Duration) {
    let start = Instant::now();
    let page = server.get(install, "");
    (page, start.elapsed())
}

#[test]
fn with_the_api_hanging_and_data_on_hand_views_wait_only_the_patience() {
    let api = sample_api(50);
    let install = Install::new("hang-patience", &api.url());
    let server = Server::start(&["--api-timeout", "20", "--account-cache-seconds", "0"]);
    assert_eq!(server.get(&install, "").status, 200);
    api.set_fault(Fault::Hang);
    expire_caches(&install);
    let check = |(page, took): (CgiResponse, Duration), within: Duration| {
        assert_eq!(page.status, 200);
        assert!(took < within, "{took:?}");
        let html = page.text();
        assert_eq!(
            texts(&html, "#balance dd")[0],
            "$12.3456",
            "the last good balance"
        );
        assert!(html.contains("of 50 transactions"));
        assert!(
            banner(&html).starts_with("Failed to connect to License API"),
            "{}",
            banner(&html)
        );
    };
    // The first view waits the patience (2 s); later ones join the same call, already
    // past its patience, and show the older data at once.
    check(timed_view(&server, &install), Duration::from_millis(3500));
    for _ in 0..2 {
        check(timed_view(&server, &install), Duration::from_secs(1));
    }
    std::thread::scope(|scope| {
        let views: Vec<_> = (0..5)
            .map(|_| scope.spawn(|| timed_view(&server, &install)))
            .collect();
        for view in views {
            check(view.join().unwrap(), Duration::from_secs(1));
        }
    });
    // Eight views waited for one call of each part, still hanging.
    for endpoint in ENDPOINTS {
        assert_eq!(api.calls(endpoint), 2, "{endpoint}");
    }
}

#[test]
fn after_a_timed_out_call_views_show_older_data_at_once_and_say_when_they_ask_again() {
    let api = sample_api(20);
    let install = Install::new("hang-rest", &api.url());
    let server = Server::start(&[
        "--api-timeout",
        "2",
        "--api-patience",
        "1",
        "--account-cache-seconds",
        "0",
    ]);
    assert_eq!(server.get(&install, "").status, 200);
    api.set_fault(Fault::Hang);
    expire_caches(&install);
    let (page, took) = timed_view(&server, &install);
    assert!(took < Duration::from_millis(2500), "{took:?}");
    assert!(banner(&page.text()).starts_with("Failed to connect to License API"));
    // The call times out at 2 s; from then on views rest instead of calling.
    std::thread::sleep(Duration::from_millis(2500));
    let calls = api.calls("user/info");
    let (page, took) = timed_view(&server, &install);
    assert!(took < Duration::from_millis(900), "{took:?}");
    let shown = banner(&page.text());
    assert!(
        shown.contains("The license server is asked again in"),
        "{shown}"
    );
    assert_eq!(texts(&page.text(), "#balance dd")[0], "$12.3456");
    assert_eq!(api.calls("user/info"), calls, "no call while resting");
    // Refresh Data still asks, and says what happened.
    let refreshed = server.act(&install, "refresh_data");
    assert_eq!(api.calls("user/info"), calls + 1);
    assert!(banner(&refreshed.text()).starts_with("Failed to connect to License API"));
    // The debug log says it was a time-out.
    let log = server.stop();
    assert!(
        log.contains("timeout") || log.contains("no answer within"),
        "{log}"
    );
}

#[test]
fn with_the_api_hanging_and_no_data_five_views_share_one_call_and_end_in_the_error_card() {
    let api = sample_api(20);
    api.set_fault(Fault::Hang);
    let install = Install::new("hang-nodata", &api.url());
    let server = Server::start(&["--api-timeout", "3", "--api-connect-timeout", "1"]);
    std::thread::scope(|scope| {
        let views: Vec<_> = (0..5)
            .map(|_| scope.spawn(|| timed_view(&server, &install)))
            .collect();
        for view in views {
            let (page, took) = view.join().unwrap();
            assert!(took < Duration::from_secs(3 + 5), "{took:?}");
            assert_eq!(page.status, 200);
            let html = page.text();
            assert!(html.contains("Unable to Load Account Data"), "{html}");
            assert!(html.contains("Failed to connect to License API"));
        }
    });
    assert_eq!(api.calls("user/info"), 1, "one call for five views");
}
