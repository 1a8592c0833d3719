//! A sample license API that serves the contract (`license-api.md`) with deterministic
//! data, for the tests, the demo and the benchmark; it can also misbehave on purpose
//! (faults, delays, hostile strings) so the client's error paths and the page's escaping
//! can be shown.
//!
//! I/O: [`SampleApi::start`] binds a TCP listener and serves HTTP on its own threads
//! ([`crate::dev::http`]); [`run_cli`] also prints the URL on stdout and stops on
//! SIGTERM/SIGINT ([`crate::transport::signals`]). Data generation and rendering are pure
//! and seeded: the same options always give the same bytes.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;
use serde_json::{Value, json};

use crate::data::url::query_pairs;
use crate::dev::http::{Handler, HttpBody, HttpRequest, HttpResponse, serve_http};
use crate::transport::signals;

/// The endpoints served, in the order the counters list them.
pub const ENDPOINTS: [&str; 4] = [
    "pricing/current",
    "user/info",
    "user/stats",
    "credits/history",
];
/// The counter for requests naming no known endpoint.
pub const OTHER_ENDPOINT: &str = "other";
/// `credits/history` entries returned when the request has no usable `limit`.
pub const DEFAULT_LIMIT: usize = 10_000;
/// The size of the [`Fault::Huge`] body.
pub const HUGE_BODY_BYTES: u64 = 60 * 1024 * 1024;
/// What the [`Fault::GzipBomb`] history inflates to: 512 MiB from well under 1 MB.
pub const GZIP_BOMB_BYTES: u64 = 512 * 1024 * 1024;
/// Where [`Fault::Redirect`] sends calls until [`SampleApi::set_redirect_target`] says
/// otherwise: a reserved name that never resolves.
pub const DEFAULT_REDIRECT_TARGET: &str = "http://redirected.invalid/projects/api.php";
/// How long a [`Fault::Hang`] call waits before giving up (unless the server stops first).
pub const HANG_FOR: Duration = Duration::from_secs(120);

/// What [`SampleApiOptions::hostile`] adds to every text field: markup and script for
/// the page, and a spreadsheet formula (kept at the start) for the CSV export.
pub const HOSTILE_PREFIX: &str = "=cmd|' /C calc'!A0 ";
/// See [`HOSTILE_PREFIX`].
pub const HOSTILE_SUFFIX: &str =
    " <script>alert(1)</script> \"'><img src=x onerror=alert(1)> javascript:alert(1)";

/// `created_at` of the newest transaction: 2026-11-20 10:04:11 UTC.
const NEWEST_UNIX: i64 = 1_795_169_051;
/// The newest transaction's id is this plus the number of transactions.
const BASE_ID: u64 = 88_231;
const WORKERS: usize = 16;
/// Distinct `limit` values whose history is kept pre-rendered.
const MAX_CACHED_LIMITS: usize = 16;

/// A way for the sample API to misbehave; applies to every endpoint call unless it says
/// otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fault {
    /// Answer normally.
    #[default]
    None,
    /// HTTP 500 with an HTML body.
    Status500,
    /// HTTP 200 with a PHP warning instead of JSON.
    Garbage,
    /// HTTP 200 with the normal JSON cut in half.
    Truncated,
    /// HTTP 200 with a valid 60 MB JSON body.
    Huge,
    /// No answer for [`HANG_FOR`], or until the server stops.
    Hang,
    /// `{"success": false, "error": "License not found"}`.
    Refused,
    /// `credits/history` answers `Content-Encoding: gzip` with a body that inflates to
    /// [`GZIP_BOMB_BYTES`] of JSON-ish padding; the other endpoints answer normally.
    GzipBomb,
    /// HTTP 302 to the redirect target ([`SampleApi::set_redirect_target`]) with the
    /// request's query, so a client that follows it gets a normal answer from there.
    Redirect,
}

impl Fault {
    /// Every fault, for listings.
    pub const ALL: [Fault; 9] = [
        Fault::None,
        Fault::Status500,
        Fault::Garbage,
        Fault::Truncated,
        Fault::Huge,
        Fault::Hang,
        Fault::Refused,
        Fault::GzipBomb,
        Fault::Redirect,
    ];

    /// The name used by the control endpoint and the CLI (`status500`, `hang`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Status500 => "status500",
            Fault::Garbage => "garbage",
            Fault::Truncated => "truncated",
            Fault::Huge => "huge",
            Fault::Hang => "hang",
            Fault::Refused => "refused",
            Fault::GzipBomb => "gzip-bomb",
            Fault::Redirect => "redirect",
        }
    }

    /// The fault with this name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// How the sample API answers.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleApiOptions {
    /// Transactions in the history (all of them count toward `user/stats`).
    pub transactions: usize,
    /// The `user/stats` balance.
    pub balance: f64,
    /// Added to every endpoint call.
    pub delay: Duration,
    /// Every text field carries [`HOSTILE_PREFIX`] and [`HOSTILE_SUFFIX`].
    pub hostile: bool,
    /// The initial fault.
    pub fault: Fault,
    /// Seed of the generated history.
    pub seed: u64,
}

impl Default for SampleApiOptions {
    fn default() -> Self {
        SampleApiOptions {
            transactions: 10_000,
            balance: 12.3456,
            delay: Duration::ZERO,
            hostile: false,
            fault: Fault::None,
            seed: 5512,
        }
    }
}

