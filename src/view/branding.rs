//! Provider-name branding: third-party AI provider and model names in service types and
//! descriptions are shown as ComusThumbz's own (`via openai` -> `via CTZ-AI`,
//! `(gpt-4o-mini)` -> `(ComusThumbz AI)`, `claude-3-haiku` -> `ComusThumbz AI`).
//!
//! The rule lives here and nowhere else: the tables below, and one hand-written scanner
//! over them (no regex crate). Matching is ASCII case-insensitive and respects word
//! boundaries; a "word" character is any Unicode letter or digit, or `_`. Pure: no I/O.

use std::borrow::Cow;

/// Providers named after `via`, as in `image_search via openai`.
const PROVIDERS: &[&str] = &["xai", "openai", "anthropic", "google"];

/// What starts a model name; the name goes on with `[A-Za-z0-9._:-]+`.
const MODEL_PREFIXES: &[&str] = &["grok-", "gpt-", "claude-", "gemini-", "o1-", "o3-"];

/// Replaces `via <provider>`.
const VIA_BRAND: &str = "via CTZ-AI";
/// Replaces `(<model>)`.
const PARENTHESISED_MODEL_BRAND: &str = "(ComusThumbz AI)";
/// Replaces a model name standing on its own.
const MODEL_BRAND: &str = "ComusThumbz AI";

/// Replaces provider and model names in `text` with ComusThumbz branding.
///
/// Borrows `text` when nothing matched, which is the common case.
pub fn brand(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut branded: Option<String> = None;
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        // Every match starts with an ASCII byte, so `at` is a char boundary whenever a
        // match is found; bytes of multibyte characters never start one.
        match match_at(text, at) {
            Some((end, replacement)) => {
                let out = branded.get_or_insert_with(|| String::with_capacity(text.len() + 16));
                out.push_str(text.get(copied..at).unwrap_or_default());
                out.push_str(replacement);
                copied = end;
                at = end;
            }
            None => at += 1,
        }
    }
    match branded {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.push_str(text.get(copied..).unwrap_or_default());
            Cow::Owned(out)
        }
    }
}

/// The end of a match starting at byte `at` and its replacement.
fn match_at(text: &str, at: usize) -> Option<(usize, &'static str)> {
    match *text.as_bytes().get(at)? {
        b'(' => {
            parenthesised_model(text.as_bytes(), at).map(|end| (end, PARENTHESISED_MODEL_BRAND))
        }
        b'v' | b'V' => via_provider(text, at).map(|end| (end, VIA_BRAND)),
        b'g' | b'G' | b'c' | b'C' | b'o' | b'O' => {
            standalone_model(text, at).map(|end| (end, MODEL_BRAND))
        }
        _ => None,
    }
}

/// `via`, whitespace, a provider, each a whole word.
fn via_provider(text: &str, at: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    if !starts_with_ignore_case(bytes, at, "via") || is_word_before(text, at) {
        return None;
    }
    let mut next = at + 3;
    while bytes.get(next).is_some_and(u8::is_ascii_whitespace) {
        next += 1;
    }
    if next == at + 3 {
        return None;
    }
    PROVIDERS.iter().find_map(|provider| {
        let end = next + provider.len();
        (starts_with_ignore_case(bytes, next, provider) && !is_word_at(text, end)).then_some(end)
    })
}

/// `(`, a model name, `)`.
fn parenthesised_model(bytes: &[u8], at: usize) -> Option<usize> {
    let tail_start = model_prefix_end(bytes, at + 1)?;
    let end = model_tail_end(bytes, tail_start);
    (end > tail_start && bytes.get(end) == Some(&b')')).then_some(end + 1)
}

/// A model name that is a whole word. Trailing `.`, `:` and `-` are left out, so the full
/// stop in `Used gpt-4o.` survives.
fn standalone_model(text: &str, at: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    if is_word_before(text, at) {
        return None;
    }
    let tail_start = model_prefix_end(bytes, at)?;
    let mut end = model_tail_end(bytes, tail_start);
    while end > tail_start && matches!(bytes.get(end - 1), Some(b'.' | b':' | b'-')) {
        end -= 1;
    }
    (end > tail_start && !is_word_at(text, end)).then_some(end)
}

