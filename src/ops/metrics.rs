//! `tokenusage metrics`: each installation's balance in the Prometheus text exposition
//! format, for node_exporter's textfile collector. Never the license key or the email:
//! only the root and the domain label a series.
//!
//! [`render`] is pure; [`run`] reads each balance the way the page does
//! ([`super::read_balance`]: file and HTTP I/O).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::{Probe, load_config, read_balance};

/// What `tokenusage metrics` was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsOptions {
    pub roots: Vec<PathBuf>,
    /// A cached balance older than this makes `tokenusage_up` 0.
    pub max_age: Duration,
    /// Each license API call's limit.
    pub timeout: Duration,
    /// Reuse the page's user/info and user/stats answers this long.
    pub account_ttl: Duration,
    /// The zone of a config that names none (`--timezone`).
    pub timezone: chrono_tz::Tz,
}

/// One installation's series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub root: String,
    /// Empty when the config could not be read.
    pub domain: String,
    /// The balance and when it was fetched, when there is one.
    pub balance: Option<(f64, i64)>,
    pub up: bool,
    /// How long the balance lasts at the 7-day average spend, when it can be told.
    pub runway_seconds: Option<f64>,
    /// Usage spend of the last 24 h per branded service.
    pub spend_24h: Vec<(String, f64)>,
}

/// A label value escaped as the format asks: `\` `"` and newline.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The exposition text (pure): each family's HELP and TYPE, then its series.
pub fn render(samples: &[Sample], version: &str) -> String {
    let labels = |s: &Sample| {
        format!(
            "{{root=\"{}\",domain=\"{}\"}}",
            escape_label(&s.root),
            escape_label(&s.domain)
        )
    };
    let mut out = String::new();
    let mut family = |name: &str, help: &str, series: Vec<String>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for line in series {
            out.push_str(&format!("{name}{line}\n"));
        }
    };
    family(
        "tokenusage_balance_dollars",
        "The credit balance the dashboard shows as Current Balance, in dollars.",
        samples
            .iter()
            .filter_map(|s| s.balance.map(|(b, _)| format!("{} {b}", labels(s))))
            .collect(),
    );
    family(
        "tokenusage_last_success_timestamp_seconds",
        "When the balance shown was fetched from the license API, in Unix seconds.",
        samples
            .iter()
            .filter_map(|s| s.balance.map(|(_, at)| format!("{} {at}", labels(s))))
            .collect(),
    );
    family(
        "tokenusage_up",
        "1 when the balance came from the license API now or from a cache within --max-age.",
        samples
            .iter()
            .map(|s| format!("{} {}", labels(s), u8::from(s.up)))
            .collect(),
    );
    family(
        "tokenusage_runway_seconds",
        "How long the balance lasts at the last 7 days' average spend, in seconds.",
        samples
            .iter()
            .filter_map(|s| s.runway_seconds.map(|r| format!("{} {r}", labels(s))))
            .collect(),
    );
    family(
        "tokenusage_spend_dollars",
        "Usage spend of the last 24 hours per service, in dollars.",
        samples
            .iter()
            .flat_map(|s| {
                s.spend_24h.iter().map(move |(service, spend)| {
                    format!(
                        "{{root=\"{}\",domain=\"{}\",service=\"{}\"}} {spend}",
                        escape_label(&s.root),
                        escape_label(&s.domain),
                        escape_label(service)
                    )
                })
            })
            .collect(),
    );
    family(
        "tokenusage_build_info",
        "The tokenusage version, as a label; always 1.",
        vec![format!("{{version=\"{}\"}} 1", escape_label(version))],
    );
    out
}

