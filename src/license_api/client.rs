//! The license API client: one ureq agent, a call per endpoint, errors in the seed's words.
//!
//! Performs HTTP I/O only. Every call is
//! `GET {base}?endpoint=NAME&license_key=..&domain=..&email=..` plus the endpoint's own
//! parameters, with connect and total time limits and a cap on the body size.

use std::fmt;
use std::time::Duration;

use serde_json::Value;
use ureq::Agent;

use crate::history::TransactionList;

use super::wire::{EnvelopeError, history_fast, transactions_array, unwrap_envelope};

/// The history in `credits/history` data decoded the lenient way (any envelope).
pub fn history_from_data(data: &Value) -> Result<TransactionList, ApiError> {
    let list =
        transactions_array(data).ok_or_else(|| ApiError::Format("no transactions array".into()))?;
    let text = serde_json::to_string(list).map_err(|e| ApiError::Format(e.to_string()))?;
    TransactionList::from_array(text).map_err(|e| ApiError::Format(e.to_string()))
}

/// The public license server, used when the config names no `api_url`.
pub const DEFAULT_API_URL: &str = "https://comusthumbz.com/projects/api.php";
/// The largest answer we read; a 10,000-entry history is about 2.5 MB.
/// Room for 100,000 entries; a 60 MB answer is refused with a clear message.
pub const MAX_BODY_BYTES: u64 = 40 * 1024 * 1024;

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
    /// Identifies these credentials without holding the key: md5 of all four fields.
    pub fn fingerprint(&self) -> String {
        crate::digest::md5_hex(&format!(
            "{}\n{}\n{}\n{}",
            self.api_url, self.license_key, self.domain, self.email
        ))
    }
}

/// Why a call gave no data. `Display` is the message the page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// Refused, DNS, TLS or time-out; the cause shows in debug mode only.
    Connect(String),
    /// An HTTP status other than 200 without a JSON error.
    Status(u16),
    /// Not JSON, or JSON of the wrong shape; the cause shows in debug mode only.
    Format(String),
    /// `success: false` with the server's text.
    Refused(String),
    /// The body was larger than we read.
    TooLarge(u64),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Connect(_) => f.write_str("Failed to connect to License API"),
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

impl std::error::Error for ApiError {}

impl ApiError {
    /// The underlying cause, for debug mode.
    pub fn detail(&self) -> Option<&str> {
        match self {
            ApiError::Connect(cause) | ApiError::Format(cause) => Some(cause),
            _ => None,
        }
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
        let bytes = response
            .body_mut()
            .with_config()
            .limit(self.max_body)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(limit) => ApiError::TooLarge(limit),
                other => connect_error(&other, key),
            })?;
        Ok(RawAnswer {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }
}

/// Turns a raw answer into the `data` object, per the contract's error table.
pub fn decode(raw: &RawAnswer) -> Result<Value, ApiError> {
    let parsed: Result<Value, _> = serde_json::from_str(&raw.body);
    match (raw.status, parsed) {
        (200, Ok(body)) => unwrap_envelope(body).map_err(envelope_error),
        (200, Err(e)) => Err(ApiError::Format(e.to_string())),
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
    ApiError::Connect(redact_key(&error.to_string(), license_key))
}

/// Replaces the key, as text and percent-encoded, with its first 8 characters and `...`.
pub fn redact_key(text: &str, license_key: &str) -> String {
    if license_key.is_empty() {
        return text.to_string();
    }
    let masked = crate::config::mask_key(license_key);
    text.replace(license_key, &masked)
        .replace(&crate::router::percent_encode(license_key), &masked)
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
            crate::router::percent_encode(key)
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
        assert!(!format!("{error} {:?}", error.detail()).contains("SECRET-TAIL"));
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
}
