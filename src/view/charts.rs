//! The insight cards as view structs: the runway beside the balance, the own cost per
//! image, the daily chart and the monthly trend (inline SVG geometry and their table
//! alternatives), the breakdown, unusual days and the kept history's totals. Pure: built
//! from [`Insights`]; no I/O.
//!
//! Every number and date is formatted here, in the page's language through [`Locale`],
//! and every SVG coordinate computed here, so `templates/insights.html` only prints them.
//! Sentences with numbers in them are [`TextView`]s: a translation key (a plural key's
//! form for its count: `token_usage_totals.few`) and the values of its `{name}`
//! placeholders (the convention of `token_usage_stale`), which the template fills in with
//! the installation's strings; [`TextView::fill`] does the same in Rust, for tests.

use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use serde::Serialize;

use crate::data::cache::local_date;
use crate::data::i18n::Strings;
use crate::view::dashboard::LOW_BALANCE;
use crate::view::insights::{
    Day, Insights, Month, OwnCost, Runway, RunwayStatus, ServiceUse, Totals, UnusualDay, Urgency,
};
use crate::view::locale::Locale;

/// The daily chart: 30 slots of 32 units, a 22-unit bar in each.
const DAILY_SLOT: f64 = 32.0;
const DAILY_BAR: f64 = 22.0;
/// Room above the plot for the upright amount over the tallest bar and its marker.
const DAILY_TOP: f64 = 80.0;
/// The monthly trend: 12 slots of 80 units, two 28-unit bars side by side in each.
const MONTHLY_SLOT: f64 = 80.0;
const MONTHLY_BAR: f64 = 28.0;
const MONTHLY_TOP: f64 = 70.0;
/// The height the tallest bar of a chart fills.
pub const PLOT_HEIGHT: f64 = 160.0;
/// The gap between a bar's top and the amount above it, and where an unusual day's
/// marker sits in that gap.
const AMOUNT_GAP: f64 = 4.0;
const MARKER_GAP: f64 = 14.0;

/// A sentence with numbers: the template looks up `key` and puts each arg's value in
/// place of its name. Values are plain text (escaped when printed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TextView {
    /// A key, or a plural key's form: `token_usage_runway_days.one`.
    pub key: String,
    pub args: Vec<ArgView>,
}

/// One placeholder of a [`TextView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgView {
    /// The placeholder with its braces: `{days}`.
    pub name: &'static str,
    pub value: String,
}

impl TextView {
    /// The sentence of a plain key.
    pub fn new(key: &str) -> Self {
        TextView {
            key: key.to_string(),
            args: Vec::new(),
        }
    }

    /// The sentence of a plural key in the form `strings`' language uses for `count`;
    /// the caller puts the count in (as the language writes it).
    pub fn plural(strings: &Strings, key: &str, count: u64) -> Self {
        TextView {
            key: strings.plural_key(key, count),
            args: Vec::new(),
        }
    }

    /// With `name` (`{days}`) standing for `value`.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.args.push(ArgView {
            name,
            value: value.into(),
        });
        self
    }

    /// The sentence in `strings`, filled in the order the template fills it (the tests'
    /// check of what the template's `sentence` component prints).
    #[cfg(test)]
    pub fn fill(&self, strings: &Strings) -> String {
        let text = match self.key.split_once('.') {
            Some((key, category)) => match strings.texts().get(key) {
                Some(crate::data::i18n::Text::Plural(forms)) => forms
                    .get(category)
                    .map_or_else(|| strings.get(key).to_string(), String::clone),
                _ => strings.get(key).to_string(),
            },
            None => strings.get(&self.key).to_string(),
        };
        self.args
            .iter()
            .fold(text, |text, arg| text.replace(arg.name, &arg.value))
    }
}

/// How the cards write numbers and dates and pick plural forms.
struct Writer<'a> {
    locale: &'a Locale,
    strings: &'a Strings,
    /// Today in the installation's zone: a date of another year shows its year.
    today: NaiveDate,
}

impl Writer<'_> {
    fn money(&self, dollars: f64) -> String {
        self.locale.money(dollars)
    }

    fn count(&self, n: u64) -> String {
        self.locale.count(n)
    }

    fn date(&self, date: NaiveDate) -> String {
        self.locale.date(date, self.today)
    }

    /// A plural sentence with its `{count}` filled in.
    fn counted(&self, key: &str, count: u64) -> TextView {
        TextView::plural(self.strings, key, count).with("{count}", self.count(count))
    }
}

/// What `templates/insights.html` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InsightsView {
    /// `Days are in Europe/Berlin.`
    pub zone: TextView,
    pub runway: RunwayView,
    /// The line under the estimates; None when the last 30 days processed no image.
    pub own_cost: Option<TextView>,
    pub unusual: Vec<UnusualView>,
    pub daily: DailyChartView,
    pub monthly: MonthlyChartView,
    pub breakdown: BreakdownView,
    pub totals: TextView,
}

/// The runway card, beside the balance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunwayView {
    /// `calm`, `amber` or `red`: picks the card's colour.
    pub urgency: &'static str,
    /// How long the balance lasts, or why that cannot be said.
    pub headline: TextView,
    /// The range by the 7- and 30-day averages, when they differ.
    pub range: Option<TextView>,
    /// The average spend per day over the last 7 and 30 days, when estimated.
    pub per_day_7d: Option<String>,
    pub per_day_30d: Option<String>,
    /// When the balance falls below the low-balance level, when estimated.
    pub low_balance: Option<TextView>,
}

/// One unusual day's notice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnusualView {
    pub text: TextView,
    /// The service that grew most, when known.
    pub mostly: Option<TextView>,
}

