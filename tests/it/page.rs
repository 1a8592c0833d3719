//! The dashboard over a real FastCGI socket (and CGI), against the sample API on
//! loopback: what an admin sees and what each action does.

use std::fs;

use crate::support::*;
use tokenusage::dev::sample_api::{Fault, SampleApiOptions};

/// The labels of the navigation's links and buttons, in order.
fn nav_labels(html: &str) -> Vec<String> {
    texts(html, "nav.actions a, nav.actions button")
}

#[test]
fn the_dashboard_shows_every_card_of_the_seed() {
    let api = sample_api(10_000);
    let install = Install::new("cards", &api.url());
    let server = Server::start(&[]);
    let page = server.get(&install, "");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=UTF-8")
    );
    let html = page.text();

    assert_eq!(texts(&html, "h1"), ["Token & Credit Usage Dashboard"]);
    assert_eq!(
        texts(&html, "nav.breadcrumb"),
        ["Dashboard → Reports → Token Usage"]
    );
    assert_eq!(
        nav_labels(&html),
        [
            "Overview",
            "Refresh Data",
            "Download History",
            "Update Pricing",
            "Clear Cache",
            "Debug API",
            "Back to Reports",
            "Help"
        ]
    );
    let hrefs = attrs(&html, "nav.actions a", "href");
    assert_eq!(hrefs[3], "reports.php");
    assert_eq!(hrefs[4], "https://comusthumbz.com/manual/?page=token-usage");
    // The buttons that change state are forms posting the CSRF token.
    assert_eq!(
        attrs(&html, "nav.actions form", "action"),
        [
            "?action=refresh_data",
            "?action=update_pricing",
            "?action=clear_cache"
        ]
    );
    assert_eq!(attrs(&html, "nav.actions form", "method"), ["post"; 3]);
    // Overview, Refresh Data and Download History stand out; the maintenance actions
    // are quieter.
    assert_eq!(
        texts(
            &html,
            "nav.actions .button-strong, nav.actions .button-primary"
        ),
        ["Overview", "Refresh Data", "Download History"]
    );
    assert_eq!(
        texts(&html, "nav.actions .button-quiet"),
        ["Update Pricing", "Clear Cache", "Debug API"]
    );

    // The answer first: the balance with its state in a word, how fresh, where to buy.
    assert_eq!(texts(&html, "#top .top-amount"), ["$12.3456"]);
    let state = texts(&html, "#top .top-balance .state");
    assert!(
        state == ["Healthy"] || state == ["Running low"],
        "{state:?}"
    );
    let as_of = texts(&html, "#top .as-of").join("");
    assert!(
        as_of.starts_with("As of ") && as_of.contains(" UTC, ") && as_of.ends_with("just now."),
        "{as_of}"
    );
    assert_eq!(
        attrs(&html, "#top a.buy", "href"),
        ["https://comusthumbz.com/projects/buycredits.php"]
    );

    let account = texts(&html, "#account dd");
    assert_eq!(
        account,
        [
            "owner@demo.example.com",
            "Pro",
            "demo.example.com",
            "Mar 15, 2024"
        ]
    );
    let balance = texts(&html, "#balance dd");
    assert_eq!(balance[0], "$12.3456");
    assert_eq!(
        attrs(&html, "#balance dd.balance", "class"),
        ["balance balance-ok"]
    );
    assert_eq!(
        balance.len(),
        6,
        "balance, tokens, credits, calls, images, updated"
    );
    assert!(
        balance[1].contains(','),
        "tokens used has thousands separators"
    );

    assert_eq!(texts(&html, "#pricing h2"), ["Current API Pricing (Live)"]);
    let pricing = texts(&html, "#pricing tr");
    assert_eq!(
        pricing,
        [
            "Image Processing $2.50 per 10,000 images",
            "Input Tokens $0.20 per 1M tokens",
            "Completion Tokens $0.80 per 1M tokens",
            "Cached Tokens $0.05 per 1M tokens"
        ]
    );
    // The sample's 2026-11-20 09:00:00 UTC, in the page's one date format (the year
    // shows when it is not this year's).
    let prices_as_of = texts(&html, "#pricing p.muted").join("");
    assert!(
        prices_as_of.starts_with("Prices as of Nov 20, ") && prices_as_of.ends_with("9:00 AM"),
        "{prices_as_of}"
    );
    assert_eq!(
        texts(&html, "#estimates dt"),
        [
            "Image Searches",
            "AI Input Tokens",
            "AI Completion Tokens",
            "AI Cached Tokens"
        ]
    );
    assert_eq!(
        texts(&html, "#estimates dd"),
        ["49,382", "61,728,000", "15,432,000", "246,912,000"]
    );
    assert!(texts(&html, ".banner-low-balance").is_empty());

    assert_eq!(
        texts(&html, ".pagination-info span")[0],
        "Showing 1-300 of 10,000 transactions (Page 1 of 34)"
    );
    assert_eq!(texts(&html, "table.transactions tbody tr").len(), 300);
    let footer = texts(&html, ".page-footer span");
    assert!(footer[0].starts_with("API: http://127.0.0.1:"));
    assert_eq!(footer[2], "Account: Live");
    assert_eq!(footer[3], "Pricing: Live");
    assert_eq!(footer[4], "Transactions: Live");

    // The second view reads both caches.
    let again = server.get(&install, "").text();
    let footer = texts(&again, ".page-footer span");
    assert_eq!(
        footer[2], "Account: Cached",
        "user/info and stats reused, and said so"
    );
    assert_eq!(footer[3], "Pricing: Cached");
    assert_eq!(
        texts(&again, "#pricing h2"),
        ["Current API Pricing (Cached)"],
        "Live only when fetched for this view"
    );
    assert_eq!(footer[4], "Transactions: Cached");
    assert_eq!(api.calls("credits/history"), 1);
    assert_eq!(api.calls("pricing/current"), 1);
    assert_eq!(api.calls("user/info"), 1);
}