/// One generated `credits/history` entry, serialised exactly as the contract shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampleTransaction {
    pub id: u64,
    pub created_at: String,
    pub transaction_type: String,
    pub service_type: String,
    /// Signed, four decimals: `-0.0125`, `10.0000`.
    pub amount: String,
    pub tokens_used: u64,
    pub images_processed: u64,
    pub description: String,
    /// `amount` in ten-thousandths of a credit, so sums are exact.
    #[serde(skip)]
    pub amount_e4: i64,
}

/// Sums over the whole generated history, as `user/stats` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Sum of `tokens_used`.
    pub tokens_used: u64,
    /// Credits spent by `usage` entries (positive), in ten-thousandths.
    pub credits_used_e4: i64,
    /// Number of `usage` entries.
    pub api_calls: u64,
    /// Sum of `images_processed`.
    pub images_processed: u64,
}

/// The generated history, newest first, and its totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleData {
    pub transactions: Vec<SampleTransaction>,
    pub totals: Totals,
    /// Whether text fields carry the hostile payloads.
    pub hostile: bool,
}

/// SplitMix64: tiny, seedable and the same on every platform.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// One kind of AI usage: service, provider, model and what it is done for.
struct UsageKind {
    service: &'static str,
    provider: &'static str,
    model: &'static str,
    long: &'static str,
    short: &'static str,
    object: &'static str,
    tokens: (u64, u64),
    images: (u64, u64),
    /// Share of usage entries, in percent.
    weight: u64,
}

const USAGE_KINDS: [UsageKind; 4] = [
    UsageKind {
        service: "image_search",
        provider: "openai",
        model: "gpt-4o-mini",
        long: "AI image selection",
        short: "Image pick",
        object: "gallery",
        tokens: (800, 2800),
        images: (1, 5),
        weight: 40,
    },
    UsageKind {
        service: "model_enrichment",
        provider: "anthropic",
        model: "claude-3-5-haiku-20241022",
        long: "Performer data enrichment",
        short: "Enrichment",
        object: "model",
        tokens: (1500, 6000),
        images: (0, 0),
        weight: 25,
    },
    UsageKind {
        service: "tag_generation",
        provider: "google",
        model: "gemini-1.5-flash",
        long: "Tag generation",
        short: "Tags",
        object: "gallery",
        tokens: (300, 1200),
        images: (1, 1),
        weight: 20,
    },
    UsageKind {
        service: "image_search",
        provider: "xai",
        model: "grok-2-vision-1212",
        long: "AI image selection",
        short: "Image pick",
        object: "gallery",
        tokens: (800, 2800),
        images: (1, 5),
        weight: 15,
    },
];

/// Generates `count` transactions, newest first, from `seed`: about 90% usage, 8%
/// purchases and 2% refunds, a few minutes apart going back from 2026-11-20 10:04:11.
pub fn generate(count: usize, seed: u64, hostile: bool) -> SampleData {
    let taint = |s: String| taint(hostile, s);
    let mut rng = SplitMix(seed);
    let mut totals = Totals::default();
    let mut transactions = Vec::with_capacity(count);
    let mut age_secs: i64 = 0;
    for i in 0..count {
        let id = BASE_ID + (count - i) as u64;
        let created_at = chrono::DateTime::from_timestamp(NEWEST_UNIX - age_secs, 0)
            .unwrap_or_default()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        age_secs += rng.range(60, 420) as i64;

        let roll = rng.range(0, 99);
        let (kind, service, amount_e4, tokens, images, description) = if roll < 90 {
            let mut pick = rng.range(0, 99);
            let kind = USAGE_KINDS
                .iter()
                .find(|k| {
                    let hit = pick < k.weight;
                    pick = pick.saturating_sub(k.weight);
                    hit
                })
                .unwrap_or(&USAGE_KINDS[0]);
            let tokens = rng.range(kind.tokens.0, kind.tokens.1);
            let images = rng.range(kind.images.0, kind.images.1);
            let cost_e4 = (tokens * 5 / 1000 + images * 25).max(1) as i64;
            let target = rng.range(10, 9999);
            let description = if rng.range(0, 9) < 3 {
                format!("{} {} {target}", kind.short, kind.object)
            } else {
                format!(
                    "{} via {} ({}) for {} {target}",
                    kind.long, kind.provider, kind.model, kind.object
                )
            };
            let service = format!("{} via {}", kind.service, kind.provider);
            ("usage", service, -cost_e4, tokens, images, description)
        } else if roll < 98 {
            let credits: i64 = match rng.range(0, 9) {
                0 => 50,
                1 | 2 => 25,
                _ => 10,
            };
            let order = 1000 + rng.range(0, 8999);
            let description = format!("Credit purchase - order #{order}");
            (
                "purchase",
                String::new(),
                credits * 10_000,
                0,
                0,
                description,
            )
        } else {
            let refunded = rng.range(10, 200) as i64;
            let of = id.saturating_sub(rng.range(1, 50));
            let description = format!("Refund for failed request #{of}");
            ("refund", String::new(), refunded, 0, 0, description)
        };

        totals.tokens_used += tokens;
        totals.images_processed += images;
        if kind == "usage" {
            totals.api_calls += 1;
            totals.credits_used_e4 -= amount_e4;
        }
        transactions.push(SampleTransaction {
            id,
            created_at: taint(created_at),
            transaction_type: taint(kind.to_string()),
            service_type: taint(service),
            amount: format_e4(amount_e4),
            tokens_used: tokens,
            images_processed: images,
            description: taint(description),
            amount_e4,
        });
    }
    SampleData {
        transactions,
        totals,
        hostile,
    }
}

