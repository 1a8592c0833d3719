//! Every visible string, by the seed's translation keys (`token_usage_title`, ...), in the
//! twelve languages of ComusThumbz's manual: one JSON file per language in `i18n/`,
//! compiled in. A text is a string, or an object of plural forms by the language's CLDR
//! categories (`{"one": "...", "other": "..."}`), chosen by ICU4X's plural rules. An
//! installation may override any key in `ct/dat/lang/tokenusage.<lang>.json`; a key no
//! file has stays English. Which language a request gets: [`negotiate`]. Reading an
//! override file is the only I/O here.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use icu_locale_core::Locale;
use icu_plurals::{PluralCategory, PluralRules};

use crate::data::stamp::FileStamp;

/// The languages built in, English first (the fallback).
pub const LANGUAGES: [&str; 12] = [
    "en", "de", "es", "fr", "it", "pt", "ru", "ja", "zh", "ar", "hi", "cs",
];

/// Each language's file, as compiled in.
const FILES: [(&str, &str); 12] = [
    ("en", include_str!("../../i18n/en.json")),
    ("de", include_str!("../../i18n/de.json")),
    ("es", include_str!("../../i18n/es.json")),
    ("fr", include_str!("../../i18n/fr.json")),
    ("it", include_str!("../../i18n/it.json")),
    ("pt", include_str!("../../i18n/pt.json")),
    ("ru", include_str!("../../i18n/ru.json")),
    ("ja", include_str!("../../i18n/ja.json")),
    ("zh", include_str!("../../i18n/zh.json")),
    ("ar", include_str!("../../i18n/ar.json")),
    ("hi", include_str!("../../i18n/hi.json")),
    ("cs", include_str!("../../i18n/cs.json")),
];

/// One key's text: plain, or plural forms by CLDR category name.
#[derive(Debug, Clone, PartialEq)]
pub enum Text {
    Plain(String),
    Plural(BTreeMap<String, String>),
}

impl Text {
    fn from_json(value: serde_json::Value) -> Option<Text> {
        match value {
            serde_json::Value::String(text) => Some(Text::Plain(text)),
            serde_json::Value::Object(forms) => {
                let forms: BTreeMap<String, String> = forms
                    .into_iter()
                    .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
                    .collect();
                forms.contains_key("other").then_some(Text::Plural(forms))
            }
            _ => None,
        }
    }

    /// The plain text, or the `other` form.
    fn general(&self) -> &str {
        match self {
            Text::Plain(text) => text,
            Text::Plural(forms) => forms.get("other").map_or("", String::as_str),
        }
    }
}

/// The strings of one language, English where a translation is missing. Cheap to clone:
/// every request in that language shares them.
#[derive(Clone)]
pub struct Strings(Arc<Texts>);

struct Texts {
    language: &'static str,
    map: BTreeMap<String, Text>,
    plurals: PluralRules,
    /// The map as the templates see it (plural forms also as `key.category`), converted
    /// once rather than per render.
    for_templates: tera::Value,
}

impl std::fmt::Debug for Strings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Strings")
            .field("language", &self.0.language)
            .field("keys", &self.0.map.len())
            .finish()
    }
}

impl PartialEq for Strings {
    fn eq(&self, other: &Self) -> bool {
        self.0.language == other.0.language && self.0.map == other.0.map
    }
}

/// A file's texts by key; `None` for a file that is not a JSON object.
pub fn parse_texts(json: &str) -> Option<BTreeMap<String, Text>> {
    let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(json).ok()?;
    Some(
        map.into_iter()
            .filter_map(|(k, v)| Some((k, Text::from_json(v)?)))
            .collect(),
    )
}

/// The built-in strings of each language (English under every missing key), read when
/// first asked for: a CGI process reads only its own language's file.
static BUILT_IN: [OnceLock<Strings>; LANGUAGES.len()] =
    [const { OnceLock::new() }; LANGUAGES.len()];

/// English's texts, the base of every language.
static ENGLISH_TEXTS: LazyLock<BTreeMap<String, Text>> =
    LazyLock::new(|| parse_texts(FILES[0].1).unwrap_or_default());

fn build(index: usize) -> Strings {
    let (lang, json) = FILES[index];
    let mut map = ENGLISH_TEXTS.clone();
    match parse_texts(json) {
        Some(own) => {
            for (key, text) in own {
                if let Some(slot) = map.get_mut(&key) {
                    *slot = text;
                }
            }
        }
        None => eprintln!("tokenusage: i18n/{lang}.json is not a JSON object"),
    }
    Strings::new(lang, map)
}

