//! The sample API's JSON answers, byte for byte as the contract (`license-api.md`) shows
//! them, and the query helpers its router uses. Pure.

use serde::Serialize;
use serde_json::json;

use crate::data::url::query_pairs;

use super::data::{SampleData, SampleTransaction, format_e4, format_unix, taint};

#[derive(Serialize)]
struct Envelope<T> {
    success: bool,
    data: T,
}

#[derive(Serialize)]
struct HistoryData<'a> {
    transactions: &'a [SampleTransaction],
    total: usize,
}

pub(super) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail; an empty body would show as a client
    // error rather than a crash.
    serde_json::to_vec(value).unwrap_or_default()
}

/// The `pricing/current` answer, its `updated_at` the hour before the history's `anchor`
/// (Unix seconds) began: `2026-11-20 09:00:00` for `2026-11-20 10:04:11`.
pub fn render_pricing(anchor: i64, hostile: bool) -> Vec<u8> {
    let updated_at = format_unix(anchor - anchor.rem_euclid(3_600) - 3_600);
    let price = |price: &str, unit: u64| json!({"price": price, "unit": unit});
    to_json(&Envelope {
        success: true,
        data: json!({
            "pricing": {
                "image_processing": price("2.50", 10_000),
                "input_tokens": price("0.20", 1_000_000),
                "completion_tokens": price("0.80", 1_000_000),
                "cached_tokens": price("0.05", 1_000_000),
            },
            "currency": taint(hostile, "USD".into()),
            "updated_at": taint(hostile, updated_at),
        }),
    })
}

/// The `user/info` answer, echoing the request's `email` and `domain`.
pub fn render_user_info(email: &str, domain: &str, hostile: bool) -> Vec<u8> {
    let t = |s: &str| taint(hostile, s.to_string());
    to_json(&Envelope {
        success: true,
        data: json!({
            "email": t(email),
            "license_type": t("Pro"),
            "domain": t(domain),
            "created_at": t("2024-03-15 12:34:56"),
            "status": t("active"),
        }),
    })
}

/// The `user/stats` answer: `balance` as given, totals from the whole history.
pub fn render_user_stats(data: &SampleData, balance: f64) -> Vec<u8> {
    to_json(&Envelope {
        success: true,
        data: json!({
            "balance": format!("{balance:.4}"),
            "total_tokens_used": data.totals.tokens_used,
            "total_credits_used": format_e4(data.totals.credits_used_e4),
            "total_api_calls": data.totals.api_calls,
            "total_images_processed": data.totals.images_processed,
        }),
    })
}

/// The `credits/history` answer: the newest `limit` transactions.
/// The history answer: at most `limit` transactions, newest first, leaving out the newest
/// `hidden`.
pub fn render_history(data: &SampleData, hidden: usize, limit: usize) -> Vec<u8> {
    let all = &data.transactions;
    let start = hidden.min(all.len());
    let shown = &all[start..(start + limit).min(all.len())];
    to_json(&Envelope {
        success: true,
        data: HistoryData {
            transactions: shown,
            total: shown.len(),
        },
    })
}

/// A failure answer: `{"success": false, "error": message}`.
pub fn render_error(message: &str, hostile: bool) -> Vec<u8> {
    to_json(&json!({"success": false, "error": taint(hostile, message.to_string())}))
}

/// The decoded pairs of a query, as the router decodes the page's own.
pub(super) fn parse_query(query: &str) -> Vec<(String, String)> {
    query_pairs(query).collect()
}

