//! `tokenusage demo`: the sample license API and a local HTTP preview of the real page,
//! like `php -S`, over a temporary copy of a sample installation (`ct/`) whose config
//! points at that API.
//!
//! I/O: reads the installation's config; writes the copy (page, config, language files)
//! into a fresh folder under the temporary directory and removes it at the end, so the
//! demo never writes into `ct/` and two demos never share caches; binds two loopback
//! sockets: the sample API (a free port unless one is given) and the preview.

use std::fmt;
use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::app::{Site, SiteOptions, handle};
use crate::auth::Auth;
use crate::data::config::{ConfigError, ConfigStore};
use crate::data::install::Installation;
use crate::dev::http::{Handler, HttpRequest, HttpResponse, HttpServer, cgi_request_from_http};
use crate::dev::sample_api::{SampleApi, SampleApiOptions};
use crate::transport::response::Response;
use crate::transport::signals;
use crate::view::render::TemplateError;

/// The URL path the preview serves the page at.
pub const PAGE_PATH: &str = "/ct/admin/tokenusage.php";
/// Where the sample API listens unless told otherwise: a free loopback port.
pub const FREE_LOOPBACK_PORT: &str = "127.0.0.1:0";
/// Handler threads of the preview.
const PREVIEW_WORKERS: usize = 8;

/// What `tokenusage demo` serves.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions<'a> {
    /// The installation shown; copied, never written.
    pub root: &'a Path,
    /// The preview's address (loopback only: the demo has no admin check).
    pub listen: &'a str,
    /// The sample API's address; [`FREE_LOOPBACK_PORT`] when `None`.
    pub api_listen: Option<&'a str>,
    /// Transactions in the sample history.
    pub transactions: usize,
}

/// Why the demo could not start or run. `Display` says what, `source()` why.
#[derive(Debug)]
pub enum DemoError {
    /// The sample installation's config does not load.
    Config(ConfigError),
    /// The preview or the sample API could not listen.
    Listen {
        what: &'static str,
        addr: String,
        source: io::Error,
    },
    /// The preview would be reachable from elsewhere, with no admin check.
    NotLoopback(SocketAddr),
    /// The copy of the installation could not be made.
    Copy {
        from: PathBuf,
        source: io::Error,
    },
    /// The copy's config does not load, or does not name the sample API.
    CopyConfig(String),
    Templates(TemplateError),
    Serve(io::Error),
}

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DemoError::Config(_) => f.write_str("the demo needs a complete sample config"),
            DemoError::Listen { what, addr, .. } => write!(f, "cannot start the {what} on {addr}"),
            DemoError::NotLoopback(addr) => write!(
                f,
                "the demo has no admin check, so it listens on loopback only, not {addr}"
            ),
            DemoError::Copy { from, .. } => {
                write!(f, "cannot copy {} for the demo", from.display())
            }
            DemoError::CopyConfig(why) => write!(f, "the demo's copy of the config {why}"),
            DemoError::Templates(_) => f.write_str("the templates do not build"),
            DemoError::Serve(_) => f.write_str("the preview stopped serving"),
        }
    }
}

impl std::error::Error for DemoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DemoError::Config(e) => Some(e),
            DemoError::Listen { source, .. } | DemoError::Copy { source, .. } => Some(source),
            DemoError::Templates(e) => Some(e),
            DemoError::Serve(e) => Some(e),
            DemoError::NotLoopback(_) | DemoError::CopyConfig(_) => None,
        }
    }
}

/// A running demo: the sample API, the preview, and the copy they serve. Stops, and
/// removes the copy, when dropped.
pub struct Demo {
    // Field order is drop order: the preview stops before the API it calls, and the
    // copy goes last.
    preview: HttpServer,
    api: SampleApi,
    copy: Workspace,
}