impl Strings {
    /// True when both are the very same loaded strings (not merely equal text).
    pub fn is_same(&self, other: &Strings) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    fn new(language: &'static str, map: BTreeMap<String, Text>) -> Self {
        let mut flat: BTreeMap<String, &str> = BTreeMap::new();
        for (key, text) in &map {
            flat.insert(key.clone(), text.general());
            if let Text::Plural(forms) = text {
                for (category, form) in forms {
                    flat.insert(format!("{key}.{category}"), form);
                }
            }
        }
        let for_templates = tera::Value::from_serializable(&flat);
        Strings(Arc::new(Texts {
            language,
            map,
            plurals: plural_rules(language),
            for_templates,
        }))
    }

    /// The built-in strings of `language` (one of [`LANGUAGES`], else English).
    pub fn built_in(language: &str) -> Self {
        let index = LANGUAGES.iter().position(|l| *l == language).unwrap_or(0);
        BUILT_IN[index].get_or_init(|| build(index)).clone()
    }

    /// The built-in English strings.
    pub fn english() -> Self {
        Self::built_in("en")
    }

    /// The built-in strings of `language` overlaid with a translation file's known keys;
    /// unknown keys and values of another shape are ignored, a broken file is an error.
    pub fn with_translation(language: &str, json: &str) -> Result<Self, serde_json::Error> {
        let base = Self::built_in(language);
        let mut map = base.0.map.clone();
        let own: BTreeMap<String, serde_json::Value> = serde_json::from_str(json)?;
        for (key, value) in own {
            if let (Some(slot), Some(text)) = (map.get_mut(&key), Text::from_json(value)) {
                *slot = text;
            }
        }
        Ok(Self::new(base.0.language, map))
    }

    /// The strings of `language` with the installation's override file
    /// (`ct/dat/lang/tokenusage.<lang>.json`), if it has one. A language outside
    /// [`LANGUAGES`] is English with that file.
    pub fn load(dat: &Path, language: Option<&str>) -> Self {
        let Some(lang) = language.filter(|l| is_language_code(l)) else {
            return Self::english();
        };
        let built_in = Self::built_in(supported(lang).unwrap_or("en"));
        let path = override_file(dat, lang);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::with_translation(built_in.language(), &text).unwrap_or_else(|e| {
                eprintln!(
                    "tokenusage: ignoring {}: not a JSON object of strings: {e}",
                    path.display()
                );
                built_in
            }),
            Err(_) => built_in,
        }
    }

    /// The language these strings are in (`en` for English).
    pub fn language(&self) -> &'static str {
        self.0.language
    }

    /// True for a language written right to left.
    pub fn is_rtl(&self) -> bool {
        self.0.language == "ar"
    }

    /// The HTML `dir` of the language: `rtl` or `ltr`.
    pub fn dir(&self) -> &'static str {
        if self.is_rtl() { "rtl" } else { "ltr" }
    }

    /// The text of a key (a plural key's `other` form; the key itself if unknown, so a
    /// typo is visible, not blank).
    pub fn get<'a>(&'a self, key: &'a str) -> &'a str {
        self.0.map.get(key).map(Text::general).unwrap_or(key)
    }

    /// The form of a plural key for `count` (the plain text of any other key).
    pub fn plural<'a>(&'a self, key: &'a str, count: u64) -> &'a str {
        match self.0.map.get(key) {
            Some(Text::Plural(forms)) => forms
                .get(self.category(count))
                .or_else(|| forms.get("other"))
                .map_or(key, String::as_str),
            Some(text) => text.general(),
            None => key,
        }
    }

    /// The template key of a plural key's form for `count` (`key.few`), for views that
    /// leave the text to the template.
    pub fn plural_key(&self, key: &str, count: u64) -> String {
        match self.0.map.get(key) {
            Some(Text::Plural(forms)) if forms.contains_key(self.category(count)) => {
                format!("{key}.{}", self.category(count))
            }
            _ => key.to_string(),
        }
    }

    /// CLDR's name of the plural category of `count` in this language.
    pub fn category(&self, count: u64) -> &'static str {
        category_name(self.0.plurals.category_for(count))
    }

    /// The strings as the templates see them (`t`); a clone shares the converted map.
    pub fn template_value(&self) -> tera::Value {
        self.0.for_templates.clone()
    }

    /// Every key and its text (for the completeness test and tools).
    pub fn texts(&self) -> &BTreeMap<String, Text> {
        &self.0.map
    }
}

