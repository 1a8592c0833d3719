//! The license API client: one ureq agent, a call per endpoint, errors in the seed's words.
//!
//! Performs HTTP I/O only. Every call is
//! `GET {base}?endpoint=NAME&license_key=..&domain=..&email=..` plus the endpoint's own
//! parameters, with connect and total time limits and a cap on the body size. Answers are
//! asked for in gzip and inflated here, with the cap on the inflated bytes; redirects are
//! answers, never followed.

use std::fmt;
use std::io::{self, Read};
use std::time::Duration;

use flate2::read::MultiGzDecoder;
use serde_json::Value;
use ureq::Agent;

use crate::data::history::TransactionList;

use super::wire::{EnvelopeError, history_fast, transactions_array, unwrap_envelope};

/// The history in `credits/history` data decoded the lenient way (any envelope).
pub fn history_from_data(data: &Value) -> Result<TransactionList, ApiError> {
    let list =
        transactions_array(data).ok_or_else(|| ApiError::Format("no transactions array".into()))?;
    let text = serde_json::to_string(list).map_err(|e| ApiError::Format(e.to_string().into()))?;
    TransactionList::from_array(text).map_err(|e| ApiError::Format(e.to_string().into()))
}

/// The public license server, used when the config names no `api_url`.
pub const DEFAULT_API_URL: &str = "https://comusthumbz.com/projects/api.php";
/// The largest answer we read; a 10,000-entry history is about 2.5 MB.
/// Room for 100,000 entries; a 60 MB answer is refused with a clear message.
pub const MAX_BODY_BYTES: u64 = 40 * 1024 * 1024;

/// A gzip answer inflating past this many bytes at more than [`GZIP_BOMB_RATIO`] times
/// the compressed bytes read so far is a gzip bomb, refused at once rather than at the cap.
///
/// Why these numbers: JSON answers inflate 9 to 14 times (a 10,000-entry history is
/// 2.4 MB from 0.27 MB at gzip's fastest level, from 0.18 MB at its best); deflate's own
/// limit is about 1030 times, and a bomb sits at that limit. 200 times is far above any
/// real answer and far below a bomb. Under 1 MiB inflated the cost is small whatever the
/// ratio, so nothing is refused there. The compressed bytes counted include the
/// decoder's read-ahead (32 KiB), which only makes the check more lenient.
pub const GZIP_BOMB_FLOOR: u64 = 1024 * 1024;
/// See [`GZIP_BOMB_FLOOR`].
pub const GZIP_BOMB_RATIO: u64 = 200;

/// The four endpoints the page uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Pricing,
    UserInfo,
    UserStats,
    History,
}

impl Endpoint {
    /// The `endpoint` parameter's value.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Pricing => "pricing/current",
            Endpoint::UserInfo => "user/info",
            Endpoint::UserStats => "user/stats",
            Endpoint::History => "credits/history",
        }
    }

    fn extra_params(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Endpoint::History => &[("limit", "10000")],
            _ => &[],
        }
    }
}

/// What identifies the installation to the license server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub api_url: String,
    pub license_key: String,
    pub domain: String,
    pub email: String,
}

impl Credentials {
    /// Identifies these credentials without holding the key: an HMAC of all four fields
    /// with the installation's secret, so the stored value is no offline test of a guess
    /// at the key (an unsalted digest was).
    pub fn fingerprint(&self, secret: &crate::data::secret::Secret) -> String {
        let fields = [&self.api_url, &self.license_key, &self.domain, &self.email];
        secret.sign("credentials", &fields.map(String::as_str))
    }
}

