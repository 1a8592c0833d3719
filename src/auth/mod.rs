//! Who may see the page: only the admins the PHP panel lets in, deny by default.
//!
//! Modes: `php-session` (read the admin's PHP session file, never write it), `delegate`
//! (ask the panel itself over loopback), `web-server` (trust `REMOTE_USER` and
//! `AUTH_TYPE`) and `none` (explicitly no check). Performs file I/O (session files) and
//! loopback HTTP (delegate).

pub mod csrf;
pub mod session_store;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::auth::csrf::first_cookie;
use crate::auth::session_store::{
    DEFAULT_MAX_LIFETIME, Refusal, SavePath, SavePathError, SessionStore, valid_session_id,
};
use crate::transport::request::Request;

/// Debian's `session.save_path`.
pub const DEFAULT_SESSION_PATH: &str = "/var/lib/php/sessions";
/// PHP's default session cookie.
pub const DEFAULT_SESSION_NAME: &str = "PHPSESSID";
/// Printed at start in `web-server` mode.
pub const WEB_SERVER_WARNING: &str = "--auth web-server: lets in any request that comes \
with REMOTE_USER and AUTH_TYPE from the web server; only a location that authenticates \
(nginx auth_basic with `fastcgi_param AUTH_TYPE Basic;`, auth_request, Apache Require) \
may pass them to this program.";
/// How to find the key that marks a login; shown when it is missing.
pub const FIND_THE_KEY: &str = "\
--auth php-session needs --session-key KEY (or KEY=VALUE): the $_SESSION entry the admin
panel sets when an admin logs in. To find it, log in to the admin panel, copy the value of
your PHPSESSID cookie from the browser, and run (as the web server's user):
    tokenusage session-keys --session-id THAT_VALUE
It lists the keys of your session with their types, values hidden; pick the one that says
you are logged in (for example admin_logged_in: bool). Other modes: --auth delegate,
--auth web-server, --auth none.";

/// The options that choose and set up a mode, as given (checked by [`Auth::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOptions {
    pub mode: String,
    pub session_name: String,
    pub session_path: String,
    pub session_key: Option<String>,
    pub session_max_lifetime: Duration,
    pub delegate_url: Option<String>,
    pub delegate_cache: Duration,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            mode: "php-session".into(),
            session_name: DEFAULT_SESSION_NAME.into(),
            session_path: DEFAULT_SESSION_PATH.into(),
            session_key: None,
            session_max_lifetime: DEFAULT_MAX_LIFETIME,
            delegate_url: None,
            delegate_cache: Duration::from_secs(30),
        }
    }
}

/// Why the admin check's options make no mode, or `session-keys` finds no session file.
/// `Display` says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// `php-session` without `--session-key`: says how to find it ([`FIND_THE_KEY`]).
    MissingSessionKey,
    /// `--session-path` is not a `session.save_path` we read.
    SessionPath { spec: String, reason: SavePathError },
    /// `delegate` without `--delegate-url`.
    MissingDelegateUrl,
    /// `--delegate-url` is not plain HTTP to loopback.
    DelegateUrl { url: String, reason: &'static str },
    /// `--auth` names no mode.
    UnknownMode(String),
    /// `session-keys --session-id` got something PHP would not make.
    NotASessionId,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::MissingSessionKey => f.write_str(FIND_THE_KEY),
            AuthError::SessionPath { spec, reason } => {
                write!(f, "--session-path {spec:?}: {reason}")
            }
            AuthError::MissingDelegateUrl => f.write_str(
                "--auth delegate needs --delegate-url, the admin panel on loopback, e.g. \
                 http://127.0.0.1/ct/admin/main.php",
            ),
            AuthError::DelegateUrl { url, reason } => write!(
                f,
                "--delegate-url {url}: {reason}: it must be http:// on 127.0.0.1, ::1 or \
                 localhost (the browser's cookies are forwarded there)"
            ),
            AuthError::UnknownMode(mode) => {
                write!(
                    f,
                    "--auth {mode:?}: use php-session, delegate, web-server or none"
                )
            }
            AuthError::NotASessionId => {
                f.write_str("not a PHP session id: 1 to 256 of A-Z a-z 0-9 , -")
            }
        }
    }
}

impl std::error::Error for AuthError {}

