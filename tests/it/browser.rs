//! The page in a real headless Chromium, checked through chromedriver's W3C WebDriver API:
//! keyboard paging (mirrored in Arabic, which reads right to left), the 10-minute auto
//! refresh, an action's redirect to the plain page, the low-balance banner, the CSV
//! download, the debug page's masked key, the phone layout, and that the page asks only
//! loopback for anything and logs no console error. The accessibility checks
//! (`browser_a11y.rs`) and the screenshots (`browser_screenshots.rs`) use the harness here.
//!
//! I/O: serves the real page in-process over HTTP on loopback (the development server,
//! `HttpServer`, with the demo's `page_handler`) against the sample license API; starts
//! `/usr/bin/chromedriver` on a free loopback port, which starts `/usr/bin/chromium` with a
//! fresh profile in a temporary folder; talks to chromedriver with ureq. Downloads land in
//! that folder. Every process is killed and every temporary folder removed on drop.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokenusage::app::{Site, SiteOptions};
use tokenusage::auth::Auth;
use tokenusage::dev::demo::{PAGE_PATH, page_handler};
use tokenusage::dev::http::HttpServer;
use tokenusage::dev::sample_api::{ENDPOINTS, SampleApi, SampleApiOptions};

use crate::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Without these Chromium tries to reach Google's services, and the network is closed.
/// `--lang`: the Accept-Language sent, so a page not told its language is English.
const CHROMIUM_FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--lang=en-US",
];
/// WebDriver's key codes.
const ARROW_LEFT: char = '\u{E012}';
const ARROW_RIGHT: char = '\u{E014}';
/// The longest any polling wait lasts.
const WAIT: Duration = Duration::from_secs(10);
/// The longest one WebDriver call lasts (starting a browser is the slow one).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How WebDriver names an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// A phone's viewport (an iPhone 12 to 15's CSS pixels).
pub(crate) const PHONE: (u32, u32) = (390, 844);
/// The desktop window.
pub(crate) const DESKTOP: (u32, u32) = (1280, 900);

#[test]
fn arrow_keys_page_through_the_history() {
    let server = PageServer::start("keys", 1000);
    let browser = WebDriver::start();
    browser.navigate(&server.page("page=2"));
    assert!(page_info(&browser.page_source()).ends_with("(Page 2 of 4)"));

    browser.press(ARROW_RIGHT);
    browser.wait_for_url(&server.page("page=3"));
    assert_eq!(
        page_info(&browser.page_source()),
        "Showing 601-900 of 1,000 transactions (Page 3 of 4)"
    );

    browser.press(ARROW_LEFT);
    browser.wait_for_url(&server.page("page=2"));
    assert!(page_info(&browser.page_source()).ends_with("(Page 2 of 4)"));
    browser.press(ARROW_LEFT);
    browser.wait_for_url(&server.page("page=1"));
    assert_eq!(
        page_info(&browser.page_source()),
        "Showing 1-300 of 1,000 transactions (Page 1 of 4)"
    );

    // Page 1 has no previous page: the key does nothing, so the same document stays.
    browser.execute("window.stayedHere = true;");
    browser.press(ARROW_LEFT);
    thread::sleep(Duration::from_millis(500));
    assert_eq!(browser.current_url(), server.page("page=1"));
    assert_eq!(
        browser.execute("return window.stayedHere === true;"),
        json!(true),
        "ArrowLeft on page 1 loaded a new document"
    );
    assert!(page_info(&browser.page_source()).ends_with("(Page 1 of 4)"));
}

