//! `tokenusage notify`: alerts by email (a sendmail-compatible program) and webhook (a JSON
//! POST with a `text` field, as Slack, Mattermost, Rocket.Chat and Discord's Slack
//! endpoint take) when the balance or the runway crosses a threshold, the license server
//! has failed for too long, or a day was unusual: once when a condition starts, again on
//! an escalation, and once when it ends, never on every run.
//!
//! [`evaluate`], [`compose`] and the message formats are pure. [`run`] reads each
//! installation the way the page does ([`super::read_balance`]), keeps what was alerted
//! in `ct/dat/tokenusage_notify.json` (0600, written atomically, under a lock so two runs
//! at once alert once) and delivers; a state is saved only once every destination took
//! its alerts, so a failed delivery is tried again by the next run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::range::Range;
use super::{Probe, Reading, load_config, read_balance};
use crate::data::cache::{self, Access, FetchLock, local_date};
use crate::data::i18n::Strings;
use crate::data::install::Installation;
use crate::view::locale::Locale;

/// What `tokenusage notify` was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyOptions {
    pub roots: Vec<PathBuf>,
    pub warning: Option<Range>,
    pub critical: Option<Range>,
    pub warning_days: Option<f64>,
    pub critical_days: Option<f64>,
    /// A license server failing longer than this alerts.
    pub stale_after: Duration,
    pub mail_to: Vec<String>,
    /// The sendmail-compatible program and its arguments.
    pub sendmail: String,
    pub webhook: Option<String>,
    /// Print what would be sent; send nothing, change no state.
    pub dry_run: bool,
    /// Send one test alert to each destination.
    pub test: bool,
    /// Each license API call's and each delivery's limit.
    pub timeout: Duration,
    pub account_ttl: Duration,
    pub timezone: Tz,
}

/// How far a condition has gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    #[default]
    Ok,
    Warning,
    Critical,
}

/// What was alerted last, per installation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub balance: Level,
    pub runway: Level,
    pub stale: bool,
    /// Unusual days already alerted (`YYYY-MM-DD`), the most recent 60.
    pub unusual_days: Vec<String>,
}

/// What a run found.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub balance: f64,
    pub balance_level: Level,
    /// Days the balance lasts and when it runs out, when that can be told.
    pub runway: Option<(f64, NaiveDate)>,
    pub runway_level: Level,
    /// Since when the license server has failed, when longer than `--stale-after`.
    pub stale_since: Option<i64>,
    pub unusual: Vec<Unusual>,
}

/// An unusual day, as the insights name it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unusual {
    pub date: NaiveDate,
    pub spend: f64,
    pub normal: f64,
    pub service: String,
}

/// One alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Alert {
    /// The balance's level changed to `to` (up: started or escalated; `Ok`: recovered).
    Balance {
        to: Level,
        balance: f64,
    },
    Runway {
        to: Level,
        days: f64,
        empty_on: Option<NaiveDate>,
    },
    Stale {
        since: Option<i64>,
    },
    Unusual(Unusual),
    Test,
}

impl Alert {
    /// The machine-readable kind and level.
    fn kind(&self) -> (&'static str, &'static str) {
        let level = |l: &Level| match l {
            Level::Ok => "recovered",
            Level::Warning => "warning",
            Level::Critical => "critical",
        };
        match self {
            Alert::Balance { to, .. } => ("balance", level(to)),
            Alert::Runway { to, .. } => ("runway", level(to)),
            Alert::Stale { since: Some(_) } => ("stale", "warning"),
            Alert::Stale { since: None } => ("stale", "recovered"),
            Alert::Unusual(_) => ("unusual", "warning"),
            Alert::Test => ("test", "test"),
        }
    }
}

/// The level a value is at by the thresholds (`check`'s meaning).
pub fn level_of(alerts_critical: bool, alerts_warning: bool) -> Level {
    if alerts_critical {
        Level::Critical
    } else if alerts_warning {
        Level::Warning
    } else {
        Level::Ok
    }
}

