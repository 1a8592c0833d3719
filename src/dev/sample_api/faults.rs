//! The sample API's misbehaviour on purpose: the [`Fault`]s, the one in force (and where
//! a redirect points), and the broken answer each gives. The 60 MB answer is a reader,
//! never a buffer; the gzip bomb is built once, on first use.
//!
//! No I/O but the waiting of [`Fault::Hang`], which the caller performs.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::dev::http::{HttpBody, HttpResponse};

use super::answers::render_error;

/// The size of the [`Fault::Huge`] body.
pub const HUGE_BODY_BYTES: u64 = 60 * 1024 * 1024;
/// What the [`Fault::GzipBomb`] history inflates to: 512 MiB from well under 1 MB.
pub const GZIP_BOMB_BYTES: u64 = 512 * 1024 * 1024;
/// Where [`Fault::Redirect`] sends calls until
/// [`SampleApi::set_redirect_target`](super::SampleApi::set_redirect_target) says
/// otherwise: a reserved name that never resolves.
pub const DEFAULT_REDIRECT_TARGET: &str = "http://redirected.invalid/projects/api.php";
/// How long a [`Fault::Hang`] call waits before giving up (unless the server stops first).
pub const HANG_FOR: Duration = Duration::from_secs(120);

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
    /// HTTP 302 to the redirect target
    /// ([`SampleApi::set_redirect_target`](super::SampleApi::set_redirect_target)) with
    /// the request's query, so a client that follows it gets a normal answer from there.
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

