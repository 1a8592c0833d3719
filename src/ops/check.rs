//! `tokenusage check`: a monitoring plugin after the Monitoring Plugins guidelines. One
//! line first (`TOKENUSAGE OK - $48.73 left | balance=48.7323;5:;1:;0;`), more with
//! `-v`, and the status as the exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
//!
//! [`evaluate`] and [`render`] are pure; [`run`] reads the balance the way the page does
//! ([`super::read_balance`]: file and HTTP I/O) and writes to the writer it is given.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use chrono_tz::Tz;

use super::range::Range;
use super::{Probe, Reading, dollars, load_config, read_balance};
use crate::view::insights::RunwayStatus;

/// What `tokenusage check` was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOptions {
    pub root: PathBuf,
    pub warning: Option<Range>,
    pub critical: Option<Range>,
    /// WARNING / CRITICAL when the runway is shorter than this many days.
    pub warning_days: Option<f64>,
    pub critical_days: Option<f64>,
    /// A cached balance older than this is UNKNOWN.
    pub max_age: Duration,
    /// The license API call's limit.
    pub timeout: Duration,
    /// Reuse the page's user/info and user/stats answers this long.
    pub account_ttl: Duration,
    /// The zone of a config that names none (`--timezone`).
    pub timezone: Tz,
    /// `-v` given this many times.
    pub verbose: u8,
}

/// A plugin's state; its number is the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Status {
    /// The word of the first line.
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }

    /// The exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// What a check found: the first line's parts and the `-v` lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: Status,
    pub text: String,
    /// `balance=...`, when there is a balance.
    pub perfdata: Option<String>,
    /// Printed after the first line with `-v`.
    pub details: Vec<String>,
}

/// The thresholds and the age limit applied to what was read (pure).
pub fn evaluate(read: &Result<Reading, String>, options: &CheckOptions, now: i64) -> Outcome {
    let reading = match read {
        Ok(reading) => reading,
        Err(why) => {
            return Outcome {
                status: Status::Unknown,
                text: format!("no balance: {why}"),
                perfdata: None,
                details: Vec::new(),
            };
        }
    };
    let alerts = |range: &Option<Range>| range.as_ref().is_some_and(|r| r.alerts(reading.balance));
    let mut status = if alerts(&options.critical) {
        Status::Critical
    } else if alerts(&options.warning) {
        Status::Warning
    } else {
        Status::Ok
    };
    let mut text = format!("{} left", dollars(reading.balance));
    let age = reading.age(now);
    let max_age = options.max_age.as_secs() as i64;
    if reading.from_cache {
        if age > max_age {
            status = Status::Unknown;
            text.push_str(&format!(
                " but cached {age} s ago, past --max-age {max_age} s"
            ));
        } else {
            text.push_str(&format!(" (cached {age} s ago)"));
        }
        if let Some(failure) = &reading.failure {
            text.push_str(&format!("; license API: {failure}"));
        }
    }
    let range = |r: &Option<Range>| r.as_ref().map(Range::to_string).unwrap_or_default();
    let mut perfdata = format!(
        "balance={};{};{};0;",
        reading.balance,
        range(&options.warning),
        range(&options.critical)
    );
    let (runway_status, runway_text, runway_perfdata) = runway(reading, options);
    status = worse(status, runway_status);
    text.push_str(&runway_text);
    perfdata.push_str(&runway_perfdata);
    let mut details = vec![
        format!("root: {}", options.root.display()),
        format!(
            "fetched: {} ({age} s ago, {})",
            chrono::DateTime::from_timestamp(reading.fetched_at, 0)
                .map_or_else(|| reading.fetched_at.to_string(), |t| t.to_rfc3339()),
            if reading.from_cache {
                "from the cache"
            } else {
                "live"
            }
        ),
    ];
    if let Some(failure) = &reading.failure {
        details.push(format!("live call failed: {failure}"));
    }
    Outcome {
        status,
        text,
        perfdata: Some(perfdata),
        details,
    }
}

