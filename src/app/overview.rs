//! The dashboard: gathered data to a page, rendered once per distinct view, with the
//! stale banners that say what failed and how old the data shown is.

use super::common;
use super::error::RequestError;
use super::error::debug_message;
use super::site::RowsKey;
use super::splice::{PageKey, RenderedPage};
use super::visit::Visit;

use crate::data::cache::local_date;
use crate::data::fetch::{Gathered, KeptTrouble, Needs, Stale, required};
use crate::data::fetch::{History, Sourced};
use crate::data::history::{PER_PAGE, paginate};
use crate::data::i18n::Strings;
use crate::data::kept_history;
use crate::data::kept_history::{Kept, KeptError};
use crate::data::license_api::{ApiError, Endpoint};
use crate::transport::response::Response;
use crate::view::dashboard::{self, Notice, PageData, ViewSettings};
use crate::view::insights::{self, Facts, Insights};
use crate::view::locale::Locale;

use super::flash::Flash;

use std::sync::Arc;

use super::site::InsightsKey;

impl Visit<'_> {
    /// The dashboard; `refresh` fetches everything afresh (Refresh Data).
    pub(super) fn dashboard(
        &self,
        notices: Vec<Notice>,
        refresh: bool,
    ) -> Result<Response, RequestError> {
        let mut gatherer = self.gatherer(refresh);
        if self.site.one_request {
            gatherer.only_page = Some(self.query.page);
        }
        self.show(notices, gatherer.gather(Needs::DASHBOARD))
    }

    /// The dashboard of what was gathered.
    pub(super) fn show(
        &self,
        mut notices: Vec<Notice>,
        gathered: Gathered,
    ) -> Result<Response, RequestError> {
        let config = &self.config;
        let info = required(gathered.info).map_err(RequestError::Api)?;
        let stats = required(gathered.stats).map_err(RequestError::Api)?;
        let pricing = required(gathered.pricing);
        let mut history = required(gathered.history);
        let mut stale = gathered.stale;
        // The table shows the kept history (everything ever fetched), the insights its
        // sums; without it the page shows the history as the license server sent it.
        let mut insights = None;
        if let Some(kept) = &gathered.kept {
            match self.kept_parts(kept, stats.value.balance) {
                Ok((page, found)) => {
                    history = match (history, page) {
                        (Ok(shown), Some(page)) => Ok(Sourced {
                            value: page,
                            ..shown
                        }),
                        // Stale beats blank: no history came (cache cleared, API down),
                        // but the kept one is shown, with the failure and its age.
                        (Err(error), Some(page)) => {
                            let fetched_at = kept.fetched_at.unwrap_or(self.now);
                            stale.push(Stale {
                                part: Endpoint::History,
                                error,
                                fetched_at,
                            });
                            Ok(Sourced {
                                value: page,
                                fetched_at,
                                from_cache: true,
                            })
                        }
                        (history, None) => history,
                    };
                    insights = Some(found);
                }
                Err(error) => {
                    eprintln!("tokenusage: {error}");
                    notices.push(Notice::info(
                        self.strings.get("token_usage_kept_unavailable"),
                    ));
                }
            }
        }
        notices.extend(
            gathered
                .kept_trouble
                .map(|trouble| self.kept_notice(trouble)),
        );
        for part in &stale {
            // A resting part made no call: the failure it rests after was logged.
            if !matches!(part.error, ApiError::Resting { .. }) {
                eprintln!("tokenusage: license API: {}", debug_message(&part.error));
            }
        }
        notices.extend(stale_banners(&stale, self.now, &self.strings));
        notices.extend(gathered.warnings.into_iter().map(Notice::info));
        let history_list = history
            .as_ref()
            .map(|h| Sourced {
                value: h.value.as_ref(),
                fetched_at: h.fetched_at,
                from_cache: h.from_cache,
            })
            .map_err(|e| e.localized(&self.strings));
        let data = PageData {
            account_cached: info.from_cache || stats.from_cache,
            info: info.value,
            stats,
            pricing: pricing.map_err(|e| e.localized(&self.strings)),
            history: history_list,
            insights: insights.as_deref(),
        };
        let rows_key = RowsKey {
            page: crate::data::history::paginate(
                history.as_ref().map_or(0, |h| h.value.len()),
                self.query.page,
                crate::data::history::PER_PAGE,
            )
            .page,
            timezone: config.timezone,
            strings: self.strings.clone(),
            year: chrono::Datelike::year(&local_date(self.now, config.timezone)),
        };
        let rendered_rows = history
            .as_ref()
            .ok()
            .and_then(|h| self.site.rows.get(&h.value, &rows_key));
        let settings = ViewSettings {
            now: self.now,
            timezone: config.timezone,
            requested_page: self.query.page,
            api_url: &config.credentials.api_url,
            notices,
            demo_mode: config.demo_mode,
            build_rows: rendered_rows.is_none(),
            locale: Locale::of(self.strings.language()),
            strings: &self.strings,
        };
        let mut view = dashboard::build_dashboard(&data, &settings);
        let mut rows_html = None;
        if let (Some(shown), Ok(h)) = (view.history.as_mut(), history.as_ref()) {
            let rows = std::mem::take(&mut shown.rows);
            rows_html = Some(match rendered_rows {
                Some(html) => html,
                None => {
                    let html = self
                        .render_fragment("transactions.html", ("rows", &rows))
                        .map_err(RequestError::Render)?;
                    self.site.rows.insert(&h.value, rows_key, html)
                }
            });
        }
        // A view equal to one shown before (the same account, page, ages and notices) is
        // not rendered again: only this browser's token and the rows are put in.
        let key = PageKey {
            view,
            strings: self.strings.clone(),
        };
        let placeholder = &self.site.token_placeholder;
        let page = self
            .site
            .pages
            .get_or_make(key, |key| {
                let common = common(&key.strings, placeholder);
                let html = self.site.renderer.render(
                    "dashboard.html",
                    &key.strings,
                    &common,
                    ("view", &key.view),
                )?;
                Ok(RenderedPage::cut(&html, placeholder))
            })
            .map_err(RequestError::Render)?;
        let rows = rows_html.as_deref().map_or("", String::as_str);
        Ok(Response::html(200, page.assemble(&self.token, rows)))
    }
}

