//! What the kept history says about the account: the runway (when the balance runs out),
//! the last 30 days and 12 months of spend, the services that spend it, unusual days and
//! the history's totals. The page's insight cards, `report`, `check` and `metrics` all
//! read these figures from here. Pure: the clock, the zone and the sums are passed in.
//!
//! Money is in dollars (credits); spend is positive (a usage's amount with its sign
//! turned), purchases and refunds are as the server sends them. Days and months are the
//! installation's local ones.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Days, Months, NaiveDate};
use chrono_tz::Tz;
use serde::Serialize;

use crate::view::branding::brand;
use crate::view::dashboard::LOW_BALANCE;

pub use crate::data::kept_history::{DaySums, Summary, Totals};

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
    /// Balance over the 7-day average (the three day counts are capped at 36,500).
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
    /// The same zone, for the dates shown.
    #[serde(skip)]
    pub zone: Tz,
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

/// Days the daily chart shows, today last.
const DAYS_SHOWN: u64 = 30;
/// Days of history an unusual day is judged against.
const BASELINE_DAYS: u64 = 28;
/// Months the monthly trend shows, this month last.
const MONTHS_SHOWN: u32 = 12;
/// Runway days and dates are capped at this many days ahead (a century), so that a tiny
/// spend rate never pushes date arithmetic out of range nor gives an infinite runway.
const MAX_RUNWAY_DAYS: f64 = 36_500.0;
/// Unix seconds are clamped to about +-95,000 years before they become dates, so that
/// every date the insights compute (a century either way, a year of months) exists.
const MAX_UNIX: i64 = 3_000_000_000_000;
/// A day is unusual when its spend is more than this many MADs above the median.
const UNUSUAL_MADS: f64 = 3.0;
/// ... and at least this much (a cent): noise over an all-zero baseline is not unusual.
const UNUSUAL_MIN_SPEND: f64 = 0.01;

impl Facts {
    /// The facts of a kept history's summary at `now`.
    pub fn of(summary: &Summary, now: i64, zone: Tz, balance: f64) -> Facts {
        Facts {
            now,
            zone,
            balance,
            days: summary.days.clone(),
            spend_7d: summary.spend_7d,
            spend_30d: summary.spend_30d,
            totals: summary.totals.clone(),
        }
    }
}

/// Spend per service (as sent) merged by branded name, largest first.
pub fn by_brand(spend: Vec<(String, f64)>) -> Vec<(String, f64)> {
    let mut merged: BTreeMap<String, f64> = BTreeMap::new();
    for (service, amount) in spend {
        *merged.entry(brand(&service).into_owned()).or_default() += finite(amount);
    }
    let mut merged: Vec<(String, f64)> = merged.into_iter().collect();
    merged.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    merged
}

/// The day and month windows need sums from this local day on (see [`Facts::days`]).
///
/// The daily chart shows today and the 29 days before it, and each of those days is
/// judged against the 28 days before it, so sums are needed from `today - 57 days`; the
/// monthly trend shows this month and the 11 before it, so from the first day of the
/// month 11 months before today's. The earlier of the two (in practice always the month
/// start, but both are kept so that neither window can be cut short).
pub fn first_day_needed(today: NaiveDate) -> NaiveDate {
    let daily = days_before(today, DAYS_SHOWN - 1 + BASELINE_DAYS);
    let monthly = month_start(today, MONTHS_SHOWN - 1);
    daily.min(monthly)
}

/// The local date, in `zone`, of the instant `unix` (Unix seconds).
///
/// This is the day a transaction counts on: 2026-11-20 23:30 UTC is 2026-11-21 in Tokyo
/// but still 2026-11-20 in New York. Instants beyond about 95,000 years either way are
/// clamped.
pub fn local_day(unix: i64, zone: Tz) -> NaiveDate {
    crate::data::cache::local_date(unix.clamp(-MAX_UNIX, MAX_UNIX), zone)
}

/// The insights of `facts`.
pub fn insights(facts: &Facts) -> Insights {
    let today = local_day(facts.now, facts.zone);
    let sums = Sums::of(&facts.days, today);
    let (runway_status, runway) = runway(facts, today);
    let (daily, unusual) = daily(
        &sums,
        today,
        facts.totals.first.map(|first| local_day(first, facts.zone)),
    );
    let own_cost = own_cost(&daily, &sums, today, facts.balance);
    Insights {
        time_zone: facts.zone.name().to_owned(),
        zone: facts.zone,
        balance: facts.balance,
        runway_status,
        runway,
        monthly: monthly(&facts.days, today),
        services: services(&sums, today),
        daily,
        unusual,
        own_cost,
        totals: facts.totals.clone(),
    }
}

/// A number as the insights use it: NaN and infinities count as 0.
fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// `date` minus `days`, saturating.
fn days_before(date: NaiveDate, days: u64) -> NaiveDate {
    date.checked_sub_days(Days::new(days))
        .unwrap_or(NaiveDate::MIN)
}

