//! `tokenusage check-config` (and `tokenusage -t`): is this installation set up for the
//! page? One line per check, `ok` or a sentence saying what to fix; all must pass.
//!
//! [`render`] and [`passed`] are pure; [`run`] looks at the files (the config, a probe
//! file created and removed in each cache folder, the session folder) and, with
//! `--online`, makes one user/info call. It never shows more of the license key than
//! [`crate::data::config::LicenseConfig::masked_key`].

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::auth::session_store::SavePath;
use crate::auth::{self, Auth, AuthError, AuthOptions};
use crate::data::config::ConfigError;
use crate::data::install::Installation;
use crate::data::license_api::client::MAX_BODY_BYTES;
use crate::data::license_api::{ApiClient, Endpoint};

use super::{error_text, load_config};

/// What `tokenusage check-config` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckConfigOptions {
    /// `--root`; without it there is nothing to check but the admin check.
    pub root: Option<PathBuf>,
    pub auth: AuthOptions,
    /// Also call the license API once.
    pub online: bool,
    pub api_connect_timeout: Duration,
    pub api_timeout: Duration,
    /// The zone of a config that names none (`--timezone`).
    pub timezone: chrono_tz::Tz,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok(String),
    /// Passes, but says something the admin should know.
    Warning(String),
    /// What to fix.
    Fix(String),
}

/// A check: what was looked at, and the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub subject: String,
    pub verdict: Verdict,
}

impl Finding {
    fn new(subject: impl Into<String>, verdict: Verdict) -> Self {
        Finding {
            subject: subject.into(),
            verdict,
        }
    }
}

/// One line per finding (pure).
pub fn render(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| match &f.verdict {
            Verdict::Ok(note) if note.is_empty() => format!("{}: ok\n", f.subject),
            Verdict::Ok(note) => format!("{}: ok ({note})\n", f.subject),
            Verdict::Warning(text) => format!("{}: warning: {text}\n", f.subject),
            Verdict::Fix(text) => format!("{}: {text}\n", f.subject),
        })
        .collect()
}

/// True when nothing needs fixing (warnings pass).
pub fn passed(findings: &[Finding]) -> bool {
    findings
        .iter()
        .all(|f| !matches!(f.verdict, Verdict::Fix(_)))
}

/// Runs the checks, writes one line each; returns 0 when all pass, else 1.
pub fn run(options: &CheckConfigOptions, out: &mut dyn Write) -> u8 {
    let findings = findings(options);
    let _ = out.write_all(render(&findings).as_bytes());
    let _ = out.flush();
    if passed(&findings) { 0 } else { 1 }
}

fn findings(options: &CheckConfigOptions) -> Vec<Finding> {
    let mut findings = Vec::new();
    match &options.root {
        Some(root) => installation(root, options, &mut findings),
        // Serving many sites, each found per request: only the admin check applies.
        None => findings.push(Finding::new(
            "installation",
            Verdict::Warning(
                "no --root given, so no config or cache folder was checked: name an \
                 installation's ct folder with --root DIR (or TOKENUSAGE_ROOT)"
                    .into(),
            ),
        )),
    }
    findings.extend(admin_check(&options.auth));
    findings
}

fn installation(root: &Path, options: &CheckConfigOptions, findings: &mut Vec<Finding>) {
    let install = Installation::new(root);
    let file = install
        .config_candidates()
        .into_iter()
        .find(|path| path.is_file());
    let subject = match &file {
        Some(file) => format!("config file {}", file.display()),
        None => "config file".to_string(),
    };
    let config = load_config(root, options.timezone);
    findings.push(Finding::new(
        subject,
        match &config {
            Ok(config) => Verdict::Ok(format!(
                "license key {}, domain {}, email set",
                config.masked_key(),
                config.credentials.domain
            )),
            Err(ConfigError::NotFound(_)) => Verdict::Fix(format!(
                "not found: put the site's config.inc.php in {}",
                install.dat().display()
            )),
            Err(error) => Verdict::Fix(format!(
                "{}: fix the file (license_key, domain and email are required)",
                error
                    .summary(&crate::data::i18n::Strings::english())
                    .trim_end_matches('.')
            )),
        },
    ));
    findings.push(writable("cache folder", &install.dat(), true));
    let transactions = install.transaction_cache_dir();
    if transactions.exists() {
        findings.push(writable("transaction cache folder", &transactions, false));
    }
    if options.online {
        let verdict = match &config {
            Ok(config) => {
                let api = ApiClient::new(
                    options.api_connect_timeout,
                    options.api_timeout,
                    MAX_BODY_BYTES,
                );
                match api.call(&config.credentials, Endpoint::UserInfo) {
                    Ok(_) => Verdict::Ok(format!(
                        "user/info answered at {}",
                        config.credentials.api_url
                    )),
                    Err(error) => Verdict::Fix(format!(
                        "user/info at {} failed ({}): check the api_url in the config, \
                         the network and the license",
                        config.credentials.api_url,
                        error_text(&error)
                    )),
                }
            }
            Err(_) => Verdict::Fix("not called: the config must be fixed first".into()),
        };
        findings.push(Finding::new("license API", verdict));
    }
}