/// Wraps a text field in the hostile payloads when asked to.
fn taint(hostile: bool, text: String) -> String {
    if hostile {
        format!("{HOSTILE_PREFIX}{text}{HOSTILE_SUFFIX}")
    } else {
        text
    }
}

/// Ten-thousandths as a signed decimal with four places: `-125` -> `-0.0125`.
fn format_e4(value: i64) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    format!("{sign}{}.{:04}", abs / 10_000, abs % 10_000)
}

#[derive(Serialize)]
struct Envelope<T> {
    success: bool,
    data: T,
}

#[derive(Serialize)]
struct HistoryData<'a> {
    transactions: &'a [SampleTransaction],
    total: usize,
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail; an empty body would show as a client
    // error rather than a crash.
    serde_json::to_vec(value).unwrap_or_default()
}

/// The `pricing/current` answer.
pub fn render_pricing(hostile: bool) -> Vec<u8> {
    let price = |price: &str, unit: u64| json!({"price": price, "unit": unit});
    to_json(&Envelope {
        success: true,
        data: json!({
            "pricing": {
                "image_processing": price("2.50", 10_000),
                "input_tokens": price("0.20", 1_000_000),
                "completion_tokens": price("0.80", 1_000_000),
                "cached_tokens": price("0.05", 1_000_000),
            },
            "currency": taint(hostile, "USD".into()),
            "updated_at": taint(hostile, "2026-11-20 09:00:00".into()),
        }),
    })
}

/// The `user/info` answer, echoing the request's `email` and `domain`.
pub fn render_user_info(email: &str, domain: &str, hostile: bool) -> Vec<u8> {
    let t = |s: &str| taint(hostile, s.to_string());
    to_json(&Envelope {
        success: true,
        data: json!({
            "email": t(email),
            "license_type": t("Pro"),
            "domain": t(domain),
            "created_at": t("2024-03-15 12:34:56"),
            "status": t("active"),
        }),
    })
}

/// The `user/stats` answer: `balance` as given, totals from the whole history.
pub fn render_user_stats(data: &SampleData, balance: f64) -> Vec<u8> {
    to_json(&Envelope {
        success: true,
        data: json!({
            "balance": format!("{balance:.4}"),
            "total_tokens_used": data.totals.tokens_used,
            "total_credits_used": format_e4(data.totals.credits_used_e4),
            "total_api_calls": data.totals.api_calls,
            "total_images_processed": data.totals.images_processed,
        }),
    })
}

/// The `credits/history` answer: the newest `limit` transactions.
pub fn render_history(data: &SampleData, limit: usize) -> Vec<u8> {
    let shown = &data.transactions[..limit.min(data.transactions.len())];
    to_json(&Envelope {
        success: true,
        data: HistoryData {
            transactions: shown,
            total: shown.len(),
        },
    })
}

/// A failure answer: `{"success": false, "error": message}`.
pub fn render_error(message: &str, hostile: bool) -> Vec<u8> {
    to_json(&json!({"success": false, "error": taint(hostile, message.to_string())}))
}

/// The decoded pairs of a query, as the router decodes the page's own.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query_pairs(query).collect()
}

/// The last value of a query parameter, or "".
fn query_param<'a>(query: &'a [(String, String)], name: &str) -> &'a str {
    query
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The state the request handler shares with the [`SampleApi`] handle.
struct State {
    data: SampleData,
    delay: Duration,
    /// `f64` bits, so the balance can change without a lock.
    balance: AtomicU64,
    fault: Mutex<Fault>,
    /// The base URL [`Fault::Redirect`] sends calls to.
    redirect_target: Mutex<String>,
    /// One per [`ENDPOINTS`] entry, then [`OTHER_ENDPOINT`].
    calls: [AtomicUsize; 5],
    /// Calls being answered now, and the most at once: shows a client calls in parallel.
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    history: Mutex<HashMap<usize, Arc<[u8]>>>,
    shutdown: Arc<AtomicBool>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    fn new(options: &SampleApiOptions, shutdown: Arc<AtomicBool>) -> Self {
        State {
            data: generate(options.transactions, options.seed, options.hostile),
            delay: options.delay,
            balance: AtomicU64::new(options.balance.to_bits()),
            fault: Mutex::new(options.fault),
            redirect_target: Mutex::new(DEFAULT_REDIRECT_TARGET.into()),
            calls: Default::default(),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            history: Mutex::new(HashMap::new()),
            shutdown,
        }
    }

    fn counter(&self, endpoint: &str) -> Option<&AtomicUsize> {
        ENDPOINTS
            .iter()
            .position(|e| *e == endpoint)
            .or((endpoint == OTHER_ENDPOINT).then_some(ENDPOINTS.len()))
            .map(|i| &self.calls[i])
    }

    fn fault(&self) -> Fault {
        *lock(&self.fault)
    }

    fn balance(&self) -> f64 {
        f64::from_bits(self.balance.load(Ordering::SeqCst))
    }

    /// Zeroes every call counter and the most calls seen at once.
    fn reset_calls(&self) {
        for counter in &self.calls {
            counter.store(0, Ordering::SeqCst);
        }
        self.max_in_flight.store(0, Ordering::SeqCst);
    }

    fn set_fault(&self, fault: Fault) {
        *lock(&self.fault) = fault;
    }

    fn set_balance(&self, balance: f64) {
        self.balance.store(balance.to_bits(), Ordering::SeqCst);
    }