/// `date` plus the whole part of `days` (0 to [`MAX_RUNWAY_DAYS`]), saturating.
fn whole_days_after(date: NaiveDate, days: f64) -> NaiveDate {
    // A whole number from 0 to 36,500 (infinity is the cap, NaN is 0), so the cast is exact.
    let whole = if days.is_nan() {
        0.0
    } else {
        days.clamp(0.0, MAX_RUNWAY_DAYS).floor()
    };
    let whole = whole as u64;
    date.checked_add_days(Days::new(whole))
        .unwrap_or(NaiveDate::MAX)
}

/// The first day of the month `back` months before `date`'s, saturating.
fn month_start(date: NaiveDate, back: u32) -> NaiveDate {
    date.with_day(1)
        .and_then(|first| first.checked_sub_months(Months::new(back)))
        .unwrap_or(NaiveDate::MIN)
}

/// The median of `values` (0 for none).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match (
        values.get(n / 2),
        n.checked_sub(1).and_then(|last| values.get(last / 2)),
    ) {
        (Some(&upper), Some(&lower)) => (upper + lower) / 2.0,
        _ => 0.0,
    }
}

/// One day's sums, over all services or for one.
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    spend: f64,
    purchases: f64,
    refunds: f64,
    tokens: u64,
    images: u64,
    transactions: u64,
}

impl Sum {
    fn add(&mut self, day: &DaySums) {
        self.spend += finite(day.spend);
        self.purchases += finite(day.purchases);
        self.refunds += finite(day.refunds);
        self.tokens = self.tokens.saturating_add(day.tokens);
        self.images = self.images.saturating_add(day.images);
        self.transactions = self.transactions.saturating_add(day.transactions);
    }
}

/// The day sums up to today, by date over all services and by branded service and date.
struct Sums {
    all: HashMap<NaiveDate, Sum>,
    /// Branded, non-empty services only (purchases and refunds carry none).
    by_service: BTreeMap<String, HashMap<NaiveDate, Sum>>,
}

impl Sums {
    fn of(days: &[DaySums], today: NaiveDate) -> Sums {
        let mut sums = Sums {
            all: HashMap::new(),
            by_service: BTreeMap::new(),
        };
        for day in days.iter().filter(|day| day.day <= today) {
            sums.all.entry(day.day).or_default().add(day);
            if !day.service.trim().is_empty() {
                let service = brand(&day.service).into_owned();
                sums.by_service
                    .entry(service)
                    .or_default()
                    .entry(day.day)
                    .or_default()
                    .add(day);
            }
        }
        sums
    }

    fn spend_on(&self, date: NaiveDate) -> f64 {
        self.all.get(&date).map_or(0.0, |sum| sum.spend)
    }
}

/// The runway status and, when estimated, the runway.
fn runway(facts: &Facts, today: NaiveDate) -> (RunwayStatus, Option<Runway>) {
    let span = match facts.totals.first {
        // Seconds to days; i128 so that no pair of i64 overflows.
        Some(first) => (i128::from(facts.now) - i128::from(first)) as f64 / 86_400.0,
        None => return (RunwayStatus::NotEnoughHistory, None),
    };
    if span.is_nan() || span < 1.0 {
        return (RunwayStatus::NotEnoughHistory, None);
    }
    let spend_7d = finite(facts.spend_7d);
    if spend_7d <= 0.0 {
        return (RunwayStatus::NoSpending, None);
    }
    let avg7 = spend_7d / span.min(7.0);
    let avg30 = match finite(facts.spend_30d) / span.min(30.0) {
        avg if avg > 0.0 => avg,
        _ => avg7,
    };
    let balance = finite(facts.balance).max(0.0);
    // Capped, like the dates: a tiny spend rate would otherwise give days beyond any
    // calendar (or infinity, which JSON cannot carry).
    let lasts = |per_day: f64| (balance / per_day).min(MAX_RUNWAY_DAYS);
    let days = lasts(avg7);
    let urgency = if days < 3.0 {
        Urgency::Red
    } else if days < 14.0 {
        Urgency::Amber
    } else {
        Urgency::Calm
    };
    let low_balance_on =
        (balance >= LOW_BALANCE).then(|| whole_days_after(today, (balance - LOW_BALANCE) / avg7));
    let runway = Runway {
        days,
        low_days: lasts(avg7.max(avg30)),
        high_days: lasts(avg7.min(avg30)),
        empty_on: whole_days_after(today, days),
        low_balance_on,
        spend_per_day_7d: avg7,
        spend_per_day_30d: avg30,
        urgency,
    };
    (RunwayStatus::Estimated, Some(runway))
}

/// The 30 days ending today, and those of them that were unusual. `first` is the local
/// date of the history's first transaction.
fn daily(sums: &Sums, today: NaiveDate, first: Option<NaiveDate>) -> (Vec<Day>, Vec<UnusualDay>) {
    let mut days = Vec::new();
    let mut unusual = Vec::new();
    for date in days_before(today, DAYS_SHOWN - 1)
        .iter_days()
        .take(DAYS_SHOWN as usize)
    {
        let sum = sums.all.get(&date).copied().unwrap_or_default();
        let found = unusual_day(sums, date, first);
        days.push(Day {
            date,
            spend: sum.spend,
            purchases: sum.purchases,
            refunds: sum.refunds,
            transactions: sum.transactions,
            partial: date == today,
            unusual: found.is_some(),
        });
        unusual.extend(found);
    }
    (days, unusual)
}