#[test]
fn account_answers_are_reused_only_as_configured_and_refresh_always_calls() {
    let api = sample_api(10);
    let install = Install::new("account-ttl", &api.url());
    let server = Server::start(&["--account-cache-seconds", "0"]);
    server.get(&install, "");
    let html = server.get(&install, "").text();
    assert_eq!(texts(&html, ".page-footer span")[2], "Account: Live");
    assert_eq!(api.calls("user/stats"), 2);

    let server = Server::start(&[]);
    server.get(&install, "");
    let calls = api.calls("user/stats");
    server.click(&install, "refresh_data");
    assert_eq!(
        api.calls("user/stats"),
        calls + 1,
        "Refresh Data bypasses the reuse"
    );
}

#[test]
fn transaction_rows_are_formatted_badged_and_branded() {
    let api = sample_api(500);
    let install = Install::new("rows", &api.url());
    let server = Server::start(&[]);
    let html = server.get(&install, "").text();
    let first_row = texts(&html, "table.transactions tbody tr td");
    // Date as "Mon Day, HH:MM".
    let date = &first_row[0];
    assert!(
        date.len() >= 12
            && date[..3].chars().all(|c| c.is_ascii_alphabetic())
            && date.contains(", "),
        "{date}"
    );
    for class in attrs(&html, "table.transactions .badge", "class") {
        assert!(
            [
                "badge badge-usage",
                "badge badge-purchase",
                "badge badge-refund",
                "badge badge-other"
            ]
            .contains(&class.as_str()),
            "{class}"
        );
    }
    assert!(attrs(&html, ".badge", "class").contains(&"badge badge-purchase".to_string()));
    let lower = html.to_lowercase();
    for provider in [
        "via openai",
        "via anthropic",
        "via google",
        "via xai",
        "(gpt-",
        "(claude-",
    ] {
        assert!(!lower.contains(provider), "{provider} reached the page");
    }
    assert!(html.contains("via CTZ-AI"));
    // Descriptions are cut to 50 characters; the whole text is on hover and opens
    // below the cut one (a keyboard reaches it too).
    let titles = attrs(&html, "table.transactions td[title]", "title");
    let long = titles
        .iter()
        .position(|t| t.chars().count() > 50)
        .expect("a long description");
    let cut = texts(&html, "table.transactions td.desc details summary");
    let whole = texts(&html, "table.transactions td.desc details .desc-full");
    let shown = titles.iter().filter(|t| t.chars().count() > 50).count();
    assert_eq!((cut.len(), whole.len()), (shown, shown));
    assert_eq!(cut[0].chars().count(), 53);
    assert!(titles[long].starts_with(cut[0].trim_end_matches("...")));
    assert_eq!(
        whole[0],
        titles[long]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    );
    // Amounts keep their sign, so the colour is not the only signal.
    for amount in texts(&html, "td.amount-negative") {
        assert!(amount.starts_with("-$"), "{amount}");
    }
    for amount in texts(&html, "td.amount-positive") {
        assert!(amount.starts_with("+$"), "{amount}");
    }
    // Amounts are coloured by sign.
    let negative = attrs(&html, "td.amount-negative", "class").len();
    let positive = attrs(&html, "td.amount-positive", "class").len();
    assert!(negative > 0 && positive > 0);
}