    /// The history answer for `limit`, rendered once per limit.
    fn history(&self, limit: usize) -> Arc<[u8]> {
        let limit = limit.min(self.data.transactions.len());
        let mut cache = lock(&self.history);
        if let Some(body) = cache.get(&limit) {
            return Arc::clone(body);
        }
        let body: Arc<[u8]> = render_history(&self.data, limit).into();
        if cache.len() < MAX_CACHED_LIMITS {
            cache.insert(limit, Arc::clone(&body));
        }
        body
    }

    /// Sleeps up to `time`, returning early when the server stops.
    fn pause(&self, time: Duration) {
        let until = Instant::now() + time;
        while !self.shutdown.load(Ordering::SeqCst) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            thread::sleep(left.min(Duration::from_millis(20)));
        }
    }

    fn handle(&self, req: &HttpRequest) -> HttpResponse {
        if !matches!(req.method.as_str(), "GET" | "HEAD") {
            let body = render_error("Method not allowed", self.data.hostile);
            return HttpResponse::json(405, body);
        }
        let query = parse_query(req.query());
        if let Some(command) = req.path().strip_prefix("/__control/") {
            return self.control(command, &query);
        }
        let endpoint = query_param(&query, "endpoint");
        let known = ENDPOINTS.contains(&endpoint);
        let counted = if known { endpoint } else { OTHER_ENDPOINT };
        if let Some(counter) = self.counter(counted) {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        self.pause(self.delay);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);

        let hostile = self.data.hostile;
        let fault = self.fault();
        match fault {
            Fault::Status500 => {
                let page = "<html><body><h1>500 Internal Server Error</h1></body></html>\n";
                return HttpResponse::new(500, "text/html; charset=UTF-8", page);
            }
            Fault::Garbage => {
                let warning = "<br />\n<b>Warning</b>:  mysqli_connect(): (HY000/1040): Too many \
                               connections in <b>/var/www/projects/api.php</b> on line \
                               <b>12</b><br />\n";
                return HttpResponse::new(200, "text/html; charset=UTF-8", warning);
            }
            Fault::Huge => return HttpResponse::json(200, huge_body()),
            Fault::Hang => {
                self.pause(HANG_FOR);
                return HttpResponse::text(503, "gave up hanging\n");
            }
            Fault::Refused => {
                return HttpResponse::json(200, render_error("License not found", hostile));
            }
            Fault::Redirect => {
                let location = format!("{}?{}", lock(&self.redirect_target), req.query());
                let mut response = HttpResponse::new(302, "text/html; charset=UTF-8", "Moved\n");
                response.headers.push(("Location".into(), location));
                return response;
            }
            Fault::GzipBomb if endpoint == "credits/history" => {
                let mut response = HttpResponse::json(200, gzip_bomb());
                response
                    .headers
                    .push(("Content-Encoding".into(), "gzip".into()));
                return response;
            }
            Fault::None | Fault::Truncated | Fault::GzipBomb => {}
        }

        if !known {
            let message = if endpoint.is_empty() {
                "Missing endpoint".to_string()
            } else {
                format!("Unknown endpoint: {endpoint}")
            };
            return HttpResponse::json(400, render_error(&message, hostile));
        }
        if query_param(&query, "license_key").is_empty() {
            return HttpResponse::json(400, render_error("Missing license_key", hostile));
        }
        let body: HttpBody = match endpoint {
            "pricing/current" => render_pricing(hostile).into(),
            "user/info" => render_user_info(
                query_param(&query, "email"),
                query_param(&query, "domain"),
                hostile,
            )
            .into(),
            "user/stats" => render_user_stats(&self.data, self.balance()).into(),
            _ => {
                let limit = query_param(&query, "limit")
                    .trim()
                    .parse()
                    .unwrap_or(DEFAULT_LIMIT);
                self.history(limit).into()
            }
        };
        if fault == Fault::Truncated {
            let whole: Vec<u8> = match body {
                HttpBody::Bytes(b) => b,
                HttpBody::Shared(b) => b.to_vec(),
                HttpBody::Stream { .. } => Vec::new(),
            };
            let half = whole[..whole.len() / 2].to_vec();
            return HttpResponse::json(200, half);
        }
        HttpResponse::json(200, body)
    }

    /// `/__control/{calls,reset,fault?name=..,balance?value=..}`.
    fn control(&self, command: &str, query: &[(String, String)]) -> HttpResponse {
        match command {
            "calls" => {
                let mut counts = serde_json::Map::new();
                for name in ENDPOINTS.iter().chain([&OTHER_ENDPOINT]) {
                    let n = self.counter(name).map_or(0, |c| c.load(Ordering::SeqCst));
                    counts.insert(name.to_string(), Value::from(n));
                }
                HttpResponse::json(200, to_json(&counts))
            }
            "reset" => {
                self.reset_calls();
                HttpResponse::json(200, r#"{"reset":true}"#)
            }
            "fault" => match Fault::from_name(query_param(query, "name")) {
                Some(fault) => {
                    self.set_fault(fault);
                    HttpResponse::json(200, to_json(&json!({"fault": fault.name()})))
                }
                None => HttpResponse::json(400, render_error("Unknown fault", false)),
            },
            "balance" => match query_param(query, "value").trim().parse::<f64>() {
                Ok(balance) if balance.is_finite() => {
                    self.set_balance(balance);
                    HttpResponse::json(200, to_json(&json!({"balance": balance})))
                }
                _ => HttpResponse::json(400, render_error("Bad balance", false)),
            },
            _ => HttpResponse::json(404, render_error("Unknown control command", false)),
        }
    }
}

