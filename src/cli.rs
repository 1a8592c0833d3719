//! Command-line options, each also read from the environment as `TOKENUSAGE_` plus its
//! name in capitals (`--socket-mode` -> `TOKENUSAGE_SOCKET_MODE`), because a CGI program
//! gets no arguments it may trust: a CGI request reads the environment alone
//! ([`cgi_request`]). Pure: the environment is passed in as a lookup function.

use std::num::ParseIntError;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::auth::AuthOptions;

/// What the binary was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// No subcommand: FastCGI on a socket passed as fd 0.
    Auto,
    /// `fcgi`: FastCGI on `--listen` (or fd 0).
    Fcgi,
    /// Answer one CGI request: `cgi`, or any start with `GATEWAY_INTERFACE` set.
    Cgi,
    /// `demo`: the sample API plus a local HTTP preview.
    Demo,
    /// `sample-api ...`: its own options follow.
    SampleApi(Vec<String>),
    /// `session-keys --session-id ID` or `session-keys PATH`: list a session's keys.
    SessionKeys(SessionTarget),
    Help,
    Version,
}

/// Which session file `session-keys` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionTarget {
    Id(String),
    Path(PathBuf),
}

/// Options after the first check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub command: Command,
    pub listen: Option<String>,
    pub socket_mode: u32,
    pub workers: usize,
    pub root: Option<PathBuf>,
    pub templates: Option<PathBuf>,
    /// The demo's preview address.
    pub demo_listen: String,
    pub demo_transactions: usize,
    pub auth: AuthOptions,
    /// The longest one license API call may take (the PHP page's max_execution_time).
    pub api_timeout: Duration,
    pub api_connect_timeout: Duration,
    /// Open FastCGI connections at most.
    pub max_connections: usize,
    /// Longest a FastCGI request's records may take, whole.
    pub request_timeout: Duration,
    /// Longest a kept-alive FastCGI connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Longest writing one response may take (zero: no limit).
    pub write_timeout: Duration,
    /// How long a view with older data on hand waits for the license server.
    pub api_patience: Duration,
    /// How long views do not call again after a failed or timed-out call.
    pub api_retry_after: Duration,
    /// How long user/info and user/stats answers are reused (0: call on every view).
    pub account_cache: Duration,
    /// Megabytes of parsed histories kept in memory across installations.
    pub memory_budget_mb: usize,
}

/// The options that take a value, in `--name` form.
const VALUE_OPTIONS: [&str; 23] = [
    "max-connections",
    "request-timeout",
    "idle-timeout",
    "write-timeout",
    "api-patience",
    "api-retry-after",
    "memory-budget-mb",
    "account-cache-seconds",
    "api-timeout",
    "api-connect-timeout",
    "listen",
    "socket-mode",
    "workers",
    "root",
    "templates",
    "transactions",
    "auth",
    "session-name",
    "session-path",
    "session-key",
    "session-max-lifetime",
    "delegate-url",
    "delegate-cache-seconds",
];

pub const USAGE: &str = "\
tokenusage: the Token & Credit Usage Dashboard (ct/admin/tokenusage.php) over FastCGI or CGI

Usage:
  tokenusage                     FastCGI on a listening socket passed as fd 0, or one CGI
                                 request when GATEWAY_INTERFACE is set
  tokenusage fcgi --listen unix:/run/tokenusage.sock | 127.0.0.1:9000
  tokenusage cgi                 answer one CGI request (as with GATEWAY_INTERFACE set,
                                 options come only from TOKENUSAGE_* variables)
  tokenusage demo [--listen 127.0.0.1:8780] [--transactions N]
                                 the sample license API and a local preview of ct/
  tokenusage sample-api --listen 127.0.0.1:8781 [--transactions N] [--balance X]
                        [--delay-ms N] [--hostile]
  tokenusage session-keys --session-id ID | PATH
                                 list the keys of a PHP session (values hidden), to find
                                 the one that marks an admin's login

