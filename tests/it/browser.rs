//! The page in a real headless Chromium: keyboard paging, the 10-minute auto refresh and
//! a full-page screenshot, checked through chromedriver's W3C WebDriver API.
//!
//! I/O: serves the real page in-process over HTTP on loopback (the development server,
//! `HttpServer`, with the demo's `page_handler`) against the sample license API; starts
//! `/usr/bin/chromedriver` on a free loopback port, which starts `/usr/bin/chromium` with a
//! fresh profile in a temporary folder; talks to chromedriver with ureq. Every process is
//! killed and every temporary folder removed on drop. The screenshot is kept in the temp
//! dir for a person to look at.

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
use tokenusage::dev::sample_api::SampleApi;

use crate::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Without these Chromium tries to reach Google's services, and the network is closed.
const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];
/// WebDriver's key codes.
const ARROW_LEFT: char = '\u{E012}';
const ARROW_RIGHT: char = '\u{E014}';
/// The longest any polling wait lasts.
const WAIT: Duration = Duration::from_secs(10);
/// The longest one WebDriver call lasts (starting a browser is the slow one).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Where the screenshot is kept, so a person can look at it after the run.
const SCREENSHOT_NAME: &str = "tokenusage-browser-dashboard.png";

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

    // 9 min 50 s pass on Chromium's virtual clock: no refresh yet.
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
    // The posted form's answer loads on the virtual clock too (a GET's did within the
    // first grant; a form submission's does not): a little more time lets it finish.
    browser.advance_virtual_time_by(Duration::from_secs(5));
    browser.wait_for_url(&server.page(&refresh[1..]));
    let refreshed = browser.page_source();
    assert_eq!(
        texts(&refreshed, ".notice-success"),
        ["Data refreshed successfully"]
    );
    assert!(page_info(&refreshed).ends_with("(Page 1 of 4)"));
    assert_eq!(server.api.calls("credits/history"), 2);
}

#[test]
fn a_screenshot_of_the_full_page_renders() {
    let server = PageServer::start("shot", 1000);
    let browser = WebDriver::start();
    browser.navigate(&server.page(""));
    wait_for("the page's stylesheet and script to load", || {
        (browser.execute("return document.readyState;") == json!("complete")).then_some(())
    });
    let height = browser
        .execute("return document.documentElement.scrollHeight;")
        .as_u64()
        .expect("a page height");
    assert!(height > 900, "the page is taller than the window: {height}");
    // The WebDriver screenshot shows the viewport, so the viewport becomes the page.
    browser.cdp(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 1280, "height": height.min(16_000), "deviceScaleFactor": 1, "mobile": false}),
    );

    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 20 * 1024,
        "a near-empty PNG: {} bytes",
        png.len()
    );
    let (width, shot_height) = png_size(&png);
    assert_eq!(width, 1280);
    assert_eq!(u64::from(shot_height), height.min(16_000));
    let path = std::env::temp_dir().join(SCREENSHOT_NAME);
    fs::write(&path, &png).unwrap();
    println!(
        "screenshot of the dashboard ({width}x{shot_height}, {} bytes): {}",
        png.len(),
        path.display()
    );
}

/// The "Showing a-b of n transactions (Page p of q)" line.
fn page_info(html: &str) -> String {
    texts(html, ".pagination-info span")
        .into_iter()
        .next()
        .unwrap_or_default()
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.len() > 24 && &png[12..16] == b"IHDR", "no IHDR chunk");
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    (be(16), be(20))
}

/// Polls `probe` every 50 ms until it answers, for at most [`WAIT`].
fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
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
struct PageServer {
    // Field order is drop order: the page stops before the API it calls.
    server: HttpServer,
    api: SampleApi,
    _install: Install,
}

impl PageServer {
    fn start(name: &str, transactions: usize) -> Self {
        let api = sample_api(transactions);
        let install = Install::new(name, &api.url());
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
    fn page(&self, query: &str) -> String {
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
    /// The browser's profile and chromedriver's log; removed last.
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

/// A headless Chromium session; the browser quits on drop, then chromedriver is killed.
struct WebDriver {
    driver: ChromeDriver,
    session: String,
}

impl WebDriver {
    fn start() -> Self {
        let mut driver = ChromeDriver::start();
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", driver.profile().display()));
        args.push("--window-size=1280,900".into());
        // "eager": navigations are done at DOMContentLoaded. A document loaded after the
        // virtual clock stopped never fires `load`, and the "normal" strategy would wait
        // for it until the call times out.
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "eager",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
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

    /// Loads `url` and waits until its DOM is parsed and its scripts have run.
    fn navigate(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    fn current_url(&self) -> String {
        let url = self.call("GET", "/url", None);
        url.as_str().expect("a URL").to_string()
    }

    fn wait_for_url(&self, url: &str) {
        wait_for(&format!("the browser to show {url}"), || {
            (self.current_url() == url).then_some(())
        });
    }

    /// The DOM as it is now, serialized.
    fn page_source(&self) -> String {
        let source = self.call("GET", "/source", None);
        source.as_str().expect("a page source").to_string()
    }

    fn execute(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Presses and releases one key on whatever has the focus.
    fn press(&self, key: char) {
        let key = key.to_string();
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": key},
            {"type": "keyUp", "value": key},
        ]}]});
        self.call("POST", "/actions", Some(actions));
    }

    /// The PNG of the viewport.
    fn screenshot(&self) -> Vec<u8> {
        let encoded = self.call("GET", "/screenshot", None);
        decode_base64(encoded.as_str().expect("base64 text"))
    }

    /// A DevTools command through chromedriver.
    fn cdp(&self, command: &str, params: Value) -> Value {
        self.call(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": command, "params": params})),
        )
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