/// The alerts a run sends and the state it leaves (pure): a level alerts when it rises
/// (a condition starts or escalates) and when it falls back to OK (recovered); a fall
/// from critical to warning is remembered without an alert, so a new rise alerts again.
pub fn evaluate(previous: &State, now: &Observed) -> (Vec<Alert>, State) {
    let mut alerts = Vec::new();
    let mut next = previous.clone();
    let crossed = |was: Level, is: Level| is > was || (is == Level::Ok && was != Level::Ok);
    if crossed(previous.balance, now.balance_level) {
        alerts.push(Alert::Balance {
            to: now.balance_level,
            balance: now.balance,
        });
    }
    next.balance = now.balance_level;
    if crossed(previous.runway, now.runway_level) {
        alerts.push(Alert::Runway {
            to: now.runway_level,
            days: now.runway.map_or(0.0, |r| r.0),
            empty_on: now.runway.map(|r| r.1),
        });
    }
    next.runway = now.runway_level;
    let stale = now.stale_since.is_some();
    if stale != previous.stale {
        alerts.push(Alert::Stale {
            since: now.stale_since,
        });
    }
    next.stale = stale;
    for day in &now.unusual {
        let date = day.date.to_string();
        if !previous.unusual_days.contains(&date) {
            alerts.push(Alert::Unusual(day.clone()));
            next.unusual_days.push(date);
        }
    }
    next.unusual_days.sort();
    let keep = next.unusual_days.len().saturating_sub(60);
    next.unusual_days.drain(..keep);
    (alerts, next)
}

/// An alert in words, in the installation's language.
pub fn text(alert: &Alert, strings: &Strings, locale: &Locale, today: NaiveDate) -> String {
    let money = |x: f64| locale.money(x);
    match alert {
        Alert::Balance { to, balance } => {
            let key = match to {
                Level::Ok => "token_usage_alert_balance_recovered",
                Level::Warning => "token_usage_alert_balance_warning",
                Level::Critical => "token_usage_alert_balance_critical",
            };
            strings.get(key).replace("{balance}", &money(*balance))
        }
        Alert::Runway { to, days, empty_on } => {
            let key = match to {
                Level::Ok => "token_usage_alert_runway_recovered",
                Level::Warning => "token_usage_alert_runway_warning",
                Level::Critical => "token_usage_alert_runway_critical",
            };
            let text = strings.get(key);
            match (empty_on, *to == Level::Ok) {
                (Some(date), false) => {
                    let detail = runway_words(*days, *date, strings, locale, today);
                    format!("{text}: {detail}")
                }
                _ => text.to_string(),
            }
        }
        Alert::Stale { since: Some(since) } => {
            let at = chrono::DateTime::from_timestamp(*since, 0)
                .map(|t| t.naive_utc())
                .unwrap_or_default();
            strings
                .get("token_usage_alert_stale")
                .replace("{date}", &locale.date_time(at, today))
        }
        Alert::Stale { since: None } => strings.get("token_usage_alert_stale_recovered").into(),
        Alert::Unusual(day) => strings
            .get("token_usage_alert_unusual")
            .replace("{date}", &locale.date(day.date, today))
            .replace("{spend}", &money(day.spend))
            .replace("{normal}", &money(day.normal))
            .replace("{service}", &day.service),
        Alert::Test => strings.get("token_usage_alert_test").into(),
    }
}

/// "about 2 days left, until Nov 29", in the language.
fn runway_words(
    days: f64,
    empty_on: NaiveDate,
    strings: &Strings,
    locale: &Locale,
    today: NaiveDate,
) -> String {
    let count = days.round().max(0.0) as u64;
    strings
        .plural("token_usage_alert_runway", count)
        .replace("{count}", &locale.count(count))
        .replace("{date}", &locale.date(empty_on, today))
}

/// One message: its subject, text, HTML and webhook JSON (pure).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub json: serde_json::Value,
}