Options (each also read from TOKENUSAGE_<NAME>, e.g. TOKENUSAGE_ROOT):
  --listen SPEC        unix:/path.sock or HOST:PORT to bind
  --socket-mode MODE   permissions of a unix socket we create (octal, default 0660)
  --workers N          worker threads: requests handled at once (default 16)
  --max-connections N  open FastCGI connections at most (default 1024, lowered to fit
                       the open-file limit); past it the longest-silent idle one closes
  --request-timeout SECONDS  a request's records (BEGIN_REQUEST to the end of STDIN)
                       are due whole within this (default 10)
  --idle-timeout SECONDS     a kept-alive FastCGI connection may wait this long for its
                       next request (default 75, longer than nginx's keepalive_timeout)
  --write-timeout SECONDS    writing one response may take this long in all (default
                       30; 0: no limit)
  --root DIR           the installation's ct folder, instead of finding it per request
                       from SCRIPT_FILENAME (.../ct/admin/tokenusage.php -> .../ct)
  --templates DIR      templates overriding the embedded ones
  --api-timeout SECONDS          longest license API call (default 30)
  --api-connect-timeout SECONDS  longest connect to the license API (default 10)
  --api-patience SECONDS         how long a view with older data on hand waits for the
                                 license API before showing that data (default 2; the
                                 call goes on and its answer is kept for the next view)
  --api-retry-after SECONDS      after a failed or timed-out call, views show older data
                                 without calling again this long (default 30; 0: off;
                                 Refresh Data always calls)
  --memory-budget-mb N           parsed histories kept in memory, all installations
                                 together (default 48; least recently used go first)
  --account-cache-seconds N      reuse user/info and user/stats answers this long
                                 (default 30; 0: call on every view; the footer says
                                 which, and Refresh Data always calls)

Admin check (deny by default):
  --auth MODE          php-session (default), delegate, web-server or none
  --session-key KEY[=VALUE]
                       the $_SESSION entry that marks a logged-in admin (php-session)
  --session-name NAME  the session cookie (default PHPSESSID)
  --session-path PATH  PHP's session.save_path, also N;/path and N;MODE;/path
                       (default /var/lib/php/sessions)
  --session-max-lifetime SECONDS
                       older session files are expired (default 1440, PHP's default)
  --delegate-url URL   the admin panel on loopback, asked with the browser's cookies
  --delegate-cache-seconds N
                       how long a delegate answer is remembered (default 30)
  -h, --help           this text
  -V, --version        the version
";

/// The most characters of ignored arguments a log line shows.
const MAX_LOGGED_CHARS: usize = 200;

/// Decides whether this process answers a CGI request: `GATEWAY_INTERFACE` is set
/// (whatever the arguments say) or the first argument is `cgi`. If so, returns the
/// arguments it must ignore (all but that `cgi`): Apache's mod_cgi passes a query string
/// without `=` as arguments, split at `+` (RFC 3875 4.4; PHP-CGI's CVE-2012-1823), so
/// they are a visitor's words, and `?--auth+none` or `?fcgi+--listen+...` must change
/// nothing. Options then come from [`parse_cgi`].
pub fn cgi_request(args: &[String], gateway_interface: bool) -> Option<&[String]> {
    match args.first().map(String::as_str) {
        Some("cgi") => Some(&args[1..]),
        _ if gateway_interface => Some(args),
        _ => None,
    }
}

/// The options of a CGI request: from the environment alone (`SetEnv TOKENUSAGE_...`).
pub fn parse_cgi(env: &dyn Fn(&str) -> Option<String>) -> Result<Args, String> {
    let mut parsed = parse(&[], env)?;
    parsed.command = Command::Cgi;
    Ok(parsed)
}

/// The one log line naming the arguments a CGI request ignored, `None` when there are
/// none. They may be a visitor's: control characters become `?` (no forged log lines)
/// and the list is cut at [`MAX_LOGGED_CHARS`].
pub fn ignored_arguments_note(ignored: &[String]) -> Option<String> {
    if ignored.is_empty() {
        return None;
    }
    let quoted: Vec<String> = ignored.iter().map(|arg| format!("\"{arg}\"")).collect();
    let joined = quoted.join(" ");
    let mut shown: String = joined
        .chars()
        .take(MAX_LOGGED_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if joined.chars().count() > MAX_LOGGED_CHARS {
        shown.push_str(" ...");
    }
    Some(format!(
        "CGI request: {} command-line argument(s) ignored, options come only from \
         TOKENUSAGE_* variables: {shown}",
        ignored.len()
    ))
}

/// Parses the arguments (without the program name) of a start that is not a CGI request
/// (see [`cgi_request`]); `env` looks up an environment variable.
pub fn parse(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<Args, String> {
    let (command, rest) = match args.first().map(String::as_str) {
        Some("fcgi") => (Command::Fcgi, &args[1..]),
        // Its arguments are a visitor's, never options (see `cgi_request`).
        Some("cgi") => return parse_cgi(env),
        Some("demo") => (Command::Demo, &args[1..]),
        Some("sample-api") => return Ok(with_command(Command::SampleApi(args[1..].to_vec()))),
        Some("session-keys") => return session_keys(&args[1..], env),
        Some("-h" | "--help" | "help") => return Ok(with_command(Command::Help)),
        Some("-V" | "--version") => return Ok(with_command(Command::Version)),
        _ => (Command::Auto, args),
    };
    let mut given: Vec<(&str, String)> = Vec::new();
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        let Some(name) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument {arg:?} (see --help)"));
        };
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (name, None),
        };
        let Some(known) = VALUE_OPTIONS.iter().find(|o| **o == name) else {
            return Err(format!("unknown option --{name} (see --help)"));
        };
        let value = match inline {
            Some(v) => v,
            None => iter
                .next()
                .cloned()
                .ok_or_else(|| format!("--{name} needs a value"))?,
        };
        given.push((known, value));
    }
    let lookup = |name: &str| -> Option<String> {
        given
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .or_else(|| env(&env_name(name)).filter(|v| !v.is_empty()))
    };
    let mut parsed = with_command(command);
    let listen = lookup("listen");
    if parsed.command == Command::Demo {
        if let Some(listen) = listen {
            parsed.demo_listen = listen;
        }
    } else {
        parsed.listen = listen;
    }
    if let Some(mode) = lookup("socket-mode") {
        let valid = |mode: &OctalMode| mode.0 <= 0o777;
        parsed.socket_mode = number("socket-mode", &mode, valid, "an octal mode like 0660")?.0;
    }
    if let Some(workers) = lookup("workers") {
        let valid = |n: &usize| (1..=1024).contains(n);
        parsed.workers = number("workers", &workers, valid, "a number from 1 to 1024")?;
    }
    if let Some(count) = lookup("transactions") {
        let valid = |n: &usize| *n <= 1_000_000;
        parsed.demo_transactions = number("transactions", &count, valid, "a number up to 1000000")?;
    }
    parsed.root = lookup("root").map(PathBuf::from);
    parsed.templates = lookup("templates").map(PathBuf::from);
    if let Some(seconds) = lookup("api-timeout") {
        parsed.api_timeout = seconds_option("api-timeout", &seconds)?;
    }
    if let Some(mb) = lookup("memory-budget-mb") {
        let valid = |n: &usize| *n <= 65_536;
        parsed.memory_budget_mb = number("memory-budget-mb", &mb, valid, "a number of megabytes")?;
    }
    if let Some(seconds) = lookup("account-cache-seconds") {
        // 0 is valid: it turns the account cache off.
        let any = |_: &u64| true;
        let seconds = number("account-cache-seconds", &seconds, any, "a number")?;
        parsed.account_cache = Duration::from_secs(seconds);
    }
    if let Some(count) = lookup("max-connections") {
        let valid = |n: &usize| (1..=1_000_000).contains(n);
        parsed.max_connections = number(
            "max-connections",
            &count,
            valid,
            "a number from 1 to 1000000",
        )?;
    }
    if let Some(seconds) = lookup("request-timeout") {
        parsed.request_timeout = seconds_option("request-timeout", &seconds)?;
    }
    if let Some(seconds) = lookup("idle-timeout") {
        parsed.idle_timeout = seconds_option("idle-timeout", &seconds)?;
    }
    if let Some(seconds) = lookup("write-timeout") {
        // 0 is valid: no limit.
        let seconds = number(
            "write-timeout",
            &seconds,
            |_: &u64| true,
            "a number of seconds",
        )?;
        parsed.write_timeout = Duration::from_secs(seconds);
    }
    if let Some(seconds) = lookup("api-patience") {
        // 0 is valid: show older data at once.
        let seconds = number(
            "api-patience",
            &seconds,
            |_: &u64| true,
            "a number of seconds",
        )?;
        parsed.api_patience = Duration::from_secs(seconds);
    }
    if let Some(seconds) = lookup("api-retry-after") {
        let seconds = number(
            "api-retry-after",
            &seconds,
            |_: &u64| true,
            "a number of seconds",
        )?;
        parsed.api_retry_after = Duration::from_secs(seconds);
    }
    if let Some(seconds) = lookup("api-connect-timeout") {
        parsed.api_connect_timeout = seconds_option("api-connect-timeout", &seconds)?;
    }
    let auth = &mut parsed.auth;
    if let Some(mode) = lookup("auth") {
        auth.mode = mode;
    }
    if let Some(name) = lookup("session-name") {
        auth.session_name = name;
    }
    if let Some(path) = lookup("session-path") {
        auth.session_path = path;
    }
    auth.session_key = lookup("session-key");
    if let Some(seconds) = lookup("session-max-lifetime") {
        auth.session_max_lifetime = seconds_option("session-max-lifetime", &seconds)?;
    }
    auth.delegate_url = lookup("delegate-url");
    if let Some(seconds) = lookup("delegate-cache-seconds") {
        auth.delegate_cache = seconds_option("delegate-cache-seconds", &seconds)?;
    }
    Ok(parsed)
}

/// A positive number of seconds.
fn seconds_option(name: &str, value: &str) -> Result<Duration, String> {
    number(name, value, |n: &u64| *n > 0, "a number of seconds").map(Duration::from_secs)
}

/// `value` (spaces around it ignored) as a `T` that `valid` accepts, else the message
/// `--NAME "VALUE": not WHAT`.
fn number<T: FromStr>(
    name: &str,
    value: &str,
    valid: impl FnOnce(&T) -> bool,
    what: &str,
) -> Result<T, String> {
    value
        .trim()
        .parse()
        .ok()
        .filter(valid)
        .ok_or_else(|| format!("--{name} {value:?}: not {what}"))
}

/// A permission mode in octal, with or without `0o`: `0660`, `0o600`.
struct OctalMode(u32);

impl FromStr for OctalMode {
    type Err = ParseIntError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        u32::from_str_radix(text.trim_start_matches("0o"), 8).map(OctalMode)
    }
}

