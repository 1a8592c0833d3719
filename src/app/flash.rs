//! The message an action leaves for the page it redirects to (Post/Redirect/Get): after
//! Refresh Data, Update Pricing or Clear Cache the browser is sent to the plain page,
//! which shows the message once, so a reload repeats nothing. Carried in a short-lived
//! cookie holding only a known code (and a count): a forged one can only show one of
//! these messages. Pure.

use crate::data::i18n::Strings;
use crate::view::dashboard::Notice;
use crate::view::locale::Locale;

/// The cookie that carries it.
pub const FLASH_COOKIE: &str = "tokenusage_flash";

/// What an action did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flash {
    /// Every part came fresh from the license server.
    Refreshed,
    PricingCleared,
    /// Transaction cache files deleted.
    CacheCleared(u64),
}

impl Flash {
    /// The cookie's value.
    pub fn cookie_value(self) -> String {
        match self {
            Flash::Refreshed => "refreshed".into(),
            Flash::PricingCleared => "pricing_cleared".into(),
            Flash::CacheCleared(count) => format!("cache_cleared.{count}"),
        }
    }

    /// A cookie's value read back; anything else is nothing.
    pub fn parse(value: &str) -> Option<Flash> {
        match value {
            "refreshed" => Some(Flash::Refreshed),
            "pricing_cleared" => Some(Flash::PricingCleared),
            _ => {
                let count = value.strip_prefix("cache_cleared.")?;
                (count.len() <= 6 && count.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| count.parse().ok().map(Flash::CacheCleared))
                    .flatten()
            }
        }
    }

    /// The message in the seed's words, in the page's language.
    pub fn notice(self, strings: &Strings, locale: &Locale) -> Notice {
        match self {
            Flash::Refreshed => Notice::success(strings.get("token_usage_data_refreshed")),
            Flash::PricingCleared => Notice::success(strings.get("token_usage_pricing_cleared")),
            Flash::CacheCleared(count) => Notice::success(
                strings
                    .plural("token_usage_cache_cleared", count)
                    .replace("{count}", &locale.count(count)),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flash_survives_its_cookie_and_nothing_else_does() {
        for flash in [
            Flash::Refreshed,
            Flash::PricingCleared,
            Flash::CacheCleared(3),
        ] {
            assert_eq!(Flash::parse(&flash.cookie_value()), Some(flash));
        }
        for forged in [
            "",
            "cache_cleared.",
            "cache_cleared.-1",
            "cache_cleared.9999999",
            "<b>",
            "refreshed ",
        ] {
            assert_eq!(Flash::parse(forged), None, "{forged:?}");
        }
    }

    #[test]
    fn clear_cache_says_how_many_files_in_the_languages_plural() {
        let en = Strings::english();
        let one = Flash::CacheCleared(1).notice(&en, Locale::of("en"));
        assert_eq!(
            one.text,
            "Cleared 1 transaction cache file. Fresh data will be fetched."
        );
        let many = Flash::CacheCleared(1200).notice(&en, Locale::of("en"));
        assert!(
            many.text
                .starts_with("Cleared 1,200 transaction cache files."),
            "{}",
            many.text
        );
    }
}