/// A valid JSON envelope padded to [`HUGE_BODY_BYTES`], streamed so it never sits in
/// memory.
fn huge_body() -> HttpBody {
    const HEAD: &[u8] = br#"{"success":true,"data":{"transactions":[],"total":0,"padding":""#;
    const TAIL: &[u8] = br#""}}"#;
    HttpBody::Stream {
        len: HUGE_BODY_BYTES,
        write: Box::new(|out| {
            out.write_all(HEAD)?;
            let chunk = [b'x'; 64 * 1024];
            let mut left = HUGE_BODY_BYTES as usize - HEAD.len() - TAIL.len();
            while left > 0 {
                let n = left.min(chunk.len());
                out.write_all(&chunk[..n])?;
                left -= n;
            }
            out.write_all(TAIL)
        }),
    }
}

/// The [`Fault::GzipBomb`] body, built on first use and kept.
fn gzip_bomb() -> Arc<[u8]> {
    static BOMB: OnceLock<Arc<[u8]>> = OnceLock::new();
    // Writing to a Vec cannot fail; an empty body would show as a client error.
    Arc::clone(BOMB.get_or_init(|| build_gzip_bomb().unwrap_or_default().into()))
}

/// A JSON envelope opened and padded with spaces to [`GZIP_BOMB_BYTES`], gzipped: fed in
/// 1 MiB chunks, so the inflated bytes never sit in memory. At the best level a run of one
/// byte reaches deflate's limit of about 1030:1 (509 KB on the wire) in about a second;
/// the fast level stops near 220:1.
fn build_gzip_bomb() -> io::Result<Vec<u8>> {
    const HEAD: &[u8] = br#"{"success":true,"data":{"transactions":["#;
    let mut gzip = GzEncoder::new(Vec::new(), Compression::best());
    gzip.write_all(HEAD)?;
    let chunk = vec![b' '; 1024 * 1024];
    let mut left = GZIP_BOMB_BYTES as usize - HEAD.len();
    while left > 0 {
        let n = left.min(chunk.len());
        gzip.write_all(&chunk[..n])?;
        left -= n;
    }
    gzip.finish()
}

/// A running sample API; stops when dropped.
pub struct SampleApi {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SampleApi {
    /// Binds `addr` (`127.0.0.1:0` picks a free port) and serves on background threads.
    pub fn start(addr: &str, options: SampleApiOptions) -> io::Result<SampleApi> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shutdown = Arc::new(AtomicBool::new(false));
        let state = Arc::new(State::new(&options, Arc::clone(&shutdown)));
        // Render the usual history now, so the first timed call is not the slow one.
        state.history(DEFAULT_LIMIT);
        let handler: Handler = {
            let state = Arc::clone(&state);
            Arc::new(move |req: &HttpRequest| state.handle(req))
        };
        let thread = {
            let shutdown = Arc::clone(&shutdown);
            thread::Builder::new()
                .name("sample-api".into())
                .spawn(move || {
                    if let Err(e) = serve_http(listener, WORKERS, handler, shutdown) {
                        eprintln!("sample API stopped: {e}");
                    }
                })?
        };
        Ok(SampleApi {
            addr,
            state,
            shutdown,
            thread: Some(thread),
        })
    }

    /// The address served (a wildcard bind reports the loopback address).
    pub fn addr(&self) -> SocketAddr {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        SocketAddr::new(ip, self.addr.port())
    }

    /// The base URL to put in `api_url`: `http://127.0.0.1:PORT/projects/api.php`.
    pub fn url(&self) -> String {
        format!("http://{}/projects/api.php", self.addr())
    }

    /// Calls made to `endpoint` (one of [`ENDPOINTS`], or [`OTHER_ENDPOINT`]) so far.
    pub fn calls(&self, endpoint: &str) -> usize {
        self.state
            .counter(endpoint)
            .map_or(0, |c| c.load(Ordering::SeqCst))
    }

    /// The most endpoint calls that were inside their delay at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Zeroes every call counter and [`max_in_flight`](Self::max_in_flight), as
    /// `/__control/reset` does.
    pub fn reset_calls(&self) {
        self.state.reset_calls();
    }

    /// Changes how the following calls misbehave.
    pub fn set_fault(&self, fault: Fault) {
        self.state.set_fault(fault);
    }

    /// Changes where [`Fault::Redirect`] sends calls: a base URL, to which the request's
    /// query is added.
    pub fn set_redirect_target(&self, url: &str) {
        *lock(&self.state.redirect_target) = url.to_string();
    }

    /// Changes the `user/stats` balance of the following calls.
    pub fn set_balance(&self, balance: f64) {
        self.state.set_balance(balance);
    }

