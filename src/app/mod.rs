//! `handle(&Request, &Site) -> Response`: the one entry point for every transport and test.
//!
//! Finds the installation, reads its config, runs the action and renders the answer.
//! Every path ends in a page or a clear error in the seed's words.

mod debug;
pub mod derived;
mod download;
mod error;
mod flash;
mod overview;
pub mod router;
mod site;
mod splice;
mod visit;

use error::{RequestError, error_page};
use flash::{FLASH_COOKIE, Flash};
pub use site::{Clock, Random, Site, SiteOptions};
use std::path::Path;
use visit::Visit;

use serde::Serialize;

use crate::app::router::{Action, Query, parse_query};
use crate::auth::csrf;
use crate::data::config::ConfigError;
use crate::data::i18n::{self, Strings};
use crate::data::install::Installation;
use crate::transport::request::Request;
use crate::transport::response::Response;
use crate::view::dashboard::{self};

/// Links every page carries. The state-changing actions are the targets of forms that
/// POST the CSRF token (see `csrf`), never links that carry it.
#[derive(Debug, Serialize)]
pub(super) struct Links {
    overview: &'static str,
    refresh: &'static str,
    download: &'static str,
    update_pricing: &'static str,
    clear_cache: &'static str,
    debug: &'static str,
    retry: &'static str,
    /// Followed by a page number.
    page: &'static str,
}

pub(super) const LINKS: Links = Links {
    overview: "?",
    refresh: "?action=refresh_data",
    download: "?action=download",
    update_pricing: "?action=update_pricing",
    clear_cache: "?action=clear_cache",
    debug: "?debug=1",
    retry: "?",
    page: "?page=",
};

/// Where a state-changing action's form posts to.
pub(super) fn action_target(action: Action) -> String {
    format!("?action={}", action.name())
}

/// What every template receives besides its view.
#[derive(Debug, Serialize)]
pub(super) struct Common {
    pub(super) lang: String,
    /// `rtl` for a language written right to left, else `ltr`.
    pub(super) dir: &'static str,
    pub(super) links: &'static Links,
    /// The CSRF token the page's forms post.
    pub(super) csrf_token: String,
    pub(super) help_url: &'static str,
    pub(super) reports_url: &'static str,
}

/// Who is asking, for the CSRF token: the admin's session and this browser's value.
pub(super) struct Visitor {
    pub(super) session: String,
    pub(super) nonce: String,
}

/// A `Set-Cookie` value of ours for the admin folder: HTTP only, `Secure` over HTTPS.
/// The name and value are our own codes, the folder a clean path ([`page_folder`]).
pub(super) fn folder_cookie(
    name: &str,
    value: &str,
    folder: &str,
    https: bool,
    max_age: i64,
    same_site: &str,
) -> String {
    let secure = if https { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path={folder}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
    )
}

/// The cookie that remembers a language chosen with `lang=`.
const LANGUAGE_COOKIE: &str = "tokenusage_lang";

/// Answers one request. Never panics on bad input; every path ends in a page or a clear
/// error.
pub fn handle(request: &Request, site: &Site) -> Response {
    let query = parse_query(&request.query_string());
    let mut response = if !site.auth.allows(request) {
        not_logged_in(request, &query)
    } else if let Action::Asset(name) = query.action {
        asset(site, name)
    } else {
        let https = request.is_https();
        let cookie_nonce = csrf::nonce_from_cookies(&request.cookie_header(), https);
        let visitor = Visitor {
            session: site.auth.session_of(request),
            nonce: cookie_nonce
                .clone()
                .unwrap_or_else(|| csrf::nonce_from_bytes(&(site.random)())),
        };
        let chosen_language = query.lang;
        let mut response = match page(request, site, query, &visitor) {
            Ok(response) => response,
            Err((error, strings, token)) => error_page(site, &error, &strings, &token),
        };
        let folder = page_folder(request).unwrap_or_else(|| "/".into());
        if cookie_nonce.is_none() {
            let cookie = csrf::set_cookie(&visitor.nonce, &folder, https);
            response.add_header("Set-Cookie", &cookie);
        }
        // A message shown once: its cookie goes with the page that showed it.
        let shows_flash = csrf::first_cookie(&request.cookie_header(), FLASH_COOKIE).is_some();
        if shows_flash && response.status == 200 {
            let cookie = folder_cookie(FLASH_COOKIE, "", &folder, https, 0, "Strict");
            response.add_header("Set-Cookie", &cookie);
        }
        if let Some(lang) = chosen_language {
            // Remembered for a year, for this admin folder only.
            let year = 365 * 86_400;
            let cookie = folder_cookie(LANGUAGE_COOKIE, lang, &folder, https, year, "Lax");
            response.add_header("Set-Cookie", &cookie);
        }
        response
    };
    add_security_headers(&mut response);
    response
}

