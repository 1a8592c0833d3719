//! The license config: `ct/dat/config.inc.php` (or `ct/config.inc.php`) read with our PHP
//! literal parser, checked into a [`LicenseConfig`], and re-read when the file changes.
//!
//! [`from_php`] is pure; [`ConfigStore`] does the file I/O and remembers each file's
//! result by size and modification time.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono_tz::Tz;

use crate::data::cache::HistoryFiles;
use crate::data::i18n::Strings;
use crate::data::install::Installation;
use crate::data::license_api::Credentials;
use crate::data::license_api::client::DEFAULT_API_URL;
use crate::data::secret::Secret;
use crate::data::stamp::FileStamp;
use crate::php::config::{PhpConfig, PhpValue, parse_config};

/// Where a setting may come from, in order of preference.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// `$name['key']`
    Entry(&'static str, &'static str),
    /// `$name`
    Variable(&'static str),
    /// `define('NAME', ...)`
    Constant(&'static str),
}

use Source::{Constant, Entry, Variable};

/// The variables read for each setting (the README lists them).
const LICENSE_KEY: &[Source] = &[Entry("license_config", "license_key")];
const DOMAIN: &[Source] = &[Entry("license_config", "domain")];
const EMAIL: &[Source] = &[Entry("license_config", "email")];
const API_URL: &[Source] = &[Entry("license_config", "api_url")];
const DEMO_MODE: &[Source] = &[
    Entry("license_config", "demo_mode"),
    Variable("demo_mode"),
    Entry("config", "demo_mode"),
    Constant("DEMO_MODE"),
];
const TIMEZONE: &[Source] = &[
    Variable("timezone"),
    Entry("config", "timezone"),
    Constant("TIMEZONE"),
];
const LANGUAGE: &[Source] = &[
    Variable("admin_language"),
    Entry("config", "admin_language"),
    Constant("ADMIN_LANGUAGE"),
    Variable("language"),
];

/// A checked license config.
#[derive(Debug, Clone, PartialEq)]
pub struct LicenseConfig {
    pub credentials: Credentials,
    /// The installation's secret (CSRF tokens, the stored answers' owner).
    pub secret: Secret,
    /// `credentials.fingerprint(&secret)`, computed once per config load.
    pub credentials_id: String,
    /// The domain's transaction cache files, named once per config load.
    pub history_files: HistoryFiles,
    pub demo_mode: bool,
    /// The admin's time zone: the config's, else `--timezone` (what php.ini's
    /// `date.timezone` says), else UTC; every date and day boundary of the page.
    pub timezone: Tz,
    pub language: Option<String>,
    /// The page's strings in that language (English where untranslated).
    pub strings: Strings,
}

impl LicenseConfig {
    /// The license key as debug output and logs may show it: 8 characters and `...`.
    pub fn masked_key(&self) -> String {
        mask_key(&self.credentials.license_key)
    }
}

/// At most the first 8 characters of a license key, then `...`.
pub fn mask_key(key: &str) -> String {
    let shown: String = key.chars().take(8).collect();
    format!("{shown}...")
}

/// Why there is no usable config; each becomes the "Unable to Load Account Data" page and
/// a log line naming the file.
///
/// `Clone` because the [`ConfigStore`] hands the same result to every request until the
/// file changes; the read error is shared for that.
#[derive(Debug, Clone)]
pub enum ConfigError {
    /// None of the candidate files exists.
    NotFound(Vec<PathBuf>),
    /// The file exists but reading it failed; `cause` is also the error's `source()`.
    Unreadable {
        file: PathBuf,
        cause: Arc<io::Error>,
    },
    /// A required `$license_config` entry is absent or blank.
    Missing { file: PathBuf, key: &'static str },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NotFound(paths) => {
                let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                write!(f, "no config file: tried {}", names.join(", "))
            }
            ConfigError::Unreadable { file, cause } => {
                write!(f, "{}: cannot read: {cause}", file.display())
            }
            ConfigError::Missing { file, key } => write!(
                f,
                "{}: $license_config['{key}'] is missing or empty",
                file.display()
            ),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Unreadable { cause, .. } => Some(&**cause),
            ConfigError::NotFound(_) | ConfigError::Missing { .. } => None,
        }
    }
}