/// The message of one alert for an installation.
pub fn compose(
    alert: &Alert,
    domain: &str,
    observed: Option<&Observed>,
    strings: &Strings,
    today: NaiveDate,
) -> Message {
    let locale = Locale::of(strings.language());
    let mut line = text(alert, strings, locale, today);
    // A low balance says how long it lasts, when that can be told.
    if let (Alert::Balance { to, .. }, Some((days, empty_on))) =
        (alert, observed.and_then(|seen| seen.runway))
    {
        if *to != Level::Ok {
            let runway = runway_words(days, empty_on, strings, locale, today);
            line = format!("{line}, {runway}");
        }
    }
    let footer = strings
        .get("token_usage_alert_footer")
        .replace("{domain}", domain);
    let subject = format!("[{domain}] {line}");
    let (kind, level) = alert.kind();
    let mut json = json!({
        "text": chat_text(&subject),
        "domain": domain,
        "kind": kind,
        "level": level,
    });
    if let Some(seen) = observed {
        json["balance"] = json!(seen.balance);
        json["runway_days"] = json!(seen.runway.map(|r| r.0));
        json["empty_on"] = json!(seen.runway.map(|r| r.1.to_string()));
    }
    if let Alert::Unusual(day) = alert {
        json["date"] = json!(day.date.to_string());
        json["spend"] = json!(day.spend);
        json["normal"] = json!(day.normal);
        json["service"] = json!(day.service);
    }
    let html = format!(
        "<!DOCTYPE html><html lang=\"{}\" dir=\"{}\"><body><p><strong>{}</strong></p><p>{}</p></body></html>",
        strings.language(),
        strings.dir(),
        escape(&line),
        escape(&footer)
    );
    Message {
        subject,
        text: format!("{line}\n\n-- \n{footer}\n"),
        html,
        json,
    }
}

/// The `text` of a chat message: Slack's and Mattermost's three escapes, and every `@`
/// followed by a zero-width space, so no text from the license server can mention
/// `@channel`/`@everyone` or form a link of its own.
fn chat_text(text: &str) -> String {
    escape_amp_lt_gt(text).replace('@', "@\u{200b}")
}

fn escape_amp_lt_gt(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn escape(text: &str) -> String {
    escape_amp_lt_gt(text).replace('"', "&quot;")
}

/// The email: headers, then a plain text part and an HTML part (pure).
pub fn email(message: &Message, to: &[String], boundary: &str) -> String {
    // A subject outside ASCII goes as an RFC 2047 encoded word.
    let subject = if message.subject.is_ascii() {
        message.subject.clone()
    } else {
        format!("=?UTF-8?B?{}?=", base64(message.subject.as_bytes()))
    };
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    format!(
        "To: {}\r\nSubject: {}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n\
         --{boundary}\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n\
         --{boundary}--\r\n",
        clean(&to.join(", ")),
        clean(&subject),
        message.text.replace('\n', "\r\n"),
        message.html
    )
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A webhook URL as logs may show it: scheme and host, never the secret path.
pub fn shown_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = host.rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{host}/…")
        }
        None => "the webhook".into(),
    }
}

/// Delivers a message to every destination; the first failure, in words.
fn deliver(message: &Message, options: &NotifyOptions) -> Result<(), String> {
    if !options.mail_to.is_empty() {
        // Random, so no text in the message can close a part.
        let boundary = format!("tokenusage-{:032x}", rand::random::<u128>());
        send_mail(&email(message, &options.mail_to, &boundary), options)?;
    }
    if let Some(url) = &options.webhook {
        post(url, &message.json, options.timeout)
            .map_err(|why| format!("webhook {}: {why}", shown_url(url)))?;
    }
    Ok(())
}

fn send_mail(mail: &str, options: &NotifyOptions) -> Result<(), String> {
    let mut words = options.sendmail.split_whitespace();
    let program = words.next().ok_or("--sendmail is empty")?;
    let mut child = Command::new(program)
        .args(words)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(mail.as_bytes())
            .map_err(|e| format!("{program}: {e}"))?;
    }
    let deadline = Instant::now() + options.timeout;
    loop {
        match child.try_wait().map_err(|e| format!("{program}: {e}"))? {
            Some(status) if status.success() => return Ok(()),
            Some(status) => return Err(format!("{program} exited with {status}")),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program} did not finish within {:?}",
                    options.timeout
                ));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn post(url: &str, body: &serde_json::Value, timeout: Duration) -> Result<(), String> {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .build()
        .new_agent();
    let response = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("answered HTTP {status}"))
    }
}