#[test]
fn pages_clamp_and_link_within_five_of_the_current_page() {
    let api = sample_api(10_000);
    let install = Install::new("pages", &api.url());
    let server = Server::start(&[]);

    let last = server.get(&install, "page=34").text();
    assert_eq!(
        texts(&last, ".pagination-info span")[0],
        "Showing 9901-10000 of 10,000 transactions (Page 34 of 34)"
    );
    assert_eq!(texts(&last, "table.transactions tbody tr").len(), 100);
    assert_eq!(
        texts(&last, ".pagination-bottom .page-link"),
        ["29", "30", "31", "32", "33"]
    );
    // The same pager above the table as below it.
    assert_eq!(
        texts(&last, ".pagination-top"),
        texts(&last, ".pagination-bottom")
    );
    assert_eq!(attrs(&last, "a[rel=prev]", "href"), ["?page=33"; 2]);
    assert!(attrs(&last, "a[rel=next]", "href").is_empty());
    // First beside Previous; no Last from the last page.
    assert_eq!(
        attrs(&last, ".pagination-bottom a.button", "href"),
        ["?page=1", "?page=33"]
    );
    assert_eq!(
        texts(&last, ".pagination-bottom span.disabled"),
        ["Next →", "Last »"]
    );
    assert_eq!(attrs(&last, "body", "data-prev-url"), ["?page=33"]);

    let middle = server.get(&install, "page=10").text();
    let links: Vec<String> = (5..=15)
        .filter(|n| *n != 10)
        .map(|n| n.to_string())
        .collect();
    assert_eq!(texts(&middle, ".pagination-bottom .page-link"), links);
    assert_eq!(texts(&middle, ".page-current"), ["10", "10"]);
    assert_eq!(
        attrs(&middle, ".pagination-top a.button", "href"),
        ["?page=1", "?page=9", "?page=11", "?page=34"]
    );
    assert_eq!(
        texts(&middle, ".pagination-top a.button"),
        ["« First", "← Previous", "Next →", "Last »"]
    );
    assert_eq!(attrs(&middle, "body", "data-next-url"), ["?page=11"]);
    assert_eq!(
        attrs(&middle, "form#auto-refresh", "action"),
        ["?action=refresh_data&page=10"],
        "the auto refresh keeps the reader's page"
    );

    for (query, page) in [
        ("page=abc", 1),
        ("page=-1", 1),
        ("page=99", 34),
        ("page=", 1),
    ] {
        let html = server.get(&install, query).text();
        assert_eq!(
            texts(&html, ".page-current"),
            [page.to_string(), page.to_string()],
            "{query}"
        );
    }
    // How fresh the data is: said once, in the top strip, with its age.
    let as_of = texts(&last, "#top .as-of").join("");
    assert!(
        as_of.starts_with("As of ") && as_of.contains(" UTC, "),
        "{as_of}"
    );
    assert!(
        texts(&last, ".pagination-info span").len() == 1,
        "no second age"
    );
}

#[test]
fn a_balance_below_one_dollar_is_red_with_the_buy_credits_banner() {
    let api = sample_api_with(SampleApiOptions {
        transactions: 10,
        balance: 0.99,
        ..SampleApiOptions::default()
    });
    let install = Install::new("low", &api.url());
    let server = Server::start(&[]);
    let html = server.get(&install, "").text();
    let banner = texts(&html, ".banner-low-balance");
    assert_eq!(banner.len(), 1);
    assert!(banner[0].starts_with("LOW BALANCE WARNING Your credit balance is below $1.00."));
    assert_eq!(
        attrs(&html, ".banner-low-balance a", "href"),
        ["https://comusthumbz.com/projects/buycredits.php"]
    );
    assert_eq!(
        texts(&html, ".banner-low-balance a"),
        ["Click here to purchase credits"]
    );
    assert_eq!(
        attrs(&html, "#balance dd.balance", "class"),
        ["balance balance-low"]
    );
}

#[test]
fn no_transactions_says_so_and_the_download_refuses() {
    let api = sample_api(0);
    let install = Install::new("empty", &api.url());
    let server = Server::start(&[]);
    let html = server.get(&install, "").text();
    assert_eq!(
        texts(&html, "p.empty"),
        ["No transaction history available"]
    );
    assert_eq!(
        texts(&html, "p.empty-hint"),
        ["Credits are used when AI picks images, writes tags or enriches performer data."]
    );
    assert!(
        texts(&html, ".pagination-info, nav.pagination").is_empty(),
        "no \"Showing 0-0 of 0\""
    );
    // Download History is there, but not a link, and says why.
    assert_eq!(
        texts(&html, "nav.actions [aria-disabled=true]"),
        ["Download History"]
    );
    assert!(!nav_labels(&html).contains(&"Download History".to_string()));
    assert_eq!(
        texts(&html, "#download-unavailable"),
        ["No transaction history available to download."]
    );
    let download = server.get(&install, "action=download");
    assert_eq!(
        download.header("content-type"),
        Some("text/html; charset=UTF-8")
    );
    assert_eq!(
        texts(&download.text(), ".notice"),
        ["No transaction history available to download."]
    );
}

