//! `handle(&Request, &Site) -> Response`: the one entry point for every transport and test.
//!
//! Finds the installation, reads its config, runs the action and renders the answer.
//! Every path ends in a page or a clear error in the seed's words.

pub mod derived;
pub mod router;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::app::derived::{Derived, Recent};
use crate::app::router::{Action, Query, parse_query};
use crate::auth::Auth;
use crate::auth::csrf;
use crate::data::cache;
use crate::data::cache::local_date;
use crate::data::config::{ConfigError, ConfigStore, LicenseConfig};
use crate::data::fetch::Sourced;
use crate::data::fetch::{Gatherer, HistoryMemo, InFlight, Needs, Stale, required};
use crate::data::i18n::Strings;
use crate::data::install::Installation;
use crate::data::last_good::LastGood;
use crate::data::license_api::{ApiClient, ApiError, Endpoint};
use crate::transport::request::Request;
use crate::transport::response::Response;
use crate::view::dashboard::{
    self, DashboardView, Notice, PageData, TransactionView, ViewSettings,
};
use crate::view::export;
use crate::view::render::{Renderer, TemplateError};

/// The clock, in Unix seconds; tests pass a fixed one.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// How a site is set up at start.
pub struct SiteOptions {
    /// A fixed installation root (`--root`); otherwise found from `SCRIPT_FILENAME`.
    pub root: Option<PathBuf>,
    /// A folder of templates overriding the embedded ones (`--templates`).
    pub templates: Option<PathBuf>,
    pub api: ApiClient,
    /// Who may see the page. The command line's default is `php-session`; this struct's
    /// default, for tests and the demo, is no check.
    pub auth: Auth,
    /// How long a user/info or user/stats answer is reused instead of calling again.
    pub account_ttl: Duration,
    /// How long a view with older data on hand waits for the license server.
    pub api_patience: Duration,
    /// How long views do not call again after a call failed or timed out.
    pub api_retry_after: Duration,
    /// Bytes of histories kept in memory across installations.
    pub memo_budget: usize,
    /// This process answers one request (CGI), so keeping a history for the next one is
    /// pointless: a view reads only its page, through the index beside the cache file.
    pub one_request: bool,
    pub clock: Clock,
}

impl Default for SiteOptions {
    fn default() -> Self {
        SiteOptions {
            root: None,
            templates: None,
            api: ApiClient::default(),
            auth: Auth::None,
            account_ttl: Duration::from_secs(30),
            api_patience: Duration::from_secs(2),
            api_retry_after: Duration::from_secs(30),
            memo_budget: crate::data::fetch::DEFAULT_MEMO_BUDGET,
            one_request: false,
            clock: Arc::new(|| chrono::Utc::now().timestamp()),
        }
    }
}

/// What every request shares: templates, the API agent, configs and the parsed history.
pub struct Site {
    root: Option<PathBuf>,
    renderer: Renderer,
    api: ApiClient,
    auth: Auth,
    configs: ConfigStore,
    memo: Arc<HistoryMemo>,
    last_good: Arc<LastGood>,
    /// License API calls in progress, shared by the requests that need them.
    in_flight: Arc<InFlight>,
    api_patience: Duration,
    /// The CSV of recently downloaded histories: a repeated download is a copy.
    csv: Derived<(), Vec<u8>>,
    /// Recently shown pages of rows, rendered: a view renders only the cards around them.
    rows: Derived<RowsKey, String>,
    /// Recently rendered dashboards by the view they show.
    pages: Recent<PageKey, RenderedPage>,
    /// What a kept page was rendered with in place of a browser's CSRF token: random per
    /// process, so no text from the license server can contain it.
    token_placeholder: String,
    account_ttl: i64,
    /// This process answers one request (CGI): a view reads only its page of a history.
    one_request: bool,
    clock: Clock,
}

/// Histories whose CSV is kept (about 1.1 MB each for 10,000 transactions).
const CSV_KEPT: usize = 4;
/// Rendered pages of rows kept (about 80 KB each).
const ROWS_KEPT: usize = 64;
/// Rendered dashboards kept, without their rows (about 10 KB each with their view).
const PAGES_KEPT: usize = 64;

/// What a page of rows depends on besides the history: the page, the zone and the very
/// strings it was rendered with (a changed translation file loads new ones).
struct RowsKey {
    page: usize,
    timezone: chrono_tz::Tz,
    strings: Strings,
}

