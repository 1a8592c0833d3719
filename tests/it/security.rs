//! Nothing the license server sends can harm an admin: its text reaches HTML escaped and
//! CSV defused; every admin response carries the protective headers.

use crate::support::*;
use tokenusage::dev::sample_api::{Fault, HOSTILE_SUFFIX, SampleApiOptions};

fn hostile_api(transactions: usize) -> tokenusage::dev::sample_api::SampleApi {
    sample_api_with(SampleApiOptions {
        transactions,
        hostile: true,
        ..SampleApiOptions::default()
    })
}

/// The page holds no markup or script that came from outside.
fn assert_inert(html: &str) {
    let document = scraper::Html::parse_document(html);
    let all = scraper::Selector::parse("*").unwrap();
    let mut scripts = 0;
    for element in document.select(&all) {
        let name = element.value().name();
        assert_ne!(name, "img", "an <img> from outside reached the page");
        if name == "script" {
            scripts += 1;
            assert_eq!(element.value().attr("src"), Some("?asset=dashboard.js"));
            assert_eq!(element.inner_html(), "", "inline script");
        }
        for (attr, value) in element.value().attrs() {
            assert!(!attr.starts_with("on"), "event handler attribute {attr}");
            if matches!(attr, "href" | "src" | "action") {
                assert!(
                    !value
                        .trim_start()
                        .to_ascii_lowercase()
                        .starts_with("javascript:"),
                    "{attr}={value}"
                );
            }
        }
    }
    assert_eq!(scripts, 1, "only our own script");
    assert!(!html.contains("<script>alert"));
    assert!(!html.contains("<img src=x"));
}

#[test]
fn hostile_text_in_every_field_reaches_the_page_escaped() {
    let api = hostile_api(400);
    let install = Install::new("xss", &api.url());
    let server = Server::start(&["--account-cache-seconds", "0"]);
    let page = server.get(&install, "");
    assert_eq!(page.status, 200);
    let html = page.text();
    assert_inert(&html);
    // The text is shown, as text.
    let account = texts(&html, "#account dd");
    assert!(
        account[1].contains("<script>alert(1)</script>"),
        "{account:?}"
    );
    let rows = attrs(&html, "table.transactions td[title]", "title");
    assert!(rows[0].contains(HOSTILE_SUFFIX.trim()));

    let debug = server.get(&install, "debug=1").text();
    assert_inert(&debug);
    assert!(debug.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

    // The server's own error text is escaped too: in the banner over the last good
    // data, and on the error page of an installation that has none.
    api.set_fault(Fault::Refused);
    let stale = server.get(&install, "");
    assert_eq!(stale.status, 200);
    let banner = texts(&stale.text(), ".notice-warning");
    assert!(
        banner[0].contains("<script>alert(1)</script>"),
        "{banner:?}"
    );
    assert_inert(&stale.text());
    let fresh = Install::new("xss-fresh", &api.url());
    let error = server.get(&fresh, "");
    assert_eq!(error.status, 200);
    assert_inert(&error.text());
}

#[test]
fn csv_cells_never_start_with_a_formula_character() {
    let api = hostile_api(300);
    let install = Install::new("csv-formula", &api.url());
    let server = Server::start(&[]);
    let csv = server.get(&install, "action=download");
    assert_eq!(csv.status, 200);
    assert_formula_free(&csv.body, 300);

    // Cells starting with +, -, @, tab and CR, or hiding = + - @ behind a space, a
    // no-break or zero-width space or a BOM, or in full width, from a PHP-written cache
    // file: every text cell is defused.
    let install = Install::new("csv-prefixes", &api.url());
    let starts = [
        "+1+1",
        "-2+3",
        "@SUM(A1)",
        "\tTAB",
        "\rCR",
        "=1+1",
        " =1+1",
        "\u{a0}=1+1",
        "\u{200b}+1",
        "\u{feff}@SUM(A1)",
        "\u{ff1d}1+1",
        "\u{ff0d}2+3",
    ];
    // Distinct ids: the kept history keeps one entry per id.
    let transactions: Vec<serde_json::Value> = starts
        .iter()
        .enumerate()
        .map(|(id, text)| {
            serde_json::json!({"id": id, "created_at": text, "transaction_type": text,
                "service_type": text, "amount": "-0.5", "tokens_used": 3,
                "images_processed": 1, "description": text})
        })
        .collect();
    write_today_history(&install, &serde_json::Value::from(transactions).to_string());
    let csv = server.get(&install, "action=download");
    assert_formula_free(&csv.body, starts.len());
    let text = String::from_utf8_lossy(&csv.body).into_owned();
    let reader = csv::Reader::from_reader(&csv.body[3..]);
    for record in reader.into_records() {
        let record = record.unwrap();
        for column in [0, 1, 2, 6] {
            assert!(record[column].starts_with('\''), "{:?}", &record[column]);
        }
    }
    assert!(
        text.contains(",-0.5000,3,1,"),
        "numbers we format stay numbers: {text}"
    );
}

fn assert_formula_free(body: &[u8], rows: usize) {
    assert!(body.starts_with(b"\xEF\xBB\xBF"));
    let mut reader = csv::Reader::from_reader(&body[3..]);
    let mut count = 0;
    for record in reader.records() {
        let record = record.unwrap();
        count += 1;
        for (column, cell) in record.iter().enumerate() {
            if matches!(column, 3..=5) {
                assert!(
                    cell.parse::<f64>().is_ok(),
                    "column {column} is a number: {cell:?}"
                );
                continue;
            }
            let first = cell.chars().next();
            assert!(
                !matches!(first, Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\n')),
                "cell {cell:?} starts with a formula character"
            );
        }
    }
    assert_eq!(count, rows);
}

#[test]
fn every_admin_response_carries_the_protective_headers() {
    let api = sample_api(10);
    let install = Install::new("headers", &api.url());
    let server = Server::start(&[]);
    for query in [
        "",
        "page=2",
        "action=download",
        "debug=1",
        "asset=dashboard.css",
        "action=refresh_data",
    ] {
        let response = server.get(&install, query);
        assert_eq!(
            response.header("cache-control"),
            Some("no-store"),
            "{query}"
        );
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(response.header("referrer-policy"), Some("same-origin"));
        assert_eq!(response.header("x-frame-options"), Some("DENY"));
        let csp = response.header("content-security-policy").unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{csp}");
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("http"),
            "{csp}"
        );
    }
    let missing = Install::new("headers-error", &api.url());
    missing.edit_config("'domain'      => 'demo.example.com',", "");
    let error = server.get(&missing, "");
    assert_eq!(error.status, 200);
    assert_eq!(error.header("cache-control"), Some("no-store"));
}

#[test]
fn a_proxy_header_from_the_request_is_ignored() {
    // httpoxy: in CGI a request's `Proxy:` header becomes HTTP_PROXY. A client that
    // honoured it would send the license key to that address; this one is unreachable.
    let api = sample_api(10);
    let install = Install::new("httpoxy", &api.url());
    let mut params = page_params(&install, "");
    params.push(("HTTP_PROXY", format!("http://127.0.0.1:{}", free_port())));
    let page = cgi(&params, &[("http_proxy", "http://127.0.0.1:9")]);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("of 10 transactions"));
}

