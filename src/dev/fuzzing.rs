//! The bodies of the fuzz targets in `fuzz/`, one function per parser of outside bytes.
//!
//! They live in the crate, not in the fuzz crate, so that `tests/it/fuzz_seeds.rs` can
//! replay every committed seed and regression input through exactly the code libFuzzer
//! runs, at unit-test speed and on the stable toolchain. Each function takes any bytes,
//! must never panic, and asserts the cheap invariants of what it parsed (round trips,
//! bounds); a failed assertion is a bug found. Pure: no I/O.

use std::path::{Component, Path, PathBuf};

use chrono_tz::Tz;
use serde_json::Value;

use crate::app::router;
use crate::auth::csrf;
use crate::auth::session_store::{self, SavePath};
use crate::data::history::{EntryIndex, TransactionList};
use crate::data::license_api::client::{self, RawAnswer};
use crate::data::license_api::wire::{self, Pricing, Transaction, UserInfo, UserStats};
use crate::data::{cache, config, url};
use crate::php;
use crate::php::session::{self, Handler, Session, SessionValue};
use crate::transport::fastcgi::codec::{
    self as fastcgi, CodecError, Decoder, Limits, Record, RecordType,
};
use crate::view::dashboard;
use crate::view::{branding, export};

/// A fuzz target: its name (the folder names under `fuzz/`) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by the name of its file in `fuzz/fuzz_targets/`.
pub const TARGETS: [Target; 6] = [
    ("fastcgi_records", fastcgi_records),
    ("php_config", php_config),
    ("php_session", php_session),
    ("query_and_cookies", query_and_cookies),
    ("api_json", api_json),
    ("cache_files", cache_files),
];

/// The body of the target called `name`, if there is one.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS
        .iter()
        .find(|(target, _)| *target == name)
        .map(|(_, run)| *run)
}

// ---------------------------------------------------------------------------------------
// FastCGI
// ---------------------------------------------------------------------------------------

/// The FastCGI record stream as a web server would send it, fed to [`Decoder`] in chunks.
///
/// Input layout: byte 0 picks how many chunk-size bytes follow (1 to 4); each size byte is
/// a chunk length (0 meaning "everything left"), used in turn; the rest is the stream.
/// Checks that chunked decoding gives exactly the records and error of decoding the whole
/// buffer at once, then decodes every record's content as BEGIN_REQUEST and as PARAMS,
/// each PARAMS stream joined per request, and the stream itself as a GET_VALUES body.
pub fn fastcgi_records(data: &[u8]) {
    let (sizes, stream) = match data.split_first() {
        Some((&n, rest)) => rest.split_at(rest.len().min(usize::from(n % 4) + 1)),
        None => (&[][..], data),
    };
    let chunked = decode_in_chunks(stream, sizes);
    let whole = decode_whole(stream);
    assert_eq!(
        chunked, whole,
        "chunked decoding differs from whole-buffer decoding"
    );

    let limits = Limits::default();
    let mut params_streams: Vec<(u16, Vec<u8>)> = Vec::new();
    for record in &chunked.records {
        check_begin_request(&record.content);
        check_params(&record.content, &limits);
        check_record_round_trip(record);
        if record.kind == RecordType::Params {
            match params_streams
                .iter_mut()
                .find(|(id, _)| *id == record.request_id)
            {
                Some((_, joined)) => joined.extend_from_slice(&record.content),
                None => params_streams.push((record.request_id, record.content.clone())),
            }
        }
    }
    for (_, joined) in &params_streams {
        check_params(joined, &limits);
    }
    check_params(stream, &limits);
    let tight = Limits {
        max_params_bytes: 64,
        max_params_count: 3,
        max_stdin_bytes: 64,
    };
    check_params(stream, &tight);
}

/// What a decoder made of a stream: the records, then the error that stopped it or the
/// bytes of an unfinished record left over.
#[derive(Debug, PartialEq)]
struct Decoded {
    records: Vec<Record>,
    error: Option<CodecError>,
    /// Whether no byte of an unfinished record was left (always true after an error).
    drained: bool,
}

