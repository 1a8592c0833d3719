//! The sample API's data: a seeded history of transactions (`credits/history`) and its
//! totals (`user/stats`), optionally with hostile text in every field. Pure: the same
//! count, seed, anchor (the newest transaction's time) and flag always give the same
//! history.

use serde::Serialize;

/// What [`SampleApiOptions::hostile`](super::SampleApiOptions::hostile) adds to every text field: markup and script for
/// the page, and a spreadsheet formula (kept at the start) for the CSV export.
pub const HOSTILE_PREFIX: &str = "=cmd|' /C calc'!A0 ";
/// See [`HOSTILE_PREFIX`].
pub const HOSTILE_SUFFIX: &str =
    " <script>alert(1)</script> \"'><img src=x onerror=alert(1)> javascript:alert(1)";

/// A fixed anchor, 2026-11-20 10:04:11 UTC, for what must give the same bytes every day:
/// the tests, the fuzz seeds, the benchmarks.
pub const FIXED_ANCHOR: i64 = 1_795_169_051;
/// The latest anchor [`parse_anchor`] accepts: 9999-12-31 23:59:59 UTC (four-digit years
/// keep `created_at` sortable as text).
const MAX_ANCHOR: i64 = 253_402_300_799;
/// The newest transaction's id is this plus the number of transactions.
const BASE_ID: u64 = 88_231;

/// One generated `credits/history` entry, serialised exactly as the contract shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampleTransaction {
    pub id: u64,
    pub created_at: String,
    pub transaction_type: String,
    pub service_type: String,
    /// Signed, four decimals: `-0.0125`, `10.0000`.
    pub amount: String,
    pub tokens_used: u64,
    pub images_processed: u64,
    pub description: String,
    /// `amount` in ten-thousandths of a credit, so sums are exact.
    #[serde(skip)]
    pub amount_e4: i64,
}

/// Sums over the whole generated history, as `user/stats` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Sum of `tokens_used`.
    pub tokens_used: u64,
    /// Credits spent by `usage` entries (positive), in ten-thousandths.
    pub credits_used_e4: i64,
    /// Number of `usage` entries.
    pub api_calls: u64,
    /// Sum of `images_processed`.
    pub images_processed: u64,
}

/// The generated history, newest first, and its totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleData {
    pub transactions: Vec<SampleTransaction>,
    pub totals: Totals,
    /// `created_at` of the newest transaction, in Unix seconds.
    pub anchor: i64,
    /// Whether text fields carry the hostile payloads.
    pub hostile: bool,
}

/// SplitMix64: tiny, seedable and the same on every platform.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// One kind of AI usage: service, provider, model and what it is done for.
struct UsageKind {
    service: &'static str,
    provider: &'static str,
    model: &'static str,
    long: &'static str,
    short: &'static str,
    object: &'static str,
    tokens: (u64, u64),
    images: (u64, u64),
    /// Share of usage entries, in percent.
    weight: u64,
}

const USAGE_KINDS: [UsageKind; 4] = [
    UsageKind {
        service: "image_search",
        provider: "openai",
        model: "gpt-4o-mini",
        long: "AI image selection",
        short: "Image pick",
        object: "gallery",
        tokens: (800, 2800),
        images: (1, 5),
        weight: 40,
    },
    UsageKind {
        service: "model_enrichment",
        provider: "anthropic",
        model: "claude-3-5-haiku-20241022",
        long: "Performer data enrichment",
        short: "Enrichment",
        object: "model",
        tokens: (1500, 6000),
        images: (0, 0),
        weight: 25,
    },
    UsageKind {
        service: "tag_generation",
        provider: "google",
        model: "gemini-1.5-flash",
        long: "Tag generation",
        short: "Tags",
        object: "gallery",
        tokens: (300, 1200),
        images: (1, 1),
        weight: 20,
    },
    UsageKind {
        service: "image_search",
        provider: "xai",
        model: "grok-2-vision-1212",
        long: "AI image selection",
        short: "Image pick",
        object: "gallery",
        tokens: (800, 2800),
        images: (1, 5),
        weight: 15,
    },
];