/// What one installation's reading says, by the options' thresholds.
fn observe(reading: &Reading, options: &NotifyOptions, now: i64) -> Observed {
    let alerts = |r: &Option<Range>| r.as_ref().is_some_and(|r| r.alerts(reading.balance));
    let insights = reading.insights.as_ref().ok();
    let runway = insights
        .and_then(|i| i.runway.as_ref())
        .map(|r| (r.days, r.empty_on));
    let below =
        |limit: Option<f64>| runway.is_some_and(|(days, _)| limit.is_some_and(|l| days < l));
    let stale_since = (reading.from_cache && reading.failure.is_some())
        .then_some(reading.fetched_at)
        .filter(|at| now - at > options.stale_after.as_secs() as i64);
    Observed {
        balance: reading.balance,
        balance_level: level_of(alerts(&options.critical), alerts(&options.warning)),
        runway,
        runway_level: level_of(below(options.critical_days), below(options.warning_days)),
        stale_since,
        unusual: insights
            .map(|i| {
                i.unusual
                    .iter()
                    .map(|u| Unusual {
                        date: u.date,
                        spend: u.spend,
                        normal: u.normal,
                        // The server's text, without what could end a header line.
                        service: u.service.chars().filter(|c| !c.is_control()).collect(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn state_path(root: &Path) -> PathBuf {
    Installation::new(root).dat().join("tokenusage_notify.json")
}

fn read_state(path: &Path) -> State {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Runs for each installation; returns the exit code: 0 when every run ended (alerted
/// or not), 1 when an alert could not be delivered or an installation could not be read.
pub fn run(options: &NotifyOptions, out: &mut dyn Write) -> u8 {
    if !options.dry_run && options.mail_to.is_empty() && options.webhook.is_none() {
        eprintln!("tokenusage: notify: nowhere to send alerts: give --mail-to or --webhook");
        return 2;
    }
    let now = chrono::Utc::now().timestamp();
    let probe = Probe::new(options.timeout, options.account_ttl, now, options.timezone);
    let mut code = 0;
    for root in &options.roots {
        if let Err(why) = notify_one(root, options, &probe, out) {
            eprintln!("tokenusage: notify: {}: {why}", root.display());
            code = 1;
        }
    }
    code
}

fn notify_one(
    root: &Path,
    options: &NotifyOptions,
    probe: &Probe,
    out: &mut dyn Write,
) -> Result<(), String> {
    let config = load_config(root, options.timezone).map_err(|e| format!("config: {e}"))?;
    let today = local_date(probe.now, config.timezone);
    let domain = config.credentials.domain.clone();
    if options.test {
        let message = compose(&Alert::Test, &domain, None, &config.strings, today);
        return send(&message, options, out);
    }
    // One run at a time per installation: a second waits, then finds the state updated.
    let state_file = state_path(root);
    let lock_path = state_file.with_file_name(".tokenusage_notify.lock");
    let _lock = FetchLock::acquire(&lock_path, options.timeout * 4)
        .ok_or("another notify run holds the lock")?;
    let reading = read_balance(root, config.clone(), probe)?;
    let observed = observe(&reading, options, probe.now);
    let previous = read_state(&state_file);
    let (alerts, next) = evaluate(&previous, &observed);
    for alert in &alerts {
        let message = compose(alert, &domain, Some(&observed), &config.strings, today);
        send(&message, options, out)?;
    }
    if options.dry_run || next == previous {
        return Ok(());
    }
    save_state(&state_file, &next)
}

fn send(message: &Message, options: &NotifyOptions, out: &mut dyn Write) -> Result<(), String> {
    if options.dry_run {
        let _ = writeln!(out, "would send: {}", message.subject);
        return Ok(());
    }
    deliver(message, options)?;
    let _ = writeln!(out, "sent: {}", message.subject);
    Ok(())
}

fn save_state(path: &Path, state: &State) -> Result<(), String> {
    let bytes = serde_json::to_vec(state).map_err(|e| e.to_string())?;
    cache::write_atomically(path, &bytes, Access::Private)
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(balance: f64, level: Level) -> Observed {
        Observed {
            balance,
            balance_level: level,
            runway: None,
            runway_level: Level::Ok,
            stale_since: None,
            unusual: Vec::new(),
        }
    }

    #[test]
    fn a_crossing_alerts_once_an_escalation_again_and_the_end_once() {
        use Level::*;
        let runs = [
            (48.0, Ok),
            (3.0, Warning),
            (3.0, Warning),
            (0.5, Critical),
            (48.0, Ok),
            (3.0, Warning),
        ];
        let mut state = State::default();
        let mut sent = Vec::new();
        for (balance, level) in runs {
            let (alerts, next) = evaluate(&state, &seen(balance, level));
            sent.push(
                alerts
                    .iter()
                    .map(|a| a.kind().1)
                    .collect::<Vec<_>>()
                    .join(","),
            );
            state = next;
        }
        assert_eq!(
            sent,
            ["", "warning", "", "critical", "recovered", "warning"]
        );
    }

    #[test]
    fn a_fall_from_critical_to_warning_is_quiet_and_a_new_rise_alerts() {
        let state = State {
            balance: Level::Critical,
            ..State::default()
        };
        let (alerts, state) = evaluate(&state, &seen(3.0, Level::Warning));
        assert!(alerts.is_empty());
        let (alerts, _) = evaluate(&state, &seen(0.5, Level::Critical));
        assert_eq!(alerts.len(), 1);
    }

    #[test]
    fn an_unusual_day_alerts_once_and_a_stale_server_when_it_starts_and_ends() {
        let day = Unusual {
            date: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
            spend: 5.0,
            normal: 1.0,
            service: "image_search via CTZ-AI".into(),
        };
        let mut now = seen(20.0, Level::Ok);
        now.unusual = vec![day];
        now.stale_since = Some(1);
        let (alerts, state) = evaluate(&State::default(), &now);
        assert_eq!(alerts.len(), 2);
        let (alerts, state) = evaluate(&state, &now);
        assert!(alerts.is_empty(), "{alerts:?}");
        now.stale_since = None;
        let (alerts, _) = evaluate(&state, &now);
        assert_eq!(alerts, [Alert::Stale { since: None }]);
    }

    #[test]
    fn messages_name_the_domain_and_figures_in_the_installations_language() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let observed = seen(3.0, Level::Warning);
        let alert = Alert::Balance {
            to: Level::Warning,
            balance: 3.0,
        };
        let message = compose(
            &alert,
            "example.com",
            Some(&observed),
            &Strings::english(),
            today,
        );
        assert_eq!(message.subject, "[example.com] Credits low: $3.00 left");
        let lasting = Observed {
            runway: Some((2.2, NaiveDate::from_ymd_opt(2026, 11, 29).unwrap())),
            ..observed.clone()
        };
        let with_runway = compose(
            &alert,
            "example.com",
            Some(&lasting),
            &Strings::english(),
            today,
        );
        assert_eq!(
            with_runway.subject,
            "[example.com] Credits low: $3.00 left, about 2 days left, until Nov 29"
        );
        assert_eq!(message.json["text"], message.subject.as_str());
        assert_eq!(
            chat_text("<!channel> @everyone & <https://x|y>"),
            "&lt;!channel&gt; @\u{200b}everyone &amp; &lt;https://x|y&gt;"
        );
        assert_eq!(message.json["level"], "warning");
        assert_eq!(message.json["balance"], 3.0);
        let mail = email(&message, &["admin@example.com".into()], "b");
        assert!(mail.starts_with("To: admin@example.com\r\nSubject: [example.com] Credits low"));
        assert!(mail.contains("Content-Type: text/html; charset=UTF-8"));
        let german = compose(&alert, "example.com", None, &Strings::built_in("de"), today);
        assert!(german.subject.contains("3,00"), "{}", german.subject);
        let encoded = email(&german, &["a@b".into()], "b");
        assert!(encoded.contains("Subject: =?UTF-8?B?") || german.subject.is_ascii());
    }

    #[test]
    fn a_webhook_url_is_shown_without_its_secret_path() {
        assert_eq!(
            shown_url("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            shown_url("http://user:pw@127.0.0.1:9/x?y"),
            "http://127.0.0.1:9/…"
        );
    }

    #[test]
    fn base64_encodes_as_rfc_4648() {
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
    }
}