/// Reads each installation and writes the exposition; returns the exit code (0: an
/// installation without a balance is `tokenusage_up 0`, not a failure of the command).
pub fn run(options: &MetricsOptions, out: &mut dyn Write) -> u8 {
    let now = chrono::Utc::now().timestamp();
    let probe = Probe::new(options.timeout, options.account_ttl, now, options.timezone);
    let max_age = options.max_age.as_secs() as i64;
    let samples: Vec<Sample> = options
        .roots
        .iter()
        .map(|root| {
            let mut sample = Sample {
                root: root.display().to_string(),
                domain: String::new(),
                balance: None,
                up: false,
                runway_seconds: None,
                spend_24h: Vec::new(),
            };
            match load_config(root, options.timezone) {
                Ok(config) => {
                    sample.domain = config.credentials.domain.clone();
                    match read_balance(root, config, &probe) {
                        Ok(reading) => {
                            sample.up = !reading.from_cache || reading.age(now) <= max_age;
                            sample.balance = Some((reading.balance, reading.fetched_at));
                            sample.runway_seconds = reading
                                .insights
                                .ok()
                                .and_then(|i| i.runway)
                                .map(|r| r.days * 86_400.0);
                            sample.spend_24h = reading.spend_24h;
                        }
                        Err(why) => eprintln!("tokenusage: {}: {why}", root.display()),
                    }
                }
                Err(error) => eprintln!("tokenusage: {error}"),
            }
            sample
        })
        .collect();
    let text = render(&samples, env!("CARGO_PKG_VERSION"));
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("tokenusage: cannot write the metrics: {error}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(escape_label("/var/www/ct"), "/var/www/ct");
    }

    #[test]
    fn each_family_has_help_and_type_and_one_series_per_installation() {
        let samples = [
            Sample {
                root: "/srv/a/ct".into(),
                domain: "a.example".into(),
                balance: Some((48.7323, 1_700_000_000)),
                up: true,
                runway_seconds: Some(864_000.0),
                spend_24h: vec![("image_search via CTZ-AI".into(), 1.25)],
            },
            Sample {
                root: "/srv/\"b\"/ct".into(),
                domain: String::new(),
                balance: None,
                up: false,
                runway_seconds: None,
                spend_24h: Vec::new(),
            },
        ];
        let text = render(&samples, "0.1.0");
        assert_eq!(
            text,
            "# HELP tokenusage_balance_dollars The credit balance the dashboard shows as Current Balance, in dollars.\n\
             # TYPE tokenusage_balance_dollars gauge\n\
             tokenusage_balance_dollars{root=\"/srv/a/ct\",domain=\"a.example\"} 48.7323\n\
             # HELP tokenusage_last_success_timestamp_seconds When the balance shown was fetched from the license API, in Unix seconds.\n\
             # TYPE tokenusage_last_success_timestamp_seconds gauge\n\
             tokenusage_last_success_timestamp_seconds{root=\"/srv/a/ct\",domain=\"a.example\"} 1700000000\n\
             # HELP tokenusage_up 1 when the balance came from the license API now or from a cache within --max-age.\n\
             # TYPE tokenusage_up gauge\n\
             tokenusage_up{root=\"/srv/a/ct\",domain=\"a.example\"} 1\n\
             tokenusage_up{root=\"/srv/\\\"b\\\"/ct\",domain=\"\"} 0\n\
             # HELP tokenusage_runway_seconds How long the balance lasts at the last 7 days' average spend, in seconds.\n\
             # TYPE tokenusage_runway_seconds gauge\n\
             tokenusage_runway_seconds{root=\"/srv/a/ct\",domain=\"a.example\"} 864000\n\
             # HELP tokenusage_spend_dollars Usage spend of the last 24 hours per service, in dollars.\n\
             # TYPE tokenusage_spend_dollars gauge\n\
             tokenusage_spend_dollars{root=\"/srv/a/ct\",domain=\"a.example\",service=\"image_search via CTZ-AI\"} 1.25\n\
             # HELP tokenusage_build_info The tokenusage version, as a label; always 1.\n\
             # TYPE tokenusage_build_info gauge\n\
             tokenusage_build_info{version=\"0.1.0\"} 1\n"
        );
    }
}