impl PartialEq for RowsKey {
    fn eq(&self, other: &Self) -> bool {
        self.page == other.page
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
            configs: ConfigStore::default(),
            memo: Arc::new(HistoryMemo::with_budget(options.memo_budget)),
            last_good: Arc::default(),
            in_flight: Arc::new(InFlight::new(options.api_retry_after)),
            api_patience: options.api_patience,
            csv: Derived::new(CSV_KEPT),
            rows: Derived::new(ROWS_KEPT),
            pages: Recent::new(PAGES_KEPT),
            token_placeholder: csrf::nonce_from_bytes(&rand::random()),
            account_ttl: options.account_ttl.as_secs() as i64,
            one_request: options.one_request,
            clock: options.clock,
        })
    }
}

/// Why a request could not show the dashboard; one `match` maps each to a status.
#[derive(Debug)]
enum PageError {
    NoInstallation(String),
    Config(ConfigError),
    Api(ApiError),
    /// The history for a download could not be fetched, nor the dashboard shown.
    DownloadFailed(String),
    Render(String),
}

impl PageError {
    fn status(&self) -> u16 {
        match self {
            PageError::NoInstallation(_) => 404,
            PageError::Config(_) | PageError::Render(_) => 500,
            PageError::Api(_) | PageError::DownloadFailed(_) => 502,
        }
    }
}

/// Links every page carries. The state-changing actions are the targets of forms that
/// POST the CSRF token (see `csrf`), never links that carry it.
#[derive(Debug, Serialize)]
struct Links {
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

const LINKS: Links = Links {
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
fn action_target(action: Action) -> String {
    format!("?action={}", action.name())
}

/// What every template receives besides its view.
#[derive(Debug, Serialize)]
struct Common {
    lang: String,
    links: &'static Links,
    /// The CSRF token the page's forms post.
    csrf_token: String,
    help_url: &'static str,
    reports_url: &'static str,
}

/// One request's context.
struct Page<'a> {
    site: &'a Site,
    install: Installation,
    config: Arc<LicenseConfig>,
    query: Query,
    /// The CSRF token this session and browser's forms carry.
    token: String,
    /// The token the request POSTed, if any.
    posted_token: Option<String>,
    now: i64,
}

/// Who is asking, for the CSRF token: the admin's session and this browser's value.
struct Visitor {
    session: String,
    nonce: String,
}

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
                .unwrap_or_else(|| csrf::nonce_from_bytes(&rand::random())),
        };
        let mut response = match page(request, site, query, &visitor) {
            Ok(response) => response,
            Err((error, strings, token)) => error_page(site, &error, &strings, &token),
        };
        if cookie_nonce.is_none() {
            let folder = page_folder(request).unwrap_or_else(|| "/".into());
            let cookie = csrf::set_cookie(&visitor.nonce, &folder, https);
            response.set_header("Set-Cookie", &cookie);
        }
        response
    };
    add_security_headers(&mut response);
    response
}