/// A checked mode.
pub enum Auth {
    PhpSession(SessionCheck),
    Delegate(DelegateCheck),
    WebServer,
    None,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `php-session`: a truthy (or the expected) value under a key of the session.
pub struct SessionCheck {
    cookie_name: String,
    store: SessionStore,
    key: String,
    expected: Option<String>,
    /// Sessions found locked, and when: for [`LOCKED_REMEMBERED`] they are refused without
    /// waiting again, so many requests on one held session cost one wait, not a worker's
    /// wait each.
    locked: Mutex<HashMap<String, Instant>>,
}

/// How long a session found locked is refused at once.
const LOCKED_REMEMBERED: Duration = Duration::from_secs(1);

/// `delegate`: the panel's own answer for the browser's cookies, remembered briefly.
pub struct DelegateCheck {
    url: String,
    cookie_name: String,
    remember_for: Duration,
    agent: ureq::Agent,
    answers: Mutex<HashMap<String, (Instant, bool)>>,
}

/// The most delegate answers remembered at once.
const MAX_REMEMBERED: usize = 10_000;

impl Auth {
    /// Checks the options; the error says what to change.
    pub fn new(options: &AuthOptions) -> Result<Auth, AuthError> {
        match options.mode.as_str() {
            "php-session" => {
                let spec = options
                    .session_key
                    .as_deref()
                    .filter(|k| !k.trim().is_empty())
                    .ok_or(AuthError::MissingSessionKey)?;
                let (key, expected) = match spec.split_once('=') {
                    Some((key, value)) => (key.trim().to_string(), Some(value.to_string())),
                    None => (spec.trim().to_string(), None),
                };
                let save_path = save_path(&options.session_path)?;
                Ok(Auth::PhpSession(SessionCheck {
                    cookie_name: options.session_name.clone(),
                    store: SessionStore {
                        max_lifetime: options.session_max_lifetime,
                        ..SessionStore::new(save_path)
                    },
                    key,
                    expected,
                    locked: Mutex::new(HashMap::new()),
                }))
            }
            "delegate" => {
                let url = options
                    .delegate_url
                    .clone()
                    .ok_or(AuthError::MissingDelegateUrl)?;
                check_delegate_url(&url).map_err(|reason| AuthError::DelegateUrl {
                    url: url.clone(),
                    reason,
                })?;
                let agent = ureq::Agent::config_builder()
                    .max_redirects(0)
                    .http_status_as_error(false)
                    .proxy(None)
                    .timeout_global(Some(Duration::from_secs(5)))
                    .build()
                    .new_agent();
                Ok(Auth::Delegate(DelegateCheck {
                    url,
                    cookie_name: options.session_name.clone(),
                    remember_for: options.delegate_cache,
                    agent,
                    answers: Mutex::new(HashMap::new()),
                }))
            }
            "web-server" => Ok(Auth::WebServer),
            "none" => Ok(Auth::None),
            other => Err(AuthError::UnknownMode(other.to_string())),
        }
    }

    /// The mode's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Auth::PhpSession(_) => "php-session",
            Auth::Delegate(_) => "delegate",
            Auth::WebServer => "web-server",
            Auth::None => "none",
        }
    }

    /// True when the request comes from a logged-in admin.
    pub fn allows(&self, request: &Request) -> bool {
        match self {
            Auth::PhpSession(check) => check.allows(request, SystemTime::now()),
            Auth::Delegate(check) => check.allows(request),
            // Both: nginx fills REMOTE_USER from any client's `Authorization: Basic`, even
            // where nothing checks it, and Debian's fastcgi_params passes it on; AUTH_TYPE
            // comes only from a web server that authenticated (Apache itself, an nginx
            // location that says so).
            Auth::WebServer => ["REMOTE_USER", "AUTH_TYPE"]
                .iter()
                .all(|name| !request.param(name).trim().is_empty()),
            Auth::None => true,
        }
    }
}

impl Auth {
    /// The admin's session, which the CSRF token is bound to: the session cookie's value
    /// (php-session, delegate), the web server's user (web-server), nothing (none).
    pub fn session_of(&self, request: &Request) -> String {
        let cookie = |name: &str| first_cookie(&request.cookie_header(), name);
        match self {
            Auth::PhpSession(check) => cookie(&check.cookie_name).unwrap_or_default(),
            Auth::Delegate(check) => cookie(&check.cookie_name).unwrap_or_default(),
            Auth::WebServer => format!("user:{}", request.param("REMOTE_USER")),
            Auth::None => String::new(),
        }
    }
}