/// Why a call gave no data. `Display` is the message the page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// Refused, DNS, TLS or time-out; the cause shows in debug mode only.
    Connect(Cause),
    /// An HTTP status other than 200 without a JSON error.
    Status(u16),
    /// Not JSON, or JSON of the wrong shape; the cause shows in debug mode only.
    Format(Cause),
    /// `success: false` with the server's text.
    Refused(String),
    /// The body was larger than we read.
    TooLarge(u64),
    /// No answer in time: the call's own limit, or the patience of a view that had older
    /// data to show (the call then goes on). Shown as a failure to connect, as the PHP
    /// page does; the cause says it was a time-out.
    TimedOut(Cause),
    /// An earlier call failed or timed out, so views do not call again before `until`
    /// (Unix seconds, `--api-retry-after`).
    Resting { until: i64, cause: Cause },
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Connect(_) | ApiError::TimedOut(_) | ApiError::Resting { .. } => {
                f.write_str("Failed to connect to License API")
            }
            ApiError::Status(status) => write!(f, "API returned HTTP {status}"),
            ApiError::Format(_) => f.write_str("Invalid API response format"),
            ApiError::Refused(text) => f.write_str(text),
            ApiError::TooLarge(limit) => write!(
                f,
                "API response too large (over {} MB)",
                limit / (1024 * 1024)
            ),
        }
    }
}

impl ApiError {
    /// The error in the page's language (the seed's words in English); the server's own
    /// refusal is shown as it came.
    pub fn localized(&self, strings: &crate::data::i18n::Strings) -> String {
        match self {
            ApiError::Connect(_) | ApiError::TimedOut(_) | ApiError::Resting { .. } => {
                strings.get("token_usage_api_connect").to_string()
            }
            ApiError::Status(status) => strings
                .get("token_usage_api_status")
                .replace("{status}", &status.to_string()),
            ApiError::Format(_) => strings.get("token_usage_api_format").to_string(),
            ApiError::Refused(text) => text.to_string(),
            ApiError::TooLarge(limit) => strings
                .get("token_usage_api_too_large")
                .replace("{count}", &(limit / (1024 * 1024)).to_string()),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApiError::Connect(cause)
            | ApiError::Format(cause)
            | ApiError::TimedOut(cause)
            | ApiError::Resting { cause, .. } => Some(cause),
            ApiError::Status(_) | ApiError::Refused(_) | ApiError::TooLarge(_) => None,
        }
    }
}

/// The cause of an [`ApiError`] in words, the license key cut out: for logs and the debug
/// page, never for a visitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause(pub String);

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Cause {}

impl From<String> for Cause {
    fn from(text: String) -> Self {
        Cause(text)
    }
}

impl From<&str> for Cause {
    fn from(text: &str) -> Self {
        Cause(text.to_string())
    }
}

/// A raw answer, as the debug page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAnswer {
    pub status: u16,
    pub body: String,
}

/// The client: one agent shared by every request, so connections are reused.
#[derive(Debug, Clone)]
pub struct ApiClient {
    agent: Agent,
    max_body: u64,
    total: Duration,
}

impl Default for ApiClient {
    fn default() -> Self {
        Self::new(
            Duration::from_secs(10),
            Duration::from_secs(30),
            MAX_BODY_BYTES,
        )
    }
}

impl ApiClient {
    /// A client with the given connect and whole-call limits and body cap.
    pub fn new(connect: Duration, total: Duration, max_body: u64) -> Self {
        let agent = Agent::config_builder()
            .timeout_connect(Some(connect))
            .timeout_global(Some(total))
            .http_status_as_error(false)
            // httpoxy: a CGI environment's HTTP_PROXY comes from the request's Proxy header.
            .proxy(None)
            .user_agent(concat!("tokenusage/", env!("CARGO_PKG_VERSION")))
            .accept("application/json")
            // Small on the wire, as with ureq's gzip feature; but ureq capped only the
            // compressed bytes, so we inflate ourselves (`inflate_gzip`). Without that
            // feature ureq adds no Accept-Encoding and leaves Content-Encoding alone.
            .accept_encoding("gzip")
            // The PHP page's cURL follows no redirect: a 3xx is an answer ("API returned
            // HTTP 302"), and the license key never goes to another origin.
            .max_redirects(0)
            .max_idle_connections_per_host(8)
            .build()
            .new_agent();
        ApiClient {
            agent,
            max_body,
            total,
        }
    }

    /// The longest one call may take.
    pub fn total_timeout(&self) -> Duration {
        self.total
    }

    /// Calls an endpoint and returns the `data` object of a successful answer.
    pub fn call(&self, credentials: &Credentials, endpoint: Endpoint) -> Result<Value, ApiError> {
        let raw = self.call_raw(credentials, endpoint)?;
        decode(&raw)
    }

