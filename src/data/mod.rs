//! One installation's data: where it lives, its config, the license API (client and wire
//! types), the PHP page's cache files and their indexes, histories, the calls in flight
//! and the last good answers. Imports neither the app nor the transports.

pub mod cache;
pub mod config;
pub mod digest;
pub mod fetch;
pub mod flight;
pub mod history;
pub mod i18n;
pub mod install;
pub mod kept_history;
pub mod last_good;
pub mod license_api;
pub mod secret;
pub mod stamp;
pub mod url;