/// The last value of a query parameter, or "".
pub(super) fn query_param<'a>(query: &'a [(String, String)], name: &str) -> &'a str {
    query
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::license_api::wire::{Transaction, UserStats};
    use crate::dev::sample_api::data::{FIXED_ANCHOR, generate};
    use serde_json::Value;

    fn body_json(body: &[u8]) -> Value {
        serde_json::from_slice(body).unwrap()
    }

    #[test]
    fn stats_totals_are_sums_of_the_history() {
        let data = generate(2_000, 1, FIXED_ANCHOR, false);
        let usage: Vec<_> = data
            .transactions
            .iter()
            .filter(|t| t.transaction_type == "usage")
            .collect();
        let stats: UserStats =
            serde_json::from_value(body_json(&render_user_stats(&data, 3.5))["data"].clone())
                .unwrap();
        assert_eq!(stats.balance, 3.5);
        assert_eq!(
            stats.total_tokens_used,
            data.transactions.iter().map(|t| t.tokens_used).sum::<u64>()
        );
        assert_eq!(stats.total_api_calls, usage.len() as u64);
        assert_eq!(
            stats.total_images_processed,
            data.transactions
                .iter()
                .map(|t| t.images_processed)
                .sum::<u64>()
        );
        let spent_e4: i64 = usage.iter().map(|t| -t.amount_e4).sum();
        assert_eq!(data.totals.credits_used_e4, spent_e4);
        assert!((stats.total_credits_used - spent_e4 as f64 / 10_000.0).abs() < 1e-9);
    }

    #[test]
    fn prices_were_updated_the_hour_before_the_newest_transaction() {
        let updated_at =
            |anchor| body_json(&render_pricing(anchor, false))["data"]["updated_at"].clone();
        assert_eq!(updated_at(FIXED_ANCHOR), "2026-11-20 09:00:00");
        assert_eq!(updated_at(1_800_000_000), "2027-01-15 07:00:00");
        assert_eq!(updated_at(1_800_000_000 + 3_599), "2027-01-15 07:00:00");
        assert_eq!(updated_at(0), "1969-12-31 23:00:00");
    }

    #[test]
    fn history_answer_honours_limit_and_decodes_as_wire_transactions() {
        let data = generate(100, 2, FIXED_ANCHOR, false);
        let answer = body_json(&render_history(&data, 0, 5));
        assert_eq!(answer["success"], true);
        assert_eq!(answer["data"]["total"], 5);
        let list: Vec<Transaction> =
            serde_json::from_value(answer["data"]["transactions"].clone()).unwrap();
        assert_eq!(list.len(), 5);
        assert_eq!(list[0].id, data.transactions[0].id.to_string());
        assert!(answer["data"]["transactions"][0]["id"].is_u64());
        assert!(answer["data"]["transactions"][0]["amount"].is_string());
        assert_eq!(
            body_json(&render_history(&data, 0, 1_000))["data"]["total"],
            100
        );
    }

    /// Every string in `value` that is not a number carries the payloads.
    fn assert_all_text_hostile(value: &Value) {
        match value {
            Value::String(s) if s.parse::<f64>().is_ok() => {}
            Value::String(s) => {
                assert!(s.starts_with("=cmd|' /C calc'!A0"), "{s}");
                assert!(s.contains("<script>alert(1)</script>"), "{s}");
                assert!(s.contains("\"'><img src=x onerror=alert(1)>"), "{s}");
                assert!(s.contains("javascript:alert(1)"), "{s}");
            }
            Value::Array(items) => items.iter().for_each(assert_all_text_hostile),
            Value::Object(map) => map.values().for_each(assert_all_text_hostile),
            _ => {}
        }
    }

    #[test]
    fn hostile_answers_carry_payloads_in_every_text_field() {
        let data = generate(200, 3, FIXED_ANCHOR, true);
        for body in [
            render_pricing(FIXED_ANCHOR, true),
            render_user_info("a@b.c", "b.c", true),
            render_user_stats(&data, 1.0),
            render_history(&data, 0, 200),
            render_error("License not found", true),
        ] {
            assert_all_text_hostile(&body_json(&body));
        }
        let info = body_json(&render_user_info("owner@example.com", "example.com", true));
        assert!(
            info["data"]["email"]
                .as_str()
                .unwrap()
                .contains("owner@example.com")
        );
    }

    #[test]
    fn query_is_percent_decoded() {
        let q = parse_query("endpoint=credits%2Fhistory&email=a%40b.c&x=a+b&bad=%zz%4&flag");
        assert_eq!(query_param(&q, "endpoint"), "credits/history");
        assert_eq!(query_param(&q, "email"), "a@b.c");
        assert_eq!(query_param(&q, "x"), "a b");
        assert_eq!(query_param(&q, "bad"), "%zz%4");
        assert_eq!(query_param(&q, "flag"), "");
        assert_eq!(query_param(&q, "missing"), "");
    }
}