impl ConfigError {
    /// What the error page may say, in its language: the problem without the server's
    /// paths.
    pub fn summary(&self, strings: &Strings) -> String {
        match self {
            ConfigError::NotFound(_) => strings.get("token_usage_config_no_file").into(),
            ConfigError::Unreadable { .. } => strings.get("token_usage_config_unreadable").into(),
            ConfigError::Missing { key, .. } => strings
                .get("token_usage_config_missing_key")
                .replace("{key}", key),
        }
    }
}

/// Checks a parsed config file (pure); `secret` gives the installation's, asked only for
/// a complete config, so nothing is made for a file that is not a ComusThumbz config.
pub fn from_php(
    php: &PhpConfig,
    file: &Path,
    fallback_zone: Tz,
    secret: impl FnOnce() -> Secret,
) -> Result<LicenseConfig, ConfigError> {
    let required = |sources: &[Source], key: &'static str| {
        text_of(php, sources).ok_or_else(|| ConfigError::Missing {
            file: file.to_path_buf(),
            key,
        })
    };
    let credentials = Credentials {
        license_key: required(LICENSE_KEY, "license_key")?,
        domain: required(DOMAIN, "domain")?,
        email: required(EMAIL, "email")?,
        api_url: text_of(php, API_URL).unwrap_or_else(|| DEFAULT_API_URL.to_string()),
    };
    let timezone = php
        .timezone
        .clone()
        .or_else(|| text_of(php, TIMEZONE))
        .and_then(|name| name.parse::<Tz>().ok())
        .unwrap_or(fallback_zone);
    let secret = secret();
    Ok(LicenseConfig {
        credentials_id: credentials.fingerprint(&secret),
        secret,
        history_files: HistoryFiles::of(&credentials.domain),
        credentials,
        demo_mode: value_of(php, DEMO_MODE).is_some_and(PhpValue::is_truthy),
        timezone,
        language: text_of(php, LANGUAGE),
        strings: Strings::english(),
    })
}

fn value_of<'a>(php: &'a PhpConfig, sources: &[Source]) -> Option<&'a PhpValue> {
    sources.iter().find_map(|source| match *source {
        Entry(name, key) => php.variables.get(name)?.get(key),
        Variable(name) => php.variables.get(name),
        Constant(name) => php.constants.get(name),
    })
}

/// A setting as trimmed, non-empty text.
fn text_of(php: &PhpConfig, sources: &[Source]) -> Option<String> {
    sources.iter().find_map(|source| {
        let text = value_of(php, std::slice::from_ref(source))?.as_text()?;
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_string())
    })
}

/// A loaded config, shared by the requests that use it.
pub type Loaded = Result<Arc<LicenseConfig>, ConfigError>;

/// Each installation's config, re-read only when its file changes.
#[derive(Debug)]
pub struct ConfigStore {
    loaded: Mutex<HashMap<PathBuf, (PathBuf, FileStamp, Loaded)>>,
    /// The zone of a config that names none (`--timezone`: PHP's `date.timezone`).
    fallback_zone: Tz,
}

impl Default for ConfigStore {
    fn default() -> Self {
        ConfigStore::with_zone(Tz::UTC)
    }
}

impl ConfigStore {
    /// A store whose configs without a zone of their own are in `fallback_zone`.
    pub fn with_zone(fallback_zone: Tz) -> Self {
        ConfigStore {
            loaded: Mutex::default(),
            fallback_zone,
        }
    }

    /// The installation's config (a file's version is read once); a failure is the
    /// caller's to report, with the request or command it stopped.
    pub fn load(&self, install: &Installation) -> Loaded {
        let candidates = install.config_candidates();
        let Some((file, stamp)) = candidates.iter().find_map(|path| {
            let meta = fs::metadata(path).ok()?;
            meta.is_file().then(|| (path.clone(), FileStamp::of(&meta)))
        }) else {
            return Err(ConfigError::NotFound(candidates.to_vec()));
        };
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((known_file, known_stamp, config)) = loaded.get(&install.root) {
            if *known_file == file && *known_stamp == stamp {
                return config.clone();
            }
        }
        let config = read_config(&file, &install.dat(), self.fallback_zone).map(Arc::new);
        loaded.insert(install.root.clone(), (file, stamp, config.clone()));
        config
    }
}

