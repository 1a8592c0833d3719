//! Readers for PHP's own file formats.

use std::collections::HashMap;
use std::hash::Hash;

pub mod config;
pub mod session;

/// PHP's array-key rule: a key that spells a canonical decimal integer (`"5"`, `"-3"`,
/// not `"05"`, `"+5"` or `"-0"`) that fits in 64 bits is that integer; `None` when the
/// key stays a string.
pub(crate) fn integer_key(bytes: &[u8]) -> Option<i64> {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let canonical = match digits {
        [] => false,
        [b'0'] => digits.len() == bytes.len(),
        [first, rest @ ..] => (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit),
    };
    if !canonical {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// An ordered map built in linear time: a repeated key keeps its first place and takes
/// the last value, as PHP's hash tables do.
pub(crate) struct Entries<K, V> {
    items: Vec<(K, V)>,
    index: HashMap<K, usize>,
}

impl<K, V> Default for Entries<K, V> {
    fn default() -> Self {
        Entries {
            items: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash + Clone, V> Entries<K, V> {
    pub(crate) fn insert(&mut self, key: K, value: V) {
        match self.index.get(&key) {
            Some(&at) => {
                if let Some(item) = self.items.get_mut(at) {
                    item.1 = value;
                }
            }
            None => {
                self.index.insert(key.clone(), self.items.len());
                self.items.push((key, value));
            }
        }
    }

    /// The entries in order of first insertion.
    pub(crate) fn into_items(self) -> Vec<(K, V)> {
        self.items
    }
}

/// A float as PHP's `echo` prints it (`precision=14`, `%.14G`): `1.5`, `0.1`, `1.0E+25`,
/// `1.0E-5`, `-0`, `INF`, `NAN`.
pub(crate) fn float_to_string(f: f64) -> String {
    if f.is_nan() {
        return "NAN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "INF" } else { "-INF" }.into();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0");
    }
    // Fourteen significant digits, correctly rounded: "d.ddddddddddddde<exp>".
    let scientific = format!("{:.13e}", f.abs());
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return scientific;
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    if !(-4..14).contains(&exponent) {
        let mut chars = digits.chars();
        let first = chars.next().unwrap_or('0');
        let rest = chars.as_str();
        let rest = if rest.is_empty() { "0" } else { rest };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        return format!(
            "{sign}{first}.{rest}E{exponent_sign}{}",
            exponent.unsigned_abs()
        );
    }
    if exponent < 0 {
        let zeros = "0".repeat(exponent.unsigned_abs() as usize - 1);
        return format!("{sign}0.{zeros}{digits}");
    }
    let whole_len = exponent as usize + 1;
    match (digits.get(..whole_len), digits.get(whole_len..)) {
        (Some(whole), Some(fraction)) if !fraction.is_empty() => {
            format!("{sign}{whole}.{fraction}")
        }
        _ => format!(
            "{sign}{digits}{}",
            "0".repeat(whole_len.saturating_sub(digits.len()))
        ),
    }
}
