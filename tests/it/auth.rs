//! Only admins get in: the admin check over a real FastCGI socket, with session files
//! written by real PHP (php-cli), plus the CSRF rule for state-changing actions.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::symlink;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::session::{nobody_uid, php_session};
use crate::support::*;
use tokenusage::dev::http::{HttpRequest, HttpResponse, HttpServer};

const KEY: &str = "admin_logged_in";

/// The server in php-session mode over `dir`, and a page request with a session cookie.
struct Panel {
    api: tokenusage::dev::sample_api::SampleApi,
    install: Install,
    sessions: TempDir,
    server: Server,
}

impl Panel {
    fn new(name: &str, key: &str) -> Panel {
        let api = sample_api(20);
        let install = Install::new(name, &api.url());
        let sessions = TempDir::new("sessions");
        let server = Server::start_php_session(&sessions.0, key);
        Panel {
            api,
            install,
            sessions,
            server,
        }
    }

    fn get(&self, query: &str, cookie: &str) -> CgiResponse {
        self.server.get_with_cookie(&self.install, query, cookie)
    }

    /// Asserts the request is turned away: the login page for a view, 403 for data.
    fn assert_refused(&self, cookie: &str) {
        let calls_before = self.api.calls("user/info");
        let page = self.get("", cookie);
        assert_eq!(page.status, 302, "{cookie}: {}", page.text());
        assert_eq!(page.header("location"), Some("/ct/admin/ctlogin.php"));
        assert!(!page.text().contains("transactions"));
        for query in ["action=download", "debug=1"] {
            let data = self.get(query, cookie);
            assert_eq!(data.status, 403, "{query} with {cookie}");
            assert!(!data.text().contains("DEMO-"), "no data in a refusal");
            assert!(data.body.len() < 100);
        }
        assert_eq!(
            self.api.calls("user/info"),
            calls_before,
            "a refusal calls no API"
        );
    }

    fn assert_admitted(&self, cookie: &str) {
        let page = self.get("", cookie);
        assert_eq!(page.status, 200, "{cookie}");
        assert!(page.text().contains("of 20 transactions"));
        assert_eq!(self.get("action=download", cookie).status, 200);
    }
}

#[test]
fn no_cookie_unknown_ids_and_bad_ids_are_refused() {
    let panel = Panel::new("auth-ids", KEY);
    for cookie in [
        "",
        "PHPSESSID=nosuchsession123",
        "PHPSESSID=../../../etc/passwd",
        "PHPSESSID=abc%2F..%2Fx",
        "PHPSESSID=abc def",
        "PHPSESSID=",
        "OTHER=abc",
    ] {
        panel.assert_refused(cookie);
    }
}

#[test]
fn sessions_written_by_php_for_logged_in_admins_are_admitted_with_both_handlers() {
    let panel = Panel::new("auth-php", KEY);
    php_session(
        &panel.sessions.0,
        "php",
        "adminphp1",
        "$_SESSION['admin_logged_in'] = true;",
    );
    php_session(
        &panel.sessions.0,
        "php_serialize",
        "adminser1",
        "$_SESSION['admin_logged_in'] = 1; $_SESSION['x'] = [1, 2];",
    );
    panel.assert_admitted("PHPSESSID=adminphp1");
    panel.assert_admitted("lang=en; PHPSESSID=adminser1; PHPSESSID=other");
}

#[test]
fn sessions_without_the_key_with_a_falsy_value_or_logged_out_are_refused() {
    let panel = Panel::new("auth-out", KEY);
    let dir = &panel.sessions.0;
    php_session(dir, "php", "visitor1", "$_SESSION['cart'] = [1];");
    php_session(
        dir,
        "php",
        "falsy1",
        "$_SESSION['admin_logged_in'] = false;",
    );
    php_session(dir, "php", "zero1", "$_SESSION['admin_logged_in'] = '0';");
    php_session(
        dir,
        "php",
        "loggedout1",
        "$_SESSION['admin_logged_in'] = true; unset($_SESSION['admin_logged_in']);",
    );
    for id in ["visitor1", "falsy1", "zero1", "loggedout1"] {
        panel.assert_refused(&format!("PHPSESSID={id}"));
    }
}

