//! Where an installation lives: its `ct` root, config file and cache paths.
//!
//! One process serves many installations: the root is found per request from
//! `SCRIPT_FILENAME` (`.../ct/admin/tokenusage.php` -> `.../ct`) unless `--root` fixes it.
//! Pure path arithmetic; nothing here touches the file system.

use std::path::{Path, PathBuf};

/// The paths of one ComusThumbz installation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Installation {
    /// The `ct` folder.
    pub root: PathBuf,
}

impl Installation {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Installation { root: root.into() }
    }

    /// Finds the installation from the script path the web server passes: the page lives in
    /// `ct/admin/`, so the root is the parent of the script's folder.
    pub fn from_script_filename(script: &Path) -> Option<Self> {
        let script = strip_proxy_prefix(script);
        let admin = script.parent()?;
        if admin.file_name()? != "admin" {
            return None;
        }
        Some(Self::new(admin.parent()?))
    }

    /// `ct/dat`, where the config and the caches live.
    pub fn dat(&self) -> PathBuf {
        self.root.join("dat")
    }

    /// The config files to try, in order: `ct/dat/config.inc.php`, then `ct/config.inc.php`.
    pub fn config_candidates(&self) -> [PathBuf; 2] {
        [
            self.dat().join("config.inc.php"),
            self.root.join("config.inc.php"),
        ]
    }

    /// `ct/dat/pricing_cache.json`.
    pub fn pricing_cache(&self) -> PathBuf {
        self.dat().join("pricing_cache.json")
    }

    /// `ct/dat/transaction_cache/`.
    pub fn transaction_cache_dir(&self) -> PathBuf {
        self.dat().join("transaction_cache")
    }

    /// Our own file of the last good user/info and user/stats answers.
    pub fn last_good_file(&self) -> PathBuf {
        self.dat().join("tokenusage_last_good.json")
    }

    /// The kept history (`report`, the page's table, charts and CSV read it).
    pub fn kept_history(&self) -> PathBuf {
        self.dat().join("tokenusage_history.sqlite")
    }

    /// The lock a request holds while it fetches pricing (one fetch, not a stampede).
    pub fn pricing_lock(&self) -> PathBuf {
        self.dat().join(".tokenusage_pricing.lock")
    }

    /// The lock a request holds while it calls user/info or user/stats.
    pub fn account_lock(&self, endpoint: crate::data::license_api::Endpoint) -> PathBuf {
        let name = endpoint.name().replace('/', "_");
        self.dat().join(format!(".tokenusage_{name}.lock"))
    }

    /// The lock a request holds while it fetches the history.
    pub fn history_lock(&self) -> PathBuf {
        self.dat().join(".tokenusage_history.lock")
    }
}

/// Apache's mod_proxy_fcgi may send `proxy:fcgi://HOST/var/www/...` (PHP-FPM strips the
/// same prefix); the path starts at the first `/` after the authority.
fn strip_proxy_prefix(script: &Path) -> &Path {
    let Some(text) = script.to_str() else {
        return script;
    };
    match text.strip_prefix("proxy:fcgi://") {
        Some(rest) => rest
            .find('/')
            .map_or(script, |slash| Path::new(&rest[slash..])),
        None => script,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_from_the_admin_script_path() {
        let install =
            Installation::from_script_filename(Path::new("/var/www/site/ct/admin/tokenusage.php"))
                .unwrap();
        assert_eq!(install.root, Path::new("/var/www/site/ct"));
        assert_eq!(
            install.pricing_cache(),
            Path::new("/var/www/site/ct/dat/pricing_cache.json")
        );
        assert_eq!(
            install.transaction_cache_dir(),
            Path::new("/var/www/site/ct/dat/transaction_cache")
        );
    }

    #[test]
    fn apaches_proxy_prefix_is_stripped() {
        let install = Installation::from_script_filename(Path::new(
            "proxy:fcgi://localhost/var/www/site/ct/admin/tokenusage.php",
        ))
        .unwrap();
        assert_eq!(install.root, Path::new("/var/www/site/ct"));
    }

    #[test]
    fn a_script_outside_an_admin_folder_names_no_installation() {
        assert_eq!(
            Installation::from_script_filename(Path::new("/var/www/tokenusage.php")),
            None
        );
        assert_eq!(Installation::from_script_filename(Path::new("")), None);
        assert_eq!(Installation::from_script_filename(Path::new("/")), None);
    }
}
