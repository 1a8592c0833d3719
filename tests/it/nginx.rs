//! End to end through a real nginx on loopback, configured as an existing site would be:
//! `location ~ \.php$` with Debian's `fastcgi_params` and a unix socket; and `--auth
//! web-server` behind `auth_basic`.

use std::time::Duration;

use crate::support::*;

#[test]
fn nginx_serves_page_1_page_34_and_the_csv_of_10000_transactions() {
    let api = sample_api(10_000);
    let install = Install::new("nginx", &api.url());
    let server = Server::start(&[]);
    let site = install.ct.parent().unwrap().to_path_buf();
    let nginx = Nginx::start(&site, &server.socket);

    let first = http_get(&nginx.url("/ct/admin/tokenusage.php"));
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("content-type"),
        Some("text/html; charset=UTF-8")
    );
    assert_eq!(first.header("cache-control"), Some("no-store"));
    let html = first.text();
    assert_eq!(
        texts(&html, ".pagination-info span")[0],
        "Showing 1-300 of 10,000 transactions (Page 1 of 34)"
    );
    assert_eq!(texts(&html, "table.transactions tbody tr").len(), 300);

    let last = http_get(&nginx.url("/ct/admin/tokenusage.php?page=34"));
    assert_eq!(last.status, 200);
    let html = last.text();
    assert_eq!(
        texts(&html, ".pagination-info span")[0],
        "Showing 9901-10000 of 10,000 transactions (Page 34 of 34)"
    );
    assert_eq!(texts(&html, "table.transactions tbody tr").len(), 100);

    let csv = http_get(&nginx.url("/ct/admin/tokenusage.php?action=download"));
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=UTF-8"));
    assert!(
        csv.header("content-disposition")
            .unwrap()
            .starts_with("attachment; filename=\"token_usage_history_")
    );
    assert!(
        csv.body
            .starts_with(b"\xEF\xBB\xBFDate,Transaction Type,Service Type,Amount")
    );
    let text = String::from_utf8(csv.body[3..].to_vec()).unwrap();
    let rows = csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(Result::unwrap)
        .count();
    assert_eq!(rows, 10_000);

    let css = http_get(&nginx.url("/ct/admin/tokenusage.php?asset=dashboard.css"));
    assert_eq!(css.header("content-type"), Some("text/css; charset=UTF-8"));
    // One history call for all of it: the page views and the download shared the cache.
    assert_eq!(api.calls("credits/history"), 1);
}

/// `Authorization` values: `admin:anything`, `admin:wrong` and `admin:secret` in base64.
const ADMIN_ANYTHING: &str = "Basic YWRtaW46YW55dGhpbmc=";
const ADMIN_WRONG: &str = "Basic YWRtaW46d3Jvbmc=";
const ADMIN_SECRET: &str = "Basic YWRtaW46c2VjcmV0";

#[test]
fn web_server_mode_lets_in_only_whom_an_nginx_location_authenticated() {
    let api = sample_api(10);
    let install = Install::new("nginx-web-server", &api.url());
    let server = Server::start(&["--auth", "web-server"]);
    let site = install.ct.parent().unwrap().to_path_buf();
    let users = TempDir::new("htpasswd");
    let htpasswd = users.0.join("htpasswd");
    std::fs::write(&htpasswd, "admin:{PLAIN}secret\n").unwrap();
    // Three URLs, one script: the site's plain PHP location (nothing checks the
    // credentials, yet nginx fills $remote_user from them), one with auth_basic as the
    // README says, and one with auth_basic that forgets AUTH_TYPE.
    let pass = format!(
        "include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME {script};
            fastcgi_pass unix:{socket};",
        script = install.script_filename(),
        socket = server.socket.display(),
    );
    let locations = format!(
        r#"location = /ct/admin/tokenusage.php {{
            {pass}
        }}
        location = /locked/tokenusage.php {{
            auth_basic "Admin";
            auth_basic_user_file {htpasswd};
            {pass}
            fastcgi_param AUTH_TYPE Basic;
        }}
        location = /no-auth-type/tokenusage.php {{
            auth_basic "Admin";
            auth_basic_user_file {htpasswd};
            {pass}
        }}"#,
        htpasswd = htpasswd.display(),
    );
    let nginx = Nginx::start_with(&site, &locations);
    let get = |path: &str, authorization: Option<&str>| {
        let headers: Vec<(&str, &str)> = authorization
            .map(|value| ("Authorization", value))
            .into_iter()
            .collect();
        try_http_get(&nginx.url(path), &headers, Duration::from_secs(30)).unwrap()
    };
    let is_dashboard = |page: &CgiResponse| !texts(&page.text(), "#balance dd").is_empty();

    let forged = get("/ct/admin/tokenusage.php", Some(ADMIN_ANYTHING));
    assert!(
        !is_dashboard(&forged),
        "the dashboard for unchecked credentials"
    );
    assert_eq!(forged.status, 302, "{}", forged.text());
    assert_eq!(forged.header("location"), Some("/ct/admin/ctlogin.php"));
    let forged_csv = get(
        "/ct/admin/tokenusage.php?action=download",
        Some(ADMIN_ANYTHING),
    );
    assert_eq!(forged_csv.status, 403);

    let wrong = get("/locked/tokenusage.php", Some(ADMIN_WRONG));
    assert_eq!(wrong.status, 401, "nginx refuses a wrong password itself");
    assert!(!is_dashboard(&wrong));
    assert_eq!(get("/locked/tokenusage.php", None).status, 401);
    assert_eq!(api.calls("user/info"), 0, "no refusal called the API");

    let admin = get("/locked/tokenusage.php", Some(ADMIN_SECRET));
    assert_eq!(admin.status, 200, "{}", admin.text());
    assert!(is_dashboard(&admin));
    assert_eq!(
        texts(&admin.text(), "head > title"),
        ["Token & Credit Usage Dashboard"]
    );

    // Without AUTH_TYPE nobody gets in: a forgotten line fails closed.
    let forgot = get("/no-auth-type/tokenusage.php", Some(ADMIN_SECRET));
    assert!(!is_dashboard(&forgot));
    assert_eq!(forgot.status, 302);
}