fn decode_in_chunks(stream: &[u8], sizes: &[u8]) -> Decoded {
    let mut decoder = Decoder::new();
    let mut records = Vec::new();
    let mut rest = stream;
    let mut size = sizes.iter().cycle();
    while !rest.is_empty() {
        let len = match size.next() {
            Some(0) | None => rest.len(),
            Some(&n) => usize::from(n).min(rest.len()),
        };
        let (chunk, after) = rest.split_at(len);
        rest = after;
        decoder.feed(chunk);
        loop {
            match decoder.next_record() {
                Ok(Some(record)) => records.push(record),
                Ok(None) => break,
                Err(error) => {
                    return Decoded {
                        records,
                        error: Some(error),
                        drained: true,
                    };
                }
            }
        }
    }
    Decoded {
        records,
        error: None,
        drained: decoder.is_empty(),
    }
}

fn decode_whole(stream: &[u8]) -> Decoded {
    let mut records = Vec::new();
    let mut rest = stream;
    loop {
        match fastcgi::decode_record(rest) {
            Ok(Some((record, used))) => {
                assert!(used >= fastcgi::HEADER_LEN && used <= rest.len());
                records.push(record);
                rest = &rest[used..];
            }
            Ok(None) => {
                return Decoded {
                    records,
                    error: None,
                    drained: rest.is_empty(),
                };
            }
            Err(error) => {
                return Decoded {
                    records,
                    error: Some(error),
                    drained: true,
                };
            }
        }
    }
}

fn check_begin_request(content: &[u8]) {
    if let Ok(begin) = fastcgi::decode_begin_request(content) {
        assert_eq!(content.len(), 8);
        assert_eq!(begin.role, u16::from_be_bytes([content[0], content[1]]));
        assert_eq!(begin.keep_conn, content[2] & fastcgi::FLAG_KEEP_CONN != 0);
    }
}

/// Decodes `buf` as name-value pairs; what decodes must encode and decode back the same.
fn check_params(buf: &[u8], limits: &Limits) {
    let Ok(pairs) = fastcgi::decode_params(buf, limits) else {
        return;
    };
    assert!(pairs.len() <= limits.max_params_count);
    let borrowed: Vec<(&[u8], &[u8])> = pairs
        .iter()
        .map(|(name, value)| (name.as_slice(), value.as_slice()))
        .collect();
    let mut encoded = Vec::new();
    fastcgi::encode_pairs(&mut encoded, &borrowed);
    // Lengths below 128 may arrive in the long form; re-encoded they only get shorter.
    assert!(encoded.len() <= buf.len());
    let unlimited = Limits {
        max_params_bytes: usize::MAX,
        max_params_count: usize::MAX,
        max_stdin_bytes: usize::MAX,
    };
    assert_eq!(fastcgi::decode_params(&encoded, &unlimited), Ok(pairs));
}

/// A record encoded again decodes to itself, padding and all.
fn check_record_round_trip(record: &Record) {
    let mut encoded = Vec::new();
    fastcgi::encode_record(
        &mut encoded,
        record.kind,
        record.request_id,
        &record.content,
    );
    assert_eq!(encoded.len() % 8, 0, "records are padded to 8 bytes");
    let decoded = decode_whole(&encoded);
    assert_eq!(decoded.error, None);
    assert!(decoded.drained);
    let content: Vec<u8> = decoded
        .records
        .iter()
        .flat_map(|r| r.content.iter().copied())
        .collect();
    assert_eq!(content, record.content);
    assert!(
        decoded
            .records
            .iter()
            .all(|r| r.kind == record.kind && r.request_id == record.request_id)
    );
}

// ---------------------------------------------------------------------------------------
// PHP config and session files
// ---------------------------------------------------------------------------------------

