//! tokenusage: a drop-in replacement for ComusThumbz's `ct/admin/tokenusage.php`, the
//! "Token & Credit Usage Dashboard", served over FastCGI or CGI.
//!
//! The layers, arrows pointing one way: [`transport`] (sockets, stdio, the environment)
//! hands each request to [`app::handle`], which decides who gets in ([`auth`]), gathers
//! one installation's [`data`] and turns it into pages ([`view`]); [`php`] reads PHP's own
//! formats; [`ops`] holds the commands admins script (check-config, a monitoring plugin,
//! metrics). [`dev`] holds the development tools (the demo, the sample license API, the
//! fuzzing entry points): it uses the product, the product never uses it.

pub mod app;
pub mod auth;
pub mod cli;
pub mod data;
pub mod dev;
pub mod error;
pub mod ops;
pub mod php;
pub mod transport;
pub mod view;
