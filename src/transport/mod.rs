//! How requests arrive and answers leave in production: FastCGI on a socket (bound, on
//! fd 0), plain CGI on the environment and stdin/stdout, and the request and response
//! values every transport hands to the app and back. Signals for a clean stop; systemd's
//! socket activation and readiness notification. (The license API client in `data` and the delegate check in `auth` make outgoing HTTP calls of their
//! own; the development server is in `dev`.)

pub mod access_log;
pub mod cgi;
pub mod fastcgi;
pub mod request;
pub mod response;
pub mod signals;
pub mod systemd;

use std::panic::{self, AssertUnwindSafe};

use crate::transport::request::Request;
use crate::transport::response::Response;

/// Calls `handler`; a panic in it (there should be none) is logged and answered with a
/// 500 page rather than the web server's blank error or a dropped connection.
fn handle_or_500(
    transport: &str,
    handler: &dyn Fn(&Request) -> Response,
    request: &Request,
) -> Response {
    panic::catch_unwind(AssertUnwindSafe(|| handler(request))).unwrap_or_else(|_| {
        eprintln!("tokenusage: {transport}: the handler panicked; answering 500");
        Response::status_page(500)
    })
}
