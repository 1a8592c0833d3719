//! Development tools, not part of the deployed product: `tokenusage demo`, the sample
//! license API, their HTTP server, and the fuzzing entry points. The product never
//! imports this module.

pub mod demo;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod sample_api;