#[test]
fn the_arabic_page_reads_right_to_left_and_its_arrow_keys_follow() {
    let server = PageServer::start("rtl", 1000);
    let browser = WebDriver::start();

    // English first, for the mirror image: the actions start at the left.
    browser.navigate(&server.page("lang=en"));
    let english = browser.execute(LAYOUT_SCRIPT);
    assert_eq!(english["dir"], json!("ltr"), "English: {english}");
    assert!(
        english["firstButtonFromStart"].as_f64().unwrap_or(f64::MAX) < 4.0,
        "English: the actions' first button is not at the left: {english}"
    );

    browser.navigate(&server.page("lang=ar&page=2"));
    let arabic = browser.execute(LAYOUT_SCRIPT);
    assert_eq!(
        (&arabic["lang"], &arabic["dir"]),
        (&json!("ar"), &json!("rtl")),
        "?lang=ar: the page must say <html lang=\"ar\" dir=\"rtl\"> (language negotiation \
         and Arabic's direction): {arabic}"
    );
    assert_eq!(
        arabic["computedDirection"],
        json!("rtl"),
        "?lang=ar: the body's computed direction: {arabic}"
    );
    assert!(
        arabic["firstButtonFromStart"].as_f64().unwrap_or(f64::MAX) < 4.0,
        "Arabic: the actions' first button is not at the right edge of their bar: {arabic}"
    );
    assert!(
        arabic["firstButtonCenter"].as_f64().unwrap_or(0.0)
            > arabic["width"].as_f64().unwrap_or(0.0) / 2.0,
        "Arabic: the actions' first button is in the left half: {arabic}"
    );

    // Right to left, the next page is to the left: ArrowLeft goes forward.
    browser.mark_document();
    browser.press(ARROW_LEFT);
    browser.wait_for_new_document("ArrowLeft in Arabic");
    let url = browser.current_url();
    assert_eq!(
        query_param(&url, "page").as_deref(),
        Some("3"),
        "ArrowLeft on page 2 in Arabic must go to the next page, page 3 (the script swaps \
         the arrows when dir=\"rtl\"): {url}"
    );
    assert_eq!(
        browser.execute("return document.documentElement.lang;"),
        json!("ar"),
        "the next page forgot the language chosen with ?lang=ar (tokenusage_lang cookie)"
    );
    browser.mark_document();
    browser.press(ARROW_RIGHT);
    browser.wait_for_new_document("ArrowRight in Arabic");
    let url = browser.current_url();
    assert_eq!(
        query_param(&url, "page").as_deref(),
        Some("2"),
        "ArrowRight on page 3 in Arabic must go back to page 2: {url}"
    );
}

/// The page's language and direction, and where the actions' first button sits: its
/// distance from the bar's start edge (left in LTR, right in RTL) and its centre.
const LAYOUT_SCRIPT: &str = r#"
    const root = document.documentElement;
    const bar = document.querySelector("nav.actions");
    const first = bar && bar.querySelector(".button");
    const r = first ? first.getBoundingClientRect() : null;
    const b = bar ? bar.getBoundingClientRect() : null;
    const rtl = root.dir === "rtl";
    return {
        lang: root.lang,
        dir: root.dir || "ltr",
        computedDirection: getComputedStyle(document.body).direction,
        width: root.clientWidth,
        firstButton: first ? first.textContent.trim() : null,
        firstButtonFromStart: r ? (rtl ? b.right - r.right : r.left - b.left) : null,
        firstButtonCenter: r ? (r.left + r.right) / 2 : null,
    };
"#;

#[test]
fn the_page_refreshes_itself_after_10_minutes_with_action_refresh_data() {
    let server = PageServer::start("refresh", 1000);
    let browser = WebDriver::start();
    browser.navigate(&server.page(""));
    let first = browser.page_source();
    assert!(page_info(&first).ends_with("(Page 1 of 4)"));
    assert_eq!(server.api.calls("credits/history"), 1);
    // The refresh is a form that posts the CSRF token, so no URL carries it.
    let refresh = attrs(&first, "form#auto-refresh", "action").remove(0);
    assert_eq!(refresh, "?action=refresh_data");
    assert_eq!(
        attrs(&first, "form#auto-refresh", "method"),
        ["post"],
        "the auto refresh must post"
    );
    let tokens = attrs(&first, "form input[name=token]", "value");
    assert!(
        tokens.len() > 1 && !tokens[0].is_empty() && tokens.iter().all(|t| *t == tokens[0]),
        "the auto refresh's form must carry the page's CSRF token: {tokens:?}"
    );
    assert_eq!(
        attrs(&first, "form#auto-refresh input[name=token]", "value"),
        [tokens[0].clone()]
    );

    // 9 min 50 s pass on Chromium's virtual clock: no refresh yet.
    browser.mark_document();
    browser.advance_virtual_time(Duration::from_secs(590));
    assert_eq!(browser.current_url(), server.page(""));
    assert!(
        !browser
            .page_source()
            .contains("Data refreshed successfully")
    );
    assert_eq!(server.api.calls("credits/history"), 1);

    // 20 s more crosses the 10 minutes: the page asks for a refresh, which fetches the
    // history afresh though the first view cached it.
    browser.advance_virtual_time_by(Duration::from_secs(20));
    wait_for("the refresh to reach the server", || {
        (server.api.calls("credits/history") == 2).then_some(())
    });
    // The posted form's answer, and the page it redirects to, load on the virtual clock
    // too (a GET's did within the first grant; a form submission's does not): a little
    // more time lets them finish.
    let refreshed = wait_for("the refresh's answer to load", || {
        browser.advance_virtual_time_by(Duration::from_secs(5));
        thread::sleep(Duration::from_millis(100));
        // New document first: a source read before it could still be the old page's.
        if !browser.is_new_document() {
            return None;
        }
        browser.try_page_source().filter(|html| !html.is_empty())
    });
    let url = browser.current_url();
    assert!(
        !url.contains("action="),
        "after the refresh the browser must land on the plain page (303 to `?`), not stay \
         on the action's URL, where a reload posts again: {url}"
    );
    assert_eq!(
        texts(&refreshed, ".notice-success"),
        ["Data refreshed successfully"]
    );
    assert!(page_info(&refreshed).ends_with("(Page 1 of 4)"));
    assert_eq!(server.api.calls("credits/history"), 2);
}