fn read_config(file: &Path, dat: &Path, fallback_zone: Tz) -> Result<LicenseConfig, ConfigError> {
    let bytes = fs::read(file).map_err(|e| ConfigError::Unreadable {
        file: file.to_path_buf(),
        cause: Arc::new(e),
    })?;
    let php = parse_config(&String::from_utf8_lossy(&bytes));
    let mut config = from_php(&php, file, fallback_zone, || Secret::of_installation(dat))?;
    if let Some(dat) = file.parent() {
        config.strings = Strings::load(dat, config.language.as_deref());
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_of(source: &str) -> Result<LicenseConfig, ConfigError> {
        from_php(
            &parse_config(source),
            Path::new("/site/ct/dat/config.inc.php"),
            Tz::UTC,
            || Secret::from_bytes([0; 32]),
        )
    }

    const COMPLETE: &str = r#"<?php
        $license_config = array(
            'license_key' => 'ABCDEF1234567890',
            'domain' => 'example.com',
            'email' => 'owner@example.com',
        );
    "#;

    #[test]
    fn a_complete_config_gives_credentials_and_the_default_api_url() {
        let config = config_of(COMPLETE).unwrap();
        assert_eq!(config.credentials.license_key, "ABCDEF1234567890");
        assert_eq!(config.credentials.domain, "example.com");
        assert_eq!(config.credentials.email, "owner@example.com");
        assert_eq!(config.credentials.api_url, DEFAULT_API_URL);
        assert!(!config.demo_mode);
        assert_eq!(config.timezone, Tz::UTC);
    }

    #[test]
    fn a_missing_key_names_the_file_and_the_key() {
        let error = config_of("<?php $license_config = ['license_key' => 'K', 'domain' => 'd'];")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "/site/ct/dat/config.inc.php: $license_config['email'] is missing or empty"
        );
        let error = config_of("<?php $license_config['license_key'] = '  ';").unwrap_err();
        assert!(error.to_string().contains("['license_key']"));
    }

    #[test]
    fn demo_mode_timezone_language_and_api_url_are_read() {
        let source = format!(
            "{COMPLETE}
            $license_config['api_url'] = 'http://127.0.0.1:8081/api.php';
            define('DEMO_MODE', true);
            date_default_timezone_set('Europe/Berlin');
            $admin_language = 'de';"
        );
        let config = config_of(&source).unwrap();
        assert_eq!(config.credentials.api_url, "http://127.0.0.1:8081/api.php");
        assert!(config.demo_mode);
        assert_eq!(config.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(config.language.as_deref(), Some("de"));
    }

    #[test]
    fn an_unreadable_file_names_the_file_and_keeps_the_io_error_as_its_source() {
        use std::error::Error as _;
        let file = Path::new("/nonexistent/ct/dat/config.inc.php");
        let error = read_config(file, Path::new("/nonexistent/ct/dat"), Tz::UTC).unwrap_err();
        let source = error.source().and_then(|s| s.downcast_ref::<io::Error>());
        let Some(source) = source else {
            panic!("no io::Error source: {error:?}");
        };
        assert_eq!(source.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            error.to_string(),
            format!("/nonexistent/ct/dat/config.inc.php: cannot read: {source}")
        );
        assert_eq!(
            error.summary(&Strings::english()),
            "config.inc.php cannot be read."
        );
        let missing = config_of("<?php").unwrap_err();
        assert!(missing.source().is_none());
    }

    #[test]
    fn the_masked_key_shows_at_most_8_characters() {
        assert_eq!(mask_key("ABCDEF1234567890"), "ABCDEF12...");
        assert_eq!(mask_key("abc"), "abc...");
    }

    #[test]
    fn a_config_without_a_zone_takes_the_fallback_and_its_own_zone_wins() {
        let read = |source: &str| {
            from_php(
                &parse_config(source),
                Path::new("/site/ct/dat/config.inc.php"),
                chrono_tz::Asia::Tokyo,
                || Secret::from_bytes([0; 32]),
            )
            .unwrap()
            .timezone
        };
        assert_eq!(read(COMPLETE), chrono_tz::Asia::Tokyo);
        let own = format!("{COMPLETE} date_default_timezone_set('America/New_York');");
        assert_eq!(read(&own), chrono_tz::America::New_York);
    }

    #[test]
    fn an_unknown_timezone_falls_back_to_utc() {
        let config = config_of(&format!("{COMPLETE} $timezone = 'Mars/Olympus';")).unwrap();
        assert_eq!(config.timezone, Tz::UTC);
    }
}