/// Not a logged-in admin: a page view goes to the panel's login; a download, the debug
/// page or an asset gets 403 with no data.
fn not_logged_in(request: &Request, query: &Query) -> Response {
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
fn page_folder(request: &Request) -> Option<String> {
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
) -> Result<Response, (PageError, Strings, String)> {
    let english = Strings::english;
    let install = match &site.root {
        Some(root) => Installation::new(root),
        None => {
            let script = request.param("SCRIPT_FILENAME");
            Installation::from_script_filename(Path::new(&script)).ok_or_else(|| {
                let error = PageError::NoInstallation(format!(
                    "SCRIPT_FILENAME {script:?} is not in a ct/admin folder"
                ));
                (error, english(), String::new())
            })?
        }
    };
    // A path the visitor made up (a regex location passes any) is no installation: only
    // a folder with a config file is served, and nothing is created for any other.
    let config = site.configs.load(&install).map_err(|error| match error {
        ConfigError::NotFound(_) if site.root.is_none() => (
            PageError::NoInstallation(error.to_string()),
            english(),
            String::new(),
        ),
        error => (PageError::Config(error), english(), String::new()),
    })?;
    let strings = config.strings.clone();
    let token = csrf::token(&config.secret, &visitor.session, &visitor.nonce);
    let page = Page {
        site,
        install,
        config,
        query,
        token: token.clone(),
        posted_token: (request.param("REQUEST_METHOD") == "POST")
            .then(|| csrf::token_from_form(&request.body))
            .flatten(),
        now: (site.clock)(),
    };
    page.run().map_err(|e| (e, strings, token))
}

impl Page<'_> {
    fn gatherer(&self, force: bool) -> Gatherer {
        Gatherer {
            api: self.site.api.clone(),
            memo: self.site.memo.clone(),
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

    fn run(&self) -> Result<Response, PageError> {
        let config = &self.config;
        let strings = &config.strings;
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
        match action {
            Action::Overview | Action::Asset(_) => self.dashboard(notices, false),
            Action::RefreshData => self.dashboard(notices, true),
            Action::UpdatePricing => {
                match cache::delete(&self.install.pricing_cache()) {
                    Ok(_) => {
                        notices.push(Notice::success(strings.get("token_usage_pricing_cleared")))
                    }
                    Err(e) => notices.push(Notice::error(format!(
                        "{}: {e}",
                        self.install.pricing_cache().display()
                    ))),
                }
                self.dashboard(notices, false)
            }
            Action::ClearCache => {
                let dir = self.install.transaction_cache_dir();
                self.site.memo.forget_folder(&dir);
                match cache::clear_transaction_caches(&dir) {
                    Ok(count) => notices.push(Notice::success(
                        strings
                            .get("token_usage_cache_cleared")
                            .replace("{count}", &count.to_string()),
                    )),
                    Err(e) => notices.push(Notice::error(format!("{}: {e}", dir.display()))),
                }
                self.dashboard(notices, false)
            }
            Action::Download => self.download(notices),
            Action::Debug => self.debug(),
        }
    }

    /// The dashboard; `refresh` fetches everything afresh (Refresh Data).
    fn dashboard(&self, mut notices: Vec<Notice>, refresh: bool) -> Result<Response, PageError> {
        let config = &self.config;
        let mut gatherer = self.gatherer(refresh);
        if self.site.one_request {
            gatherer.only_page = Some(self.query.page);
        }
        let gathered = gatherer.gather(Needs::DASHBOARD);
        let info = required(gathered.info).map_err(PageError::Api)?;
        let stats = required(gathered.stats).map_err(PageError::Api)?;
        let pricing = required(gathered.pricing);
        let history = required(gathered.history);
        // Success only when every part came fresh from the license server.
        if refresh && pricing.is_ok() && history.is_ok() && gathered.stale.is_empty() {
            notices.push(Notice::success(
                config.strings.get("token_usage_data_refreshed"),
            ));
        }
        for part in &gathered.stale {
            // A resting part made no call: the failure it rests after was logged.
            if !matches!(part.error, ApiError::Resting { .. }) {
                eprintln!("tokenusage: license API: {}", debug_message(&part.error));
            }
        }
        notices.extend(stale_banners(&gathered.stale, self.now, &config.strings));
        notices.extend(gathered.warnings.into_iter().map(Notice::info));
        let history_list = history
            .as_ref()
            .map(|h| Sourced {
                value: h.value.as_ref(),
                fetched_at: h.fetched_at,
                from_cache: h.from_cache,
            })
            .map_err(ToString::to_string);
        let data = PageData {
            account_cached: info.from_cache || stats.from_cache,
            info: info.value,
            stats,
            pricing: pricing.map_err(|e| e.to_string()),
            history: history_list,
        };
        let rows_key = RowsKey {
            page: crate::data::history::paginate(
                history.as_ref().map_or(0, |h| h.value.len()),
                self.query.page,
                crate::data::history::PER_PAGE,
            )
            .page,
            timezone: config.timezone,
            strings: config.strings.clone(),
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
                        .map_err(PageError::Render)?;
                    self.site.rows.insert(&h.value, rows_key, html)
                }
            });
        }
        // A view equal to one shown before (the same account, page, ages and notices) is
        // not rendered again: only this browser's token and the rows are put in.
        let key = PageKey {
            view,
            strings: config.strings.clone(),
            language: config.language.clone(),
        };
        let placeholder = &self.site.token_placeholder;
        let page = self
            .site
            .pages
            .get_or_make(key, |key| {
                let common = common(key.language.as_deref(), placeholder);
                let html = self.site.renderer.render(
                    "dashboard.html",
                    &key.strings,
                    &common,
                    ("view", &key.view),
                )?;
                Ok(RenderedPage::cut(&html, placeholder))
            })
            .map_err(PageError::Render)?;
        let rows = rows_html.as_deref().map_or("", String::as_str);
        Ok(Response::html(200, page.assemble(&self.token, rows)))
    }

    fn download(&self, mut notices: Vec<Notice>) -> Result<Response, PageError> {
        let config = &self.config;
        let strings = &config.strings;
        if config.demo_mode {
            notices.push(Notice::error(strings.get("token_usage_download_demo")));
            return self.dashboard(notices, false);
        }
        let gathered = self.gatherer(false).gather(Needs::HISTORY);
        let history = match required(gathered.history) {
            Ok(history) => history,
            Err(error) => {
                eprintln!("tokenusage: download: {}", debug_message(&error));
                let message = strings.get("token_usage_download_failed").to_string();
                notices.push(Notice::error(message.clone()));
                return self
                    .dashboard(notices, false)
                    .map_err(|_| PageError::DownloadFailed(message));
            }
        };
        if history.value.is_empty() {
            notices.push(Notice::info(
                strings.get("token_usage_no_transactions_download"),
            ));
            return self.dashboard(notices, false);
        }
        let csv = self
            .site
            .csv
            .get_or_make(&history.value, (), || {
                let mut body = Vec::with_capacity(history.value.len() * 160);
                export::write_csv(&mut body, history.value.iter()).map(|()| body)
            })
            .map_err(|e| PageError::Render(e.to_string()))?;
        let body = csv.as_ref().clone();
        let today = local_date(self.now, config.timezone);
        let mut response = Response::new(200, "text/csv; charset=UTF-8", body);
        response.set_header(
            "Content-Disposition",
            &format!(
                "attachment; filename=\"{}\"",
                export::download_file_name(today)
            ),
        );
        Ok(response)
    }

    fn debug(&self) -> Result<Response, PageError> {
        let config = &self.config;
        let credentials = &config.credentials;
        let gatherer = self.gatherer(false);
        let history_path = gatherer.history_path();
        let (answers, gathered) = std::thread::scope(|scope| {
            let calls: Vec<_> = [
                (Endpoint::UserInfo, "token_usage_debug_user_info"),
                (Endpoint::UserStats, "token_usage_debug_user_stats"),
            ]
            .into_iter()
            .map(|(endpoint, label)| {
                (
                    label,
                    scope.spawn(move || self.site.api.call_raw(credentials, endpoint)),
                )
            })
            .collect();
            let gathered = gatherer.gather(Needs::HISTORY);
            let answers: Vec<AnswerView> = calls
                .into_iter()
                .map(|(label, call)| {
                    let result = call
                        .join()
                        .unwrap_or_else(|_| Err(ApiError::Connect("panicked".into())));
                    AnswerView::new(label, result)
                })
                .collect();
            (answers, gathered)
        });
        let pricing_path = self.install.pricing_cache();
        let pricing_ts = cache::read_pricing(&pricing_path).map(|c| c.timestamp);
        let history_ts = self.site.memo.read(&history_path).map(|c| c.timestamp);
        let cache_file = |path: &Path, ttl, ts| {
            let (age, state) = cache::describe(path, self.now, ttl, ts);
            CacheFileView {
                path: path.display().to_string(),
                age,
                state,
            }
        };
        let (transactions, transactions_json, history_error) = match required(gathered.history) {
            Ok(history) => {
                let first = history.value.decode(0..5);
                let json = serde_json::to_string_pretty(&first).unwrap_or_default();
                let rows = first
                    .iter()
                    .map(|t| dashboard::transaction_view(t, config.timezone))
                    .collect();
                (rows, crate::view::branding::brand(&json).into_owned(), None)
            }
            Err(error) => (Vec::new(), String::new(), Some(error.to_string())),
        };
        let view = DebugView {
            api_url: credentials.api_url.clone(),
            license_key: config.masked_key(),
            domain: credentials.domain.clone(),
            email: credentials.email.clone(),
            cache_files: vec![
                cache_file(&pricing_path, cache::PRICING_TTL, pricing_ts),
                cache_file(&history_path, cache::TRANSACTIONS_TTL, history_ts),
            ],
            answers,
            transactions,
            transactions_json,
            history_error,
        };
        self.render("debug.html", ("debug", &view))
    }

    /// Renders a template to text (a whole page, or rows the page then places).
    fn render_fragment(
        &self,
        template: &str,
        view: (&str, &impl Serialize),
    ) -> Result<String, String> {
        let config = &self.config;
        let common = common(config.language.as_deref(), &self.token);
        self.site
            .renderer
            .render(template, &config.strings, &common, view)
    }

    fn render(&self, template: &str, view: (&str, &impl Serialize)) -> Result<Response, PageError> {
        self.render_fragment(template, view)
            .map(|html| Response::html(200, html))
            .map_err(PageError::Render)
    }
}

