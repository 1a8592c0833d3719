//! The license API: wire types (pure, lenient) and the client (HTTP).

pub mod client;
pub mod wire;

pub use client::{ApiClient, ApiError, Credentials, Endpoint};
