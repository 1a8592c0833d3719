//! The "Download History" CSV: every transaction, branded, written to any [`Write`].
//!
//! The file starts with a UTF-8 byte-order mark so Excel reads it as UTF-8, rows end with
//! `\r\n` (RFC 4180, and what Excel writes), and fields are quoted only when needed. Text
//! cells that a spreadsheet would run as a formula are neutralised with a leading `'`
//! (OWASP "CSV Injection"). No I/O besides the given writer.

use std::borrow::{Borrow, Cow};
use std::io::{self, Write};

use chrono::NaiveDate;

use crate::branding::brand;
use crate::license_api::wire::Transaction;

/// The UTF-8 byte-order mark.
const BOM: &[u8] = "\u{feff}".as_bytes();

/// The header row.
const HEADER: [&str; 7] = [
    "Date",
    "Transaction Type",
    "Service Type",
    "Amount",
    "Tokens Used",
    "Images Processed",
    "Description",
];

/// Writes `transactions`, in the given order, as the CSV download.
pub fn write_csv(
    out: &mut impl Write,
    transactions: impl IntoIterator<Item = impl Borrow<Transaction>>,
) -> io::Result<()> {
    out.write_all(BOM)?;
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(&mut *out);
    writer.write_record(HEADER)?;
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

/// The name the download is saved under: `token_usage_history_YYYY-MM-DD.csv`.
pub fn download_file_name(today: NaiveDate) -> String {
    format!("token_usage_history_{}.csv", today.format("%Y-%m-%d"))
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

/// Prefixes `'` to text a spreadsheet would read as a formula (or that starts with a
/// character that hides one).
fn neutralise(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r', '\n']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "\u{feff}Date,Transaction Type,Service Type,Amount,Tokens Used,Images Processed,Description\r\n";

    fn csv_of(transactions: &[Transaction]) -> String {
        let mut out = Vec::new();
        write_csv(&mut out, transactions).unwrap();
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
            download_file_name(today),
            "token_usage_history_2026-03-07.csv"
        );
    }
}
