//! Integration tests in one binary: the real `tokenusage` over real sockets against the
//! sample license API on loopback.

mod apache;
mod auth;
mod browser;
mod browser_a11y;
mod browser_screenshots;
mod fastcgi;
mod faults;
mod fuzz_seeds;
mod insights;
mod launch;
mod layout;
mod nginx;
mod notify;
mod ops;
mod package;
mod page;
mod security;
mod session;
mod slow_peers;
mod support;
mod systemd;
