//! `tokenusage report`: what the page's insight cards show (runway, the last 30 days and
//! 12 months, the services, unusual days, the kept history's totals), as text for a cron
//! mail or as JSON for scripts, from the same code as the page.
//!
//! [`render_text`] is pure; [`run`] reads the installation the way the page does
//! ([`super::read_balance`]: file and HTTP I/O) and writes to the writer it is given.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use chrono_tz::Tz;

use super::{Probe, load_config, read_balance};
use crate::view::dashboard::{LOW_BALANCE, format_count, format_credits};
use crate::view::insights::{Insights, RunwayStatus};

/// What `tokenusage report` was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    pub root: PathBuf,
    /// JSON instead of text.
    pub json: bool,
    /// The license API call's limit.
    pub timeout: Duration,
    /// Reuse the page's user/info and user/stats answers this long.
    pub account_ttl: Duration,
    /// The zone of a config that names none (`--timezone`).
    pub timezone: Tz,
}

/// The report as text (pure).
pub fn render_text(insights: &Insights) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!(
        "Balance: {} (days and months in {})",
        format_credits(insights.balance),
        insights.time_zone
    ));
    line(match (&insights.runway_status, &insights.runway) {
        (RunwayStatus::Estimated, Some(r)) => format!(
            "Runway: about {:.0} days, until {} ({:.0} to {:.0} days by the 7- and 30-day averages); \
             spend per day {} (7 days), {} (30 days){}",
            r.days.round(),
            r.empty_on,
            r.low_days.round(),
            r.high_days.round(),
            format_credits(r.spend_per_day_7d),
            format_credits(r.spend_per_day_30d),
            r.low_balance_on
                .map(|d| format!("; below {} on {d}", format_credits(LOW_BALANCE)))
                .unwrap_or_default()
        ),
        (RunwayStatus::NoSpending, _) => "Runway: no spending in the last 7 days".into(),
        _ => "Runway: not enough history yet".into(),
    });
    if let Some(own) = &insights.own_cost {
        line(format!(
            "At {} per image (last 30 days, tokens included) the balance buys about {} image jobs",
            format_credits(own.per_image),
            format_count(own.images)
        ));
    }
    let t = &insights.totals;
    let date = |unix: Option<i64>| {
        unix.map(|s| crate::data::cache::local_date(s, insights.zone))
            .map_or_else(|| "-".to_string(), |d| d.to_string())
    };
    line(format!(
        "Kept history: {} transactions from {} to {}; spent {}, purchased {}, refunded {}",
        format_count(t.transactions),
        date(t.first),
        date(t.last),
        format_credits(t.spend),
        format_credits(t.purchases),
        format_credits(t.refunds)
    ));
    for day in &insights.unusual {
        line(format!(
            "Unusual: {} spent {} against a usual {}, mostly {}",
            day.date,
            format_credits(day.spend),
            format_credits(day.normal),
            day.service
        ));
    }
    line(String::new());
    line("Last 30 days        spend  purchases  transactions".into());
    for day in &insights.daily {
        line(format!(
            "{} {}  {:>9}  {:>9}  {:>12}{}",
            day.date,
            day.date.format("%a"),
            format_credits(day.spend),
            format_credits(day.purchases),
            format_count(day.transactions),
            if day.partial {
                "  (so far)"
            } else if day.unusual {
                "  unusual"
            } else {
                ""
            }
        ));
    }
    line(String::new());
    line("Last 12 months     spend  purchases".into());
    for month in &insights.monthly {
        line(format!(
            "{}      {:>9}  {:>9}{}",
            month.month,
            format_credits(month.spend),
            format_credits(month.purchases),
            if month.partial { "  (so far)" } else { "" }
        ));
    }
    line(String::new());
    line("Services (spend 7 days, 30 days, share, tokens and images in 30 days)".into());
    for s in &insights.services {
        line(format!(
            "{:<32} {:>9} {:>9} {:>4}% {:>12} {:>8}",
            s.service,
            format_credits(s.spend_7d),
            format_credits(s.spend_30d),
            s.percent_30d,
            format_count(s.tokens_30d),
            format_count(s.images_30d)
        ));
    }
    out
}

/// Reads the installation and writes the report; returns the exit code (1 when there is
/// no balance or no kept history to report on, with the reason on stderr).
pub fn run(options: &ReportOptions, out: &mut dyn Write) -> u8 {
    let now = chrono::Utc::now().timestamp();
    let probe = Probe::new(options.timeout, options.account_ttl, now, options.timezone);
    let read = load_config(&options.root, options.timezone)
        .map_err(|e| format!("config: {e}"))
        .and_then(|config| read_balance(&options.root, config, &probe))
        .and_then(|reading| reading.insights);
    let insights = match read {
        Ok(insights) => insights,
        Err(why) => {
            eprintln!("tokenusage: {}: {why}", options.root.display());
            return 1;
        }
    };
    let text = if options.json {
        match serde_json::to_string_pretty(&insights) {
            Ok(json) => json + "\n",
            Err(error) => {
                eprintln!("tokenusage: cannot write the report: {error}");
                return 1;
            }
        }
    } else {
        render_text(&insights)
    };
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("tokenusage: cannot write the report: {error}");
            1
        }
    }
}