#[test]
fn logs_and_debug_output_never_hold_the_whole_key_or_a_session_id() {
    let api = sample_api(10);
    let install = Install::new("secrets", &api.url());
    let closed = Install::new(
        "secrets-closed",
        &format!("http://127.0.0.1:{}/api.php", free_port()),
    );
    let sessions = TempDir::new("secret-sessions");
    crate::session::php_session(
        &sessions.0,
        "php",
        "secretsession42",
        "$_SESSION['admin_logged_in'] = true;",
    );
    let server = Server::start_php_session(&sessions.0, "admin_logged_in");
    let admin = "PHPSESSID=secretsession42";
    let mut seen = String::new();
    for (install, query) in [
        (&install, "debug=1"),
        (&install, "action=download"),
        (&closed, ""),
        (&closed, "debug=1"),
        (&closed, "action=download"),
    ] {
        seen.push_str(&server.get_with_cookie(install, query, admin).text());
    }
    api.set_fault(Fault::Garbage);
    seen.push_str(
        &server
            .get_with_cookie(&install, "action=refresh_data", admin)
            .text(),
    );
    seen.push_str(
        &server
            .get_with_cookie(&install, "", "PHPSESSID=wrongsession77")
            .text(),
    );
    seen.push_str(&server.stop());
    assert!(
        seen.contains("DEMO-4F9..."),
        "the masked key is shown in debug"
    );
    assert!(
        !seen.contains("DEMO-4F9A"),
        "more than 8 characters of the key"
    );
    assert!(!seen.contains("secretsession42"));
    assert!(!seen.contains("wrongsession77"));
}

#[test]
fn a_made_up_script_path_creates_nothing_and_gets_the_error_page() {
    let api = sample_api(20);
    let install = Install::new("made-up-path", &api.url());
    let server = Server::start(&[]);
    // A regex location passes whatever path the visitor asked for; beside the real `ct`
    // folder, one with a config of some other application, and one with nothing.
    let site = install.ct.parent().unwrap().to_path_buf();
    let other = site.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(
        other.join("config.inc.php"),
        "<?php $db_host = 'localhost';\n",
    )
    .unwrap();
    for root in [other.clone(), site.join("nothing"), site.clone()] {
        let script = root.join("admin/x.php").display().to_string();
        let response = server.request(&[
            ("SCRIPT_FILENAME", script.as_str()),
            ("SCRIPT_NAME", "/other/admin/x.php"),
            ("REQUEST_METHOD", "GET"),
            ("QUERY_STRING", ""),
        ]);
        if root != other {
            assert_eq!(response.status, 404, "{script}: {}", response.text());
        }
        assert!(
            response.text().contains("Unable to Load Account Data"),
            "{script}: {}",
            response.text()
        );
        assert!(
            !root.join("dat").exists(),
            "{script} made {}/dat",
            root.display()
        );
    }
    for endpoint in [
        "user/info",
        "user/stats",
        "pricing/current",
        "credits/history",
    ] {
        assert_eq!(
            api.calls(endpoint),
            0,
            "{endpoint} called for a made-up installation"
        );
    }
    // The real installation still works.
    assert_eq!(server.get(&install, "").status, 200);
}