#[test]
fn refresh_data_lands_on_the_plain_page_and_a_reload_repeats_nothing() {
    let server = PageServer::start("prg", 1000);
    let browser = WebDriver::start();
    browser.navigate(&server.page(""));
    assert_eq!(server.api.calls("credits/history"), 1);

    browser.mark_document();
    let button = browser.find(r#"nav.actions form[action*="action=refresh_data"] button"#);
    browser.click(&button);
    browser.wait_for_new_document("Refresh Data's answer");
    let url = browser.current_url();
    assert!(
        !url.contains("action="),
        "Refresh Data must answer with a 303 redirect to the plain page; the browser shows \
         {url}"
    );
    let landed = browser.page_source();
    assert_eq!(
        texts(&landed, ".notice-success"),
        ["Data refreshed successfully"],
        "the plain page after Refresh Data shows its message once"
    );
    assert_eq!(
        server.api.calls("credits/history"),
        2,
        "Refresh Data fetches the history afresh, once"
    );
    let calls = api_calls(&server.api);

    browser.mark_document();
    browser.reload();
    browser.wait_for_new_document("the reload");
    assert_eq!(
        browser.current_url(),
        url,
        "the reload stays on the plain page"
    );
    assert_eq!(
        api_calls(&server.api),
        calls,
        "a reload of the page after Refresh Data called the license API again"
    );
    let reloaded = browser.page_source();
    assert!(
        texts(&reloaded, ".notice-success").is_empty(),
        "the reload showed Refresh Data's message again: {:?}",
        texts(&reloaded, ".notice-success")
    );
    assert!(page_info(&reloaded).ends_with("(Page 1 of 4)"));
}

/// Calls made so far to each endpoint of the sample API.
fn api_calls(api: &SampleApi) -> Vec<(&'static str, usize)> {
    ENDPOINTS.iter().map(|e| (*e, api.calls(e))).collect()
}

#[test]
fn the_low_balance_banner_shows_under_one_dollar_and_not_at_one() {
    let browser = WebDriver::start();
    for (balance, shown) in [(0.99, true), (1.00, false)] {
        let options = SampleApiOptions {
            transactions: 20,
            balance,
            ..SampleApiOptions::default()
        };
        let server = PageServer::start_with("banner", options, |_| {});
        browser.navigate(&server.page(""));
        let banner = browser.execute(
            r#"const b = document.querySelector(".banner-low-balance");
               if (!b) return null;
               const r = b.getBoundingClientRect();
               return {visible: r.width > 0 && r.height > 0 && getComputedStyle(b).visibility !== "hidden",
                       text: b.textContent.trim().replace(/\s+/g, " ")};"#,
        );
        let visible = banner["visible"] == json!(true);
        assert_eq!(
            visible,
            shown,
            "balance ${balance:.2}: the low-balance banner must {} (it shows under $1.00): \
             {banner}",
            if shown { "show" } else { "not show" }
        );
        if shown {
            assert!(
                banner["text"]
                    .as_str()
                    .unwrap_or("")
                    .to_lowercase()
                    .contains("low balance"),
                "{banner}"
            );
        }
    }
}

#[test]
fn download_saves_a_csv_that_starts_with_the_utf8_bom() {
    let server = PageServer::start("download", 1000);
    let browser = WebDriver::start_with(Setup {
        downloads: true,
        ..Setup::default()
    });
    browser.navigate(&server.page(""));
    let link = browser.find(r#"nav.actions a[href*="action=download"]"#);
    browser.click(&link);
    let folder = browser.downloads();
    let (name, bytes) = wait_for("the download to finish", || {
        let entries = fs::read_dir(&folder).ok()?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".crdownload") || name.starts_with('.') {
                continue;
            }
            let bytes = fs::read(entry.path()).ok()?;
            return (!bytes.is_empty()).then_some((name, bytes));
        }
        None
    });
    assert!(name.ends_with(".csv"), "the download's name: {name}");
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "{name} must start with the UTF-8 BOM, so Excel reads it as UTF-8; it starts with \
         {:02X?}",
        &bytes[..bytes.len().min(8)]
    );
    let text = String::from_utf8(bytes[3..].to_vec()).expect("UTF-8 after the BOM");
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .is_some_and(|header| header.starts_with("Date,")),
        "the English header: {:?}",
        text.lines().next()
    );
    assert_eq!(lines.count(), 1000, "a line per transaction");
    // The download is an answer, not a page: the dashboard stays.
    assert_eq!(browser.current_url(), server.page(""));
}

