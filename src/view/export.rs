//! The "Download History" CSV: every transaction, branded, written to any [`Write`].
//!
//! The file starts with a UTF-8 byte-order mark so Excel reads it as UTF-8, rows end with
//! `\r\n` (RFC 4180, and what Excel writes), and fields are quoted only when needed. Text
//! cells that a spreadsheet would run as a formula (also behind invisible characters or in
//! full-width forms) are neutralised with a leading `'` (OWASP "CSV Injection"). No I/O besides the given writer.

use std::borrow::{Borrow, Cow};
use std::io::{self, Write};

use chrono::NaiveDate;

use crate::data::i18n::Strings;
use crate::data::license_api::wire::Transaction;
use crate::view::branding::brand;

/// The UTF-8 byte-order mark.
const BOM: &[u8] = "\u{feff}".as_bytes();

/// The header row's keys, in column order.
const HEADER_KEYS: [&str; 7] = [
    "token_usage_csv_date",
    "token_usage_csv_type",
    "token_usage_csv_service",
    "token_usage_csv_amount",
    "token_usage_csv_tokens",
    "token_usage_csv_images",
    "token_usage_csv_description",
];

/// The header row in a language (English: the PHP page's own header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvHeader(pub [String; 7]);

impl CsvHeader {
    pub fn of(strings: &Strings) -> CsvHeader {
        CsvHeader(HEADER_KEYS.map(|key| strings.get(key).to_string()))
    }
}

/// Writes `transactions`, in the given order, as the CSV download.
pub fn write_csv(
    out: &mut impl Write,
    header: &CsvHeader,
    transactions: impl IntoIterator<Item = impl Borrow<Transaction>>,
) -> io::Result<()> {
    out.write_all(BOM)?;
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(&mut *out);
    writer.write_record(header.0.iter().map(|cell| neutralise(cell).into_owned()))?;
    for transaction in transactions {
        let transaction = transaction.borrow();
        let service = brand(&transaction.service_type);
        let description = brand(&transaction.description);
        let amount = format_amount(transaction.signed_amount());
        let tokens = transaction.tokens_used.to_string();
        let images = transaction.images_processed.to_string();
        writer.write_record([
            neutralise(&transaction.created_at).as_ref(),
            neutralise(&transaction.transaction_type).as_ref(),
            neutralise(&service).as_ref(),
            amount.as_str(),
            tokens.as_str(),
            images.as_str(),
            neutralise(&description).as_ref(),
        ])?;
    }
    writer.flush()
}

/// The name the download is saved under: `token_usage_history_YYYY-MM-DD.csv`, its
/// stem in the page's language (`token_usage_csv_file_name`), kept to `a-z0-9_` so that
/// no translation can break the header it is sent in.
pub fn download_file_name(strings: &Strings, today: NaiveDate) -> String {
    let stem: String = strings
        .get("token_usage_csv_file_name")
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
        .take(60)
        .collect();
    let stem = if stem.is_empty() {
        "token_usage_history"
    } else {
        &stem
    };
    format!("{stem}_{}.csv", today.format("%Y-%m-%d"))
}

/// A plain decimal with four places; never `-0.0000`.
fn format_amount(amount: f64) -> String {
    let formatted = format!("{amount:.4}");
    match formatted.strip_prefix('-') {
        Some(magnitude) if magnitude.bytes().all(|b| b == b'0' || b == b'.') => {
            magnitude.to_string()
        }
        _ => formatted,
    }
}

/// Prefixes `'` to text a spreadsheet would read as a formula.
fn neutralise(text: &str) -> Cow<'_, str> {
    if looks_like_formula(text) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// True when a spreadsheet could run `text` as a formula: it starts with `=`, `+`, `-`,
/// `@` (or their full-width forms, which some spreadsheets fold to ASCII), possibly behind
/// spaces, no-break or zero-width spaces or a BOM that hide them from a reader, or with a
/// tab, CR or LF. A plain number such as `-12.5`, with nothing before it, is a number, not
/// a formula, and stays numeric. The one rule for the CSV and its fuzz check.
pub fn looks_like_formula(text: &str) -> bool {
    if text.starts_with(['\t', '\r', '\n']) {
        return true;
    }
    let shown = text.trim_start_matches(|c: char| c.is_whitespace() || INVISIBLE.contains(&c));
    shown.starts_with([
        '=', '+', '-', '@', '\u{ff1d}', '\u{ff0b}', '\u{ff0d}', '\u{ff20}',
    ]) && !(shown.len() == text.len() && is_plain_number(text))
}

/// Characters that take no space: zero-width space, non-joiner, joiner, word joiner, BOM.
const INVISIBLE: [char; 5] = ['\u{200b}', '\u{200c}', '\u{200d}', '\u{2060}', '\u{feff}'];