/// A point of a chart (user units of its viewBox).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PointView {
    pub x: f64,
    pub y: f64,
}

/// The daily chart: the viewBox, the rows of labels, the bars.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyChartView {
    pub width: f64,
    pub height: f64,
    /// The y of the bars' bottom.
    pub baseline: f64,
    /// The y of the stub drawn for a day without spend.
    pub stub_y: f64,
    /// The y of the day numbers and of the weekdays.
    pub day_y: f64,
    pub weekday_y: f64,
    /// Where the "today, so far" label ends (under the partial bar).
    pub today_label: Option<PointView>,
    /// One per day, oldest first.
    pub bars: Vec<DayBarView>,
}

/// One day: its bar and its row of the table alternative.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayBarView {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    /// The bar's right edge and middle.
    pub right: f64,
    pub center: f64,
    /// Where the amount starts, reading upwards.
    pub amount_y: f64,
    /// Where an unusual day's marker sits.
    pub marker_y: f64,
    /// No spend: drawn as a stub on the baseline, no amount.
    pub empty: bool,
    /// Today: the day is not over.
    pub partial: bool,
    pub unusual: bool,
    /// `20`, `Fri`.
    pub day: String,
    pub weekday: String,
    /// `Nov 20: $1.2345 spent, 412 transactions`.
    pub title: TextView,
    /// `Nov 20` (with the year when not this year's).
    pub date: String,
    pub spend: String,
    pub purchases: String,
    pub refunds: String,
    pub transactions: String,
}

/// The monthly trend: spend and purchases side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthlyChartView {
    pub width: f64,
    pub height: f64,
    pub baseline: f64,
    pub stub_y: f64,
    /// The width of each bar.
    pub bar_width: f64,
    /// The y of the month names and of the years under them.
    pub month_y: f64,
    pub year_y: f64,
    /// Where the "this month, so far" label ends.
    pub partial_label: Option<PointView>,
    /// One per month, oldest first.
    pub months: Vec<MonthBarView>,
}

/// One month: its two bars and its row of the table alternative.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthBarView {
    pub center: f64,
    /// `Dec`.
    pub label: String,
    /// `2026` (in the language's digits) on the first month and where the year changes.
    pub year: Option<String>,
    /// `Dec 2026`.
    pub name: String,
    pub partial: bool,
    pub spend: SeriesBarView,
    pub purchases: SeriesBarView,
}

/// One bar of a series in the monthly trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesBarView {
    pub x: f64,
    pub y: f64,
    pub height: f64,
    pub right: f64,
    pub center: f64,
    pub amount_y: f64,
    pub empty: bool,
    /// `$12.50`.
    pub amount: String,
    /// `Dec 2026: $12.50 spent`.
    pub title: TextView,
}

/// The breakdown table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakdownView {
    /// As `Insights::services` sorts them.
    pub rows: Vec<ServiceRowView>,
    /// The sums; its `service` is empty.
    pub total: ServiceRowView,
}

/// One service's row (or the total row).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceRowView {
    pub service: String,
    pub spend_7d: String,
    pub spend_30d: String,
    /// Whole percent of the last 30 days' spend: the share bar's length out of 100.
    pub percent: u32,
    pub tokens_30d: String,
    pub images_30d: String,
}

/// The cards of `insights`, in the language of `locale` and `strings`.
pub fn insights_view(insights: &Insights, locale: &Locale, strings: &Strings) -> InsightsView {
    let zone = insights.zone;
    let w = Writer {
        locale,
        strings,
        // The last day shown is today; without days, every date shows its year.
        today: insights.daily.last().map(|d| d.date).unwrap_or_default(),
    };
    InsightsView {
        zone: TextView::new("token_usage_time_zone").with("{zone}", &insights.time_zone),
        runway: runway_view(insights.runway_status, insights.runway.as_ref(), &w),
        own_cost: insights.own_cost.as_ref().map(|o| own_cost_text(o, &w)),
        unusual: insights
            .unusual
            .iter()
            .map(|u| unusual_view(u, &w))
            .collect(),
        daily: daily_chart(&insights.daily, &w),
        monthly: monthly_chart(&insights.monthly, &w),
        breakdown: breakdown_view(&insights.services, &w),
        totals: totals_text(&insights.totals, zone, &w),
    }
}

/// The class of an urgency.
pub fn urgency_class(urgency: Urgency) -> &'static str {
    match urgency {
        Urgency::Calm => "calm",
        Urgency::Amber => "amber",
        Urgency::Red => "red",
    }
}

fn runway_view(status: RunwayStatus, runway: Option<&Runway>, w: &Writer<'_>) -> RunwayView {
    let plain = |key| RunwayView {
        urgency: "calm",
        headline: TextView::new(key),
        range: None,
        per_day_7d: None,
        per_day_30d: None,
        low_balance: None,
    };
    let runway = match (status, runway) {
        (RunwayStatus::Estimated, Some(runway)) => runway,
        (RunwayStatus::NoSpending, _) => return plain("token_usage_runway_no_spending"),
        _ => return plain("token_usage_runway_no_history"),
    };
    let until = w.date(runway.empty_on);
    // Rounded to whole days: "about 1 days" and "about 0 days" read wrong, so a day or
    // less has its own sentence.
    let headline = if runway.days.is_nan() || runway.days <= 0.0 {
        TextView::new("token_usage_runway_used_up")
    } else if runway.days < 1.5 {
        TextView::new("token_usage_runway_a_day").with("{date}", until)
    } else {
        w.counted("token_usage_runway_days", whole_days(runway.days))
            .with("{date}", until)
    };
    let (low, high) = (whole_days(runway.low_days), whole_days(runway.high_days));
    let range =
        (runway.low_days.is_finite() && runway.high_days.is_finite() && low != high).then(|| {
            TextView::new("token_usage_runway_range")
                .with("{low}", w.count(low))
                .with("{high}", w.count(high))
        });
    let level = w.money(LOW_BALANCE);
    let low_balance = Some(match runway.low_balance_on {
        Some(date) => TextView::new("token_usage_runway_low_on")
            .with("{level}", level)
            .with("{date}", w.date(date)),
        None => TextView::new("token_usage_runway_low_now").with("{level}", level),
    });
    RunwayView {
        urgency: urgency_class(runway.urgency),
        headline,
        range,
        per_day_7d: Some(w.money(runway.spend_per_day_7d)),
        per_day_30d: Some(w.money(runway.spend_per_day_30d)),
        low_balance,
    }
}

