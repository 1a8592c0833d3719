//! Why a request could not show the dashboard, the one `match` from each reason to an
//! HTTP status, and the "Unable to Load Account Data" page that says it.

use super::common;
use super::site::Site;

use std::fmt;

use crate::data::config::ConfigError;
use crate::data::i18n::Strings;
use crate::data::license_api::ApiError;
use crate::transport::response::Response;
use crate::view::render::{TemplateError, error_chain};

/// Why a request could not show the dashboard. `Display` is the log line in plain words;
/// `source()` is the cause; [`RequestError::status`] is the one `match` to a status, and
/// [`error_page`] says what a visitor may see (never a cause).
#[derive(Debug)]
pub(super) enum RequestError {
    /// `SCRIPT_FILENAME` is not in a `ct/admin` folder.
    NotInAdminFolder {
        script: String,
    },
    /// A path the visitor made up: no config file there.
    NoInstallation(ConfigError),
    Config(ConfigError),
    Api(ApiError),
    /// The history for a download could not be fetched, nor the dashboard shown; the
    /// message is the one the page shows.
    DownloadFailed {
        message: String,
        cause: ApiError,
    },
    Render(TemplateError),
    Csv(std::io::Error),
}

impl RequestError {
    /// The status of the error page. The "Unable to Load Account Data" card comes with 200,
    /// as the PHP page's does: behind `fastcgi_intercept_errors`, Apache's
    /// `ProxyErrorOverride` or a CDN, a 5xx would be replaced by a generic error page and
    /// the admin would never see the card, its reason or "Retry Loading Data". 5xx is
    /// kept for faults of our own; 404 for a path that is no installation.
    pub(super) fn status(&self) -> u16 {
        match self {
            RequestError::NotInAdminFolder { .. } | RequestError::NoInstallation(_) => 404,
            RequestError::Config(_)
            | RequestError::Api(_)
            | RequestError::DownloadFailed { .. } => 200,
            RequestError::Render(_) | RequestError::Csv(_) => 500,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::NotInAdminFolder { script } => {
                write!(f, "SCRIPT_FILENAME {script:?} is not in a ct/admin folder")
            }
            RequestError::NoInstallation(_) => f.write_str("no installation at this path"),
            RequestError::Config(_) => f.write_str("the installation's config"),
            RequestError::Api(_) => f.write_str("license API"),
            RequestError::DownloadFailed { message, .. } => f.write_str(message),
            RequestError::Render(_) => f.write_str("rendering the page"),
            RequestError::Csv(_) => f.write_str("writing the CSV"),
        }
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RequestError::NotInAdminFolder { .. } => None,
            RequestError::NoInstallation(e) | RequestError::Config(e) => Some(e),
            RequestError::Api(e) | RequestError::DownloadFailed { cause: e, .. } => Some(e),
            RequestError::Render(e) => Some(e),
            RequestError::Csv(e) => Some(e),
        }
    }
}

/// An API error with its cause: the debug page is where causes are shown.
pub(super) fn debug_message(error: &ApiError) -> String {
    match std::error::Error::source(error) {
        Some(detail) => format!("{error} ({detail})"),
        None => error.to_string(),
    }
}

/// The "Unable to Load Account Data" page with "Retry Loading Data", or a plain message
/// if even that cannot be rendered.
pub(super) fn error_page(
    site: &Site,
    error: &RequestError,
    strings: &Strings,
    token: &str,
) -> Response {
    // The log gets the whole cause chain; the visitor only the seed's words.
    eprintln!("tokenusage: {}", error_chain(error));
    let message = match error {
        RequestError::Config(e) => e.summary(strings),
        RequestError::DownloadFailed { message, .. } => message.clone(),
        RequestError::Api(e) => e.localized(strings),
        _ => String::new(),
    };
    let status = error.status();
    let rendered = site.renderer.render(
        "error.html",
        strings,
        &common(strings, token),
        ("message", &message),
    );
    match rendered {
        Ok(html) => Response::html(status, html),
        Err(render_error) => {
            eprintln!("tokenusage: error page: {render_error}");
            Response::text(
                status,
                format!(
                    "{}\n{}\n",
                    strings.get("token_usage_unable_load"),
                    strings.get("token_usage_check_config")
                ),
            )
        }
    }
}