/// Generates `count` transactions, newest first, from `seed`: about 90% usage, 8%
/// purchases and 2% refunds, 1 to 7 minutes apart (4 on average: 10,000 span about 28
/// days) going back from `anchor` (Unix seconds, UTC), the newest one's `created_at`.
pub fn generate(count: usize, seed: u64, anchor: i64, hostile: bool) -> SampleData {
    let taint = |s: String| taint(hostile, s);
    let mut rng = SplitMix(seed);
    let mut totals = Totals::default();
    let mut transactions = Vec::with_capacity(count);
    let mut age_secs: i64 = 0;
    for i in 0..count {
        let id = BASE_ID + (count - i) as u64;
        let created_at = format_unix(anchor.saturating_sub(age_secs));
        age_secs += rng.range(60, 420) as i64;

        let roll = rng.range(0, 99);
        let (kind, service, amount_e4, tokens, images, description) = if roll < 90 {
            let mut pick = rng.range(0, 99);
            let kind = USAGE_KINDS
                .iter()
                .find(|k| {
                    let hit = pick < k.weight;
                    pick = pick.saturating_sub(k.weight);
                    hit
                })
                .unwrap_or(&USAGE_KINDS[0]);
            let tokens = rng.range(kind.tokens.0, kind.tokens.1);
            let images = rng.range(kind.images.0, kind.images.1);
            let cost_e4 = (tokens * 5 / 1000 + images * 25).max(1) as i64;
            let target = rng.range(10, 9999);
            let description = if rng.range(0, 9) < 3 {
                format!("{} {} {target}", kind.short, kind.object)
            } else {
                format!(
                    "{} via {} ({}) for {} {target}",
                    kind.long, kind.provider, kind.model, kind.object
                )
            };
            let service = format!("{} via {}", kind.service, kind.provider);
            ("usage", service, -cost_e4, tokens, images, description)
        } else if roll < 98 {
            let credits: i64 = match rng.range(0, 9) {
                0 => 50,
                1 | 2 => 25,
                _ => 10,
            };
            let order = 1000 + rng.range(0, 8999);
            let description = format!("Credit purchase - order #{order}");
            (
                "purchase",
                String::new(),
                credits * 10_000,
                0,
                0,
                description,
            )
        } else {
            let refunded = rng.range(10, 200) as i64;
            let of = id.saturating_sub(rng.range(1, 50));
            let description = format!("Refund for failed request #{of}");
            ("refund", String::new(), refunded, 0, 0, description)
        };

        totals.tokens_used += tokens;
        totals.images_processed += images;
        if kind == "usage" {
            totals.api_calls += 1;
            totals.credits_used_e4 -= amount_e4;
        }
        transactions.push(SampleTransaction {
            id,
            created_at: taint(created_at),
            transaction_type: taint(kind.to_string()),
            service_type: taint(service),
            amount: format_e4(amount_e4),
            tokens_used: tokens,
            images_processed: images,
            description: taint(description),
            amount_e4,
        });
    }
    SampleData {
        transactions,
        totals,
        anchor,
        hostile,
    }
}

/// Unix seconds as the contract's UTC `YYYY-MM-DD HH:MM:SS` (the epoch if out of range).
pub(super) fn format_unix(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .format(ANCHOR_FORMAT)
        .to_string()
}

/// The date form of an anchor, and of every `created_at`.
const ANCHOR_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// `--anchor`: Unix seconds (`1795169051`) or a UTC time (`2026-11-20 10:04:11`), from
/// 1970 to the end of 9999; spaces around it are ignored.
pub fn parse_anchor(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let unix = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<i64>().ok()
    } else {
        chrono::NaiveDateTime::parse_from_str(text, ANCHOR_FORMAT)
            .ok()
            .map(|time| time.and_utc().timestamp())
    };
    unix.filter(|unix| (0..=MAX_ANCHOR).contains(unix))
        .ok_or_else(|| {
            "not Unix seconds or a UTC time like \"2026-11-20 10:04:11\" \
             (from 1970 to 9999)"
                .to_string()
        })
}

/// Wraps a text field in the hostile payloads when asked to.
pub(super) fn taint(hostile: bool, text: String) -> String {
    if hostile {
        format!("{HOSTILE_PREFIX}{text}{HOSTILE_SUFFIX}")
    } else {
        text
    }
}