impl SessionCheck {
    fn allows(&self, request: &Request, now: SystemTime) -> bool {
        let Some(id) = first_cookie(&request.cookie_header(), &self.cookie_name) else {
            return false;
        };
        if self.was_locked_lately(&id) {
            eprintln!(
                "tokenusage: php-session: session found locked by another request under {} s ago; treated as not logged in",
                LOCKED_REMEMBERED.as_secs()
            );
            return false;
        }
        // `read` refuses ids PHP would not have made.
        let session = match self.store.read(&id, now) {
            Ok(session) => session,
            // A request of PHP's holding the session (or a stranger holding a file of ours
            // locked) costs a bounded wait, then the login page; the log says why, never
            // with the session id.
            Err(refusal @ Refusal::Locked { .. }) => {
                eprintln!("tokenusage: php-session: {refusal}; treated as not logged in");
                self.remember_locked(id);
                return false;
            }
            Err(_) => return false,
        };
        match (session.get(&self.key), &self.expected) {
            (Some(value), Some(expected)) => value.matches(expected),
            (Some(value), None) => value.is_truthy(),
            (None, _) => false,
        }
    }

    fn was_locked_lately(&self, id: &str) -> bool {
        let locked = self.locked.lock().unwrap_or_else(|e| e.into_inner());
        locked
            .get(id)
            .is_some_and(|at| at.elapsed() < LOCKED_REMEMBERED)
    }

    fn remember_locked(&self, id: String) {
        let mut locked = self.locked.lock().unwrap_or_else(|e| e.into_inner());
        if locked.len() >= MAX_REMEMBERED {
            locked.retain(|_, at| at.elapsed() < LOCKED_REMEMBERED);
        }
        if locked.len() < MAX_REMEMBERED {
            locked.insert(id, Instant::now());
        }
    }
}

impl DelegateCheck {
    fn allows(&self, request: &Request) -> bool {
        let cookies = request.cookie_header();
        if first_cookie(&cookies, &self.cookie_name).is_none_or(|id| !valid_session_id(&id)) {
            return false;
        }
        // The panel decided on every cookie it was sent, so its answer is remembered for
        // exactly those cookies, not for the session cookie alone.
        if let Some((at, answer)) = self.lock().get(&cookies) {
            if at.elapsed() < self.remember_for {
                return *answer;
            }
        }
        let answer = self.ask_panel(&cookies);
        let mut answers = self.lock();
        if answers.len() >= MAX_REMEMBERED {
            let remember_for = self.remember_for;
            answers.retain(|_, (at, _)| at.elapsed() < remember_for);
        }
        if answers.len() < MAX_REMEMBERED {
            answers.insert(cookies, (Instant::now(), answer));
        }
        answer
    }

