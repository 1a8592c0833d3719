//! Wire types of the license API (`../shared/license-api.md`), decoded leniently.
//!
//! The real server may send numbers as strings, `null` for zero, or unknown fields; each
//! field here accepts all of those. Pure: no I/O.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::data::history::TransactionList;

/// One entry of `credits/history`, newest first on the wire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Transaction {
    #[serde(deserialize_with = "text")]
    pub id: String,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    #[serde(deserialize_with = "text")]
    pub created_at: String,
    /// `usage`, `purchase`, `refund`, or anything else (shown neutrally, never dropped).
    #[serde(deserialize_with = "text")]
    pub transaction_type: String,
    #[serde(deserialize_with = "text")]
    pub service_type: String,
    /// Signed credits; a usage sent as a positive number is still a spend.
    #[serde(deserialize_with = "number")]
    pub amount: f64,
    #[serde(deserialize_with = "count")]
    pub tokens_used: u64,
    #[serde(deserialize_with = "count")]
    pub images_processed: u64,
    #[serde(deserialize_with = "text")]
    pub description: String,
}

impl Transaction {
    /// The amount with the sign the contract promises: spends are never positive.
    pub fn signed_amount(&self) -> f64 {
        if self.transaction_type.eq_ignore_ascii_case("usage") {
            -self.amount.abs()
        } else {
            self.amount
        }
    }
}

#[cfg(test)]
impl Transaction {
    /// The contract's example usage entry with another description, for unit tests.
    pub fn example_usage(description: &str) -> Transaction {
        Transaction {
            id: "98231".into(),
            created_at: "2026-11-20 10:04:11".into(),
            transaction_type: "usage".into(),
            service_type: "image_search via openai".into(),
            amount: -0.0125,
            tokens_used: 1834,
            images_processed: 1,
            description: description.into(),
        }
    }
}

/// `user/info` data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserInfo {
    #[serde(deserialize_with = "text")]
    pub email: String,
    #[serde(deserialize_with = "text")]
    pub license_type: String,
    #[serde(deserialize_with = "text")]
    pub domain: String,
    #[serde(deserialize_with = "text")]
    pub created_at: String,
    #[serde(deserialize_with = "text")]
    pub status: String,
}

/// `user/stats` data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserStats {
    #[serde(deserialize_with = "number")]
    pub balance: f64,
    #[serde(deserialize_with = "count")]
    pub total_tokens_used: u64,
    #[serde(deserialize_with = "number")]
    pub total_credits_used: f64,
    #[serde(deserialize_with = "count")]
    pub total_api_calls: u64,
    #[serde(deserialize_with = "count")]
    pub total_images_processed: u64,
}

/// One priced service: `price` credits per `unit` images or tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Price {
    #[serde(deserialize_with = "number")]
    pub price: f64,
    #[serde(deserialize_with = "count")]
    pub unit: u64,
}

/// The four priced services.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PriceTable {
    pub image_processing: Price,
    pub input_tokens: Price,
    pub completion_tokens: Price,
    pub cached_tokens: Price,
}

/// `pricing/current` data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pricing {
    pub pricing: PriceTable,
    #[serde(deserialize_with = "text")]
    pub currency: String,
    #[serde(deserialize_with = "text")]
    pub updated_at: String,
}

/// Text that may arrive as a string, a number, a boolean or `null`.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(TextVisitor)
}

/// A number that may arrive as a JSON number, a numeric string or `null` (zero).
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let n = d.deserialize_any(NumberVisitor)?;
    if n.is_finite() {
        Ok(n)
    } else {
        Err(serde::de::Error::custom("not a finite number"))
    }
}

/// Visits a number without allocating (the history has 30,000 numeric fields).
struct NumberVisitor;

impl<'de> serde::de::Visitor<'de> for NumberVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a number, a numeric string or null")
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<f64, E> {
        let text = v.trim();
        if text.is_empty() {
            return Ok(0.0);
        }
        text.parse()
            .map_err(|_| E::custom(format!("not a number: {text:?}")))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<f64, E> {
        Ok(0.0)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<f64, E> {
        Ok(0.0)
    }
}

/// A non-negative count; fractions are truncated and negatives clamp to zero.
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = number(d)?;
    // Saturating float-to-int cast: negatives become 0, huge values u64::MAX.
    Ok(n as u64)
}

/// Visits one JSON scalar as text without building a `Value`.
struct TextVisitor;

impl<'de> serde::de::Visitor<'de> for TextVisitor {
    type Value = String;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("text, a number, a boolean or null")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
        // JSON's spelling of the number, as serde_json prints it.
        Ok(serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string()))
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<String, A::Error> {
        let value = Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        Ok(value.to_string())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<String, A::Error> {
        let value = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(value.to_string())
    }
}