/// The runway's part (pure): its status against `--warning-days`/`--critical-days`, its
/// words and its perfdata. Without thresholds it never changes the status; with them, a
/// runway that cannot be told is UNKNOWN.
fn runway(reading: &Reading, options: &CheckOptions) -> (Status, String, String) {
    let asked = options.warning_days.is_some() || options.critical_days.is_some();
    let limit = |d: Option<f64>| d.map(|d| format!("{d}:")).unwrap_or_default();
    let insights = match &reading.insights {
        Ok(insights) => insights,
        Err(why) if asked => {
            return (
                Status::Unknown,
                format!("; runway unknown: {why}"),
                String::new(),
            );
        }
        Err(_) => return (Status::Ok, String::new(), String::new()),
    };
    match (&insights.runway, insights.runway_status) {
        (Some(r), _) => {
            let below = |d: Option<f64>| d.is_some_and(|d| r.days < d);
            let status = if below(options.critical_days) {
                Status::Critical
            } else if below(options.warning_days) {
                Status::Warning
            } else {
                Status::Ok
            };
            // The words only where asked for, so a check without day thresholds reads
            // as it always has; the perfdata is always there for graphs.
            let text = if asked {
                format!(
                    "; runway about {:.0} days (until {})",
                    r.days.round(),
                    r.empty_on
                )
            } else {
                String::new()
            };
            let perfdata = format!(
                " runway_days={:.1};{};{};0;",
                r.days,
                limit(options.warning_days),
                limit(options.critical_days)
            );
            (status, text, perfdata)
        }
        _ if !asked => (Status::Ok, String::new(), String::new()),
        (None, RunwayStatus::NoSpending) => (
            Status::Ok,
            "; no spending in the last 7 days".into(),
            String::new(),
        ),
        (None, _) => (
            Status::Ok,
            "; not enough history for a runway yet".into(),
            String::new(),
        ),
    }
}