/// `session-keys --session-id ID [--session-path P]` or `session-keys PATH`.
fn session_keys(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<Args, String> {
    let mut parsed = with_command(Command::Help);
    if let Some(path) = env(&env_name("session-path")).filter(|p| !p.is_empty()) {
        parsed.auth.session_path = path;
    }
    let mut target = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--session-id" => target = iter.next().map(|id| SessionTarget::Id(id.clone())),
            "--session-path" => {
                parsed.auth.session_path =
                    iter.next().cloned().ok_or("--session-path needs a value")?;
            }
            path if !path.starts_with("--") => target = Some(SessionTarget::Path(path.into())),
            other => return Err(format!("session-keys: unknown option {other}")),
        }
    }
    let target = target.ok_or("session-keys needs --session-id ID or a session file's path")?;
    parsed.command = Command::SessionKeys(target);
    Ok(parsed)
}

fn with_command(command: Command) -> Args {
    Args {
        command,
        listen: None,
        socket_mode: 0o660,
        workers: 16,
        root: None,
        templates: None,
        demo_listen: "127.0.0.1:8780".into(),
        demo_transactions: 10_000,
        auth: AuthOptions::default(),
        api_timeout: Duration::from_secs(30),
        api_connect_timeout: Duration::from_secs(10),
        max_connections: 1024,
        request_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(75),
        write_timeout: Duration::from_secs(30),
        api_patience: Duration::from_secs(2),
        api_retry_after: Duration::from_secs(30),
        account_cache: Duration::from_secs(30),
        memory_budget_mb: 48,
    }
}

