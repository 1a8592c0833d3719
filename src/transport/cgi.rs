//! Plain CGI (RFC 3875): one request from the environment and stdin, one response on
//! stdout. The environment is read as bytes (`vars_os`), so a non-UTF-8 value is kept.

use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;

use crate::transport::request::Request;
use crate::transport::response::Response;

/// The largest request body we read (the page takes none; this bounds a hostile one).
const MAX_BODY: u64 = 1024 * 1024;

/// Builds the request from this process's environment and standard input.
pub fn request_from_environment() -> io::Result<Request> {
    let params: Vec<(Vec<u8>, Vec<u8>)> = std::env::vars_os()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    let mut request = Request {
        params,
        body: Vec::new(),
    };
    let length: u64 = request.param("CONTENT_LENGTH").trim().parse().unwrap_or(0);
    if length > 0 {
        io::stdin()
            .take(length.min(MAX_BODY))
            .read_to_end(&mut request.body)?;
    }
    Ok(request)
}

/// Answers one CGI request with `handler`; a panic in it still answers, with a 500 page.
pub fn serve_one(handler: impl Fn(&Request) -> Response) -> io::Result<()> {
    let request = request_from_environment()?;
    let response = super::handle_or_500("cgi", &handler, &request);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    response.write_cgi(&mut out)?;
    out.flush()
}