#[test]
fn the_debug_page_shows_only_the_start_of_the_license_key() {
    let key = sample_license_key();
    assert!(
        key.len() > 8,
        "the sample key is longer than what is shown: {key}"
    );
    let server = PageServer::start("debug", 20);
    let browser = WebDriver::start();
    browser.navigate(&server.page("debug=1"));
    let html = browser.page_source();
    let text = browser
        .execute("return document.body.innerText;")
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        !html.contains(&key) && !text.contains(&key),
        "the debug page shows the whole license key"
    );
    let masked: Vec<String> = texts(&html, "#debug-config code")
        .into_iter()
        .filter(|code| code.ends_with("..."))
        .collect();
    let [shown] = masked.as_slice() else {
        panic!("the debug page shows no key ending in \"...\": {masked:?}")
    };
    let start = shown.trim_end_matches("...");
    assert!(
        !start.is_empty() && start.chars().count() <= 8 && key.starts_with(start),
        "the key shown must be at most its first 8 characters, then \"...\": {shown}"
    );
}

/// The license key in the repository's sample config (`ct/dat/config.inc.php`).
fn sample_license_key() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ct/dat/config.inc.php");
    let config = fs::read_to_string(&path).unwrap();
    let after = config
        .split_once("'license_key'")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no 'license_key' in {}", path.display()));
    after.split('\'').next().unwrap().to_string()
}

#[test]
fn at_phone_width_nothing_scrolls_sideways_and_every_amount_is_in_view() {
    let server = PageServer::start("phone", 1000);
    let browser = WebDriver::start();
    browser.set_viewport(PHONE, true);
    browser.navigate(&server.page(""));
    browser.wait_until_complete();
    let layout = browser.execute(
        r#"const root = document.documentElement;
           const rows = [...document.querySelectorAll("table.transactions tbody tr")];
           const out = [];
           for (const row of rows) {
               const r = row.getBoundingClientRect();
               if (r.width === 0 || r.height === 0) continue;
               const cell = row.querySelector('[class*="amount-"]') || row.cells[3];
               const c = cell.getBoundingClientRect();
               out.push({text: cell.textContent.trim(), left: c.left + scrollX, right: c.right + scrollX});
           }
           return {innerWidth, clientWidth: root.clientWidth, scrollWidth: root.scrollWidth,
                   rows: rows.length, amounts: out};"#,
    );
    let number = |key: &str| layout[key].as_f64().unwrap_or(f64::NAN);
    assert_eq!(
        number("innerWidth"),
        f64::from(PHONE.0),
        "the emulated width: {layout}"
    );
    assert!(
        number("scrollWidth") <= number("clientWidth"),
        "at {} px the page scrolls sideways: scrollWidth {} > clientWidth {} (below 640 px \
         the page must fit its width)",
        PHONE.0,
        number("scrollWidth"),
        number("clientWidth")
    );
    let amounts = layout["amounts"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        layout["rows"],
        json!(300),
        "the first page's 300 transactions"
    );
    assert!(
        !amounts.is_empty(),
        "no visible transaction row at {} px",
        PHONE.0
    );
    let width = f64::from(PHONE.0);
    let outside: Vec<&Value> = amounts
        .iter()
        .filter(|a| {
            let (left, right) = (
                a["left"].as_f64().unwrap_or(-1.0),
                a["right"].as_f64().unwrap_or(f64::MAX),
            );
            left < -0.5 || right > width + 0.5
        })
        .collect();
    assert!(
        outside.is_empty(),
        "{} of {} visible rows have their amount outside 0..{width} px (below 640 px each \
         transaction must be a card that fits the screen), e.g. {:?}",
        outside.len(),
        amounts.len(),
        &outside[..outside.len().min(3)]
    );
}