    /// Stops serving and waits for the server thread.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for SampleApi {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What `tokenusage sample-api` was asked for.
#[derive(Debug, Clone, PartialEq)]
struct CliArgs {
    listen: String,
    options: SampleApiOptions,
}

const USAGE: &str = "usage: tokenusage sample-api [--listen ADDR] [--transactions N] \
                     [--balance X] [--delay-ms N] [--hostile] [--fault NAME] [--seed N]";

fn parse_cli(args: &[String]) -> Result<CliArgs, String> {
    let mut parsed = CliArgs {
        listen: "127.0.0.1:8081".into(),
        options: SampleApiOptions::default(),
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = |what: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs {what}\n{USAGE}"))
        };
        let bad = |what: &str, v: &str| format!("{flag}: {v:?} is not {what}");
        match flag.as_str() {
            "--listen" => parsed.listen = value("an address")?,
            "--transactions" => {
                let v = value("a count")?;
                parsed.options.transactions = v.parse().map_err(|_| bad("a count", &v))?;
            }
            "--balance" => {
                let v = value("a number")?;
                parsed.options.balance = v
                    .parse::<f64>()
                    .ok()
                    .filter(|b| b.is_finite())
                    .ok_or_else(|| bad("a number", &v))?;
            }
            "--delay-ms" => {
                let v = value("milliseconds")?;
                let ms = v.parse().map_err(|_| bad("milliseconds", &v))?;
                parsed.options.delay = Duration::from_millis(ms);
            }
            "--seed" => {
                let v = value("a number")?;
                parsed.options.seed = v.parse().map_err(|_| bad("a number", &v))?;
            }
            "--fault" => {
                let v = value("a fault name")?;
                parsed.options.fault = Fault::from_name(&v).ok_or_else(|| {
                    let names: Vec<_> = Fault::ALL.iter().map(|f| f.name()).collect();
                    format!("--fault: {v:?} is not one of {}", names.join(", "))
                })?;
            }
            "--hostile" => parsed.options.hostile = true,
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    Ok(parsed)
}

/// `tokenusage sample-api [--listen ADDR] [--transactions N] [--balance X] [--delay-ms N]
/// [--hostile] [--fault NAME] [--seed N]` (`args` are those after `sample-api`): prints
/// the URL on stdout and serves until SIGTERM or SIGINT.
pub fn run_cli(args: &[String]) -> Result<(), String> {
    let cli = parse_cli(args)?;
    let stop = signals::shutdown_flag();
    let api = SampleApi::start(&cli.listen, cli.options)
        .map_err(|e| format!("cannot listen on {}: {e}", cli.listen))?;
    let mut stdout = io::stdout();
    // Scripts read the URL from a pipe; a closed pipe must not stop the server.
    let _ = writeln!(stdout, "{}", api.url()).and_then(|()| stdout.flush());
    while !stop.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(100));
    }
    api.stop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::license_api::wire::{Transaction, UserStats};
    use std::io::Read;
    use std::net::TcpStream;

    fn body_json(body: &[u8]) -> Value {
        serde_json::from_slice(body).unwrap()
    }

    #[test]
    fn same_seed_gives_the_same_history_and_bytes() {
        let a = generate(500, 7, false);
        let b = generate(500, 7, false);
        assert_eq!(a, b);
        assert_eq!(render_history(&a, 500), render_history(&b, 500));
        assert_ne!(generate(500, 8, false).transactions, a.transactions);
    }

    #[test]
    fn history_is_newest_first_with_ids_falling() {
        let data = generate(10_000, 5512, false);
        assert_eq!(data.transactions.len(), 10_000);
        let first = &data.transactions[0];
        assert_eq!(first.created_at, "2026-11-20 10:04:11");
        assert_eq!(first.id, 98_231);
        for pair in data.transactions.windows(2) {
            assert!(pair[0].created_at > pair[1].created_at);
            assert!(pair[0].id > pair[1].id);
        }
    }

    #[test]
    fn history_is_mostly_usage_with_some_purchases_and_refunds() {
        let data = generate(10_000, 5512, false);
        let count = |kind: &str| {
            data.transactions
                .iter()
                .filter(|t| t.transaction_type == kind)
                .count()
        };
        let usage = count("usage");
        assert!((8_700..=9_300).contains(&usage), "usage {usage}");
        assert!(count("purchase") > 300);
        assert!(count("refund") > 50);
        assert_eq!(usage + count("purchase") + count("refund"), 10_000);
        for t in &data.transactions {
            assert_eq!(t.transaction_type == "usage", t.amount_e4 < 0, "{t:?}");
            assert_eq!(t.amount, format_e4(t.amount_e4));
        }
        let long = data
            .transactions
            .iter()
            .filter(|t| t.description.len() > 50)
            .count();
        assert!(long > 1_000 && long < 9_000, "long descriptions {long}");
        assert!(
            data.transactions
                .iter()
                .any(|t| t.service_type == "model_enrichment via anthropic")
        );
    }

    #[test]
    fn stats_totals_are_sums_of_the_history() {
        let data = generate(2_000, 1, false);
        let usage: Vec<_> = data
            .transactions
            .iter()
            .filter(|t| t.transaction_type == "usage")
            .collect();
        let stats: UserStats =
            serde_json::from_value(body_json(&render_user_stats(&data, 3.5))["data"].clone())
                .unwrap();
        assert_eq!(stats.balance, 3.5);
        assert_eq!(
            stats.total_tokens_used,
            data.transactions.iter().map(|t| t.tokens_used).sum::<u64>()
        );
        assert_eq!(stats.total_api_calls, usage.len() as u64);
        assert_eq!(
            stats.total_images_processed,
            data.transactions
                .iter()
                .map(|t| t.images_processed)
                .sum::<u64>()
        );
        let spent_e4: i64 = usage.iter().map(|t| -t.amount_e4).sum();
        assert_eq!(data.totals.credits_used_e4, spent_e4);
        assert!((stats.total_credits_used - spent_e4 as f64 / 10_000.0).abs() < 1e-9);
    }