/// `date`, when its spend is far above the 28 days before it: more than 3 MADs (median
/// absolute deviations) above their median, above the median and at least a cent. Not
/// judged when the history starts less than 28 days before it.
fn unusual_day(sums: &Sums, date: NaiveDate, first: Option<NaiveDate>) -> Option<UnusualDay> {
    let baseline_start = date.checked_sub_days(Days::new(BASELINE_DAYS))?;
    if first.is_none_or(|first| first > baseline_start) {
        return None;
    }
    let baseline = || baseline_start.iter_days().take(BASELINE_DAYS as usize);
    let normal = median(baseline().map(|day| sums.spend_on(day)).collect());
    let mad = median(
        baseline()
            .map(|day| (sums.spend_on(day) - normal).abs())
            .collect(),
    );
    let spend = sums.spend_on(date);
    let unusual =
        spend > normal + UNUSUAL_MADS * mad && spend >= UNUSUAL_MIN_SPEND && spend > normal;
    if !unusual {
        return None;
    }
    let growth = |days: &HashMap<NaiveDate, Sum>| {
        let spend_on = |day| days.get(&day).map_or(0.0, |sum: &Sum| sum.spend);
        spend_on(date) - median(baseline().map(spend_on).collect())
    };
    // The first of the largest growths in name order.
    let service = sums
        .by_service
        .iter()
        .map(|(service, days)| (service, growth(days)))
        .reduce(|best, next| if next.1 > best.1 { next } else { best })
        .map(|(service, _)| service.clone())
        .unwrap_or_default();
    Some(UnusualDay {
        date,
        spend,
        normal,
        service,
    })
}

/// The 12 months ending with this one.
fn monthly(days: &[DaySums], today: NaiveDate) -> Vec<Month> {
    (0..MONTHS_SHOWN)
        .rev()
        .map(|back| {
            let start = month_start(today, back);
            let next = start
                .checked_add_months(Months::new(1))
                .unwrap_or(NaiveDate::MAX);
            let in_month = |day: &&DaySums| day.day >= start && day.day < next && day.day <= today;
            let (spend, purchases) =
                days.iter()
                    .filter(in_month)
                    .fold((0.0, 0.0), |(spend, purchases), day| {
                        (spend + finite(day.spend), purchases + finite(day.purchases))
                    });
            Month {
                month: start.format("%Y-%m").to_string(),
                spend,
                purchases,
                partial: back == 0,
            }
        })
        .collect()
}

/// The branded services that spent in the last 30 days, largest first.
fn services(sums: &Sums, today: NaiveDate) -> Vec<ServiceUse> {
    let start_30d = days_before(today, DAYS_SHOWN - 1);
    let start_7d = days_before(today, 6);
    let mut rows: Vec<ServiceUse> = sums
        .by_service
        .iter()
        .map(|(service, days)| {
            let mut row = ServiceUse {
                service: service.clone(),
                spend_7d: 0.0,
                spend_30d: 0.0,
                tokens_30d: 0,
                images_30d: 0,
                share_30d: 0.0,
                percent_30d: 0,
            };
            for (date, sum) in days.iter().filter(|(date, _)| **date >= start_30d) {
                row.spend_30d += sum.spend;
                row.tokens_30d = row.tokens_30d.saturating_add(sum.tokens);
                row.images_30d = row.images_30d.saturating_add(sum.images);
                if *date >= start_7d {
                    row.spend_7d += sum.spend;
                }
            }
            row
        })
        .filter(|row| row.spend_30d > 0.0)
        .collect();
    rows.sort_by(|a, b| {
        b.spend_30d
            .total_cmp(&a.spend_30d)
            .then_with(|| a.service.cmp(&b.service))
    });
    let total: f64 = rows.iter().map(|row| row.spend_30d).sum();
    for row in &mut rows {
        row.share_30d = row.spend_30d / total;
    }
    let percents = whole_percents(&rows.iter().map(|row| row.share_30d).collect::<Vec<_>>());
    for (row, percent) in rows.iter_mut().zip(percents) {
        row.percent_30d = percent;
    }
    rows
}

/// Shares (adding up to 1) as whole percents adding up to exactly 100, by the largest
/// remainder method: every share is rounded down, and the points left over go one each
/// to the largest remainders (the earlier row on a tie). No shares, no percents.
fn whole_percents(shares: &[f64]) -> Vec<u32> {
    let exact: Vec<f64> = shares
        .iter()
        .map(|share| finite(*share).clamp(0.0, 1.0) * 100.0)
        .collect();
    // Each is a whole number from 0 to 100, so the casts are exact.
    let mut percents: Vec<u32> = exact.iter().map(|x| x.floor() as u32).collect();
    if percents.is_empty() {
        return percents;
    }
    let mut by_remainder: Vec<usize> = (0..exact.len()).collect();
    by_remainder.sort_by(|&a, &b| {
        let remainder = |i: usize| exact.get(i).map_or(0.0, |x| x - x.floor());
        remainder(b).total_cmp(&remainder(a)).then(a.cmp(&b))
    });
    let given: u32 = percents.iter().sum();
    for i in by_remainder
        .iter()
        .cycle()
        .take(100_u32.saturating_sub(given) as usize)
    {
        if let Some(percent) = percents.get_mut(*i) {
            *percent += 1;
        }
    }
    percents
}

