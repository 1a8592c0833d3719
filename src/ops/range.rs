//! Threshold ranges of the Monitoring Plugins guidelines (`10`, `10:`, `~:10`, `10:20`,
//! `@10:20`), and the plain-number rule of `tokenusage check`. Pure.
//!
//! A range alerts when the value lies outside it (the ends included in the range), or,
//! with a leading `@`, inside it. `START:END`: a missing START is 0, `~` is minus
//! infinity, a missing END is infinity; so `10` is `0:10` (alert below 0 or above 10),
//! `10:` alerts below 10, `~:10` above 10, `@0:5` from 0 to 5.

use std::fmt;

/// A checked range; shows as the text it was given (trimmed), for perfdata.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    /// `None`: minus infinity.
    start: Option<f64>,
    /// `None`: infinity.
    end: Option<f64>,
    /// `@`: alert inside the range rather than outside.
    inside: bool,
    text: String,
}

/// Why a range was refused; says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeError(String);

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RangeError {}

impl Range {
    /// Reads a range in the guidelines' syntax.
    pub fn parse(text: &str) -> Result<Range, RangeError> {
        let trimmed = text.trim();
        let (inside, body) = match trimmed.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let number = |part: &str| {
            part.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| RangeError(format!("{part:?} in range {trimmed:?} is not a number")))
        };
        let (start, end) = match body.split_once(':') {
            None if body.is_empty() => return Err(RangeError("an empty range".into())),
            None => (Some(0.0), Some(number(body)?)),
            Some(("", "")) => return Err(RangeError(format!("range {trimmed:?} has no ends"))),
            Some((start, end)) => {
                let start = match start {
                    "~" => None,
                    "" => Some(0.0),
                    start => Some(number(start)?),
                };
                let end = match end {
                    "" => None,
                    end => Some(number(end)?),
                };
                (start, end)
            }
        };
        if let (Some(start), Some(end)) = (start, end) {
            if start > end {
                return Err(RangeError(format!(
                    "range {trimmed:?} starts above its end"
                )));
            }
        }
        Ok(Range {
            start,
            end,
            inside,
            text: trimmed.to_string(),
        })
    }

    /// `N:`: alert when the value is below `n`.
    pub fn at_least(n: f64) -> Range {
        Range {
            start: Some(n),
            end: None,
            inside: false,
            text: format!("{n}:"),
        }
    }

    /// True when `value` should raise this range's alert.
    pub fn alerts(&self, value: f64) -> bool {
        let within = self.start.is_none_or(|s| value >= s) && self.end.is_none_or(|e| value <= e);
        within == self.inside
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A `-w`/`-c` value of `tokenusage check`: a plain number N means "alert when the
/// balance is below N" (the range `N:`, as a balance only ever runs low); anything else
/// is a range of the guidelines ([`Range::parse`]), so `@0:5` and `~:10` keep their
/// meaning. `0:10` says the guidelines' "outside 0 to 10" explicitly.
pub fn threshold(text: &str) -> Result<Range, RangeError> {
    let trimmed = text.trim();
    let plain = !trimmed.contains([':', '@', '~']);
    match trimmed.parse::<f64>() {
        Ok(n) if plain && n.is_finite() => Ok(Range::at_least(n)),
        _ => Range::parse(trimmed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alerts(range: &str, value: f64) -> bool {
        Range::parse(range).unwrap().alerts(value)
    }

    #[test]
    fn a_bare_number_alerts_outside_zero_to_it() {
        assert!(alerts("10", -0.5));
        assert!(!alerts("10", 0.0));
        assert!(!alerts("10", 10.0));
        assert!(alerts("10", 10.01));
    }

    #[test]
    fn an_open_end_alerts_only_below_the_start() {
        assert!(alerts("10:", 9.99));
        assert!(!alerts("10:", 10.0));
        assert!(!alerts("10:", 1e12));
    }

    #[test]
    fn a_tilde_start_alerts_only_above_the_end() {
        assert!(!alerts("~:10", -1e12));
        assert!(!alerts("~:10", 10.0));
        assert!(alerts("~:10", 10.5));
    }

    #[test]
    fn a_closed_range_alerts_outside_it_and_an_at_sign_inside_it() {
        assert!(alerts("10:20", 9.0));
        assert!(!alerts("10:20", 15.0));
        assert!(alerts("10:20", 21.0));
        assert!(!alerts("@10:20", 9.0));
        assert!(alerts("@10:20", 10.0));
        assert!(alerts("@10:20", 20.0));
        assert!(!alerts("@10:20", 20.5));
        assert!(alerts("@0:5", 4.2));
    }

    #[test]
    fn a_range_shows_as_given_for_perfdata() {
        assert_eq!(Range::parse(" @0:5 ").unwrap().to_string(), "@0:5");
        assert_eq!(Range::at_least(5.0).to_string(), "5:");
        assert_eq!(Range::at_least(2.5).to_string(), "2.5:");
    }

    #[test]
    fn nonsense_and_backward_ranges_are_refused() {
        for bad in [
            "", "@", "abc", "5:x", "20:10", "~", ":", "1:2:3", "inf", "NaN:",
        ] {
            assert!(Range::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Range::parse(":5").is_ok(), "a missing start is 0");
    }

    #[test]
    fn a_plain_threshold_number_alerts_below_it() {
        let warning = threshold("5").unwrap();
        assert_eq!(warning.to_string(), "5:");
        assert!(warning.alerts(4.99));
        assert!(!warning.alerts(48.73));
        assert_eq!(threshold("10:20").unwrap(), Range::parse("10:20").unwrap());
        assert!(threshold("@0:5").unwrap().alerts(3.0));
        assert!(threshold("~:10").unwrap().alerts(11.0));
        assert!(threshold("five").is_err());
    }
}