    #[test]
    fn history_answer_honours_limit_and_decodes_as_wire_transactions() {
        let data = generate(100, 2, false);
        let answer = body_json(&render_history(&data, 5));
        assert_eq!(answer["success"], true);
        assert_eq!(answer["data"]["total"], 5);
        let list: Vec<Transaction> =
            serde_json::from_value(answer["data"]["transactions"].clone()).unwrap();
        assert_eq!(list.len(), 5);
        assert_eq!(list[0].id, data.transactions[0].id.to_string());
        assert!(answer["data"]["transactions"][0]["id"].is_u64());
        assert!(answer["data"]["transactions"][0]["amount"].is_string());
        assert_eq!(
            body_json(&render_history(&data, 1_000))["data"]["total"],
            100
        );
    }

    #[test]
    fn amounts_have_four_decimals_and_a_sign() {
        assert_eq!(format_e4(-125), "-0.0125");
        assert_eq!(format_e4(100_000), "10.0000");
        assert_eq!(format_e4(0), "0.0000");
        assert_eq!(format_e4(-123_456), "-12.3456");
    }

    /// Every string in `value` that is not a number carries the payloads.
    fn assert_all_text_hostile(value: &Value) {
        match value {
            Value::String(s) if s.parse::<f64>().is_ok() => {}
            Value::String(s) => {
                assert!(s.starts_with("=cmd|' /C calc'!A0"), "{s}");
                assert!(s.contains("<script>alert(1)</script>"), "{s}");
                assert!(s.contains("\"'><img src=x onerror=alert(1)>"), "{s}");
                assert!(s.contains("javascript:alert(1)"), "{s}");
            }
            Value::Array(items) => items.iter().for_each(assert_all_text_hostile),
            Value::Object(map) => map.values().for_each(assert_all_text_hostile),
            _ => {}
        }
    }

    #[test]
    fn hostile_answers_carry_payloads_in_every_text_field() {
        let data = generate(200, 3, true);
        for body in [
            render_pricing(true),
            render_user_info("a@b.c", "b.c", true),
            render_user_stats(&data, 1.0),
            render_history(&data, 200),
            render_error("License not found", true),
        ] {
            assert_all_text_hostile(&body_json(&body));
        }
        let info = body_json(&render_user_info("owner@example.com", "example.com", true));
        assert!(
            info["data"]["email"]
                .as_str()
                .unwrap()
                .contains("owner@example.com")
        );
    }

    #[test]
    fn query_is_percent_decoded() {
        let q = parse_query("endpoint=credits%2Fhistory&email=a%40b.c&x=a+b&bad=%zz%4&flag");
        assert_eq!(query_param(&q, "endpoint"), "credits/history");
        assert_eq!(query_param(&q, "email"), "a@b.c");
        assert_eq!(query_param(&q, "x"), "a b");
        assert_eq!(query_param(&q, "bad"), "%zz%4");
        assert_eq!(query_param(&q, "flag"), "");
        assert_eq!(query_param(&q, "missing"), "");
    }

    #[test]
    fn fault_names_round_trip() {
        for fault in Fault::ALL {
            assert_eq!(Fault::from_name(fault.name()), Some(fault));
        }
        assert_eq!(Fault::from_name("Status500"), Some(Fault::Status500));
        assert_eq!(Fault::from_name("boom"), None);
    }