#[test]
fn every_request_stays_on_loopback_and_the_console_stays_clean() {
    let server = PageServer::start("loopback", 1000);
    let browser = WebDriver::start_with(Setup {
        logs: true,
        ..Setup::default()
    });
    // A tour of what a visit does: the page, paging, an action, the debug page, the other
    // languages, the error page's retry link and the phone layout.
    browser.navigate(&server.page(""));
    browser.wait_until_complete();
    browser.mark_document();
    browser.press(ARROW_RIGHT);
    browser.wait_for_new_document("ArrowRight");
    browser.mark_document();
    browser.click(&browser.find(r#"nav.actions form[action*="action=refresh_data"] button"#));
    browser.wait_for_new_document("Refresh Data's answer");
    for query in ["debug=1", "lang=ar", "lang=de&page=2", "lang=en"] {
        browser.navigate(&server.page(query));
        browser.wait_until_complete();
    }
    browser.set_viewport(PHONE, true);
    browser.navigate(&server.page(""));
    browser.wait_until_complete();

    let requests: Vec<String> = browser
        .log("performance")
        .iter()
        .filter_map(|entry| {
            let message: Value = serde_json::from_str(entry["message"].as_str()?).ok()?;
            let message = &message["message"];
            (message["method"] == json!("Network.requestWillBeSent"))
                .then(|| {
                    message["params"]["request"]["url"]
                        .as_str()
                        .map(str::to_string)
                })
                .flatten()
        })
        .collect();
    assert!(
        requests.len() >= 8,
        "the performance log saw too few requests: {requests:?}"
    );
    let asked = |what: &str| requests.iter().any(|url| url.contains(what));
    assert!(
        asked("asset=dashboard.css") && asked("asset=dashboard.js"),
        "{requests:#?}"
    );
    let foreign: Vec<&String> = requests
        .iter()
        .filter(|url| !stays_on_loopback(url))
        .collect();
    assert!(
        foreign.is_empty(),
        "the page asked for something off loopback (a CDN, a font, a tracker?): {foreign:#?}"
    );

    let errors: Vec<String> = browser
        .log("browser")
        .iter()
        .filter(|entry| entry["level"] == json!("SEVERE"))
        .map(|entry| entry["message"].as_str().unwrap_or_default().to_string())
        // The browser asks the site's root for /favicon.ico on its own; the page names
        // none, and a real site (unlike the preview, which serves one path) has its own.
        .filter(|message| !message.contains("/favicon.ico "))
        .collect();
    assert!(
        errors.is_empty(),
        "console errors (a CSP violation, a missing asset, a script error?): {errors:#?}"
    );
}

/// Whether a URL the browser asked for stays on this machine: loopback, or the browser's
/// own (`data:`, `about:`, and the `chrome://` pages of the tab it starts with).
fn stays_on_loopback(url: &str) -> bool {
    let own = ["data:", "about:", "chrome://", "chrome-untrusted://"];
    if own.iter().any(|scheme| url.starts_with(scheme)) {
        return true;
    }
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    matches!(host, "127.0.0.1" | "localhost" | "::1")
}

#[test]
fn only_loopback_urls_count_as_staying_here() {
    for url in [
        "http://127.0.0.1:8780/ct/admin/tokenusage.php?page=2",
        "http://localhost/x",
        "http://[::1]:80/",
        "data:image/svg+xml,<svg/>",
        "about:blank",
        "chrome://new-tab-page/",
    ] {
        assert!(stays_on_loopback(url), "{url}");
    }
    for url in [
        "https://fonts.googleapis.com/css",
        "http://127.0.0.1.example.com/",
        "http://evil@example.com/",
        "http://localhost.example.com:80/",
        "ws://127.0.0.1/",
        "blob:http://example.com/1",
    ] {
        assert!(!stays_on_loopback(url), "{url}");
    }
}

/// A query parameter's value in a URL.
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1.split('#').next()?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| value.to_string())
    })
}

/// The "Showing a-b of n transactions (Page p of q)" line.
fn page_info(html: &str) -> String {
    texts(html, ".pagination-info span")
        .into_iter()
        .next()
        .unwrap_or_default()
}

/// Width and height from a PNG's IHDR chunk; panics unless `png` is a whole PNG (its
/// signature, IHDR first and IEND last).
pub(crate) fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 24 && &png[12..16] == b"IHDR", "no IHDR chunk");
    assert!(
        png.ends_with(b"\0\0\0\0IEND\xAE\x42\x60\x82"),
        "the PNG does not end with IEND: cut short?"
    );
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    (be(16), be(20))
}