/// `config.inc.php` (read as lossy UTF-8, like the real loader), then the checks that
/// turn it into a license config.
pub fn php_config(data: &[u8]) {
    let source = String::from_utf8_lossy(data);
    let parsed = php::config::parse_config(&source);
    for value in parsed.variables.values().chain(parsed.constants.values()) {
        let _ = value.as_text();
        let _ = value.is_truthy();
        for key in [
            "license_key",
            "domain",
            "email",
            "api_url",
            "demo_mode",
            "0",
        ] {
            if let Some(inner) = value.get(key) {
                let _ = inner.as_text();
                let _ = inner.is_truthy();
            }
        }
    }
    match config::from_php(
        &parsed,
        Path::new("ct/dat/config.inc.php"),
        chrono_tz::Tz::UTC,
        || crate::data::secret::Secret::from_bytes([0; 32]),
    ) {
        Ok(license) => {
            let credentials = &license.credentials;
            for text in [
                &credentials.license_key,
                &credentials.domain,
                &credentials.email,
            ] {
                assert!(!text.is_empty() && text.trim() == text.as_str());
            }
            let masked = license.masked_key();
            assert!(masked.ends_with("...") && masked.chars().count() <= 8 + 3);
        }
        Err(error) => {
            let _ = error.to_string();
            let _ = error.summary(&crate::data::i18n::Strings::english());
        }
    }
}

/// A PHP session file, with the handler detected and with each handler forced.
pub fn php_session(data: &[u8]) {
    let detected = session::parse_session(data);
    for handler in [Handler::Php, Handler::PhpSerialize] {
        let forced = session::parse_session_as(data, handler);
        if detected.as_ref().is_ok_and(|s| s.handler == handler) {
            // Debug text, because a `d:NAN;` value is never equal to itself.
            assert_eq!(format!("{detected:?}"), format!("{forced:?}"));
        }
        match forced {
            Ok(session) => check_session(&session),
            Err(error) => {
                assert!(error.offset <= data.len(), "error offset past the end");
                let _ = error.to_string();
            }
        }
    }
}

fn check_session(session: &Session) {
    let report = session::session_keys_report(session);
    // One line per entry: keys are escaped, so none breaks a line.
    assert_eq!(report.matches('\n').count(), session.entries.len());
    assert!(report.lines().all(|line| line.contains('\t')));
    for (key, _) in &session.entries {
        if let Ok(key) = std::str::from_utf8(key) {
            assert!(session.get(key).is_some(), "a listed key is not found");
        }
    }
    for key in [
        "admin_logged_in",
        "admin_user",
        "user",
        "x",
        "is_admin",
        "role",
    ] {
        let Some(value) = session.get(key) else {
            continue;
        };
        check_session_value(value);
        for inner in ["role", "0", "1", "y", "admin"] {
            if let Some(inner) = value.get(inner) {
                check_session_value(inner);
            }
        }
    }
}

fn check_session_value(value: &SessionValue) {
    let _ = value.is_truthy();
    let _ = value.type_name();
    for expected in ["1", "", "admin", "0", "1.5"] {
        let _ = value.matches(expected);
    }
}

// ---------------------------------------------------------------------------------------
// Query strings and cookies
// ---------------------------------------------------------------------------------------

/// The query string and the `Cookie` header, both as lossy UTF-8.
pub fn query_and_cookies(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let query = router::parse_query(&text);
    assert!(query.page >= 1);
    let _ = query.action.name();
    let _ = query.action.changes_state();
    for _ in url::query_pairs(&text) {}

    // Any text sent as an encoded `token` value comes back as it was.
    assert_eq!(url::percent_decode(&url::percent_encode(&text)), text);
    let form = format!("token={}", url::percent_encode(&text));
    assert_eq!(
        csrf::token_from_form(form.as_bytes()).as_deref(),
        Some(&*text)
    );

    for https in [false, true] {
        if let Some(nonce) = csrf::nonce_from_cookies(&text, https) {
            assert_eq!(nonce.len(), csrf::NONCE_BYTES * 2);
            assert!(csrf::tokens_match(&nonce, &nonce));
        }
    }
    let _ = csrf::tokens_match(&text, &text);
    let session_id = csrf::first_cookie(&text, "PHPSESSID");
    for id in session_id.as_deref().into_iter().chain([&*text]) {
        check_session_path(id);
    }
}

