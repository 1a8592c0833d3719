//! Numbers, money and dates the way each language writes them, through ICU4X's compiled
//! CLDR data: grouping and decimal separators, digits, date order, month and weekday
//! names. One date style throughout (the year only when it is not this year's). Pure:
//! the formatters are built once per language and shared.

use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use icu_calendar::Gregorian;
use icu_datetime::FixedCalendarDateTimeFormatter;
use icu_datetime::fieldsets::{E, M, MD, MDT, YM, YMD, YMDT};
use icu_datetime::input::{Date, DateTime, Time};
use icu_datetime::options::TimePrecision;
use icu_decimal::DecimalFormatter;
use icu_decimal::input::Decimal;
use icu_decimal::options::GroupingStrategy;
use icu_locale_core::Locale as IcuLocale;

use crate::data::i18n::LANGUAGES;

type Formatter<F> = FixedCalendarDateTimeFormatter<Gregorian, F>;

/// One language's formatters.
#[derive(Debug)]
pub struct Locale {
    language: &'static str,
    decimal: DecimalFormatter,
    /// The same digits without grouping (years, row numbers).
    ungrouped: DecimalFormatter,
    month_day: Formatter<MD>,
    year_month_day: Formatter<YMD>,
    month_day_time: Formatter<MDT>,
    year_month_day_time: Formatter<YMDT>,
    weekday: Formatter<E>,
    month: Formatter<M>,
    year_month: Formatter<YM>,
}

/// Each language's formatters, built when first asked for: a CGI process, which answers
/// one request, builds only its own language's.
static LOCALES: [OnceLock<Locale>; LANGUAGES.len()] = [const { OnceLock::new() }; LANGUAGES.len()];

impl PartialEq for Locale {
    fn eq(&self, other: &Self) -> bool {
        self.language == other.language
    }
}

impl Locale {
    /// The formatters of `language` (one of the built-in languages, else English).
    pub fn of(language: &str) -> &'static Locale {
        let index = LANGUAGES.iter().position(|l| *l == language).unwrap_or(0);
        LOCALES[index].get_or_init(|| Locale::build(LANGUAGES[index]))
    }

    fn build(language: &'static str) -> Locale {
        let locale: IcuLocale = language.parse().unwrap_or(IcuLocale::UNKNOWN);
        let prefs = (&locale).into();
        Locale {
            language,
            decimal: DecimalFormatter::try_new((&locale).into(), Default::default())
                .expect("compiled decimal data"),
            ungrouped: DecimalFormatter::try_new((&locale).into(), GroupingStrategy::Never.into())
                .expect("compiled decimal data"),
            month_day: Formatter::try_new(prefs, MD::medium()).expect("compiled date data"),
            year_month_day: Formatter::try_new(prefs, YMD::medium()).expect("compiled date data"),
            month_day_time: Formatter::try_new(
                prefs,
                MDT::medium().with_time_precision(TimePrecision::Minute),
            )
            .expect("compiled date data"),
            year_month_day_time: Formatter::try_new(
                prefs,
                YMDT::medium().with_time_precision(TimePrecision::Minute),
            )
            .expect("compiled date data"),
            weekday: Formatter::try_new(prefs, E::short()).expect("compiled date data"),
            month: Formatter::try_new(prefs, M::medium()).expect("compiled date data"),
            year_month: Formatter::try_new(prefs, YM::medium()).expect("compiled date data"),
        }
    }

    /// The language these formatters write.
    pub fn language(&self) -> &'static str {
        self.language
    }

    /// A whole number with the language's grouping and digits: `12,345`, `12.345`.
    pub fn count(&self, n: u64) -> String {
        self.decimal.format(&Decimal::from(n)).to_string()
    }

    /// A whole number in the language's digits, without grouping: `2026`, `9901`.
    pub fn plain(&self, n: u64) -> String {
        self.ungrouped.format(&Decimal::from(n)).to_string()
    }

    /// A number with exactly `decimals` decimals.
    pub fn decimal(&self, x: f64, decimals: u8) -> String {
        let text = format!("{:.*}", usize::from(decimals), finite(x));
        Decimal::try_from_str(&text)
            .map(|d| self.decimal.format(&d).to_string())
            .unwrap_or(text)
    }

    /// Dollars as the page shows credits: `$12.3456`, at least two decimals and at most
    /// four (trailing zeros dropped), the sign before the symbol.
    pub fn money(&self, dollars: f64) -> String {
        let dollars = finite(dollars);
        let mut text = format!("{:.4}", dollars.abs());
        while text.ends_with('0') && text.len() - text.find('.').unwrap_or(0) > 3 {
            text.pop();
        }
        let number = Decimal::try_from_str(&text)
            .map(|d| self.decimal.format(&d).to_string())
            .unwrap_or(text);
        let sign = if dollars < 0.0 && number.chars().any(|c| c != '0' && c.is_numeric()) {
            "-"
        } else {
            ""
        };
        format!("{sign}${number}")
    }

    /// A date: `20 Nov` (this year), `20 Nov 2025` (another year), in the language's order.
    pub fn date(&self, date: NaiveDate, today: NaiveDate) -> String {
        let Some(d) = gregorian(date) else {
            return date.to_string();
        };
        if date.year() == today.year() {
            self.month_day.format(&d).to_string()
        } else {
            self.year_month_day.format(&d).to_string()
        }
    }

    /// A date and time to the minute, with the year only when it is not this year's.
    pub fn date_time(&self, at: NaiveDateTime, today: NaiveDate) -> String {
        let (Some(date), Ok(time)) = (
            gregorian(at.date()),
            Time::try_new(at.hour() as u8, at.minute() as u8, 0, 0),
        ) else {
            return at.to_string();
        };
        let at_time = DateTime { date, time };
        if at.year() == today.year() {
            self.month_day_time.format(&at_time).to_string()
        } else {
            self.year_month_day_time.format(&at_time).to_string()
        }
    }

    /// A short weekday name: `Fri`, `Fr.`, `ven.`.
    pub fn weekday(&self, date: NaiveDate) -> String {
        gregorian(date).map_or_else(String::new, |d| self.weekday.format(&d).to_string())
    }

    /// A month's short name (`Nov`), or with its year (`Nov 2026`).
    pub fn month(&self, first_day: NaiveDate, with_year: bool) -> String {
        let Some(d) = gregorian(first_day) else {
            return first_day.format("%Y-%m").to_string();
        };
        if with_year {
            self.year_month.format(&d).to_string()
        } else {
            self.month.format(&d).to_string()
        }
    }

    /// The day of the month in the language's digits.
    pub fn day_number(&self, date: NaiveDate) -> String {
        self.count(u64::from(date.day()))
    }
}

