//! The kept history and its insights (issue 13): the union of overlapping API windows on
//! the page and in the CSV, days that match the CSV's rows, `report --json` agreeing with
//! the page, and processes filling one database at once.

use std::collections::BTreeMap;
use std::process::Command;

use chrono::{NaiveDateTime, TimeZone};
use serde_json::Value;
use tokenusage::dev::sample_api::SampleApiOptions;

use crate::support::*;

/// "Showing X-Y of Z transactions (...)" on a page.
fn showing(html: &str) -> String {
    texts(html, ".pagination-info span")[0].clone()
}

/// The CSV download's rows (header left out).
fn csv_rows(body: &[u8]) -> Vec<csv::StringRecord> {
    let body = body
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(body);
    csv::Reader::from_reader(body)
        .records()
        .map(|r| r.unwrap())
        .collect()
}

fn report_json(install: &Install) -> Value {
    let out = Command::new(BIN)
        .args(["report", "--json", "--root"])
        .arg(&install.ct)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Writes yesterday's transaction cache file as the PHP page does, with `count` usage
/// entries (ids 1..=count) dated in October 2026, none of which the sample API sends.
fn write_yesterdays_php_cache(install: &Install, count: u32) {
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let entries: Vec<String> = (1..=count)
        .map(|id| {
            format!(
                r#"{{"id":{id},"created_at":"2026-10-{:02} {:02}:{:02}:00","transaction_type":"usage","service_type":"image_search via openai","amount":"-0.0100","tokens_used":5,"images_processed":1,"description":"job {id}"}}"#,
                1 + id % 28,
                id / 60 % 24,
                id % 60
            )
        })
        .collect();
    write_history_file(install, &yesterday, &entries);
}

#[test]
fn two_overlapping_windows_are_their_union_on_the_page_and_in_the_csv_and_outlive_clear_cache() {
    let api = sample_api(12_000);
    // The API's window first stops 2,000 transactions short of the newest.
    api.hide_newest(2_000);
    let install = Install::new("kept-union", &api.url());
    let server = Server::start(&[]);
    let first = server.get(&install, "").text();
    assert_eq!(
        showing(&first),
        "Showing 1-300 of 10,000 transactions (Page 1 of 34)"
    );
    // Then 2,000 more happen; the window of 10,000 moves and the oldest 2,000 drop out
    // of the API's answer, but not out of the page.
    api.hide_newest(0);
    let refreshed = server.click(&install, "refresh_data").text();
    assert_eq!(
        showing(&refreshed),
        "Showing 1-300 of 12,000 transactions (Page 1 of 40)"
    );
    let csv = csv_rows(&server.get(&install, "action=download").body);
    assert_eq!(csv.len(), 12_000);
    // Newest first, the oldest transaction (only in the first window) last.
    let dates: Vec<&str> = csv.iter().map(|r| r.get(0).unwrap()).collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let last_page = server.get(&install, "page=40").text();
    assert_eq!(
        showing(&last_page),
        "Showing 11701-12000 of 12,000 transactions (Page 40 of 40)"
    );

    let cleared = server.click(&install, "clear_cache").text();
    assert!(install.transaction_files().is_empty() || cleared.contains("Cleared"));
    let after = server.get(&install, "").text();
    assert_eq!(
        showing(&after),
        "Showing 1-300 of 12,000 transactions (Page 1 of 40)"
    );
    assert_eq!(
        csv_rows(&server.get(&install, "action=download").body).len(),
        12_000
    );
    assert_eq!(
        api.calls("credits/history"),
        3,
        "first view, refresh, after clearing"
    );
}

#[test]
fn each_days_bar_is_its_local_days_usage_in_the_csv_and_the_report_agrees_with_the_page() {
    // The newest transaction now, the installation in New York: days end at local
    // midnight, not UTC's.
    let api = sample_api_with(SampleApiOptions {
        transactions: 10_000,
        anchor: Some(chrono::Utc::now().timestamp()),
        ..SampleApiOptions::default()
    });
    let install = Install::new("kept-days", &api.url());
    install.edit_config(
        "date_default_timezone_set('UTC');",
        "date_default_timezone_set('America/New_York');",
    );
    let server = Server::start(&[]);
    let page = server.get(&install, "").text();
    assert!(page.contains("America/New_York"), "the page names its zone");

    // Usage per local day, from the CSV (its Date column is UTC, as the PHP page's).
    let zone: chrono_tz::Tz = "America/New_York".parse().unwrap();
    let mut usage: BTreeMap<String, f64> = BTreeMap::new();
    let csv = csv_rows(&server.get(&install, "action=download").body);
    let (mut spend, mut purchases) = (0.0, 0.0);
    for row in &csv {
        let at = NaiveDateTime::parse_from_str(&row[0], "%Y-%m-%d %H:%M:%S").unwrap();
        let day = zone.from_utc_datetime(&at).date_naive().to_string();
        let amount: f64 = row[3].parse().unwrap();
        match &row[1] {
            "usage" => {
                *usage.entry(day).or_default() += -amount;
                spend += -amount;
            }
            "purchase" => purchases += amount,
            _ => {}
        }
    }

    let report = report_json(&install);
    assert_eq!(report["time_zone"], "America/New_York");
    let daily = report["daily"].as_array().unwrap();
    assert_eq!(daily.len(), 30);
    for day in daily {
        let date = day["date"].as_str().unwrap();
        let expected = usage.get(date).copied().unwrap_or(0.0);
        let got = day["spend"].as_f64().unwrap();
        assert!((got - expected).abs() < 1e-6, "{date}: {got} != {expected}");
    }
    assert!(
        daily
            .iter()
            .filter(|d| d["spend"].as_f64() > Some(0.0))
            .count()
            >= 20
    );

    // The page's daily table shows the same figures, oldest first.
    let table_spend: Vec<f64> = texts(
        &page,
        "details.chart-table table tbody tr td:nth-of-type(1)",
    )
    .into_iter()
    .take(30)
    .map(|cell| cell.trim_start_matches('$').parse().unwrap())
    .collect();
    assert_eq!(table_spend.len(), 30);
    for (shown, day) in table_spend.iter().zip(daily) {
        let spend = day["spend"].as_f64().unwrap();
        assert!(
            (shown - spend).abs() < 0.00005,
            "{}: {shown} != {spend}",
            day["date"]
        );
    }

    // Totals: the page's count, the CSV's rows and sums, the report's totals.
    let totals = &report["totals"];
    assert_eq!(totals["transactions"], csv.len());
    assert!((totals["spend"].as_f64().unwrap() - spend).abs() < 1e-6);
    assert!((totals["purchases"].as_f64().unwrap() - purchases).abs() < 1e-6);
    assert!(showing(&page).ends_with(&format!("of {} transactions (Page 1 of 34)", "10,000")));
    assert_eq!(report["balance"], 12.3456);
    // The runway the page states is the report's.
    let days = report["runway"]["days"].as_f64().unwrap();
    let headline = texts(&page, "#runway .runway-headline").join(" ");
    assert!(
        headline.contains(&format!("about {} days", days.round())),
        "{headline} vs {days}"
    );
}

#[test]
fn processes_filling_one_kept_history_at_once_lose_nothing() {
    let api = sample_api(10_000);
    let install = Install::new("kept-race", &api.url());
    // Yesterday's cache file of the PHP page holds 3,000 transactions the API no longer
    // sends.
    write_yesterdays_php_cache(&install, 3000);
    // Four processes at once: two CGI views and two reports.
    let views: Vec<_> = (0..2)
        .map(|_| {
            let params = page_params(&install, "");
            std::thread::spawn(move || cgi(&params, &[]).text())
        })
        .collect();
    let reports: Vec<_> = (0..2)
        .map(|_| {
            Command::new(BIN)
                .args(["report", "--json", "--root"])
                .arg(&install.ct)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for view in views {
        let html = view.join().unwrap();
        assert!(html.contains("Showing 1-300 of"), "every view is a page");
    }
    for report in reports {
        let report = report.wait_with_output().unwrap();
        assert!(
            report.status.success(),
            "{}",
            String::from_utf8_lossy(&report.stderr)
        );
    }
    let server = Server::start(&[]);
    assert_eq!(
        showing(&server.get(&install, "").text()),
        "Showing 1-300 of 13,000 transactions (Page 1 of 44)"
    );
    assert_eq!(report_json(&install)["totals"]["transactions"], 13_000);
    assert_eq!(
        csv_rows(&server.get(&install, "action=download").body).len(),
        13_000
    );
}

#[test]
fn check_alerts_on_the_runway_and_metrics_show_it_with_each_services_spend() {
    let api = sample_api_with(SampleApiOptions {
        transactions: 10_000,
        anchor: Some(chrono::Utc::now().timestamp()),
        ..SampleApiOptions::default()
    });
    let install = Install::new("kept-ops", &api.url());
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .arg("--root")
            .arg(&install.ct)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let days = report_json(&install)["runway"]["days"].as_f64().unwrap();
    assert!(
        (3.0..14.0).contains(&days),
        "the sample's balance lasts about a week: {days}"
    );
    let (code, text) = run(&["check", "--warning-days", "14", "--critical-days", "3"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.starts_with("TOKENUSAGE WARNING - $12.35 left"),
        "{text}"
    );
    assert!(text.contains("; runway about"), "{text}");
    assert!(
        text.contains(&format!(" runway_days={days:.1};14:;3:;0;")),
        "{text}"
    );
    let (code, text) = run(&["check", "--critical-days", "30"]);
    assert_eq!(code, Some(2), "{text}");

    let (code, metrics) = run(&["metrics"]);
    assert_eq!(code, Some(0));
    let runway: f64 = metrics
        .lines()
        .find(|l| l.starts_with("tokenusage_runway_seconds{"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap();
    assert!(
        (runway - days * 86_400.0).abs() < 600.0,
        "{runway} vs {days}"
    );
    let services: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("tokenusage_spend_dollars{"))
        .collect();
    assert!(
        services
            .iter()
            .any(|l| l.contains("service=\"image_search via CTZ-AI\"")),
        "{metrics}"
    );
    assert!(!metrics.contains("openai"), "services are branded");
}

#[test]
fn a_process_killed_while_filling_the_kept_history_leaves_all_of_it_or_none() {
    let api = sample_api(10);
    let install = Install::new("kept-kill", &api.url());
    // The PHP page's cache file of yesterday with 40,000 transactions: read into the
    // kept history at the first view, in one transaction.
    write_yesterdays_php_cache(&install, 40_000);
    let database = install.ct.join("dat/tokenusage_history.sqlite");
    let kept = || -> (i64, i64) {
        let db = rusqlite::Connection::open(&database).unwrap();
        let rows = db
            .query_row("SELECT count(*) FROM tx", [], |r| r.get(0))
            .unwrap();
        let counted = db
            .query_row("SELECT coalesce(sum(transactions), 0) FROM days", [], |r| {
                r.get(0)
            })
            .unwrap();
        (rows, counted)
    };
    let mut seen = Vec::new();
    for delay_ms in [30, 80, 150, 250, 400, 700] {
        let server = Server::start(&[]);
        let params = page_params(&install, "");
        let socket = server.socket.clone();
        let view = std::thread::spawn(move || {
            let mut stream = connect(&socket, std::time::Duration::from_secs(5)).ok()?;
            try_fastcgi_request(&mut stream, &params).ok()
        });
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        server.kill9();
        let _ = view.join();
        if !database.exists() {
            seen.push(0);
            continue;
        }
        let (rows, counted) = kept();
        assert_eq!(rows, counted, "the day sums count exactly the kept rows");
        // Two fills, each whole or not at all: the API's window of 10 and the file.
        assert!(
            [0, 10, 40_000, 40_010].contains(&rows),
            "all of a fill or none of it: {rows}"
        );
        seen.push(rows);
    }
    // Whatever was killed, a view now shows everything.
    let server = Server::start(&[]);
    assert_eq!(
        showing(&server.get(&install, "").text()),
        "Showing 1-300 of 40,010 transactions (Page 1 of 134)",
        "kept after each kill: {seen:?}"
    );
}

#[test]
fn with_the_cache_cleared_and_the_api_down_the_kept_history_is_shown_and_downloaded() {
    let api = sample_api(25);
    let install = Install::new("kept-stale", &api.url());
    let server = Server::start(&[]);
    server.get(&install, "");
    // The license server fails before Clear Cache: its own view can fetch nothing.
    api.set_fault(tokenusage::dev::sample_api::Fault::Status500);
    server.click(&install, "clear_cache");
    assert!(install.transaction_files().is_empty());
    let page = server.get(&install, "").text();
    assert_eq!(
        showing(&page),
        "Showing 1-25 of 25 transactions (Page 1 of 1)"
    );
    let warnings = texts(&page, ".notice-warning").join(" ");
    assert!(warnings.contains("API returned HTTP 500"), "{warnings}");
    let csv = server.get(&install, "action=download");
    assert_eq!(csv.header("Content-Type"), Some("text/csv; charset=UTF-8"));
    assert_eq!(csv_rows(&csv.body).len(), 25);
}
