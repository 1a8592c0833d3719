//! The view model: page data + the clock -> what the templates show. Pure: no I/O.
//!
//! Cards, estimates, pagination and the footer are computed here, formatted as text, so
//! templates only place strings and never compute.

use chrono::{NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::view::charts::{InsightsView, insights_view};
use crate::view::insights::Insights;

use crate::data::cache::local_time;
use crate::data::fetch::Sourced;
use crate::data::history::{PER_PAGE, TransactionList, paginate};
use crate::data::license_api::wire::{
    Price, PriceTable, Pricing, Transaction, UserInfo, UserStats,
};
use crate::view::branding::brand;

/// Page links shown on each side of the current page.
pub const PAGE_WINDOW: usize = 5;
/// Below this balance the page shows red and the low-balance banner.
pub const LOW_BALANCE: f64 = 1.0;
/// Descriptions longer than this are cut, the whole text on hover.
pub const DESCRIPTION_CHARS: usize = 50;
/// The auto refresh interval (10 minutes).
pub const AUTO_REFRESH_MS: u64 = 600_000;

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
    pub account: AccountView,
    pub stats: StatsView,
    pub low_balance: bool,
    pub pricing: Option<PricingView>,
    /// Why pricing (and so the estimates) is missing.
    pub pricing_error: Option<String>,
    pub estimates: Option<Vec<EstimateView>>,
    pub history: Option<HistoryView>,
    /// Why the history is missing.
    pub history_error: Option<String>,
    /// Runway, charts and breakdown from the kept history (None when it cannot be read).
    pub insights: Option<InsightsView>,
    pub footer: FooterView,
    pub auto_refresh_ms: u64,
    pub buy_credits_url: &'static str,
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
    pub amount: String,
    /// `positive`, `negative` or `zero`: picks the amount colour.
    pub sign: &'static str,
    pub tokens: String,
    pub images: String,
    pub description: String,
    pub description_full: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaginationView {
    pub from: usize,
    pub to: usize,
    pub total: String,
    pub page: usize,
    pub pages: usize,
    pub cache_age: String,
    pub previous: Option<usize>,
    pub next: Option<usize>,
    pub links: Vec<PageLink>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageLink {
    pub number: usize,
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FooterView {
    pub api_url: String,
    pub updated: String,
    pub account_cached: bool,
    pub pricing_cached: bool,
    pub transactions_cached: bool,
}

/// Builds the whole dashboard view.
pub fn build_dashboard(data: &PageData<'_>, settings: &ViewSettings<'_>) -> DashboardView {
    let tz = settings.timezone;
    let stats = &data.stats.value;
    let balance = stats.balance;
    let pricing = data.pricing.as_ref().ok();
    DashboardView {
        notices: settings.notices.clone(),
        demo_mode: settings.demo_mode,
        account: AccountView {
            email: data.info.email.clone(),
            license_type: data.info.license_type.clone(),
            domain: data.info.domain.clone(),
            member_since: format_timestamp(&data.info.created_at, tz, "%b %-d, %Y"),
        },
        stats: StatsView {
            balance: format_credits(balance),
            balance_low: balance < LOW_BALANCE,
            tokens_used: format_count(stats.total_tokens_used),
            credits_used: format_credits(stats.total_credits_used),
            api_calls: format_count(stats.total_api_calls),
            images_processed: format_count(stats.total_images_processed),
            // When the figures were fetched: older than now when shown from the last
            // good copy.
            last_updated: format_unix(data.stats.fetched_at, tz, "%Y-%m-%d %H:%M:%S"),
        },
        low_balance: balance < LOW_BALANCE,
        pricing: pricing.map(|p| pricing_view(&p.value, tz)),
        pricing_error: data.pricing.as_ref().err().cloned(),
        estimates: pricing.map(|p| estimates_view(balance, &p.value)),
        history: data
            .history
            .as_ref()
            .ok()
            .map(|h| history_view(h, settings)),
        history_error: data.history.as_ref().err().cloned(),
        insights: data.insights.map(insights_view),
        footer: FooterView {
            api_url: settings.api_url.to_string(),
            updated: format_unix(settings.now, tz, "%Y-%m-%d %H:%M:%S"),
            account_cached: data.account_cached,
            pricing_cached: pricing.is_some_and(|p| p.from_cache),
            transactions_cached: data.history.as_ref().is_ok_and(|h| h.from_cache),
        },
        auto_refresh_ms: AUTO_REFRESH_MS,
        buy_credits_url: BUY_CREDITS_URL,
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

fn pricing_view(pricing: &Pricing, tz: Tz) -> PricingView {
    PricingView {
        rows: SERVICES
            .iter()
            .map(|s| PriceView {
                label: s.price_label,
                price: format_credits((s.price)(&pricing.pricing).price),
                unit: s.unit,
            })
            .collect(),
        updated_at: format_timestamp(&pricing.updated_at, tz, "%Y-%m-%d %H:%M:%S"),
    }
}

fn estimates_view(balance: f64, pricing: &Pricing) -> Vec<EstimateView> {
    SERVICES
        .iter()
        .map(|s| EstimateView {
            label: s.estimate_label,
            amount: estimate(balance, (s.price)(&pricing.pricing))
                .map(format_count)
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

fn history_view(history: &Sourced<&TransactionList>, settings: &ViewSettings<'_>) -> HistoryView {
    let all = history.value;
    let p = paginate(all.len(), settings.requested_page, PER_PAGE);
    let first_link = p.page.saturating_sub(PAGE_WINDOW).max(1);
    let last_link = (p.page + PAGE_WINDOW).min(p.pages);
    // Only the shown rows are decoded, and none when they are already rendered.
    let shown = if settings.build_rows {
        all.decode(p.start..p.end)
    } else {
        Vec::new()
    };
    HistoryView {
        rows: shown
            .iter()
            .map(|t| transaction_view(t, settings.timezone))
            .collect(),
        has_rows: !all.is_empty(),
        pagination: PaginationView {
            from: if all.is_empty() { 0 } else { p.start + 1 },
            to: p.end,
            total: format_count(all.len() as u64),
            page: p.page,
            pages: p.pages,
            cache_age: format_age(settings.now - history.fetched_at),
            previous: (p.page > 1).then(|| p.page - 1),
            next: (p.page < p.pages).then(|| p.page + 1),
            links: (first_link..=last_link)
                .map(|number| PageLink {
                    number,
                    current: number == p.page,
                })
                .collect(),
        },
    }
}

/// One table row, branded.
pub fn transaction_view(t: &Transaction, tz: Tz) -> TransactionView {
    let amount = t.signed_amount();
    let description = brand(&t.description).into_owned();
    TransactionView {
        date: format_timestamp(&t.created_at, tz, "%b %-d, %H:%M"),
        kind: transaction_kind(&t.transaction_type),
        type_label: t.transaction_type.clone(),
        service: brand(&t.service_type).into_owned(),
        amount: format_signed_credits(amount),
        sign: if amount > 0.0 {
            "positive"
        } else if amount < 0.0 {
            "negative"
        } else {
            "zero"
        },
        tokens: format_count(t.tokens_used),
        images: format_count(t.images_processed),
        description: truncate_chars(&description, DESCRIPTION_CHARS),
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

/// `1234567` -> `1,234,567`, like PHP's `number_format`.
pub fn format_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Credits as dollars with 2 to 4 decimals: `$12.3456`, `$2.50`, `$0.0125`, `-$3.00`.
pub fn format_credits(amount: f64) -> String {
    format_dollars(amount, 2)
}

/// A signed amount for the table, always 4 decimals so the column lines up: `+$10.0000`,
/// `-$0.0110`.
pub fn format_signed_credits(amount: f64) -> String {
    let text = format_dollars(amount, 4);
    if text.starts_with('-') || amount <= 0.0 || text == "$0.0000" {
        text
    } else {
        format!("+{text}")
    }
}

/// Dollars rounded to 4 decimals, trailing zeros dropped down to `min_decimals`.
fn format_dollars(amount: f64, min_decimals: usize) -> String {
    let rounded = (amount.abs() * 10_000.0).round() / 10_000.0;
    let text = format!("{rounded:.4}");
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, "0000"));
    let keep = fraction.trim_end_matches('0').len().max(min_decimals);
    let whole = format_count(whole.parse().unwrap_or(0));
    let sign = if amount < 0.0 && rounded > 0.0 {
        "-"
    } else {
        ""
    };
    format!("{sign}${whole}.{}", &fraction[..keep.min(fraction.len())])
}

/// An age in seconds as `45 sec`, `12 min`, `2 h 5 min`, `3 d 4 h`.
pub fn format_age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s} sec"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}

/// A server timestamp (`YYYY-MM-DD HH:MM:SS`, UTC) in the admin's zone; text that is not
/// such a timestamp is shown as it came.
pub fn format_timestamp(text: &str, tz: Tz, pattern: &str) -> String {
    let parsed = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S").or_else(|_| {
        chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
    });
    match parsed {
        Ok(naive) => Utc
            .from_utc_datetime(&naive)
            .with_timezone(&tz)
            .format(pattern)
            .to_string(),
        Err(_) => text.to_string(),
    }
}

/// Unix seconds in the admin's zone.
pub fn format_unix(seconds: i64, tz: Tz, pattern: &str) -> String {
    local_time(seconds, tz).format(pattern).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(price: f64, unit: u64) -> Price {
        Price { price, unit }
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
    fn counts_get_thousands_separators() {
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1_000), "1,000");
        assert_eq!(format_count(1_234_567), "1,234,567");
    }

    #[test]
    fn credits_show_two_to_four_decimals() {
        assert_eq!(format_credits(12.3456), "$12.3456");
        assert_eq!(format_credits(2.5), "$2.50");
        assert_eq!(format_credits(0.0125), "$0.0125");
        assert_eq!(format_credits(-3.0), "-$3.00");
        assert_eq!(format_credits(1234.5), "$1,234.50");
        assert_eq!(format_credits(-0.00001), "$0.00");
        assert_eq!(format_signed_credits(10.0), "+$10.0000");
        assert_eq!(format_signed_credits(-0.011), "-$0.0110");
        assert_eq!(format_signed_credits(0.0), "$0.0000");
    }

    #[test]
    fn dates_show_as_month_day_hour_minute_in_the_admins_zone() {
        assert_eq!(
            format_timestamp("2026-11-20 10:04:11", Tz::UTC, "%b %-d, %H:%M"),
            "Nov 20, 10:04"
        );
        assert_eq!(
            format_timestamp(
                "2026-11-20 10:04:11",
                chrono_tz::Europe::Berlin,
                "%b %-d, %H:%M"
            ),
            "Nov 20, 11:04"
        );
        assert_eq!(format_timestamp("yesterday", Tz::UTC, "%b"), "yesterday");
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
    fn ages_read_naturally() {
        assert_eq!(format_age(45), "45 sec");
        assert_eq!(format_age(720), "12 min");
        assert_eq!(format_age(7500), "2 h 5 min");
        assert_eq!(format_age(-3), "0 sec");
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
            now: 1_763_629_200,
            timezone: Tz::UTC,
            requested_page: page,
            api_url: "http://127.0.0.1/api.php",
            notices: Vec::new(),
            demo_mode: false,
            build_rows: true,
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
                fetched_at: 1_763_629_200,
                from_cache: false,
            },
            pricing: Err("Failed to connect to License API".into()),
            history: Ok(Sourced {
                value: history,
                fetched_at: 1_763_629_200 - 120,
                from_cache: true,
            }),
            insights: None,
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
        assert_eq!((p.page, p.pages), (10, 34));
        assert_eq!((p.previous, p.next), (Some(9), Some(11)));
        let numbers: Vec<usize> = p.links.iter().map(|l| l.number).collect();
        assert_eq!(numbers, (5..=15).collect::<Vec<_>>());
        assert_eq!(p.cache_age, "2 min");
        assert!(view.footer.transactions_cached);
        assert!(!view.footer.pricing_cached);
    }

    #[test]
    fn the_last_page_has_no_next_and_the_first_no_previous() {
        let all = transactions(10_000);
        let last = build_dashboard(&data(&all, 5.0), &settings(34))
            .history
            .unwrap();
        assert_eq!(last.rows.len(), 100);
        assert_eq!(last.pagination.next, None);
        let first = build_dashboard(&data(&all, 5.0), &settings(1))
            .history
            .unwrap();
        assert_eq!(first.pagination.previous, None);
        assert_eq!(first.pagination.links.len(), 6);
    }

    #[test]
    fn the_balance_is_low_below_one_dollar() {
        let all = transactions(1);
        assert!(build_dashboard(&data(&all, 0.99), &settings(1)).low_balance);
        let healthy = build_dashboard(&data(&all, 1.0), &settings(1));
        assert!(!healthy.low_balance);
        assert!(!healthy.stats.balance_low);
    }

    #[test]
    fn rows_are_branded() {
        let row = transaction_view(&transactions(1).get(0).unwrap(), Tz::UTC);
        assert_eq!(row.service, "image_search via CTZ-AI");
        assert_eq!(row.amount, "-$0.0125");
        assert_eq!(row.tokens, "1,834");
        assert_eq!(row.sign, "negative");
        assert_eq!(row.date, "Nov 20, 10:04");
    }
}
