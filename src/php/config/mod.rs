//! A parser for the subset of PHP that ComusThumbz settings files (`ct/dat/config.inc.php`)
//! are written in.
//!
//! It reads the literal statements a config file is made of the way PHP would run them:
//! `$var = array(...)` and `[...]`, `$var['a']['b'] = ...`, `$var[] = ...`,
//! `define('NAME', value)`, `const NAME = value`, and
//! `date_default_timezone_set('Area/City')`. Values are literals (strings with PHP's
//! escapes, numbers in every PHP spelling, `true`/`false`/`null`, arrays), joined with `.`,
//! cast with `(int)`-style casts, or constants defined earlier. Every other statement (calls,
//! `include`, `if`, expressions over variables...) is skipped up to its end without being
//! run, and parsing goes on. A top-level `return`, `exit` or `die` ends the file, as it
//! ends PHP's run of it.
//!
//! Deliberate differences from PHP: `"$var"` interpolation is kept as literal text; bytes
//! that are not UTF-8 (from `"\xE9"`, say) become U+FFFD; a file with a syntax error is read
//! statement by statement instead of being rejected whole.
//!
//! Never panics, whatever the input: indexing is checked, loops always advance, and
//! nesting is limited to [`MAX_DEPTH`] levels. Pure: no I/O.
//!
//! One concern per file: `lexer` turns the source into tokens, `parser` reads tokens into
//! statements and values, `value` holds PHP's values and its conversions between them,
//! and this module runs the statements into a [`PhpConfig`].

use std::collections::BTreeMap;

mod lexer;
mod parser;
mod value;

pub use value::{PhpKey, PhpValue};

use lexer::tokenize;
use parser::{Parser, Statement};

/// How deeply arrays, parentheses, casts and unary operators may nest in one statement,
/// and how deeply nested a stored value may be. Deeper statements are skipped.
pub const MAX_DEPTH: usize = 64;

/// What a config file sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhpConfig {
    /// Global variables, by name without the `$`.
    pub variables: BTreeMap<String, PhpValue>,
    /// Constants from `define()` and `const`; the first definition wins, as in PHP.
    pub constants: BTreeMap<String, PhpValue>,
    /// The argument of the last `date_default_timezone_set()`, unchecked.
    pub timezone: Option<String>,
    /// How many statements were skipped: not understood, or refused as PHP would refuse
    /// them (like `$s['k'] = 1` when `$s` is a string).
    pub skipped: usize,
}

/// Reads a PHP settings file. Never fails: what cannot be understood is skipped and
/// counted in [`PhpConfig::skipped`].
pub fn parse_config(source: &str) -> PhpConfig {
    let tokens = tokenize(source);
    let mut config = PhpConfig::default();
    let mut parser = Parser::new(&tokens);
    while !parser.at_end() {
        if parser.eat(";") {
            continue;
        }
        let start = parser.position();
        match parser.statement(&config.constants) {
            Some(Statement::Stop) => break,
            Some(statement) => {
                if !config.apply(statement) {
                    config.skipped += 1;
                }
            }
            None => {
                parser.rewind(start);
                parser.skip_statement();
                config.skipped += 1;
            }
        }
    }
    config
}

impl PhpConfig {
    /// Runs a statement; `false` when PHP would have failed it (like `$s['k'] = 1` on a
    /// string), in which case nothing changed.
    fn apply(&mut self, statement: Statement) -> bool {
        match statement {
            Statement::Assign { name, path, value } => {
                assign(&mut self.variables, name, path, value)
            }
            Statement::Define(constants) => {
                for (name, value) in constants {
                    self.constants.entry(name).or_insert(value);
                }
                true
            }
            Statement::Timezone(zone) => {
                self.timezone = Some(zone);
                true
            }
            // `parse_config` stops before applying it.
            Statement::Stop => true,
        }
    }
}

/// `$name[path] = value` with PHP's auto-vivification of missing, `null` and `false`
/// levels. Checks first, so a failing assignment changes nothing.
fn assign(
    variables: &mut BTreeMap<String, PhpValue>,
    name: String,
    path: Vec<Option<PhpKey>>,
    value: PhpValue,
) -> bool {
    let mut current = variables.get(&name);
    for segment in &path {
        match current {
            None | Some(PhpValue::Null | PhpValue::Bool(false)) => break,
            Some(PhpValue::Array(items)) => match segment {
                Some(key) => current = items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                None if next_index(items).is_none() => return false,
                None => break,
            },
            Some(_) => return false,
        }
    }

    let mut slot = variables.entry(name).or_insert(PhpValue::Null);
    for segment in path {
        if matches!(slot, PhpValue::Null | PhpValue::Bool(false)) {
            *slot = PhpValue::Array(Vec::new());
        }
        let PhpValue::Array(items) = slot else {
            return false;
        };
        let found = match &segment {
            Some(key) => items.iter().position(|(k, _)| k == key),
            None => None,
        };
        let index = match found {
            Some(index) => index,
            None => {
                let key = match segment {
                    Some(key) => key,
                    None => match next_index(items) {
                        Some(i) => PhpKey::Int(i),
                        None => return false,
                    },
                };
                items.push((key, PhpValue::Null));
                items.len() - 1
            }
        };
        let Some((_, next)) = items.get_mut(index) else {
            return false;
        };
        slot = next;
    }
    *slot = value;
    true
}