fn own_cost_text(own: &OwnCost, w: &Writer<'_>) -> TextView {
    w.counted("token_usage_own_cost", own.images)
        .with("{cost}", format_per_image(own.per_image, w.locale))
}

fn unusual_view(day: &UnusualDay, w: &Writer<'_>) -> UnusualView {
    let date = w.date(day.date);
    let text = if day.normal > 0.0 {
        TextView::new("token_usage_unusual")
            .with("{date}", date)
            .with("{spend}", w.money(day.spend))
            .with("{times}", format_times(day.spend / day.normal, w.locale))
            .with("{normal}", w.money(day.normal))
    } else {
        TextView::new("token_usage_unusual_from_nothing")
            .with("{date}", date)
            .with("{spend}", w.money(day.spend))
    };
    UnusualView {
        text,
        mostly: (!day.service.is_empty())
            .then(|| TextView::new("token_usage_unusual_mostly").with("{service}", &day.service)),
    }
}

fn daily_chart(days: &[Day], w: &Writer<'_>) -> DailyChartView {
    let baseline = DAILY_TOP + PLOT_HEIGHT;
    let tallest = tallest(days.iter().map(|d| d.spend));
    let bars: Vec<DayBarView> = days
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let x = i as f64 * DAILY_SLOT + (DAILY_SLOT - DAILY_BAR) / 2.0;
            let height = bar_height(day.spend, tallest);
            let top = baseline - height;
            let date = w.date(day.date);
            DayBarView {
                x: round1(x),
                y: round1(top),
                width: DAILY_BAR,
                height,
                right: round1(x + DAILY_BAR),
                center: round1(x + DAILY_BAR / 2.0),
                amount_y: round1(top - if day.unusual { MARKER_GAP } else { AMOUNT_GAP }),
                marker_y: round1(top - MARKER_GAP / 2.0),
                empty: height == 0.0,
                partial: day.partial,
                unusual: day.unusual,
                day: w.locale.day_number(day.date),
                weekday: w.locale.weekday(day.date),
                title: w
                    .counted("token_usage_day_title", day.transactions)
                    .with("{date}", date.clone())
                    .with("{spend}", w.money(day.spend)),
                date,
                spend: w.money(day.spend),
                purchases: w.money(day.purchases),
                refunds: w.money(day.refunds),
                transactions: w.count(day.transactions),
            }
        })
        .collect();
    let width = days.len().max(1) as f64 * DAILY_SLOT;
    DailyChartView {
        width,
        height: baseline + 56.0,
        baseline,
        stub_y: baseline - 1.0,
        day_y: baseline + 16.0,
        weekday_y: baseline + 30.0,
        today_label: bars.iter().find(|b| b.partial).map(|b| PointView {
            x: b.right,
            y: baseline + 48.0,
        }),
        bars,
    }
}

fn monthly_chart(months: &[Month], w: &Writer<'_>) -> MonthlyChartView {
    let baseline = MONTHLY_TOP + PLOT_HEIGHT;
    let tallest = tallest(months.iter().flat_map(|m| [m.spend, m.purchases]));
    let mut previous_year = None;
    let bars: Vec<MonthBarView> = months
        .iter()
        .enumerate()
        .map(|(i, month)| {
            let slot = i as f64 * MONTHLY_SLOT;
            let first = NaiveDate::parse_from_str(&format!("{}-01", month.month), "%Y-%m-%d");
            let (label, name, year) = match first {
                Ok(date) => {
                    let year = date.year();
                    let changed = previous_year != Some(year);
                    previous_year = Some(year);
                    (
                        w.locale.month(date, false),
                        w.locale.month(date, true),
                        changed.then(|| w.locale.plain(u64::try_from(year).unwrap_or(0))),
                    )
                }
                // Not `YYYY-MM`: shown as it came.
                Err(_) => (month.month.clone(), month.month.clone(), None),
            };
            let series = |x: f64, value: f64, key: &'static str| {
                let height = bar_height(value, tallest);
                let top = baseline - height;
                SeriesBarView {
                    x: round1(x),
                    y: round1(top),
                    height,
                    right: round1(x + MONTHLY_BAR),
                    center: round1(x + MONTHLY_BAR / 2.0),
                    amount_y: round1(top - AMOUNT_GAP),
                    empty: height == 0.0,
                    amount: w.money(value),
                    title: TextView::new(key)
                        .with("{month}", &name)
                        .with("{amount}", w.money(value)),
                }
            };
            MonthBarView {
                center: round1(slot + MONTHLY_SLOT / 2.0),
                spend: series(slot + 10.0, month.spend, "token_usage_month_spend_title"),
                purchases: series(
                    slot + 12.0 + MONTHLY_BAR,
                    month.purchases,
                    "token_usage_month_purchases_title",
                ),
                label,
                year,
                name,
                partial: month.partial,
            }
        })
        .collect();
    MonthlyChartView {
        width: months.len().max(1) as f64 * MONTHLY_SLOT,
        height: baseline + 56.0,
        baseline,
        stub_y: baseline - 1.0,
        bar_width: MONTHLY_BAR,
        month_y: baseline + 16.0,
        year_y: baseline + 30.0,
        partial_label: bars.iter().find(|m| m.partial).map(|m| PointView {
            x: m.purchases.right,
            y: baseline + 48.0,
        }),
        months: bars,
    }
}