/// Polls `probe` every 50 ms until it answers, for at most [`WAIT`].
pub(crate) fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "waited {WAIT:?} for {what} in vain"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// The real page served over HTTP on loopback, in-process, against a sample API.
pub(crate) struct PageServer {
    // Field order is drop order: the page stops before the API it calls.
    server: HttpServer,
    pub(crate) api: SampleApi,
    _install: Install,
}

impl PageServer {
    /// A sample history of `transactions`, its newest on the tests' fixed day.
    pub(crate) fn start(name: &str, transactions: usize) -> Self {
        let options = SampleApiOptions {
            transactions,
            ..SampleApiOptions::default()
        };
        Self::start_with(name, options, |_| {})
    }

    /// A sample API answering as `options` say; `prepare` may change the installation
    /// (its config, say) before the first request.
    pub(crate) fn start_with(
        name: &str,
        options: SampleApiOptions,
        prepare: impl FnOnce(&Install),
    ) -> Self {
        let api = sample_api_with(options);
        let install = Install::new(name, &api.url());
        prepare(&install);
        let site = Site::new(SiteOptions {
            root: Some(install.ct.clone()),
            ..SiteOptions::new(Auth::None)
        })
        .unwrap();
        let handler = page_handler(site, &install.ct);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let shutdown = Arc::new(AtomicBool::new(false));
        let server = HttpServer::start(listener, 4, handler, shutdown).unwrap();
        PageServer {
            server,
            api,
            _install: install,
        }
    }

    /// The page's URL with this query string ("" for none).
    pub(crate) fn page(&self, query: &str) -> String {
        match query {
            "" => format!("http://{}{PAGE_PATH}", self.server.addr()),
            query => format!("http://{}{PAGE_PATH}?{query}", self.server.addr()),
        }
    }
}

/// A chromedriver process on a free loopback port; killed on drop, with the browser it
/// started if that outlived it.
struct ChromeDriver {
    child: Child,
    base: String,
    agent: ureq::Agent,
    browser_pid: Option<u32>,
    /// The browser's profile, its downloads and chromedriver's log; removed last.
    dir: TempDir,
}

impl ChromeDriver {
    fn start() -> Self {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing: the browser tests need Chromium and chromedriver \
                 (Debian: apt-get install chromium chromium-driver)"
            );
        }
        let dir = TempDir::new("chromium");
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                dir.0.join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(CALL_TIMEOUT))
            .http_status_as_error(false)
            .proxy(None)
            .build()
            .new_agent();
        let mut driver = ChromeDriver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            agent,
            browser_pid: None,
            dir,
        };
        wait_for("chromedriver to be ready", || {
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("chromedriver exited with {status}:\n{}", driver.log());
            }
            let (status, body) = driver.request("GET", "/status", None).ok()?;
            (status == 200 && body["value"]["ready"] == json!(true)).then_some(())
        });
        driver
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.0.join("chromedriver.log")).unwrap_or_default()
    }

    fn profile(&self) -> PathBuf {
        self.dir.0.join("profile")
    }

    fn downloads(&self) -> PathBuf {
        self.dir.0.join("downloads")
    }

    /// One WebDriver call: status and decoded JSON body.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ureq::Error> {
        let url = format!("{}{path}", self.base);
        let mut response = match (method, body) {
            ("GET", None) => self.agent.get(&url).call()?,
            ("DELETE", None) => self.agent.delete(&url).call()?,
            ("POST", Some(body)) => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.to_string())?,
            _ => unreachable!("{method} {path}"),
        };
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok((status, json))
    }

    /// Kills the browser if it is still running, after checking that the process is the
    /// one started on this profile (the pid may have been reused).
    fn kill_leftover_browser(&self) {
        let Some(pid) = self.browser_pid else { return };
        let profile = self.profile().display().to_string();
        let ours = || {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&profile))
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while ours() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        if ours() {
            // SAFETY: kill(2) on a pid whose command line names our profile.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on our own child, which has not been reaped.
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while let Ok(None) = self.child.try_wait() {
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.wait();
        }
        self.kill_leftover_browser();
    }
}

/// What a browser session records besides the page.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Setup {
    /// The performance (DevTools network events) and browser (console) logs, read with
    /// [`WebDriver::log`].
    pub(crate) logs: bool,
    /// Downloads are saved, unasked, in [`WebDriver::downloads`].
    pub(crate) downloads: bool,
}

/// A headless Chromium session; the browser quits on drop, then chromedriver is killed.
pub(crate) struct WebDriver {
    driver: ChromeDriver,
    session: String,
}

impl WebDriver {
    pub(crate) fn start() -> Self {
        Self::start_with(Setup::default())
    }

