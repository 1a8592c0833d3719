//! Pure: data and a clock in, what the admin sees out: the dashboard's view structs,
//! branding, translations, the CSV, and tera (templates built once).

pub mod branding;
pub mod charts;
pub mod dashboard;
pub mod export;
pub mod insights;
pub mod locale;
pub mod render;
