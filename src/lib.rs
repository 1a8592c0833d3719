//! tokenusage: a drop-in replacement for ComusThumbz's `ct/admin/tokenusage.php`, the
//! "Token & Credit Usage Dashboard", served over FastCGI or CGI.
//!
//! Pure logic (parsers, view model, branding, CSV) lives apart from I/O (sockets, files,
//! HTTP); every transport calls [`app::handle`].

pub mod app;
pub mod args;
pub mod auth;
pub mod branding;
pub mod cache;
pub mod config;
pub mod csrf;
pub mod dashboard;
pub mod demo;
pub mod derived;
pub mod digest;
pub mod export;
pub mod fastcgi;
pub mod fetch;
pub mod flight;
#[doc(hidden)]
pub mod fuzzing;
pub mod history;
pub mod i18n;
pub mod install;
pub mod last_good;
pub mod license_api;
pub mod php;
pub mod render;
pub mod request;
pub mod response;
pub mod router;
pub mod sample_api;
pub mod secret;
pub mod session_store;
pub mod stamp;
pub mod transport;