impl Visit<'_> {
    /// What the page says when the kept history is not all it could show.
    fn kept_notice(&self, trouble: KeptTrouble) -> Notice {
        match trouble {
            KeptTrouble::Unavailable => {
                Notice::info(self.strings.get("token_usage_kept_unavailable"))
            }
            KeptTrouble::Full => {
                Notice::warning(self.strings.get("token_usage_kept_full").replace(
                    "{count}",
                    &self.locale().count(kept_history::MAX_KEPT as u64),
                ))
            }
        }
    }

    /// Refresh Data: every part fetched afresh (the caches replaced with what came): a
    /// redirect to the plain page when every part came fresh, else the page at once with
    /// what failed.
    pub(super) fn refresh(&self, notices: Vec<Notice>) -> Result<Response, RequestError> {
        let gathered = self.gatherer(true).gather(Needs::DASHBOARD);
        if all_fresh(&gathered) {
            return Ok(self.done(Some(Flash::Refreshed)));
        }
        self.show(notices, gathered)
    }

    /// The kept history's page of rows (None while it keeps nothing) and its insights.
    fn kept_parts(
        &self,
        kept: &Kept,
        balance: f64,
    ) -> Result<(Option<History>, Arc<Insights>), KeptError> {
        let page = if kept.len == 0 {
            None
        } else {
            let shown = paginate(kept.len, self.query.page, PER_PAGE);
            Some(kept.page(shown.start..shown.end)?)
        };
        let zone = self.config.timezone;
        let today = local_date(self.now, zone);
        let summary = kept.summary(self.now, insights::first_day_needed(today))?;
        // Worked out once per summary (a minute of one generation) and balance.
        let key = InsightsKey {
            summary: Arc::downgrade(&summary),
            balance: balance.to_bits(),
            zone,
        };
        let found = self.site.insights.get_or_make(key, |_| {
            Ok::<_, KeptError>(insights::insights(&Facts::of(
                &summary, self.now, zone, balance,
            )))
        })?;
        Ok((page, found))
    }
}

/// One banner per distinct failure: what failed, in the seed's words, and the age of the
/// oldest data shown in its place.
pub(super) fn stale_banners(stale: &[Stale], now: i64, strings: &Strings) -> Vec<Notice> {
    // Per message: the oldest data shown, and when a part resting after a failed call
    // asks the license server again.
    let mut banners: Vec<(String, i64, Option<i64>)> = Vec::new();
    for part in stale {
        let message = part.error.localized(strings);
        let retry = match part.error {
            ApiError::Resting { until, .. } => Some(until),
            _ => None,
        };
        match banners.iter_mut().find(|(m, ..)| *m == message) {
            Some((_, oldest, latest_retry)) => {
                *oldest = (*oldest).min(part.fetched_at);
                *latest_retry = (*latest_retry).max(retry);
            }
            None => banners.push((message, part.fetched_at, retry)),
        }
    }
    banners
        .into_iter()
        .map(|(message, fetched_at, retry)| {
            let locale = Locale::of(strings.language());
            let age = dashboard::format_age(now - fetched_at, strings, locale);
            let mut shown = strings.get("token_usage_stale").replace("{age}", &age);
            if let Some(until) = retry {
                let wait = dashboard::format_age(until - now, strings, locale);
                shown.push(' ');
                shown.push_str(&strings.get("token_usage_retry_in").replace("{age}", &wait));
            }
            Notice::warning(format!("{message}. {shown}"))
        })
        .collect()
}

/// True when every part of a dashboard came fresh from the license server.
fn all_fresh(gathered: &Gathered) -> bool {
    let parts = [
        gathered.info.as_ref().map(Result::is_ok),
        gathered.stats.as_ref().map(Result::is_ok),
        gathered.pricing.as_ref().map(Result::is_ok),
        gathered.history.as_ref().map(Result::is_ok),
    ];
    parts.into_iter().all(|ok| ok == Some(true)) && gathered.stale.is_empty()
}