#[test]
fn behind_nginx_intercepting_errors_the_admin_still_sees_the_card_and_retry() {
    // A common setup: nginx replaces 5xx answers with its own page. The card saying what
    // failed comes with 200, as the PHP page's does, so it gets through.
    let api = sample_api(20);
    api.set_fault(tokenusage::dev::sample_api::Fault::Status500);
    let install = Install::new("nginx-intercept", &api.url());
    let server = Server::start(&[]);
    let site = install.ct.parent().unwrap().to_path_buf();
    std::fs::write(site.join("50x.html"), "generic nginx error page\n").unwrap();
    let locations = format!(
        r#"location = /50x.html {{ }}
        location ~ \.php$ {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass unix:{socket};
            fastcgi_intercept_errors on;
            error_page 500 502 503 504 /50x.html;
        }}"#,
        socket = server.socket.display()
    );
    let nginx = Nginx::start_with(&site, &locations);
    let page = http_get(&nginx.url("/ct/admin/tokenusage.php"));
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(!html.contains("generic nginx error page"), "{html}");
    assert!(html.contains("Unable to Load Account Data"), "{html}");
    assert!(html.contains("API returned HTTP 500"), "{html}");
    assert_eq!(texts(&html, "a.button-primary"), ["Retry Loading Data"]);
    // Once the license server is back, the same URL shows the dashboard.
    api.set_fault(tokenusage::dev::sample_api::Fault::None);
    let page = http_get(&nginx.url("/ct/admin/tokenusage.php"));
    assert!(page.text().contains("of 20 transactions"));
}

/// The shipped nginx snippet (`dist/nginx/tokenusage.conf`) with this test's socket, and
/// Debian's `fastcgi_params` by its full path (the test's nginx has its own prefix).
fn shipped_nginx_snippet(socket: &std::path::Path) -> String {
    let snippet = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/nginx/tokenusage.conf"),
    )
    .unwrap();
    assert!(snippet.contains("location = /ct/admin/tokenusage.php"));
    snippet
        .replace(
            "unix:/run/tokenusage/tokenusage.sock",
            &format!("unix:{}", socket.display()),
        )
        .replace(
            "include fastcgi_params;",
            "include /etc/nginx/fastcgi_params;",
        )
}

#[test]
fn the_shipped_nginx_snippet_wins_over_the_sites_php_location_with_or_without_interception() {
    let api = sample_api(1_000);
    let install = Install::new("nginx-snippet", &api.url());
    let server = Server::start(&[]);
    let site = install.ct.parent().unwrap().to_path_buf();
    std::fs::write(site.join("50x.html"), "generic nginx error page\n").unwrap();
    for intercept in [false, true] {
        // The site's own PHP location, which must not get this page.
        let mut locations = String::from("location ~ \\.php$ { return 418; }\n");
        locations.push_str(&shipped_nginx_snippet(&server.socket));
        if intercept {
            locations = locations.replace(
                "fastcgi_buffers 16 16k;",
                "fastcgi_buffers 16 16k;\n    fastcgi_intercept_errors on;",
            );
            locations
                .push_str("\nerror_page 500 502 503 504 /50x.html;\nlocation = /50x.html { }\n");
        }
        let nginx = Nginx::start_with(&site, &locations);
        let page = http_get(&nginx.url("/ct/admin/tokenusage.php"));
        assert_eq!(page.status, 200, "intercept {intercept}");
        assert_eq!(
            texts(&page.text(), ".pagination-info span")[0],
            "Showing 1-300 of 1,000 transactions (Page 1 of 4)"
        );
        let csv = http_get(&nginx.url("/ct/admin/tokenusage.php?action=download"));
        assert_eq!(csv.status, 200);
        assert_eq!(
            csv.text().lines().count(),
            1_001,
            "a header and every transaction"
        );
        assert_eq!(http_get(&nginx.url("/other.php")).status, 418);
    }
}