    pub(crate) fn start_with(setup: Setup) -> Self {
        let mut driver = ChromeDriver::start();
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", driver.profile().display()));
        args.push(format!("--window-size={},{}", DESKTOP.0, DESKTOP.1));
        let mut prefs = json!({"intl": {"accept_languages": "en-US,en"}});
        if setup.downloads {
            fs::create_dir_all(driver.downloads()).unwrap();
            prefs["download"] = json!({
                "default_directory": driver.downloads(),
                "prompt_for_download": false,
                "directory_upgrade": true,
            });
        }
        // "eager": navigations are done at DOMContentLoaded. A document loaded after the
        // virtual clock stopped never fires `load`, and the "normal" strategy would wait
        // for it until the call times out.
        let mut always = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "eager",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args, "prefs": prefs},
        });
        if setup.logs {
            always["goog:loggingPrefs"] = json!({"performance": "ALL", "browser": "ALL"});
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": always}});
        let value = call(&driver, "POST", "/session", Some(&capabilities));
        let session = value["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        driver.browser_pid = value["capabilities"]["goog:processID"]
            .as_u64()
            .and_then(|pid| u32::try_from(pid).ok());
        WebDriver { driver, session }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        call(&self.driver, method, &path, body.as_ref())
    }

    /// A call that may fail (while a page loads, say): its value, or the error's message.
    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let path = format!("/session/{}{path}", self.session);
        match self.driver.request(method, &path, body.as_ref()) {
            Ok((200, mut answer)) => Ok(answer["value"].take()),
            Ok((status, answer)) => Err(format!(
                "{status}: {}",
                answer["value"]["message"].as_str().unwrap_or("no message")
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Loads `url` and waits until its DOM is parsed and its scripts have run.
    pub(crate) fn navigate(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// Reloads the page, as F5 does.
    pub(crate) fn reload(&self) {
        self.call("POST", "/refresh", Some(json!({})));
    }

    pub(crate) fn current_url(&self) -> String {
        let url = self.call("GET", "/url", None);
        url.as_str().expect("a URL").to_string()
    }

    pub(crate) fn wait_for_url(&self, url: &str) {
        wait_for(&format!("the browser to show {url}"), || {
            (self.current_url() == url).then_some(())
        });
    }

    /// Waits for the `load` event: the stylesheet and the script are in.
    pub(crate) fn wait_until_complete(&self) {
        wait_for("the page's stylesheet and script to load", || {
            let state = self.try_execute("return document.readyState;").ok()?;
            (state == json!("complete")).then_some(())
        });
    }

    /// Marks the document shown, so [`wait_for_new_document`](Self::wait_for_new_document)
    /// can tell when another replaced it.
    pub(crate) fn mark_document(&self) {
        self.execute("window.tokenusageTestOldDocument = true;");
    }

    /// Whether the marked document was replaced (and the new one's DOM is parsed).
    pub(crate) fn is_new_document(&self) -> bool {
        self.try_execute(
            "return document.readyState !== 'loading' && window.tokenusageTestOldDocument !== true;",
        ) == Ok(json!(true))
    }

    pub(crate) fn wait_for_new_document(&self, what: &str) {
        wait_for(&format!("{what} to load a new document"), || {
            self.is_new_document().then_some(())
        });
    }

    /// The DOM as it is now, serialized.
    pub(crate) fn page_source(&self) -> String {
        let source = self.call("GET", "/source", None);
        source.as_str().expect("a page source").to_string()
    }

    fn try_page_source(&self) -> Option<String> {
        let source = self.try_call("GET", "/source", None).ok()?;
        source.as_str().map(str::to_string)
    }

    pub(crate) fn execute(&self, script: &str) -> Value {
        self.execute_with(script, json!([]))
    }

    pub(crate) fn execute_with(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    fn try_execute(&self, script: &str) -> Result<Value, String> {
        self.try_call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Runs a script that answers by calling its last argument.
    pub(crate) fn execute_async(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// The first element matching a CSS selector; panics if there is none.
    pub(crate) fn find(&self, selector: &str) -> String {
        let found = self.try_call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": selector})),
        );
        match found {
            Ok(element) => element[ELEMENT_KEY]
                .as_str()
                .expect("an element reference")
                .to_string(),
            Err(e) => panic!("no element {selector} on {}: {e}", self.current_url()),
        }
    }

    /// Clicks an element as a user does (scrolled into view, at its centre).
    pub(crate) fn click(&self, element: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    /// Presses and releases one key on whatever has the focus.
    pub(crate) fn press(&self, key: char) {
        let key = key.to_string();
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": key},
            {"type": "keyUp", "value": key},
        ]}]});
        self.call("POST", "/actions", Some(actions));
    }

    /// The PNG of the viewport.
    pub(crate) fn screenshot(&self) -> Vec<u8> {
        let encoded = self.call("GET", "/screenshot", None);
        decode_base64(encoded.as_str().expect("base64 text"))
    }

    /// Where downloads land (with [`Setup::downloads`]).
    pub(crate) fn downloads(&self) -> PathBuf {
        self.driver.downloads()
    }

    /// The entries of a log (`performance` or `browser`, with [`Setup::logs`]) since the
    /// last read. W3C WebDriver has no log endpoint; chromedriver (156) answers this one,
    /// its own `POST /session/{id}/se/log`.
    pub(crate) fn log(&self, kind: &str) -> Vec<Value> {
        let entries = self.call("POST", "/se/log", Some(json!({ "type": kind })));
        entries.as_array().cloned().unwrap_or_default()
    }

    /// A DevTools command through chromedriver.
    pub(crate) fn cdp(&self, command: &str, params: Value) -> Value {
        self.call(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": command, "params": params})),
        )
    }

    /// The viewport as a device of this size would have it (`mobile`: a phone's, which
    /// honours the page's viewport meta and has overlay scrollbars). Kept across
    /// navigations.
    pub(crate) fn set_viewport(&self, (width, height): (u32, u32), mobile: bool) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        );
    }

    /// `prefers-color-scheme` as the page sees it (Chrome's `--force-dark-mode` is not
    /// it), with motion reduced so a flashing banner holds still. Kept across navigations.
    pub(crate) fn set_color_scheme(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({"features": [
                {"name": "prefers-color-scheme", "value": scheme},
                {"name": "prefers-reduced-motion", "value": "reduce"},
            ]}),
        );
    }

    /// Runs the page's timers as if `span` passed, then waits until the page's clock
    /// (`performance.now()`, which follows virtual time) shows it did.
    fn advance_virtual_time(&self, span: Duration) {
        let before = self.page_clock();
        self.advance_virtual_time_by(span);
        // Less 1 ms: performance.now() is coarsened.
        let until = before + span.as_millis() as f64 - 1.0;
        wait_for(&format!("virtual time to pass {span:?}"), || {
            (self.page_clock() >= until).then_some(())
        });
    }

    /// Grants `span` of virtual time without waiting for it: timers due in it run at once,
    /// and the clock stops at its end.
    ///
    /// Why not `chromium --virtual-time-budget=610000 --dump-dom`: on Chromium 156 it never
    /// dumps once a timer has navigated (the new document's `load` waits on the stopped
    /// clock); it prints only when a task in the new document comes due in real time, here
    /// the refreshed page's own 10-minute timer. 590000, with no navigation, works.
    fn advance_virtual_time_by(&self, span: Duration) {
        self.cdp(
            "Emulation.setVirtualTimePolicy",
            json!({"policy": "pauseIfNetworkFetchesPending", "budget": span.as_millis() as u64}),
        );
    }

    fn page_clock(&self) -> f64 {
        self.execute("return performance.now();")
            .as_f64()
            .expect("a time")
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        // Quits the browser; bounded, so a wedged chromedriver cannot hold the test.
        let url = format!("{}/session/{}", self.driver.base, self.session);
        let _ = self
            .driver
            .agent
            .delete(&url)
            .config()
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .call();
    }
}

/// One WebDriver call that must succeed; returns the answer's `value`.
fn call(driver: &ChromeDriver, method: &str, path: &str, body: Option<&Value>) -> Value {
    let (status, mut answer) = driver
        .request(method, path, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", driver.log()));
    assert_eq!(
        status,
        200,
        "{method} {path}: {}",
        answer["value"]["message"].as_str().unwrap_or("no message")
    );
    answer["value"].take()
}

/// Decodes standard base64 (padding optional, whitespace ignored).
fn decode_base64(text: &str) -> Vec<u8> {
    let sextet = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {:?}", c as char),
        }
    };
    let digits: Vec<u32> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .map(sextet)
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let bits = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, d)| acc | (d << (18 - 6 * i)));
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn base64_decodes_with_and_without_padding() {
    assert_eq!(decode_base64("TWFu"), b"Man");
    assert_eq!(decode_base64("TWE="), b"Ma");
    assert_eq!(decode_base64("TQ=="), b"M");
    assert_eq!(decode_base64("TQ"), b"M");
    assert_eq!(decode_base64("iVBO\nRw0KGgo="), b"\x89PNG\r\n\x1a\n");
}