fn breakdown_view(services: &[ServiceUse], w: &Writer<'_>) -> BreakdownView {
    let rows = services
        .iter()
        .map(|s| ServiceRowView {
            service: s.service.clone(),
            spend_7d: w.money(s.spend_7d),
            spend_30d: w.money(s.spend_30d),
            percent: s.percent_30d.min(100),
            tokens_30d: w.count(s.tokens_30d),
            images_30d: w.count(s.images_30d),
        })
        .collect();
    let sum = |f: fn(&ServiceUse) -> f64| services.iter().map(f).sum::<f64>();
    let count = |f: fn(&ServiceUse) -> u64| services.iter().map(f).fold(0, u64::saturating_add);
    BreakdownView {
        rows,
        total: ServiceRowView {
            service: String::new(),
            spend_7d: w.money(sum(|s| s.spend_7d)),
            spend_30d: w.money(sum(|s| s.spend_30d)),
            percent: services.iter().map(|s| s.percent_30d).sum::<u32>().min(100),
            tokens_30d: w.count(count(|s| s.tokens_30d)),
            images_30d: w.count(count(|s| s.images_30d)),
        },
    }
}

fn totals_text(totals: &Totals, zone: Tz, w: &Writer<'_>) -> TextView {
    if totals.transactions == 0 {
        return TextView::new("token_usage_totals_empty");
    }
    let text = match (totals.first, totals.last) {
        (Some(first), Some(last)) => w
            .counted("token_usage_totals", totals.transactions)
            .with("{first}", w.date(local_date(first, zone)))
            .with("{last}", w.date(local_date(last, zone))),
        _ => w.counted("token_usage_totals_undated", totals.transactions),
    };
    text.with("{spent}", w.money(totals.spend))
        .with("{purchased}", w.money(totals.purchases))
        .with("{refunded}", w.money(totals.refunds))
}

/// Days rounded to whole ones; nonsense reads as 0.
fn whole_days(days: f64) -> u64 {
    // The cast saturates, and NaN becomes 0.
    days.max(0.0).round() as u64
}

/// How many times the usual: one decimal under 10 (`2.5`, `3`), whole above (`14`).
fn format_times(ratio: f64, locale: &Locale) -> String {
    if !ratio.is_finite() {
        return "?".to_string();
    }
    let tenths = (ratio * 10.0).round();
    if ratio >= 10.0 || tenths % 10.0 == 0.0 {
        return locale.count(ratio.max(0.0).round() as u64);
    }
    locale.decimal(ratio, 1)
}

/// A cost per image: `$0.0028`; below a hundredth of a cent, enough decimals to not read
/// as free (`$0.000012`).
fn format_per_image(cost: f64, locale: &Locale) -> String {
    if cost > 0.0 && cost < 0.00005 {
        let text = format!("{cost:.6}");
        let decimals = text.trim_end_matches('0').len() - text.find('.').map_or(0, |dot| dot + 1);
        format!("${}", locale.decimal(cost, decimals as u8))
    } else {
        locale.money(cost)
    }
}

/// The largest positive finite value, or 0.
fn tallest(values: impl Iterator<Item = f64>) -> f64 {
    values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold(0.0, f64::max)
}

/// A bar's height: the tallest fills the plot; nothing (or nonsense) is 0, never NaN.
fn bar_height(value: f64, tallest: f64) -> f64 {
    if tallest > 0.0 && value.is_finite() && value > 0.0 {
        round1((value / tallest).min(1.0) * PLOT_HEIGHT)
    } else {
        0.0
    }
}