    #[test]
    fn cli_flags_set_options() {
        let args: Vec<String> = [
            "--listen",
            "127.0.0.1:0",
            "--transactions",
            "50",
            "--balance",
            "0.5",
            "--delay-ms",
            "20",
            "--hostile",
            "--fault",
            "hang",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cli = parse_cli(&args).unwrap();
        assert_eq!(cli.listen, "127.0.0.1:0");
        assert_eq!(cli.options.transactions, 50);
        assert_eq!(cli.options.balance, 0.5);
        assert_eq!(cli.options.delay, Duration::from_millis(20));
        assert!(cli.options.hostile);
        assert_eq!(cli.options.fault, Fault::Hang);
        assert!(parse_cli(&["--transactions".into()]).is_err());
        assert!(parse_cli(&["--balance".into(), "NaN".into()]).is_err());
        assert!(parse_cli(&["--what".into()]).is_err());
    }

    /// A plain HTTP/1.1 GET with `Connection: close`: status and body.
    fn get(api: &SampleApi, target: &str) -> (u16, Vec<u8>) {
        let (status, _, body) = get_with_head(api, target);
        (status, body)
    }

    /// [`get`] with the response head too.
    fn get_with_head(api: &SampleApi, target: &str) -> (u16, String, Vec<u8>) {
        let mut stream = TcpStream::connect(api.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status = head[9..12].parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        let body = raw[split + 4..].to_vec();
        assert_eq!(body.len(), length);
        (status, head, body)
    }

    const KEY: &str = "license_key=ABCDEF1234567890&domain=example.com&email=owner%40example.com";

    #[test]
    fn serves_the_contract_over_loopback_and_counts_calls() {
        let options = SampleApiOptions {
            transactions: 50,
            ..SampleApiOptions::default()
        };
        let api = SampleApi::start("127.0.0.1:0", options).unwrap();
        assert!(api.url().starts_with("http://127.0.0.1:"));
        assert!(api.url().ends_with("/projects/api.php"));

        let (status, body) = get(&api, &format!("/projects/api.php?endpoint=user/info&{KEY}"));
        assert_eq!(status, 200);
        let info = body_json(&body);
        assert_eq!(info["success"], true);
        assert_eq!(info["data"]["email"], "owner@example.com");
        assert_eq!(info["data"]["domain"], "example.com");
        assert_eq!(info["data"]["status"], "active");
        assert_eq!(api.calls("user/info"), 1);
        assert_eq!(api.calls("credits/history"), 0);

        let (_, body) = get(
            &api,
            &format!("/x?endpoint=credits%2Fhistory&limit=7&{KEY}"),
        );
        assert_eq!(
            body_json(&body)["data"]["transactions"]
                .as_array()
                .unwrap()
                .len(),
            7
        );

        api.set_balance(0.25);
        let (_, body) = get(&api, &format!("/x?endpoint=user/stats&{KEY}"));
        assert_eq!(body_json(&body)["data"]["balance"], "0.2500");

        let (status, body) = get(&api, &format!("/x?endpoint=nope&{KEY}"));
        assert_eq!(status, 400);
        assert_eq!(body_json(&body)["success"], false);
        let (status, _) = get(&api, "/x?endpoint=user/info");
        assert_eq!(status, 400);

        let (_, body) = get(&api, "/__control/calls");
        let calls = body_json(&body);
        assert_eq!(calls["user/info"], 2);
        assert_eq!(calls["other"], 1);

        let (status, _) = get(&api, "/__control/fault?name=refused");
        assert_eq!(status, 200);
        let (status, body) = get(&api, &format!("/x?endpoint=pricing/current&{KEY}"));
        assert_eq!(status, 200);
        assert_eq!(
            body_json(&body),
            json!({"success": false, "error": "License not found"})
        );

        get(&api, "/__control/reset");
        assert_eq!(api.calls("user/info"), 0);
        api.stop();
    }

    #[test]
    fn the_gzip_bomb_is_small_on_the_wire_inflates_to_512_mib_and_spares_other_endpoints() {
        let api = SampleApi::start("127.0.0.1:0", SampleApiOptions::default()).unwrap();
        api.set_fault(Fault::GzipBomb);
        let (status, head, body) =
            get_with_head(&api, &format!("/x?endpoint=credits/history&{KEY}"));
        assert_eq!(status, 200);
        assert!(head.contains("\r\nContent-Encoding: gzip"), "{head}");
        assert!(body.len() < 1024 * 1024, "{} bytes on the wire", body.len());
        let mut inflated = flate2::read::MultiGzDecoder::new(&body[..]);
        let mut start = [0u8; 16];
        inflated.read_exact(&mut start).unwrap();
        assert_eq!(&start, br#"{"success":true,"#);
        let rest = io::copy(&mut inflated, &mut io::sink()).unwrap();
        assert_eq!(rest + 16, GZIP_BOMB_BYTES);

        let (status, head, body) = get_with_head(&api, &format!("/x?endpoint=user/stats&{KEY}"));
        assert_eq!(status, 200);
        assert!(!head.contains("Content-Encoding"), "{head}");
        assert_eq!(body_json(&body)["success"], true);
    }

    #[test]
    fn a_redirect_points_at_the_target_with_the_query() {
        let api = SampleApi::start("127.0.0.1:0", SampleApiOptions::default()).unwrap();
        api.set_fault(Fault::Redirect);
        let query = format!("endpoint=user/info&{KEY}");
        let (status, head, _) = get_with_head(&api, &format!("/x?{query}"));
        assert_eq!(status, 302);
        assert!(
            head.contains(&format!("\r\nLocation: {DEFAULT_REDIRECT_TARGET}?{query}")),
            "{head}"
        );
        api.set_redirect_target("http://127.0.0.1:9/api.php");
        let (_, head, _) = get_with_head(&api, &format!("/x?{query}"));
        assert!(
            head.contains(&format!("\r\nLocation: http://127.0.0.1:9/api.php?{query}")),
            "{head}"
        );
    }

    #[test]
    fn faults_break_answers_as_promised() {
        let options = SampleApiOptions {
            transactions: 20,
            ..SampleApiOptions::default()
        };
        let api = SampleApi::start("127.0.0.1:0", options).unwrap();
        let target = format!("/x?endpoint=credits/history&{KEY}");

        api.set_fault(Fault::Status500);
        assert_eq!(get(&api, &target).0, 500);
        api.set_fault(Fault::Garbage);
        let (status, body) = get(&api, &target);
        assert_eq!(status, 200);
        assert!(serde_json::from_slice::<Value>(&body).is_err());
        api.set_fault(Fault::Truncated);
        let (status, body) = get(&api, &target);
        assert_eq!(status, 200);
        assert!(body.starts_with(br#"{"success":true"#));
        assert!(serde_json::from_slice::<Value>(&body).is_err());

        api.set_fault(Fault::Huge);
        let mut stream = TcpStream::connect(api.addr()).unwrap();
        write!(stream, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut head = [0u8; 512];
        let n = stream.read(&mut head).unwrap();
        let head = String::from_utf8_lossy(&head[..n]);
        assert!(head.contains(&format!("Content-Length: {HUGE_BODY_BYTES}\r\n")));
        drop(stream);

        api.set_fault(Fault::Hang);
        let addr = api.addr();
        let hanging = thread::spawn(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            write!(stream, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
            rest
        });
        while api.calls("credits/history") < 5 {
            thread::sleep(Duration::from_millis(10));
        }
        let asked = Instant::now();
        api.stop();
        assert!(asked.elapsed() < Duration::from_secs(2));
        assert!(
            hanging.join().unwrap().is_empty(),
            "a hung call never answers"
        );
    }
}