/// The plural rules of a language (English's for a language ICU4X does not know).
pub fn plural_rules(language: &str) -> PluralRules {
    let locale: Locale = language.parse().unwrap_or(Locale::UNKNOWN);
    PluralRules::try_new_cardinal((&locale).into())
        .or_else(|_| PluralRules::try_new_cardinal((&Locale::UNKNOWN).into()))
        .expect("compiled plural rules")
}

/// CLDR's name of a plural category.
pub fn category_name(category: PluralCategory) -> &'static str {
    match category {
        PluralCategory::Zero => "zero",
        PluralCategory::One => "one",
        PluralCategory::Two => "two",
        PluralCategory::Few => "few",
        PluralCategory::Many => "many",
        PluralCategory::Other => "other",
    }
}

/// `ct/dat/lang/tokenusage.<lang>.json`.
fn override_file(dat: &Path, lang: &str) -> PathBuf {
    dat.join("lang").join(format!("tokenusage.{lang}.json"))
}

/// The built-in language a code means: `de`, `de-DE`, `de_AT`, `DE` are `de`.
pub fn supported(code: &str) -> Option<&'static str> {
    let primary = code
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    LANGUAGES.iter().copied().find(|l| *l == primary)
}

/// The language a visitor asks for: the `lang` query parameter; else the language
/// remembered in the cookie; else the browser's `Accept-Language`, by quality (`de-DE`
/// falls back to `de`); else English. (An installation's config that sets a language
/// wins over all of these: the caller then uses the config's strings.)
pub fn negotiate(
    query: Option<&str>,
    cookie: Option<&str>,
    accept_language: Option<&str>,
) -> &'static str {
    query
        .and_then(supported)
        .or_else(|| cookie.and_then(supported))
        .or_else(|| accept_language.and_then(from_accept_language))
        .unwrap_or("en")
}

/// The best built-in language of an `Accept-Language` header.
fn from_accept_language(header: &str) -> Option<&'static str> {
    let mut ranges: Vec<(f32, usize, &str)> = header
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut pieces = part.split(';');
            let tag = pieces.next()?.trim();
            let quality = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
            (quality > 0.0 && !tag.is_empty()).then_some((quality, i, tag))
        })
        .collect();
    // Highest quality first; equal qualities keep the header's order.
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranges.into_iter().find_map(|(_, _, tag)| supported(tag))
}

/// The strings of each (installation, language) in use, re-read when the override file
/// changes (one `stat` per request).
#[derive(Debug, Default)]
pub struct StringsStore {
    loaded: Mutex<HashMap<(PathBuf, String), LoadedStrings>>,
}

/// Strings loaded, and the override file's stamp they were loaded with (None: no file).
type LoadedStrings = (Option<FileStamp>, Strings);

impl StringsStore {
    /// The strings of `language` for the installation whose `ct/dat` is `dat`.
    pub fn get(&self, dat: &Path, language: &str) -> Strings {
        let stamp = FileStamp::read(&override_file(dat, language));
        let key = (dat.to_path_buf(), language.to_string());
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((known, strings)) = loaded.get(&key) {
            if *known == stamp {
                return strings.clone();
            }
        }
        let strings = Strings::load(dat, Some(language));
        loaded.insert(key, (stamp, strings.clone()));
        strings
    }
}

