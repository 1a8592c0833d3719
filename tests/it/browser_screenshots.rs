//! Screenshots of the page as a person sees it: desktop (1280 px) and phone (390 px), light
//! and dark, in English, Arabic and German. The README shows them.
//!
//! I/O: serves the page and drives the browser with the harness in `browser.rs`; writes
//! the PNGs into a temporary folder, or, when `TOKENUSAGE_SCREENSHOTS` names a folder
//! (relative to the crate, e.g. `TOKENUSAGE_SCREENSHOTS=docs`), into it, replacing the
//! committed ones. Only that variable makes a test run write into the repository.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use tokenusage::dev::sample_api::SampleApiOptions;

use crate::browser::{DESKTOP, PHONE, PageServer, WebDriver, png_size};
use crate::support::TempDir;

/// Where the screenshots go when asked for: a folder relative to the crate.
const TARGET_VARIABLE: &str = "TOKENUSAGE_SCREENSHOTS";
/// Taller pages are cut here (a page of 300 transactions is about 12,000 px high).
const MAX_HEIGHT: u32 = 3000;

/// One screenshot: its language, device and colour scheme.
struct Shot {
    lang: &'static str,
    phone: bool,
    dark: bool,
}

impl Shot {
    const fn new(lang: &'static str, phone: bool, dark: bool) -> Self {
        Shot { lang, phone, dark }
    }

    /// `screenshot-ar-phone-dark.png`
    fn file_name(&self) -> String {
        format!(
            "screenshot-{}-{}-{}.png",
            self.lang,
            if self.phone { "phone" } else { "desktop" },
            if self.dark { "dark" } else { "light" }
        )
    }
}

/// What the README shows: every language's desktop and phone, light and dark between them.
const SHOTS: [Shot; 8] = [
    Shot::new("en", false, false),
    Shot::new("en", false, true),
    Shot::new("en", true, false),
    Shot::new("en", true, true),
    Shot::new("ar", false, false),
    Shot::new("ar", true, true),
    Shot::new("de", false, true),
    Shot::new("de", true, false),
];

#[test]
fn english_screenshots_render_at_desktop_and_phone_width_in_light_and_dark() {
    take("shots-en", &SHOTS[..4]);
}

#[test]
fn arabic_and_german_screenshots_render_at_desktop_and_phone_width() {
    take("shots-ar-de", &SHOTS[4..]);
}

#[test]
fn the_readme_shows_every_screenshot_and_each_is_committed() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(crate_dir.join("README.md")).unwrap();
    for shot in &SHOTS {
        let path = format!("docs/{}", shot.file_name());
        assert!(readme.contains(&path), "the README does not show {path}");
        let png = fs::read(crate_dir.join(&path)).unwrap_or_else(|e| {
            panic!("{path}: {e}: take it with TOKENUSAGE_SCREENSHOTS=docs cargo test --test it -- browser_screenshots")
        });
        let width = if shot.phone { PHONE.0 } else { DESKTOP.0 };
        assert_eq!(png_size(&png).0, width, "{path}");
    }
}

/// Takes `shots` of one sample installation, checks each is a PNG of the right width, and
/// writes them where [`TARGET_VARIABLE`] says (a temporary folder by default). Then checks
/// that dark differs from light.
fn take(name: &str, shots: &[Shot]) {
    // The newest transaction now, so the charts of the last 30 days have bars.
    let options = SampleApiOptions {
        transactions: 1000,
        anchor: Some(chrono::Utc::now().timestamp()),
        ..SampleApiOptions::default()
    };
    let server = PageServer::start_with(name, options, |_| {});
    let scratch = TempDir::new(name);
    let folder = target_folder().unwrap_or_else(|| scratch.0.clone());
    let browser = WebDriver::start();
    // A page cut at MAX_HEIGHT would show a scrollbar down its edge.
    browser.cdp(
        "Emulation.setScrollbarsHidden",
        serde_json::json!({"hidden": true}),
    );
    let mut colours = Vec::new();
    let mut broken_figures = Vec::new();
    for shot in shots {
        let (width, height) = if shot.phone { PHONE } else { DESKTOP };
        browser.set_color_scheme(shot.dark);
        browser.set_viewport((width, height), shot.phone);
        browser.navigate(&server.page(&format!("lang={}", shot.lang)));
        browser.wait_until_complete();
        // The WebDriver screenshot shows the viewport, so the viewport becomes the page.
        let page_height = browser
            .execute("return document.documentElement.scrollHeight;")
            .as_u64()
            .expect("a page height");
        let shown = u32::try_from(page_height)
            .unwrap_or(MAX_HEIGHT)
            .min(MAX_HEIGHT);
        assert!(
            page_height > u64::from(height),
            "{}: the page is no taller than the window ({page_height} px): did it render?",
            shot.file_name()
        );
        browser.set_viewport((width, shown), shot.phone);
        let colour = browser.execute(
            "const html = getComputedStyle(document.documentElement), body = getComputedStyle(document.body);
             return [html.backgroundColor, body.backgroundColor, body.color].join(' / ');",
        );
        colours.push((shot.lang, shot.phone, shot.dark, colour));
        let broken = browser.execute(BROKEN_FIGURES);
        if broken != json!([]) {
            broken_figures.push(format!("{}: {broken}", shot.file_name()));
        }

        let png = browser.screenshot();
        let size = png_size(&png);
        assert_eq!(size, (width, shown), "{}", shot.file_name());
        assert!(
            png.len() > 20 * 1024,
            "{}: a near-empty PNG, {} bytes",
            shot.file_name(),
            png.len()
        );
        let path = folder.join(shot.file_name());
        fs::write(&path, &png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        println!(
            "{} ({}x{}, {} KB)",
            path.display(),
            size.0,
            size.1,
            png.len() / 1024
        );
    }
    assert!(
        broken_figures.is_empty(),
        "figures broken across lines (a card's value column is too narrow for them):\n{}",
        broken_figures.join("\n")
    );
    // The same page and text colours in light and dark mean there is no dark scheme.
    let light: Vec<_> = colours.iter().filter(|b| !b.2).map(|b| &b.3).collect();
    let dark: Vec<_> = colours.iter().filter(|b| b.2).map(|b| &b.3).collect();
    assert!(
        dark.iter().all(|d| !light.contains(d)),
        "the dark screenshots look like the light ones: the stylesheet needs a \
         `@media (prefers-color-scheme: dark)` scheme; (lang, phone, dark, page background \
         / body background / text colour): {colours:?}"
    );
}

/// Figures (one word with a digit: "$12.3456", "49,382") that wrap onto a second line,
/// as they do when a card's value column is squeezed to a few characters.
const BROKEN_FIGURES: &str = r#"
    const broken = [];
    for (const el of document.querySelectorAll("dd, td.num, .balance")) {
        const text = el.textContent.trim();
        if (!/\d/.test(text) || /\s/.test(text)) continue;
        const lines = new Set();
        const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            const range = document.createRange();
            range.selectNodeContents(node);
            for (const r of range.getClientRects()) {
                if (r.width > 0) lines.add(Math.round(r.top));
            }
        }
        if (lines.size > 1) broken.push(text);
    }
    return broken;
"#;

/// The folder named by [`TARGET_VARIABLE`], relative to the crate; `None` when unset.
fn target_folder() -> Option<PathBuf> {
    let named = std::env::var_os(TARGET_VARIABLE).filter(|v| !v.is_empty())?;
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join(named);
    assert!(
        folder.is_dir(),
        "{TARGET_VARIABLE}={}: no such folder",
        folder.display()
    );
    Some(folder)
}
