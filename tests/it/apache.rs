//! CGI behind a real Apache (Debian's apache2, mod_cgid) on loopback, set up with the
//! README's `ScriptAlias` block. Apache turns a query string without `=` into the
//! program's command line, split at `+` (RFC 3875 4.4, the hole behind PHP-CGI's
//! CVE-2012-1823): a visitor's `?--auth+none` must change nothing.

use std::fs;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use tokenusage::dev::sample_api::SampleApi;
use tokenusage::transport::fastcgi::{group_id, user_id};

const APACHE: &str = "/usr/sbin/apache2";
const MODULES: &str = "/usr/lib/apache2/modules";
const PAGE: &str = "/ct/admin/tokenusage.php";
/// How long a visitor's request may take; a CGI that never answers takes longer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);

/// Our own apache2 serving a copy of the binary as CGI at [`PAGE`] over a copy of the
/// sample installation; on drop it is stopped and every process of that copy killed.
struct Apache {
    port: u16,
    child: Child,
    binary: PathBuf,
    dir: TempDir,
    _install: Install,
}

/// How the page reaches tokenusage: the shipped CGI snippet, or the shipped
/// mod_proxy_fcgi snippet to a responder on this unix socket.
enum Mode<'a> {
    Cgi,
    ProxyFcgi(&'a Path),
}

/// A shipped snippet from `dist/apache/`.
fn shipped(name: &str) -> String {
    fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("dist/apache")
            .join(name),
    )
    .unwrap()
}

impl Apache {
    fn start(api: &SampleApi) -> Apache {
        Self::start_as(api, Mode::Cgi)
    }

