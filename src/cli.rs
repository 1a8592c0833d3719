//! The whole command line: the subcommands, their options and the `TOKENUSAGE_*` variables
//! (clap derive, ready for a man page: every command has an about, every option a help).
//!
//! Every option is also read from the environment as `TOKENUSAGE_` plus its name in
//! capitals (`--socket-mode` -> `TOKENUSAGE_SOCKET_MODE`), because a CGI program gets no
//! arguments it may trust: a CGI request reads the environment alone ([`cgi_request`],
//! [`parse_cgi`]). Reads the process environment (clap reads it when the command is
//! built); no other I/O.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono_tz::Tz;
use clap::builder::{
    BoolishValueParser, EnumValueParser, PathBufValueParser, PossibleValuesParser,
    StringValueParser, StyledStr, TypedValueParser,
};
use clap::error::{ContextKind, ContextValue};
use clap::parser::ValueSource;
use clap::{Arg, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::auth::{AuthOptions, DEFAULT_SESSION_NAME, DEFAULT_SESSION_PATH};
use crate::dev::sample_api::{Fault, SampleApiOptions, parse_anchor};
use crate::ops::check::CheckOptions;
use crate::ops::check_config::CheckConfigOptions;
use crate::ops::metrics::MetricsOptions;
use crate::ops::notify::NotifyOptions;
use crate::ops::range::{Range, threshold};
use crate::ops::report::ReportOptions;
use crate::transport::fastcgi::AllowedClients;

/// tokenusage: the Token & Credit Usage Dashboard (ct/admin/tokenusage.php) over FastCGI or
/// CGI
///
/// Without a subcommand it serves FastCGI on the socket systemd passes (LISTEN_FDS, fd 3)
/// or a listening socket on fd 0 (spawn-fcgi, mod_fcgid, StandardInput=socket), or answers
/// one CGI request when GATEWAY_INTERFACE is set.
///
/// Every option is also read from the environment as TOKENUSAGE_ plus its name in
/// capitals, e.g. --socket-mode from TOKENUSAGE_SOCKET_MODE; the command line wins over
/// the environment, and an empty variable counts as unset. A CGI request (GATEWAY_INTERFACE
/// set, or `tokenusage cgi`) ignores its command line, which a web server may fill from a
/// visitor's query string: its options come only from TOKENUSAGE_* variables.
#[derive(Parser, Debug, Clone, PartialEq)]
#[command(name = "tokenusage", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The options of a start without a subcommand (FastCGI on fd 0, or CGI).
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Check the config, caches and admin check these options give, then exit (as
    /// `check-config`; like `nginx -t`). No environment variable: one left set would make
    /// every start of the server a check instead.
    #[arg(short = 't', long = "test-config")]
    pub test_config: bool,
}

/// What the binary was asked to do; `None` in [`Cli::command`] picks the transport.
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum Command {
    /// FastCGI on --listen, or on the socket systemd or the caller passes
    ///
    /// Serves the dashboard over FastCGI to nginx, Apache (mod_proxy_fcgi) or any FastCGI
    /// client, until SIGTERM or SIGINT.
    Fcgi(ServeArgs),
    /// Answer one CGI request (options only from TOKENUSAGE_* variables)
    ///
    /// Answers the CGI request in the environment, as a start with GATEWAY_INTERFACE set
    /// does. The arguments after `cgi` are ignored (and logged on stderr): a web server
    /// may fill them from a visitor's query string. The options below are read only from
    /// their TOKENUSAGE_* variables (Apache: SetEnv TOKENUSAGE_AUTH php-session).
    Cgi(ServeArgs),
    /// The sample license API and a local preview of ct/ over HTTP
    ///
    /// Serves the sample license API at the address the sample installation's config
    /// names, and the real page over HTTP on loopback, like `php -S`, until SIGINT or
    /// SIGTERM. No admin check: it listens on loopback only.
    Demo(DemoArgs),
    /// The sample license API alone, for tests and benchmarks
    ///
    /// Prints the API's URL on stdout, then answers until SIGTERM or SIGINT.
    SampleApi(SampleApiArgs),
    /// List the keys of a PHP session (values hidden)
    ///
    /// Lists the keys of a PHP session with their types, values hidden, to find the one
    /// that marks an admin's login (for --session-key). Run it as the web server's user.
    SessionKeys(SessionKeysArgs),
    /// Check an installation's config, caches and admin check (`tokenusage -t` too)
    ///
    /// Prints one line per check, `ok` or what to fix: the config file and its license
    /// key, domain and email; the cache folders writable by this user; the admin check's
    /// settings (run it as the web server's user). Exits 0 when all pass, 1 otherwise.
    CheckConfig(CheckConfigArgs),
    /// A monitoring plugin (Icinga, Nagios): the balance against thresholds
    ///
    /// Prints one line, `TOKENUSAGE OK - $48.73 left | balance=48.7323;5:;1:;0;`, and
    /// exits 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (no balance, a cached one past
    /// --max-age, or bad arguments). -w and -c take a plain number N, meaning "alert when
    /// the balance is below N" (the range N:), or a range of the Monitoring Plugins
    /// guidelines: 10:20 alerts outside 10 to 20, @0:5 inside 0 to 5, ~:10 above 10. It
    /// reads and writes the page's caches: a balance the page fetched within
    /// --account-cache-seconds is reused, and when the call fails the last good one is
    /// shown with its age.
    #[command(version)]
    Check(CheckArgs),
    /// Prometheus metrics of one or more installations on stdout
    ///
    /// The text exposition format, for node_exporter's textfile collector:
    /// tokenusage_balance_dollars, tokenusage_last_success_timestamp_seconds, tokenusage_up,
    /// tokenusage_runway_seconds, tokenusage_spend_dollars (per service, last 24 h) and
    /// tokenusage_build_info, labelled by root and domain (never the key or email).
    Metrics(MetricsArgs),
    /// Alerts by email and webhook, once per crossing
    ///
    /// For cron or the package's systemd timer: alerts when the balance or the runway
    /// crosses a threshold (the meanings of `check`), when the license server has failed
    /// longer than --stale-after, or when a day was unusual; once when a condition starts,
    /// again on an escalation, once when it ends. What was alerted is kept in
    /// ct/dat/tokenusage_notify.json. Exits 1 when an alert could not be delivered (the
    /// next run tries again).
    Notify(NotifyArgs),
    /// What the page's insight cards show, as text or JSON
    ///
    /// Runway (when the balance runs out at the 7- and 30-day averages), the last 30 days
    /// and 12 months of spend, spend per service, unusual days and the kept history's
    /// totals, in the installation's time zone. It reads and writes the page's caches and
    /// kept history as a view does. Exits 1 when there is nothing to report.
    Report(ReportArgs),
    /// The man page (roff), generated from these definitions: the package installs it
    #[command(hide = true)]
    Man,
}

/// The options of FastCGI and CGI: the transport, the license API, the admin check.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct ServeArgs {
    /// unix:/path.sock or HOST:PORT to bind (default: the socket systemd passes as fd 3,
    /// LISTEN_FDS, else a listening socket passed as fd 0)
    #[arg(long, env = "TOKENUSAGE_LISTEN", hide_env_values = true, value_name = "SPEC",
          value_parser = checked(StringValueParser::new()))]
    pub listen: Option<String>,
    /// Permissions of a unix socket we create, in octal
    #[arg(long, env = "TOKENUSAGE_SOCKET_MODE", hide_env_values = true, value_name = "MODE",
          default_value = "0660", value_parser = checked(socket_mode))]
    pub socket_mode: u32,
    /// Owner of a unix socket we create: a user name or uid (needs root)
    #[arg(long, env = "TOKENUSAGE_SOCKET_OWNER", hide_env_values = true, value_name = "USER",
          value_parser = checked(StringValueParser::new()))]
    pub socket_owner: Option<String>,
    /// Group of a unix socket we create: a group name or gid (e.g. the web server's)
    #[arg(long, env = "TOKENUSAGE_SOCKET_GROUP", hide_env_values = true, value_name = "GROUP",
          value_parser = checked(StringValueParser::new()))]
    pub socket_group: Option<String>,
    /// Peers a TCP socket serves: IP addresses separated by commas, or `any`; others are
    /// closed at accept (php-fpm's listen.allowed_clients)
    #[arg(long, env = "TOKENUSAGE_ALLOW_CLIENTS", hide_env_values = true,
          value_name = "ADDR[,ADDR...]", default_value = "127.0.0.1,::1",
          value_parser = checked(allowed_clients))]
    pub allow_clients: AllowedClients,
    /// A line per request (no cookies, no tokens) appended to this file; `-` for stderr
    #[arg(long, env = "TOKENUSAGE_ACCESS_LOG", hide_env_values = true, value_name = "PATH",
          value_parser = checked(PathBufValueParser::new()))]
    pub access_log: Option<PathBuf>,
    /// Worker threads: requests handled at once (1 to 1024)
    #[arg(long, env = "TOKENUSAGE_WORKERS", hide_env_values = true, value_name = "N",
          default_value = "16", value_parser = checked(workers))]
    pub workers: usize,
    /// Open FastCGI connections at most; past it the longest-silent idle one closes
    /// (lowered to fit the open-file limit)
    #[arg(long, env = "TOKENUSAGE_MAX_CONNECTIONS", hide_env_values = true, value_name = "N",
          default_value = "1024", value_parser = checked(max_connections))]
    pub max_connections: usize,
    /// A request's records (BEGIN_REQUEST to the end of STDIN) are due whole within this
    #[arg(long, env = "TOKENUSAGE_REQUEST_TIMEOUT", hide_env_values = true,
          value_name = "SECONDS", default_value = "10", value_parser = checked(seconds))]
    pub request_timeout: Duration,
    /// A kept-alive FastCGI connection may wait this long for its next request (longer
    /// than nginx's keepalive_timeout)
    #[arg(long, env = "TOKENUSAGE_IDLE_TIMEOUT", hide_env_values = true,
          value_name = "SECONDS", default_value = "75", value_parser = checked(seconds))]
    pub idle_timeout: Duration,
    /// Writing one response may take this long in all (0: no limit)
    #[arg(long, env = "TOKENUSAGE_WRITE_TIMEOUT", hide_env_values = true,
          value_name = "SECONDS", default_value = "30", value_parser = checked(seconds_or_zero))]
    pub write_timeout: Duration,
    /// The installation's ct folder (default: found per request from SCRIPT_FILENAME,
    /// .../ct/admin/tokenusage.php -> .../ct)
    #[arg(long, env = "TOKENUSAGE_ROOT", hide_env_values = true, value_name = "DIR",
          value_parser = checked(PathBufValueParser::new()))]
    pub root: Option<PathBuf>,
    /// A folder of templates overriding the embedded ones
    #[arg(long, env = "TOKENUSAGE_TEMPLATES", hide_env_values = true, value_name = "DIR",
          value_parser = checked(PathBufValueParser::new()))]
    pub templates: Option<PathBuf>,
    /// The longest one license API call may take (the PHP page's max_execution_time)
    #[arg(long, env = "TOKENUSAGE_API_TIMEOUT", hide_env_values = true,
          value_name = "SECONDS", default_value = "30", value_parser = checked(seconds))]
    pub api_timeout: Duration,
    /// The longest a connect to the license API may take
    #[arg(long, env = "TOKENUSAGE_API_CONNECT_TIMEOUT", hide_env_values = true,
          value_name = "SECONDS", default_value = "10", value_parser = checked(seconds))]
    pub api_connect_timeout: Duration,
    /// How long a view with older data on hand waits for the license API before showing
    /// that data (0: at once); the call goes on and its answer is kept for the next view
    #[arg(long, env = "TOKENUSAGE_API_PATIENCE", hide_env_values = true,
          value_name = "SECONDS", default_value = "2", value_parser = checked(seconds_or_zero))]
    pub api_patience: Duration,
    /// After a failed or timed-out call, views show older data without calling again this
    /// long (0: off; Refresh Data always calls)
    #[arg(long, env = "TOKENUSAGE_API_RETRY_AFTER", hide_env_values = true,
          value_name = "SECONDS", default_value = "30", value_parser = checked(seconds_or_zero))]
    pub api_retry_after: Duration,
    /// The time zone of an installation whose config names none, as php.ini's
    /// date.timezone does for the PHP page (an IANA name such as Europe/Berlin)
    #[arg(long, env = "TOKENUSAGE_TIMEZONE", hide_env_values = true, value_name = "ZONE",
          default_value = "UTC", value_parser = checked(time_zone))]
    pub timezone: Tz,
    /// Megabytes of parsed histories kept in memory, all installations together (least
    /// recently used go first; at most 65536)
    #[arg(long, env = "TOKENUSAGE_MEMORY_BUDGET_MB", hide_env_values = true, value_name = "MB",
          default_value = "48", value_parser = checked(memory_budget_mb))]
    pub memory_budget_mb: usize,
    /// Reuse user/info and user/stats answers this long (0: call on every view; the footer
    /// says which, and Refresh Data always calls)
    #[arg(long, env = "TOKENUSAGE_ACCOUNT_CACHE_SECONDS", hide_env_values = true,
          value_name = "SECONDS", default_value = "30", value_parser = checked(seconds_or_zero))]
    pub account_cache_seconds: Duration,
    #[command(flatten, next_help_heading = "Admin check (deny by default)")]
    pub auth: AuthArgs,
}