    /// Calls `credits/history`: the common envelope is decoded in one pass, anything
    /// else leniently.
    pub fn call_history(&self, credentials: &Credentials) -> Result<TransactionList, ApiError> {
        let raw = self.call_raw(credentials, Endpoint::History)?;
        if raw.status == 200 {
            if let Some(list) = history_fast(&raw.body) {
                return Ok(list);
            }
        }
        history_from_data(&decode(&raw)?)
    }

    /// Calls an endpoint and returns the status and body as received.
    pub fn call_raw(
        &self,
        credentials: &Credentials,
        endpoint: Endpoint,
    ) -> Result<RawAnswer, ApiError> {
        let mut request = self
            .agent
            .get(&credentials.api_url)
            .query("endpoint", endpoint.name())
            .query("license_key", &credentials.license_key)
            .query("domain", &credentials.domain)
            .query("email", &credentials.email);
        for (key, value) in endpoint.extra_params() {
            request = request.query(key, value);
        }
        let key = &credentials.license_key;
        let mut response = request.call().map_err(|e| connect_error(&e, key))?;
        let status = response.status().as_u16();
        let gzip = is_gzip(
            response
                .headers()
                .get(ureq::http::header::CONTENT_ENCODING)
                .and_then(|value| value.to_str().ok()),
        );
        // The cap on the wire bytes, then (for gzip) the cap on the inflated bytes.
        let wire = response.body_mut().with_config().limit(self.max_body);
        let bytes = if gzip {
            inflate_gzip(wire.reader(), self.max_body, key)?
        } else {
            wire.read_to_vec().map_err(|e| body_error(e, key))?
        };
        let body = String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Ok(RawAnswer { status, body })
    }
}

/// Whether a `Content-Encoding` value is gzip (`x-gzip` is its old name). Answers in any
/// other coding are read as they come.
fn is_gzip(content_encoding: Option<&str>) -> bool {
    content_encoding.is_some_and(|coding| {
        let coding = coding.trim();
        coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip")
    })
}

/// Inflates a gzip answer as it comes off `wire`, keeping at most `max_body` inflated
/// bytes (the buffer never grows past them either) and refusing a gzip bomb (see
/// [`GZIP_BOMB_FLOOR`]) as soon as it shows: both are [`ApiError::TooLarge`]. A damaged
/// gzip is [`ApiError::Format`]; a failure of `wire` itself is reported as its own.
///
/// ureq's gzip feature put its cap under the decoder, on the compressed bytes: 1 MB on
/// the wire inflated to 1 GiB took the process to 5 GB.
pub fn inflate_gzip(
    wire: impl Read,
    max_body: u64,
    license_key: &str,
) -> Result<Vec<u8>, ApiError> {
    let cap = usize::try_from(max_body).unwrap_or(usize::MAX);
    let mut decoder = MultiGzDecoder::new(WireCounter {
        inner: wire,
        bytes: 0,
        error: None,
    });
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match decoder.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // No bytes at all is no gzip stream, but servers label empty answers (a
            // redirect, a 204) gzip too: an empty body.
            Err(_) if decoder.get_ref().bytes == 0 && decoder.get_ref().error.is_none() => {
                return Ok(out);
            }
            Err(e) => {
                return Err(match decoder.get_mut().error.take() {
                    Some(wire_error) => body_error(ureq::Error::from(wire_error), license_key),
                    None => ApiError::Format(format!("damaged gzip body: {e}").into()),
                });
            }
        };
        let inflated = out.len() + n;
        let compressed = decoder.get_ref().bytes;
        let bomb = inflated as u64 > GZIP_BOMB_FLOOR
            && inflated as u64 > compressed.saturating_mul(GZIP_BOMB_RATIO);
        if inflated > cap || bomb {
            return Err(ApiError::TooLarge(max_body));
        }
        if out.capacity() < inflated {
            // Doubling, as a Vec would, but never past the cap.
            let grown = (out.capacity() * 2).clamp(inflated, cap);
            out.reserve_exact(grown - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Counts the bytes read from the wire and keeps the wire's own error, so a broken
/// connection is not taken for a damaged gzip.
struct WireCounter<R> {
    inner: R,
    bytes: u64,
    error: Option<io::Error>,
}

impl<R: Read> Read for WireCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let kind = e.kind();
                self.error = Some(e);
                Err(kind.into())
            }
        }
    }
}

