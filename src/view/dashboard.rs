//! The view model: page data + the clock -> what the templates show. Pure: no I/O.
//!
//! Cards, estimates, pagination and the footer are computed here, formatted as text in
//! the page's language (numbers, money and dates through [`Locale`]), so templates only
//! place strings and never compute. Sentences with numbers are [`TextView`]s, filled by
//! the template from the language's strings.

use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::view::charts::{InsightsView, TextView, insights_view};
use crate::view::insights::{Insights, Urgency};

use crate::data::cache::{local_date, local_time};
use crate::data::fetch::Sourced;
use crate::data::history::{PER_PAGE, TransactionList, paginate};
use crate::data::i18n::Strings;
use crate::data::license_api::wire::{
    Price, PriceTable, Pricing, Transaction, UserInfo, UserStats,
};
use crate::view::branding::brand;
use crate::view::locale::Locale;

/// Page links shown on each side of the current page.
pub const PAGE_WINDOW: usize = 5;
/// Below this balance the page shows red and the low-balance banner.
pub const LOW_BALANCE: f64 = 1.0;
/// Descriptions longer than this are cut in the table; the whole text opens below.
pub const DESCRIPTION_CHARS: usize = 50;
/// The auto refresh interval (10 minutes).
pub const AUTO_REFRESH_MS: u64 = 600_000;
/// Data younger than this reads "just now" rather than "0 sec ago".
const JUST_NOW_SECONDS: i64 = 60;

/// Where the Help links and the buy-credits banner point.
pub const HELP_URL: &str = "https://comusthumbz.com/manual/?page=token-usage";
pub const BUY_CREDITS_URL: &str = "https://comusthumbz.com/projects/buycredits.php";
/// Back to Reports: the page beside ours.
pub const REPORTS_URL: &str = "reports.php";

/// A piece of the page: the data, or the message saying why it is missing.
pub type Part<T> = Result<Sourced<T>, String>;

/// Everything a dashboard view is built from.
#[derive(Debug, Clone)]
pub struct PageData<'a> {
    /// True when user/info or user/stats was reused rather than fetched for this view.
    pub account_cached: bool,
    pub info: UserInfo,
    pub stats: Sourced<UserStats>,
    pub pricing: Part<Pricing>,
    pub history: Result<Sourced<&'a TransactionList>, String>,
    pub insights: Option<&'a Insights>,
}

/// Settings of the view that do not come from the license server.
#[derive(Debug, Clone)]
pub struct ViewSettings<'a> {
    pub now: i64,
    pub timezone: Tz,
    pub requested_page: usize,
    pub api_url: &'a str,
    pub notices: Vec<Notice>,
    pub demo_mode: bool,
    /// False when the page's rows are already rendered (the caller keeps them).
    pub build_rows: bool,
    /// How numbers, money and dates are written in the page's language.
    pub locale: &'static Locale,
    /// The page's strings: which plural form a sentence with a count takes.
    pub strings: &'a Strings,
}

impl ViewSettings<'_> {
    fn formats(&self) -> Formats {
        Formats::new(self.now, self.timezone, self.locale)
    }
}

/// How the page writes dates: in the admin's zone, in the language's order, with the
/// year only when it is not this year's (so `today` is part of it).
#[derive(Debug, Clone, Copy)]
pub struct Formats {
    pub timezone: Tz,
    pub locale: &'static Locale,
    /// Today in the admin's zone.
    pub today: NaiveDate,
}

impl Formats {
    /// The formats at `now` (Unix seconds).
    pub fn new(now: i64, timezone: Tz, locale: &'static Locale) -> Self {
        Formats {
            timezone,
            locale,
            today: local_date(now, timezone),
        }
    }

    /// Unix seconds as a local date and time to the minute.
    pub fn unix(&self, seconds: i64) -> String {
        let local = local_time(seconds, self.timezone).naive_local();
        self.locale.date_time(local, self.today)
    }

    /// A server timestamp (UTC) as a local date and time; other text as it came.
    pub fn timestamp(&self, text: &str) -> String {
        match server_time(text) {
            Some(utc) => self.locale.date_time(self.local(utc), self.today),
            None => text.to_string(),
        }
    }

    /// A server timestamp (UTC) as its local date; other text as it came.
    pub fn date(&self, text: &str) -> String {
        match server_time(text) {
            Some(utc) => self.locale.date(self.local(utc).date(), self.today),
            None => text.to_string(),
        }
    }

    fn local(&self, utc: NaiveDateTime) -> NaiveDateTime {
        Utc.from_utc_datetime(&utc)
            .with_timezone(&self.timezone)
            .naive_local()
    }
}

/// A message above the cards, optionally with a button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// `success`, `error`, `info` or `confirm`: picks the colour.
    pub kind: &'static str,
    pub text: String,
    pub button: Option<NoticeButton>,
}

/// A button in a notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoticeButton {
    pub label: String,
    pub href: String,
}