#[test]
fn a_symlinked_or_foreign_session_file_is_refused() {
    let panel = Panel::new("auth-files", KEY);
    let dir = &panel.sessions.0;
    php_session(
        dir,
        "php",
        "realadmin1",
        "$_SESSION['admin_logged_in'] = true;",
    );
    symlink(dir.join("sess_realadmin1"), dir.join("sess_linked1")).unwrap();
    panel.assert_refused("PHPSESSID=linked1");
    php_session(
        dir,
        "php",
        "planted1",
        "$_SESSION['admin_logged_in'] = true;",
    );
    std::os::unix::fs::chown(dir.join("sess_planted1"), Some(nobody_uid()), None).unwrap();
    panel.assert_refused("PHPSESSID=planted1");
    panel.assert_admitted("PHPSESSID=realadmin1");
}

#[test]
fn a_key_with_an_expected_value_must_match_it() {
    let panel = Panel::new("auth-value", "admin_role=owner");
    let dir = &panel.sessions.0;
    php_session(dir, "php", "owner1", "$_SESSION['admin_role'] = 'owner';");
    php_session(dir, "php", "editor1", "$_SESSION['admin_role'] = 'editor';");
    panel.assert_admitted("PHPSESSID=owner1");
    panel.assert_refused("PHPSESSID=editor1");
}