/// The last 30 days' cost per image and what the balance buys at it.
fn own_cost(daily: &[Day], sums: &Sums, today: NaiveDate, balance: f64) -> Option<OwnCost> {
    let start = days_before(today, DAYS_SHOWN - 1);
    let spend: f64 = daily.iter().map(|day| day.spend).sum();
    let images = sums
        .all
        .iter()
        .filter(|(date, _)| **date >= start)
        .fold(0_u64, |images, (_, sum)| images.saturating_add(sum.images));
    if images == 0 || spend.is_nan() || spend <= 0.0 {
        return None;
    }
    let per_image = spend / images as f64;
    Some(OwnCost {
        per_image,
        // A saturating cast: a huge balance over a tiny cost is u64::MAX images.
        images: (finite(balance).max(0.0) / per_image).floor() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use chrono_tz::{America, Asia, Europe, UTC};

    const DAY: i64 = 86_400;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, mi: u32) -> i64 {
        Utc.with_ymd_and_hms(y, m, d, h, mi, 0).unwrap().timestamp()
    }

    /// Facts at `now` in `zone`, with `history_days` of history and nothing else.
    fn facts(now: i64, zone: Tz, history_days: f64) -> Facts {
        Facts {
            now,
            zone,
            balance: 0.0,
            days: Vec::new(),
            spend_7d: 0.0,
            spend_30d: 0.0,
            totals: Totals {
                first: Some(now - (history_days * DAY as f64) as i64),
                last: Some(now),
                ..Totals::default()
            },
        }
    }

    fn spent(day: NaiveDate, service: &str, spend: f64) -> DaySums {
        DaySums {
            day,
            service: service.to_owned(),
            spend,
            purchases: 0.0,
            refunds: 0.0,
            tokens: 0,
            images: 0,
            transactions: 1,
        }
    }

    fn bought(day: NaiveDate, purchases: f64) -> DaySums {
        DaySums {
            purchases,
            spend: 0.0,
            ..spent(day, "", 0.0)
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    // first_day_needed and local_day

    #[test]
    fn the_sums_needed_start_at_the_month_eleven_months_back() {
        assert_eq!(first_day_needed(date(2026, 3, 5)), date(2025, 4, 1));
        assert_eq!(first_day_needed(date(2026, 1, 31)), date(2025, 2, 1));
        assert_eq!(first_day_needed(date(2026, 12, 1)), date(2026, 1, 1));
        // Never later than the 58 days the unusual-day rule needs.
        for today in date(2025, 1, 1).iter_days().take(800) {
            assert!(first_day_needed(today) <= today - Days::new(57));
        }
    }

    #[test]
    fn a_late_evening_transaction_counts_on_its_local_day() {
        let late = utc(2026, 11, 20, 23, 30);
        assert_eq!(local_day(late, Asia::Tokyo), date(2026, 11, 21));
        assert_eq!(local_day(late, America::New_York), date(2026, 11, 20));
        assert_eq!(local_day(late, UTC), date(2026, 11, 20));
        let small_hours = utc(2026, 11, 21, 3, 30);
        assert_eq!(
            local_day(small_hours, America::Los_Angeles),
            date(2026, 11, 20)
        );
    }

    #[test]
    fn an_absurd_instant_gives_a_date_without_panicking() {
        assert!(local_day(i64::MAX, UTC) > date(9999, 1, 1));
        assert!(local_day(i64::MIN, Asia::Tokyo) < date(-9999, 1, 1));
    }

    // Runway

    #[test]
    fn the_runway_is_the_balance_over_the_seven_day_average() {
        let mut f = facts(utc(2026, 3, 5, 12, 0), UTC, 60.0);
        f.balance = 100.0;
        f.spend_7d = 70.0;
        f.spend_30d = 150.0;
        let i = insights(&f);
        assert_eq!(i.runway_status, RunwayStatus::Estimated);
        let r = i.runway.unwrap();
        assert!(close(r.spend_per_day_7d, 10.0));
        assert!(close(r.spend_per_day_30d, 5.0));
        assert!(close(r.days, 10.0));
        assert!(close(r.low_days, 10.0));
        assert!(close(r.high_days, 20.0));
        assert_eq!(r.empty_on, date(2026, 3, 15));
        // (100 - 1) / 10 = 9.9 days.
        assert_eq!(r.low_balance_on, Some(date(2026, 3, 14)));
        assert_eq!(r.urgency, Urgency::Amber);
    }

    #[test]
    fn a_long_runway_is_calm_and_a_short_one_red() {
        let mut f = facts(utc(2026, 3, 5, 12, 0), UTC, 60.0);
        f.spend_7d = 7.0;
        f.spend_30d = 30.0;
        f.balance = 14.0;
        assert_eq!(insights(&f).runway.unwrap().urgency, Urgency::Calm);
        f.balance = 13.9;
        assert_eq!(insights(&f).runway.unwrap().urgency, Urgency::Amber);
        f.balance = 2.9;
        assert_eq!(insights(&f).runway.unwrap().urgency, Urgency::Red);
    }

    #[test]
    fn nothing_spent_in_seven_days_means_no_runway() {
        let mut f = facts(utc(2026, 3, 5, 12, 0), UTC, 60.0);
        f.balance = 50.0;
        f.spend_30d = 20.0;
        let i = insights(&f);
        assert_eq!(i.runway_status, RunwayStatus::NoSpending);
        assert_eq!(i.runway, None);
    }

    #[test]
    fn only_purchases_mean_no_runway() {
        let mut f = facts(utc(2026, 3, 5, 12, 0), UTC, 60.0);
        f.balance = 50.0;
        f.days = vec![bought(date(2026, 3, 4), 50.0)];
        let i = insights(&f);
        assert_eq!(i.runway_status, RunwayStatus::NoSpending);
        assert_eq!(i.runway, None);
        assert!(i.services.is_empty());
        assert_eq!(i.own_cost, None);
        assert!(close(i.daily[28].purchases, 50.0));
    }

    #[test]
    fn a_zero_balance_runs_out_today() {
        let mut f = facts(utc(2026, 3, 5, 12, 0), UTC, 60.0);
        f.spend_7d = 70.0;
        f.spend_30d = 150.0;
        let r = insights(&f).runway.unwrap();
        assert!(close(r.days, 0.0));
        assert!(close(r.low_days, 0.0));
        assert!(close(r.high_days, 0.0));
        assert_eq!(r.empty_on, date(2026, 3, 5));
        assert_eq!(r.low_balance_on, None);
        assert_eq!(r.urgency, Urgency::Red);
    }

    #[test]
    fn a_negative_balance_counts_as_zero() {
        let mut f = facts(utc(2026, 3, 5, 12, 0), UTC, 60.0);
        f.balance = -5.0;
        f.spend_7d = 7.0;
        let r = insights(&f).runway.unwrap();
        assert!(close(r.days, 0.0));
        assert_eq!(r.empty_on, date(2026, 3, 5));
        assert_eq!(r.low_balance_on, None);
    }

    #[test]
    fn a_day_and_a_half_of_history_divides_by_a_day_and_a_half() {
        let mut f = facts(utc(2026, 3, 5, 12, 0), UTC, 1.5);
        f.balance = 30.0;
        f.spend_7d = 3.0;
        f.spend_30d = 3.0;
        let r = insights(&f).runway.unwrap();
        assert!(close(r.spend_per_day_7d, 2.0));
        assert!(close(r.spend_per_day_30d, 2.0));
        assert!(close(r.days, 15.0));
        assert!(close(r.low_days, 15.0));
        assert!(close(r.high_days, 15.0));
        assert_eq!(r.empty_on, date(2026, 3, 20));
        assert_eq!(r.urgency, Urgency::Calm);
    }

    #[test]
    fn less_than_a_day_of_history_is_not_enough() {
        let mut f = facts(utc(2026, 3, 5, 12, 0), UTC, 0.9);
        f.balance = 30.0;
        f.spend_7d = 3.0;
        f.spend_30d = 3.0;
        let i = insights(&f);
        assert_eq!(i.runway_status, RunwayStatus::NotEnoughHistory);
        assert_eq!(i.runway, None);
        f.totals.first = None;
        assert_eq!(insights(&f).runway_status, RunwayStatus::NotEnoughHistory);
        // A first transaction after now (a clock gone back) is no history either.
        f.totals.first = Some(f.now + DAY);
        assert_eq!(insights(&f).runway_status, RunwayStatus::NotEnoughHistory);
    }

    #[test]
    fn no_thirty_day_spend_uses_the_seven_day_average_for_both_ends() {
        let mut f = facts(utc(2026, 3, 5, 12, 0), UTC, 60.0);
        f.balance = 100.0;
        f.spend_7d = 70.0;
        f.spend_30d = 0.0;
        let r = insights(&f).runway.unwrap();
        assert!(close(r.spend_per_day_30d, 10.0));
        assert!(close(r.low_days, 10.0));
        assert!(close(r.high_days, 10.0));
    }

    #[test]
    fn a_tiny_spend_caps_the_runway_dates_at_a_century() {
        let mut f = facts(utc(2026, 3, 5, 12, 0), UTC, 60.0);
        f.balance = 1e300;
        f.spend_7d = 1e-300;
        f.spend_30d = 1e-300;
        let r = insights(&f).runway.unwrap();
        assert!(close(r.days, 36_500.0));
        assert!(close(r.low_days, 36_500.0));
        assert!(close(r.high_days, 36_500.0));
        assert_eq!(r.empty_on, date(2026, 3, 5) + Days::new(36_500));
        assert_eq!(r.low_balance_on, Some(date(2026, 3, 5) + Days::new(36_500)));
        assert_eq!(r.urgency, Urgency::Calm);
    }

    #[test]
    fn not_a_number_anywhere_does_not_panic() {
        let mut f = facts(utc(2026, 3, 5, 12, 0), UTC, 60.0);
        f.balance = f64::NAN;
        f.spend_7d = f64::NAN;
        f.spend_30d = f64::INFINITY;
        f.days = vec![
            spent(date(2026, 3, 5), "tags via xai", f64::NAN),
            spent(date(2026, 3, 4), "tags via xai", -1.0),
            DaySums {
                images: 3,
                ..spent(
                    date(2026, 3, 3),
                    "image_search via openai",
                    f64::NEG_INFINITY,
                )
            },
        ];
        let i = insights(&f);
        assert_eq!(i.runway_status, RunwayStatus::NoSpending);
        assert!(close(i.daily[29].spend, 0.0));
        assert!(close(i.daily[28].spend, -1.0));
        assert!(i.services.is_empty());
        assert_eq!(i.own_cost, None);
        f.spend_7d = 7.0;
        let r = insights(&f).runway.unwrap();
        assert!(close(r.days, 0.0));
        assert!(close(r.spend_per_day_30d, 1.0));
    }

    // Daily

    #[test]
    fn thirty_days_fill_across_a_month_boundary() {
        let mut f = facts(utc(2026, 3, 5, 12, 0), UTC, 60.0);
        f.days = vec![
            spent(date(2026, 2, 28), "tags via xai", 2.0),
            spent(date(2026, 2, 28), "image_search via openai", 0.5),
            spent(date(2026, 3, 1), "tags via xai", 1.0),
            bought(date(2026, 3, 1), 20.0),
            // Outside the window.
            spent(date(2026, 2, 3), "tags via xai", 9.0),
        ];
        let daily = insights(&f).daily;
        assert_eq!(daily.len(), 30);
        assert_eq!(daily[0].date, date(2026, 2, 4));
        assert_eq!(daily[29].date, date(2026, 3, 5));
        assert_eq!(daily[24].date, date(2026, 2, 28));
        assert_eq!(daily[25].date, date(2026, 3, 1));
        assert!(close(daily[24].spend, 2.5));
        assert_eq!(daily[24].transactions, 2);
        assert!(close(daily[25].spend, 1.0));
        assert!(close(daily[25].purchases, 20.0));
        assert_eq!(daily[25].transactions, 2);
        assert!(close(daily[0].spend, 0.0));
        assert_eq!(daily[0].transactions, 0);
        let total: f64 = daily.iter().map(|day| day.spend).sum();
        assert!(close(total, 3.5));
        assert!(daily[29].partial);
        assert!(daily[..29].iter().all(|day| !day.partial));
        for pair in daily.windows(2) {
            assert_eq!(pair[0].date.succ_opt(), Some(pair[1].date));
        }
    }

    #[test]
    fn thirty_days_fill_across_daylight_saving_changes() {
        // Berlin springs forward on 2026-03-29 and falls back on 2026-10-25.
        for (now, first, dst) in [
            (
                utc(2026, 4, 9, 22, 30),
                date(2026, 3, 12),
                date(2026, 3, 29),
            ),
            (
                utc(2026, 11, 4, 23, 30),
                date(2026, 10, 7),
                date(2026, 10, 25),
            ),
        ] {
            let mut f = facts(now, Europe::Berlin, 60.0);
            f.days = vec![spent(dst, "tags via xai", 1.25)];
            let daily = insights(&f).daily;
            let dates: Vec<NaiveDate> = daily.iter().map(|day| day.date).collect();
            let expected: Vec<NaiveDate> = first.iter_days().take(30).collect();
            assert_eq!(dates, expected);
            // Half past midnight in Berlin is still the day before in UTC.
            assert_eq!(dates[29], local_day(now, Europe::Berlin));
            assert_eq!(dates[29], now_utc_date(now).succ_opt().unwrap());
            let on_dst = daily.iter().find(|day| day.date == dst).unwrap();
            assert!(close(on_dst.spend, 1.25));
        }
    }

    fn now_utc_date(now: i64) -> NaiveDate {
        local_day(now, UTC)
    }

    // Monthly

    #[test]
    fn months_sum_their_days_and_this_one_is_partial() {
        let mut f = facts(utc(2026, 3, 5, 12, 0), UTC, 400.0);
        f.days = vec![
            // Before the window.
            spent(date(2025, 3, 31), "tags via xai", 100.0),
            spent(date(2025, 4, 1), "tags via xai", 1.0),
            spent(date(2025, 4, 30), "image_search via openai", 2.0),
            bought(date(2025, 4, 15), 10.0),
            spent(date(2025, 12, 31), "tags via xai", 3.0),
            spent(date(2026, 1, 1), "tags via xai", 4.0),
            spent(date(2026, 1, 31), "tags via xai", 5.0),
            bought(date(2026, 1, 20), 25.0),
            spent(date(2026, 3, 1), "tags via xai", 6.0),
            spent(date(2026, 3, 5), "tags via xai", 0.5),
        ];
        let monthly = insights(&f).monthly;
        let names: Vec<&str> = monthly.iter().map(|m| m.month.as_str()).collect();
        assert_eq!(
            names,
            [
                "2025-04", "2025-05", "2025-06", "2025-07", "2025-08", "2025-09", "2025-10",
                "2025-11", "2025-12", "2026-01", "2026-02", "2026-03"
            ]
        );
        let spend: Vec<f64> = monthly.iter().map(|m| m.spend).collect();
        assert_eq!(
            spend,
            [3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 9.0, 0.0, 6.5]
        );
        let purchases: Vec<f64> = monthly.iter().map(|m| m.purchases).collect();
        assert_eq!(
            purchases,
            [10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 25.0, 0.0, 0.0]
        );
        assert!(monthly[11].partial);
        assert!(monthly[..11].iter().all(|m| !m.partial));
    }

    // Services

    #[test]
    fn three_equal_services_share_thirty_four_thirty_three_thirty_three() {
        let mut f = facts(utc(2026, 3, 5, 12, 0), UTC, 60.0);
        f.days = vec![
            spent(date(2026, 3, 5), "tags", 1.0),
            spent(date(2026, 3, 1), "captions", 1.0),
            spent(date(2026, 2, 10), "titles", 1.0),
        ];
        let services = insights(&f).services;
        let names: Vec<&str> = services.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(names, ["captions", "tags", "titles"]);
        let percents: Vec<u32> = services.iter().map(|s| s.percent_30d).collect();
        assert_eq!(percents, [34, 33, 33]);
        assert_eq!(percents.iter().sum::<u32>(), 100);
        let shares: f64 = services.iter().map(|s| s.share_30d).sum();
        assert!(close(shares, 1.0));
        // Only tags (today) and captions (4 days ago) fall in the last 7 days.
        let week: Vec<f64> = services.iter().map(|s| s.spend_7d).collect();
        assert_eq!(week, [1.0, 1.0, 0.0]);
    }

    #[test]
    fn the_providers_of_a_service_merge_into_one_branded_row() {
        let mut f = facts(utc(2026, 3, 5, 12, 0), UTC, 60.0);
        f.days = vec![
            DaySums {
                tokens: 100,
                images: 2,
                ..spent(date(2026, 3, 5), "image_search via openai", 3.0)
            },
            DaySums {
                tokens: 50,
                images: 1,
                ..spent(date(2026, 3, 4), "image_search via xai", 2.0)
            },
            // Before the week, inside the 30 days.
            DaySums {
                tokens: 10,
                images: 1,
                ..spent(date(2026, 2, 20), "image_search via xai", 1.0)
            },
            // Before the 30 days: left out of every figure.
            DaySums {
                tokens: 999,
                images: 9,
                ..spent(date(2026, 2, 1), "image_search via xai", 9.0)
            },
            DaySums {
                tokens: 400,
                ..spent(date(2026, 3, 5), "tags via anthropic", 4.0)
            },
            // No spend in 30 days: no row.
            spent(date(2026, 1, 20), "captions via google", 7.0),
            bought(date(2026, 3, 5), 100.0),
        ];
        let services = insights(&f).services;
        assert_eq!(services.len(), 2);
        let image = &services[0];
        assert_eq!(image.service, "image_search via CTZ-AI");
        assert!(close(image.spend_30d, 6.0));
        assert!(close(image.spend_7d, 5.0));
        assert_eq!(image.tokens_30d, 160);
        assert_eq!(image.images_30d, 4);
        assert!(close(image.share_30d, 0.6));
        assert_eq!(image.percent_30d, 60);
        let tags = &services[1];
        assert_eq!(tags.service, "tags via CTZ-AI");
        assert!(close(tags.spend_30d, 4.0));
        assert_eq!(tags.tokens_30d, 400);
        assert!(close(tags.share_30d, 0.4));
        assert_eq!(tags.percent_30d, 40);
    }

    #[test]
    fn the_largest_remainders_get_the_leftover_points() {
        assert_eq!(whole_percents(&[]), Vec::<u32>::new());
        assert_eq!(whole_percents(&[1.0]), [100]);
        assert_eq!(whole_percents(&[0.999_999_999_9]), [100]);
        assert_eq!(whole_percents(&[0.505, 0.495]), [51, 49]);
        assert_eq!(whole_percents(&[0.994, 0.003, 0.003]), [100, 0, 0]);
        assert_eq!(whole_percents(&[0.9, 0.094, 0.006]), [90, 9, 1]);
        let sevenths = [1.0 / 7.0; 7];
        let percents = whole_percents(&sevenths);
        assert_eq!(percents, [15, 15, 14, 14, 14, 14, 14]);
    }

    // Unusual days

    /// 60 days of history ending today (2026-03-05): "tags via xai" 0.50 a day, and
    /// "image_search via openai" 0.50 a day with a noise of up to 2 cents; `spike` is
    /// the image spend of `spike_on`.
    fn steady_with(spike_on: NaiveDate, spike: f64) -> Facts {
        let today = date(2026, 3, 5);
        let mut f = facts(utc(2026, 3, 5, 12, 0), UTC, 60.0);
        let noise = [-0.02, -0.01, 0.0, 0.01, 0.02];
        for (i, day) in (today - Days::new(59)).iter_days().take(60).enumerate() {
            let image = if day == spike_on {
                spike
            } else {
                0.5 + noise[i % 5]
            };
            f.days.push(spent(day, "tags via xai", 0.5));
            f.days.push(spent(day, "image_search via openai", image));
        }
        f
    }

    #[test]
    fn a_spike_of_five_dollars_over_a_dollar_a_day_is_unusual() {
        let spike_on = date(2026, 2, 23);
        let i = insights(&steady_with(spike_on, 4.5));
        assert_eq!(i.unusual.len(), 1);
        let day = &i.unusual[0];
        assert_eq!(day.date, spike_on);
        assert!(close(day.spend, 5.0));
        assert!(close(day.normal, 1.0));
        assert_eq!(day.service, "image_search via CTZ-AI");
        let flagged: Vec<NaiveDate> = i
            .daily
            .iter()
            .filter(|d| d.unusual)
            .map(|d| d.date)
            .collect();
        assert_eq!(flagged, [spike_on]);
    }

    #[test]
    fn a_day_at_a_dollar_two_is_not_unusual() {
        let i = insights(&steady_with(date(2026, 3, 5), 0.52));
        assert!(close(i.daily[29].spend, 1.02));
        assert!(i.unusual.is_empty());
        assert!(i.daily.iter().all(|d| !d.unusual));
    }

    #[test]
    fn nothing_is_unusual_without_twenty_eight_days_before_it() {
        let spike_on = date(2026, 3, 5);
        let mut f = steady_with(spike_on, 4.5);
        // The history starts 27 days before the spike.
        f.totals.first = Some(utc(2026, 2, 6, 8, 0));
        assert!(insights(&f).unusual.is_empty());
        // 28 days before it is enough.
        f.totals.first = Some(utc(2026, 2, 5, 8, 0));
        let unusual = insights(&f).unusual;
        assert_eq!(unusual.len(), 1);
        assert_eq!(unusual[0].date, spike_on);
        f.totals.first = None;
        assert!(insights(&f).unusual.is_empty());
    }

    #[test]
    fn less_than_a_cent_over_nothing_is_not_unusual() {
        let mut f = facts(utc(2026, 3, 5, 12, 0), UTC, 90.0);
        f.days = vec![spent(date(2026, 3, 5), "tags via xai", 0.009)];
        assert!(insights(&f).unusual.is_empty());
        f.days = vec![spent(date(2026, 3, 5), "tags via xai", 0.01)];
        let unusual = insights(&f).unusual;
        assert_eq!(unusual.len(), 1);
        assert!(close(unusual[0].normal, 0.0));
        assert_eq!(unusual[0].service, "tags via CTZ-AI");
    }

    // Own cost and the rest

    #[test]
    fn the_own_cost_per_image_counts_token_spend_too() {
        let mut f = facts(utc(2026, 3, 5, 12, 0), UTC, 60.0);
        f.balance = 10.0;
        f.days = vec![
            DaySums {
                images: 4,
                ..spent(date(2026, 3, 5), "image_search via openai", 1.0)
            },
            DaySums {
                tokens: 5000,
                ..spent(date(2026, 2, 10), "tags via xai", 2.0)
            },
            // Before the 30 days.
            DaySums {
                images: 100,
                ..spent(date(2026, 2, 1), "image_search via openai", 1.0)
            },
        ];
        let own = insights(&f).own_cost.unwrap();
        assert!(close(own.per_image, 0.75));
        assert_eq!(own.images, 13);
        f.balance = -3.0;
        assert_eq!(insights(&f).own_cost.unwrap().images, 0);
        f.days.retain(|d| d.images == 0);
        assert_eq!(insights(&f).own_cost, None);
    }

    #[test]
    fn the_zone_balance_and_totals_are_passed_through() {
        let mut f = facts(utc(2026, 3, 5, 12, 0), Europe::Berlin, 60.0);
        f.balance = 12.5;
        f.totals.transactions = 42;
        f.totals.spend = 99.0;
        let i = insights(&f);
        assert_eq!(i.time_zone, "Europe/Berlin");
        assert!(close(i.balance, 12.5));
        assert_eq!(i.totals, f.totals);
        assert_eq!(i.daily.len(), 30);
        assert_eq!(i.monthly.len(), 12);
    }

    #[test]
    fn an_empty_history_gives_zero_bars() {
        let mut f = facts(utc(2026, 3, 5, 12, 0), UTC, 0.0);
        f.totals.first = None;
        let i = insights(&f);
        assert_eq!(i.runway_status, RunwayStatus::NotEnoughHistory);
        assert_eq!(i.daily.len(), 30);
        assert!(
            i.daily
                .iter()
                .all(|d| d.spend == 0.0 && d.transactions == 0 && !d.unusual)
        );
        assert!(
            i.monthly
                .iter()
                .all(|m| m.spend == 0.0 && m.purchases == 0.0)
        );
        assert!(i.services.is_empty());
        assert!(i.unusual.is_empty());
        assert_eq!(i.own_cost, None);
    }
}