impl Demo {
    /// Checks the options, copies the installation and starts both servers. Handlers of
    /// the preview watch `shutdown`; [`wait`](Self::wait) returns once it is set.
    pub fn start(options: &DemoOptions, shutdown: Arc<AtomicBool>) -> Result<Demo, DemoError> {
        let install = Installation::new(options.root);
        // Checked first: the copy needs the credentials, and a wrong one changes nothing.
        ConfigStore::default()
            .load(&install)
            .map_err(DemoError::Config)?;
        let listen_error = |what, addr: &str| {
            let addr = addr.to_string();
            move |source| DemoError::Listen { what, addr, source }
        };
        let listener =
            TcpListener::bind(options.listen).map_err(listen_error("preview", options.listen))?;
        // The demo has no admin check (--auth none): it may only be reachable from here.
        let local = listener
            .local_addr()
            .map_err(listen_error("preview", options.listen))?;
        if !local.ip().is_loopback() {
            return Err(DemoError::NotLoopback(local));
        }
        let api_listen = options.api_listen.unwrap_or(FREE_LOOPBACK_PORT);
        let api_listener =
            TcpListener::bind(api_listen).map_err(listen_error("sample API", api_listen))?;
        // No anchor: the history ends now, so the charts, runway and breakdown show
        // recent activity.
        let sample = SampleApiOptions {
            transactions: options.transactions,
            anchor: None,
            ..SampleApiOptions::default()
        };
        let api = SampleApi::serve(api_listener, sample)
            .map_err(listen_error("sample API", api_listen))?;
        let copy = Workspace::make(&install, &api.url())?;
        // The demo is a preview on loopback: no admin check, said at start by the caller.
        let site = Site::new(SiteOptions {
            root: Some(copy.root()),
            ..SiteOptions::new(Auth::None)
        })
        .map_err(DemoError::Templates)?;
        let handler = page_handler(site, &copy.root());
        let preview = HttpServer::start(listener, PREVIEW_WORKERS, handler, shutdown)
            .map_err(listen_error("preview", options.listen))?;
        Ok(Demo { preview, api, copy })
    }

    /// The preview's address.
    pub fn addr(&self) -> SocketAddr {
        self.preview.addr()
    }

    /// The page's URL: `http://127.0.0.1:8780/ct/admin/tokenusage.php`.
    pub fn page_url(&self) -> String {
        format!("http://{}{PAGE_PATH}", self.addr())
    }

    /// The sample API's base URL, which the copy's config names.
    pub fn api_url(&self) -> String {
        self.api.url()
    }

    /// The copy of the installation the page shows (its `ct` folder).
    pub fn root(&self) -> PathBuf {
        self.copy.root()
    }

    /// Serves until the shutdown flag is set, then stops.
    pub fn wait(self) -> Result<(), DemoError> {
        let Demo { preview, api, copy } = self;
        let served = preview.wait().map_err(DemoError::Serve);
        api.stop();
        drop(copy);
        served
    }

    /// Stops both servers and removes the copy.
    pub fn stop(self) -> Result<(), DemoError> {
        let Demo { preview, api, copy } = self;
        let stopped = preview.stop().map_err(DemoError::Serve);
        api.stop();
        drop(copy);
        stopped
    }
}

/// Runs the demo until SIGINT or SIGTERM, saying where the page and the API are.
pub fn run(options: &DemoOptions) -> Result<(), DemoError> {
    // Handlers first: a Ctrl-C once the sockets exist must find them.
    let shutdown = signals::shutdown_flag();
    let demo = Demo::start(options, shutdown)?;
    println!("Sample license API: {}", demo.api_url());
    println!("Token Usage dashboard: {}", demo.page_url());
    println!(
        "Showing a copy of {} in {} (removed at exit).",
        options.root.display(),
        demo.root().display()
    );
    println!("Press Ctrl-C to stop.");
    demo.wait()
}

/// The preview's handler: the page at [`PAGE_PATH`] from the installation at `root`,
/// `/` redirected there, and 404 for anything else.
pub fn page_handler(site: Site, root: &Path) -> Handler {
    let script = root.join("admin").join("tokenusage.php");
    Arc::new(move |request: &HttpRequest| {
        let response = match request.path() {
            PAGE_PATH => handle(&cgi_request_from_http(request, &script, PAGE_PATH), &site),
            "/" => Response::redirect(PAGE_PATH),
            _ => Response::text(
                404,
                format!(
                    "Not part of the demo: only {PAGE_PATH} is served \
                     (the rest of the admin panel is PHP).\n"
                ),
            ),
        };
        HttpResponse::from(response)
    })
}

/// The sample installation beside the binary's source: `./ct` when run from the repo.
pub fn default_root() -> PathBuf {
    PathBuf::from("ct")
}

/// The demo's own installation: a folder under the temporary directory holding
/// `ct/admin/tokenusage.php`, `ct/dat/config.inc.php` (pointed at the sample API) and
/// `ct/dat/lang/`; the caches the page writes go there too. Removed on drop.
struct Workspace {
    dir: PathBuf,
}