/// Language codes like `en`, `de`, `pt_BR`: nothing that could leave the `lang` folder.
fn is_language_code(lang: &str) -> bool {
    (2..=12).contains(&lang.len())
        && lang
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_has_the_seed_title() {
        assert_eq!(
            Strings::english().get("token_usage_title"),
            "Token & Credit Usage Dashboard"
        );
    }

    #[test]
    fn a_translation_overrides_known_keys_only() {
        let strings = Strings::with_translation(
            "en",
            r#"{"token_usage_refresh": "Daten aktualisieren", "bogus": "x", "token_usage_help": 3}"#,
        )
        .unwrap();
        assert_eq!(strings.get("token_usage_refresh"), "Daten aktualisieren");
        assert_eq!(strings.get("token_usage_help"), "Help");
        assert_eq!(strings.get("bogus"), "bogus");
    }

    #[test]
    fn a_broken_translation_is_an_error() {
        assert!(Strings::with_translation("en", "[1,2]").is_err());
    }

    #[test]
    fn the_query_wins_then_the_cookie_then_the_browser() {
        let accept = Some("fr-CH, fr;q=0.9, de;q=0.8, *;q=0.5");
        assert_eq!(negotiate(Some("de-DE"), Some("ja"), accept), "de");
        assert_eq!(negotiate(Some("xx"), Some("ja"), accept), "ja");
        assert_eq!(negotiate(None, Some("bogus"), accept), "fr");
        assert_eq!(negotiate(None, None, Some("en;q=0.1, pt-BR;q=0.7")), "pt");
        assert_eq!(negotiate(None, None, Some("de;q=0, it")), "it");
        assert_eq!(negotiate(None, None, Some("sw, tlh")), "en");
        assert_eq!(negotiate(None, None, Some(";;;q=abc,")), "en");
        assert_eq!(negotiate(None, None, None), "en");
    }

    #[test]
    fn plurals_follow_each_languages_rules() {
        let cases = [
            ("en", 1, "one"),
            ("en", 2, "other"),
            ("ru", 21, "one"),
            ("ru", 3, "few"),
            ("ru", 11, "many"),
            ("cs", 4, "few"),
            ("ar", 0, "zero"),
            ("ar", 2, "two"),
            ("ar", 11, "many"),
            ("ja", 1, "other"),
            ("fr", 0, "one"),
            ("hi", 0, "one"),
        ];
        for (lang, n, category) in cases {
            assert_eq!(Strings::built_in(lang).category(n), category, "{lang} {n}");
        }
        let en = Strings::english();
        assert_eq!(
            en.plural("token_usage_cache_cleared", 1),
            "Cleared {count} transaction cache file. Fresh data will be fetched."
        );
        assert_eq!(
            en.plural_key("token_usage_cache_cleared", 5),
            "token_usage_cache_cleared.other"
        );
        assert_eq!(en.plural_key("token_usage_title", 5), "token_usage_title");
    }

    /// Every language has exactly English's keys, each with English's placeholders, and
    /// plural texts with exactly the language's CLDR categories.
    #[test]
    fn every_language_has_every_key_with_the_same_placeholders_and_its_plural_forms() {
        let english = parse_texts(FILES[0].1).expect("en.json is an object");
        let mut problems = Vec::new();
        for (lang, json) in FILES {
            let Some(texts) = parse_texts(json) else {
                problems.push(format!("{lang}: not a JSON object"));
                continue;
            };
            for key in english.keys().filter(|k| !texts.contains_key(*k)) {
                problems.push(format!("{lang}: missing {key}"));
            }
            for key in texts.keys().filter(|k| !english.contains_key(*k)) {
                problems.push(format!("{lang}: extra {key}"));
            }
            let rules = plural_rules(lang);
            let categories: Vec<&str> = rules.categories().map(category_name).collect();
            for (key, text) in &texts {
                let Some(reference) = english.get(key) else {
                    continue;
                };
                let wanted = placeholders(reference.general());
                let forms: Vec<(&str, &str)> = match (text, reference) {
                    (Text::Plain(t), Text::Plain(_)) => vec![("", t)],
                    (Text::Plural(forms), Text::Plural(_)) => {
                        let mut have: Vec<&str> = forms.keys().map(String::as_str).collect();
                        have.sort();
                        let mut want = categories.clone();
                        want.sort();
                        if have != want {
                            problems
                                .push(format!("{lang}: {key} has forms {have:?}, wants {want:?}"));
                        }
                        forms
                            .iter()
                            .map(|(c, t)| (c.as_str(), t.as_str()))
                            .collect()
                    }
                    _ => {
                        problems.push(format!("{lang}: {key} is plural in one language only"));
                        continue;
                    }
                };
                for (form, text) in forms {
                    if placeholders(text) != wanted {
                        problems.push(format!(
                            "{lang}: {key}{} has {:?}, English {:?}",
                            if form.is_empty() {
                                String::new()
                            } else {
                                format!(".{form}")
                            },
                            placeholders(text),
                            wanted
                        ));
                    }
                }
            }
        }
        assert!(
            problems.is_empty(),
            "{} problems:\n{}",
            problems.len(),
            problems.join("\n")
        );
    }

    /// The `{name}` placeholders of a text, sorted.
    fn placeholders(text: &str) -> Vec<&str> {
        let mut found: Vec<&str> = text
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect();
        found.sort();
        found
    }

    #[test]
    fn each_language_has_its_own_file_in_order() {
        for (index, (lang, _)) in FILES.iter().enumerate() {
            assert_eq!(*lang, LANGUAGES[index]);
            assert_eq!(Strings::built_in(lang).language(), *lang);
        }
        assert_eq!(Strings::built_in("xx").language(), "en");
    }

    #[test]
    fn language_codes_cannot_traverse_folders() {
        assert!(is_language_code("pt_BR"));
        assert!(!is_language_code("../../x"));
        assert!(!is_language_code(""));
    }
}