#[test]
fn refresh_data_fetches_afresh_in_both_spellings() {
    let api = sample_api(100);
    let install = Install::new("refresh", &api.url());
    let server = Server::start(&[]);
    server.get(&install, "");
    assert_eq!(api.calls("credits/history"), 1);
    for (i, action) in ["refresh_data", "refreshdata"].iter().enumerate() {
        let html = server.act(&install, action).text();
        assert_eq!(
            texts(&html, ".notice-success"),
            ["Data refreshed successfully"]
        );
        assert_eq!(api.calls("credits/history"), 2 + i);
        assert_eq!(api.calls("pricing/current"), 2 + i);
    }
    // The action was answered with a redirect to the plain page: showing it again calls
    // nothing and says nothing again.
    let again = server.get(&install, "").text();
    assert!(texts(&again, ".notice-success").is_empty());
    assert_eq!(api.calls("credits/history"), 3);
    let page = server.get(&install, "");
    let token = csrf_token(&page).unwrap();
    assert_eq!(
        attrs(&page.text(), "form#auto-refresh", "action"),
        ["?action=refresh_data"]
    );
    assert_eq!(
        attrs(&page.text(), "form#auto-refresh input[name=token]", "value"),
        [token]
    );
}

#[test]
fn update_pricing_deletes_the_pricing_cache() {
    let api = sample_api(10);
    let install = Install::new("pricing", &api.url());
    let server = Server::start(&[]);
    server.get(&install, "");
    assert!(install.pricing_cache().exists());
    for action in ["update_pricing", "updatepricing"] {
        let html = server.act(&install, action).text();
        assert_eq!(
            texts(&html, ".notice-success"),
            ["Pricing cache cleared. Latest prices will be fetched."]
        );
        assert_eq!(texts(&html, ".page-footer span")[3], "Pricing: Live");
    }
    assert_eq!(api.calls("pricing/current"), 3);
}

#[test]
fn clear_cache_deletes_the_transaction_files_and_counts_them() {
    let api = sample_api(10);
    let install = Install::new("clear", &api.url());
    let server = Server::start(&[]);
    server.get(&install, "");
    fs::write(
        install
            .transaction_cache_dir()
            .join("transactions_old_2026-01-01.json"),
        "{}",
    )
    .unwrap();
    assert_eq!(install.transaction_files().len(), 2);
    let html = server.click(&install, "clear_cache").text();
    assert_eq!(
        texts(&html, ".notice-success"),
        ["Cleared 2 transaction cache files. Fresh data will be fetched."]
    );
    // The page after clearing fetched the history again and cached it anew.
    assert_eq!(api.calls("credits/history"), 2);
    assert_eq!(install.transaction_files().len(), 1);
    let html = server.act(&install, "clearcache").text();
    assert_eq!(
        texts(&html, ".notice-success"),
        ["Cleared 1 transaction cache file. Fresh data will be fetched."]
    );
}

#[test]
fn download_gives_every_transaction_as_csv_with_a_bom() {
    let api = sample_api(1_000);
    let install = Install::new("csv", &api.url());
    let server = Server::start(&[]);
    let csv = server.get(&install, "action=download");
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=UTF-8"));
    let disposition = csv.header("content-disposition").unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"token_usage_history_20")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    assert!(csv.body.starts_with(b"\xEF\xBB\xBF"));
    let text = String::from_utf8(csv.body[3..].to_vec()).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "Date",
            "Transaction Type",
            "Service Type",
            "Amount",
            "Tokens Used",
            "Images Processed",
            "Description"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1_000);
    assert!(!text.to_lowercase().contains("via openai"));
    assert!(rows.iter().all(|r| r[3].parse::<f64>().is_ok()));
}

#[test]
fn download_in_demo_mode_or_without_history_says_why() {
    let api = sample_api(10);
    let install = Install::new("demo-mode", &api.url());
    install.edit_config("define('DEMO_MODE', false);", "define('DEMO_MODE', true);");
    let server = Server::start(&[]);
    let html = server.get(&install, "action=download").text();
    assert_eq!(
        texts(&html, ".notice-error"),
        ["Download disabled in demo mode"]
    );

    let install = Install::new("down", &api.url());
    api.set_fault(Fault::Status500);
    let page = server.get(&install, "action=download");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=UTF-8")
    );
    assert_eq!(
        texts(&page.text(), "#unable-to-load p")[0],
        "Failed to fetch data for download. Please try again."
    );
}