/// Rounded to one decimal, as the SVG prints it; -0 and non-finite values become 0.
fn round1(value: f64) -> f64 {
    let rounded = (value * 10.0).round() / 10.0;
    if rounded.is_finite() {
        rounded + 0.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::fetch::Sourced;
    use crate::data::history::TransactionList;
    use crate::data::license_api::wire::{UserInfo, UserStats};
    use crate::view::dashboard::{PageData, ViewSettings, build_dashboard};
    use chrono::Duration;

    const HOSTILE: &str = "<script>alert(1)</script>";

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// Today is Fri 20 Nov 2026.
    fn today() -> NaiveDate {
        date(2026, 11, 20)
    }

    fn runway(days: f64, urgency: Urgency) -> Runway {
        Runway {
            days,
            low_days: 10.0,
            high_days: 20.0,
            empty_on: date(2026, 12, 2),
            low_balance_on: Some(date(2026, 11, 30)),
            spend_per_day_7d: 0.42,
            spend_per_day_30d: 0.3,
            urgency,
        }
    }

    /// 30 days to today: no spend on days 3, 10 and 11, day 25 (Mon 16 Nov) unusual at
    /// $5, about $1 on the others; 12 months from Dec 2025; two services.
    fn sample() -> Insights {
        let daily = (0..30u64)
            .map(|i| {
                let spend = match i {
                    3 | 10 | 11 => 0.0,
                    25 => 5.0,
                    _ => 1.0 + i as f64 / 100.0,
                };
                Day {
                    date: today() - Duration::days(29 - i as i64),
                    spend,
                    purchases: if i == 5 { 10.0 } else { 0.0 },
                    refunds: if i == 6 { 2.5 } else { 0.0 },
                    transactions: if spend > 0.0 { 400 + i } else { 0 },
                    partial: i == 29,
                    unusual: i == 25,
                }
            })
            .collect();
        let monthly = (0..12)
            .map(|i| {
                let (year, month) = if i == 0 { (2025, 12) } else { (2026, i) };
                Month {
                    month: format!("{year}-{month:02}"),
                    spend: 20.0 + i as f64,
                    purchases: if i % 3 == 0 { 50.0 } else { 0.0 },
                    partial: i == 11,
                }
            })
            .collect();
        Insights {
            time_zone: "Europe/Berlin".into(),
            zone: chrono_tz::Europe::Berlin,
            balance: 5.2,
            runway_status: RunwayStatus::Estimated,
            runway: Some(runway(12.4, Urgency::Amber)),
            daily,
            monthly,
            services: vec![
                ServiceUse {
                    service: "image_search via CTZ-AI".into(),
                    spend_7d: 7.5,
                    spend_30d: 30.0,
                    tokens_30d: 12_000,
                    images_30d: 10_000,
                    share_30d: 0.75,
                    percent_30d: 75,
                },
                ServiceUse {
                    service: HOSTILE.into(),
                    spend_7d: 2.5,
                    spend_30d: 10.0,
                    tokens_30d: 1_500_000,
                    images_30d: 0,
                    share_30d: 0.25,
                    percent_30d: 25,
                },
            ],
            unusual: vec![UnusualDay {
                date: date(2026, 11, 16),
                spend: 5.0,
                normal: 1.0,
                service: "image_search via CTZ-AI".into(),
            }],
            own_cost: Some(OwnCost {
                per_image: 0.0028,
                images: 4_400,
            }),
            totals: Totals {
                transactions: 12_000,
                // 2025-01-03 23:30 UTC is already 4 Jan in Berlin.
                first: Some(1_735_947_000),
                last: Some(1_795_172_400),
                spend: 321.5,
                purchases: 400.0,
                refunds: 2.5,
            },
        }
    }

    /// Nothing at all: 30 days and 12 months of zeros, no services, no history.
    fn all_zero() -> Insights {
        let mut insights = sample();
        for day in &mut insights.daily {
            (day.spend, day.purchases, day.refunds, day.transactions) = (0.0, 0.0, 0.0, 0);
            day.unusual = false;
        }
        for month in &mut insights.monthly {
            (month.spend, month.purchases) = (0.0, 0.0);
        }
        insights.runway_status = RunwayStatus::NotEnoughHistory;
        insights.runway = None;
        insights.services.clear();
        insights.unusual.clear();
        insights.own_cost = None;
        insights.totals = Totals::default();
        insights
    }

    fn english(text: &TextView) -> String {
        text.fill(&Strings::english())
    }

    /// The cards in English.
    fn cards(insights: &Insights) -> InsightsView {
        insights_view(insights, Locale::of("en"), &Strings::english())
    }

    fn english_writer() -> Writer<'static> {
        static STRINGS: std::sync::LazyLock<Strings> = std::sync::LazyLock::new(Strings::english);
        Writer {
            locale: Locale::of("en"),
            strings: &STRINGS,
            today: today(),
        }
    }

    /// Every number the charts print.
    fn chart_numbers(view: &InsightsView) -> Vec<f64> {
        let d = &view.daily;
        let mut numbers = vec![
            d.width,
            d.height,
            d.baseline,
            d.stub_y,
            d.day_y,
            d.weekday_y,
        ];
        numbers.extend(d.today_label.iter().flat_map(|p| [p.x, p.y]));
        for b in &d.bars {
            numbers.extend([
                b.x, b.y, b.width, b.height, b.right, b.center, b.amount_y, b.marker_y,
            ]);
        }
        let m = &view.monthly;
        numbers.extend([m.width, m.height, m.baseline, m.stub_y, m.bar_width]);
        numbers.extend([m.month_y, m.year_y, m.months.len() as f64]);
        numbers.extend(m.partial_label.iter().flat_map(|p| [p.x, p.y]));
        for month in &m.months {
            numbers.push(month.center);
            for s in [&month.spend, &month.purchases] {
                numbers.extend([s.x, s.y, s.height, s.right, s.center, s.amount_y]);
            }
        }
        numbers
    }

    #[test]
    fn the_daily_chart_has_30_bars_and_days_without_spend_are_empty_bars_of_zero_height() {
        let view = cards(&sample());
        let bars = &view.daily.bars;
        assert_eq!(bars.len(), 30);
        for i in [3, 10, 11] {
            assert!(bars[i].empty, "day {i}");
            assert_eq!(bars[i].height, 0.0);
            assert_eq!(bars[i].y, view.daily.baseline);
            assert_eq!(bars[i].spend, "$0.00");
        }
        assert_eq!(bars.iter().filter(|b| b.empty).count(), 3);
        // Oldest left: each bar one slot right of the one before.
        assert!(bars.windows(2).all(|w| w[1].x - w[0].x == DAILY_SLOT));
        assert_eq!(bars[0].date, "Oct 22");
    }

    #[test]
    fn the_tallest_day_fills_the_plot_height() {
        let view = cards(&sample());
        let bars = &view.daily.bars;
        assert_eq!(bars[25].height, PLOT_HEIGHT);
        assert_eq!(bars[25].y, DAILY_TOP);
        assert!(bars.iter().all(|b| b.height <= PLOT_HEIGHT));
        // $1.00 of $5.00 is a fifth of the plot.
        assert_eq!(bars[0].height, 32.0);
        assert_eq!(view.daily.baseline, DAILY_TOP + PLOT_HEIGHT);
    }

    #[test]
    fn today_is_the_last_bar_and_marked_partial_with_a_label_under_it() {
        let view = cards(&sample());
        let bars = &view.daily.bars;
        assert!(bars[29].partial);
        assert_eq!(bars.iter().filter(|b| b.partial).count(), 1);
        let label = view.daily.today_label.unwrap();
        assert_eq!(label.x, bars[29].right);
        assert!(label.y > view.daily.weekday_y);
    }

    #[test]
    fn an_unusual_day_is_marked_on_its_bar_and_named_in_a_notice() {
        let view = cards(&sample());
        let bar = &view.daily.bars[25];
        assert!(bar.unusual);
        assert_eq!(view.daily.bars.iter().filter(|b| b.unusual).count(), 1);
        // The marker sits between the bar and its amount.
        assert!(bar.amount_y < bar.marker_y && bar.marker_y < bar.y);
        assert_eq!(view.unusual.len(), 1);
        assert_eq!(
            english(&view.unusual[0].text),
            "Unusual spend on Nov 16: $5.00, about 5 times the usual $1.00."
        );
        assert_eq!(
            english(view.unusual[0].mostly.as_ref().unwrap()),
            "Mostly image_search via CTZ-AI."
        );
    }

    #[test]
    fn an_unusual_day_over_a_usual_nothing_and_without_a_service_reads_plainly() {
        let day = UnusualDay {
            date: date(2025, 12, 30),
            spend: 2.5,
            normal: 0.0,
            service: String::new(),
        };
        let view = unusual_view(&day, &english_writer());
        assert_eq!(
            english(&view.text),
            "Unusual spend on Dec 30, 2025: $2.50, where a usual day costs nothing."
        );
        assert_eq!(view.mostly, None);
        assert_eq!(format_times(2.54, Locale::of("en")), "2.5");
        assert_eq!(format_times(14.4, Locale::of("en")), "14");
    }

    #[test]
    fn bars_are_labelled_with_the_day_number_and_weekday_and_titled_in_full() {
        let view = cards(&sample());
        let bars = &view.daily.bars;
        assert_eq!(
            (bars[29].day.as_str(), bars[29].weekday.as_str()),
            ("20", "Fri")
        );
        assert_eq!(
            (bars[0].day.as_str(), bars[0].weekday.as_str()),
            ("22", "Thu")
        );
        assert_eq!(
            english(&bars[29].title),
            "Nov 20: $1.29 spent, 429 transactions"
        );
        assert_eq!(
            english(&bars[3].title),
            "Oct 25: $0.00 spent, 0 transactions"
        );
        assert_eq!(bars[29].spend, "$1.29");
        assert_eq!(bars[5].purchases, "$10.00");
        assert_eq!(bars[6].refunds, "$2.50");
    }

    #[test]
    fn the_runway_says_how_many_days_until_when_and_the_range() {
        let view = cards(&sample());
        let r = &view.runway;
        assert_eq!(
            english(&r.headline),
            "At this rate your balance lasts about 12 days (until Dec 2)."
        );
        assert_eq!(
            english(r.range.as_ref().unwrap()),
            "10–20 days by the 7- and 30-day averages."
        );
        assert_eq!(r.per_day_7d.as_deref(), Some("$0.42"));
        assert_eq!(r.per_day_30d.as_deref(), Some("$0.30"));
        assert_eq!(
            english(r.low_balance.as_ref().unwrap()),
            "The balance falls below $1.00 on Nov 30."
        );
        assert_eq!(r.urgency, "amber");
    }

    #[test]
    fn a_runway_into_next_year_names_the_year() {
        let mut long = runway(400.0, Urgency::Calm);
        long.empty_on = date(2027, 12, 25);
        long.low_balance_on = None;
        let view = runway_view(RunwayStatus::Estimated, Some(&long), &english_writer());
        assert_eq!(
            english(&view.headline),
            "At this rate your balance lasts about 400 days (until Dec 25, 2027)."
        );
        assert_eq!(
            english(view.low_balance.as_ref().unwrap()),
            "The balance is already below $1.00."
        );
    }

    #[test]
    fn a_runway_of_a_day_or_less_and_a_used_up_balance_read_naturally() {
        let short = runway(1.2, Urgency::Red);
        let view = runway_view(RunwayStatus::Estimated, Some(&short), &english_writer());
        assert_eq!(
            english(&view.headline),
            "At this rate your balance lasts about a day or less (until Dec 2)."
        );
        let empty = runway(0.0, Urgency::Red);
        let view = runway_view(RunwayStatus::Estimated, Some(&empty), &english_writer());
        assert_eq!(english(&view.headline), "Your balance is used up.");
        assert_eq!(view.urgency, "red");
    }

    #[test]
    fn without_spending_or_history_the_runway_says_so_plainly() {
        for (status, sentence) in [
            (RunwayStatus::NoSpending, "No spending in the last 7 days."),
            (RunwayStatus::NotEnoughHistory, "Not enough history yet."),
        ] {
            let view = runway_view(status, None, &english_writer());
            assert_eq!(english(&view.headline), sentence);
            assert_eq!(view.urgency, "calm");
            assert_eq!(
                (view.range, view.per_day_7d, view.low_balance),
                (None, None, None)
            );
        }
    }

    #[test]
    fn the_runway_card_is_amber_under_14_days_and_red_under_3() {
        assert_eq!(urgency_class(Urgency::Calm), "calm");
        assert_eq!(urgency_class(Urgency::Amber), "amber");
        assert_eq!(urgency_class(Urgency::Red), "red");
        let mut insights = sample();
        insights.runway = Some(runway(2.0, Urgency::Red));
        assert_eq!(cards(&insights).runway.urgency, "red");
    }

    #[test]
    fn the_breakdown_shows_each_services_percent_and_a_total_row() {
        let view = cards(&sample());
        let b = &view.breakdown;
        assert_eq!(b.rows.len(), 2);
        assert_eq!(b.rows[0].service, "image_search via CTZ-AI");
        assert_eq!(
            (b.rows[0].percent, b.rows[0].spend_30d.as_str()),
            (75, "$30.00")
        );
        assert_eq!(
            (b.rows[1].percent, b.rows[1].tokens_30d.as_str()),
            (25, "1,500,000")
        );
        assert_eq!(b.total.percent, 100);
        assert_eq!(b.total.spend_7d, "$10.00");
        assert_eq!(b.total.spend_30d, "$40.00");
        assert_eq!(b.total.tokens_30d, "1,512,000");
        assert_eq!(b.total.images_30d, "10,000");
    }

    #[test]
    fn the_monthly_trend_names_the_year_where_it_changes_and_marks_this_month() {
        let view = cards(&sample());
        let months = &view.monthly.months;
        assert_eq!(months.len(), 12);
        assert_eq!(
            (months[0].label.as_str(), months[0].year.as_deref()),
            ("Dec", Some("2025"))
        );
        assert_eq!(
            (months[1].label.as_str(), months[1].year.as_deref()),
            ("Jan", Some("2026"))
        );
        assert!(months[2..].iter().all(|m| m.year.is_none()));
        assert_eq!(months[11].name, "Nov 2026");
        assert!(months[11].partial);
        assert!(view.monthly.partial_label.is_some());
        // The tallest of both series fills the plot: $50.00 of purchases.
        assert_eq!(months[0].purchases.height, PLOT_HEIGHT);
        assert!(months[1].purchases.empty);
        assert_eq!(english(&months[0].spend.title), "Dec 2025: $20.00 spent");
        assert!(months[0].spend.right <= months[0].purchases.x);
    }

    #[test]
    fn all_zero_data_draws_empty_bars_with_no_nan() {
        let view = cards(&all_zero());
        assert_eq!(view.daily.bars.len(), 30);
        assert!(view.daily.bars.iter().all(|b| b.empty && b.height == 0.0));
        assert!(
            view.monthly
                .months
                .iter()
                .all(|m| m.spend.empty && m.purchases.empty)
        );
        let numbers = chart_numbers(&view);
        assert!(numbers.iter().all(|n| n.is_finite()), "{numbers:?}");
        assert!(view.breakdown.rows.is_empty());
        assert_eq!(view.breakdown.total.percent, 0);
        assert_eq!(english(&view.totals), "No history is kept yet.");
        assert_eq!(view.own_cost, None);
        assert!(view.unusual.is_empty());
    }

    #[test]
    fn nonsense_amounts_draw_nothing_rather_than_nan() {
        let mut insights = sample();
        insights.daily[0].spend = f64::NAN;
        insights.daily[1].spend = f64::INFINITY;
        insights.daily[2].spend = -3.0;
        let view = cards(&insights);
        assert!(chart_numbers(&view).iter().all(|n| n.is_finite()));
        assert!(view.daily.bars[..3].iter().all(|b| b.height == 0.0));
        assert_eq!(view.daily.bars[25].height, PLOT_HEIGHT);
    }

    #[test]
    fn chart_numbers_are_rounded_to_one_decimal() {
        let mut insights = sample();
        insights.daily[0].spend = 5.0 / 3.0;
        let view = cards(&insights);
        assert_eq!(view.daily.bars[0].height, 53.3);
        for n in chart_numbers(&view) {
            assert_eq!((n * 10.0).round() / 10.0, n, "{n}");
        }
    }

    #[test]
    fn the_own_cost_line_gives_the_cost_per_image_and_the_image_jobs() {
        let view = cards(&sample());
        assert_eq!(
            english(view.own_cost.as_ref().unwrap()),
            "At your own cost of $0.0028 per image over the last 30 days: about 4,400 image jobs."
        );
        assert_eq!(format_per_image(0.000012, Locale::of("en")), "$0.000012");
    }

    #[test]
    fn the_totals_span_local_dates_and_name_the_zone() {
        let view = cards(&sample());
        assert_eq!(
            english(&view.totals),
            "Kept history: 12,000 transactions from Jan 4, 2025 to Nov 20; \
             spent $321.50, purchased $400.00, refunded $2.50."
        );
        assert_eq!(english(&view.zone), "Days are in Europe/Berlin.");
        let mut undated = sample();
        undated.totals.first = None;
        assert!(
            english(&cards(&undated).totals)
                .starts_with("Kept history: 12,000 transactions; spent")
        );
    }

    #[test]
    fn the_cards_write_numbers_dates_and_plural_forms_in_the_pages_language() {
        let de = Strings::built_in("de");
        let view = insights_view(&sample(), Locale::of("de"), &de);
        let today = &view.daily.bars[29];
        assert_eq!(
            (
                today.day.as_str(),
                today.weekday.as_str(),
                today.date.as_str()
            ),
            ("20", "Fr", "20.11.")
        );
        assert_eq!(today.spend, "$1,29");
        assert_eq!(today.transactions, "429");
        assert_eq!(view.runway.headline.key, "token_usage_runway_days.other");
        assert_eq!(
            view.runway.headline.fill(&de),
            "Bei diesem Verbrauch reicht Ihr Guthaben etwa 12 Tage (bis 02.12.)."
        );
        assert_eq!(view.breakdown.total.tokens_30d, "1.512.000");
        assert_eq!(view.monthly.months[0].year.as_deref(), Some("2025"));
        assert!(
            view.totals.fill(&de).contains("12.000"),
            "{}",
            view.totals.fill(&de)
        );

        // Arabic has six plural forms: three days take the "few" one.
        let ar = Strings::built_in("ar");
        let mut short = sample();
        short.runway = Some(runway(3.0, Urgency::Amber));
        let view = insights_view(&short, Locale::of("ar"), &ar);
        assert_eq!(view.runway.headline.key, "token_usage_runway_days.few");
        let three = Locale::of("ar").count(3);
        assert!(view.runway.headline.fill(&ar).contains(&three));
        assert_eq!(
            view.monthly.months[0]
                .year
                .as_deref()
                .map(|y| y.chars().count()),
            Some(4),
            "a year is four digits, never grouped"
        );
    }

    /// The dashboard page as the real renderer makes it.
    fn render_page(insights: Option<&Insights>) -> String {
        let history = TransactionList::of(&[]);
        let data = PageData {
            account_cached: false,
            info: UserInfo::default(),
            stats: Sourced {
                value: UserStats {
                    balance: 5.2,
                    ..Default::default()
                },
                fetched_at: 1_795_172_400,
                from_cache: false,
            },
            pricing: Err("Failed to connect to License API".into()),
            history: Ok(Sourced {
                value: &history,
                fetched_at: 1_795_172_400,
                from_cache: false,
            }),
            insights,
        };
        let strings = Strings::english();
        let settings = ViewSettings {
            now: 1_795_172_400,
            timezone: chrono_tz::Europe::Berlin,
            requested_page: 1,
            api_url: "http://127.0.0.1/api.php",
            notices: Vec::new(),
            demo_mode: false,
            build_rows: true,
            locale: Locale::of("en"),
            strings: &strings,
        };
        let view = build_dashboard(&data, &settings);
        crate::view::dashboard::render_for_tests(&view, &Strings::english())
    }

    fn select<'a>(html: &'a scraper::Html, selector: &str) -> Vec<scraper::ElementRef<'a>> {
        html.select(&scraper::Selector::parse(selector).unwrap())
            .collect()
    }

    fn text(element: &scraper::ElementRef<'_>) -> String {
        element.text().collect()
    }

    #[test]
    fn the_page_draws_the_daily_chart_with_a_title_per_bar_and_a_table_of_30_days() {
        let mut insights = sample();
        insights.unusual[0].service = HOSTILE.into();
        let html = scraper::Html::parse_document(&render_page(Some(&insights)));

        let svg = select(&html, "#daily svg.chart-daily[role=img]");
        assert_eq!(svg.len(), 1);
        assert!(svg[0].value().attr("viewBox").is_some());
        assert_eq!(
            svg[0].value().attr("aria-labelledby"),
            Some("daily-chart-title daily-chart-desc")
        );
        let bars = select(&html, "#daily svg rect.bar");
        assert_eq!(bars.len(), 30);
        for bar in &bars {
            let group = scraper::ElementRef::wrap(bar.parent().unwrap()).unwrap();
            let title = select_in(&group, "title");
            assert_eq!(title.len(), 1);
            assert!(!text(&title[0]).is_empty());
        }
        let last = scraper::ElementRef::wrap(bars[29].parent().unwrap()).unwrap();
        assert_eq!(
            text(&select_in(&last, "title")[0]),
            "Nov 20: $1.29 spent, 429 transactions (today, so far)"
        );
        assert_eq!(select(&html, "#daily svg line.stub").len(), 3);
        assert_eq!(select(&html, "#daily svg circle.marker").len(), 1);
        assert_eq!(select(&html, "#daily table caption").len(), 1);
        assert_eq!(select(&html, "#daily details table tbody tr").len(), 30);
        assert_eq!(select(&html, "#monthly svg rect.bar").len(), 24);
        assert_eq!(select(&html, "#monthly table tbody tr").len(), 12);

        // The runway sits among the cards, its sentence filled by the template.
        let headline = select(&html, ".cards #runway.runway-amber .runway-headline");
        assert_eq!(
            text(&headline[0]),
            "At this rate your balance lasts about 12 days (until Dec 2)."
        );
        assert_eq!(
            text(&select(&html, "#estimates .own-cost")[0]),
            "At your own cost of $0.0028 per image over the last 30 days: about 4,400 image jobs."
        );
        assert_eq!(
            text(&select(&html, "#kept-history p")[0]),
            english(&cards(&insights).totals)
        );
    }

    fn select_in<'a>(
        element: &scraper::ElementRef<'a>,
        selector: &str,
    ) -> Vec<scraper::ElementRef<'a>> {
        element
            .select(&scraper::Selector::parse(selector).unwrap())
            .collect()
    }

    #[test]
    fn service_names_reach_the_page_as_text() {
        let mut insights = sample();
        insights.unusual[0].service = HOSTILE.into();
        let page = render_page(Some(&insights));
        assert!(!page.contains(HOSTILE));
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;")
                || page.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
        );
        let html = scraper::Html::parse_document(&page);
        assert_eq!(select(&html, "#insights script").len(), 0);
        let names: Vec<String> = select(&html, "#breakdown tbody th")
            .iter()
            .map(text)
            .collect();
        assert_eq!(names, ["image_search via CTZ-AI", HOSTILE]);
        let notice = text(&select(&html, ".insights-unusual li")[0]);
        assert!(notice.ends_with(&format!("Mostly {HOSTILE}.")), "{notice}");
    }

    #[test]
    fn without_insights_the_page_has_no_insight_cards() {
        let html = scraper::Html::parse_document(&render_page(None));
        assert!(select(&html, "#runway, #insights, .own-cost").is_empty());
        assert_eq!(select(&html, "#balance").len(), 1);
    }
}
