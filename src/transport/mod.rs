//! The only code that touches sockets, stdin/stdout and the environment.

pub mod cgi;
pub mod fastcgi;
pub mod http;
pub mod signals;