#[test]
fn debug_shows_config_caches_and_raw_answers_but_never_the_whole_key() {
    let api = sample_api(50);
    let install = Install::new("debug", &api.url());
    let server = Server::start(&[]);
    server.get(&install, "");
    for query in ["debug=1", "action=debug"] {
        let html = server.get(&install, query).text();
        assert!(!html.contains("DEMO-4F9A-1C2B-7E3D-90AB"));
        assert!(!html.contains("DEMO-4F9A-"));
        let config = texts(&html, "#debug-config dd");
        assert_eq!(
            config,
            [
                api.url(),
                "DEMO-4F9...".to_string(),
                "demo.example.com".to_string(),
                "owner@demo.example.com".to_string()
            ]
        );
        let caches = texts(&html, "#debug-caches tbody tr");
        assert_eq!(caches.len(), 2);
        assert!(caches[0].contains("pricing_cache.json") && caches[0].contains("fresh"));
        assert!(
            caches[1].contains("transaction_cache/transactions_") && caches[1].contains("fresh")
        );
        let headings = texts(&html, "section h2");
        assert!(headings.contains(&"USER INFO response".to_string()));
        assert!(headings.contains(&"USER STATS response".to_string()));
        assert!(
            html.contains("&quot;balance&quot;"),
            "raw user/stats JSON is shown"
        );
        assert_eq!(texts(&html, "#debug-transactions tbody tr").len(), 5);
        assert!(!html.to_lowercase().contains("via openai"));
    }
}

#[test]
fn an_incomplete_config_shows_unable_to_load_and_logs_file_and_key() {
    let api = sample_api(10);
    let install = Install::new("noconf", &api.url());
    install.edit_config("'email'       => 'owner@demo.example.com',", "");
    let server = Server::start(&[]);
    let page = server.get(&install, "");
    assert_eq!(
        page.status, 200,
        "the card comes with 200, as the PHP page's"
    );
    let html = page.text();
    assert_eq!(
        texts(&html, "#unable-to-load h2"),
        ["Unable to Load Account Data"]
    );
    assert_eq!(texts(&html, "#unable-to-load a"), ["Retry Loading Data"]);
    assert!(html.contains("Please check your license configuration and try again."));
    assert_eq!(api.calls("user/info"), 0);
    let log = server.stop();
    assert!(
        log.contains(&format!(
            "{}: $license_config['email'] is missing or empty",
            install.config_path().display()
        )),
        "{log}"
    );
}

#[test]
fn the_config_is_re_read_when_it_changes() {
    let api = sample_api(10);
    let install = Install::new("reread", &api.url());
    let server = Server::start(&[]);
    let html = server.get(&install, "").text();
    assert_eq!(texts(&html, "#account dd")[0], "owner@demo.example.com");
    std::thread::sleep(std::time::Duration::from_millis(20));
    install.edit_config("owner@demo.example.com", "billing@demo.example.com");
    let html = server.get(&install, "").text();
    assert_eq!(texts(&html, "#account dd")[0], "billing@demo.example.com");
}

#[test]
fn one_process_serves_many_installations_each_with_its_own_caches() {
    let api_a = sample_api(10);
    let api_b = sample_api(20);
    let a = Install::new("multi-a", &api_a.url());
    let b = Install::new("multi-b", &api_b.url());
    b.edit_config("demo.example.com'", "second.example.com'");
    let server = Server::start(&[]);
    let html_a = server.get(&a, "").text();
    let html_b = server.get(&b, "").text();
    assert!(html_a.contains("of 10 transactions"));
    assert!(html_b.contains("of 20 transactions"));
    assert_eq!(texts(&html_b, "#account dd")[2], "second.example.com");
    assert_eq!(a.transaction_files().len(), 1);
    assert_eq!(b.transaction_files().len(), 1);
    assert_ne!(
        a.transaction_files()[0].file_name(),
        b.transaction_files()[0].file_name(),
        "file names carry md5(domain)"
    );
}

#[test]
fn a_script_outside_an_admin_folder_is_a_clear_error() {
    let server = Server::start(&[]);
    let page = server.request(&[
        ("SCRIPT_FILENAME", "/var/www/index.php"),
        ("QUERY_STRING", ""),
    ]);
    assert_eq!(page.status, 404);
    assert!(page.text().contains("Unable to Load Account Data"));
}

#[test]
fn root_option_fixes_the_installation() {
    let api = sample_api(10);
    let install = Install::new("root", &api.url());
    let root = install.ct.display().to_string();
    let server = Server::start(&["--root", &root]);
    let page = server.request(&[
        ("SCRIPT_FILENAME", "/elsewhere/x.php"),
        ("QUERY_STRING", ""),
    ]);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("of 10 transactions"));
}

#[test]
fn cgi_answers_the_same_page_with_a_status_line() {
    let api = sample_api(10_000);
    let install = Install::new("cgi", &api.url());
    let params = page_params(&install, "page=34");
    let page = cgi(&params, &[]);
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=UTF-8")
    );
    assert_eq!(
        texts(&page.text(), ".pagination-info span")[0],
        "Showing 9901-10000 of 10,000 transactions (Page 34 of 34)"
    );
    let csv = cgi(&page_params(&install, "action=download"), &[]);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=UTF-8"));
    assert_eq!(csv.text().lines().count(), 10_001);
}