/// An error reading an answer's body: over the cap, or a transport error.
fn body_error(error: ureq::Error, license_key: &str) -> ApiError {
    match error {
        ureq::Error::BodyExceedsLimit(limit) => ApiError::TooLarge(limit),
        other => connect_error(&other, license_key),
    }
}

/// Turns a raw answer into the `data` object, per the contract's error table.
pub fn decode(raw: &RawAnswer) -> Result<Value, ApiError> {
    let parsed: Result<Value, _> = serde_json::from_str(&raw.body);
    match (raw.status, parsed) {
        (200, Ok(body)) => unwrap_envelope(body).map_err(envelope_error),
        (200, Err(e)) => Err(ApiError::Format(e.to_string().into())),
        // A 4xx with a JSON error carries the server's own words.
        (400..=499, Ok(body)) => match unwrap_envelope(body) {
            Err(EnvelopeError::Refused(text)) => Err(ApiError::Refused(text)),
            _ => Err(ApiError::Status(raw.status)),
        },
        (status, _) => Err(ApiError::Status(status)),
    }
}

fn envelope_error(error: EnvelopeError) -> ApiError {
    match error {
        EnvelopeError::Refused(text) => ApiError::Refused(text),
        EnvelopeError::WrongShape => ApiError::Format("data is not an object".into()),
    }
}

/// A transport error, with the license key cut out: the cause may quote the request URL,
/// and causes reach the debug page and logs.
fn connect_error(error: &ureq::Error, license_key: &str) -> ApiError {
    let cause = redact_key(&error.to_string(), license_key);
    match error {
        ureq::Error::Timeout(_) => ApiError::TimedOut(format!("timed out ({cause})").into()),
        _ => ApiError::Connect(cause.into()),
    }
}

