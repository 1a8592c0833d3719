//! A transport-free response and its CGI serialisation (RFC 3875 section 6).
//!
//! FastCGI sends the same CGI-style head in its STDOUT stream, so one writer serves both;
//! the HTTP server (`transport::http`) writes its own status line and shares the
//! header-line writer. No I/O beyond the given writer.

use std::borrow::Cow;
use std::io::{self, Write};

/// A complete response: status, headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response with the given status, content type and body.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// An HTML page.
    pub fn html(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "text/html; charset=UTF-8", body)
    }

    /// A plain-text message.
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "text/plain; charset=UTF-8", body)
    }

    /// A plain-text page that is only the status, e.g. `413 Payload Too Large`.
    pub fn status_page(status: u16) -> Self {
        Self::text(status, format!("{status} {}", reason_phrase(status)))
    }

    /// A redirect to `location` (relative URLs are fine for browsers and web servers).
    pub fn redirect(location: &str) -> Self {
        let mut response = Self::text(302, format!("Redirecting to {location}\n"));
        response.set_header("Location", location);
        response
    }

    /// The answer to a form that changed something: `303 See Other` to `location`, which
    /// the browser loads with GET (a reload then repeats nothing).
    pub fn redirect_after_post(location: &str) -> Self {
        let mut response = Self::text(303, format!("See {location}\n"));
        response.set_header("Location", location);
        response
    }

    /// Adds or replaces a header (names compared case-insensitively).
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
    }

    /// Adds a header beside any of the same name (`Set-Cookie`).
    pub fn add_header(&mut self, name: &str, value: &str) {
        self.headers.push((name.into(), value.into()));
    }

    /// The value of a header, if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Writes the CGI response: a `Status` line, the headers, a blank line and the body.
    pub fn write_cgi(&self, out: &mut impl Write) -> io::Result<()> {
        write!(
            out,
            "Status: {} {}\r\n",
            self.status,
            reason_phrase(self.status)
        )?;
        self.write_headers(out)?;
        out.write_all(b"\r\n")?;
        out.write_all(&self.body)
    }

    /// Writes the headers, one per line (see [`write_header_line`]).
    pub fn write_headers(&self, out: &mut impl Write) -> io::Result<()> {
        for (name, value) in &self.headers {
            write_header_line(out, name, value)?;
        }
        Ok(())
    }
}

/// Writes one `name: value` line, dropping any CR or LF in either so a header can never
/// be split.
pub fn write_header_line(out: &mut impl Write, name: &str, value: &str) -> io::Result<()> {
    write!(
        out,
        "{}: {}\r\n",
        without_line_breaks(name),
        without_line_breaks(value)
    )
}

/// `text` without CR and LF; copied only when it has some.
fn without_line_breaks(text: &str) -> Cow<'_, str> {
    if text.contains(['\r', '\n']) {
        Cow::Owned(text.replace(['\r', '\n'], ""))
    } else {
        Cow::Borrowed(text)
    }
}

/// The reason phrase for the statuses this program sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        303 => "See Other",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgi_output_has_status_headers_blank_line_and_body() {
        let mut out = Vec::new();
        Response::html(200, "<p>hi</p>")
            .write_cgi(&mut out)
            .unwrap();
        assert_eq!(
            out,
            b"Status: 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n<p>hi</p>"
        );
    }

    #[test]
    fn header_values_cannot_inject_lines() {
        let mut response = Response::text(200, "");
        response.set_header("X-Test", "a\r\nSet-Cookie: evil=1");
        let mut out = Vec::new();
        response.write_cgi(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("X-Test: aSet-Cookie: evil=1\r\n"));
        assert!(!text.contains("\r\nSet-Cookie"));
    }

    #[test]
    fn header_names_cannot_inject_lines_either() {
        let mut out = Vec::new();
        write_header_line(&mut out, "X-A\r\nSet-Cookie", "1\n").unwrap();
        assert_eq!(out, b"X-ASet-Cookie: 1\r\n");
    }

    #[test]
    fn a_status_page_says_the_status_and_its_reason() {
        let page = Response::status_page(413);
        assert_eq!(page.status, 413);
        assert_eq!(page.body, b"413 Payload Too Large");
    }

    #[test]
    fn redirect_sets_location() {
        let response = Response::redirect("ctlogin.php");
        assert_eq!(response.status, 302);
        assert_eq!(response.header("location"), Some("ctlogin.php"));
    }
}