    fn start_as(api: &SampleApi, mode: Mode<'_>) -> Apache {
        assert!(
            Path::new(APACHE).exists(),
            "apache2 is not installed: run `sudo bash .ci/install`"
        );
        let dir = TempDir::new("apache");
        // Apache refuses to serve as root: then the CGI runs as www-data, which must be
        // able to reach the binary and the installation and write ct/dat.
        let as_root = unsafe { libc::geteuid() } == 0;
        let binary = dir.0.join("bin/tokenusage");
        fs::create_dir_all(binary.parent().unwrap()).unwrap();
        fs::copy(BIN, &binary).unwrap();
        let install = Install::new("apache-ct", &api.url());
        let sessions = dir.0.join("sessions");
        for folder in ["run", "sessions"] {
            fs::create_dir_all(dir.0.join(folder)).unwrap();
        }
        for path in [&dir.0, &binary, &install.dir.0, &install.ct] {
            fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        for path in [&install.ct.join("dat"), &sessions] {
            fs::set_permissions(path, fs::Permissions::from_mode(0o777)).unwrap();
        }
        let port = free_port();
        let root = dir.0.display();
        let user = if as_root {
            "User www-data\nGroup www-data"
        } else {
            ""
        };
        let conf = format!(
            r#"
ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {root}/run/apache2.pid
DefaultRuntimeDir {root}/run
ErrorLog {root}/error.log
LogLevel warn
Timeout 5
{user}
LoadModule mpm_event_module {MODULES}/mod_mpm_event.so
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule alias_module {MODULES}/mod_alias.so
LoadModule env_module {MODULES}/mod_env.so
LoadModule cgid_module {MODULES}/mod_cgid.so
LoadModule proxy_module {MODULES}/mod_proxy.so
LoadModule proxy_fcgi_module {MODULES}/mod_proxy_fcgi.so
ScriptSock {root}/run/cgid.sock
StartServers 1
ServerLimit 1
ThreadsPerChild 8
MaxRequestWorkers 8
MinSpareThreads 1
MaxSpareThreads 8
DocumentRoot {site}

{page}
"#,
            site = install.ct.parent().unwrap().display(),
            page = match mode {
                // The README's and the package's snippets, with this test's paths.
                Mode::Cgi => shipped("tokenusage-cgi.conf")
                    .replace("/usr/bin/tokenusage", &binary.display().to_string())
                    .replace("/var/www/site/ct", &install.ct.display().to_string())
                    .replace(
                        "    SetEnv TOKENUSAGE_SESSION_KEY admin_logged_in",
                        &format!(
                            "    SetEnv TOKENUSAGE_SESSION_KEY admin_logged_in\n    \
                             SetEnv TOKENUSAGE_SESSION_PATH {}",
                            sessions.display()
                        ),
                    ),
                Mode::ProxyFcgi(socket) => shipped("tokenusage-fcgi.conf").replace(
                    "/run/tokenusage/tokenusage.sock",
                    &socket.display().to_string(),
                ),
            },
        );
        let conf_path = dir.0.join("apache2.conf");
        fs::write(&conf_path, conf).unwrap();
        let stderr = fs::File::create(dir.0.join("stderr.log")).unwrap();
        let child = Command::new(APACHE)
            .arg("-f")
            .arg(&conf_path)
            .arg("-DFOREGROUND")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut apache = Apache {
            port,
            child,
            binary,
            dir,
            _install: install,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = matches!(apache.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() > deadline {
                panic!(
                    "apache2 did not start: {}{}",
                    fs::read_to_string(apache.dir.0.join("stderr.log")).unwrap_or_default(),
                    apache.error_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        apache
    }

    /// GETs the page with this query string, as a visitor without a cookie.
    fn get(&self, query: &str) -> Result<CgiResponse, ureq::Error> {
        let url = format!("http://127.0.0.1:{}{PAGE}?{query}", self.port);
        try_http_get(&url, &[], REQUEST_TIMEOUT)
    }

    /// GETs the page with this query string and `Cookie` header.
    fn get_with_cookie(&self, query: &str, cookie: &str) -> Result<CgiResponse, ureq::Error> {
        let url = format!("http://127.0.0.1:{}{PAGE}?{query}", self.port);
        try_http_get(&url, &[("Cookie", cookie)], REQUEST_TIMEOUT)
    }

    fn error_log(&self) -> String {
        fs::read_to_string(self.dir.0.join("error.log")).unwrap_or_default()
    }

    /// The running processes of our copy of the binary.
    fn copies_running(&self) -> Vec<i32> {
        let deleted = format!("{} (deleted)", self.binary.display());
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                fs::read_link(format!("/proc/{pid}/exe"))
                    .is_ok_and(|exe| exe == self.binary || exe == Path::new(&deleted))
            })
            .collect()
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(None) = self.child.try_wait() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
        // A CGI that outlived Apache (a server a query string started) is ours to end.
        for pid in self.copies_running() {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// True when the response is the dashboard (its balance card), not a refusal.
fn is_dashboard(response: &CgiResponse) -> bool {
    !texts(&response.text(), "#balance dd").is_empty()
}

#[test]
fn apache_sends_a_visitor_without_a_login_to_the_login_page() {
    let api = sample_api(10);
    let apache = Apache::start(&api);
    let page = apache.get("").expect("Apache answers");
    assert_eq!(page.status, 302, "{}{}", page.text(), apache.error_log());
    assert_eq!(page.header("location"), Some("/ct/admin/ctlogin.php"));
    assert_eq!(api.calls("user/info"), 0);
}

#[test]
fn a_query_string_without_equals_cannot_turn_the_admin_check_off() {
    let api = sample_api(10);
    let apache = Apache::start(&api);
    let page = apache.get("--auth+none").expect("Apache answers");
    assert!(!is_dashboard(&page), "the dashboard without a login");
    assert_eq!(page.status, 302, "{}", page.text());
    assert_eq!(page.header("location"), Some("/ct/admin/ctlogin.php"));
    assert!(!page.text().contains("--auth"), "arguments are not echoed");
    assert_eq!(api.calls("user/info"), 0, "a refusal calls no API");
    // The arguments are logged once, on one line, for the admin.
    let deadline = Instant::now() + Duration::from_secs(3);
    let line = loop {
        let log = apache.error_log();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("ignored")).collect();
        if !lines.is_empty() || Instant::now() > deadline {
            assert_eq!(lines.len(), 1, "{log}");
            break lines[0].to_string();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(line.contains(r#""--auth" "none""#), "{line}");
    // Arguments that are not UTF-8 (`%ff` is decoded) are no reason to fail either.
    let page = apache.get("%ff+--auth+none").expect("Apache answers");
    assert_eq!(page.status, 302, "{}", page.text());
}

#[test]
fn a_query_string_cannot_start_a_server_on_a_port_of_the_visitors_choosing() {
    let api = sample_api(10);
    let apache = Apache::start(&api);
    for mode in ["fcgi", "demo", "sample-api"] {
        let port = free_port();
        let query = format!("{mode}+--listen+127.0.0.1:{port}+--auth+none");
        match apache.get(&query) {
            Ok(page) => {
                assert!(!is_dashboard(&page), "{query}: the dashboard");
                assert_eq!(page.status, 302, "{query}: {}", page.text());
            }
            // The old binary never answered: it was busy serving on that port.
            Err(e) => eprintln!("{query}: no answer: {e}"),
        }
        std::thread::sleep(Duration::from_millis(500));
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
            continue;
        };
        // Say what such a listener gives away before failing.
        let install = Install::new("apache-leak", &api.url());
        stream.set_read_timeout(Some(REQUEST_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(REQUEST_TIMEOUT)).unwrap();
        let leaked = try_fastcgi_request(&mut stream, &page_params(&install, "action=download"))
            .map(|csv| {
                format!(
                    "a FastCGI download: {} {} bytes",
                    csv.status,
                    csv.body.len()
                )
            })
            .unwrap_or_else(|e| format!("not FastCGI ({e})"));
        panic!("{query}: something listens on 127.0.0.1:{port}: {leaked}");
    }
    assert_eq!(api.calls("user/info"), 0);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !apache.copies_running().is_empty() {
        assert!(
            Instant::now() < deadline,
            "a CGI process outlived its request"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn apache_hands_the_page_to_the_fastcgi_responder_with_the_shipped_snippet() {
    let api = sample_api(1_000);
    // Apache's workers (www-data when run as root) must be able to connect.
    let server = Server::start(&["--socket-mode", "0666"]);
    let apache = Apache::start_as(&api, Mode::ProxyFcgi(&server.socket));
    let page = apache.get("").unwrap();
    assert_eq!(page.status, 200, "{}", apache.error_log());
    assert!(is_dashboard(&page), "{}", page.text());
    assert!(page.text().contains("of 1,000 transactions"));
    let csv = apache.get("action=download").unwrap();
    assert_eq!(csv.status, 200);
    assert_eq!(
        csv.text().lines().count(),
        1_001,
        "a header and every transaction"
    );
}

#[test]
fn apache_runs_the_page_as_cgi_with_the_shipped_snippet_for_a_logged_in_admin() {
    let api = sample_api(1_000);
    let apache = Apache::start(&api);
    let sessions = apache.dir.0.join("sessions");
    crate::session::php_session(
        &sessions,
        "php",
        "cgiadmin1",
        "$_SESSION['admin_logged_in'] = true;",
    );
    // PHP wrote the file as root here; the CGI runs as www-data when Apache runs as root.
    if unsafe { libc::geteuid() } == 0 {
        let file = sessions.join("sess_cgiadmin1");
        let owner = user_id("www-data").unwrap();
        let group = group_id("www-data").unwrap();
        std::os::unix::fs::chown(&file, Some(owner), Some(group)).unwrap();
    }
    let page = apache.get_with_cookie("", "PHPSESSID=cgiadmin1").unwrap();
    assert_eq!(page.status, 200, "{}", apache.error_log());
    assert!(
        page.text().contains("of 1,000 transactions"),
        "{}",
        page.text()
    );
    let csv = apache
        .get_with_cookie("action=download", "PHPSESSID=cgiadmin1")
        .unwrap();
    assert_eq!(csv.text().lines().count(), 1_001);
}
