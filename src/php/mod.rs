//! Readers for PHP's own file formats.

pub mod config;
pub mod session;

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