    /// A 200 that is not a redirect means the panel let these cookies in.
    fn ask_panel(&self, cookies: &str) -> bool {
        match self.agent.get(&self.url).header("Cookie", cookies).call() {
            Ok(response) => response.status().as_u16() == 200,
            Err(e) => {
                eprintln!("tokenusage: --auth delegate: {}: {e}", self.url);
                false
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, bool)>> {
        self.answers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Checks that `url` makes ureq connect to loopback over plain HTTP, read by the same URI
/// parser ureq uses (`http::Uri`), so the host checked is the host connected to: no
/// user-info (`http://127.0.0.1:80@evil/` connects to `evil`), and the host an address on
/// loopback or `localhost`.
fn check_delegate_url(url: &str) -> Result<(), &'static str> {
    let uri: ureq::http::Uri = url.parse().map_err(|_| "not a URL")?;
    if uri.scheme_str() != Some("http") {
        return Err("not http://");
    }
    let authority = uri.authority().ok_or("no host")?;
    if authority.as_str().contains('@') {
        return Err("user-info (user@ or host@) is not allowed");
    }
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|v6| v6.strip_suffix(']'))
        .unwrap_or(host);
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err("not a loopback host")
    }
}

/// Where a session file would be, for the `session-keys` command.
pub fn session_file(session_path: &str, id: &str) -> Result<PathBuf, AuthError> {
    save_path(session_path)?
        .file_for(id)
        .ok_or(AuthError::NotASessionId)
}

/// `--session-path`, read as PHP's `session.save_path`.
fn save_path(spec: &str) -> Result<SavePath, AuthError> {
    SavePath::parse(spec).map_err(|reason| AuthError::SessionPath {
        spec: spec.to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(mode: &str) -> AuthOptions {
        AuthOptions {
            mode: mode.into(),
            ..AuthOptions::default()
        }
    }

    #[test]
    fn php_session_without_a_key_refuses_to_start_and_says_how_to_find_it() {
        let error = Auth::new(&options("php-session")).unwrap_err();
        assert_eq!(error, AuthError::MissingSessionKey);
        assert!(
            error
                .to_string()
                .contains("tokenusage session-keys --session-id")
        );
        let mut blank = options("php-session");
        blank.session_key = Some("  ".into());
        assert_eq!(Auth::new(&blank).unwrap_err(), AuthError::MissingSessionKey);
    }

    #[test]
    fn delegate_only_talks_to_loopback() {
        let mut o = options("delegate");
        o.delegate_url = Some("http://10.0.0.5/ct/admin/main.php".into());
        assert!(
            Auth::new(&o)
                .unwrap_err()
                .to_string()
                .contains("must be http:// on 127.0.0.1")
        );
        o.delegate_url = None;
        let error = Auth::new(&o).unwrap_err();
        assert_eq!(error, AuthError::MissingDelegateUrl);
        assert!(
            error.to_string().contains("needs --delegate-url"),
            "{error}"
        );
        for ok in [
            "http://127.0.0.1/ct/admin/main.php",
            "http://127.0.0.2:8080/x",
            "http://[::1]:8080/x",
            "http://localhost/x",
        ] {
            o.delegate_url = Some(ok.into());
            assert!(Auth::new(&o).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("https://127.0.0.1/", "not http://"),
            ("http://127.0.0.1.evil.com/", "not a loopback host"),
            // The host connected to is the one after `@`.
            ("http://127.0.0.1:80@[::1]:18901/", "user-info"),
            ("http://127.0.0.1@192.0.2.1/", "user-info"),
            ("http://localhost:x@192.0.2.1/", "user-info"),
            ("http://[::ffff:192.0.2.1]/", "not a loopback host"),
            ("http:///x", "not a URL"),
            ("127.0.0.1/x", "not a URL"),
            ("/ct/admin/main.php", "not http://"),
        ] {
            o.delegate_url = Some(bad.into());
            let error = Auth::new(&o).unwrap_err().to_string();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn an_unknown_mode_is_refused() {
        let error = Auth::new(&options("maybe")).unwrap_err();
        assert_eq!(error, AuthError::UnknownMode("maybe".into()));
        assert!(error.to_string().contains("php-session"), "{error}");
    }

    #[test]
    fn a_bad_session_path_is_named_with_the_reason() {
        let mut o = options("php-session");
        o.session_key = Some("admin_logged_in".into());
        o.session_path = "relative/sessions".into();
        let error = Auth::new(&o).unwrap_err();
        assert!(matches!(error, AuthError::SessionPath { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with("--session-path \"relative/sessions\": "),
            "{error}"
        );
    }

    #[test]
    fn session_file_refuses_an_id_php_would_not_make() {
        assert_eq!(
            session_file("/var/lib/php/sessions", "../etc/passwd"),
            Err(AuthError::NotASessionId)
        );
        assert_eq!(
            session_file("/var/lib/php/sessions", "abc123"),
            Ok(PathBuf::from("/var/lib/php/sessions/sess_abc123"))
        );
        assert!(matches!(
            session_file("relative", "abc123"),
            Err(AuthError::SessionPath { .. })
        ));
    }

    #[test]
    fn web_server_mode_needs_both_a_remote_user_and_an_auth_type() {
        let auth = Auth::new(&options("web-server")).unwrap();
        let request = |user: &str, kind: &str| {
            Request::from_pairs([("REMOTE_USER", user), ("AUTH_TYPE", kind)])
        };
        assert!(auth.allows(&request("boss", "Basic")));
        assert!(auth.allows(&request("boss", "auth_request")));
        // What nginx passes for `curl -u admin:anything` where nothing checked it.
        assert!(!auth.allows(&Request::from_pairs([("REMOTE_USER", "admin")])));
        assert!(!auth.allows(&request("boss", "")));
        assert!(!auth.allows(&request("", "Basic")));
        assert!(!auth.allows(&request(" ", " ")));
        assert!(!auth.allows(&Request::default()));
    }

    #[test]
    fn without_a_session_cookie_nobody_gets_in() {
        let mut o = options("php-session");
        o.session_key = Some("admin_logged_in".into());
        o.session_path = std::env::temp_dir().display().to_string();
        let auth = Auth::new(&o).unwrap();
        assert!(!auth.allows(&Request::default()));
        let bad = Request::from_pairs([("HTTP_COOKIE", "PHPSESSID=../../etc/passwd")]);
        assert!(!auth.allows(&bad));
    }
}