/// The fault in force and the redirect target, shared by the handle and the handler.
pub(super) struct Faults {
    fault: Mutex<Fault>,
    redirect_target: Mutex<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Faults {
    pub(super) fn new(fault: Fault) -> Self {
        Faults {
            fault: Mutex::new(fault),
            redirect_target: Mutex::new(DEFAULT_REDIRECT_TARGET.into()),
        }
    }

    pub(super) fn get(&self) -> Fault {
        *lock(&self.fault)
    }

    pub(super) fn set(&self, fault: Fault) {
        *lock(&self.fault) = fault;
    }

    pub(super) fn set_redirect_target(&self, url: &str) {
        *lock(&self.redirect_target) = url.to_string();
    }

    /// The answer `fault` gives instead of the normal one to a call of `endpoint` with
    /// `query`, or `None` when the call is answered normally ([`Fault::Truncated`] cuts
    /// the normal answer: see [`truncated`]). [`Fault::Hang`] calls `wait` first.
    pub(super) fn answer(
        &self,
        fault: Fault,
        endpoint: &str,
        query: &str,
        hostile: bool,
        wait: impl FnOnce(Duration),
    ) -> Option<HttpResponse> {
        let html = "text/html; charset=UTF-8";
        match fault {
            Fault::Status500 => {
                let page = "<html><body><h1>500 Internal Server Error</h1></body></html>\n";
                Some(HttpResponse::new(500, html, page))
            }
            Fault::Garbage => {
                let warning = "<br />\n<b>Warning</b>:  mysqli_connect(): (HY000/1040): Too many \
                               connections in <b>/var/www/projects/api.php</b> on line \
                               <b>12</b><br />\n";
                Some(HttpResponse::new(200, html, warning))
            }
            Fault::Huge => Some(HttpResponse::json(200, huge_body())),
            Fault::Hang => {
                wait(HANG_FOR);
                Some(HttpResponse::text(503, "gave up hanging\n"))
            }
            Fault::Refused => Some(HttpResponse::json(
                200,
                render_error("License not found", hostile),
            )),
            Fault::Redirect => {
                let location = format!("{}?{query}", lock(&self.redirect_target));
                Some(HttpResponse::new(302, html, "Moved\n").with_header("Location", &location))
            }
            Fault::GzipBomb if endpoint == "credits/history" => {
                Some(HttpResponse::json(200, gzip_bomb()).with_header("Content-Encoding", "gzip"))
            }
            Fault::None | Fault::Truncated | Fault::GzipBomb => None,
        }
    }
}

/// The [`Fault::Truncated`] answer: the first half of the normal `body`.
pub(super) fn truncated(body: HttpBody) -> HttpResponse {
    let half = match &body {
        HttpBody::Bytes(b) => b[..b.len() / 2].to_vec(),
        HttpBody::Shared(b) => b[..b.len() / 2].to_vec(),
        // The normal answers are never streamed.
        HttpBody::Stream { .. } => Vec::new(),
    };
    HttpResponse::json(200, half)
}

/// A valid JSON envelope padded to [`HUGE_BODY_BYTES`], read while it is sent so it never
/// sits in memory.
fn huge_body() -> HttpBody {
    const HEAD: &[u8] = br#"{"success":true,"data":{"transactions":[],"total":0,"padding":""#;
    const TAIL: &[u8] = br#""}}"#;
    let padding = HUGE_BODY_BYTES - (HEAD.len() + TAIL.len()) as u64;
    HttpBody::stream(
        HUGE_BODY_BYTES,
        HEAD.chain(io::repeat(b'x').take(padding)).chain(TAIL),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_round_trip() {
        for fault in Fault::ALL {
            assert_eq!(Fault::from_name(fault.name()), Some(fault));
        }
        assert_eq!(Fault::from_name("Status500"), Some(Fault::Status500));
        assert_eq!(Fault::from_name("boom"), None);
    }

    /// Counts the bytes written and keeps only the first and last few.
    #[derive(Default)]
    struct Ends {
        len: u64,
        first: Vec<u8>,
        last: Vec<u8>,
    }

    impl Write for Ends {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.len += buf.len() as u64;
            let want = 64 - self.first.len().min(64);
            self.first.extend(buf.iter().take(want));
            self.last.extend_from_slice(buf);
            let excess = self.last.len().saturating_sub(8);
            self.last.drain(..excess);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_huge_answer_is_60_mb_of_valid_json_read_piecewise_never_held() {
        let answer = Faults::new(Fault::Huge)
            .answer(Fault::Huge, "user/info", "", false, |_| {})
            .unwrap();
        assert_eq!(answer.status, 200);
        // A reader, not a buffer: the bytes exist only while they are copied out.
        assert!(matches!(answer.body, HttpBody::Stream { len, .. } if len == HUGE_BODY_BYTES));
        let mut ends = Ends::default();
        io::copy(&mut answer.body.into_reader(), &mut ends).unwrap();
        assert_eq!(ends.len, HUGE_BODY_BYTES);
        assert!(ends.first.starts_with(br#"{"success":true,"data":{"#));
        assert_eq!(ends.last, br#"xxxxx"}}"#);
    }

    #[test]
    fn faults_answer_instead_of_the_normal_answer_only_where_they_apply() {
        let faults = Faults::new(Fault::None);
        let answer = |fault, endpoint| faults.answer(fault, endpoint, "a=1", false, |_| {});
        assert!(answer(Fault::None, "user/info").is_none());
        assert!(answer(Fault::Truncated, "user/info").is_none());
        assert!(answer(Fault::GzipBomb, "user/stats").is_none());
        assert_eq!(answer(Fault::Status500, "user/info").unwrap().status, 500);
        let mut waited = None;
        let hung = faults.answer(Fault::Hang, "user/info", "", false, |d| waited = Some(d));
        assert_eq!(hung.unwrap().status, 503);
        assert_eq!(waited, Some(HANG_FOR));
        faults.set_redirect_target("http://elsewhere.test/api.php");
        let moved = answer(Fault::Redirect, "user/info").unwrap();
        assert_eq!(moved.status, 302);
        assert_eq!(
            moved.header("Location"),
            Some("http://elsewhere.test/api.php?a=1")
        );
        let half = truncated(HttpBody::from("0123456789"));
        assert!(matches!(half.body, HttpBody::Bytes(b) if b == b"01234"));
    }
}