#[test]
fn templates_can_be_overridden_from_a_folder() {
    let api = sample_api(10);
    let install = Install::new("tpl", &api.url());
    let dir = TempDir::new("templates");
    let base =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/base.html")).unwrap();
    fs::write(
        dir.0.join("base.html"),
        base.replace(
            "<div class=\"page\">",
            "<div class=\"page\"><p id=\"site-banner\">Acme admin</p>",
        ),
    )
    .unwrap();
    let server = Server::start(&["--templates", &dir.0.display().to_string()]);
    let html = server.get(&install, "").text();
    assert_eq!(texts(&html, "#site-banner"), ["Acme admin"]);
    assert!(html.contains("of 10 transactions"));
}

#[test]
fn the_stylesheet_and_script_ship_with_the_binary() {
    let api = sample_api(1);
    let install = Install::new("assets", &api.url());
    let server = Server::start(&[]);
    let css = server.get(&install, "asset=dashboard.css");
    assert_eq!(css.header("content-type"), Some("text/css; charset=UTF-8"));
    assert!(css.text().contains(".badge-usage"));
    let js = server.get(&install, "asset=dashboard.js");
    assert!(js.text().contains("ArrowLeft"));
    assert!(js.text().contains("auto-refresh"));
    let html = server.get(&install, "").text();
    assert_eq!(attrs(&html, "body", "data-refresh-ms"), ["600000"]);
    assert!(!html.contains("cdn"), "no CDN: the page works offline");
}

#[test]
fn api_failures_read_in_the_seeds_words() {
    let api = sample_api(10);
    let install = Install::new("faults", &api.url());
    let server = Server::start(&[]);
    for (fault, message) in [
        (Fault::Status500, "API returned HTTP 500"),
        (Fault::Garbage, "Invalid API response format"),
        (Fault::Refused, "License not found"),
    ] {
        api.set_fault(fault);
        let page = server.get(&install, "");
        assert_eq!(page.status, 200, "{fault:?}");
        let html = page.text();
        assert_eq!(
            texts(&html, "#unable-to-load h2"),
            ["Unable to Load Account Data"]
        );
        assert_eq!(texts(&html, "#unable-to-load p")[0], message, "{fault:?}");
        assert_eq!(texts(&html, "#unable-to-load a"), ["Retry Loading Data"]);
    }
    let closed = Install::new(
        "closed",
        &format!("http://127.0.0.1:{}/api.php", free_port()),
    );
    let html = server.get(&closed, "").text();
    assert_eq!(
        texts(&html, "#unable-to-load p")[0],
        "Failed to connect to License API"
    );
}

#[test]
fn cache_files_written_by_the_php_page_are_used_as_they_are() {
    let api = sample_api(10);
    let install = Install::new("php-cache", &api.url());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // json_encode() output of the PHP page: escaped slashes, numbers as strings.
    fs::write(
        install.pricing_cache(),
        format!(
            r#"{{"timestamp":{now},"data":{{"pricing":{{"image_processing":{{"price":"3.00","unit":10000}},"input_tokens":{{"price":"0.25","unit":1000000}},"completion_tokens":{{"price":"1.00","unit":1000000}},"cached_tokens":{{"price":"0.10","unit":1000000}}}},"currency":"USD","updated_at":"2026-11-21 08:00:00"}}}}"#
        ),
    )
    .unwrap();
    write_today_history(
        &install,
        r#"[{"id":"7","created_at":"2026-11-21 07:30:00","transaction_type":"purchase","service_type":"","amount":"25.00","tokens_used":"0","images_processed":null,"description":"Credit purchase - order #77 \/ PHP"}]"#,
    );
    let server = Server::start(&[]);
    let html = server.get(&install, "").text();
    assert_eq!(
        texts(&html, "#pricing tr")[0],
        "Image Processing $3.00 per 10,000 images"
    );
    let rows = texts(&html, "table.transactions tbody tr");
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].starts_with("Nov 21, ")
            && rows[0]
                .ends_with("7:30 AM purchase +$25.0000 0 0 Credit purchase - order #77 / PHP"),
        "{rows:?}"
    );
    let footer = texts(&html, ".page-footer span");
    assert_eq!(footer[3], "Pricing: Cached");
    assert_eq!(footer[4], "Transactions: Cached");
    assert_eq!(api.calls("credits/history"), 0);
    assert_eq!(api.calls("pricing/current"), 0);
}

