//! End to end through a real nginx on loopback, configured as an existing site would be:
//! `location ~ \.php$` with Debian's `fastcgi_params` and a unix socket.

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
