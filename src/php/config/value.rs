//! PHP's values and the conversions PHP applies between them: casts, string and number
//! conversion, truthiness, array keys. Pure.

use crate::php::{float_to_string, integer_key};

/// A PHP value.
#[derive(Debug, Clone, PartialEq)]
pub enum PhpValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// An ordered map, in insertion order, each key at most once.
    Array(Vec<(PhpKey, PhpValue)>),
}

/// An array key. PHP turns decimal-integer strings like `"5"` into integer keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PhpKey {
    Int(i64),
    Str(String),
}

impl PhpValue {
    /// The element under `key` of an array (`"5"` finds the integer key 5, as in PHP).
    pub fn get(&self, key: &str) -> Option<&PhpValue> {
        let PhpValue::Array(items) = self else {
            return None;
        };
        let key = PhpKey::from(key);
        items.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Strings, integers and floats as PHP would print them; `None` for `null`, booleans
    /// and arrays.
    pub fn as_text(&self) -> Option<String> {
        match self {
            PhpValue::Str(_) | PhpValue::Int(_) | PhpValue::Float(_) => {
                Some(into_string(self.clone()))
            }
            PhpValue::Null | PhpValue::Bool(_) | PhpValue::Array(_) => None,
        }
    }

    /// PHP truthiness: `""`, `"0"`, `0`, `0.0`, `false`, `null` and `[]` are false.
    pub fn is_truthy(&self) -> bool {
        match self {
            PhpValue::Null => false,
            PhpValue::Bool(b) => *b,
            PhpValue::Int(i) => *i != 0,
            PhpValue::Float(f) => *f != 0.0,
            PhpValue::Str(s) => !(s.is_empty() || s == "0"),
            PhpValue::Array(items) => !items.is_empty(),
        }
    }
}

impl From<&str> for PhpKey {
    /// PHP's key rule (`integer_key`): `"5"` is the integer key 5, `"05"` a string.
    fn from(text: &str) -> Self {
        match integer_key(text.as_bytes()) {
            Some(i) => PhpKey::Int(i),
            None => PhpKey::Str(text.to_string()),
        }
    }
}

/// How many array levels a value has.
pub(super) fn nesting(value: &PhpValue) -> usize {
    match value {
        PhpValue::Array(items) => 1 + items.iter().map(|(_, v)| nesting(v)).max().unwrap_or(0),
        _ => 0,
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Cast {
    Bool,
    Int,
    Float,
    Str,
    Array,
}

impl Cast {
    pub(super) fn named(name: &str) -> Option<Cast> {
        let is = |names: &[&str]| names.iter().any(|n| name.eq_ignore_ascii_case(n));
        if is(&["bool", "boolean"]) {
            Some(Cast::Bool)
        } else if is(&["int", "integer"]) {
            Some(Cast::Int)
        } else if is(&["float", "double"]) {
            Some(Cast::Float)
        } else if is(&["string", "binary"]) {
            Some(Cast::Str)
        } else if is(&["array"]) {
            Some(Cast::Array)
        } else {
            None
        }
    }

    pub(super) fn apply(self, value: PhpValue) -> Option<PhpValue> {
        Some(match self {
            Cast::Bool => PhpValue::Bool(value.is_truthy()),
            Cast::Int => PhpValue::Int(match value {
                PhpValue::Int(i) => i,
                PhpValue::Float(f) => float_to_int(f),
                // Strings saturate instead of wrapping (`zend_dval_to_lval_cap`).
                PhpValue::Str(s) => match numeric_prefix(&s) {
                    Some((PhpValue::Int(i), _)) => i,
                    Some((PhpValue::Float(f), _)) if f.is_finite() => f as i64,
                    _ => 0,
                },
                other => i64::from(other.is_truthy()),
            }),
            Cast::Float => PhpValue::Float(match value {
                PhpValue::Int(i) => i as f64,
                PhpValue::Float(f) => f,
                PhpValue::Str(s) => match numeric_prefix(&s) {
                    Some((PhpValue::Int(i), _)) => i as f64,
                    Some((PhpValue::Float(f), _)) => f,
                    _ => 0.0,
                },
                other => f64::from(u8::from(other.is_truthy())),
            }),
            Cast::Str => PhpValue::Str(into_string(value)),
            Cast::Array => match value {
                PhpValue::Array(items) => PhpValue::Array(items),
                PhpValue::Null => PhpValue::Array(Vec::new()),
                scalar => PhpValue::Array(vec![(PhpKey::Int(0), scalar)]),
            },
        })
    }
}

/// PHP's string conversion (`.` and `(string)`).
pub(super) fn into_string(value: PhpValue) -> String {
    match value {
        PhpValue::Str(s) => s,
        PhpValue::Null | PhpValue::Bool(false) => String::new(),
        PhpValue::Bool(true) => "1".into(),
        PhpValue::Int(i) => i.to_string(),
        PhpValue::Float(f) => float_to_string(f),
        PhpValue::Array(_) => "Array".into(),
    }
}

/// PHP's float-to-int conversion on 64-bit: truncation, modular outside the range, 0 for
/// infinities and NaN.
fn float_to_int(f: f64) -> i64 {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    if !f.is_finite() {
        return 0;
    }
    if (-TWO_POW_63..TWO_POW_63).contains(&f) {
        return f as i64;
    }
    let mut modulus = f.trunc() % TWO_POW_64;
    if modulus < 0.0 {
        modulus += TWO_POW_64;
    }
    // Wrapping reinterpretation is the point here.
    (modulus as u64) as i64
}

/// The whitespace PHP allows around numeric strings: space, `\t`, `\n`, `\r`, `\v`, `\f`.
fn is_php_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// The number a string starts with (after whitespace) and the byte length it took, if it
/// starts with one: `Int` when it has no `.` or exponent and fits, `Float` otherwise.
fn numeric_prefix(text: &str) -> Option<(PhpValue, usize)> {
    let bytes = text.as_bytes();
    let at = |i: usize| bytes.get(i).copied();
    let digits_from = |mut i: usize| {
        while at(i).is_some_and(|b| b.is_ascii_digit()) {
            i += 1;
        }
        i
    };
    let mut i = 0;
    while at(i).is_some_and(is_php_space) {
        i += 1;
    }
    let start = i;
    if matches!(at(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let whole_start = i;
    i = digits_from(i);
    let mut is_float = false;
    let mut digit_count = i - whole_start;
    if at(i) == Some(b'.') {
        let fraction_end = digits_from(i + 1);
        digit_count += fraction_end - (i + 1);
        if digit_count > 0 {
            is_float = true;
            i = fraction_end;
        }
    }
    if digit_count == 0 {
        return None;
    }
    if matches!(at(i), Some(b'e' | b'E')) {
        let mut e = i + 1;
        if matches!(at(e), Some(b'+' | b'-')) {
            e += 1;
        }
        let end = digits_from(e);
        if end > e {
            is_float = true;
            i = end;
        }
    }
    let number = text.get(start..i)?;
    let value = match number.parse::<i64>() {
        Ok(int) if !is_float => PhpValue::Int(int),
        _ => PhpValue::Float(number.parse().ok()?),
    };
    Some((value, i))
}

/// PHP's unary `+`: numbers stay, `null`/booleans become 0/1, numeric strings (allowing
/// surrounding whitespace) become numbers; anything else throws in PHP 8.
pub(super) fn to_number(value: PhpValue) -> Option<PhpValue> {
    match value {
        PhpValue::Int(_) | PhpValue::Float(_) => Some(value),
        PhpValue::Null => Some(PhpValue::Int(0)),
        PhpValue::Bool(b) => Some(PhpValue::Int(i64::from(b))),
        PhpValue::Str(s) => {
            let (number, used) = numeric_prefix(&s)?;
            let rest = s.get(used..)?;
            rest.bytes().all(is_php_space).then_some(number)
        }
        PhpValue::Array(_) => None,
    }
}

pub(super) fn negate(value: PhpValue) -> Option<PhpValue> {
    Some(match to_number(value)? {
        PhpValue::Int(i) => i
            .checked_neg()
            .map_or(PhpValue::Float(-(i as f64)), PhpValue::Int),
        PhpValue::Float(f) => PhpValue::Float(-f),
        _ => return None,
    })
}

/// A value used as an array key; arrays cannot be keys.
pub(super) fn to_key(value: PhpValue) -> Option<PhpKey> {
    Some(match value {
        PhpValue::Int(i) => PhpKey::Int(i),
        PhpValue::Str(s) => PhpKey::from(s.as_str()),
        PhpValue::Float(f) => PhpKey::Int(float_to_int(f)),
        PhpValue::Bool(b) => PhpKey::Int(i64::from(b)),
        PhpValue::Null => PhpKey::Str(String::new()),
        PhpValue::Array(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{eval, list, str};
    use super::*;

    #[test]
    fn get_finds_integer_keys_by_their_decimal_text() {
        let value = eval("[5 => 'five', '-3' => 'minus', '05' => 'padded']").unwrap();
        assert_eq!(value.get("5"), Some(&str("five")));
        assert_eq!(value.get("-3"), Some(&str("minus")));
        assert_eq!(value.get("05"), Some(&str("padded")));
        assert_eq!(value.get("6"), None);
        assert_eq!(str("x").get("0"), None);
        assert_eq!(PhpKey::from("-0"), PhpKey::Str("-0".into()));
        assert_eq!(PhpKey::from("+1"), PhpKey::Str("+1".into()));
        assert_eq!(PhpKey::from("0"), PhpKey::Int(0));
        assert_eq!(
            PhpKey::from("9223372036854775808"),
            PhpKey::Str("9223372036854775808".into())
        );
    }

    #[test]
    fn casts_convert_like_php() {
        assert_eq!(eval("(bool) '0'"), Some(PhpValue::Bool(false)));
        assert_eq!(eval("(BOOLEAN)'a'"), Some(PhpValue::Bool(true)));
        assert_eq!(eval("(int) '12abc'"), Some(PhpValue::Int(12)));
        assert_eq!(eval("(int)' 1e3'"), Some(PhpValue::Int(1000)));
        assert_eq!(eval("(int)'abc'"), Some(PhpValue::Int(0)));
        assert_eq!(
            eval("(int)'99999999999999999999'"),
            Some(PhpValue::Int(i64::MAX))
        );
        assert_eq!(eval("(integer) 3.99"), Some(PhpValue::Int(3)));
        assert_eq!(eval("(int) -3.99"), Some(PhpValue::Int(-3)));
        assert_eq!(eval("(string) 42 . '!'"), Some(str("42!")));
        assert_eq!(eval("(float) '2.5kg'"), Some(PhpValue::Float(2.5)));
        assert_eq!(
            eval("(array) 'x'"),
            Some(list(&[(PhpKey::Int(0), str("x"))]))
        );
        assert_eq!(eval("(object) 'x'"), None);
        assert_eq!(eval("!0"), Some(PhpValue::Bool(true)));
        assert_eq!(eval("-'5'"), Some(PhpValue::Int(-5)));
        assert_eq!(eval("-'abc'"), None);
        assert_eq!(float_to_int(1e19), -8_446_744_073_709_551_616);
    }

    #[test]
    fn truthiness_follows_php() {
        for falsy in ["''", "'0'", "0", "0.0", "-0.0", "false", "null", "[]"] {
            assert!(!eval(falsy).unwrap().is_truthy(), "{falsy}");
        }
        for truthy in [
            "'a'", "'0.0'", "' '", "1", "-1", "0.1", "true", "[0]", "'false'",
        ] {
            assert!(eval(truthy).unwrap().is_truthy(), "{truthy}");
        }
    }

    #[test]
    fn as_text_prints_scalars_only() {
        assert_eq!(PhpValue::Int(-7).as_text().as_deref(), Some("-7"));
        assert_eq!(str("s").as_text().as_deref(), Some("s"));
        assert_eq!(PhpValue::Bool(true).as_text(), None);
        assert_eq!(PhpValue::Null.as_text(), None);
        assert_eq!(PhpValue::Array(vec![]).as_text(), None);
    }
}