#[test]
fn a_translation_file_changes_the_pages_strings() {
    let api = sample_api(10);
    let install = Install::new("lang", &api.url());
    install.edit_config(
        "date_default_timezone_set('UTC');",
        "date_default_timezone_set('UTC'); $admin_language = 'de';",
    );
    fs::create_dir_all(install.ct.join("dat/lang")).unwrap();
    fs::write(
        install.ct.join("dat/lang/tokenusage.de.json"),
        r#"{"token_usage_title": "Token- & Guthabenübersicht", "token_usage_refresh": "Daten aktualisieren"}"#,
    )
    .unwrap();
    let server = Server::start(&[]);
    let html = server.get(&install, "").text();
    assert_eq!(texts(&html, "h1"), ["Token- & Guthabenübersicht"]);
    assert_eq!(nav_labels(&html)[1], "Daten aktualisieren");
    assert_eq!(
        nav_labels(&html)[2],
        "Verlauf herunterladen",
        "keys the file leaves out keep the built-in German"
    );
    assert_eq!(attrs(&html, "html", "lang"), ["de"]);
}

#[test]
fn cgi_reads_a_page_through_the_index_beside_the_cache_and_shows_what_fastcgi_shows() {
    let api = sample_api(10_000);
    let install = Install::new("cgi-index", &api.url());
    let server = Server::start(&[]);
    let rows = |html: &str| texts(html, "table.transactions tbody tr");
    let fastcgi_34 = rows(&server.get(&install, "page=34").text());
    let index = {
        let mut name = today_file(&install).into_os_string();
        name.push(".idx");
        std::path::PathBuf::from(name)
    };
    assert!(
        !index.exists(),
        "FastCGI keeps the history in memory, no index"
    );

    for round in ["writes the index", "reads through it"] {
        let page = cgi(&page_params(&install, "page=34"), &[]);
        assert_eq!(rows(&page.text()), fastcgi_34, "{round}");
        assert!(index.exists(), "{round}");
    }
    let cgi_1 = rows(&cgi(&page_params(&install, "page=1"), &[]).text());
    assert_eq!(cgi_1, rows(&server.get(&install, "page=1").text()));
    assert_eq!(cgi_1.len(), 300);

    // The PHP page rewrites the file in place: the index no longer names it, and the
    // kept history adds what the file holds now to what it held before (an entry
    // without a date goes last).
    write_today_history(
        &install,
        r#"[{"id":1,"transaction_type":"purchase","amount":"5","description":"rewritten"}]"#,
    );
    let page = cgi(&page_params(&install, "page=34"), &[]).text();
    assert_eq!(
        texts(&page, ".pagination-info span")[0],
        "Showing 9901-10001 of 10,001 transactions (Page 34 of 34)"
    );
    assert!(rows(&page).last().unwrap().ends_with("rewritten"));
    assert_eq!(
        api.calls("credits/history"),
        1,
        "every view read the cache file"
    );

    // Clear Cache removes the index with the file, and counts only the file.
    let cleared = server.click(&install, "clear_cache").text();
    assert_eq!(
        texts(&cleared, ".notice-success"),
        ["Cleared 1 transaction cache file. Fresh data will be fetched."]
    );
    assert!(!index.exists());
}