/// The translation key of an action's button.
fn action_label(action: Action) -> &'static str {
    match action {
        Action::RefreshData => "token_usage_refresh",
        Action::UpdatePricing => "token_usage_update_pricing",
        Action::ClearCache => "token_usage_clear_cache",
        Action::Download => "token_usage_download",
        Action::Debug => "token_usage_debug",
        Action::Overview | Action::Asset(_) => "token_usage_overview",
    }
}

/// Where the page template places the rendered rows. Outside text cannot forge it: every
/// template escapes `<` in what it prints.
const ROWS_MARKER: &str = "<!--tokenusage:rows-->";

/// What a rendered dashboard depends on: the view (rows left out) and the strings.
struct PageKey {
    view: DashboardView,
    strings: Strings,
    language: Option<String>,
}

impl PartialEq for PageKey {
    fn eq(&self, other: &Self) -> bool {
        self.strings.is_same(&other.strings)
            && self.language == other.language
            && self.view == other.view
    }
}

/// A rendered dashboard, cut where a browser's CSRF token and the page's rows go.
#[derive(Debug, PartialEq)]
struct RenderedPage {
    pieces: Vec<Piece>,
}

#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Token,
    Rows,
}

impl RenderedPage {
    /// Cuts `html`, rendered with `placeholder` as the token, at the token and the rows'
    /// marker.
    fn cut(html: &str, placeholder: &str) -> RenderedPage {
        let mut pieces = Vec::new();
        let (before, after) = match html.split_once(ROWS_MARKER) {
            Some((before, after)) => (before, Some(after)),
            None => (html, None),
        };
        let push_text = |text: &str, pieces: &mut Vec<Piece>| {
            for (i, part) in text.split(placeholder).enumerate() {
                if i > 0 {
                    pieces.push(Piece::Token);
                }
                if !part.is_empty() {
                    pieces.push(Piece::Text(part.to_string()));
                }
            }
        };
        push_text(before, &mut pieces);
        if let Some(after) = after {
            pieces.push(Piece::Rows);
            push_text(after, &mut pieces);
        }
        RenderedPage { pieces }
    }

