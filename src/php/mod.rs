//! Readers for PHP's own file formats.

pub mod config;
pub mod session;