#[test]
fn an_entry_that_is_not_a_transaction_is_shown_with_its_text_not_dropped() {
    let api = sample_api(10);
    let install = Install::new("unreadable-entry", &api.url());
    write_today_history(
        &install,
        r#"[{"id":1,"transaction_type":"purchase","amount":"5","description":"fine"},{"amount":"lots","description":"<b>odd</b>"},42]"#,
    );
    let server = Server::start(&[]);
    for (how, html) in [
        ("FastCGI", server.get(&install, "").text()),
        ("CGI", cgi(&page_params(&install, ""), &[]).text()),
    ] {
        let rows = texts(&html, "table.transactions tbody tr");
        assert_eq!(rows.len(), 3, "{how}: nothing dropped");
        assert!(rows[0].ends_with("fine"), "{how}");
        assert!(rows[1].contains(r#"unreadable"#), "{how}: {}", rows[1]);
        let titles = attrs(&html, "table.transactions td[title]", "title");
        assert_eq!(
            titles[1], r#"Unreadable entry: {"amount":"lots","description":"<b>odd</b>"}"#,
            "{how}: the whole text on hover"
        );
        assert!(!html.contains("<b>odd</b>"), "{how}: escaped");
        assert_eq!(titles[2], "Unreadable entry: 42", "{how}");
    }
    let csv = server.get(&install, "action=download").text();
    assert_eq!(csv.lines().count(), 4, "the header and every entry");
    assert!(csv.contains("Unreadable entry: 42"));
    assert_eq!(api.calls("credits/history"), 0, "the cache file was used");
}

#[test]
fn a_page_shown_again_carries_each_browsers_own_token_and_current_data() {
    let api = sample_api(500);
    let install = Install::new("kept-pages", &api.url());
    let server = Server::start(&["--account-cache-seconds", "0"]);
    let first = server.get(&install, "");
    let cookie = csrf_cookie(&first).unwrap();
    let token = csrf_token(&first).unwrap();
    let again = server.get_with_cookie(&install, "", &cookie).text();
    let other = server.get(&install, "");
    let other_token = csrf_token(&other).unwrap();
    assert_ne!(token, other_token);
    for (html, token) in [(&again, &token), (&other.text(), &other_token)] {
        let links = attrs(html, "a", "href");
        assert!(links.iter().all(|l| !l.contains("token=")), "{links:?}");
        let tokens = attrs(html, "form input[name=token]", "value");
        assert_eq!(
            tokens.len(),
            5,
            "three buttons, the footer's and the auto refresh"
        );
        assert!(tokens.iter().all(|t| t == token), "{tokens:?}");
    }
    assert_eq!(
        again.replace(&token, "T"),
        other.text().replace(&other_token, "T"),
        "the same page apart from the token"
    );
    // New data from the license server shows at once.
    assert!(texts(&again, ".banner-low-balance").is_empty());
    api.set_balance(0.5);
    let low = server.get_with_cookie(&install, "", &cookie).text();
    assert_eq!(texts(&low, ".banner-low-balance").len(), 1);
    assert_eq!(
        attrs(&low, "#balance dd.balance", "class"),
        ["balance balance-low"]
    );
}

#[test]
fn a_reloaded_translation_reaches_the_table_headers_too() {
    let api = sample_api(10);
    let install = Install::new("lang-reload", &api.url());
    install.edit_config(
        "date_default_timezone_set('UTC');",
        "date_default_timezone_set('UTC'); $admin_language = 'de';",
    );
    let translation = install.ct.join("dat/lang/tokenusage.de.json");
    fs::create_dir_all(translation.parent().unwrap()).unwrap();
    fs::write(&translation, r#"{"token_usage_date": "Datum"}"#).unwrap();
    let server = Server::start(&[]);
    let first = server.get(&install, "").text();
    assert_eq!(texts(&first, "table.transactions th")[0], "Datum");
    // The translation changes; the config is saved again, so it is read anew.
    fs::write(&translation, r#"{"token_usage_date": "Zeitpunkt"}"#).unwrap();
    install.edit_config(
        "$admin_language = 'de';",
        "$admin_language = 'de'; // saved",
    );
    let second = server.get(&install, "").text();
    assert_eq!(texts(&second, "table.transactions th")[0], "Zeitpunkt");
}

#[test]
fn the_language_comes_from_the_config_else_the_query_remembered_else_the_browser() {
    let api = sample_api(10);
    let install = Install::new("languages", &api.url());
    let server = Server::start(&[]);
    let lang_of = |html: &str| attrs(html, "html", "lang").join("");
    let dir_of = |html: &str| attrs(html, "html", "dir").join("");

    // The browser's Accept-Language, by quality, de-DE meaning de.
    let mut params = page_params(&install, "");
    params.push((
        "HTTP_ACCEPT_LANGUAGE",
        "sw;q=1, de-DE;q=0.9, en;q=0.5".into(),
    ));
    let german = server.request(&params).text();
    assert_eq!(lang_of(&german), "de");
    assert_eq!(dir_of(&german), "ltr");

    // ?lang= wins over the browser and is remembered in a cookie for this folder.
    params = page_params(&install, "lang=ar");
    params.push(("HTTP_ACCEPT_LANGUAGE", "de".into()));
    let arabic = server.request(&params);
    assert_eq!(lang_of(&arabic.text()), "ar");
    assert_eq!(dir_of(&arabic.text()), "rtl");
    let remembered = set_cookies(&arabic)
        .into_iter()
        .find(|c| c.starts_with("tokenusage_lang="))
        .expect("the choice is remembered");
    assert_eq!(remembered, "tokenusage_lang=ar");
    let set = arabic.header("set-cookie").unwrap();
    assert!(set.contains("Path=/ct/admin/"), "{set}");
    let mut params = page_params(&install, "");
    params.push(("HTTP_COOKIE", remembered));
    params.push(("HTTP_ACCEPT_LANGUAGE", "de".into()));
    assert_eq!(lang_of(&server.request(&params).text()), "ar");

    // A language we do not have is ignored; nothing at all is English.
    assert_eq!(lang_of(&server.get(&install, "lang=tlh").text()), "en");

    // The installation's config wins over everything.
    install.edit_config(
        "date_default_timezone_set('UTC');",
        "date_default_timezone_set('UTC'); $admin_language = 'ja';",
    );
    let mut params = page_params(&install, "lang=ar");
    params.push(("HTTP_ACCEPT_LANGUAGE", "de".into()));
    assert_eq!(lang_of(&server.request(&params).text()), "ja");
}