/// Where the model prefix starting at `at` ends, if one does.
fn model_prefix_end(bytes: &[u8], at: usize) -> Option<usize> {
    MODEL_PREFIXES
        .iter()
        .find(|prefix| starts_with_ignore_case(bytes, at, prefix))
        .map(|prefix| at + prefix.len())
}

/// The end of `[A-Za-z0-9._:-]*` starting at `at`.
fn model_tail_end(bytes: &[u8], at: usize) -> usize {
    let tail = bytes.get(at..).unwrap_or_default();
    at + tail
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        .count()
}

fn starts_with_ignore_case(bytes: &[u8], at: usize, word: &str) -> bool {
    bytes
        .get(at..at + word.len())
        .is_some_and(|found| found.eq_ignore_ascii_case(word.as_bytes()))
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether the character ending just before byte `at` is a word character.
fn is_word_before(text: &str, at: usize) -> bool {
    text.get(..at)
        .and_then(|before| before.chars().next_back())
        .is_some_and(is_word_char)
}

/// Whether the character starting at byte `at` is a word character.
fn is_word_at(text: &str, at: usize) -> bool {
    text.get(at..)
        .and_then(|after| after.chars().next())
        .is_some_and(is_word_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_after_via_becomes_ctz_ai() {
        assert_eq!(brand("image_search via openai"), "image_search via CTZ-AI");
        assert_eq!(brand("tags via xai"), "tags via CTZ-AI");
        assert_eq!(brand("tags via anthropic"), "tags via CTZ-AI");
        assert_eq!(brand("tags via google"), "tags via CTZ-AI");
    }

    #[test]
    fn a_parenthesised_model_becomes_comusthumbz_ai() {
        assert_eq!(
            brand("AI image selection via openai (gpt-4o-mini) for gallery 5512"),
            "AI image selection via CTZ-AI (ComusThumbz AI) for gallery 5512"
        );
        assert_eq!(brand("(claude-3-5-sonnet-20241022)"), "(ComusThumbz AI)");
        assert_eq!(
            brand("x (o1-preview) (o3-mini)"),
            "x (ComusThumbz AI) (ComusThumbz AI)"
        );
    }

    #[test]
    fn a_standalone_model_becomes_comusthumbz_ai() {
        assert_eq!(
            brand("Used claude-3-haiku for tags"),
            "Used ComusThumbz AI for tags"
        );
        assert_eq!(brand("grok-2"), "ComusThumbz AI");
        assert_eq!(
            brand("gemini-1.5-pro: 3 images"),
            "ComusThumbz AI: 3 images"
        );
        assert_eq!(brand("Used gpt-4o."), "Used ComusThumbz AI.");
        assert_eq!(brand("gpt-4o_mini-2024:free"), "ComusThumbz AI");
    }

    #[test]
    fn matching_ignores_case_and_writes_the_brand_in_its_own_case() {
        assert_eq!(brand("VIA XAI (GROK-2)"), "via CTZ-AI (ComusThumbz AI)");
        assert_eq!(
            brand("Via OpenAI, then GPT-4"),
            "via CTZ-AI, then ComusThumbz AI"
        );
    }

    #[test]
    fn word_boundaries_are_respected() {
        for text in [
            "viaxai",
            "via xaiX",
            "trivia openai",
            "fogpt-4",
            "gpt-",
            "(gpt-)",
            "via  ",
            "via",
            "éo1-x",
        ] {
            assert!(
                matches!(brand(text), Cow::Borrowed(_)),
                "{text:?} was changed"
            );
        }
        assert_eq!(brand("via OpenAI,"), "via CTZ-AI,");
        assert_eq!(brand("via\topenai"), "via CTZ-AI");
        assert_eq!(brand("(gpt-4 turbo)"), "(ComusThumbz AI turbo)");
    }

    #[test]
    fn text_without_providers_is_borrowed_unchanged() {
        let text = "Purchased 10 credits (order 77); via PayPal";
        assert!(matches!(brand(text), Cow::Borrowed(t) if t == text));
        assert!(matches!(brand(""), Cow::Borrowed("")));
    }

    #[test]
    fn multibyte_text_around_matches_is_untouched() {
        assert_eq!(
            brand("Légende générée via openai (gpt-4o) — 日本語 grok-2 ✓"),
            "Légende générée via CTZ-AI (ComusThumbz AI) — 日本語 ComusThumbz AI ✓"
        );
        assert_eq!(brand("ü gpt-4ü"), "ü gpt-4ü");
    }
}
