//! Integration tests in one binary: the real `tokenusage` over real sockets against the
//! sample license API on loopback.

mod fastcgi;
mod launch;
mod nginx;
mod page;
mod support;