/// Ten-thousandths as a signed decimal with four places: `-125` -> `-0.0125`.
pub(super) fn format_e4(value: i64) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    format!("{sign}{}.{:04}", abs / 10_000, abs % 10_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::sample_api::answers::render_history;

    #[test]
    fn same_seed_gives_the_same_history_and_bytes() {
        let a = generate(500, 7, FIXED_ANCHOR, false);
        let b = generate(500, 7, FIXED_ANCHOR, false);
        assert_eq!(a, b);
        assert_eq!(render_history(&a, 0, 500), render_history(&b, 0, 500));
        assert_ne!(
            generate(500, 8, FIXED_ANCHOR, false).transactions,
            a.transactions
        );
    }

    #[test]
    fn the_newest_transaction_is_at_the_anchor_and_only_the_times_follow_it() {
        let anchor = 1_800_000_000; // 2027-01-15 08:00:00 UTC
        let a = generate(1_000, 7, anchor, false);
        assert_eq!(a.anchor, anchor);
        assert_eq!(a.transactions[0].created_at, "2027-01-15 08:00:00");
        assert_eq!(a, generate(1_000, 7, anchor, false));
        // Another anchor moves every time by the same amount and changes nothing else.
        let b = generate(1_000, 7, FIXED_ANCHOR, false);
        assert_eq!(b.transactions[0].created_at, "2026-11-20 10:04:11");
        assert_eq!(a.totals, b.totals);
        let unix = |t: &SampleTransaction| {
            chrono::NaiveDateTime::parse_from_str(&t.created_at, ANCHOR_FORMAT)
                .unwrap()
                .and_utc()
                .timestamp()
        };
        for (x, y) in a.transactions.iter().zip(&b.transactions) {
            assert_eq!(unix(x) - unix(y), anchor - FIXED_ANCHOR);
            let moved = SampleTransaction {
                created_at: y.created_at.clone(),
                ..x.clone()
            };
            assert_eq!(&moved, y);
        }
        // Hostile text wraps the anchored time too.
        let hostile = generate(3, 7, anchor, true);
        assert!(
            hostile.transactions[0]
                .created_at
                .contains(&format!("{HOSTILE_PREFIX}2027-01-15 08:00:00"))
        );
    }

    #[test]
    fn ten_thousand_transactions_span_about_four_weeks() {
        let data = generate(10_000, 5512, FIXED_ANCHOR, false);
        let oldest = &data.transactions[9_999].created_at;
        assert!(
            ("2026-10-20".."2026-10-27").contains(&oldest.as_str()),
            "{oldest}"
        );
    }

    #[test]
    fn an_anchor_is_unix_seconds_or_a_utc_time() {
        assert_eq!(parse_anchor("1795169051"), Ok(FIXED_ANCHOR));
        assert_eq!(parse_anchor(" 1795169051 "), Ok(FIXED_ANCHOR));
        assert_eq!(parse_anchor("2026-11-20 10:04:11"), Ok(FIXED_ANCHOR));
        assert_eq!(parse_anchor("0"), Ok(0));
        assert_eq!(parse_anchor("1970-01-01 00:00:00"), Ok(0));
        assert_eq!(parse_anchor("9999-12-31 23:59:59"), Ok(MAX_ANCHOR));
        for bad in [
            "",
            "now",
            "-5",
            "+5",
            "1.5",
            "1795169051s",
            "2026-11-20",
            "2026-11-20T10:04:11",
            "2026-11-20 10:04",
            "2026-11-31 10:04:11",
            "2026-11-20 25:04:11",
            "2026-11-20 10:04:11 UTC",
            "253402300800",
            "99999999999999999999",
        ] {
            let error = parse_anchor(bad).unwrap_err();
            assert!(error.contains("2026-11-20 10:04:11"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn history_is_newest_first_with_ids_falling() {
        let data = generate(10_000, 5512, FIXED_ANCHOR, false);
        assert_eq!(data.transactions.len(), 10_000);
        let first = &data.transactions[0];
        assert_eq!(first.created_at, "2026-11-20 10:04:11");
        assert_eq!(first.id, 98_231);
        for pair in data.transactions.windows(2) {
            assert!(pair[0].created_at > pair[1].created_at);
            assert!(pair[0].id > pair[1].id);
        }
    }

    #[test]
    fn history_is_mostly_usage_with_some_purchases_and_refunds() {
        let data = generate(10_000, 5512, FIXED_ANCHOR, false);
        let count = |kind: &str| {
            data.transactions
                .iter()
                .filter(|t| t.transaction_type == kind)
                .count()
        };
        let usage = count("usage");
        assert!((8_700..=9_300).contains(&usage), "usage {usage}");
        assert!(count("purchase") > 300);
        assert!(count("refund") > 50);
        assert_eq!(usage + count("purchase") + count("refund"), 10_000);
        for t in &data.transactions {
            assert_eq!(t.transaction_type == "usage", t.amount_e4 < 0, "{t:?}");
            assert_eq!(t.amount, format_e4(t.amount_e4));
        }
        let long = data
            .transactions
            .iter()
            .filter(|t| t.description.len() > 50)
            .count();
        assert!(long > 1_000 && long < 9_000, "long descriptions {long}");
        assert!(
            data.transactions
                .iter()
                .any(|t| t.service_type == "model_enrichment via anthropic")
        );
    }

    #[test]
    fn amounts_have_four_decimals_and_a_sign() {
        assert_eq!(format_e4(-125), "-0.0125");
        assert_eq!(format_e4(100_000), "10.0000");
        assert_eq!(format_e4(0), "0.0000");
        assert_eq!(format_e4(-123_456), "-12.3456");
    }
}