#[test]
fn the_default_mode_refuses_to_start_without_a_key_and_says_how_to_find_it() {
    let output = Command::new(BIN)
        .args(["fcgi", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("--session-key"), "{message}");
    assert!(
        message.contains("tokenusage session-keys --session-id"),
        "{message}"
    );

    // As CGI it answers with the same guidance instead of a blank 500.
    let api = sample_api(1);
    let install = Install::new("auth-cgi", &api.url());
    let page = cgi(
        &page_params(&install, ""),
        &[("TOKENUSAGE_AUTH", "php-session")],
    );
    assert_eq!(page.status, 500);
    assert!(page.text().contains("--session-key"));
}

#[test]
fn session_keys_lists_keys_and_types_but_never_values() {
    let sessions = TempDir::new("keys");
    php_session(
        &sessions.0,
        "php",
        "lister1",
        "$_SESSION['admin_logged_in'] = true; $_SESSION['admin_user'] = 'topsecretname';",
    );
    let output = Command::new(BIN)
        .args(["session-keys", "--session-id", "lister1", "--session-path"])
        .arg(&sessions.0)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(listing.contains("admin_logged_in\tbool"), "{listing}");
    assert!(listing.contains("admin_user\tstring"), "{listing}");
    assert!(!listing.contains("topsecretname"));
    let by_path = Command::new(BIN)
        .arg("session-keys")
        .arg(sessions.0.join("sess_lister1"))
        .output()
        .unwrap();
    assert_eq!(by_path.stdout, output.stdout);
}

#[test]
fn web_server_mode_admits_only_a_user_the_web_server_authenticated() {
    let api = sample_api(20);
    let install = Install::new("auth-remote", &api.url());
    let server = Server::start(&["--auth", "web-server"]);
    assert_eq!(server.get(&install, "").status, 302);
    // nginx fills REMOTE_USER from any visitor's Authorization header; only a location
    // that authenticates also passes AUTH_TYPE.
    let mut params = page_params(&install, "");
    params.push(("REMOTE_USER", "boss".to_string()));
    assert_eq!(server.request(&params).status, 302);
    params.push(("AUTH_TYPE", "Basic".to_string()));
    assert_eq!(server.request(&params).status, 200);
}

#[test]
fn delegate_mode_asks_the_panel_and_remembers_its_answer() {
    // A stand-in for the PHP panel: 200 for the admin's cookies (its session and a second
    // cookie it also checks), a redirect to the login page otherwise.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/ct/admin/main.php",
        listener.local_addr().unwrap()
    );
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let handler = Arc::new(move |request: &HttpRequest| {
        counter.fetch_add(1, Ordering::SeqCst);
        let cookie = String::from_utf8_lossy(request.header("Cookie").unwrap_or_default());
        if cookie.contains("PHPSESSID=goodadmin1") && cookie.contains("ctauth=ok") {
            HttpResponse::text(200, "Admin panel")
        } else {
            HttpResponse::text(302, "").with_header("Location", "ctlogin.php")
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let panel = HttpServer::start(listener, 2, handler, stop).unwrap();
    let api = sample_api(20);
    let install = Install::new("auth-delegate", &api.url());
    let server = Server::start(&["--auth", "delegate", "--delegate-url", &url]);
    assert_eq!(
        server.get(&install, "").status,
        302,
        "no cookie: not even asked"
    );
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    let good = "PHPSESSID=goodadmin1; ctauth=ok";
    assert_eq!(server.get_with_cookie(&install, "", good).status, 200);
    assert_eq!(server.get_with_cookie(&install, "page=2", good).status, 200);
    assert_eq!(asked.load(Ordering::SeqCst), 1, "the answer is remembered");
    // The same session with other cookies is not what the panel admitted: asked again.
    let forged = "PHPSESSID=goodadmin1; ctauth=forged";
    assert_eq!(server.get_with_cookie(&install, "", forged).status, 302);
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    let bad = server.get_with_cookie(&install, "action=download", "PHPSESSID=intruder1");
    assert_eq!(bad.status, 403);
    panel.stop().unwrap();
}

#[test]
fn an_action_without_the_token_changes_nothing_and_offers_a_confirm_button() {
    let api = sample_api(20);
    let install = Install::new("csrf", &api.url());
    let server = Server::start(&[]);
    let page = server.get(&install, "");
    let cookie = csrf_cookie(&page).unwrap();
    let token = csrf_token(&page).unwrap();
    let pricing_before = fs::read(install.pricing_cache()).unwrap();
    let files_before = install.transaction_files();
    let history_calls = api.calls("credits/history");
    for action in [
        "refresh_data",
        "update_pricing",
        "clear_cache",
        "clearcache",
    ] {
        let query = format!("action={action}");
        let attempts = [
            server.get_with_cookie(&install, &query, &cookie),
            // The right token in the query string is not a form: it changes nothing.
            server.get_with_cookie(&install, &format!("{query}&token={token}"), &cookie),
            server.post_with_cookie(&install, &query, &cookie, "token=forged"),
            server.post_with_cookie(
                &install,
                &query,
                &cookie,
                &format!("token={}", "0".repeat(64)),
            ),
            server.post_with_cookie(&install, &query, &cookie, ""),
        ];
        for (attempt, response) in attempts.iter().enumerate() {
            let html = response.text();
            let confirm = texts(&html, ".notice-confirm");
            assert_eq!(confirm.len(), 1, "{query}, attempt {attempt}");
            assert!(
                confirm[0].starts_with("This link did not come from this page"),
                "{confirm:?}"
            );
            assert_eq!(
                attrs(&html, ".notice-confirm form", "action"),
                [format!(
                    "?action={}",
                    action.replace("clearcache", "clear_cache")
                )]
            );
            assert_eq!(
                attrs(&html, ".notice-confirm form input[name=token]", "value"),
                std::slice::from_ref(&token)
            );
        }
    }
    assert_eq!(fs::read(install.pricing_cache()).unwrap(), pricing_before);
    assert_eq!(install.transaction_files(), files_before);
    assert_eq!(api.calls("credits/history"), history_calls);
    // The button works.
    let html = server.click(&install, "update_pricing").text();
    assert_eq!(
        texts(&html, ".notice-success"),
        ["Pricing cache cleared. Latest prices will be fetched."]
    );
}

#[test]
fn the_csrf_cookie_is_http_only_strict_scoped_to_the_admin_folder_and_host_only_over_https() {
    let api = sample_api(1);
    let install = Install::new("csrf-cookie", &api.url());
    let server = Server::start(&[]);
    let page = server.get(&install, "");
    let set = page.header("set-cookie").unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/ct/admin/"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(!set.contains("Secure"));
    let mut params = page_params(&install, "");
    params.push(("HTTPS", "on".into()));
    let secure = server.request(&params);
    let set = secure.header("set-cookie").unwrap();
    assert!(set.starts_with("__Host-tokenusage_csrf="), "{set}");
    for part in ["Secure", "Path=/;", "HttpOnly", "SameSite=Strict"] {
        assert!(
            set.contains(part) || set.ends_with(part.trim_end_matches(';')),
            "{set}"
        );
    }
    // A browser that has the cookie keeps it: no new one is set.
    let cookie = csrf_cookie(&page).unwrap();
    assert_eq!(
        server
            .get_with_cookie(&install, "", &cookie)
            .header("set-cookie"),
        None
    );
}

#[test]
fn a_csrf_cookie_planted_from_a_sibling_subdomain_chooses_no_valid_token() {
    let panel = Panel::new("csrf-planted", KEY);
    let dir = &panel.sessions.0;
    php_session(
        dir,
        "php",
        "victimadmin1",
        "$_SESSION['admin_logged_in'] = true;",
    );
    php_session(
        dir,
        "php",
        "otheradmin1",
        "$_SESSION['admin_logged_in'] = true;",
    );
    // A sibling subdomain can set a cookie for this host: the attacker knows its value,
    // and can read the token their own session gets with it.
    let planted = "ab".repeat(32);
    let victim = format!("PHPSESSID=victimadmin1; tokenusage_csrf={planted}");
    let own_page = panel.get(
        "",
        &format!("PHPSESSID=otheradmin1; tokenusage_csrf={planted}"),
    );
    let attackers_token = csrf_token(&own_page).unwrap();
    let pricing_before = fs::read(panel.install.pricing_cache()).unwrap();
    for guess in [planted.clone(), attackers_token] {
        let html = panel
            .server
            .post_with_cookie(
                &panel.install,
                "action=update_pricing",
                &victim,
                &format!("token={guess}"),
            )
            .text();
        assert_eq!(texts(&html, ".notice-confirm").len(), 1, "{guess}");
        assert!(texts(&html, ".notice-success").is_empty());
    }
    assert_eq!(
        fs::read(panel.install.pricing_cache()).unwrap(),
        pricing_before
    );
    // The victim's own page carries the token that works for the victim.
    let token = csrf_token(&panel.get("", &victim)).unwrap();
    let done = panel.server.post_with_cookie(
        &panel.install,
        "action=update_pricing",
        &victim,
        &format!("token={token}"),
    );
    let html = panel.server.follow(&panel.install, done, &victim).text();
    assert_eq!(
        texts(&html, ".notice-success"),
        ["Pricing cache cleared. Latest prices will be fetched."]
    );
}

#[test]
fn the_login_redirect_and_the_cookie_stay_on_this_site_whatever_the_script_name() {
    let panel = Panel::new("script-name", KEY);
    let with_script_name = |script_name: &str| {
        let mut params = page_params(&panel.install, "");
        params.retain(|(name, _)| *name != "SCRIPT_NAME");
        params.push(("SCRIPT_NAME", script_name.to_string()));
        params
    };
    for (script_name, location) in [
        ("/ct/admin/tokenusage.php", "/ct/admin/ctlogin.php"),
        // Browsers read `/\evil.example/` and `//evil.example/` as another host.
        ("/\\evil.example/tokenusage.php", "ctlogin.php"),
        ("//evil.example/tokenusage.php", "ctlogin.php"),
        ("/ct/admin\r\nSet-Cookie: x=1/tokenusage.php", "ctlogin.php"),
        ("tokenusage.php", "ctlogin.php"),
    ] {
        let response = panel.server.request(&with_script_name(script_name));
        assert_eq!(response.status, 302, "{script_name:?}");
        assert_eq!(
            response.header("location"),
            Some(location),
            "{script_name:?}"
        );
    }
    // The CSRF cookie's path: a `;` would add attributes (`Domain=`) to it.
    let server = Server::start(&[]);
    for (script_name, path) in [
        ("/ct/admin/tokenusage.php", "/ct/admin/"),
        ("/ct/admin;Domain=evil.example;x=/tokenusage.php", "/"),
        ("/\\evil.example/tokenusage.php", "/"),
        ("/ct/ad min/tokenusage.php", "/"),
    ] {
        let response = server.request(&with_script_name(script_name));
        let set = response.header("set-cookie").unwrap();
        let attributes: Vec<&str> = set.split(';').map(str::trim).skip(1).collect();
        assert!(
            !attributes
                .iter()
                .any(|a| a.to_ascii_lowercase().starts_with("domain")),
            "{script_name:?}: {set}"
        );
        assert!(
            attributes.contains(&format!("Path={path}").as_str()),
            "{script_name:?}: {set}"
        );
    }
}