impl Workspace {
    fn make(original: &Installation, api_url: &str) -> Result<Workspace, DemoError> {
        let copy_error = |source| DemoError::Copy {
            from: original.root.clone(),
            source,
        };
        let copy = Workspace::new_dir().map_err(copy_error)?;
        copy.fill(original, api_url).map_err(copy_error)?;
        let config = ConfigStore::default()
            .load(&Installation::new(copy.root()))
            .map_err(|e| DemoError::CopyConfig(format!("does not load: {e}")))?;
        if config.credentials.api_url != api_url {
            return Err(DemoError::CopyConfig(format!(
                "still names {}, not the sample API",
                config.credentials.api_url
            )));
        }
        Ok(copy)
    }

    /// A new private folder with a name no other demo has.
    fn new_dir() -> io::Result<Workspace> {
        let mut attempts = 0;
        loop {
            let name = format!(
                "tokenusage-demo-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            );
            let dir = std::env::temp_dir().join(name);
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Workspace { dir }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 8 => {
                    attempts += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.join("ct")
    }

    fn fill(&self, original: &Installation, api_url: &str) -> io::Result<()> {
        let copy = Installation::new(self.root());
        let admin = copy.root.join("admin");
        fs::create_dir_all(&admin)?;
        fs::create_dir_all(copy.dat().join("lang"))?;
        let page = original.root.join("admin").join("tokenusage.php");
        if page.is_file() {
            fs::copy(&page, admin.join("tokenusage.php"))?;
        }
        let config_file = original
            .config_candidates()
            .into_iter()
            .find(|path| path.is_file())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no config file"))?;
        let text = fs::read_to_string(&config_file)?;
        fs::write(
            copy.dat().join("config.inc.php"),
            config_pointed_at(&text, api_url),
        )?;
        if let Ok(entries) = fs::read_dir(original.dat().join("lang")) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_file()) {
                    fs::copy(
                        entry.path(),
                        copy.dat().join("lang").join(entry.file_name()),
                    )?;
                }
            }
        }
        Ok(())
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The config `text` with its license `api_url` set to `api_url`: every literal
/// `http://...` or `https://...` assigned to it is replaced; without one, an assignment
/// is added at the end (before a closing `?>`).
fn config_pointed_at(text: &str, api_url: &str) -> String {
    let assignment = format!("$license_config['api_url'] = '{api_url}';\n");
    let mut lines: Vec<String> = Vec::new();
    let mut replaced = false;
    for line in text.split_inclusive('\n') {
        let names_api_url = line.contains("'api_url'") || line.contains("\"api_url\"");
        match quoted_url(line).filter(|_| names_api_url) {
            Some(url) => {
                lines.push(line.replacen(url, api_url, 1));
                replaced = true;
            }
            None => lines.push(line.to_string()),
        }
    }
    let mut out = lines.concat();
    if !replaced {
        let trimmed = out.trim_end();
        match trimmed.strip_suffix("?>") {
            Some(before) => out = format!("{}\n{assignment}?>\n", before.trim_end()),
            None => {
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(&assignment);
            }
        }
    }
    out
}

/// The first quoted `http://` or `https://` URL on a line, without its quotes.
fn quoted_url(line: &str) -> Option<&str> {
    let start = ["'http://", "\"http://", "'https://", "\"https://"]
        .iter()
        .filter_map(|open| line.find(open))
        .min()?;
    let quote = line[start..].chars().next()?;
    let rest = &line[start + 1..];
    rest.find(quote).map(|end| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preview_redirects_the_root_to_the_page_and_refuses_the_rest() {
        let site = Site::new(SiteOptions::new(Auth::None)).unwrap();
        let handler = page_handler(site, Path::new("ct"));
        let address = SocketAddr::from(([127, 0, 0, 1], 8780));
        let get = |target: &str| {
            handler(&HttpRequest {
                method: "GET".into(),
                target: target.into(),
                minor_version: 1,
                headers: Vec::new(),
                body: Vec::new(),
                remote_addr: address,
                local_addr: address,
            })
        };
        let root = get("/");
        assert_eq!(root.status, 302);
        assert_eq!(root.header("Location"), Some(PAGE_PATH));
        assert_eq!(get("/ct/admin/main.php").status, 404);
    }

    #[test]
    fn the_copys_config_names_the_sample_api_whatever_the_original_named() {
        let api = "http://127.0.0.1:41234/projects/api.php";
        let sample = "<?php\n$license_config = array(\n    'license_key' => 'K',\n);\n\
                      $license_config['api_url'] = 'http://127.0.0.1:8781/projects/api.php';\n\
                      $db_host = 'http://db.example/';\n?>\n";
        let pointed = config_pointed_at(sample, api);
        assert!(pointed.contains(&format!("$license_config['api_url'] = '{api}';\n")));
        assert!(!pointed.contains("8781"));
        assert!(pointed.contains("'http://db.example/'"), "other URLs stay");
        let in_array = "<?php $license_config = array(\n  \"api_url\" => \"https://x.test/a\",\n);";
        assert!(config_pointed_at(in_array, api).contains(&format!("\"api_url\" => \"{api}\",")));
        let without = "<?php\n$license_config = array('license_key' => 'K');\n?>\n";
        assert_eq!(
            config_pointed_at(without, api),
            format!(
                "<?php\n$license_config = array('license_key' => 'K');\n\
                 $license_config['api_url'] = '{api}';\n?>\n"
            )
        );
        let open = "<?php\n$x = 1;";
        assert!(
            config_pointed_at(open, api)
                .ends_with(&format!("$x = 1;\n$license_config['api_url'] = '{api}';\n"))
        );
    }

    /// A request over a fresh connection: status, head, body.
    fn exchange(addr: SocketAddr, request: &str) -> (u16, String, String) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        (
            head[9..12].parse().unwrap(),
            head.to_string(),
            body.to_string(),
        )
    }

    #[test]
    fn the_demos_history_ends_when_it_starts() {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("ct");
        let options = DemoOptions {
            root: &sample,
            listen: "127.0.0.1:0",
            api_listen: None,
            transactions: 10,
        };
        let before = chrono::Utc::now().timestamp();
        let demo = Demo::start(&options, Arc::new(AtomicBool::new(false))).unwrap();
        let after = chrono::Utc::now().timestamp();
        let (status, _, body) = exchange(
            demo.api.addr(),
            "GET /projects/api.php?endpoint=credits/history&license_key=K&limit=1 HTTP/1.1\r\n\
             Host: localhost\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        let newest = answer["data"]["transactions"][0]["created_at"]
            .as_str()
            .unwrap();
        let newest = chrono::NaiveDateTime::parse_from_str(newest, "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp();
        assert!(
            (before..=after).contains(&newest),
            "{newest} not in {before}..={after}"
        );
        demo.stop().unwrap();
    }

    #[test]
    fn two_demos_run_at_once_each_on_its_own_api_and_refresh_data_works() {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("ct");
        let options = DemoOptions {
            root: &sample,
            listen: "127.0.0.1:0",
            api_listen: None,
            transactions: 40,
        };
        let shutdown = Arc::new(AtomicBool::new(false));
        let first = Demo::start(&options, Arc::clone(&shutdown)).unwrap();
        let second = Demo::start(
            &DemoOptions {
                transactions: 30,
                ..options
            },
            shutdown,
        )
        .unwrap();
        assert_ne!(first.api_url(), second.api_url());
        assert!(first.page_url().ends_with(PAGE_PATH));
        let config = fs::read_to_string(first.root().join("dat/config.inc.php")).unwrap();
        assert!(config.contains(&first.api_url()));

        let get =
            format!("GET {PAGE_PATH} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let (status, head, page) = exchange(first.addr(), &get);
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("of 40 transactions"), "{page}");
        assert!(
            exchange(second.addr(), &get)
                .2
                .contains("of 30 transactions")
        );

        // The page's buttons are POST forms carrying the CSRF token of the cookie it set.
        let cookie = head
            .lines()
            .find_map(|l| l.strip_prefix("Set-Cookie: "))
            .and_then(|c| c.split(';').next())
            .expect("the page sets its CSRF cookie");
        let token = page
            .split("name=\"token\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the page's forms carry the token");
        let form = format!("token={token}");
        let post = format!(
            "POST {PAGE_PATH}?action=refresh_data HTTP/1.1\r\nHost: localhost\r\n\
             Cookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        );
        let (status, head, _) = exchange(first.addr(), &post);
        assert_eq!(
            status, 303,
            "Refresh Data answers with a redirect to the plain page"
        );
        assert!(head.contains("Location: ?"), "{head}");
        let flash = head
            .lines()
            .filter_map(|l| l.strip_prefix("Set-Cookie: "))
            .find(|c| c.starts_with("tokenusage_flash="))
            .and_then(|c| c.split(';').next())
            .expect("the redirect leaves the message for the page");
        let follow = format!(
            "GET {PAGE_PATH} HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}; {flash}\r\n\
             Connection: close\r\n\r\n"
        );
        let (status, _, refreshed) = exchange(first.addr(), &follow);
        assert_eq!(status, 200, "{refreshed}");
        assert!(
            refreshed.contains("Data refreshed successfully"),
            "{refreshed}"
        );

        let copies = [first.root(), second.root()];
        first.stop().unwrap();
        second.stop().unwrap();
        for copy in copies {
            assert!(!copy.exists(), "{} left behind", copy.display());
        }
    }
}