/// `-12`, `+3.50`: an optional ASCII sign, digits, optionally a point and digits.
fn is_plain_number(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "\u{feff}Date,Transaction Type,Service Type,Amount,Tokens Used,Images Processed,Description\r\n";

    fn csv_of(transactions: &[Transaction]) -> String {
        let mut out = Vec::new();
        write_csv(&mut out, &CsvHeader::of(&Strings::english()), transactions).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn usage(description: &str) -> Transaction {
        Transaction::example_usage(description)
    }

    #[test]
    fn the_file_is_a_bom_a_header_and_one_branded_row_per_transaction() {
        let purchase = Transaction {
            id: "2".into(),
            created_at: "2026-11-19 08:00:00".into(),
            transaction_type: "purchase".into(),
            service_type: String::new(),
            amount: 10.0,
            tokens_used: 0,
            images_processed: 0,
            description: "Bought 10 credits, \"starter\" pack".into(),
        };
        let csv = csv_of(&[
            usage("AI image selection via openai (gpt-4o-mini) for gallery 5512"),
            purchase,
        ]);
        assert_eq!(
            csv,
            format!(
                "{HEAD}\
                 2026-11-20 10:04:11,usage,image_search via CTZ-AI,-0.0125,1834,1,\
                 AI image selection via CTZ-AI (ComusThumbz AI) for gallery 5512\r\n\
                 2026-11-19 08:00:00,purchase,,10.0000,0,0,\
                 \"Bought 10 credits, \"\"starter\"\" pack\"\r\n"
            )
        );
    }

    #[test]
    fn no_transactions_give_just_the_bom_and_the_header() {
        assert_eq!(csv_of(&[]), HEAD);
    }

    #[test]
    fn text_cells_that_look_like_formulas_get_a_leading_quote() {
        let csv = csv_of(&[
            usage("=cmd|' /C calc'!A0"),
            usage("+1+1"),
            usage("-2+3"),
            usage("@SUM(A1:A2)"),
            usage("\tx"),
            usage("\rx"),
            usage("\nx"),
            usage("fine = ok"),
        ]);
        let descriptions: Vec<&str> = csv
            .strip_prefix(HEAD)
            .unwrap()
            .strip_suffix("\r\n")
            .unwrap()
            .split("\r\n2026-11-20")
            .map(|row| row.split_once(",1834,1,").unwrap().1)
            .collect();
        assert_eq!(
            descriptions,
            [
                "'=cmd|' /C calc'!A0",
                "'+1+1",
                "'-2+3",
                "'@SUM(A1:A2)",
                "'\tx",
                "\"'\rx\"",
                "\"'\nx\"",
                "fine = ok",
            ]
        );
    }

    #[test]
    fn formulas_hidden_behind_spaces_or_in_full_width_are_defused_too() {
        for hidden in [
            " =1+1",
            "\u{a0}=1+1",
            "\u{200b}+cmd",
            "\u{feff}-2+3",
            "\u{2060} @SUM(A1)",
            "\u{3000}=HYPERLINK(\"x\")",
            "\u{ff1d}1+1",
            "\u{ff0b}1",
            "\u{ff0d}1",
            "\u{ff20}SUM(A1)",
            "-",
            "+1+1",
            "-1e5",
            " -7",
            "\u{200b}+1",
        ] {
            assert!(looks_like_formula(hidden), "{hidden:?}");
            assert_eq!(neutralise(hidden), format!("'{hidden}"));
        }
        for plain in ["-12.5", "+3", "-0.0125", "42", " 7", "fine = ok", "a+b", ""] {
            assert!(!looks_like_formula(plain), "{plain:?}");
            assert_eq!(neutralise(plain), plain);
        }
    }

    #[test]
    fn every_text_column_is_neutralised_but_numbers_are_not() {
        let transaction = Transaction {
            created_at: "=NOW()".into(),
            transaction_type: "@type".into(),
            service_type: "+svc".into(),
            amount: -1.5,
            tokens_used: 7,
            images_processed: 2,
            description: "-desc".into(),
            ..Default::default()
        };
        assert_eq!(
            csv_of(&[transaction]),
            format!("{HEAD}'=NOW(),'@type,'+svc,-1.5000,7,2,'-desc\r\n")
        );
    }

    #[test]
    fn amounts_are_signed_plain_decimals_with_four_places() {
        assert_eq!(format_amount(-0.0125), "-0.0125");
        assert_eq!(format_amount(10.0), "10.0000");
        assert_eq!(format_amount(1234567.89), "1234567.8900");
        assert_eq!(format_amount(-0.0), "0.0000");
        assert_eq!(format_amount(-0.00001), "0.0000");
        // A usage sent as a positive number is still written as a spend.
        let mut spend = usage("x");
        spend.amount = 0.5;
        assert!(csv_of(&[spend]).contains(",-0.5000,1834,1,"));
    }

    #[test]
    fn the_download_is_named_after_todays_date() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 7).unwrap();
        assert_eq!(
            download_file_name(&Strings::english(), today),
            "token_usage_history_2026-03-07.csv"
        );
    }
}