    /// The page with this token and these rows.
    fn assemble(&self, token: &str, rows: &str) -> Vec<u8> {
        let piece = |p: &'_ Piece| -> usize {
            match p {
                Piece::Text(text) => text.len(),
                Piece::Token => token.len(),
                Piece::Rows => rows.len(),
            }
        };
        let mut body = Vec::with_capacity(self.pieces.iter().map(piece).sum());
        for p in &self.pieces {
            body.extend_from_slice(match p {
                Piece::Text(text) => text.as_bytes(),
                Piece::Token => token.as_bytes(),
                Piece::Rows => rows.as_bytes(),
            });
        }
        body
    }
}

/// One banner per distinct failure: what failed, in the seed's words, and the age of the
/// oldest data shown in its place.
fn stale_banners(stale: &[Stale], now: i64, strings: &Strings) -> Vec<Notice> {
    let mut banners: Vec<(String, i64)> = Vec::new();
    for part in stale {
        let message = part.error.to_string();
        match banners.iter_mut().find(|(m, _)| *m == message) {
            Some((_, oldest)) => *oldest = (*oldest).min(part.fetched_at),
            None => banners.push((message, part.fetched_at)),
        }
    }
    // Parts resting after a failed call say when the license server is asked again.
    let retry = stale
        .iter()
        .filter_map(|part| match part.error {
            ApiError::Resting { until, .. } => Some(until),
            _ => None,
        })
        .max();
    banners
        .into_iter()
        .map(|(message, fetched_at)| {
            let age = dashboard::format_age(now - fetched_at);
            let mut shown = strings.get("token_usage_stale").replace("{age}", &age);
            if let Some(until) = retry.filter(|_| message == retry_message()) {
                let wait = dashboard::format_age(until - now);
                shown.push(' ');
                shown.push_str(&strings.get("token_usage_retry_in").replace("{age}", &wait));
            }
            Notice::warning(format!("{message}. {shown}"))
        })
        .collect()
}

/// The message of a resting part (the seed's "Failed to connect to License API").
fn retry_message() -> String {
    ApiError::Resting {
        until: 0,
        cause: String::new(),
    }
    .to_string()
}