/// `socket-mode` -> `TOKENUSAGE_SOCKET_MODE`.
pub fn env_name(option: &str) -> String {
    format!(
        "TOKENUSAGE_{}",
        option.to_ascii_uppercase().replace('-', "_")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_arguments_picks_the_transport_automatically() {
        let parsed = parse(&[], &no_env).unwrap();
        assert_eq!(parsed.command, Command::Auto);
        assert_eq!(parsed.socket_mode, 0o660);
    }

    #[test]
    fn fcgi_takes_listen_mode_and_root() {
        let parsed = parse(
            &args(&[
                "fcgi",
                "--listen",
                "unix:/tmp/t.sock",
                "--socket-mode=0600",
                "--root",
                "/srv/ct",
            ]),
            &no_env,
        )
        .unwrap();
        assert_eq!(parsed.command, Command::Fcgi);
        assert_eq!(parsed.listen.as_deref(), Some("unix:/tmp/t.sock"));
        assert_eq!(parsed.socket_mode, 0o600);
        assert_eq!(parsed.root, Some(PathBuf::from("/srv/ct")));
    }

    #[test]
    fn options_come_from_the_environment_when_not_given() {
        let env = |name: &str| (name == "TOKENUSAGE_ROOT").then(|| "/env/ct".to_string());
        assert_eq!(
            parse(&[], &env).unwrap().root,
            Some(PathBuf::from("/env/ct"))
        );
        let given = parse(&args(&["--root", "/arg/ct"]), &env).unwrap();
        assert_eq!(given.root, Some(PathBuf::from("/arg/ct")));
    }

    #[test]
    fn bad_options_say_what_is_wrong() {
        assert!(
            parse(&args(&["--bogus"]), &no_env)
                .unwrap_err()
                .contains("--bogus")
        );
        assert!(
            parse(&args(&["--socket-mode", "999"]), &no_env)
                .unwrap_err()
                .contains("octal")
        );
        assert!(
            parse(&args(&["--workers", "0"]), &no_env)
                .unwrap_err()
                .contains("1 to 1024")
        );
        assert!(
            parse(&args(&["--listen"]), &no_env)
                .unwrap_err()
                .contains("needs a value")
        );
        assert_eq!(
            parse(&args(&["--api-timeout", "0"]), &no_env).unwrap_err(),
            "--api-timeout \"0\": not a number of seconds"
        );
    }

    #[test]
    fn numbers_may_have_spaces_around_them_and_modes_a_0o_prefix() {
        let parsed = parse(
            &args(&["--workers", " 4 ", "--socket-mode", "0o600"]),
            &no_env,
        )
        .unwrap();
        assert_eq!(parsed.workers, 4);
        assert_eq!(parsed.socket_mode, 0o600);
        let env =
            |name: &str| (name == "TOKENUSAGE_ACCOUNT_CACHE_SECONDS").then(|| "0".to_string());
        assert_eq!(parse(&[], &env).unwrap().account_cache, Duration::ZERO);
    }

    #[test]
    fn auth_options_come_from_arguments_or_the_environment() {
        let env = |name: &str| match name {
            "TOKENUSAGE_AUTH" => Some("php-session".to_string()),
            "TOKENUSAGE_SESSION_KEY" => Some("admin_logged_in".to_string()),
            "TOKENUSAGE_SESSION_PATH" => Some("2;/var/lib/php/sessions".to_string()),
            _ => None,
        };
        let parsed = parse(&args(&["fcgi", "--session-name", "CTSESS"]), &env).unwrap();
        assert_eq!(parsed.auth.mode, "php-session");
        assert_eq!(parsed.auth.session_key.as_deref(), Some("admin_logged_in"));
        assert_eq!(parsed.auth.session_path, "2;/var/lib/php/sessions");
        assert_eq!(parsed.auth.session_name, "CTSESS");
    }

    #[test]
    fn session_keys_takes_an_id_or_a_path() {
        let parsed = parse(&args(&["session-keys", "--session-id", "abc"]), &no_env).unwrap();
        assert_eq!(
            parsed.command,
            Command::SessionKeys(SessionTarget::Id("abc".into()))
        );
        let parsed = parse(&args(&["session-keys", "/tmp/sess_abc"]), &no_env).unwrap();
        assert_eq!(
            parsed.command,
            Command::SessionKeys(SessionTarget::Path("/tmp/sess_abc".into()))
        );
        assert!(parse(&args(&["session-keys"]), &no_env).is_err());
    }

    #[test]
    fn with_gateway_interface_set_every_argument_is_ignored_whatever_it_says() {
        for list in [
            &["--auth", "none"][..],
            &["fcgi", "--listen", "127.0.0.1:9000", "--auth", "none"],
            &["demo", "--listen", "127.0.0.1:8780"],
            &["sample-api", "--listen", "127.0.0.1:8781"],
            &["session-keys", "/etc/shadow"],
            &["--help"],
            &["-V"],
        ] {
            let given = args(list);
            assert_eq!(cgi_request(&given, true), Some(&given[..]), "{list:?}");
        }
        assert_eq!(cgi_request(&[], true), Some(&[][..]));
    }

    #[test]
    fn the_cgi_subcommand_is_a_cgi_request_and_ignores_what_follows_it() {
        let given = args(&["cgi", "--auth", "none"]);
        assert_eq!(cgi_request(&given, false), Some(&given[1..]));
        assert_eq!(cgi_request(&given, true), Some(&given[1..]));
        let parsed = parse(&given, &no_env).unwrap();
        assert_eq!(parsed.command, Command::Cgi);
        assert_eq!(parsed.auth.mode, "php-session");
    }

    #[test]
    fn without_gateway_interface_the_command_line_counts() {
        assert_eq!(cgi_request(&[], false), None);
        assert_eq!(cgi_request(&args(&["fcgi", "--auth", "none"]), false), None);
        assert_eq!(cgi_request(&args(&["--listen", "cgi"]), false), None);
    }

    #[test]
    fn a_cgi_request_takes_its_options_from_the_environment_alone() {
        let env = |name: &str| match name {
            "TOKENUSAGE_AUTH" => Some("web-server".to_string()),
            "TOKENUSAGE_ROOT" => Some("/var/www/site/ct".to_string()),
            "TOKENUSAGE_LISTEN" => Some("127.0.0.1:9000".to_string()),
            _ => None,
        };
        let parsed = parse_cgi(&env).unwrap();
        assert_eq!(parsed.command, Command::Cgi);
        assert_eq!(parsed.auth.mode, "web-server");
        assert_eq!(parsed.root, Some(PathBuf::from("/var/www/site/ct")));
        let bad = |name: &str| (name == "TOKENUSAGE_WORKERS").then(|| "0".to_string());
        assert!(parse_cgi(&bad).unwrap_err().contains("--workers"));
    }

    #[test]
    fn ignored_arguments_are_noted_on_one_short_line_without_control_characters() {
        assert_eq!(ignored_arguments_note(&[]), None);
        let note = ignored_arguments_note(&args(&["--auth", "none"])).unwrap();
        assert_eq!(
            note,
            "CGI request: 2 command-line argument(s) ignored, options come only from \
             TOKENUSAGE_* variables: \"--auth\" \"none\""
        );
        let forged = "x\n[error] forged line\r\u{1b}[31m\u{7f}";
        let long = "a".repeat(10_000);
        let note = ignored_arguments_note(&args(&[forged, &long])).unwrap();
        assert!(!note.chars().any(char::is_control), "{note:?}");
        assert!(note.contains("x?[error] forged line??[31m?"), "{note}");
        assert!(note.len() < 400 && note.ends_with(" ..."), "{note}");
    }

    #[test]
    fn connection_and_patience_limits_come_from_arguments_or_the_environment() {
        let defaults = parse(&[], &no_env).unwrap();
        assert_eq!(defaults.max_connections, 1024);
        assert_eq!(defaults.request_timeout, Duration::from_secs(10));
        assert_eq!(defaults.idle_timeout, Duration::from_secs(75));
        assert_eq!(defaults.api_patience, Duration::from_secs(2));
        assert_eq!(defaults.api_retry_after, Duration::from_secs(30));
        let env = |name: &str| (name == "TOKENUSAGE_IDLE_TIMEOUT").then(|| "60".to_string());
        let parsed = parse(
            &args(&[
                "fcgi",
                "--max-connections",
                "256",
                "--request-timeout=5",
                "--write-timeout",
                "0",
                "--api-patience",
                "0",
                "--api-retry-after",
                "10",
            ]),
            &env,
        )
        .unwrap();
        assert_eq!(parsed.max_connections, 256);
        assert_eq!(parsed.request_timeout, Duration::from_secs(5));
        assert_eq!(parsed.idle_timeout, Duration::from_secs(60));
        assert_eq!(parsed.write_timeout, Duration::ZERO);
        assert_eq!(parsed.api_patience, Duration::ZERO);
        assert_eq!(parsed.api_retry_after, Duration::from_secs(10));
        assert!(
            parse(&args(&["--max-connections", "0"]), &no_env)
                .unwrap_err()
                .contains("1 to 1000000")
        );
        assert!(parse(&args(&["--request-timeout", "0"]), &no_env).is_err());
    }

    #[test]
    fn env_names_are_capitals_with_underscores() {
        assert_eq!(env_name("socket-mode"), "TOKENUSAGE_SOCKET_MODE");
    }
}
