//! `--access-log PATH` (`-` for stderr): one line per request, like a web server's
//! combined log but without what must not be kept: no cookie, no session id, and the
//! query string without any `token` parameter (a CSRF token has no business in a log).
//!
//! I/O: appends to the file (opened once, `O_APPEND`, mode 0640) or writes to stderr.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use crate::transport::request::Request;
use crate::transport::response::Response;

/// Where the lines go.
pub enum AccessLog {
    File(Mutex<File>),
    Stderr,
}

impl AccessLog {
    /// `-` is stderr; anything else a file appended to (made 0640 when missing).
    pub fn open(path: &Path) -> io::Result<AccessLog> {
        if path == Path::new("-") {
            return Ok(AccessLog::Stderr);
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)?;
        Ok(AccessLog::File(Mutex::new(file)))
    }

    /// Writes the request's line; a failed write costs only the line.
    pub fn record(&self, now: i64, request: &Request, response: &Response, took: Duration) {
        let line = access_line(now, request, response, took);
        match self {
            AccessLog::Stderr => eprint!("{line}"),
            AccessLog::File(file) => {
                let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
                let _ = file.write_all(line.as_bytes());
            }
        }
    }
}

/// `2026-11-27T17:50:00Z 127.0.0.1 GET /ct/admin/tokenusage.php?page=2 200 107342 3.1ms\n`
/// (pure). Outside text (path, query) has its control characters and spaces escaped, so a
/// request cannot forge a line.
pub fn access_line(now: i64, request: &Request, response: &Response, took: Duration) -> String {
    let time = chrono::DateTime::from_timestamp(now, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ");
    let query = without_tokens(&request.query_string());
    let target = match query.is_empty() {
        true => request.param("SCRIPT_NAME"),
        false => format!("{}?{query}", request.param("SCRIPT_NAME")),
    };
    format!(
        "{time} {} {} {} {} {} {:.1}ms\n",
        field(&request.param("REMOTE_ADDR")),
        field(&request.param("REQUEST_METHOD")),
        field(&target),
        response.status,
        response.body.len(),
        took.as_secs_f64() * 1000.0
    )
}

/// The query string without its `token` parameters.
fn without_tokens(query: &str) -> String {
    query
        .split(['&', ';'])
        .filter(|part| !part.is_empty())
        .filter(|part| {
            let name = part.split('=').next().unwrap_or("");
            !name.eq_ignore_ascii_case("token")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Text for one field: `-` when empty, control characters, spaces and backslashes as
/// `\xHH`.
fn field(text: &str) -> String {
    if text.is_empty() {
        return "-".into();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || c == ' ' || c == '\\' {
            for byte in c.to_string().bytes() {
                out.push_str(&format!("\\x{byte:02x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_says_who_what_and_how_it_went_without_cookies_or_tokens() {
        let request = Request::from_pairs([
            ("REMOTE_ADDR", "127.0.0.1"),
            ("REQUEST_METHOD", "GET"),
            ("SCRIPT_NAME", "/ct/admin/tokenusage.php"),
            ("QUERY_STRING", "action=refresh_data&token=feedface&page=2"),
            (
                "HTTP_COOKIE",
                "PHPSESSID=secretsession; tokenusage_csrf=abc",
            ),
        ]);
        let response = Response::html(200, "x".repeat(42));
        let line = access_line(
            1_795_795_200,
            &request,
            &response,
            Duration::from_micros(3_140),
        );
        assert_eq!(
            line,
            "2026-11-27T16:00:00Z 127.0.0.1 GET \
             /ct/admin/tokenusage.php?action=refresh_data&page=2 200 42 3.1ms\n"
        );
        assert!(!line.contains("secretsession") && !line.contains("feedface"));
    }

    #[test]
    fn outside_text_cannot_forge_a_line() {
        let request = Request::from_pairs([
            (
                "SCRIPT_NAME",
                "/ct/admin/x.php\n2026-01-01T00:00:00Z 6.6.6.6 GET / 200",
            ),
            ("QUERY_STRING", "a=b c&TOKEN=x"),
        ]);
        let line = access_line(0, &request, &Response::html(404, ""), Duration::ZERO);
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(
            line.contains("\\x0a") && line.contains("a=b\\x20c"),
            "{line}"
        );
        assert!(!line.contains("TOKEN"), "{line}");
        assert!(line.starts_with("1970-01-01T00:00:00Z - - "), "{line}");
    }
}