/// Who gets in: the mode and its settings, checked by [`crate::auth::Auth::new`].
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct AuthArgs {
    /// How to tell an admin from a visitor
    #[arg(long, env = "TOKENUSAGE_AUTH", hide_env_values = true, value_name = "MODE",
          default_value = "php-session",
          value_parser = checked(EnumValueParser::<AuthMode>::new()))]
    pub auth: AuthMode,
    /// The $_SESSION entry that marks a logged-in admin (php-session); `tokenusage
    /// session-keys` helps find it
    #[arg(long, env = "TOKENUSAGE_SESSION_KEY", hide_env_values = true,
          value_name = "KEY[=VALUE]", value_parser = checked(StringValueParser::new()))]
    pub session_key: Option<String>,
    /// The session cookie's name
    #[arg(long, env = "TOKENUSAGE_SESSION_NAME", hide_env_values = true, value_name = "NAME",
          default_value = DEFAULT_SESSION_NAME, value_parser = checked(StringValueParser::new()))]
    pub session_name: String,
    /// PHP's session.save_path, also N;/path and N;MODE;/path
    #[arg(long, env = "TOKENUSAGE_SESSION_PATH", hide_env_values = true, value_name = "PATH",
          default_value = DEFAULT_SESSION_PATH, value_parser = checked(StringValueParser::new()))]
    pub session_path: String,
    /// Older session files are expired (PHP's session.gc_maxlifetime)
    #[arg(long, env = "TOKENUSAGE_SESSION_MAX_LIFETIME", hide_env_values = true,
          value_name = "SECONDS", default_value = "1440", value_parser = checked(seconds))]
    pub session_max_lifetime: Duration,
    /// The admin panel on loopback, asked with the browser's cookies (delegate), e.g.
    /// http://127.0.0.1/ct/admin/main.php
    #[arg(long, env = "TOKENUSAGE_DELEGATE_URL", hide_env_values = true, value_name = "URL",
          value_parser = checked(StringValueParser::new()))]
    pub delegate_url: Option<String>,
    /// How long a delegate answer is remembered
    #[arg(long, env = "TOKENUSAGE_DELEGATE_CACHE_SECONDS", hide_env_values = true,
          value_name = "SECONDS", default_value = "30", value_parser = checked(seconds))]
    pub delegate_cache_seconds: Duration,
}

