//! The development HTTP server of the demo, the sample license API and the tests: the
//! request and response values handlers see, the server that runs them on tiny_http
//! ([`server`]), and the CGI bridge the demo's preview of the page needs ([`cgi`]).
//!
//! No I/O here: the values are plain data, except [`HttpBody::Stream`], a reader the
//! server copies to the socket.

pub mod cgi;
pub mod server;

use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;

use crate::transport::response::Response;

pub use cgi::cgi_request_from_http;
pub use server::{HttpServer, serve};

/// The request handler every worker calls. A handler that waits (a slow or hanging
/// answer) should watch the server's shutdown flag and return when it is set.
pub type Handler = Arc<dyn Fn(&HttpRequest) -> HttpResponse + Send + Sync>;

/// One HTTP request, body read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method as sent (`GET`, `HEAD`, ...).
    pub method: String,
    /// The raw request-target: `/path?query` (or absolute-form, or `*`).
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Headers in arrival order; values kept as bytes, as CGI passes them.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body (empty when none was sent).
    pub body: Vec<u8>,
    /// The client's address.
    pub remote_addr: SocketAddr,
    /// The address the server listens on.
    pub local_addr: SocketAddr,
}

impl HttpRequest {
    /// The first value of a header (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The path part of the target, without the query (`/` for absolute-form without one).
    pub fn path(&self) -> &str {
        let origin = origin_form(&self.target);
        origin.split_once('?').map_or(origin, |(path, _)| path)
    }

    /// The query string without the `?`, or "" when there is none.
    pub fn query(&self) -> &str {
        origin_form(&self.target)
            .split_once('?')
            .map_or("", |(_, query)| query)
    }
}

/// The target in origin-form: an absolute-form `http://host/p?q` becomes `/p?q`.
fn origin_form(target: &str) -> &str {
    // Compared as bytes: slicing the str could split a multi-byte character.
    let lower_starts = |prefix: &str| {
        target
            .as_bytes()
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
    };
    let rest = if lower_starts("http://") {
        &target[7..]
    } else if lower_starts("https://") {
        &target[8..]
    } else {
        return target;
    };
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
        // `http://host?q`: an empty path and the query.
        Some(i) => &rest[i..],
        None => "/",
    }
}

/// A response body; its length is always known, so it goes out with `Content-Length`.
pub enum HttpBody {
    /// Owned bytes.
    Bytes(Vec<u8>),
    /// Bytes shared between responses (a pre-rendered document).
    Shared(Arc<[u8]>),
    /// A body of known length read piecewise while it is sent, so a huge body never sits
    /// in memory. The server sends exactly `len` bytes: a reader that ends early fails
    /// the response, and bytes past `len` are never read.
    Stream {
        len: u64,
        reader: Box<dyn Read + Send>,
    },
}

impl HttpBody {
    /// A body read from `reader`, which should give exactly `len` bytes.
    pub fn stream(len: u64, reader: impl Read + Send + 'static) -> Self {
        HttpBody::Stream {
            len,
            reader: Box::new(reader),
        }
    }

    /// The body's length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            HttpBody::Bytes(b) => b.len() as u64,
            HttpBody::Shared(b) => b.len() as u64,
            HttpBody::Stream { len, .. } => *len,
        }
    }

    /// True when the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The body as a reader of exactly [`len`](Self::len) bytes, for the server.
    pub fn into_reader(self) -> Box<dyn Read + Send> {
        match self {
            HttpBody::Bytes(b) => Box::new(io::Cursor::new(b)),
            HttpBody::Shared(b) => Box::new(io::Cursor::new(b)),
            HttpBody::Stream { len, reader } => Box::new(ExactReader {
                inner: reader,
                left: len,
            }),
        }
    }
}

impl fmt::Debug for HttpBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpBody::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            HttpBody::Shared(b) => write!(f, "Shared({} bytes)", b.len()),
            HttpBody::Stream { len, .. } => write!(f, "Stream({len} bytes)"),
        }
    }
}

impl From<Vec<u8>> for HttpBody {
    fn from(bytes: Vec<u8>) -> Self {
        HttpBody::Bytes(bytes)
    }
}

impl From<String> for HttpBody {
    fn from(text: String) -> Self {
        HttpBody::Bytes(text.into_bytes())
    }
}

impl From<&str> for HttpBody {
    fn from(text: &str) -> Self {
        HttpBody::Bytes(text.as_bytes().to_vec())
    }
}

impl From<Arc<[u8]>> for HttpBody {
    fn from(bytes: Arc<[u8]>) -> Self {
        HttpBody::Shared(bytes)
    }
}

/// Gives exactly `left` bytes of `inner`: stops there, and fails when `inner` ends first,
/// so a faulty stream can never send other than its announced length.
struct ExactReader {
    inner: Box<dyn Read + Send>,
    left: u64,
}

impl Read for ExactReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let room = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..room])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "streamed body shorter than its length",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A response as a handler gives it. The server adds `Content-Length` (and `Date`,
/// `Server`); framing headers the handler sets (`Content-Length`, `Connection`,
/// `Transfer-Encoding`) are dropped.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: HttpBody,
}

impl HttpResponse {
    /// A response with the given status, content type and body.
    pub fn new(status: u16, content_type: &str, body: impl Into<HttpBody>) -> Self {
        HttpResponse {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<HttpBody>) -> Self {
        Self::new(status, "text/plain; charset=UTF-8", body)
    }

    /// A JSON response.
    pub fn json(status: u16, body: impl Into<HttpBody>) -> Self {
        Self::new(status, "application/json", body)
    }

    /// The response with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The value of a header, if set (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl From<Response> for HttpResponse {
    fn from(response: Response) -> Self {
        HttpResponse {
            status: response.status,
            headers: response.headers,
            body: HttpBody::Bytes(response.body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn request(target: &str) -> HttpRequest {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50000);
        HttpRequest {
            method: "GET".into(),
            target: target.into(),
            minor_version: 1,
            headers: Vec::new(),
            body: Vec::new(),
            remote_addr: addr,
            local_addr: addr,
        }
    }

    #[test]
    fn path_and_query_split_the_target() {
        let req = request("/ct/admin/tokenusage.php?page=2&x=%20");
        assert_eq!(req.path(), "/ct/admin/tokenusage.php");
        assert_eq!(req.query(), "page=2&x=%20");
        let absolute = request("http://example.com/a/b?q=1");
        assert_eq!(absolute.path(), "/a/b");
        assert_eq!(absolute.query(), "q=1");
        assert_eq!(request("http://example.com").path(), "/");
        assert_eq!(request("HTTPS://example.com?q=2").query(), "q=2");
        assert_eq!(request("/plain").query(), "");
        assert_eq!(request("hé://x").path(), "hé://x");
    }

    fn read_all(body: HttpBody) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        body.into_reader().read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn a_streamed_body_gives_exactly_its_length() {
        let short = HttpBody::stream(4, &b"abc"[..]);
        assert_eq!(
            read_all(short).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        let long = HttpBody::stream(2, &b"abc"[..]);
        assert_eq!(read_all(long).unwrap(), b"ab");
        let exact = HttpBody::stream(3, &b"abc"[..]);
        assert_eq!(exact.len(), 3);
        assert_eq!(read_all(exact).unwrap(), b"abc");
        assert_eq!(read_all(HttpBody::from("bytes")).unwrap(), b"bytes");
        let shared: Arc<[u8]> = Arc::from(&b"shared"[..]);
        assert_eq!(read_all(HttpBody::from(shared)).unwrap(), b"shared");
    }
}