#[test]
fn files_of_ours_are_private_and_hold_nothing_that_tests_a_guess_of_the_key() {
    use std::os::unix::fs::PermissionsExt;
    let api = sample_api(20);
    let install = Install::new("private-files", &api.url());
    let twin = Install::new("private-twin", &api.url());
    let server = Server::start(&[]);
    for site in [&install, &twin] {
        assert_eq!(server.get(site, "").status, 200);
    }
    // A CGI view writes the entry index beside the history.
    assert_eq!(cgi(&page_params(&install, "page=1"), &[]).status, 200);

    let dat = install.ct.join("dat");
    let mut files = Vec::new();
    let mut folders = vec![dat.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let name = |path: &std::path::Path| path.file_name().unwrap().to_string_lossy().into_owned();
    let ours: Vec<_> = files
        .iter()
        .filter(|p| name(p).contains("tokenusage") || name(p).ends_with(".idx"))
        .collect();
    for wanted in [
        "tokenusage_last_good.json",
        ".tokenusage_secret",
        ".tokenusage_history.lock",
    ] {
        assert!(
            ours.iter().any(|p| name(p) == wanted),
            "{wanted} in {ours:?}"
        );
    }
    assert!(
        ours.iter().any(|p| name(p).ends_with(".json.idx")),
        "{ours:?}"
    );
    for file in &ours {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is mode {mode:o}", file.display());
    }
    // The PHP page's own cache files keep what PHP gives them (0666 less the umask).
    let umask = unsafe {
        let old = libc::umask(0o022);
        libc::umask(old);
        old
    };
    for file in [install.pricing_cache(), today_file(&install)] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask, "{}", file.display());
    }

    // What identifies the credentials is no digest of them (md5 was an offline test of a
    // guessed key) and differs between two installations with the same credentials.
    let config = std::fs::read_to_string(install.config_path()).unwrap();
    let value = |key: &str| {
        let after = &config[config.find(&format!("'{key}'")).unwrap() + key.len() + 2..];
        let after = &after[after.find("=>").unwrap() + 2..];
        let start = after.find('\'').unwrap() + 1;
        after[start..][..after[start..].find('\'').unwrap()].to_string()
    };
    let material = format!(
        "{}\n{}\n{}\n{}",
        api.url(),
        value("license_key"),
        value("domain"),
        value("email")
    );
    let owner = |site: &Install| -> String {
        let text = std::fs::read_to_string(site.ct.join("dat/tokenusage_last_good.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["owner"].as_str().unwrap().to_string()
    };
    assert!(!owner(&install).contains(&tokenusage::data::digest::md5_hex(&material)));
    assert_eq!(owner(&install).len(), 64);
    assert_ne!(owner(&install), owner(&twin));
}

#[test]
fn the_access_log_has_a_line_per_request_and_no_cookie_session_or_token() {
    let api = sample_api(20);
    let install = Install::new("access-log", &api.url());
    let logs = TempDir::new("access-log");
    let path = logs.0.join("access.log");
    let server = Server::start(&["--access-log", path.to_str().unwrap()]);
    let page = server.get_with_cookie(&install, "page=1", "PHPSESSID=secretsession42");
    let cookie = csrf_cookie(&page).unwrap();
    let token = csrf_token(&page).unwrap();
    let nonce = cookie.split_once('=').unwrap().1.to_string();
    let refreshed = server.post_with_cookie(
        &install,
        "action=refresh_data",
        &format!("{cookie}; PHPSESSID=secretsession42"),
        &format!("token={token}"),
    );
    assert_eq!(
        refreshed.status, 303,
        "answered with a redirect to the plain page"
    );
    assert_eq!(refreshed.header("location"), Some("?"));
    // An old link with a token in its query string.
    server.get(&install, &format!("action=update_pricing&token={token}"));
    drop(server);
    let log = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(
        lines[0].contains(" GET /ct/admin/tokenusage.php?page=1 200 "),
        "{log}"
    );
    assert!(
        lines[1].contains(" POST /ct/admin/tokenusage.php?action=refresh_data 303 "),
        "{log}"
    );
    assert!(lines[2].contains("?action=update_pricing 200 "), "{log}");
    for secret in ["secretsession42", token.as_str(), nonce.as_str()] {
        assert!(!log.contains(secret), "{secret} in the access log:\n{log}");
    }
}
