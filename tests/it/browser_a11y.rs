//! axe-core's accessibility rules, run inside the real page in Chromium: the dashboard,
//! the debug page and the error page, in light and dark, in English and Arabic, with no
//! violation of impact "serious" or "critical".
//!
//! I/O: reads `dev-tools/axe/node_modules/axe-core/axe.min.js` (installed by `.ci/install`
//! with `npm ci --prefix dev-tools/axe`) and injects it through WebDriver's execute script,
//! which the page's Content-Security-Policy (`script-src 'self'`) does not govern; serves
//! the page and drives the browser with the harness in `browser.rs`.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};
use tokenusage::dev::sample_api::SampleApiOptions;

use crate::browser::{PageServer, WebDriver};

/// Where `npm ci --prefix dev-tools/axe` puts axe.
const AXE: &str = "dev-tools/axe/node_modules/axe-core/axe.min.js";
/// The impacts that fail the test; "minor" and "moderate" are printed only.
const FAILING: [&str; 2] = ["serious", "critical"];

#[test]
fn english_pages_have_no_serious_accessibility_violation_in_light_or_dark() {
    check_language("en");
}

#[test]
fn arabic_pages_have_no_serious_accessibility_violation_in_light_or_dark() {
    check_language("ar");
}

/// Runs axe on the three pages in both schemes, then fails with every serious or critical
/// violation found.
fn check_language(lang: &str) {
    let axe = axe_source();
    let server = PageServer::start(&format!("axe-{lang}"), 1000);
    // A config without a license key: the "Unable to Load" page.
    let broken = PageServer::start_with(
        &format!("axe-{lang}-error"),
        SampleApiOptions {
            transactions: 10,
            ..SampleApiOptions::default()
        },
        |install| {
            install.edit_config("'license_key' => 'DEMO-4F9A-1C2B-7E3D-90AB',", "");
        },
    );
    // Each page, and an element only it has.
    let pages = [
        (
            "dashboard",
            server.page(&format!("lang={lang}")),
            "#history",
        ),
        (
            "debug page",
            server.page(&format!("debug=1&lang={lang}")),
            "#debug-config",
        ),
        (
            "error page",
            broken.page(&format!("lang={lang}")),
            "#unable-to-load",
        ),
    ];
    let browser = WebDriver::start();
    let mut failures = Vec::new();
    for dark in [false, true] {
        browser.set_color_scheme(dark);
        for (name, url, mark) in &pages {
            browser.navigate(url);
            browser.wait_until_complete();
            let scheme = if dark { "dark" } else { "light" };
            let found = browser.execute_with(
                "return document.querySelector(arguments[0]) !== null;",
                json!([mark]),
            );
            assert_eq!(found, json!(true), "{url} is not the {name}: no {mark}");
            let html_lang = browser.execute("return document.documentElement.lang;");
            if html_lang != json!(lang) {
                failures.push(format!(
                    "{name}, {scheme}: <html lang> is {html_lang}, not \"{lang}\" ({url})"
                ));
            }
            let violations = run_axe(&browser, &axe);
            for violation in &violations {
                let impact = violation["impact"].as_str().unwrap_or("none");
                let line = describe(violation);
                if FAILING.contains(&impact) {
                    failures.push(format!("{name}, {scheme}: {line}"));
                } else {
                    println!("{lang} {name}, {scheme} (not failing): {line}");
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "axe-core found {} problem(s) in {lang}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// axe's source, or a failure that says how to install it.
fn axe_source() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(AXE);
    fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: axe-core is missing; install it with `npm ci --prefix dev-tools/axe` \
             (bash .ci/install does)",
            path.display()
        )
    })
}

/// axe's violations on the page shown (injected once per document).
fn run_axe(browser: &WebDriver, axe: &str) -> Vec<Value> {
    if browser.execute("return typeof window.axe;") != json!("object") {
        browser.execute(&format!("{axe}\nreturn typeof window.axe;"));
    }
    let answer = browser.execute_async(
        r#"const done = arguments[arguments.length - 1];
           axe.run(document, {resultTypes: ["violations"]})
               .then(results => done({violations: results.violations.map(v => ({
                   id: v.id, impact: v.impact, help: v.help,
                   targets: v.nodes.slice(0, 3).map(n => n.target.join(" ")),
                   summary: v.nodes.length ? v.nodes[0].failureSummary : "",
                   count: v.nodes.length}))}))
               .catch(error => done({error: String(error)}));"#,
    );
    if let Some(error) = answer["error"].as_str() {
        panic!("axe.run failed: {error}");
    }
    answer["violations"].as_array().cloned().unwrap_or_default()
}

/// One line per violation: its rule, impact, help text and a few of the elements.
fn describe(violation: &Value) -> String {
    let summary = violation["summary"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "[{}] {}: {} ({} element(s), e.g. {}) {}",
        violation["impact"].as_str().unwrap_or("none"),
        violation["id"].as_str().unwrap_or("?"),
        violation["help"].as_str().unwrap_or(""),
        violation["count"],
        violation["targets"],
        summary.chars().take(300).collect::<String>(),
    )
}