/// A session id from a cookie names a file inside the save path, never elsewhere.
fn check_session_path(id: &str) {
    for depth in [0, 2] {
        let save = SavePath {
            depth,
            dir: PathBuf::from("/var/lib/php/sessions"),
        };
        let Some(path) = save.file_for(id) else {
            continue;
        };
        assert!(session_store::valid_session_id(id));
        assert!(path.starts_with(&save.dir));
        assert!(
            path.components()
                .all(|part| matches!(part, Component::RootDir | Component::Normal(_)))
        );
        assert_eq!(
            path.components().count(),
            save.dir.components().count() + depth + 1,
            "{path:?}"
        );
        assert_eq!(path.file_name(), Some(format!("sess_{id}").as_ref()));
    }
}

// ---------------------------------------------------------------------------------------
// License API answers and caches
// ---------------------------------------------------------------------------------------

/// A license API answer body (lossy UTF-8, like the client reads it), as a 200 and as a
/// 400, down every path its text takes to the page and the CSV download.
pub fn api_json(data: &[u8]) {
    let body = String::from_utf8_lossy(data).into_owned();
    if let Some(list) = wire::history_fast(&body) {
        check_transactions(&list);
    }
    for status in [200, 400] {
        let raw = RawAnswer {
            status,
            body: body.clone(),
        };
        match client::decode(&raw) {
            Ok(value) => {
                assert_eq!(status, 200, "only a 200 carries data");
                check_api_data(&value);
            }
            Err(error) => {
                let _ = error.to_string();
                let _ = std::error::Error::source(&error);
            }
        }
    }
}

fn check_api_data(data: &Value) {
    let info = serde_json::from_value::<UserInfo>(data.clone()).ok();
    let stats = serde_json::from_value::<UserStats>(data.clone()).ok();
    let pricing = serde_json::from_value::<Pricing>(data.clone()).ok();
    let transactions = match wire::transactions_array(data) {
        Some(_) => client::history_from_data(data).expect("a printed array reads back"),
        None => TransactionList::default(),
    };
    check_transactions(&transactions);
    let transactions = transactions.decode(0..transactions.len());
    check_dashboard(info, stats, pricing, &transactions);
}

/// Rows, CSV and branding of transactions from any source; every entry is shown.
fn check_transactions(transactions: &TransactionList) {
    let decoded = transactions.decode(0..transactions.len());
    assert_eq!(decoded.len(), transactions.len(), "no entry dropped");
    for t in &decoded {
        let row = dashboard::transaction_view(t, &formats(Tz::UTC));
        assert!(row.description.chars().count() <= dashboard::DESCRIPTION_CHARS + 3);
        let _ = branding::brand(&t.description);
        let _ = branding::brand(&t.service_type);
    }
    let mut csv = Vec::new();
    export::write_csv(
        &mut csv,
        &export::CsvHeader::of(&crate::data::i18n::Strings::english()),
        transactions.iter(),
    )
    .expect("a Vec<u8> takes any CSV");
    check_csv(&csv, transactions.len());
}

/// The download is a BOM, a header and one 7-field row per transaction, and no text
/// cell starts like a formula.
fn check_csv(csv: &[u8], rows: usize) {
    let body = csv
        .strip_prefix("\u{feff}".as_bytes())
        .expect("the CSV starts with a BOM");
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body);
    let mut count = 0;
    for record in reader.records() {
        let record = record.expect("the CSV reads back");
        assert_eq!(record.len(), 7);
        if count > 0 {
            for cell in [0, 1, 2, 6] {
                let text = record.get(cell).unwrap_or_default();
                assert!(
                    !export::looks_like_formula(text),
                    "cell {cell} of row {count} is a formula: {text:?}"
                );
            }
        }
        count += 1;
    }
    assert_eq!(count, rows + 1);
}