/// Pulls the `data` object out of an envelope, or takes the body itself when the server
/// sent the fields at the top level. `Err(message)` is the server's own error text.
pub fn unwrap_envelope(body: Value) -> Result<Value, EnvelopeError> {
    let Value::Object(mut map) = body else {
        return Err(EnvelopeError::WrongShape);
    };
    if let Some(success) = map.get("success") {
        let ok = match success {
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::String(s) => matches!(s.as_str(), "1" | "true"),
            _ => false,
        };
        if !ok {
            let message = match map.remove("error").or_else(|| map.remove("message")) {
                Some(Value::String(s)) if !s.trim().is_empty() => s,
                _ => "Unknown API error".to_string(),
            };
            return Err(EnvelopeError::Refused(message));
        }
    }
    match map.remove("data") {
        Some(data @ Value::Object(_)) => Ok(data),
        Some(_) => Err(EnvelopeError::WrongShape),
        None => Ok(Value::Object(map)),
    }
}

/// Why an envelope did not hold data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// `success: false` with the server's message.
    Refused(String),
    /// Not an object, or `data` not an object.
    WrongShape,
}

/// The common shape, `{"success": true, "data": {"transactions": [...]}}`, decoded in one
/// pass without building a JSON tree; `None` for anything else (the caller then takes the
/// lenient path, which also finds the error message).
pub fn history_fast(body: &str) -> Option<TransactionList> {
    use serde_json::value::RawValue;
    #[derive(Deserialize)]
    struct Envelope<'a> {
        success: bool,
        #[serde(borrow)]
        data: Data<'a>,
    }
    #[derive(Deserialize)]
    struct Data<'a> {
        #[serde(borrow)]
        transactions: Vec<&'a RawValue>,
    }
    let mut success = false;
    let list = TransactionList::locate(body.to_string(), |body| {
        let envelope: Envelope<'_> = serde_json::from_str(body).ok()?;
        success = envelope.success;
        Some(envelope.data.transactions)
    })?;
    success.then_some(list)
}

/// The `transactions` array of `credits/history` data, kept raw for the cache file.
pub fn transactions_array(data: &Value) -> Option<&Vec<Value>> {
    match data.get("transactions") {
        Some(Value::Array(list)) => Some(list),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_may_be_strings_null_or_missing() {
        let stats: UserStats = serde_json::from_value(json!({
            "balance": "12.3456", "total_tokens_used": null, "total_credits_used": 4.5,
            "total_api_calls": "890"
        }))
        .unwrap();
        assert_eq!(stats.balance, 12.3456);
        assert_eq!(stats.total_tokens_used, 0);
        assert_eq!(stats.total_credits_used, 4.5);
        assert_eq!(stats.total_api_calls, 890);
        assert_eq!(stats.total_images_processed, 0);
    }

    #[test]
    fn a_non_numeric_string_is_a_decoding_error() {
        assert!(serde_json::from_value::<UserStats>(json!({"balance": "lots"})).is_err());
    }

    #[test]
    fn unknown_fields_are_ignored_and_ids_become_text() {
        let t: Transaction = serde_json::from_value(json!({
            "id": 98231, "transaction_type": "bonus", "amount": "-0.0125", "extra": [1, 2]
        }))
        .unwrap();
        assert_eq!(t.id, "98231");
        assert_eq!(t.transaction_type, "bonus");
        assert_eq!(t.amount, -0.0125);
        assert_eq!(t.description, "");
    }

    #[test]
    fn a_positive_usage_amount_is_still_a_spend() {
        let t = Transaction {
            transaction_type: "usage".into(),
            amount: 0.5,
            ..Default::default()
        };
        assert_eq!(t.signed_amount(), -0.5);
        let refund = Transaction {
            transaction_type: "refund".into(),
            amount: 0.5,
            ..Default::default()
        };
        assert_eq!(refund.signed_amount(), 0.5);
    }

    #[test]
    fn the_fast_history_path_keeps_the_servers_text() {
        let body = r#"{"success":true,"data":{"transactions":[{"id":1,"amount":"-0.5","x":[1]}],"total":1}}"#;
        let list = history_fast(body).unwrap();
        assert_eq!(list.get(0).unwrap().amount, -0.5);
        assert_eq!(
            list.to_json_array(),
            r#"[{"id":1,"amount":"-0.5","x":[1]}]"#
        );
        assert_eq!(history_fast(r#"{"success":false,"error":"x"}"#), None);
        assert_eq!(history_fast(r#"{"transactions":[]}"#), None);
    }

    #[test]
    fn envelope_yields_data_or_the_servers_error() {
        assert_eq!(
            unwrap_envelope(json!({"success": true, "data": {"a": 1}})),
            Ok(json!({"a": 1}))
        );
        assert_eq!(
            unwrap_envelope(json!({"success": false, "error": "License not found"})),
            Err(EnvelopeError::Refused("License not found".into()))
        );
        assert_eq!(unwrap_envelope(json!({"a": 1})), Ok(json!({"a": 1})));
        assert_eq!(unwrap_envelope(json!([1])), Err(EnvelopeError::WrongShape));
        assert_eq!(
            unwrap_envelope(json!({"success": true, "data": "x"})),
            Err(EnvelopeError::WrongShape)
        );
    }
}