/// Replaces the key, as text and percent-encoded, with its first 8 characters and `...`.
pub fn redact_key(text: &str, license_key: &str) -> String {
    if license_key.is_empty() {
        return text.to_string();
    }
    let masked = crate::data::config::mask_key(license_key);
    text.replace(license_key, &masked)
        .replace(&crate::data::url::percent_encode(license_key), &masked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(status: u16, body: &str) -> RawAnswer {
        RawAnswer {
            status,
            body: body.into(),
        }
    }

    #[test]
    fn errors_read_in_the_seeds_words() {
        assert_eq!(
            ApiError::Connect("refused".into()).to_string(),
            "Failed to connect to License API"
        );
        assert_eq!(ApiError::Status(500).to_string(), "API returned HTTP 500");
        assert_eq!(
            ApiError::Format("x".into()).to_string(),
            "Invalid API response format"
        );
    }

    #[test]
    fn the_license_key_is_cut_out_of_error_causes() {
        let key = "SECRET-KEY 1234567890";
        let text = format!(
            "bad url http://x/api.php?license_key={}&k={key}",
            crate::data::url::percent_encode(key)
        );
        let redacted = redact_key(&text, key);
        assert!(!redacted.contains("1234567890"), "{redacted}");
        assert!(redacted.contains("SECRET-K..."));
    }

    #[test]
    fn a_failed_connection_never_reports_the_whole_key() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let credentials = Credentials {
            api_url: format!("http://127.0.0.1:{port}/api.php"),
            license_key: "ABCDEFGH-SECRET-TAIL".into(),
            domain: "example.com".into(),
            email: "a@example.com".into(),
        };
        let error = ApiClient::default()
            .call(&credentials, Endpoint::UserInfo)
            .unwrap_err();
        assert!(matches!(error, ApiError::Connect(_)));
        assert!(
            !format!("{error} {:?}", std::error::Error::source(&error)).contains("SECRET-TAIL")
        );
    }

    #[test]
    fn decode_follows_the_contracts_error_table() {
        assert_eq!(
            decode(&raw(200, r#"{"success":true,"data":{"a":1}}"#)),
            Ok(serde_json::json!({"a": 1}))
        );
        assert!(matches!(
            decode(&raw(200, "<html>")),
            Err(ApiError::Format(_))
        ));
        assert_eq!(decode(&raw(500, "{}")), Err(ApiError::Status(500)));
        assert_eq!(
            decode(&raw(
                403,
                r#"{"success":false,"error":"License not found"}"#
            )),
            Err(ApiError::Refused("License not found".into()))
        );
        assert_eq!(decode(&raw(404, "nope")), Err(ApiError::Status(404)));
        assert_eq!(
            decode(&raw(200, r#"{"success":false,"error":"License expired"}"#)),
            Err(ApiError::Refused("License expired".into()))
        );
    }

    const KEY: &str = "ABCDEFGH-SECRET-TAIL";

    fn gzip(level: flate2::Compression, parts: &[&[u8]]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
        for part in parts {
            encoder.write_all(part).unwrap();
        }
        encoder.finish().unwrap()
    }

    /// `inflated` bytes of spaces, gzipped at the best level from 1 MiB chunks.
    fn gzip_bomb(inflated: usize) -> Vec<u8> {
        let chunk = vec![b' '; 1024 * 1024];
        let chunks = vec![&chunk[..]; inflated / chunk.len()];
        gzip(flate2::Compression::best(), &chunks)
    }

    /// Bytes that do not compress (SplitMix64 output).
    fn noise(len: usize) -> Vec<u8> {
        let mut state = 7u64;
        (0..len)
            .map(|_| {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let z = (state ^ (state >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                (z ^ (z >> 27)) as u8
            })
            .collect()
    }

    #[test]
    fn a_gzip_bomb_is_refused_after_a_mebibyte_having_read_little_of_it() {
        let bomb = gzip_bomb(128 * 1024 * 1024);
        let started = std::time::Instant::now();
        let mut wire = &bomb[..];
        let refused = inflate_gzip(&mut wire, MAX_BODY_BYTES, KEY).unwrap_err();
        assert_eq!(refused, ApiError::TooLarge(MAX_BODY_BYTES));
        assert_eq!(refused.to_string(), "API response too large (over 40 MB)");
        let read = bomb.len() - wire.len();
        assert!(
            read <= 64 * 1024,
            "read {read} of {} compressed bytes",
            bomb.len()
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn inflated_bytes_are_capped_and_never_buffered_past_the_cap() {
        let cap = 256 * 1024;
        let at_cap = noise(cap);
        let stored = gzip(flate2::Compression::none(), &[&at_cap]);
        let body = inflate_gzip(&stored[..], cap as u64, KEY).unwrap();
        assert_eq!(body, at_cap);
        assert!(body.capacity() <= cap, "capacity {}", body.capacity());

        let over = gzip(flate2::Compression::none(), &[&noise(cap + 1)]);
        assert_eq!(
            inflate_gzip(&over[..], cap as u64, KEY),
            Err(ApiError::TooLarge(cap as u64))
        );
    }

    #[test]
    fn a_gzipped_history_inflates_to_its_json_and_is_no_bomb() {
        let anchor = crate::dev::sample_api::FIXED_ANCHOR;
        let data = crate::dev::sample_api::generate(10_000, 5512, anchor, false);
        let json = crate::dev::sample_api::render_history(&data, 0, 10_000);
        let packed = gzip(flate2::Compression::best(), &[&json]);
        let ratio = json.len() / packed.len();
        assert!(ratio < 20, "a real history inflates {ratio} times");
        assert_eq!(
            inflate_gzip(&packed[..], MAX_BODY_BYTES, KEY).unwrap(),
            json
        );

        // Several gzip members one after another are one body.
        let mut members = gzip(flate2::Compression::fast(), &[b"{\"success\":"]);
        members.extend(gzip(flate2::Compression::fast(), &[b"true}"]));
        assert_eq!(
            inflate_gzip(&members[..], MAX_BODY_BYTES, KEY).unwrap(),
            b"{\"success\":true}"
        );
        assert_eq!(inflate_gzip(&b""[..], MAX_BODY_BYTES, KEY).unwrap(), b"");
    }

    #[test]
    fn a_damaged_gzip_is_an_invalid_api_response_format() {
        let packed = gzip(flate2::Compression::default(), &[&noise(10_000)]);
        let mut flipped = packed.clone();
        flipped[packed.len() - 6] ^= 0xff; // in the CRC
        let damaged: [&[u8]; 3] = [
            b"<html>not gzip</html>",
            &packed[..packed.len() / 2],
            &flipped,
        ];
        for body in damaged {
            let error = inflate_gzip(body, MAX_BODY_BYTES, KEY).unwrap_err();
            assert!(matches!(error, ApiError::Format(_)), "{error:?}");
            assert_eq!(error.to_string(), "Invalid API response format");
        }
    }

    /// Gives `data`, then fails with `error`.
    struct Breaking {
        data: Vec<u8>,
        error: Option<io::Error>,
    }

    impl Read for Breaking {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.data.is_empty() {
                return Err(self
                    .error
                    .take()
                    .unwrap_or_else(|| io::Error::other("again")));
            }
            let n = buf.len().min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn a_wire_failure_mid_gzip_is_reported_as_the_wires_not_as_damage() {
        let packed = gzip(flate2::Compression::default(), &[&noise(100_000)]);
        let half = packed[..packed.len() / 2].to_vec();
        let reset = Breaking {
            data: half.clone(),
            error: Some(io::ErrorKind::ConnectionReset.into()),
        };
        let error = inflate_gzip(reset, MAX_BODY_BYTES, KEY).unwrap_err();
        assert!(matches!(error, ApiError::Connect(_)), "{error:?}");
        let over_wire_cap = Breaking {
            data: half,
            error: Some(ureq::Error::BodyExceedsLimit(1000).into_io()),
        };
        assert_eq!(
            inflate_gzip(over_wire_cap, MAX_BODY_BYTES, KEY),
            Err(ApiError::TooLarge(1000))
        );
    }

    /// Serves one HTTP answer on loopback: the URL, and the request's head once joined.
    fn serve_once(answer: Vec<u8>) -> (String, std::thread::JoinHandle<String>) {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/api.php", listener.local_addr().unwrap());
        let served = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                stream.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            stream.write_all(&answer).unwrap();
            String::from_utf8_lossy(&head).to_ascii_lowercase()
        });
        (url, served)
    }

    fn answer(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    }

    fn credentials(api_url: String) -> Credentials {
        Credentials {
            api_url,
            license_key: KEY.into(),
            domain: "example.com".into(),
            email: "a@example.com".into(),
        }
    }

    #[test]
    fn answers_are_asked_for_in_gzip_and_inflated_here() {
        let json = br#"{"success":true,"data":{"a":1}}"#;
        let packed = gzip(flate2::Compression::default(), &[json]);
        for coding in ["gzip", "x-gzip", " GZIP "] {
            let headers =
                format!("Content-Type: application/json\r\nContent-Encoding: {coding}\r\n");
            let (url, served) = serve_once(answer("200 OK", &headers, &packed));
            let data = ApiClient::default().call(&credentials(url), Endpoint::UserInfo);
            assert_eq!(data, Ok(serde_json::json!({"a": 1})), "{coding:?}");
            let head = served.join().unwrap();
            assert!(head.contains("\r\naccept-encoding: gzip\r\n"), "{head}");
        }
        // Another coding is read as it comes, as before.
        let headers = "Content-Encoding: br\r\n";
        let (url, _served) = serve_once(answer("200 OK", headers, &packed));
        let error = ApiClient::default()
            .call(&credentials(url), Endpoint::UserInfo)
            .unwrap_err();
        assert!(matches!(error, ApiError::Format(_)), "{error:?}");
    }

    #[test]
    fn a_redirect_is_an_answer_and_never_followed() {
        let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        elsewhere.set_nonblocking(true).unwrap();
        let location = format!(
            "Location: http://{}/api.php\r\n",
            elsewhere.local_addr().unwrap()
        );
        let (url, _served) = serve_once(answer("302 Found", &location, b"Moved"));
        let error = ApiClient::default()
            .call(&credentials(url), Endpoint::UserStats)
            .unwrap_err();
        assert_eq!(error, ApiError::Status(302));
        assert_eq!(error.to_string(), "API returned HTTP 302");
        assert!(
            elsewhere.accept().is_err(),
            "the redirect target was connected to"
        );
    }
}