fn common(language: Option<&str>, token: &str) -> Common {
    Common {
        lang: language.unwrap_or("en").to_string(),
        links: &LINKS,
        csrf_token: token.to_string(),
        help_url: dashboard::HELP_URL,
        reports_url: dashboard::REPORTS_URL,
    }
}

#[derive(Debug, Serialize)]
struct DebugView {
    api_url: String,
    license_key: String,
    domain: String,
    email: String,
    cache_files: Vec<CacheFileView>,
    answers: Vec<AnswerView>,
    transactions: Vec<TransactionView>,
    transactions_json: String,
    history_error: Option<String>,
}

#[derive(Debug, Serialize)]
struct CacheFileView {
    path: String,
    age: String,
    state: String,
}

/// A raw answer as the debug page shows it: pretty JSON when it is JSON.
#[derive(Debug, Serialize)]
struct AnswerView {
    label: &'static str,
    body: String,
    error: Option<String>,
}

/// The most of a raw answer the debug page shows.
const DEBUG_BODY_CHARS: usize = 64 * 1024;

impl AnswerView {
    fn new(
        label: &'static str,
        result: Result<crate::data::license_api::client::RawAnswer, ApiError>,
    ) -> Self {
        match result {
            Ok(raw) => {
                let error = crate::data::license_api::client::decode(&raw)
                    .err()
                    .map(|e| debug_message(&e));
                let body = serde_json::from_str::<serde_json::Value>(&raw.body)
                    .ok()
                    .and_then(|v| serde_json::to_string_pretty(&v).ok())
                    .unwrap_or(raw.body);
                AnswerView {
                    label,
                    body: dashboard::truncate_chars(&body, DEBUG_BODY_CHARS),
                    error,
                }
            }
            Err(e) => AnswerView {
                label,
                body: String::new(),
                error: Some(debug_message(&e)),
            },
        }
    }
}

/// An API error with its cause: the debug page is where causes are shown.
fn debug_message(error: &ApiError) -> String {
    match error.detail() {
        Some(detail) => format!("{error} ({detail})"),
        None => error.to_string(),
    }
}

fn asset(site: &Site, name: &str) -> Response {
    match site.renderer.asset(name) {
        Some((content_type, bytes)) => Response::new(200, content_type, bytes.to_vec()),
        None => Response::text(404, "Not Found\n"),
    }
}

/// The "Unable to Load Account Data" page with "Retry Loading Data", or a plain message
/// if even that cannot be rendered.
fn error_page(site: &Site, error: &PageError, strings: &Strings, token: &str) -> Response {
    let message = match error {
        PageError::NoInstallation(text) | PageError::Render(text) => {
            eprintln!("tokenusage: {text}");
            String::new()
        }
        PageError::Config(e) => e.summary(),
        PageError::DownloadFailed(text) => text.clone(),
        PageError::Api(e) => {
            eprintln!("tokenusage: license API: {}", debug_message(e));
            e.to_string()
        }
    };
    let status = error.status();
    let rendered = site.renderer.render(
        "error.html",
        strings,
        &common(None, token),
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

/// The headers every admin response carries.
fn add_security_headers(response: &mut Response) {
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

    #[test]
    fn a_kept_page_takes_each_browsers_token_and_the_rows() {
        let placeholder = "0123456789abcdef";
        let html = format!(
            "<a href=\"?action=refresh_data&token={placeholder}\">{ROWS_MARKER}<b data-x=\"{placeholder}\"></b>"
        );
        let page = RenderedPage::cut(&html, placeholder);
        assert_eq!(
            page.pieces,
            [
                Piece::Text("<a href=\"?action=refresh_data&token=".into()),
                Piece::Token,
                Piece::Text("\">".into()),
                Piece::Rows,
                Piece::Text("<b data-x=\"".into()),
                Piece::Token,
                Piece::Text("\"></b>".into()),
            ]
        );
        assert_eq!(
            String::from_utf8(page.assemble("feed", "<tr></tr>")).unwrap(),
            "<a href=\"?action=refresh_data&token=feed\"><tr></tr><b data-x=\"feed\"></b>"
        );
    }

    #[test]
    fn a_page_without_the_rows_marker_is_kept_whole() {
        let page = RenderedPage::cut("<p>no rows</p>", "0123");
        assert_eq!(page.assemble("t", "<tr></tr>"), b"<p>no rows</p>");
    }
}
