//! One admin's visit: the installation, its config, the query and the CSRF token, and
//! the action it asks for, dispatched.

use super::error::RequestError;
use super::site::Site;
use super::{action_target, common};
use std::sync::Arc;

use serde::Serialize;

use crate::app::router::{Action, Query};
use crate::auth::csrf;
use crate::data::cache;
use crate::data::config::LicenseConfig;
use crate::data::i18n::Strings;
use crate::view::locale::Locale;

use super::flash::{FLASH_COOKIE, Flash};
use crate::data::fetch::Gatherer;
use crate::data::install::Installation;
use crate::transport::response::Response;
use crate::view::dashboard::Notice;
use crate::view::render::TemplateError;

/// One request's context.
pub(super) struct Visit<'a> {
    pub(super) site: &'a Site,
    pub(super) install: Installation,
    pub(super) config: Arc<LicenseConfig>,
    /// The strings of the language this visitor gets.
    pub(super) strings: Strings,
    /// The message an action left for this view (its cookie is cleared with the answer).
    pub(super) flash: Option<Flash>,
    /// The page's folder as a URL path (`/ct/admin/`), for cookies.
    pub(super) folder: String,
    /// Reached over HTTPS: cookies are `Secure`.
    pub(super) https: bool,
    pub(super) query: Query,
    /// The CSRF token this session and browser's forms carry.
    pub(super) token: String,
    /// The token the request POSTed, if any.
    pub(super) posted_token: Option<String>,
    pub(super) now: i64,
}

impl Visit<'_> {
    pub(super) fn gatherer(&self, force: bool) -> Gatherer {
        Gatherer {
            api: self.site.api.clone(),
            memo: self.site.memo.clone(),
            kept: self.site.kept.clone(),
            last_good: self.site.last_good.clone(),
            in_flight: self.site.in_flight.clone(),
            install: self.install.clone(),
            config: self.config.clone(),
            now: self.now,
            force,
            account_ttl: self.site.account_ttl,
            only_page: None,
            patience: self.site.api_patience,
        }
    }

    pub(super) fn run(&self) -> Result<Response, RequestError> {
        let strings = &self.strings;
        let mut notices = Vec::new();
        if self.query.unknown_action.is_some() {
            notices.push(Notice::info(strings.get("token_usage_unknown_action")));
        }
        let action = self.query.action;
        let token_ok = self
            .posted_token
            .as_deref()
            .is_some_and(|given| csrf::tokens_match(&self.token, given));
        if action.changes_state() && !token_ok {
            // An old bookmark or a link from elsewhere: change nothing, offer a button.
            notices.push(Notice::confirm(
                strings.get("token_usage_confirm"),
                strings.get(action_label(action)),
                action_target(action),
            ));
            return self.dashboard(notices, false);
        }
        // An action done is answered with a redirect to the plain page (303), which shows
        // its message once: reloading that page repeats nothing. A failure is shown at once.
        match action {
            Action::Overview | Action::Asset(_) => {
                notices.extend(self.flash.map(|f| f.notice(strings, self.locale())));
                self.dashboard(notices, false)
            }
            Action::RefreshData => self.refresh(notices),
            Action::UpdatePricing => match cache::delete(&self.install.pricing_cache()) {
                Ok(_) => Ok(self.done(Some(Flash::PricingCleared))),
                Err(e) => {
                    notices.push(Notice::error(format!(
                        "{}: {e}",
                        self.install.pricing_cache().display()
                    )));
                    self.dashboard(notices, false)
                }
            },
            Action::ClearCache => {
                let dir = self.install.transaction_cache_dir();
                self.site.memo.forget_folder(&dir);
                match cache::clear_transaction_caches(&dir) {
                    Ok(count) => Ok(self.done(Some(Flash::CacheCleared(count as u64)))),
                    Err(e) => {
                        notices.push(Notice::error(format!("{}: {e}", dir.display())));
                        self.dashboard(notices, false)
                    }
                }
            }
            Action::Download => self.download(notices),
            Action::Debug => self.debug(),
        }
    }

    /// The redirect after an action: to the plain page, with its message for that page.
    pub(super) fn done(&self, flash: Option<Flash>) -> Response {
        let mut response = Response::redirect_after_post("?");
        if let Some(flash) = flash {
            let value = flash.cookie_value();
            let cookie =
                super::folder_cookie(FLASH_COOKIE, &value, &self.folder, self.https, 60, "Strict");
            response.add_header("Set-Cookie", &cookie);
        }
        response
    }

    /// How numbers and dates are written in this visit's language.
    pub(super) fn locale(&self) -> &'static Locale {
        Locale::of(self.strings.language())
    }

    /// Renders a template to text (a whole page, or rows the page then places).
    pub(super) fn render_fragment(
        &self,
        template: &str,
        view: (&str, &impl Serialize),
    ) -> Result<String, TemplateError> {
        let common = common(&self.strings, &self.token);
        self.site
            .renderer
            .render(template, &self.strings, &common, view)
    }

    pub(super) fn render(
        &self,
        template: &str,
        view: (&str, &impl Serialize),
    ) -> Result<Response, RequestError> {
        self.render_fragment(template, view)
            .map(|html| Response::html(200, html))
            .map_err(RequestError::Render)
    }
}

/// The translation key of an action's button.
pub(super) fn action_label(action: Action) -> &'static str {
    match action {
        Action::RefreshData => "token_usage_refresh",
        Action::UpdatePricing => "token_usage_update_pricing",
        Action::ClearCache => "token_usage_clear_cache",
        Action::Download => "token_usage_download",
        Action::Debug => "token_usage_debug",
        Action::Overview | Action::Asset(_) => "token_usage_overview",
    }
}
