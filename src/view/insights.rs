//! What the kept history says about the account: the runway (when the balance runs out),
//! the last 30 days and 12 months of spend, the services that spend it, unusual days and
//! the history's totals. The page's insight cards, `report`, `check` and `metrics` all
//! read these figures from here. Pure: the clock, the zone and the sums are passed in.
//!
//! Money is in dollars (credits); spend is positive (a usage's amount with its sign
//! turned), purchases and refunds are as the server sends them. Days and months are the
//! installation's local ones.

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Serialize;

/// One local day's sums for one service (`service_type` as the server sends it; empty
/// for purchases and refunds), as the kept history holds them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DaySums {
    pub day: NaiveDate,
    pub service: String,
    /// Usage amounts, made positive.
    pub spend: f64,
    pub purchases: f64,
    pub refunds: f64,
    pub tokens: u64,
    pub images: u64,
    /// Transactions of any type.
    pub transactions: u64,
}

/// The whole kept history's count, span and sums (`first`/`last` in Unix seconds; a
/// transaction whose date cannot be read counts in the sums but not in the span).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub transactions: u64,
    #[serde(serialize_with = "unix_as_rfc3339")]
    pub first: Option<i64>,
    #[serde(serialize_with = "unix_as_rfc3339")]
    pub last: Option<i64>,
    pub spend: f64,
    pub purchases: f64,
    pub refunds: f64,
}

/// What the insights are computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// Unix seconds.
    pub now: i64,
    pub zone: Tz,
    pub balance: f64,
    /// Every (day, service) with any transaction from at least 58 local days and the
    /// first day of the month 11 months before today's, up to today; in any order.
    pub days: Vec<DaySums>,
    /// Usage spend of the last 7 x 24 h and 30 x 24 h before `now`.
    pub spend_7d: f64,
    pub spend_30d: f64,
    pub totals: Totals,
}

/// Whether a runway could be estimated, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunwayStatus {
    Estimated,
    /// Nothing was spent in the last 7 x 24 h.
    NoSpending,
    /// The kept history starts less than 24 h before now (or is empty).
    NotEnoughHistory,
}

/// How urgent the runway is: amber under 14 days, red under 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Calm,
    Amber,
    Red,
}

/// At this rate the balance lasts about `days` (until `empty_on`), between `low_days` and
/// `high_days` by the 7- and 30-day averages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Runway {
    /// Balance over the 7-day average.
    pub days: f64,
    pub low_days: f64,
    pub high_days: f64,
    /// Local date the balance reaches zero at the 7-day average.
    pub empty_on: NaiveDate,
    /// Local date it falls below the low-balance level (None when already below).
    pub low_balance_on: Option<NaiveDate>,
    pub spend_per_day_7d: f64,
    pub spend_per_day_30d: f64,
    pub urgency: Urgency,
}

/// One bar of the daily chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    pub date: NaiveDate,
    pub spend: f64,
    pub purchases: f64,
    pub refunds: f64,
    pub transactions: u64,
    /// Today: the day is not over.
    pub partial: bool,
    pub unusual: bool,
}

/// One bar of the monthly trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Month {
    /// `YYYY-MM`.
    pub month: String,
    pub spend: f64,
    pub purchases: f64,
    /// This month: not over.
    pub partial: bool,
}

/// One row of the breakdown: a branded service's usage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceUse {
    /// Branded (`image_search via CTZ-AI`).
    pub service: String,
    pub spend_7d: f64,
    pub spend_30d: f64,
    pub tokens_30d: u64,
    pub images_30d: u64,
    /// Share of the last 30 days' spend, 0 to 1; the shares add up to 1.
    pub share_30d: f64,
    /// The share in whole percent, rounded so that the rows add up to exactly 100.
    pub percent_30d: u32,
}

/// A day whose spend is far above the account's recent normal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnusualDay {
    pub date: NaiveDate,
    pub spend: f64,
    /// The median of the 28 days before it.
    pub normal: f64,
    /// The branded service whose spend grew most over its own median.
    pub service: String,
}

/// What the balance buys at the account's own recent cost per image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OwnCost {
    /// The last 30 local days' usage spend (tokens included) over their images.
    pub per_image: f64,
    /// About how many image jobs the balance pays for at that cost.
    pub images: u64,
}

/// Everything the insight cards, `report --json`, `check` and `metrics` show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Insights {
    /// IANA name.
    pub time_zone: String,
    pub balance: f64,
    pub runway_status: RunwayStatus,
    pub runway: Option<Runway>,
    /// The last 30 local days, oldest first, today last; days without any are zeros.
    pub daily: Vec<Day>,
    /// The last 12 local months, oldest first, this month last.
    pub monthly: Vec<Month>,
    /// Sorted by 30-day spend, largest first; services without spend in 30 days left out.
    pub services: Vec<ServiceUse>,
    pub unusual: Vec<UnusualDay>,
    pub own_cost: Option<OwnCost>,
    pub totals: Totals,
}

/// The day and month windows need sums from this local day on (see [`Facts::days`]).
pub fn first_day_needed(today: NaiveDate) -> NaiveDate {
    todo!("{today}")
}

/// The insights of `facts`.
pub fn insights(facts: &Facts) -> Insights {
    todo!("{facts:?}")
}

fn unix_as_rfc3339<S: serde::Serializer>(
    unix: &Option<i64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match unix.and_then(|s| chrono::DateTime::from_timestamp(s, 0)) {
        Some(t) => serializer.serialize_str(&t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        None => serializer.serialize_none(),
    }
}