/// The `--auth` modes.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Read the admin's PHP session file, never write it; needs --session-key
    PhpSession,
    /// Ask the admin panel on loopback (--delegate-url) with the browser's cookies
    Delegate,
    /// Trust REMOTE_USER and AUTH_TYPE, only from a web server that authenticated
    WebServer,
    /// No check: anyone who reaches the URL sees the dashboard
    None,
}

impl AuthMode {
    /// The name `--auth` takes and [`AuthOptions::mode`] holds.
    pub fn name(self) -> &'static str {
        match self {
            AuthMode::PhpSession => "php-session",
            AuthMode::Delegate => "delegate",
            AuthMode::WebServer => "web-server",
            AuthMode::None => "none",
        }
    }
}

impl AuthArgs {
    /// The options [`crate::auth::Auth::new`] checks.
    pub fn options(&self) -> AuthOptions {
        AuthOptions {
            mode: self.auth.name().to_string(),
            session_name: self.session_name.clone(),
            session_path: self.session_path.clone(),
            session_key: self.session_key.clone(),
            session_max_lifetime: self.session_max_lifetime,
            delegate_url: self.delegate_url.clone(),
            delegate_cache: self.delegate_cache_seconds,
        }
    }
}

/// `tokenusage demo`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct DemoArgs {
    /// The preview's HOST:PORT (loopback only)
    #[arg(long, env = "TOKENUSAGE_LISTEN", hide_env_values = true, value_name = "ADDR",
          default_value = "127.0.0.1:8780", value_parser = checked(StringValueParser::new()))]
    pub listen: String,
    /// Transactions in the sample history (at most 1000000)
    #[arg(long, env = "TOKENUSAGE_TRANSACTIONS", hide_env_values = true, value_name = "N",
          default_value = "10000", value_parser = checked(demo_transactions))]
    pub transactions: usize,
    /// The embedded sample API's HOST:PORT (default: a free loopback port)
    #[arg(long, env = "TOKENUSAGE_API_LISTEN", hide_env_values = true, value_name = "ADDR",
          value_parser = checked(StringValueParser::new()))]
    pub api_listen: Option<String>,
    /// The sample installation's ct folder (default: ct, the repository's)
    #[arg(long, env = "TOKENUSAGE_ROOT", hide_env_values = true, value_name = "DIR",
          value_parser = checked(PathBufValueParser::new()))]
    pub root: Option<PathBuf>,
}

/// `tokenusage sample-api`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct SampleApiArgs {
    /// HOST:PORT to answer on (port 0: any free port; the URL printed says which)
    #[arg(long, env = "TOKENUSAGE_LISTEN", hide_env_values = true, value_name = "ADDR",
          default_value = "127.0.0.1:8781", value_parser = checked(StringValueParser::new()))]
    pub listen: String,
    /// Transactions in the history (all of them count toward user/stats)
    #[arg(long, env = "TOKENUSAGE_TRANSACTIONS", hide_env_values = true, value_name = "N",
          default_value_t = SampleApiOptions::default().transactions,
          value_parser = checked(count))]
    pub transactions: usize,
    /// The user/stats balance
    #[arg(long, env = "TOKENUSAGE_BALANCE", hide_env_values = true, value_name = "X",
          default_value_t = SampleApiOptions::default().balance, value_parser = checked(balance))]
    pub balance: f64,
    /// Milliseconds added to every endpoint call
    #[arg(long, env = "TOKENUSAGE_DELAY_MS", hide_env_values = true, value_name = "MS",
          default_value = "0", value_parser = checked(milliseconds))]
    pub delay_ms: u64,
    /// Every text field carries hostile markup (XSS, CSV formula, bidi payloads)
    #[arg(long, env = "TOKENUSAGE_HOSTILE", hide_env_values = true,
          value_parser = checked(BoolishValueParser::new()))]
    pub hostile: bool,
    /// The way to misbehave from the start (the control endpoint changes it later)
    #[arg(long, env = "TOKENUSAGE_FAULT", hide_env_values = true, value_name = "NAME",
          default_value = "none", ignore_case = true, value_parser = checked(fault()))]
    pub fault: Fault,
    /// Seed of the generated history (the same seed gives the same bytes)
    #[arg(long, env = "TOKENUSAGE_SEED", hide_env_values = true, value_name = "N",
          default_value_t = SampleApiOptions::default().seed, value_parser = checked(seed))]
    pub seed: u64,
    /// The newest transaction's time: Unix seconds or "YYYY-MM-DD HH:MM:SS" UTC (default:
    /// when the sample API starts)
    #[arg(long, env = "TOKENUSAGE_ANCHOR", hide_env_values = true, value_name = "TIME",
          value_parser = checked(anchor))]
    pub anchor: Option<i64>,
}

impl SampleApiArgs {
    /// How the sample API answers.
    pub fn options(&self) -> SampleApiOptions {
        SampleApiOptions {
            transactions: self.transactions,
            balance: self.balance,
            delay: Duration::from_millis(self.delay_ms),
            hostile: self.hostile,
            fault: self.fault,
            seed: self.seed,
            anchor: self.anchor,
        }
    }
}

/// `tokenusage session-keys`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct SessionKeysArgs {
    #[command(flatten)]
    pub target: SessionTargetArgs,
    /// PHP's session.save_path, where --session-id is looked up
    #[arg(long, env = "TOKENUSAGE_SESSION_PATH", hide_env_values = true, value_name = "PATH",
          default_value = DEFAULT_SESSION_PATH, value_parser = checked(StringValueParser::new()))]
    pub session_path: String,
}

/// The session `session-keys` reads: exactly one of an id and a path.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[group(required = true, multiple = false)]
pub struct SessionTargetArgs {
    /// The session's id: the value of the PHPSESSID cookie (not read from the environment:
    /// it names one session, once)
    #[arg(long, value_name = "ID")]
    pub session_id: Option<String>,
    /// A session file's path, instead of --session-id
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
}

/// Which session file `session-keys` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionTarget {
    Id(String),
    Path(PathBuf),
}

impl SessionKeysArgs {
    /// The session asked for (clap lets exactly one of the two through).
    pub fn target(&self) -> SessionTarget {
        match (&self.target.session_id, &self.target.path) {
            (Some(id), _) => SessionTarget::Id(id.clone()),
            (None, Some(path)) => SessionTarget::Path(path.clone()),
            (None, None) => SessionTarget::Id(String::new()),
        }
    }
}

/// `tokenusage check-config`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct CheckConfigArgs {
    /// Also call the license API once (user/info), through the page's client
    #[arg(long, env = "TOKENUSAGE_ONLINE", hide_env_values = true,
          value_parser = checked(BoolishValueParser::new()))]
    pub online: bool,
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl CheckConfigArgs {
    /// What [`crate::ops::check_config::run`] checks.
    pub fn options(&self) -> CheckConfigOptions {
        check_config_options(&self.serve, self.online)
    }
}