impl Notice {
    fn new(kind: &'static str, text: impl Into<String>) -> Self {
        Notice {
            kind,
            text: text.into(),
            button: None,
        }
    }
    pub fn success(text: impl Into<String>) -> Self {
        Self::new("success", text)
    }
    pub fn error(text: impl Into<String>) -> Self {
        Self::new("error", text)
    }
    pub fn info(text: impl Into<String>) -> Self {
        Self::new("info", text)
    }
    pub fn warning(text: impl Into<String>) -> Self {
        Self::new("warning", text)
    }
    /// Asks before running an action that arrived without a valid token.
    pub fn confirm(text: impl Into<String>, label: impl Into<String>, href: String) -> Self {
        Notice {
            button: Some(NoticeButton {
                label: label.into(),
                href,
            }),
            ..Self::new("confirm", text)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DashboardView {
    pub notices: Vec<Notice>,
    pub demo_mode: bool,
    /// The answer first: balance and its state, runway, recent spend, how fresh.
    pub top: TopStripView,
    pub account: AccountView,
    pub stats: StatsView,
    pub low_balance: bool,
    /// The pricing card's heading key: "(Live)" only when the prices were fetched for
    /// this view, "(Cached)" when reused, plain when they are missing.
    pub pricing_heading: &'static str,
    pub pricing: Option<PricingView>,
    /// Why pricing (and so the estimates) is missing.
    pub pricing_error: Option<String>,
    pub estimates: Option<Vec<EstimateView>>,
    pub history: Option<HistoryView>,
    /// Why the history is missing.
    pub history_error: Option<String>,
    /// The key saying why Download History cannot give a file (no history, demo mode);
    /// None when it can.
    pub download_unavailable: Option<&'static str>,
    /// Runway, charts and breakdown from the kept history (None when it cannot be read).
    pub insights: Option<InsightsView>,
    pub footer: FooterView,
    pub auto_refresh_ms: u64,
    pub buy_credits_url: &'static str,
}

/// The strip above the cards.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopStripView {
    pub balance: String,
    /// `ok`, `warn` or `low`: picks the colour; `state_label` says it in words.
    pub state: &'static str,
    /// The key of the state's word: Healthy, Running low, Low, Empty.
    pub state_label: &'static str,
    /// How long the balance lasts, or why that cannot be said (None without insights).
    pub runway: Option<TextView>,
    /// Spend of the last 7 and 30 local days, today so far included: the daily chart's
    /// sums, so they match the breakdown's total row (None without insights).
    pub spend_7d: Option<String>,
    pub spend_30d: Option<String>,
    /// When the oldest part shown was fetched, in the admin's zone, named, and its age.
    pub as_of: TextView,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountView {
    pub email: String,
    pub license_type: String,
    pub domain: String,
    pub member_since: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsView {
    pub balance: String,
    pub balance_low: bool,
    pub tokens_used: String,
    pub credits_used: String,
    pub api_calls: String,
    pub images_processed: String,
    pub last_updated: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PricingView {
    pub rows: Vec<PriceView>,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriceView {
    /// Translation key of the service name.
    pub label: &'static str,
    pub price: String,
    /// Translation key of the unit ("per 10,000 images").
    pub unit: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EstimateView {
    pub label: &'static str,
    /// A whole number, or empty when the service has no price (shown as "n/a").
    pub amount: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryView {
    pub rows: Vec<TransactionView>,
    /// False when there are no transactions at all.
    pub has_rows: bool,
    pub pagination: PaginationView,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransactionView {
    pub date: String,
    /// `usage`, `purchase`, `refund` or `other`: picks the badge colour.
    pub kind: &'static str,
    pub type_label: String,
    pub service: String,
    /// Signed, so the sign says what the colour says: `+$10.0000`, `-$0.0125`.
    pub amount: String,
    /// `positive`, `negative` or `zero`: picks the amount colour.
    pub sign: &'static str,
    pub tokens: String,
    pub images: String,
    /// Cut to [`DESCRIPTION_CHARS`]; `description_full` is the whole text.
    pub description: String,
    pub description_full: String,
    /// True when `description` was cut: the whole text opens below it.
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaginationView {
    /// Numbers for the links; `*_text` and `total` as the language writes them.
    pub from: usize,
    pub to: usize,
    pub page: usize,
    pub pages: usize,
    pub from_text: String,
    pub to_text: String,
    pub total: String,
    pub page_text: String,
    pub pages_text: String,
    /// Page 1, when not on it.
    pub first: Option<usize>,
    pub previous: Option<usize>,
    pub next: Option<usize>,
    /// The last page, when not on it.
    pub last: Option<usize>,
    pub links: Vec<PageLink>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageLink {
    pub number: usize,
    /// The number as the language writes it.
    pub label: String,
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FooterView {
    pub api_url: String,
    /// The same moment as the top strip's "as of".
    pub updated: String,
    pub account_cached: bool,
    pub pricing_cached: bool,
    pub transactions_cached: bool,
}

/// Builds the whole dashboard view.
pub fn build_dashboard(data: &PageData<'_>, settings: &ViewSettings<'_>) -> DashboardView {
    let formats = settings.formats();
    let locale = settings.locale;
    let stats = &data.stats.value;
    let balance = stats.balance;
    let pricing = data.pricing.as_ref().ok();
    let history = data.history.as_ref().ok();
    // The oldest part shown: the page says no part is fresher than it is.
    let as_of = [
        Some(data.stats.fetched_at),
        pricing.map(|p| p.fetched_at),
        history.map(|h| h.fetched_at),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(settings.now);
    let no_history = history.is_some_and(|h| h.value.is_empty());
    let insights = data
        .insights
        .map(|i| insights_view(i, locale, settings.strings));
    DashboardView {
        notices: settings.notices.clone(),
        demo_mode: settings.demo_mode,
        top: top_strip(data, insights.as_ref(), settings, as_of),
        account: AccountView {
            email: data.info.email.clone(),
            license_type: data.info.license_type.clone(),
            domain: data.info.domain.clone(),
            member_since: formats.date(&data.info.created_at),
        },
        stats: StatsView {
            balance: locale.money(balance),
            balance_low: balance < LOW_BALANCE,
            tokens_used: locale.count(stats.total_tokens_used),
            credits_used: locale.money(stats.total_credits_used),
            api_calls: locale.count(stats.total_api_calls),
            images_processed: locale.count(stats.total_images_processed),
            // When the figures were fetched: older than now when shown from the last
            // good copy.
            last_updated: formats.unix(data.stats.fetched_at),
        },
        low_balance: balance < LOW_BALANCE,
        pricing_heading: match pricing {
            Some(p) if !p.from_cache => "token_usage_pricing",
            Some(_) => "token_usage_pricing_cached",
            None => "token_usage_pricing_title",
        },
        pricing: pricing.map(|p| pricing_view(&p.value, &formats)),
        pricing_error: data.pricing.as_ref().err().cloned(),
        estimates: pricing.map(|p| estimates_view(balance, &p.value, locale)),
        history: history.map(|h| history_view(h.value, settings)),
        history_error: data.history.as_ref().err().cloned(),
        download_unavailable: if settings.demo_mode {
            Some("token_usage_download_demo")
        } else if no_history {
            Some("token_usage_no_transactions_download")
        } else {
            None
        },
        insights,
        footer: FooterView {
            api_url: settings.api_url.to_string(),
            updated: formats.unix(as_of),
            account_cached: data.account_cached,
            pricing_cached: pricing.is_some_and(|p| p.from_cache),
            transactions_cached: history.is_some_and(|h| h.from_cache),
        },
        auto_refresh_ms: AUTO_REFRESH_MS,
        buy_credits_url: BUY_CREDITS_URL,
    }
}

fn top_strip(
    data: &PageData<'_>,
    insights: Option<&InsightsView>,
    settings: &ViewSettings<'_>,
    as_of_time: i64,
) -> TopStripView {
    let locale = settings.locale;
    let balance = data.stats.value.balance;
    let urgency = data
        .insights
        .and_then(|i| i.runway.as_ref().map(|r| r.urgency));
    let (state, state_label) = balance_state(balance, urgency);
    let spend = |days: usize| {
        data.insights.map(|i| {
            let recent = &i.daily[i.daily.len().saturating_sub(days)..];
            let sum: f64 = recent
                .iter()
                .map(|d| d.spend)
                .filter(|s| s.is_finite())
                .sum();
            locale.money(sum)
        })
    };
    let age = settings.now - as_of_time;
    let as_of = if age < JUST_NOW_SECONDS {
        TextView::new("token_usage_as_of_now")
    } else {
        TextView::new("token_usage_as_of").with("{age}", format_age(age, settings.strings, locale))
    };
    TopStripView {
        balance: locale.money(balance),
        state,
        state_label,
        runway: insights.map(|i| i.runway.headline.clone()),
        spend_7d: spend(7),
        spend_30d: spend(30),
        as_of: as_of
            .with("{time}", settings.formats().unix(as_of_time))
            .with("{zone}", settings.timezone.name()),
    }
}

/// The balance's state in a class and a word: empty at or below zero, low under
/// [`LOW_BALANCE`], running low when the runway is amber or red (under 14 days at this
/// rate), else healthy.
pub fn balance_state(balance: f64, urgency: Option<Urgency>) -> (&'static str, &'static str) {
    if balance.is_nan() || balance <= 0.0 {
        ("low", "token_usage_balance_empty")
    } else if balance < LOW_BALANCE {
        ("low", "token_usage_balance_low")
    } else if matches!(urgency, Some(Urgency::Amber | Urgency::Red)) {
        ("warn", "token_usage_balance_running_low")
    } else {
        ("ok", "token_usage_balance_healthy")
    }
}

/// A priced service as the page shows it; the label and unit are translation keys.
struct Service {
    price: fn(&PriceTable) -> &Price,
    price_label: &'static str,
    unit: &'static str,
    estimate_label: &'static str,
}

/// The four priced services, in the order both tables list them.
const SERVICES: [Service; 4] = [
    Service {
        price: |t| &t.image_processing,
        price_label: "token_usage_image_processing",
        unit: "token_usage_per_10k_images",
        estimate_label: "token_usage_image_searches",
    },
    Service {
        price: |t| &t.input_tokens,
        price_label: "token_usage_input_tokens",
        unit: "token_usage_per_1m_tokens",
        estimate_label: "token_usage_ai_input_tokens",
    },
    Service {
        price: |t| &t.completion_tokens,
        price_label: "token_usage_completion_tokens",
        unit: "token_usage_per_1m_tokens",
        estimate_label: "token_usage_ai_completion_tokens",
    },
    Service {
        price: |t| &t.cached_tokens,
        price_label: "token_usage_cached_tokens",
        unit: "token_usage_per_1m_tokens",
        estimate_label: "token_usage_ai_cached_tokens",
    },
];

fn pricing_view(pricing: &Pricing, formats: &Formats) -> PricingView {
    PricingView {
        rows: SERVICES
            .iter()
            .map(|s| PriceView {
                label: s.price_label,
                price: formats.locale.money((s.price)(&pricing.pricing).price),
                unit: s.unit,
            })
            .collect(),
        updated_at: formats.timestamp(&pricing.updated_at),
    }
}

fn estimates_view(balance: f64, pricing: &Pricing, locale: &Locale) -> Vec<EstimateView> {
    SERVICES
        .iter()
        .map(|s| EstimateView {
            label: s.estimate_label,
            amount: estimate(balance, (s.price)(&pricing.pricing))
                .map(|n| locale.count(n))
                .unwrap_or_default(),
        })
        .collect()
}

/// How many units the balance still buys at `price` per `unit`; `None` when the service
/// has no price (nothing to divide by). A balance at or below zero buys nothing.
pub fn estimate(balance: f64, price: &Price) -> Option<u64> {
    if price.price <= 0.0 || price.unit == 0 {
        return None;
    }
    if balance <= 0.0 {
        return Some(0);
    }
    // The small nudge keeps decimal inputs like 12.3456 / 0.20 from landing a hair under
    // a whole number; the cast saturates, so an absurd balance cannot wrap.
    Some((balance * price.unit as f64 / price.price + 1e-6).floor() as u64)
}

fn history_view(all: &TransactionList, settings: &ViewSettings<'_>) -> HistoryView {
    let locale = settings.locale;
    let p = paginate(all.len(), settings.requested_page, PER_PAGE);
    let first_link = p.page.saturating_sub(PAGE_WINDOW).max(1);
    let last_link = (p.page + PAGE_WINDOW).min(p.pages);
    // Only the shown rows are decoded, and none when they are already rendered.
    let shown = if settings.build_rows {
        all.decode(p.start..p.end)
    } else {
        Vec::new()
    };
    let formats = settings.formats();
    let from = if all.is_empty() { 0 } else { p.start + 1 };
    // Row and page numbers ungrouped, as the seed prints them ("9901-10000"); the total
    // grouped ("10,000").
    let number = |n: usize| locale.plain(n as u64);
    HistoryView {
        rows: shown
            .iter()
            .map(|t| transaction_view(t, &formats))
            .collect(),
        has_rows: !all.is_empty(),
        pagination: PaginationView {
            from,
            to: p.end,
            page: p.page,
            pages: p.pages,
            from_text: number(from),
            to_text: number(p.end),
            total: locale.count(all.len() as u64),
            page_text: number(p.page),
            pages_text: number(p.pages),
            first: (p.page > 1).then_some(1),
            previous: (p.page > 1).then(|| p.page - 1),
            next: (p.page < p.pages).then(|| p.page + 1),
            last: (p.page < p.pages).then_some(p.pages),
            links: (first_link..=last_link)
                .map(|n| PageLink {
                    number: n,
                    label: number(n),
                    current: n == p.page,
                })
                .collect(),
        },
    }
}

/// One table row, branded, in the page's language.
pub fn transaction_view(t: &Transaction, formats: &Formats) -> TransactionView {
    let locale = formats.locale;
    let amount = t.signed_amount();
    let description = brand(&t.description).into_owned();
    let cut = truncate_chars(&description, DESCRIPTION_CHARS);
    TransactionView {
        date: formats.timestamp(&t.created_at),
        kind: transaction_kind(&t.transaction_type),
        type_label: t.transaction_type.clone(),
        service: brand(&t.service_type).into_owned(),
        amount: signed_money(amount, locale),
        sign: if amount > 0.0 {
            "positive"
        } else if amount < 0.0 {
            "negative"
        } else {
            "zero"
        },
        tokens: locale.count(t.tokens_used),
        images: locale.count(t.images_processed),
        truncated: cut != description,
        description: cut,
        description_full: description,
    }
}

/// The badge class of a transaction type; unknown types are shown neutrally.
pub fn transaction_kind(transaction_type: &str) -> &'static str {
    ["usage", "purchase", "refund"]
        .into_iter()
        .find(|kind| transaction_type.eq_ignore_ascii_case(kind))
        .unwrap_or("other")
}

/// Cuts text to `max` characters (not bytes), adding "..." when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// A signed amount for the table, always 4 decimals so the column lines up, in the
/// language's digits: `+$10.0000`, `-$0.0110`, `$0.0000`; the sign says what the colour
/// says.
pub fn signed_money(amount: f64, locale: &Locale) -> String {
    let amount = if amount.is_finite() { amount } else { 0.0 };
    let rounded = (amount * 10_000.0).round();
    let sign = if rounded > 0.0 {
        "+"
    } else if rounded < 0.0 {
        "-"
    } else {
        ""
    };
    format!("{sign}${}", locale.decimal(amount.abs(), 4))
}

/// `1234567` -> `1,234,567`, like PHP's `number_format`: for the machine outputs
/// (`report`, `check`), which never change with the language.
pub fn format_count(n: u64) -> String {
    Locale::of("en").count(n)
}

/// Credits as dollars with 2 to 4 decimals, for the machine outputs: `$12.3456`,
/// `$2.50`, `$0.0125`, `-$3.00`.
pub fn format_credits(amount: f64) -> String {
    // English's way, whatever the page's language: one rule for money, in `Locale`.
    Locale::of("en").money(amount)
}

/// An age in seconds in the page's language: `45 sec`, `12 min`, `2 h 5 min`, `3 d 4 h`.
pub fn format_age(seconds: i64, strings: &Strings, locale: &Locale) -> String {
    let s = seconds.max(0) as u64;
    let n = |x: u64| locale.count(x);
    match s {
        0..60 => strings
            .get("token_usage_age_seconds")
            .replace("{count}", &n(s)),
        60..3600 => strings
            .get("token_usage_age_minutes")
            .replace("{count}", &n(s / 60)),
        3600..86400 => strings
            .get("token_usage_age_hours")
            .replace("{hours}", &n(s / 3600))
            .replace("{minutes}", &n(s % 3600 / 60)),
        _ => strings
            .get("token_usage_age_days")
            .replace("{days}", &n(s / 86400))
            .replace("{hours}", &n(s % 86400 / 3600)),
    }
}

/// A server timestamp (`YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD`, UTC).
pub fn server_time(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

/// The dashboard page as the real renderer makes it (for tests of the view).
#[cfg(test)]
pub(crate) fn render_for_tests(view: &DashboardView, strings: &Strings) -> String {
    let common = serde_json::json!({
        "lang": strings.language(),
        "dir": strings.dir(),
        "links": {
            "overview": "?", "refresh": "?action=refresh_data", "download": "?action=download",
            "update_pricing": "?action=update_pricing", "clear_cache": "?action=clear_cache",
            "debug": "?debug=1", "retry": "?", "page": "?page=",
        },
        "csrf_token": "token",
        "help_url": "https://example.org/help",
        "reports_url": "reports.php",
    });
    crate::view::render::Renderer::embedded()
        .unwrap()
        .render("dashboard.html", strings, &common, ("view", view))
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::insights::{Day, Runway, RunwayStatus, Totals};

    /// Fri 20 Nov 2026, 11:00 UTC.
    const NOW: i64 = 1_795_172_400;

    fn price(price: f64, unit: u64) -> Price {
        Price { price, unit }
    }

    fn english() -> &'static Strings {
        static STRINGS: std::sync::LazyLock<Strings> = std::sync::LazyLock::new(Strings::english);
        &STRINGS
    }

    fn german() -> &'static Strings {
        static STRINGS: std::sync::LazyLock<Strings> =
            std::sync::LazyLock::new(|| Strings::built_in("de"));
        &STRINGS
    }

    fn formats(tz: Tz) -> Formats {
        Formats::new(NOW, tz, Locale::of("en"))
    }

    #[test]
    fn estimates_divide_the_balance_by_the_unit_price() {
        assert_eq!(estimate(12.3456, &price(2.50, 10_000)), Some(49_382));
        assert_eq!(estimate(12.3456, &price(0.20, 1_000_000)), Some(61_728_000));
        assert_eq!(estimate(0.0, &price(0.20, 1_000_000)), Some(0));
        assert_eq!(estimate(-5.0, &price(0.20, 1_000_000)), Some(0));
        assert_eq!(estimate(5.0, &price(0.0, 1_000_000)), None);
        assert_eq!(estimate(5.0, &price(1.0, 0)), None);
    }

    #[test]
    fn page_34_of_10000_transactions_holds_rows_9901_to_10000() {
        let p = paginate(10_000, 34, PER_PAGE);
        assert_eq!((p.page, p.pages, p.start, p.end), (34, 34, 9_900, 10_000));
    }

    #[test]
    fn a_page_past_the_end_shows_the_last_page() {
        assert_eq!(paginate(10_000, 99, PER_PAGE).page, 34);
        assert_eq!(paginate(10_000, usize::MAX, PER_PAGE).page, 34);
        assert_eq!(paginate(10_000, 0, PER_PAGE).page, 1);
    }

    #[test]
    fn no_transactions_is_one_empty_page() {
        let p = paginate(0, 5, PER_PAGE);
        assert_eq!((p.page, p.pages, p.start, p.end), (1, 1, 0, 0));
    }

    #[test]
    fn exactly_300_transactions_is_one_page() {
        assert_eq!(paginate(300, 2, PER_PAGE).pages, 1);
        assert_eq!(paginate(301, 2, PER_PAGE).pages, 2);
    }

    #[test]
    fn machine_counts_and_credits_keep_the_php_format() {
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1_000), "1,000");
        assert_eq!(format_count(1_234_567), "1,234,567");
        assert_eq!(format_credits(12.3456), "$12.3456");
        assert_eq!(format_credits(2.5), "$2.50");
        assert_eq!(format_credits(0.0125), "$0.0125");
        assert_eq!(format_credits(-3.0), "-$3.00");
        assert_eq!(format_credits(1234.5), "$1,234.50");
        assert_eq!(format_credits(-0.00001), "$0.00");
    }

    #[test]
    fn table_amounts_keep_their_sign_and_four_decimals_in_the_languages_digits() {
        let en = Locale::of("en");
        assert_eq!(signed_money(10.0, en), "+$10.0000");
        assert_eq!(signed_money(-0.011, en), "-$0.0110");
        assert_eq!(signed_money(0.0, en), "$0.0000");
        assert_eq!(signed_money(-0.00001, en), "$0.0000");
        assert_eq!(signed_money(f64::NAN, en), "$0.0000");
        assert_eq!(signed_money(1234.5, Locale::of("de")), "+$1.234,5000");
    }

    #[test]
    fn dates_show_in_the_admins_zone_with_the_year_only_when_another() {
        let utc = formats(Tz::UTC);
        assert_eq!(
            utc.timestamp("2026-11-20 10:04:11"),
            "Nov 20, 10:04\u{202f}AM"
        );
        assert_eq!(
            formats(chrono_tz::Europe::Berlin).timestamp("2026-11-20 10:04:11"),
            "Nov 20, 11:04\u{202f}AM"
        );
        assert_eq!(
            utc.timestamp("2025-03-15 08:00:00"),
            "Mar 15, 2025, 8:00\u{202f}AM"
        );
        assert_eq!(utc.date("2024-03-15 23:30:00"), "Mar 15, 2024");
        assert_eq!(
            formats(chrono_tz::Europe::Berlin).date("2024-03-15 23:30:00"),
            "Mar 16, 2024"
        );
        assert_eq!(utc.date("2026-11-01"), "Nov 1");
        assert_eq!(utc.timestamp("yesterday"), "yesterday");
        assert_eq!(
            server_time("  2026-11-20 "),
            server_time("2026-11-20 00:00:00")
        );
    }

    #[test]
    fn descriptions_are_cut_to_50_characters() {
        let long = "é".repeat(60);
        let cut = truncate_chars(&long, 50);
        assert_eq!(cut.chars().count(), 53);
        assert!(cut.ends_with("..."));
        assert_eq!(truncate_chars("short", 50), "short");
        assert_eq!(truncate_chars(&"x".repeat(50), 50), "x".repeat(50));
    }

    #[test]
    fn ages_read_naturally_in_the_pages_language() {
        let en = Locale::of("en");
        assert_eq!(format_age(45, english(), en), "45 sec");
        assert_eq!(format_age(720, english(), en), "12 min");
        assert_eq!(format_age(7500, english(), en), "2 h 5 min");
        assert_eq!(format_age(3 * 86_400 + 4 * 3600, english(), en), "3 d 4 h");
        assert_eq!(format_age(-3, english(), en), "0 sec");
        // The number in the language's grouping, in the language's sentence.
        let de = format_age(1_234 * 86_400, german(), Locale::of("de"));
        assert!(de.starts_with("1.234"), "{de}");
    }

    #[test]
    fn unknown_transaction_types_are_neutral() {
        assert_eq!(transaction_kind("Usage"), "usage");
        assert_eq!(transaction_kind("bonus"), "other");
    }

    fn transactions(n: usize) -> TransactionList {
        let all: Vec<Transaction> = (0..n)
            .map(|i| Transaction::example_usage(&format!("row {i}")))
            .collect();
        TransactionList::of(&all)
    }

    fn settings(page: usize) -> ViewSettings<'static> {
        ViewSettings {
            now: NOW,
            timezone: Tz::UTC,
            requested_page: page,
            api_url: "http://127.0.0.1/api.php",
            notices: Vec::new(),
            demo_mode: false,
            build_rows: true,
            locale: Locale::of("en"),
            strings: english(),
        }
    }

    fn data(history: &TransactionList, balance: f64) -> PageData<'_> {
        PageData {
            account_cached: false,
            info: UserInfo::default(),
            stats: Sourced {
                value: UserStats {
                    balance,
                    ..Default::default()
                },
                fetched_at: NOW,
                from_cache: false,
            },
            pricing: Err("Failed to connect to License API".into()),
            history: Ok(Sourced {
                value: history,
                fetched_at: NOW - 120,
                from_cache: true,
            }),
            insights: None,
        }
    }

    fn pricing(from_cache: bool) -> Part<Pricing> {
        let mut pricing = Pricing::default();
        pricing.pricing.image_processing = price(2.5, 10_000);
        pricing.pricing.input_tokens = price(1234.5, 1_000_000);
        pricing.updated_at = "2026-11-20 09:00:00".into();
        Ok(Sourced {
            value: pricing,
            fetched_at: NOW - if from_cache { 200 } else { 0 },
            from_cache,
        })
    }

    /// 30 days of $1.00 each, today last, with a runway of `status` (and `urgency`).
    fn insights(status: RunwayStatus, urgency: Urgency) -> Insights {
        let today = local_date(NOW, Tz::UTC);
        let daily = (0..30)
            .map(|i| Day {
                date: today - chrono::Duration::days(29 - i),
                spend: 1.0,
                purchases: 0.0,
                refunds: 0.0,
                transactions: 3,
                partial: i == 29,
                unusual: false,
            })
            .collect();
        let runway = (status == RunwayStatus::Estimated).then(|| Runway {
            days: 12.4,
            low_days: 10.0,
            high_days: 20.0,
            empty_on: NaiveDate::from_ymd_opt(2026, 12, 2).unwrap(),
            low_balance_on: None,
            spend_per_day_7d: 1.0,
            spend_per_day_30d: 1.0,
            urgency,
        });
        Insights {
            time_zone: "UTC".into(),
            zone: Tz::UTC,
            balance: 12.4,
            runway_status: status,
            runway,
            daily,
            monthly: Vec::new(),
            services: Vec::new(),
            unusual: Vec::new(),
            own_cost: None,
            totals: Totals::default(),
        }
    }

    #[test]
    fn the_history_shows_the_requested_page_with_a_window_of_links() {
        let all = transactions(10_000);
        let view = build_dashboard(&data(&all, 5.0), &settings(10));
        let history = view.history.unwrap();
        assert_eq!(history.rows.len(), 300);
        assert_eq!(history.rows[0].description, "row 2700");
        let p = &history.pagination;
        assert_eq!((p.from, p.to, p.total.as_str()), (2701, 3000, "10,000"));
        assert_eq!((p.from_text.as_str(), p.to_text.as_str()), ("2701", "3000"));
        assert_eq!((p.page, p.pages), (10, 34));
        assert_eq!((p.previous, p.next), (Some(9), Some(11)));
        let numbers: Vec<usize> = p.links.iter().map(|l| l.number).collect();
        assert_eq!(numbers, (5..=15).collect::<Vec<_>>());
        assert!(view.footer.transactions_cached);
        assert!(!view.footer.pricing_cached);
    }

    #[test]
    fn first_and_last_link_from_every_page_but_their_own() {
        let all = transactions(10_000);
        let pages = |page| {
            build_dashboard(&data(&all, 5.0), &settings(page))
                .history
                .unwrap()
                .pagination
        };
        let first = pages(1);
        assert_eq!((first.first, first.previous), (None, None));
        assert_eq!((first.next, first.last), (Some(2), Some(34)));
        assert_eq!(first.links.len(), 6);
        let middle = pages(17);
        assert_eq!((middle.first, middle.previous), (Some(1), Some(16)));
        assert_eq!((middle.next, middle.last), (Some(18), Some(34)));
        let last = pages(34);
        assert_eq!((last.first, last.previous), (Some(1), Some(33)));
        assert_eq!((last.next, last.last), (None, None));
        assert_eq!(
            build_dashboard(&data(&all, 5.0), &settings(34))
                .history
                .unwrap()
                .rows
                .len(),
            100
        );
    }

    #[test]
    fn the_balance_state_is_a_word_as_well_as_a_colour() {
        let all = transactions(1);
        let low = build_dashboard(&data(&all, 0.99), &settings(1));
        assert!(low.low_balance);
        assert_eq!(
            (low.top.state, low.top.state_label),
            ("low", "token_usage_balance_low")
        );
        let healthy = build_dashboard(&data(&all, 1.0), &settings(1));
        assert!(!healthy.low_balance && !healthy.stats.balance_low);
        assert_eq!(healthy.top.state_label, "token_usage_balance_healthy");
        assert_eq!(
            balance_state(0.0, None),
            ("low", "token_usage_balance_empty")
        );
        assert_eq!(balance_state(-2.0, None).1, "token_usage_balance_empty");
        assert_eq!(balance_state(f64::NAN, None).1, "token_usage_balance_empty");
        assert_eq!(
            balance_state(50.0, Some(Urgency::Red)),
            ("warn", "token_usage_balance_running_low")
        );
        assert_eq!(
            balance_state(50.0, Some(Urgency::Amber)).1,
            "token_usage_balance_running_low"
        );
        assert_eq!(balance_state(50.0, Some(Urgency::Calm)).0, "ok");
        for key in [
            "token_usage_balance_healthy",
            "token_usage_balance_running_low",
            "token_usage_balance_low",
            "token_usage_balance_empty",
        ] {
            assert_ne!(english().get(key), key, "{key} has an English text");
        }
    }

    #[test]
    fn the_top_strip_gives_balance_runway_recent_spend_and_freshness() {
        let all = transactions(1);
        let mut page = data(&all, 12.4);
        let estimated = insights(RunwayStatus::Estimated, Urgency::Amber);
        page.insights = Some(&estimated);
        let top = build_dashboard(&page, &settings(1)).top;
        assert_eq!(top.balance, "$12.40");
        assert_eq!(top.state_label, "token_usage_balance_running_low");
        assert_eq!(
            top.runway.unwrap().fill(english()),
            "At this rate your balance lasts about 12 days (until Dec 2)."
        );
        assert_eq!(top.spend_7d.as_deref(), Some("$7.00"));
        assert_eq!(top.spend_30d.as_deref(), Some("$30.00"));
        // The oldest part shown (the history, 2 minutes old) sets the time, zone named.
        assert_eq!(
            top.as_of.fill(english()),
            "As of Nov 20, 10:58\u{202f}AM UTC, 2 min ago."
        );

        for (status, sentence) in [
            (RunwayStatus::NoSpending, "No spending in the last 7 days."),
            (RunwayStatus::NotEnoughHistory, "Not enough history yet."),
        ] {
            let plain = insights(status, Urgency::Calm);
            let page = PageData {
                insights: Some(&plain),
                ..data(&all, 12.4)
            };
            let top = build_dashboard(&page, &settings(1)).top;
            assert_eq!(top.runway.unwrap().fill(english()), sentence);
            assert_eq!(top.state_label, "token_usage_balance_healthy");
        }

        // Without insights the strip leaves out what it cannot know.
        page.insights = None;
        page.history = Ok(Sourced {
            value: &all,
            fetched_at: NOW,
            from_cache: false,
        });
        let top = build_dashboard(&page, &settings(1)).top;
        assert_eq!(
            (top.runway, top.spend_7d, top.spend_30d),
            (None, None, None)
        );
        assert_eq!(
            top.as_of.fill(english()),
            "As of Nov 20, 11:00\u{202f}AM UTC, just now."
        );
    }

    #[test]
    fn the_pricing_heading_says_live_only_for_prices_fetched_now() {
        let all = transactions(1);
        let mut page = data(&all, 5.0);
        page.pricing = pricing(false);
        let live = build_dashboard(&page, &settings(1));
        assert_eq!(
            english().get(live.pricing_heading),
            "Current API Pricing (Live)"
        );
        assert!(!live.footer.pricing_cached);
        page.pricing = pricing(true);
        let cached = build_dashboard(&page, &settings(1));
        assert_eq!(
            english().get(cached.pricing_heading),
            "Current API Pricing (Cached)"
        );
        assert!(cached.footer.pricing_cached, "the footer agrees");
        page.pricing = Err("Failed to connect to License API".into());
        let missing = build_dashboard(&page, &settings(1));
        assert_eq!(
            english().get(missing.pricing_heading),
            "Current API Pricing"
        );
    }

    #[test]
    fn an_empty_history_explains_itself_and_the_download_is_unavailable() {
        let none = transactions(0);
        let view = build_dashboard(&data(&none, 5.0), &settings(1));
        let history = view.history.as_ref().unwrap();
        assert!(!history.has_rows && history.rows.is_empty());
        assert_eq!(
            view.download_unavailable,
            Some("token_usage_no_transactions_download")
        );
        let all = transactions(3);
        assert_eq!(
            build_dashboard(&data(&all, 5.0), &settings(1)).download_unavailable,
            None
        );
        let demo = ViewSettings {
            demo_mode: true,
            ..settings(1)
        };
        assert_eq!(
            build_dashboard(&data(&all, 5.0), &demo).download_unavailable,
            Some("token_usage_download_demo")
        );

        let html = scraper::Html::parse_document(&render_for_tests(&view, english()));
        let text = |selector: &str| -> Vec<String> {
            html.select(&scraper::Selector::parse(selector).unwrap())
                .map(|e| e.text().collect::<String>().trim().to_string())
                .collect()
        };
        assert_eq!(
            text("#history p.empty"),
            ["No transaction history available"]
        );
        assert_eq!(
            text("#history p.empty-hint"),
            [english().get("token_usage_credits_used_for")]
        );
        assert!(text(".pagination-info").is_empty(), "no Showing 0-0 of 0");
        assert!(text("nav.pagination").is_empty());
        let download = text("nav.actions [aria-disabled=true]");
        assert_eq!(download, ["Download History"]);
        assert!(
            text("nav.actions a")
                .iter()
                .all(|label| label != "Download History"),
            "not a link"
        );
        assert_eq!(
            text("#download-unavailable"),
            ["No transaction history available to download."]
        );
    }

    #[test]
    fn the_page_shows_first_previous_next_and_last_above_and_below_the_table() {
        let all = transactions(10_000);
        let view = build_dashboard(&data(&all, 5.0), &settings(17));
        let html = scraper::Html::parse_document(&render_for_tests(&view, english()));
        let navs: Vec<_> = html
            .select(&scraper::Selector::parse("nav.pagination").unwrap())
            .collect();
        assert_eq!(navs.len(), 2, "above and below the table");
        for nav in navs {
            let hrefs: Vec<&str> = nav
                .select(&scraper::Selector::parse("a").unwrap())
                .filter_map(|a| a.value().attr("href"))
                .collect();
            assert_eq!(hrefs.first(), Some(&"?page=1"));
            assert_eq!(hrefs.get(1), Some(&"?page=16"));
            assert_eq!(hrefs.last(), Some(&"?page=34"));
            let text: String = nav.text().collect();
            for word in ["First", "Previous", "Next", "Last"] {
                assert!(text.contains(word), "{word} in {text}");
            }
        }
    }

    #[test]
    fn a_german_page_writes_money_numbers_and_dates_the_german_way() {
        let all = transactions(2_000);
        let mut page = data(&all, 1234.5);
        page.pricing = pricing(false);
        let german = ViewSettings {
            locale: Locale::of("de"),
            strings: german(),
            ..settings(2)
        };
        let view = build_dashboard(&page, &german);
        assert_eq!(view.stats.balance, "$1.234,50");
        assert_eq!(view.top.balance, "$1.234,50");
        let prices: Vec<&str> = view
            .pricing
            .as_ref()
            .unwrap()
            .rows
            .iter()
            .map(|r| r.price.as_str())
            .collect();
        assert_eq!(prices[..2], ["$2,50", "$1.234,50"]);
        assert_eq!(view.pricing.as_ref().unwrap().updated_at, "20.11., 09:00");
        let estimates = view.estimates.as_ref().unwrap();
        assert_eq!(estimates[0].amount, "4.938.000");
        let history = view.history.as_ref().unwrap();
        let row = &history.rows[0];
        assert_eq!(row.amount, "-$0,0125");
        assert_eq!(row.date, "20.11., 10:04");
        assert_eq!(row.tokens, "1.834");
        assert_eq!(history.pagination.total, "2.000");
        assert_eq!(Locale::of("de").plain(2026), "2026");
        assert_eq!(history.pagination.from_text, "301");
        assert_eq!(view.footer.updated, "20.11., 10:58");
        assert!(
            view.top
                .as_of
                .args
                .iter()
                .any(|a| a.value == "2 Min." || a.value.starts_with('2'))
        );
    }

    #[test]
    fn rows_are_branded() {
        let row = transaction_view(&transactions(1).get(0).unwrap(), &formats(Tz::UTC));
        assert_eq!(row.service, "image_search via CTZ-AI");
        assert_eq!(row.amount, "-$0.0125");
        assert_eq!(row.tokens, "1,834");
        assert_eq!(row.sign, "negative");
        assert_eq!(row.date, "Nov 20, 10:04\u{202f}AM");
        assert!(!row.truncated);
    }
}
