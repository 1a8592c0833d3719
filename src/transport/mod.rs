//! The only code that touches sockets, stdin/stdout and the environment.

pub mod cgi;
pub mod fastcgi;
pub mod request;
pub mod response;
pub mod signals;

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