/// What `check-config` checks for these serve options (`tokenusage -t` too).
pub fn check_config_options(serve: &ServeArgs, online: bool) -> CheckConfigOptions {
    CheckConfigOptions {
        root: serve.root.clone(),
        auth: serve.auth.options(),
        online,
        api_connect_timeout: serve.api_connect_timeout,
        api_timeout: serve.api_timeout,
        timezone: serve.timezone,
    }
}

/// How `check`, `metrics`, `report` and `notify` read an installation.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct ReadingArgs {
    /// The longest each license API call (and an alert's delivery) may take
    #[arg(short, long, env = "TOKENUSAGE_TIMEOUT", hide_env_values = true,
          value_name = "SECONDS", default_value = "10", value_parser = checked(seconds))]
    pub timeout: Duration,
    /// Reuse the page's user/info and user/stats answers this long (0: always call)
    #[arg(long, env = "TOKENUSAGE_ACCOUNT_CACHE_SECONDS", hide_env_values = true,
          value_name = "SECONDS", default_value = "30", value_parser = checked(seconds_or_zero))]
    pub account_cache_seconds: Duration,
    /// The time zone of an installation whose config names none, as php.ini's
    /// date.timezone does for the PHP page (an IANA name such as Europe/Berlin)
    #[arg(long, env = "TOKENUSAGE_TIMEZONE", hide_env_values = true, value_name = "ZONE",
          default_value = "UTC", value_parser = checked(time_zone))]
    pub timezone: Tz,
}

/// The balance and runway thresholds of `check` and `notify`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Warning when the balance is below N, or outside RANGE (@RANGE: inside)
    #[arg(short, long, env = "TOKENUSAGE_WARNING", hide_env_values = true,
          value_name = "N|RANGE", allow_hyphen_values = true, value_parser = checked(threshold))]
    pub warning: Option<Range>,
    /// Critical when the balance is below N, or outside RANGE (@RANGE: inside)
    #[arg(short, long, env = "TOKENUSAGE_CRITICAL", hide_env_values = true,
          value_name = "N|RANGE", allow_hyphen_values = true, value_parser = checked(threshold))]
    pub critical: Option<Range>,
    /// Warning when the balance lasts fewer than N days at the 7-day average spend
    #[arg(long, env = "TOKENUSAGE_WARNING_DAYS", hide_env_values = true, value_name = "N",
          value_parser = checked(days))]
    pub warning_days: Option<f64>,
    /// Critical when the balance lasts fewer than N days at the 7-day average spend
    #[arg(long, env = "TOKENUSAGE_CRITICAL_DAYS", hide_env_values = true, value_name = "N",
          value_parser = checked(days))]
    pub critical_days: Option<f64>,
}

/// `tokenusage check`: a monitoring plugin's options (the guidelines' -w -c -t -v).
#[derive(Args, Debug, Clone, PartialEq)]
pub struct CheckArgs {
    /// The installation's ct folder
    #[arg(long, env = "TOKENUSAGE_ROOT", hide_env_values = true, value_name = "DIR",
          value_parser = checked(PathBufValueParser::new()))]
    pub root: PathBuf,
    #[command(flatten)]
    pub thresholds: Thresholds,
    /// A balance from the cache older than this is UNKNOWN
    #[arg(long, env = "TOKENUSAGE_MAX_AGE", hide_env_values = true, value_name = "SECONDS",
          default_value = "3600", value_parser = checked(seconds))]
    pub max_age: Duration,
    /// More lines after the first (where the balance came from)
    #[arg(short, long, env = "TOKENUSAGE_VERBOSE", hide_env_values = true,
          action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(flatten)]
    pub reading: ReadingArgs,
}

impl CheckArgs {
    /// What [`crate::ops::check::run`] checks.
    pub fn options(&self) -> CheckOptions {
        CheckOptions {
            root: self.root.clone(),
            warning: self.thresholds.warning.clone(),
            critical: self.thresholds.critical.clone(),
            warning_days: self.thresholds.warning_days,
            critical_days: self.thresholds.critical_days,
            max_age: self.max_age,
            timeout: self.reading.timeout,
            account_ttl: self.reading.account_cache_seconds,
            timezone: self.reading.timezone,
            verbose: self.verbose,
        }
    }
}

/// True when the words after the program name start `tokenusage check`, whose refused
/// arguments exit 3 (UNKNOWN) as the Monitoring Plugins guidelines ask, not 2.
pub fn is_check(words: &[String]) -> bool {
    words.first().is_some_and(|first| first == "check")
}

/// `tokenusage metrics`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct MetricsArgs {
    /// An installation's ct folder (repeat for more)
    #[arg(long, env = "TOKENUSAGE_ROOT", hide_env_values = true, required = true,
          value_name = "DIR",
          value_parser = checked(PathBufValueParser::new()))]
    pub root: Vec<PathBuf>,
    /// tokenusage_up is 0 when the balance is from a cache older than this
    #[arg(long, env = "TOKENUSAGE_MAX_AGE", hide_env_values = true, value_name = "SECONDS",
          default_value = "3600", value_parser = checked(seconds))]
    pub max_age: Duration,
    #[command(flatten)]
    pub reading: ReadingArgs,
}

impl MetricsArgs {
    /// What [`crate::ops::metrics::run`] reads.
    pub fn options(&self) -> MetricsOptions {
        MetricsOptions {
            roots: self.root.clone(),
            max_age: self.max_age,
            timeout: self.reading.timeout,
            account_ttl: self.reading.account_cache_seconds,
            timezone: self.reading.timezone,
        }
    }
}

/// `tokenusage notify`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct NotifyArgs {
    /// An installation's ct folder (repeat for more)
    #[arg(long, env = "TOKENUSAGE_ROOT", hide_env_values = true, required = true,
          value_name = "DIR", value_parser = checked(PathBufValueParser::new()))]
    pub root: Vec<PathBuf>,
    #[command(flatten)]
    pub thresholds: Thresholds,
    /// Alert when the license server has failed for longer than this
    #[arg(long, env = "TOKENUSAGE_STALE_AFTER", hide_env_values = true, value_name = "SECONDS",
          default_value = "21600", value_parser = checked(seconds))]
    pub stale_after: Duration,
    /// Send alerts by email to this address (repeat for more)
    #[arg(
        long,
        env = "TOKENUSAGE_MAIL_TO",
        hide_env_values = true,
        value_name = "ADDRESS",
        value_delimiter = ','
    )]
    pub mail_to: Vec<String>,
    /// The sendmail-compatible program that sends the email, with its arguments
    #[arg(
        long,
        env = "TOKENUSAGE_SENDMAIL",
        hide_env_values = true,
        value_name = "COMMAND",
        default_value = "/usr/sbin/sendmail -t"
    )]
    pub sendmail: String,
    /// POST alerts as JSON with a `text` field (Slack, Mattermost, Rocket.Chat, Discord's /slack)
    #[arg(
        long,
        env = "TOKENUSAGE_WEBHOOK",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub webhook: Option<String>,
    /// Print what would be sent; send nothing and change no state
    #[arg(long, env = "TOKENUSAGE_DRY_RUN", hide_env_values = true)]
    pub dry_run: bool,
    /// Send one test alert to each destination
    #[arg(long, env = "TOKENUSAGE_TEST", hide_env_values = true)]
    pub test: bool,
    #[command(flatten)]
    pub reading: ReadingArgs,
}