/// Not a logged-in admin: a page view goes to the panel's login; a download, the debug
/// page or an asset gets 403 with no data.
pub(super) fn not_logged_in(request: &Request, query: &Query) -> Response {
    match query.action {
        Action::Download | Action::Debug | Action::Asset(_) => {
            Response::text(403, "403 Forbidden: log in to the admin panel first.\n")
        }
        // Relative to the page when its folder is not a clean path: the browser resolves
        // it against the very URL it asked for, so it stays on this site.
        _ => Response::redirect(&format!(
            "{}ctlogin.php",
            page_folder(request).unwrap_or_default()
        )),
    }
}

/// The page's folder as a URL path ending in `/` (`/ct/admin/`), from `SCRIPT_NAME`; `None`
/// unless it is a clean absolute path. A regex location passes the visitor's path: a `\`
/// or a leading `//` would make the login redirect leave the site (`/\evil.example/`), a
/// `;` or a control character would add attributes to the cookie.
pub(super) fn page_folder(request: &Request) -> Option<String> {
    let script = request.param("SCRIPT_NAME");
    let folder = &script[..=script.rfind('/')?];
    let clean = folder.starts_with('/')
        && !folder.starts_with("//")
        && folder.bytes().all(|b| {
            b.is_ascii_graphic() && !matches!(b, b'\\' | b';' | b',' | b'"' | b'<' | b'>')
        });
    clean.then(|| folder.to_string())
}

fn page(
    request: &Request,
    site: &Site,
    query: Query,
    visitor: &Visitor,
) -> Result<Response, (RequestError, Strings, String)> {
    // The visitor's own choice (`lang=`, the cookie, Accept-Language): the page's language
    // unless the config sets one, and the error pages' before any config is read.
    let chosen = i18n::negotiate(
        query.lang,
        csrf::first_cookie(&request.cookie_header(), LANGUAGE_COOKIE).as_deref(),
        Some(&request.param("HTTP_ACCEPT_LANGUAGE")),
    );
    let visitors = || Strings::built_in(chosen);
    let install = match &site.root {
        Some(root) => Installation::new(root),
        None => {
            let script = request.param("SCRIPT_FILENAME");
            Installation::from_script_filename(Path::new(&script)).ok_or_else(|| {
                let error = RequestError::NotInAdminFolder {
                    script: script.clone(),
                };
                (error, visitors(), String::new())
            })?
        }
    };
    // A path the visitor made up (a regex location passes any) is no installation: only
    // a folder with a config file is served, and nothing is created for any other.
    let config = site.configs.load(&install).map_err(|error| match error {
        ConfigError::NotFound(_) if site.root.is_none() => (
            RequestError::NoInstallation(error),
            visitors(),
            String::new(),
        ),
        error => (RequestError::Config(error), visitors(), String::new()),
    })?;
    // The config's language when it sets one (with its own strings, as read with the
    // config); else the visitor's choice: `lang=`, the cookie, Accept-Language.
    let strings = match config.language.as_deref() {
        Some(_) => config.strings.clone(),
        None => site.strings.get(&install.dat(), chosen),
    };
    let token = csrf::token(&config.secret, &visitor.session, &visitor.nonce);
    let visit = Visit {
        site,
        install,
        config,
        strings: strings.clone(),
        flash: csrf::first_cookie(&request.cookie_header(), FLASH_COOKIE)
            .as_deref()
            .and_then(Flash::parse),
        folder: page_folder(request).unwrap_or_else(|| "/".into()),
        https: request.is_https(),
        query,
        token: token.clone(),
        posted_token: (request.param("REQUEST_METHOD") == "POST")
            .then(|| csrf::token_from_form(&request.body))
            .flatten(),
        now: (site.clock)(),
    };
    visit.run().map_err(|e| (e, strings, token))
}

pub(super) fn common(strings: &Strings, token: &str) -> Common {
    Common {
        lang: strings.language().to_string(),
        dir: strings.dir(),
        links: &LINKS,
        csrf_token: token.to_string(),
        help_url: dashboard::HELP_URL,
        reports_url: dashboard::REPORTS_URL,
    }
}

pub(super) fn asset(site: &Site, name: &str) -> Response {
    match site.renderer.asset(name) {
        Some((content_type, bytes)) => Response::new(200, content_type, bytes.to_vec()),
        None => Response::text(404, "Not Found\n"),
    }
}

/// The headers every admin response carries.
pub(super) fn add_security_headers(response: &mut Response) {
    for (name, value) in [
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("X-Frame-Options", "DENY"),
        (
            "Content-Security-Policy",
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        response.set_header(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Auth;
    use std::sync::Arc;

    #[test]
    fn a_browsers_csrf_value_comes_from_the_random_source_given() {
        let site = Site::new(SiteOptions {
            random: Arc::new(|| [0xab; 32]),
            ..SiteOptions::new(Auth::None)
        })
        .unwrap();
        let request = Request::from_pairs([
            ("SCRIPT_FILENAME", "/nowhere/ct/admin/tokenusage.php"),
            ("SCRIPT_NAME", "/ct/admin/tokenusage.php"),
        ]);
        let response = handle(&request, &site);
        assert_eq!(response.status, 404);
        let cookie = response.header("Set-Cookie").unwrap();
        assert!(
            cookie.starts_with(&format!("tokenusage_csrf={}", "ab".repeat(32))),
            "{cookie}"
        );
    }
}
