//! The sample API's routing on the development server: the endpoint calls (counted, delayed,
//! faulted) and the control endpoint `/__control/{calls,reset,fault,balance}` that
//! scripts such as `bench/attack.sh` use to steer a running sample API.
//!
//! No I/O of its own: the handler runs on [`crate::dev::http`]'s workers and only sleeps
//! (delays, hangs), returning early when the server stops.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::dev::http::{HttpBody, HttpRequest, HttpResponse};

use super::answers::{
    parse_query, query_param, render_error, render_history, render_pricing, render_user_info,
    render_user_stats, to_json,
};
use super::data::{SampleData, generate};
use super::faults::{Fault, Faults, truncated};
use super::{DEFAULT_LIMIT, ENDPOINTS, OTHER_ENDPOINT, SampleApiOptions};

/// Distinct `limit` values whose history is kept pre-rendered.
const MAX_CACHED_LIMITS: usize = 16;

/// A history answer's newest hidden and limit.
type HistoryKey = (usize, usize);

/// The state the request handler shares with the [`SampleApi`](super::SampleApi) handle.
pub(super) struct State {
    data: SampleData,
    delay: Duration,
    /// `f64` bits, so the balance can change without a lock.
    balance: AtomicU64,
    pub(super) faults: Faults,
    /// One per [`ENDPOINTS`] entry, then [`OTHER_ENDPOINT`].
    calls: [AtomicUsize; 5],
    /// Calls being answered now, and the most at once: shows a client calls in parallel.
    in_flight: AtomicUsize,
    pub(super) max_in_flight: AtomicUsize,
    /// Rendered history answers by (newest hidden, limit).
    history: Mutex<HashMap<HistoryKey, Arc<[u8]>>>,
    /// The newest transactions left out of the history answer, as if they had not
    /// happened yet: moving it moves the API's window (`/__control/hide?newest=N`).
    hidden: AtomicUsize,
    shutdown: Arc<AtomicBool>,
}

impl State {
    pub(super) fn new(options: &SampleApiOptions, shutdown: Arc<AtomicBool>) -> Self {
        State {
            data: generate(
                options.transactions,
                options.seed,
                options.anchor_or_now(),
                options.hostile,
            ),
            delay: options.delay,
            balance: AtomicU64::new(options.balance.to_bits()),
            faults: Faults::new(options.fault),
            calls: Default::default(),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            history: Mutex::new(HashMap::new()),
            hidden: AtomicUsize::new(0),
            shutdown,
        }
    }

    pub(super) fn counter(&self, endpoint: &str) -> Option<&AtomicUsize> {
        ENDPOINTS
            .iter()
            .position(|e| *e == endpoint)
            .or((endpoint == OTHER_ENDPOINT).then_some(ENDPOINTS.len()))
            .map(|i| &self.calls[i])
    }

    fn balance(&self) -> f64 {
        f64::from_bits(self.balance.load(Ordering::SeqCst))
    }

    /// Zeroes every call counter and the most calls seen at once.
    pub(super) fn reset_calls(&self) {
        for counter in &self.calls {
            counter.store(0, Ordering::SeqCst);
        }
        self.max_in_flight.store(0, Ordering::SeqCst);
    }

    pub(super) fn hide_newest(&self, count: usize) {
        self.hidden.store(count, Ordering::SeqCst);
    }

    pub(super) fn set_balance(&self, balance: f64) {
        self.balance.store(balance.to_bits(), Ordering::SeqCst);
    }

    /// The history answer for `limit`, rendered once per limit and window.
    pub(super) fn history(&self, limit: usize) -> Arc<[u8]> {
        let hidden = self.hidden.load(Ordering::SeqCst);
        let limit = limit.min(self.data.transactions.len());
        let key = (hidden, limit);
        let mut cache = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(body) = cache.get(&key) {
            return Arc::clone(body);
        }
        let body: Arc<[u8]> = render_history(&self.data, hidden, limit).into();
        if cache.len() < MAX_CACHED_LIMITS {
            cache.insert(key, Arc::clone(&body));
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

    /// Answers one request: a control command, or an endpoint call.
    pub(super) fn handle(&self, req: &HttpRequest) -> HttpResponse {
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
        let fault = self.faults.get();
        let wait = |time| self.pause(time);
        if let Some(broken) = self
            .faults
            .answer(fault, endpoint, req.query(), hostile, wait)
        {
            return broken;
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
            "pricing/current" => render_pricing(self.data.anchor, hostile).into(),
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
            return truncated(body);
        }
        HttpResponse::json(200, body)
    }

    /// `/__control/{calls,reset,fault?name=..,balance?value=..,hide?newest=..}`.
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
                    self.faults.set(fault);
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
            "hide" => match query_param(query, "newest").trim().parse::<usize>() {
                Ok(newest) => {
                    self.hide_newest(newest);
                    HttpResponse::json(200, to_json(&json!({"hidden": newest})))
                }
                _ => HttpResponse::json(400, render_error("Bad count", false)),
            },
            _ => HttpResponse::json(404, render_error("Unknown control command", false)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::dev::sample_api::*;
    use serde_json::{Value, json};
    use std::io::{self, Read, Write};
    use std::net::TcpStream;
    use std::thread;
    use std::time::{Duration, Instant};

    fn body_json(body: &[u8]) -> Value {
        serde_json::from_slice(body).unwrap()
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
    fn the_huge_answer_streams_60_mb_with_its_length() {
        let api = SampleApi::start("127.0.0.1:0", SampleApiOptions::default()).unwrap();
        api.set_fault(Fault::Huge);
        let (status, head, body) = get_with_head(&api, &format!("/x?endpoint=user/info&{KEY}"));
        assert_eq!(status, 200);
        assert!(
            head.contains(&format!("\r\nContent-Length: {HUGE_BODY_BYTES}")),
            "{head}"
        );
        assert!(!head.contains("chunked"), "{head}");
        assert_eq!(body.len() as u64, HUGE_BODY_BYTES);
        assert!(body.ends_with(br#"xxx"}}"#));
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

    #[test]
    fn a_stopped_api_refuses_instead_of_hanging_a_kept_connection() {
        let api = SampleApi::start("127.0.0.1:0", SampleApiOptions::default()).unwrap();
        let mut kept = TcpStream::connect(api.addr()).unwrap();
        kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let call = format!("GET /x?endpoint=user/info&{KEY} HTTP/1.1\r\nHost: x\r\n\r\n");
        kept.write_all(call.as_bytes()).unwrap();
        let mut answer = [0u8; 512];
        assert!(kept.read(&mut answer).unwrap() > 0);
        let addr = api.addr();
        api.stop();
        // The pooled connection a client would reuse is closed, not left to hang.
        let _ = kept.write_all(call.as_bytes());
        let mut rest = Vec::new();
        match kept.read_to_end(&mut rest) {
            Ok(_) => assert!(!String::from_utf8_lossy(&rest).contains("HTTP/1.1 200")),
            Err(e) => assert_ne!(e.kind(), io::ErrorKind::WouldBlock, "it hung"),
        }
        assert!(TcpStream::connect(addr).is_err(), "a new call is refused");
    }
}