/// The worse of two states: CRITICAL, then WARNING, then UNKNOWN, then OK.
fn worse(a: Status, b: Status) -> Status {
    let rank = |s: Status| match s {
        Status::Ok => 0,
        Status::Unknown => 1,
        Status::Warning => 2,
        Status::Critical => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// The plugin's output (pure): the first line, then the details when `verbose`.
pub fn render(outcome: &Outcome, verbose: u8) -> String {
    let mut out = format!("TOKENUSAGE {} - {}", outcome.status.word(), outcome.text);
    if let Some(perfdata) = &outcome.perfdata {
        out.push_str(" | ");
        out.push_str(perfdata);
    }
    out.push('\n');
    if verbose > 0 {
        for line in &outcome.details {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The first line for arguments refused (pure): UNKNOWN, as the guidelines reserve 3.
pub fn usage_line(message: &str) -> String {
    let first = message
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("bad arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    format!("TOKENUSAGE UNKNOWN - bad arguments: {first}\n")
}

/// Runs the check and writes its output; returns the exit code.
pub fn run(options: &CheckOptions, out: &mut dyn Write) -> u8 {
    let now = chrono::Utc::now().timestamp();
    let probe = Probe::new(options.timeout, options.account_ttl, now, options.timezone);
    let read = load_config(&options.root, options.timezone)
        .map_err(|e| format!("config: {e}"))
        .and_then(|config| read_balance(&options.root, config, &probe));
    let outcome = evaluate(&read, options, now);
    // A monitoring system reads stdout; if it is gone there is no one to tell.
    let _ = out.write_all(render(&outcome, options.verbose).as_bytes());
    let _ = out.flush();
    outcome.status.code()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::range::{Range, threshold};

    fn options(warning: &str, critical: &str) -> CheckOptions {
        CheckOptions {
            root: PathBuf::from("/var/www/site/ct"),
            warning: Some(threshold(warning).unwrap()),
            critical: Some(threshold(critical).unwrap()),
            warning_days: None,
            critical_days: None,
            max_age: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
            account_ttl: Duration::from_secs(30),
            timezone: Tz::UTC,
            verbose: 0,
        }
    }

    fn live(balance: f64) -> Result<Reading, String> {
        Ok(Reading {
            balance,
            fetched_at: 1000,
            from_cache: false,
            failure: None,
            insights: Err("no kept history".into()),
            spend_24h: Vec::new(),
        })
    }

    #[test]
    fn a_balance_above_both_thresholds_is_ok_with_perfdata() {
        let outcome = evaluate(&live(48.7323), &options("5", "1"), 1000);
        assert_eq!(
            render(&outcome, 0),
            "TOKENUSAGE OK - $48.73 left | balance=48.7323;5:;1:;0;\n"
        );
        assert_eq!(outcome.status.code(), 0);
    }

    #[test]
    fn a_balance_between_the_thresholds_warns_and_below_both_is_critical() {
        assert_eq!(
            evaluate(&live(3.0), &options("5", "1"), 1000).status,
            Status::Warning
        );
        assert_eq!(
            evaluate(&live(0.5), &options("5", "1"), 1000).status,
            Status::Critical
        );
        assert_eq!(
            evaluate(&live(-2.0), &options("5", "1"), 1000).status,
            Status::Critical
        );
    }

    #[test]
    fn no_thresholds_leave_the_perfdata_fields_empty() {
        let options = CheckOptions {
            warning: None,
            critical: None,
            ..options("5", "1")
        };
        let outcome = evaluate(&live(2.0), &options, 1000);
        assert_eq!(outcome.status, Status::Ok);
        assert_eq!(outcome.perfdata.as_deref(), Some("balance=2;;;0;"));
    }

    #[test]
    fn a_cached_balance_shows_its_age_and_past_max_age_is_unknown() {
        let cached = Ok(Reading {
            balance: 20.0,
            fetched_at: 1000,
            from_cache: true,
            failure: Some("Failed to connect to License API".into()),
            insights: Err("no kept history".into()),
            spend_24h: Vec::new(),
        });
        let young = evaluate(&cached, &options("5", "1"), 1100);
        assert_eq!(young.status, Status::Ok);
        assert!(young.text.contains("cached 100 s ago"), "{}", young.text);
        assert!(young.text.contains("Failed to connect"), "{}", young.text);
        let old = evaluate(&cached, &options("5", "1"), 1000 + 3601);
        assert_eq!(old.status, Status::Unknown);
        assert!(old.text.contains("past --max-age 3600 s"), "{}", old.text);
    }

    #[test]
    fn no_balance_at_all_is_unknown_without_perfdata() {
        let outcome = evaluate(&Err("Failed to connect".into()), &options("5", "1"), 1);
        assert_eq!(
            render(&outcome, 1),
            "TOKENUSAGE UNKNOWN - no balance: Failed to connect\n"
        );
        assert_eq!(outcome.status.code(), 3);
    }

    #[test]
    fn verbose_output_adds_lines_after_the_first() {
        let options = CheckOptions {
            verbose: 1,
            ..options("5", "1")
        };
        let text = render(&evaluate(&live(9.0), &options, 1030), options.verbose);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("TOKENUSAGE OK - $9.00 left |"));
        assert_eq!(lines[1], "root: /var/www/site/ct");
        assert!(lines[2].contains("30 s ago, live"), "{}", lines[2]);
    }

    #[test]
    fn an_inside_range_alerts_inside_it() {
        let options = CheckOptions {
            warning: Some(Range::parse("@0:5").unwrap()),
            critical: None,
            ..options("5", "1")
        };
        assert_eq!(evaluate(&live(4.0), &options, 1000).status, Status::Warning);
        assert_eq!(evaluate(&live(6.0), &options, 1000).status, Status::Ok);
    }

    #[test]
    fn a_usage_error_becomes_an_unknown_first_line() {
        assert_eq!(
            usage_line("error: invalid value 'x' for '--warning'\n\nUsage: ..."),
            "TOKENUSAGE UNKNOWN - bad arguments: invalid value 'x' for '--warning'\n"
        );
    }
}
