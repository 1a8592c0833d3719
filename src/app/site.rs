//! The site: what every request shares (templates, the API agent, configs, histories,
//! calls in flight, rendered pages), built once at start.

use super::splice::{PageKey, RenderedPage};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::app::derived::{Derived, Recent};
use crate::auth::Auth;
use crate::auth::csrf;
use crate::data::config::ConfigStore;
use crate::data::fetch::{HistoryMemo, InFlight};
use crate::data::i18n::{Strings, StringsStore};
use crate::data::kept_history::{KeptHistories, Summary};
use crate::data::last_good::LastGood;
use crate::data::license_api::ApiClient;
use crate::view::insights::Insights;
use crate::view::render::{Renderer, TemplateError};

/// The clock, in Unix seconds; tests pass a fixed one.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// 32 random bytes per call: a browser's CSRF value, the rendered pages' placeholder.
pub type Random = Arc<dyn Fn() -> [u8; 32] + Send + Sync>;

/// How a site is set up at start.
pub struct SiteOptions {
    /// A fixed installation root (`--root`); otherwise found from `SCRIPT_FILENAME`.
    pub root: Option<PathBuf>,
    /// A folder of templates overriding the embedded ones (`--templates`).
    pub templates: Option<PathBuf>,
    pub api: ApiClient,
    /// Who may see the page.
    pub auth: Auth,
    /// How long a user/info or user/stats answer is reused instead of calling again.
    pub account_ttl: Duration,
    /// How long a view with older data on hand waits for the license server.
    pub api_patience: Duration,
    /// How long views do not call again after a call failed or timed out.
    pub api_retry_after: Duration,
    /// Bytes of histories kept in memory across installations.
    pub memo_budget: usize,
    /// The zone of a config that names none (`--timezone`).
    pub timezone: chrono_tz::Tz,
    /// This process answers one request (CGI), so keeping a history for the next one is
    /// pointless: a view reads only its page, through the index beside the cache file.
    pub one_request: bool,
    pub clock: Clock,
    /// The random source of CSRF values; tests pass a fixed one.
    pub random: Random,
}

impl SiteOptions {
    /// The defaults, with the admin check every site must name: there is no default
    /// that silently means "no check" (`Auth::None` is said where it is meant).
    pub fn new(auth: Auth) -> Self {
        SiteOptions {
            root: None,
            templates: None,
            api: ApiClient::default(),
            auth,
            account_ttl: Duration::from_secs(30),
            api_patience: Duration::from_secs(2),
            api_retry_after: Duration::from_secs(30),
            memo_budget: crate::data::fetch::DEFAULT_MEMO_BUDGET,
            timezone: chrono_tz::Tz::UTC,
            one_request: false,
            clock: Arc::new(|| chrono::Utc::now().timestamp()),
            random: Arc::new(rand::random),
        }
    }
}

/// What every request shares: templates, the API agent, configs and the parsed history.
pub struct Site {
    pub(super) root: Option<PathBuf>,
    pub(super) renderer: Renderer,
    pub(super) api: ApiClient,
    pub(super) auth: Auth,
    pub(super) configs: ConfigStore,
    pub(super) memo: Arc<HistoryMemo>,
    /// Kept histories open, and pages and summaries read from them.
    pub(super) kept: Arc<KeptHistories>,
    pub(super) last_good: Arc<LastGood>,
    /// License API calls in progress, shared by the requests that need them.
    pub(super) in_flight: Arc<InFlight>,
    pub(super) api_patience: Duration,
    /// The CSV of recently downloaded histories: a repeated download is a copy.
    pub(super) csv: Derived<&'static str, Vec<u8>>,
    /// Recently shown pages of rows, rendered: a view renders only the cards around them.
    pub(super) rows: Derived<RowsKey, String>,
    /// Recently rendered dashboards by the view they show.
    pub(super) pages: Recent<PageKey, RenderedPage>,
    /// Each installation's strings in each language asked for.
    pub(super) strings: StringsStore,
    /// Insights worked out, by the summary they came from and the balance.
    pub(super) insights: Recent<InsightsKey, Insights>,
    /// What a kept page was rendered with in place of a browser's CSRF token: random per
    /// process, so no text from the license server can contain it.
    pub(super) token_placeholder: String,
    pub(super) account_ttl: i64,
    /// This process answers one request (CGI): a view reads only its page of a history.
    pub(super) one_request: bool,
    pub(super) clock: Clock,
    pub(super) random: Random,
}

/// Histories whose CSV is kept (about 1.1 MB each for 10,000 transactions).
const CSV_KEPT: usize = 4;
/// Rendered pages of rows kept (about 80 KB each).
const ROWS_KEPT: usize = 64;
/// Rendered dashboards kept, without their rows (about 10 KB each with their view).
const PAGES_KEPT: usize = 64;

/// Insights kept: one per installation viewed this minute, for the busiest.
const INSIGHTS_KEPT: usize = 16;

/// What insights depend on: the very summary (held weakly: the same allocation), the
/// balance's bits and the zone.
pub(super) struct InsightsKey {
    pub summary: std::sync::Weak<Summary>,
    pub balance: u64,
    pub zone: chrono_tz::Tz,
}

impl PartialEq for InsightsKey {
    fn eq(&self, other: &Self) -> bool {
        // A summary let go can no longer be asked for: its key matches nothing.
        self.summary.strong_count() > 0
            && std::ptr::eq(self.summary.as_ptr(), other.summary.as_ptr())
            && self.balance == other.balance
            && self.zone == other.zone
    }
}

/// What a page of rows depends on besides the history: the page, the zone and the very
/// strings it was rendered with (a changed translation file loads new ones).
pub(super) struct RowsKey {
    pub(super) page: usize,
    pub(super) timezone: chrono_tz::Tz,
    pub(super) strings: Strings,
    /// Dates of this year are written without it: rows rendered last year differ.
    pub(super) year: i32,
}

impl PartialEq for RowsKey {
    fn eq(&self, other: &Self) -> bool {
        self.page == other.page
            && self.year == other.year
            && self.timezone == other.timezone
            && self.strings.is_same(&other.strings)
    }
}

impl Site {
    /// Builds the site; fails only when the templates do not compile.
    pub fn new(options: SiteOptions) -> Result<Site, TemplateError> {
        let renderer = match &options.templates {
            Some(dir) => Renderer::with_overrides(dir)?,
            None => Renderer::embedded()?,
        };
        Ok(Site {
            root: options.root,
            renderer,
            api: options.api,
            auth: options.auth,
            configs: ConfigStore::with_zone(options.timezone),
            memo: Arc::new(HistoryMemo::with_budget(options.memo_budget)),
            kept: Arc::default(),
            last_good: Arc::default(),
            in_flight: Arc::new(InFlight::new(options.api_retry_after)),
            api_patience: options.api_patience,
            csv: Derived::new(CSV_KEPT),
            rows: Derived::new(ROWS_KEPT),
            pages: Recent::new(PAGES_KEPT),
            insights: Recent::new(INSIGHTS_KEPT),
            strings: StringsStore::default(),
            token_placeholder: csrf::nonce_from_bytes(&(options.random)()),
            account_ttl: options.account_ttl.as_secs() as i64,
            one_request: options.one_request,
            clock: options.clock,
            random: options.random,
        })
    }
}