/// The key `$array[] = ...` uses: one past the largest integer key, or 0.
fn next_index(items: &[(PhpKey, PhpValue)]) -> Option<i64> {
    let largest = items
        .iter()
        .filter_map(|(k, _)| match k {
            PhpKey::Int(i) => Some(*i),
            PhpKey::Str(_) => None,
        })
        .max();
    match largest {
        None => Some(0),
        Some(i) => i.checked_add(1),
    }
}

/// Helpers shared by the unit tests of this module's files.
#[cfg(test)]
mod test_support {
    use super::*;

    pub(super) fn str(s: &str) -> PhpValue {
        PhpValue::Str(s.into())
    }

    /// The value of `$x` after `<?php $x = {expr};`.
    pub(super) fn eval(expr: &str) -> Option<PhpValue> {
        parse_config(&format!("<?php $x = {expr};"))
            .variables
            .remove("x")
    }

    pub(super) fn list(items: &[(PhpKey, PhpValue)]) -> PhpValue {
        PhpValue::Array(items.to_vec())
    }

    pub(super) fn k(key: &str) -> PhpKey {
        PhpKey::from(key)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{k, list, str};
    use super::*;

    const REALISTIC: &str = r#"<?php
/**
 * ComusThumbz configuration. Generated by the installer; edit with care.
 * Don't put "?>" at the end of this file.
 */
// Database settings
$dbhost = "localhost"; # the usual
$dbuser = 'ct_user';
$dbpass = 'p@ss;word//not-a-comment?>still-a-string';
$dbname = "comus_thumbz";

$link = mysqli_connect($dbhost, $dbuser, $dbpass, $dbname);
mysqli_set_charset($link, 'utf8mb4');

define('CT_VERSION', '5.2.1');
define("CT_DEBUG", false, true);
define('CT_ROOT', '/var/www/ct');
define('CT_DAT', CT_ROOT . '/dat');

include 'functions.inc.php';
include_once(CT_ROOT . "/lib/db.php");

date_default_timezone_set('Europe/Amsterdam');

$license_config = array(
    'license_key' => 'ABCDEF1234567890',
    'domain'      => "example.com",   // no www
    'email'       => 'owner@example.com',
);
$license_config['api_url'] = 'http://127.0.0.1:8081/api.php';

/* Features
   $features = array('broken' => true);
*/
$features = [
    'thumbnails' => true,
    'ai' => ['enabled' => TRUE, 'batch' => 0x20, 'models' => ['fast', 'good',],],
    'max_upload' => 64_000_000,
];

if (!defined('CT_INSTALLED')) {
    $license_config['domain'] = 'wrong.example';
    die("Not installed; run install.php");
}

$cache_time = 3600;
$site_name = "My \"Thumbs\" Site\n";
?>
"#;

    #[test]
    fn a_realistic_config_file_is_read_like_php_would() {
        let config = parse_config(REALISTIC);
        let license = &config.variables["license_config"];
        let text = |key: &str| license.get(key).and_then(PhpValue::as_text);
        assert_eq!(text("license_key").as_deref(), Some("ABCDEF1234567890"));
        assert_eq!(text("domain").as_deref(), Some("example.com"));
        assert_eq!(text("email").as_deref(), Some("owner@example.com"));
        assert_eq!(
            text("api_url").as_deref(),
            Some("http://127.0.0.1:8081/api.php")
        );
        assert_eq!(
            config.variables["dbpass"],
            str("p@ss;word//not-a-comment?>still-a-string")
        );
        assert_eq!(config.variables["dbhost"], str("localhost"));
        assert_eq!(config.variables["cache_time"], PhpValue::Int(3600));
        assert_eq!(config.variables["site_name"], str("My \"Thumbs\" Site\n"));
        assert_eq!(config.constants["CT_VERSION"], str("5.2.1"));
        assert_eq!(config.constants["CT_DEBUG"], PhpValue::Bool(false));
        assert_eq!(config.constants["CT_DAT"], str("/var/www/ct/dat"));
        assert_eq!(config.timezone.as_deref(), Some("Europe/Amsterdam"));

        let features = &config.variables["features"];
        let ai = features.get("ai").unwrap();
        assert_eq!(ai.get("batch"), Some(&PhpValue::Int(32)));
        assert_eq!(ai.get("enabled"), Some(&PhpValue::Bool(true)));
        assert_eq!(
            ai.get("models"),
            Some(&list(&[(k("0"), str("fast")), (k("1"), str("good"))]))
        );
        assert_eq!(features.get("max_upload"), Some(&PhpValue::Int(64_000_000)));

        // mysqli_connect, mysqli_set_charset, two includes and the if block.
        assert_eq!(config.skipped, 5);
        assert!(!config.variables.contains_key("link"));
        assert_eq!(features.get("broken"), None);
        // The file's license_config has exactly the four keys, in order.
        let PhpValue::Array(items) = license else {
            panic!("not an array")
        };
        let keys: Vec<_> = items.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(
            keys,
            [k("license_key"), k("domain"), k("email"), k("api_url")]
        );
    }

    #[test]
    fn later_assignments_overwrite_earlier_ones_in_place() {
        let config = parse_config(
            "<?php $a = ['x' => 1, 'y' => 2]; $a['x'] = 3; $b = 1; $b = 'two'; \
             $c = ['k' => 1, 'k' => 2, 'j' => 0];",
        );
        assert_eq!(
            config.variables["a"],
            list(&[(k("x"), PhpValue::Int(3)), (k("y"), PhpValue::Int(2))])
        );
        assert_eq!(config.variables["b"], str("two"));
        assert_eq!(
            config.variables["c"],
            list(&[(k("k"), PhpValue::Int(2)), (k("j"), PhpValue::Int(0))])
        );
    }

    #[test]
    fn nested_assignments_create_the_arrays_they_need() {
        let config = parse_config(
            "<?php $cfg['db']['host'] = 'h'; $cfg['db']['port'] = 3306; $cfg['list'][] = 'a'; \
             $cfg['list'][] = 'b'; $n = null; $n['k'] = 1; $GLOBALS['g'] = 'global';",
        );
        let cfg = &config.variables["cfg"];
        assert_eq!(cfg.get("db").unwrap().get("host"), Some(&str("h")));
        assert_eq!(
            cfg.get("db").unwrap().get("port"),
            Some(&PhpValue::Int(3306))
        );
        assert_eq!(
            cfg.get("list"),
            Some(&list(&[(k("0"), str("a")), (k("1"), str("b"))]))
        );
        assert_eq!(config.variables["n"], list(&[(k("k"), PhpValue::Int(1))]));
        assert_eq!(config.variables["g"], str("global"));
        assert_eq!(config.skipped, 0);
    }

    #[test]
    fn assigning_into_a_scalar_fails_and_changes_nothing() {
        let config =
            parse_config("<?php $s = 'text'; $s['k'] = 1; $a = ['x' => 5]; $a['x']['y'] = 1;");
        assert_eq!(config.variables["s"], str("text"));
        assert_eq!(config.variables["a"], list(&[(k("x"), PhpValue::Int(5))]));
        assert_eq!(config.skipped, 2);
    }

    #[test]
    fn defines_keep_their_first_value_and_the_last_timezone_wins() {
        let config = parse_config(
            "<?php define('A', 1); define('A', 2); \\define('B', [1, 2],); \
             date_default_timezone_set('UTC'); DATE_DEFAULT_TIMEZONE_SET(\"America/New_York\");",
        );
        assert_eq!(config.constants["A"], PhpValue::Int(1));
        assert_eq!(
            config.constants["B"],
            list(&[
                (PhpKey::Int(0), PhpValue::Int(1)),
                (PhpKey::Int(1), PhpValue::Int(2))
            ])
        );
        assert_eq!(config.timezone.as_deref(), Some("America/New_York"));
        assert_eq!(config.skipped, 0);
        let bad = parse_config("<?php define(A, 1); define('B'); date_default_timezone_set($tz);");
        assert!(bad.constants.is_empty());
        assert_eq!(bad.timezone, None);
        assert_eq!(bad.skipped, 3);
    }

    #[test]
    fn a_top_level_return_ends_the_file() {
        let config = parse_config("<?php $a = 1; return; $b = 2;");
        assert!(config.variables.contains_key("a"));
        assert!(!config.variables.contains_key("b"));
    }

    #[test]
    fn any_prefix_of_a_real_file_parses_without_panicking() {
        for (end, _) in REALISTIC.char_indices() {
            parse_config(&REALISTIC[..end]);
        }
    }

    #[test]
    fn random_input_never_panics() {
        const PIECES: &[&str] = &[
            "<?php ",
            "?>",
            "$a",
            "['k']",
            "[]",
            " = ",
            "array(",
            ")",
            "(",
            "[",
            "]",
            "{",
            "}",
            ";",
            ",",
            "=>",
            ".",
            "-",
            "'s\\'",
            "\"d\\",
            "\\x",
            "\\u{",
            "\\777",
            "0x",
            "0b1_",
            "1e",
            ".5",
            "08",
            "<<<EOT\n",
            "<<<'N'\n",
            "EOT",
            "\n",
            "//",
            "#",
            "/*",
            "*/",
            "define",
            "const ",
            "if",
            ":",
            "endif",
            "else",
            "é",
            "😀",
            "\u{feff}",
            "true",
            "(int)",
            "date_default_timezone_set",
            "return",
            "`",
            "\\",
            "\r",
            "GLOBALS",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3000 {
            let mut source = String::new();
            let len = (seed % 60) as usize;
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                source.push_str(PIECES[(seed % PIECES.len() as u64) as usize]);
            }
            parse_config(&source);
            parse_config(&format!("<?php {source}"));
        }
    }
}