/// The view model's formatting of every hostile number and date, as the page shows them.
/// (Not `build_dashboard` itself: its inputs change shape often; these are its parts.)
fn check_dashboard(
    info: Option<UserInfo>,
    stats: Option<UserStats>,
    pricing: Option<Pricing>,
    transactions: &[Transaction],
) {
    for tz in [Tz::UTC, Tz::Pacific__Chatham] {
        if let Some(info) = &info {
            let _ = formats(tz).date(&info.created_at);
        }
        if let Some(pricing) = &pricing {
            let _ = formats(tz).timestamp(&pricing.updated_at);
        }
    }
    let balance = stats.as_ref().map_or(0.0, |stats| stats.balance);
    let locale = crate::view::locale::Locale::of("ar");
    if let Some(stats) = &stats {
        for amount in [stats.balance, stats.total_credits_used] {
            let _ = dashboard::format_credits(amount);
            let _ = locale.money(amount);
            let _ = dashboard::signed_money(amount, locale);
        }
        for count in [
            stats.total_tokens_used,
            stats.total_api_calls,
            stats.total_images_processed,
        ] {
            let _ = dashboard::format_count(count);
            let _ = locale.count(count);
        }
    }
    if let Some(pricing) = &pricing {
        check_prices(balance, pricing);
    }
    for requested in [0, 1, 2, usize::MAX] {
        let pages = crate::data::history::paginate(
            transactions.len(),
            requested,
            crate::data::history::PER_PAGE,
        );
        assert!(pages.page >= 1 && pages.start <= pages.end);
        assert!(pages.end <= transactions.len());
        assert!(pages.end - pages.start <= crate::data::history::PER_PAGE);
    }
}

/// The page's date formats in `tz`, on a fixed day.
fn formats(tz: Tz) -> dashboard::Formats {
    dashboard::Formats::new(1_795_172_400, tz, crate::view::locale::Locale::of("en"))
}

/// Prices as shown, and the "what your balance buys" estimates.
fn check_prices(balance: f64, pricing: &Pricing) {
    let table = &pricing.pricing;
    for price in [
        &table.image_processing,
        &table.input_tokens,
        &table.completion_tokens,
        &table.cached_tokens,
    ] {
        let _ = dashboard::format_credits(price.price);
        let _ = dashboard::estimate(balance, price);
        let _ = dashboard::estimate(1000.0, price);
    }
}

/// The pricing and transaction cache files (PHP-written or ours), and the entry index
/// beside a transaction cache file.
pub fn cache_files(data: &[u8]) {
    if let Some(index) = EntryIndex::decode(data) {
        assert_eq!(
            index.encode().as_deref(),
            Some(data),
            "an index reads back as written"
        );
    }
    if let Some(cached) = cache::parse_transactions(data) {
        check_transactions(&cached.value);
        let _ = cache::is_fresh(cached.timestamp, 1_763_712_000, cache::TRANSACTIONS_TTL);
    }
    if let Some(cached) = cache::parse_pricing(data) {
        assert!(cached.value.is_object());
        let _ = cache::is_fresh(cached.timestamp, 1_763_712_000, cache::PRICING_TTL);
        if let Ok(pricing) = serde_json::from_value::<Pricing>(cached.value) {
            check_prices(1000.0, &pricing);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_is_found_by_name() {
        for (name, _) in TARGETS {
            assert!(target(name).is_some());
        }
        assert!(target("nonsense").is_none());
    }

    #[test]
    fn empty_and_tiny_inputs_pass_every_target() {
        for (_, run) in TARGETS {
            for input in [&b""[..], b"\0", b"\x01", b"{}", b"a:0:{}", b"<?php"] {
                run(input);
            }
        }
    }

    #[test]
    fn a_request_in_odd_chunks_decodes_as_a_whole() {
        let mut stream = vec![3, 1, 7, 0, 5];
        fastcgi::encode_record(
            &mut stream,
            RecordType::BeginRequest,
            1,
            &[0, 1, 1, 0, 0, 0, 0, 0],
        );
        let mut params = Vec::new();
        fastcgi::encode_pairs(&mut params, &[(b"QUERY_STRING", b"action=download")]);
        fastcgi::encode_stream(&mut stream, RecordType::Params, 1, &params);
        fastcgi::encode_stream(&mut stream, RecordType::Stdin, 1, b"");
        fastcgi_records(&stream);
        let (sizes, body) = stream[1..].split_at(4);
        assert_eq!(decode_in_chunks(body, sizes).records.len(), 4);
    }
}