impl NotifyArgs {
    /// What [`crate::ops::notify::run`] does.
    pub fn options(&self) -> NotifyOptions {
        NotifyOptions {
            roots: self.root.clone(),
            warning: self.thresholds.warning.clone(),
            critical: self.thresholds.critical.clone(),
            warning_days: self.thresholds.warning_days,
            critical_days: self.thresholds.critical_days,
            stale_after: self.stale_after,
            mail_to: self.mail_to.clone(),
            sendmail: self.sendmail.clone(),
            webhook: self.webhook.clone(),
            dry_run: self.dry_run,
            test: self.test,
            timeout: self.reading.timeout,
            account_ttl: self.reading.account_cache_seconds,
            timezone: self.reading.timezone,
        }
    }
}

/// `tokenusage report`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct ReportArgs {
    /// The installation's ct folder
    #[arg(long, env = "TOKENUSAGE_ROOT", hide_env_values = true, value_name = "DIR",
          value_parser = checked(PathBufValueParser::new()))]
    pub root: PathBuf,
    /// JSON for scripts instead of text
    #[arg(long, env = "TOKENUSAGE_JSON", hide_env_values = true)]
    pub json: bool,
    #[command(flatten)]
    pub reading: ReadingArgs,
}

impl ReportArgs {
    /// What [`crate::ops::report::run`] reports.
    pub fn options(&self) -> ReportOptions {
        ReportOptions {
            root: self.root.clone(),
            json: self.json,
            timeout: self.reading.timeout,
            account_ttl: self.reading.account_cache_seconds,
            timezone: self.reading.timezone,
        }
    }
}

/// Parses a start that is not a CGI request (see [`cgi_request`]): `args` with the program
/// name first, and the `TOKENUSAGE_*` variables. The error is clap's, help and version
/// included ([`clap::Error::exit_code`] says 0 for those, 2 for a refusal).
/// Writes the man page, generated from the command-line definitions (clap_mangen).
pub fn man_page(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}

pub fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut command = Cli::command();
    // Why: `tokenusage demo` does not use the options of a start without a subcommand,
    // so a bad TOKENUSAGE_WORKERS must not stop it. A first argument that is not an option
    // is a subcommand (or refused as an unknown one).
    let subcommand_first = args
        .get(1)
        .is_some_and(|first| !first.to_string_lossy().starts_with('-'));
    if subcommand_first {
        command = command.mut_args(|arg| arg.env(None));
    }
    command = without_empty_variables(command);
    let mut matches = command.try_get_matches_from_mut(args)?;
    Cli::from_arg_matches_mut(&mut matches).map_err(|error| error.format(&mut command))
}

/// The options of a CGI request: from the environment alone (`SetEnv TOKENUSAGE_...`), as
/// `tokenusage cgi` with no arguments.
pub fn parse_cgi() -> Result<ServeArgs, clap::Error> {
    match parse(["tokenusage", "cgi"])?.command {
        Some(Command::Cgi(serve)) => Ok(serve),
        _ => unreachable!("`tokenusage cgi` parses as the cgi subcommand"),
    }
}

/// An empty variable counts as unset, as it did before clap: `SetEnv TOKENUSAGE_ROOT ""`
/// or systemd's `Environment=TOKENUSAGE_LISTEN=` change nothing.
fn without_empty_variables(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            let empty = arg
                .get_env()
                .and_then(std::env::var_os)
                .is_some_and(|value| value.is_empty());
            if empty { arg.env(None) } else { arg }
        })
        .mut_subcommands(without_empty_variables)
}

/// The most characters of ignored arguments a log line shows.
const MAX_LOGGED_CHARS: usize = 200;

/// Decides whether this process answers a CGI request: `GATEWAY_INTERFACE` is set
/// (whatever the arguments say) or the first argument is `cgi`. If so, returns the
/// arguments (without the program name) it must ignore (all but that `cgi`): Apache's
/// mod_cgi passes a query string without `=` as arguments, split at `+` (RFC 3875 4.4;
/// PHP-CGI's CVE-2012-1823), so they are a visitor's words, and `?--auth+none` or
/// `?fcgi+--listen+...` must change nothing. Options then come from [`parse_cgi`]. The one
/// exception, `tokenusage cgi --help` without `GATEWAY_INTERFACE`, is not a request: it
/// shows the help.
pub fn cgi_request(args: &[String], gateway_interface: bool) -> Option<&[String]> {
    match args {
        [cgi, help] if !gateway_interface && cgi == "cgi" && (help == "--help" || help == "-h") => {
            None
        }
        [cgi, rest @ ..] if cgi == "cgi" => Some(rest),
        _ if gateway_interface => Some(args),
        _ => None,
    }
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

/// Wraps a value parser so that a value refused from the environment names its variable:
/// clap's own message names only the option, and under CGI the variable is what to fix.
#[derive(Clone)]
pub struct NamesVariable<P>(P);

/// See [`NamesVariable`].
fn checked<P: TypedValueParser>(parser: P) -> NamesVariable<P> {
    NamesVariable(parser)
}

impl<P: TypedValueParser> TypedValueParser for NamesVariable<P> {
    type Value = P::Value;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<Self::Value, clap::Error> {
        self.0.parse_ref(cmd, arg, value)
    }

    fn parse_ref_(
        &self,
        cmd: &clap::Command,
        arg: Option<&Arg>,
        value: &OsStr,
        source: ValueSource,
    ) -> Result<Self::Value, clap::Error> {
        self.0
            .parse_ref_(cmd, arg, value, source)
            .map_err(|mut error| {
                let variable = arg.and_then(Arg::get_env);
                if let (ValueSource::EnvVariable, Some(variable)) = (source, variable) {
                    let tip = format!(
                        "the value comes from the environment variable {}",
                        variable.to_string_lossy()
                    );
                    let mut tips = match error.get(ContextKind::Suggested) {
                        Some(ContextValue::StyledStrs(tips)) => tips.clone(),
                        _ => Vec::new(),
                    };
                    tips.push(StyledStr::from(tip));
                    error.insert(ContextKind::Suggested, ContextValue::StyledStrs(tips));
                }
                error
            })
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        self.0.possible_values()
    }
}

/// `text` (spaces around it ignored) as a `T` that `valid` accepts, else `not WHAT`.
fn number<T: FromStr>(text: &str, valid: impl FnOnce(&T) -> bool, what: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .ok()
        .filter(valid)
        .ok_or_else(|| format!("not {what}"))
}

/// A permission mode in octal, with or without `0o` (`0660`, `0o600`), at most `0777`.
fn socket_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text.trim().trim_start_matches("0o"), 8)
        .ok()
        .filter(|mode| *mode <= 0o777)
        .ok_or_else(|| "not an octal mode like 0660 (at most 0777)".to_string())
}

/// `--allow-clients`: `any` or addresses separated by commas.
fn allowed_clients(text: &str) -> Result<AllowedClients, String> {
    text.parse()
}

fn workers(text: &str) -> Result<usize, String> {
    number(text, |n| (1..=1024).contains(n), "a number from 1 to 1024")
}

fn max_connections(text: &str) -> Result<usize, String> {
    number(
        text,
        |n| (1..=1_000_000).contains(n),
        "a number from 1 to 1000000",
    )
}

/// A number of days, 0 or more.
fn days(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|d| d.is_finite() && *d >= 0.0)
        .ok_or_else(|| "a number of days, 0 or more".to_string())
}

/// An IANA time zone name.
fn time_zone(text: &str) -> Result<Tz, String> {
    text.parse::<Tz>()
        .map_err(|_| "an IANA time zone name such as Europe/Berlin or UTC".to_string())
}

fn memory_budget_mb(text: &str) -> Result<usize, String> {
    number(text, |n| *n <= 65_536, "a number of megabytes up to 65536")
}