fn gregorian(date: NaiveDate) -> Option<Date<Gregorian>> {
    let month = u8::try_from(date.month()).ok()?;
    let day = u8::try_from(date.day()).ok()?;
    Date::try_new_gregorian(date.year(), month, day).ok()
}

fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn every_language_builds_its_formatters() {
        let today = day(2026, 11, 27);
        for lang in LANGUAGES {
            let locale = Locale::of(lang);
            assert_eq!(locale.language(), lang);
            assert!(!locale.money(1234.5).is_empty());
            assert!(!locale.date(today, today).is_empty());
            assert!(!locale.weekday(today).is_empty());
        }
    }

    #[test]
    fn numbers_group_and_separate_as_each_language_writes_them() {
        assert_eq!(Locale::of("en").count(1_234_567), "1,234,567");
        assert_eq!(Locale::of("de").count(1_234_567), "1.234.567");
        assert_eq!(Locale::of("fr").count(1_234_567), "1\u{202f}234\u{202f}567");
        assert_eq!(Locale::of("hi").count(1_234_567), "12,34,567");
        assert_eq!(Locale::of("en").money(12.3456), "$12.3456");
        assert_eq!(Locale::of("en").money(1234.5), "$1,234.50");
        assert_eq!(Locale::of("de").money(1234.5), "$1.234,50");
        assert_eq!(Locale::of("en").money(-0.0125), "-$0.0125");
        assert_eq!(Locale::of("en").money(f64::NAN), "$0.00");
    }

    #[test]
    fn dates_follow_the_languages_order_and_names_with_the_year_only_when_another() {
        let today = day(2026, 11, 27);
        assert_eq!(Locale::of("en").date(day(2026, 11, 20), today), "Nov 20");
        assert_eq!(
            Locale::of("en").date(day(2025, 11, 20), today),
            "Nov 20, 2025"
        );
        assert_eq!(Locale::of("de").date(day(2026, 11, 20), today), "20.11.");
        assert_eq!(Locale::of("en").weekday(day(2026, 11, 20)), "Fri");
        assert_eq!(Locale::of("de").weekday(day(2026, 11, 20)), "Fr");
        let at = day(2026, 11, 20).and_hms_opt(18, 5, 0).unwrap();
        assert_eq!(
            Locale::of("en").date_time(at, today),
            "Nov 20, 6:05\u{202f}PM"
        );
        assert_eq!(Locale::of("ja").month(day(2026, 11, 1), true), "2026/11");
        assert_eq!(Locale::of("en").month(day(2026, 11, 1), false), "Nov");
    }
}
