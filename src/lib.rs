//! tokenusage: a drop-in replacement for ComusThumbz's `ct/admin/tokenusage.php`, the
//! "Token & Credit Usage Dashboard", served over FastCGI or CGI.
//!
//! Pure logic (parsers, view model, branding, CSV) lives apart from I/O (sockets, files,
//! HTTP); every transport calls [`app::handle`].

pub mod license_api;
pub mod php;
pub mod request;
pub mod response;
pub mod transport;
