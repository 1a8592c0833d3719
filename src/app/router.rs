//! The original page's query contract: `?action=...`, `?page=N`, `?debug=1`.
//!
//! Existing bookmarks and the PHP page's auto refresh send both spellings of each action
//! (`refresh_data` and `refreshdata`), so both are accepted. Pure: no I/O.

use crate::data::url::query_pairs;
use crate::view::render::ASSETS;

/// What a request asks the dashboard to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Overview,
    RefreshData,
    UpdatePricing,
    ClearCache,
    Download,
    Debug,
    /// One of the files the page links to (stylesheet, script), by name.
    Asset(&'static str),
}

impl Action {
    /// The underscored name emitted in links.
    pub fn name(self) -> &'static str {
        match self {
            Action::Overview => "overview",
            Action::RefreshData => "refresh_data",
            Action::UpdatePricing => "update_pricing",
            Action::ClearCache => "clear_cache",
            Action::Download => "download",
            Action::Debug => "debug",
            Action::Asset(_) => "asset",
        }
    }

    /// True for the actions that delete caches or force fetches.
    pub fn changes_state(self) -> bool {
        matches!(
            self,
            Action::RefreshData | Action::UpdatePricing | Action::ClearCache
        )
    }
}

/// A parsed query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub action: Action,
    /// The requested page, 1-based; clamped to the last page by the view model.
    pub page: usize,
    /// The `action` value when it named no known action, so the page can say so.
    pub unknown_action: Option<String>,
    /// A built-in language asked for with `lang=` (remembered in a cookie).
    pub lang: Option<&'static str>,
}

/// Parses a query string; never fails: unknown or malformed parts fall back to the
/// defaults (the overview, page 1).
pub fn parse_query(query: &str) -> Query {
    let mut parsed = Query {
        action: Action::Overview,
        page: 1,
        unknown_action: None,
        lang: None,
    };
    let mut debug = false;
    let mut asset = None;
    for (key, value) in query_pairs(query) {
        match key.as_str() {
            "lang" => parsed.lang = crate::data::i18n::supported(&value),
            "action" => match action_named(&value) {
                Some(action) => {
                    parsed.action = action;
                    parsed.unknown_action = None;
                }
                None => parsed.unknown_action = Some(value),
            },
            "page" => parsed.page = page_number(&value),
            "debug" => debug = !matches!(value.as_str(), "" | "0" | "false"),
            "asset" => asset = ASSETS.iter().map(|(name, ..)| *name).find(|n| *n == value),
            _ => {}
        }
    }
    if let Some(name) = asset {
        parsed.action = Action::Asset(name);
    } else if debug {
        parsed.action = Action::Debug;
    }
    parsed
}

/// The action a query value names, in either spelling.
fn action_named(value: &str) -> Option<Action> {
    let normalized: String = value
        .chars()
        .filter(|c| *c != '_')
        .collect::<String>()
        .to_ascii_lowercase();
    Some(match normalized.as_str() {
        "" | "overview" => Action::Overview,
        "refreshdata" => Action::RefreshData,
        "updatepricing" => Action::UpdatePricing,
        "clearcache" => Action::ClearCache,
        "download" => Action::Download,
        "debug" => Action::Debug,
        _ => return None,
    })
}

/// A page number: a positive decimal integer, else page 1.
fn page_number(value: &str) -> usize {
    match value.trim().parse::<usize>() {
        Ok(n) if n >= 1 => n,
        Ok(_) => 1,
        // Digits too many for usize still mean "far past the end".
        Err(_) if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => usize::MAX,
        Err(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_query_is_the_overview_on_page_one() {
        let query = parse_query("");
        assert_eq!(query.action, Action::Overview);
        assert_eq!(query.page, 1);
    }

    #[test]
    fn both_spellings_of_each_action_are_accepted() {
        for (a, b, action) in [
            ("refresh_data", "refreshdata", Action::RefreshData),
            ("update_pricing", "updatepricing", Action::UpdatePricing),
            ("clear_cache", "clearcache", Action::ClearCache),
        ] {
            assert_eq!(parse_query(&format!("action={a}")).action, action);
            assert_eq!(parse_query(&format!("action={b}")).action, action);
        }
        assert_eq!(parse_query("action=download").action, Action::Download);
    }

    #[test]
    fn debug_is_reached_by_flag_or_action() {
        assert_eq!(parse_query("debug=1").action, Action::Debug);
        assert_eq!(parse_query("action=debug").action, Action::Debug);
        assert_eq!(parse_query("debug=0").action, Action::Overview);
    }

    #[test]
    fn anything_not_a_page_number_is_page_one() {
        for bad in [
            "page=abc", "page=-3", "page=0", "page=", "page=1.5", "page=%00",
        ] {
            assert_eq!(parse_query(bad).page, 1, "{bad}");
        }
        assert_eq!(parse_query("page=34").page, 34);
        assert_eq!(parse_query("page=99999999999999999999999").page, usize::MAX);
    }

    #[test]
    fn an_unknown_action_shows_the_overview_and_is_remembered() {
        let query = parse_query("action=format_disk");
        assert_eq!(query.action, Action::Overview);
        assert_eq!(query.unknown_action.as_deref(), Some("format_disk"));
    }

    #[test]
    fn only_known_assets_are_served() {
        assert_eq!(
            parse_query("asset=dashboard.css").action,
            Action::Asset("dashboard.css")
        );
        assert_eq!(
            parse_query("asset=../../etc/passwd").action,
            Action::Overview
        );
    }
}