/// Whether this user can create a file in `dir`: a probe file made and removed.
fn writable(what: &str, dir: &Path, required: bool) -> Finding {
    let subject = format!("{what} {}", dir.display());
    if !dir.is_dir() {
        let verdict = if required {
            Verdict::Fix("does not exist: create it, writable by the web server's user".into())
        } else {
            Verdict::Ok("not there yet".into())
        };
        return Finding::new(subject, verdict);
    }
    let probe = dir.join(format!(".tokenusage-check-config.{}", std::process::id()));
    let created = OpenOptions::new().write(true).create_new(true).open(&probe);
    let verdict = match created {
        Ok(_) => {
            let _ = fs::remove_file(&probe);
            Verdict::Ok(String::new())
        }
        Err(error) => Verdict::Fix(format!(
            "not writable by this user ({error}): make it writable by the user the page \
             runs as (e.g. chown www-data), and run this check as that user"
        )),
    };
    Finding::new(subject, verdict)
}

fn admin_check(options: &AuthOptions) -> Vec<Finding> {
    let subject = format!("admin check --auth {}", options.mode);
    let auth = match Auth::new(options) {
        Ok(auth) => auth,
        Err(AuthError::MissingSessionKey) => {
            return vec![Finding::new(
                subject,
                Verdict::Fix(
                    "no --session-key given: name the $_SESSION entry that marks an admin's \
                     login (`tokenusage session-keys --session-id ID` helps find it)"
                        .into(),
                ),
            )];
        }
        Err(error) => return vec![Finding::new(subject, Verdict::Fix(format!("{error}")))],
    };
    match auth {
        Auth::PhpSession(_) => {
            let mut findings = vec![Finding::new(subject, Verdict::Ok(String::new()))];
            if let Ok(save_path) = SavePath::parse(&options.session_path) {
                findings.push(session_folder(&save_path));
            }
            findings
        }
        Auth::WebServer => vec![Finding::new(
            subject,
            Verdict::Warning(auth::WEB_SERVER_WARNING.into()),
        )],
        Auth::None => vec![Finding::new(
            subject,
            Verdict::Warning("anyone who reaches this URL sees the dashboard".into()),
        )],
        Auth::Delegate(_) => vec![Finding::new(subject, Verdict::Ok(String::new()))],
    }
}

/// Whether this user can reach session files in the folder: PHP's folder is often
/// `1733` (no listing), so a name is looked up rather than the folder listed.
fn session_folder(save_path: &SavePath) -> Finding {
    let dir = &save_path.dir;
    let subject = format!("session folder {}", dir.display());
    let verdict = if !dir.is_dir() {
        Verdict::Fix(
            "does not exist: give PHP's session.save_path with --session-path \
             (php -i | grep session.save_path)"
                .into(),
        )
    } else {
        match fs::metadata(dir.join("sess_tokenusage-check-config")) {
            Ok(_) => Verdict::Ok(String::new()),
            Err(error) if error.kind() == ErrorKind::NotFound => Verdict::Ok(String::new()),
            Err(error) => Verdict::Fix(format!(
                "not readable by this user ({error}): run the page as the web server's \
                 user, who can read PHP's sessions"
            )),
        }
    };
    Finding::new(subject, verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_finding_is_one_line_ok_warning_or_what_to_fix() {
        let findings = [
            Finding::new(
                "config file /c",
                Verdict::Ok("license key ABCDEFGH...".into()),
            ),
            Finding::new("cache folder /c/dat", Verdict::Ok(String::new())),
            Finding::new(
                "admin check --auth web-server",
                Verdict::Warning("careful".into()),
            ),
        ];
        assert_eq!(
            render(&findings),
            "config file /c: ok (license key ABCDEFGH...)\n\
             cache folder /c/dat: ok\n\
             admin check --auth web-server: warning: careful\n"
        );
        assert!(passed(&findings), "warnings pass");
        let failing = [Finding::new(
            "cache folder /c/dat",
            Verdict::Fix("fix it".into()),
        )];
        assert!(!passed(&failing));
        assert_eq!(render(&failing), "cache folder /c/dat: fix it\n");
    }

    #[test]
    fn php_session_without_a_key_says_to_give_one() {
        let findings = admin_check(&AuthOptions::default());
        assert_eq!(findings.len(), 1);
        assert!(
            matches!(&findings[0].verdict, Verdict::Fix(text) if text.contains("--session-key")),
            "{findings:?}"
        );
    }

    #[test]
    fn without_a_root_only_the_admin_check_is_checked_with_a_warning() {
        let options = CheckConfigOptions {
            root: None,
            auth: AuthOptions {
                mode: "delegate".into(),
                delegate_url: Some("http://127.0.0.1/ct/admin/main.php".into()),
                ..AuthOptions::default()
            },
            online: true,
            api_connect_timeout: Duration::from_secs(1),
            api_timeout: Duration::from_secs(1),
            timezone: chrono_tz::Tz::UTC,
        };
        let findings = findings(&options);
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert!(matches!(findings[0].verdict, Verdict::Warning(_)));
        assert!(passed(&findings));
    }

    #[test]
    fn web_server_mode_passes_with_its_warning() {
        let options = AuthOptions {
            mode: "web-server".into(),
            ..AuthOptions::default()
        };
        let findings = admin_check(&options);
        assert_eq!(
            findings[0].verdict,
            Verdict::Warning(auth::WEB_SERVER_WARNING.into())
        );
        assert!(passed(&findings));
    }
}
