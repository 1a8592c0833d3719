//! The license API: wire types and the client.

pub mod wire;