fn demo_transactions(text: &str) -> Result<usize, String> {
    number(text, |n| *n <= 1_000_000, "a number up to 1000000")
}

/// A positive number of seconds.
fn seconds(text: &str) -> Result<Duration, String> {
    number(text, |n: &u64| *n > 0, "a number of seconds above 0").map(Duration::from_secs)
}

/// A number of seconds, 0 included (it turns the limit or the cache off).
fn seconds_or_zero(text: &str) -> Result<Duration, String> {
    number(text, |_: &u64| true, "a number of seconds").map(Duration::from_secs)
}

fn count(text: &str) -> Result<usize, String> {
    number(text, |_| true, "a count")
}

fn balance(text: &str) -> Result<f64, String> {
    number(text, |b: &f64| b.is_finite(), "a number")
}

fn milliseconds(text: &str) -> Result<u64, String> {
    number(text, |_| true, "a number of milliseconds")
}

fn seed(text: &str) -> Result<u64, String> {
    number(text, |_| true, "a number")
}

/// `--anchor`: see [`parse_anchor`].
fn anchor(text: &str) -> Result<i64, String> {
    parse_anchor(text)
}

/// `--fault`: one of [`Fault::ALL`]'s names, listed in the help.
fn fault() -> impl TypedValueParser<Value = Fault> {
    PossibleValuesParser::new(Fault::ALL.map(Fault::name))
        .map(|name| Fault::from_name(&name).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::session_store::DEFAULT_MAX_LIFETIME;
    use clap::error::ErrorKind;

    /// The test's own name, `cli::tests::...`, as the test harness knows it.
    macro_rules! test_name {
        () => {{
            fn here() {}
            std::any::type_name_of_val(&here)
                .trim_end_matches("::here")
                .trim_start_matches("tokenusage::")
        }};
    }

    /// Runs `check` in a child process of this test binary whose environment holds only
    /// `vars`: clap reads the real environment, and changing this process's while other
    /// tests run on other threads is unsound. Also keeps a developer's own TOKENUSAGE_*
    /// variables out of the tests. The child runs the whole test: once per test.
    fn in_env(test: &str, vars: &[(&str, &str)], check: impl FnOnce()) {
        const CHILD: &str = "CLI_TESTS_CHILD";
        if std::env::var_os(CHILD).is_some() {
            check();
            return;
        }
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--test-threads=1", "--nocapture"])
            .env_clear()
            .env(CHILD, "1")
            .envs(vars.iter().copied())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{test} in {vars:?}:\n{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn parsed(args: &[&str]) -> Cli {
        let mut argv = vec!["tokenusage"];
        argv.extend_from_slice(args);
        parse(argv).unwrap()
    }

    fn refused(args: &[&str]) -> clap::Error {
        let mut argv = vec!["tokenusage"];
        argv.extend_from_slice(args);
        parse(argv).unwrap_err()
    }

    fn serve(cli: Cli) -> ServeArgs {
        match cli.command {
            None => cli.serve,
            Some(Command::Fcgi(serve) | Command::Cgi(serve)) => serve,
            other => panic!("not a serve command: {other:?}"),
        }
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// `socket-mode` -> `TOKENUSAGE_SOCKET_MODE`.
    fn env_name(option: &str) -> String {
        format!(
            "TOKENUSAGE_{}",
            option.to_ascii_uppercase().replace('-', "_")
        )
    }

    #[test]
    fn no_arguments_picks_the_transport_automatically() {
        in_env(test_name!(), &[], || {
            let cli = parsed(&[]);
            assert_eq!(cli.command, None);
            assert_eq!(cli.serve.socket_mode, 0o660);
            assert_eq!(cli.serve.listen, None);
        });
    }

    #[test]
    fn fcgi_takes_listen_mode_and_root() {
        in_env(test_name!(), &[], || {
            let cli = parsed(&[
                "fcgi",
                "--listen",
                "unix:/tmp/t.sock",
                "--socket-mode=0600",
                "--root",
                "/srv/ct",
            ]);
            let Some(Command::Fcgi(serve)) = cli.command else {
                panic!("{cli:?}");
            };
            assert_eq!(serve.listen.as_deref(), Some("unix:/tmp/t.sock"));
            assert_eq!(serve.socket_mode, 0o600);
            assert_eq!(serve.root, Some(PathBuf::from("/srv/ct")));
        });
    }

    #[test]
    fn options_come_from_the_environment_when_not_given() {
        in_env(test_name!(), &[("TOKENUSAGE_ROOT", "/env/ct")], || {
            assert_eq!(parsed(&[]).serve.root, Some(PathBuf::from("/env/ct")));
            let fcgi = serve(parsed(&["fcgi"]));
            assert_eq!(fcgi.root, Some(PathBuf::from("/env/ct")));
            let given = parsed(&["--root", "/arg/ct"]);
            assert_eq!(given.serve.root, Some(PathBuf::from("/arg/ct")));
        });
    }

    #[test]
    fn an_empty_variable_counts_as_unset() {
        let vars = [
            ("TOKENUSAGE_ROOT", ""),
            ("TOKENUSAGE_WORKERS", ""),
            ("TOKENUSAGE_AUTH", ""),
        ];
        in_env(test_name!(), &vars, || {
            let serve = serve(parsed(&["fcgi"]));
            assert_eq!(serve.root, None);
            assert_eq!(serve.workers, 16);
            assert_eq!(serve.auth.auth, AuthMode::PhpSession);
        });
    }

    #[test]
    fn bad_options_say_what_is_wrong() {
        in_env(test_name!(), &[], || {
            let error = refused(&["--bogus"]);
            assert_eq!(error.kind(), ErrorKind::UnknownArgument);
            assert!(error.to_string().contains("--bogus"), "{error}");
            let error = refused(&["--socket-mode", "999"]).to_string();
            assert!(error.contains("octal"), "{error}");
            let error = refused(&["--workers", "0"]).to_string();
            assert!(error.contains("1 to 1024"), "{error}");
            let error = refused(&["--listen"]);
            assert_eq!(error.kind(), ErrorKind::InvalidValue);
            assert!(error.to_string().contains("--listen"), "{error}");
            let error = refused(&["--api-timeout", "0"]).to_string();
            assert!(
                error.contains(
                    "invalid value '0' for '--api-timeout <SECONDS>': not a number of seconds"
                ),
                "{error}"
            );
        });
    }

    #[test]
    fn a_bad_value_from_the_environment_names_the_option_and_the_variable() {
        in_env(test_name!(), &[("TOKENUSAGE_WORKERS", "abc")], || {
            for args in [&[][..], &["fcgi"], &["cgi"]] {
                let error = refused(args);
                assert_eq!(error.exit_code(), 2);
                let text = error.to_string();
                assert!(text.contains("--workers"), "{text}");
                assert!(text.contains("TOKENUSAGE_WORKERS"), "{text}");
            }
            let error = parse_cgi().unwrap_err().to_string();
            assert!(error.contains("TOKENUSAGE_WORKERS"), "{error}");
            // On the command line it is the option's own value: no variable to name.
            let error = refused(&["fcgi", "--workers", "abc"]).to_string();
            assert!(!error.contains("TOKENUSAGE_WORKERS"), "{error}");
            // A value given on the command line wins, and the variable is not read.
            assert_eq!(serve(parsed(&["fcgi", "--workers", "4"])).workers, 4);
        });
    }

    #[test]
    fn the_variables_of_options_a_subcommand_does_not_take_do_not_stop_it() {
        in_env(test_name!(), &[("TOKENUSAGE_WORKERS", "abc")], || {
            assert!(matches!(parsed(&["demo"]).command, Some(Command::Demo(_))));
            let cli = parsed(&["session-keys", "--session-id", "abc"]);
            assert!(matches!(cli.command, Some(Command::SessionKeys(_))));
        });
    }

    #[test]
    fn socket_owner_group_and_allowed_clients_come_from_arguments_or_the_environment() {
        let vars = [("TOKENUSAGE_SOCKET_GROUP", "www-data")];
        in_env(test_name!(), &vars, || {
            let defaults = parsed(&[]).serve;
            assert_eq!(defaults.socket_owner, None);
            assert_eq!(defaults.socket_group.as_deref(), Some("www-data"));
            assert_eq!(defaults.allow_clients, AllowedClients::default());
            let serve = serve(parsed(&[
                "fcgi",
                "--socket-owner",
                "33",
                "--allow-clients",
                "10.0.0.5,::1",
            ]));
            assert_eq!(serve.socket_owner.as_deref(), Some("33"));
            assert!(serve.allow_clients.permits("10.0.0.5".parse().unwrap()));
            assert!(!serve.allow_clients.permits("127.0.0.1".parse().unwrap()));
            let any = parsed(&["--allow-clients", "any"]).serve.allow_clients;
            assert_eq!(any, AllowedClients::Any);
            let error = refused(&["--allow-clients", "10.0.0.0/8"]).to_string();
            assert!(error.contains("not an IP address"), "{error}");
        });
    }

    #[test]
    fn numbers_may_have_spaces_around_them_and_modes_a_0o_prefix() {
        in_env(
            test_name!(),
            &[("TOKENUSAGE_ACCOUNT_CACHE_SECONDS", "0")],
            || {
                let cli = parsed(&["--workers", " 4 ", "--socket-mode", "0o600"]);
                assert_eq!(cli.serve.workers, 4);
                assert_eq!(cli.serve.socket_mode, 0o600);
                assert_eq!(cli.serve.account_cache_seconds, Duration::ZERO);
            },
        );
    }

    #[test]
    fn auth_options_come_from_arguments_or_the_environment() {
        let vars = [
            ("TOKENUSAGE_AUTH", "php-session"),
            ("TOKENUSAGE_SESSION_KEY", "admin_logged_in"),
            ("TOKENUSAGE_SESSION_PATH", "2;/var/lib/php/sessions"),
        ];
        in_env(test_name!(), &vars, || {
            let auth = serve(parsed(&["fcgi", "--session-name", "CTSESS"]))
                .auth
                .options();
            assert_eq!(auth.mode, "php-session");
            assert_eq!(auth.session_key.as_deref(), Some("admin_logged_in"));
            assert_eq!(auth.session_path, "2;/var/lib/php/sessions");
            assert_eq!(auth.session_name, "CTSESS");
        });
    }

    #[test]
    fn auth_defaults_are_those_of_auth_options() {
        in_env(test_name!(), &[], || {
            let options = serve(parsed(&["fcgi"])).auth.options();
            let defaults = AuthOptions::default();
            assert_eq!(options, defaults);
            assert_eq!(options.session_max_lifetime, DEFAULT_MAX_LIFETIME);
        });
    }

    #[test]
    fn auth_takes_the_four_modes_and_nothing_else() {
        in_env(test_name!(), &[], || {
            for mode in AuthMode::value_variants() {
                let serve = serve(parsed(&["fcgi", "--auth", mode.name()]));
                assert_eq!(serve.auth.auth, *mode);
            }
            let error = refused(&["fcgi", "--auth", "bogus"]);
            assert_eq!(error.kind(), ErrorKind::InvalidValue);
            assert!(error.to_string().contains("web-server"), "{error}");
        });
    }

    #[test]
    fn session_keys_takes_an_id_or_a_path() {
        in_env(test_name!(), &[], || {
            let target = |cli: Cli| match cli.command {
                Some(Command::SessionKeys(args)) => args.target(),
                other => panic!("{other:?}"),
            };
            assert_eq!(
                target(parsed(&["session-keys", "--session-id", "abc"])),
                SessionTarget::Id("abc".into())
            );
            assert_eq!(
                target(parsed(&["session-keys", "/tmp/sess_abc"])),
                SessionTarget::Path("/tmp/sess_abc".into())
            );
            assert!(parse(["tokenusage", "session-keys"]).is_err());
            assert!(parse(["tokenusage", "session-keys", "--session-id", "a", "/tmp/b"]).is_err());
        });
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
            let given = strings(list);
            assert_eq!(cgi_request(&given, true), Some(&given[..]), "{list:?}");
        }
        assert_eq!(cgi_request(&[], true), Some(&[][..]));
        let help = strings(&["cgi", "--help"]);
        assert_eq!(cgi_request(&help, true), Some(&help[1..]));
    }

    #[test]
    fn the_cgi_subcommand_is_a_cgi_request_and_ignores_what_follows_it() {
        let given = strings(&["cgi", "--auth", "none"]);
        assert_eq!(cgi_request(&given, false), Some(&given[1..]));
        assert_eq!(cgi_request(&given, true), Some(&given[1..]));
        in_env(test_name!(), &[], || {
            assert_eq!(parse_cgi().unwrap().auth.auth, AuthMode::PhpSession);
        });
    }

    #[test]
    fn only_cgi_help_alone_and_without_gateway_interface_shows_the_help() {
        assert_eq!(cgi_request(&strings(&["cgi", "--help"]), false), None);
        assert_eq!(cgi_request(&strings(&["cgi", "-h"]), false), None);
        let more = strings(&["cgi", "--help", "--auth"]);
        assert_eq!(cgi_request(&more, false), Some(&more[1..]));
    }

    #[test]
    fn without_gateway_interface_the_command_line_counts() {
        assert_eq!(cgi_request(&[], false), None);
        assert_eq!(
            cgi_request(&strings(&["fcgi", "--auth", "none"]), false),
            None
        );
        assert_eq!(cgi_request(&strings(&["--listen", "cgi"]), false), None);
    }

    #[test]
    fn a_cgi_request_takes_its_options_from_the_environment_alone() {
        let vars = [
            ("TOKENUSAGE_AUTH", "web-server"),
            ("TOKENUSAGE_ROOT", "/var/www/site/ct"),
            ("TOKENUSAGE_LISTEN", "127.0.0.1:9000"),
        ];
        in_env(test_name!(), &vars, || {
            let serve = parse_cgi().unwrap();
            assert_eq!(serve.auth.auth, AuthMode::WebServer);
            assert_eq!(serve.root, Some(PathBuf::from("/var/www/site/ct")));
        });
    }

    #[test]
    fn a_cgi_request_refuses_a_bad_variable_naming_the_option() {
        in_env(test_name!(), &[("TOKENUSAGE_WORKERS", "0")], || {
            let error = parse_cgi().unwrap_err().to_string();
            assert!(error.contains("--workers"), "{error}");
        });
    }

    #[test]
    fn ignored_arguments_are_noted_on_one_short_line_without_control_characters() {
        assert_eq!(ignored_arguments_note(&[]), None);
        let note = ignored_arguments_note(&strings(&["--auth", "none"])).unwrap();
        assert_eq!(
            note,
            "CGI request: 2 command-line argument(s) ignored, options come only from \
             TOKENUSAGE_* variables: \"--auth\" \"none\""
        );
        let forged = "x\n[error] forged line\r\u{1b}[31m\u{7f}";
        let long = "a".repeat(10_000);
        let note = ignored_arguments_note(&strings(&[forged, &long])).unwrap();
        assert!(!note.chars().any(char::is_control), "{note:?}");
        assert!(note.contains("x?[error] forged line??[31m?"), "{note}");
        assert!(note.len() < 400 && note.ends_with(" ..."), "{note}");
    }

    #[test]
    fn connection_and_patience_limits_come_from_arguments_or_the_environment() {
        in_env(test_name!(), &[("TOKENUSAGE_IDLE_TIMEOUT", "60")], || {
            let defaults = parsed(&["--idle-timeout", "75"]).serve;
            assert_eq!(defaults.max_connections, 1024);
            assert_eq!(defaults.request_timeout, Duration::from_secs(10));
            assert_eq!(defaults.idle_timeout, Duration::from_secs(75));
            assert_eq!(defaults.write_timeout, Duration::from_secs(30));
            assert_eq!(defaults.api_patience, Duration::from_secs(2));
            assert_eq!(defaults.api_retry_after, Duration::from_secs(30));
            let serve = serve(parsed(&[
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
            ]));
            assert_eq!(serve.max_connections, 256);
            assert_eq!(serve.request_timeout, Duration::from_secs(5));
            assert_eq!(serve.idle_timeout, Duration::from_secs(60));
            assert_eq!(serve.write_timeout, Duration::ZERO);
            assert_eq!(serve.api_patience, Duration::ZERO);
            assert_eq!(serve.api_retry_after, Duration::from_secs(10));
            let error = refused(&["--max-connections", "0"]).to_string();
            assert!(error.contains("1 to 1000000"), "{error}");
            assert!(parse(["tokenusage", "--request-timeout", "0"]).is_err());
        });
    }

    #[test]
    fn the_other_defaults_are_those_of_the_old_usage() {
        in_env(test_name!(), &[], || {
            let serve = parsed(&[]).serve;
            assert_eq!(serve.workers, 16);
            assert_eq!(serve.api_timeout, Duration::from_secs(30));
            assert_eq!(serve.api_connect_timeout, Duration::from_secs(10));
            assert_eq!(serve.memory_budget_mb, 48);
            assert_eq!(serve.account_cache_seconds, Duration::from_secs(30));
            assert_eq!(serve.auth.delegate_cache_seconds, Duration::from_secs(30));
            let Some(Command::Demo(demo)) = parsed(&["demo"]).command else {
                panic!("not the demo");
            };
            assert_eq!(demo.listen, "127.0.0.1:8780");
            assert_eq!(demo.transactions, 10_000);
            assert_eq!(demo.root, None);
            assert!(
                refused(&["demo", "--transactions", "1000001"])
                    .to_string()
                    .contains("up to 1000000")
            );
        });
    }

    #[test]
    fn the_sample_api_listens_on_8781_by_default_like_the_readme_says() {
        in_env(test_name!(), &[], || {
            let Some(Command::SampleApi(api)) = parsed(&["sample-api"]).command else {
                panic!("not the sample API");
            };
            assert_eq!(api.listen, "127.0.0.1:8781");
            assert_eq!(api.options(), SampleApiOptions::default());
            assert_eq!(
                api.options().anchor,
                None,
                "the history ends when it starts"
            );
        });
    }

    #[test]
    fn the_sample_api_takes_its_options_from_arguments_or_the_environment() {
        let vars = [
            ("TOKENUSAGE_SEED", "7"),
            ("TOKENUSAGE_HOSTILE", "yes"),
            ("TOKENUSAGE_ANCHOR", "2026-11-20 10:04:11"),
        ];
        in_env(test_name!(), &vars, || {
            let Some(Command::SampleApi(api)) = parsed(&[
                "sample-api",
                "--listen",
                "127.0.0.1:0",
                "--transactions",
                "20",
                "--balance",
                "1.5",
                "--delay-ms",
                "300",
                "--fault",
                "gzip-bomb",
            ])
            .command
            else {
                panic!("not the sample API");
            };
            assert_eq!(api.listen, "127.0.0.1:0");
            let options = api.options();
            assert_eq!(options.transactions, 20);
            assert_eq!(options.balance, 1.5);
            assert_eq!(options.delay, Duration::from_millis(300));
            assert_eq!(options.fault, Fault::GzipBomb);
            assert_eq!(options.seed, 7);
            assert_eq!(options.anchor, Some(1_795_169_051));
            assert!(options.hostile);
            let Some(Command::SampleApi(api)) =
                parsed(&["sample-api", "--anchor", "1800000000"]).command
            else {
                panic!("not the sample API");
            };
            assert_eq!(api.options().anchor, Some(1_800_000_000));
            let error = refused(&["sample-api", "--anchor", "yesterday"]).to_string();
            assert!(error.contains("--anchor"), "{error}");
            assert!(error.contains("not Unix seconds or a UTC time"), "{error}");
            assert!(parse(["tokenusage", "sample-api", "--transactions"]).is_err());
            assert!(parse(["tokenusage", "sample-api", "--balance", "NaN"]).is_err());
            assert!(parse(["tokenusage", "sample-api", "--what"]).is_err());
            let error = refused(&["sample-api", "--fault", "sometimes"]).to_string();
            for fault in Fault::ALL {
                assert!(error.contains(fault.name()), "{error}");
            }
        });
    }

    #[test]
    fn an_option_of_another_subcommand_is_refused() {
        in_env(test_name!(), &[], || {
            for args in [
                &["demo", "--workers", "4"][..],
                &["sample-api", "--auth", "none"],
                &["session-keys", "--listen", "x", "--session-id", "a"],
                &["fcgi", "--hostile"],
                &["--workers", "4", "demo"],
                &["--transactions", "5"],
            ] {
                let error = refused(args);
                assert_eq!(error.exit_code(), 2, "{args:?}: {error}");
            }
        });
    }

    #[test]
    fn help_and_version_exit_0() {
        in_env(test_name!(), &[], || {
            for args in [
                &["--help"][..],
                &["-h"],
                &["fcgi", "--help"],
                &["cgi", "--help"],
                &["demo", "--help"],
                &["sample-api", "--help"],
                &["session-keys", "--help"],
                &["help", "fcgi"],
            ] {
                let error = refused(args);
                assert_eq!(error.kind(), ErrorKind::DisplayHelp, "{args:?}");
                assert_eq!(error.exit_code(), 0, "{args:?}");
            }
            let version = refused(&["-V"]);
            assert_eq!(version.kind(), ErrorKind::DisplayVersion);
            assert_eq!(version.exit_code(), 0);
        });
    }

    #[test]
    fn every_option_is_read_from_its_tokenusage_variable_and_has_a_help() {
        fn check(command: &clap::Command) {
            assert!(
                command.get_about().is_some(),
                "{} has no about",
                command.get_name()
            );
            for arg in command.get_arguments() {
                let Some(long) = arg.get_long() else {
                    assert!(
                        arg.is_positional() || arg.get_id() == "help",
                        "{}",
                        arg.get_id()
                    );
                    continue;
                };
                assert!(arg.get_help().is_some(), "--{long} has no help");
                // One session, once; a check, not a setting of the server.
                if ["help", "version", "session-id", "test-config"].contains(&long) {
                    continue;
                }
                let env = arg.get_env().map(|env| env.to_string_lossy().into_owned());
                assert_eq!(env, Some(env_name(long)), "--{long}");
            }
            for sub in command.get_subcommands() {
                check(sub);
            }
        }
        let mut command = Cli::command();
        command.build();
        check(&command);
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn env_names_are_capitals_with_underscores() {
        assert_eq!(env_name("socket-mode"), "TOKENUSAGE_SOCKET_MODE");
    }
}
