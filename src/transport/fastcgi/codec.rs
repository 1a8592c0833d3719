//! The FastCGI 1.0 record codec, responder side: bytes in, records out, and back.
//!
//! Pure: no I/O, no panics on any input, and no allocation sized by a length the peer
//! claims before the bytes are there. The server in [`crate::transport::fastcgi`] feeds
//! socket reads to a [`Decoder`] and writes what the `encode_*` functions produce.

use std::fmt;

/// The only protocol version there is.
pub const VERSION_1: u8 = 1;
/// Every record starts with an 8-byte header.
pub const HEADER_LEN: usize = 8;
/// The most content one record can carry (its length field is 16 bits).
pub const MAX_CONTENT_LEN: usize = 65535;
/// `FCGI_RESPONDER`, the only role this program plays.
pub const ROLE_RESPONDER: u16 = 1;
/// `FCGI_KEEP_CONN`: the web server wants the connection kept after the request.
pub const FLAG_KEEP_CONN: u8 = 1;
/// The request id of management records (`FCGI_NULL_REQUEST_ID`).
pub const MANAGEMENT_ID: u16 = 0;

/// A record type; types this codec does not name are kept as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    BeginRequest,
    AbortRequest,
    EndRequest,
    Params,
    Stdin,
    Stdout,
    Stderr,
    Data,
    GetValues,
    GetValuesResult,
    UnknownType,
    Other(u8),
}

impl From<u8> for RecordType {
    fn from(byte: u8) -> Self {
        match byte {
            1 => Self::BeginRequest,
            2 => Self::AbortRequest,
            3 => Self::EndRequest,
            4 => Self::Params,
            5 => Self::Stdin,
            6 => Self::Stdout,
            7 => Self::Stderr,
            8 => Self::Data,
            9 => Self::GetValues,
            10 => Self::GetValuesResult,
            11 => Self::UnknownType,
            other => Self::Other(other),
        }
    }
}

impl From<RecordType> for u8 {
    fn from(kind: RecordType) -> Self {
        match kind {
            RecordType::BeginRequest => 1,
            RecordType::AbortRequest => 2,
            RecordType::EndRequest => 3,
            RecordType::Params => 4,
            RecordType::Stdin => 5,
            RecordType::Stdout => 6,
            RecordType::Stderr => 7,
            RecordType::Data => 8,
            RecordType::GetValues => 9,
            RecordType::GetValuesResult => 10,
            RecordType::UnknownType => 11,
            RecordType::Other(other) => other,
        }
    }
}

/// The `protocolStatus` of an END_REQUEST record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolStatus {
    RequestComplete = 0,
    CantMpxConn = 1,
    Overloaded = 2,
    UnknownRole = 3,
}

/// Name-value pairs as bytes, in arrival order (the shape of [`crate::transport::request::Request::params`]).
pub type Params = Vec<(Vec<u8>, Vec<u8>)>;

/// One decoded record; its padding is already dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: RecordType,
    pub request_id: u16,
    pub content: Vec<u8>,
}

/// The body of a BEGIN_REQUEST record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeginRequest {
    pub role: u16,
    pub keep_conn: bool,
}

/// How much one request may send before it is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes of the PARAMS stream.
    pub max_params_bytes: usize,
    /// Number of name-value pairs.
    pub max_params_count: usize,
    /// Total bytes of the STDIN stream.
    pub max_stdin_bytes: usize,
}

impl Default for Limits {
    /// 1 MiB of params, 1000 params, 1 MiB of body.
    fn default() -> Self {
        Limits {
            max_params_bytes: 1 << 20,
            max_params_count: 1000,
            max_stdin_bytes: 1 << 20,
        }
    }
}

/// Why bytes from the peer cannot be a valid FastCGI stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// The header's version byte is not 1.
    UnsupportedVersion(u8),
    /// A BEGIN_REQUEST body that is not 8 bytes long.
    MalformedBeginRequest,
    /// A name-value pair whose lengths run past the end of the data.
    TruncatedPair,
    /// More name-value pairs than the limit.
    TooManyParams { limit: usize },
    /// A PARAMS stream longer than the limit.
    ParamsTooLarge { limit: usize },
    /// A STDIN stream longer than the limit.
    BodyTooLarge { limit: usize },
}

impl CodecError {
    /// True for a well-formed request that is merely too big (HTTP 413 rather than 400).
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            Self::TooManyParams { .. } | Self::ParamsTooLarge { .. } | Self::BodyTooLarge { .. }
        )
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedVersion(v) => write!(f, "unsupported FastCGI version {v}"),
            Self::MalformedBeginRequest => f.write_str("malformed BEGIN_REQUEST body"),
            Self::TruncatedPair => f.write_str("name-value pair runs past the end of its data"),
            Self::TooManyParams { limit } => write!(f, "more than {limit} params"),
            Self::ParamsTooLarge { limit } => write!(f, "params longer than {limit} bytes"),
            Self::BodyTooLarge { limit } => write!(f, "request body longer than {limit} bytes"),
        }
    }
}

impl std::error::Error for CodecError {}

/// Decodes the record at the start of `buf`.
///
/// Returns the record and the bytes it took (header, content and padding), `None` when
/// `buf` holds only part of a record, or an error when the bytes cannot be FastCGI 1.0.
/// A wrong version is reported as soon as the first byte is there.
pub fn decode_record(buf: &[u8]) -> Result<Option<(Record, usize)>, CodecError> {
    if let Some(&version) = buf.first() {
        if version != VERSION_1 {
            return Err(CodecError::UnsupportedVersion(version));
        }
    }
    let Some(&[_, kind, id_hi, id_lo, len_hi, len_lo, padding, _]) =
        buf.first_chunk::<HEADER_LEN>()
    else {
        return Ok(None);
    };
    let content_len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
    let content_end = HEADER_LEN + content_len;
    let Some(content) = buf.get(HEADER_LEN..content_end) else {
        return Ok(None);
    };
    let total = content_end + usize::from(padding);
    if buf.len() < total {
        return Ok(None);
    }
    let record = Record {
        kind: RecordType::from(kind),
        request_id: u16::from_be_bytes([id_hi, id_lo]),
        content: content.to_vec(),
    };
    Ok(Some((record, total)))
}

/// An incremental decoder: feed it bytes as they arrive, take out whole records.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already decoded; dropped on the next `feed`.
    start: usize,
}

impl Decoder {
    /// A decoder with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes received from the peer.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.drain(..self.start.min(self.buf.len()));
        self.start = 0;
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete record, `None` until more bytes arrive, or the stream's error.
    pub fn next_record(&mut self) -> Result<Option<Record>, CodecError> {
        let rest = self.buf.get(self.start..).unwrap_or_default();
        let Some((record, used)) = decode_record(rest)? else {
            return Ok(None);
        };
        self.start += used;
        Ok(Some(record))
    }

    /// True when no part of a record is buffered (the peer is between records).
    pub fn is_empty(&self) -> bool {
        self.start >= self.buf.len()
    }

    /// Bytes received and not yet taken out as records (part of a record, or more).
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }
}

/// Decodes the body of a BEGIN_REQUEST record.
pub fn decode_begin_request(content: &[u8]) -> Result<BeginRequest, CodecError> {
    let &[role_hi, role_lo, flags, _, _, _, _, _] =
        <&[u8; 8]>::try_from(content).map_err(|_| CodecError::MalformedBeginRequest)?;
    Ok(BeginRequest {
        role: u16::from_be_bytes([role_hi, role_lo]),
        keep_conn: flags & FLAG_KEEP_CONN != 0,
    })
}

/// Decodes a whole PARAMS stream (or a GET_VALUES body) into name-value pairs.
///
/// Names and values stay bytes, so one non-UTF-8 value loses nothing around it.
/// Enforces `limits.max_params_bytes` and `limits.max_params_count`.
pub fn decode_params(buf: &[u8], limits: &Limits) -> Result<Params, CodecError> {
    if buf.len() > limits.max_params_bytes {
        return Err(CodecError::ParamsTooLarge {
            limit: limits.max_params_bytes,
        });
    }
    let mut pairs = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        if pairs.len() >= limits.max_params_count {
            return Err(CodecError::TooManyParams {
                limit: limits.max_params_count,
            });
        }
        let (name_len, after) = decode_length(rest)?;
        let (value_len, after) = decode_length(after)?;
        let (name, after) = split(after, name_len)?;
        let (value, after) = split(after, value_len)?;
        pairs.push((name.to_vec(), value.to_vec()));
        rest = after;
    }
    Ok(pairs)
}

/// One name-value length: a byte below 128, or four bytes with the top bit set.
fn decode_length(buf: &[u8]) -> Result<(usize, &[u8]), CodecError> {
    match buf {
        [b0, rest @ ..] if b0 & 0x80 == 0 => Ok((usize::from(*b0), rest)),
        [b3, b2, b1, b0, rest @ ..] => {
            let len = u32::from_be_bytes([b3 & 0x7f, *b2, *b1, *b0]);
            let len = usize::try_from(len).map_err(|_| CodecError::TruncatedPair)?;
            Ok((len, rest))
        }
        _ => Err(CodecError::TruncatedPair),
    }
}

fn split(buf: &[u8], len: usize) -> Result<(&[u8], &[u8]), CodecError> {
    buf.split_at_checked(len).ok_or(CodecError::TruncatedPair)
}

/// Appends one record per 65535 bytes of `content`, each padded to a multiple of 8;
/// empty `content` gives one empty record (how a stream ends).
pub fn encode_record(out: &mut Vec<u8>, kind: RecordType, request_id: u16, content: &[u8]) {
    if content.is_empty() {
        push_record(out, kind, request_id, &[]);
    }
    for chunk in content.chunks(MAX_CONTENT_LEN) {
        push_record(out, kind, request_id, chunk);
    }
}

/// Appends a whole stream (STDOUT, STDERR): the data in records, then the empty record
/// that closes it.
pub fn encode_stream(out: &mut Vec<u8>, kind: RecordType, request_id: u16, data: &[u8]) {
    if !data.is_empty() {
        encode_record(out, kind, request_id, data);
    }
    encode_record(out, kind, request_id, &[]);
}

/// Appends an END_REQUEST record.
pub fn encode_end_request(
    out: &mut Vec<u8>,
    request_id: u16,
    app_status: u32,
    status: ProtocolStatus,
) {
    let mut body = [0u8; 8];
    let (app, rest) = body.split_at_mut(4);
    app.copy_from_slice(&app_status.to_be_bytes());
    if let Some(protocol_status) = rest.first_mut() {
        *protocol_status = status as u8;
    }
    push_record(out, RecordType::EndRequest, request_id, &body);
}

/// Appends the UNKNOWN_TYPE reply to a record of type `kind`.
pub fn encode_unknown_type(out: &mut Vec<u8>, kind: RecordType) {
    let body = [u8::from(kind), 0, 0, 0, 0, 0, 0, 0];
    push_record(out, RecordType::UnknownType, MANAGEMENT_ID, &body);
}

/// Appends a GET_VALUES_RESULT record carrying `pairs`.
pub fn encode_get_values_result(out: &mut Vec<u8>, pairs: &[(&[u8], &[u8])]) {
    let mut body = Vec::new();
    encode_pairs(&mut body, pairs);
    encode_record(out, RecordType::GetValuesResult, MANAGEMENT_ID, &body);
}

/// Appends name-value pairs in FastCGI's encoding (the inverse of [`decode_params`]).
/// A name or value of 2 GiB or more cannot be encoded; such a pair is skipped.
pub fn encode_pairs(out: &mut Vec<u8>, pairs: &[(&[u8], &[u8])]) {
    for (name, value) in pairs {
        let (Some(name_len), Some(value_len)) = (pair_length(name), pair_length(value)) else {
            continue;
        };
        out.extend_from_slice(&name_len);
        out.extend_from_slice(&value_len);
        out.extend_from_slice(name);
        out.extend_from_slice(value);
    }
}

fn pair_length(bytes: &[u8]) -> Option<Vec<u8>> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|len| *len <= 0x7fff_ffff)?;
    Some(match u8::try_from(len) {
        Ok(short) if short < 0x80 => vec![short],
        _ => (len | 0x8000_0000).to_be_bytes().to_vec(),
    })
}

/// Appends one record; `content` longer than [`MAX_CONTENT_LEN`] is cut (callers split).
fn push_record(out: &mut Vec<u8>, kind: RecordType, request_id: u16, content: &[u8]) {
    let content = content.get(..MAX_CONTENT_LEN).unwrap_or(content);
    out.extend_from_slice(&record_header(kind, request_id, content.len()));
    out.extend_from_slice(content);
    out.resize(out.len() + padding(content.len()), 0);
}

/// The header of a record of `content_len` bytes (at most [`MAX_CONTENT_LEN`]), padded
/// to a multiple of 8 as the specification recommends.
pub fn record_header(kind: RecordType, request_id: u16, content_len: usize) -> [u8; HEADER_LEN] {
    let len = u16::try_from(content_len.min(MAX_CONTENT_LEN)).unwrap_or(u16::MAX);
    let [id_hi, id_lo] = request_id.to_be_bytes();
    let [len_hi, len_lo] = len.to_be_bytes();
    let padding = padding(content_len) as u8;
    [
        VERSION_1,
        u8::from(kind),
        id_hi,
        id_lo,
        len_hi,
        len_lo,
        padding,
        0,
    ]
}

/// The padding after `content_len` bytes of content.
pub fn padding(content_len: usize) -> usize {
    (8 - content_len % 8) % 8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> Vec<Record> {
        let mut decoder = Decoder::new();
        decoder.feed(bytes);
        let mut records = Vec::new();
        while let Some(record) = decoder.next_record().unwrap() {
            records.push(record);
        }
        assert!(decoder.is_empty());
        records
    }

    #[test]
    fn a_record_decodes_from_hand_written_bytes() {
        let bytes = [1, 4, 0, 7, 0, 3, 5, 0, b'a', b'b', b'c', 0, 0, 0, 0, 0];
        let (record, used) = decode_record(&bytes).unwrap().unwrap();
        assert_eq!(used, 16);
        assert_eq!(record.kind, RecordType::Params);
        assert_eq!(record.request_id, 7);
        assert_eq!(record.content, b"abc");
    }

    #[test]
    fn records_round_trip_with_padding_to_eight_bytes() {
        for len in [0, 1, 7, 8, 9, 100, MAX_CONTENT_LEN] {
            let content: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = Vec::new();
            encode_record(&mut out, RecordType::Stdout, 513, &content);
            assert_eq!(out.len() % 8, 0, "len {len}");
            let records = decode_all(&out);
            assert_eq!(records.len(), 1);
            assert_eq!(records[0].request_id, 513);
            assert_eq!(records[0].content, content);
        }
    }

    #[test]
    fn a_truncated_header_or_content_needs_more_bytes() {
        let mut out = Vec::new();
        encode_record(&mut out, RecordType::Stdin, 1, b"hello");
        for cut in 0..out.len() {
            assert_eq!(decode_record(&out[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(decode_record(&out).unwrap().is_some());
    }

    #[test]
    fn the_decoder_assembles_records_fed_one_byte_at_a_time() {
        let mut out = Vec::new();
        encode_record(&mut out, RecordType::Params, 1, b"first");
        encode_record(&mut out, RecordType::Stdin, 1, b"second");
        let mut decoder = Decoder::new();
        let mut records = Vec::new();
        for byte in &out {
            decoder.feed(std::slice::from_ref(byte));
            while let Some(record) = decoder.next_record().unwrap() {
                records.push(record.content);
            }
        }
        assert_eq!(records, [b"first".to_vec(), b"second".to_vec()]);
        assert!(decoder.is_empty());
    }

    #[test]
    fn the_decoder_counts_the_bytes_it_holds_until_they_are_records() {
        let mut out = Vec::new();
        encode_record(&mut out, RecordType::Params, 1, b"abc");
        let mut decoder = Decoder::new();
        decoder.feed(&out[..10]);
        assert_eq!(decoder.buffered(), 10);
        assert_eq!(decoder.next_record(), Ok(None));
        decoder.feed(&out[10..]);
        assert_eq!(decoder.buffered(), out.len());
        assert!(decoder.next_record().unwrap().is_some());
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn a_wrong_version_is_an_error_from_the_first_byte() {
        assert_eq!(decode_record(&[2]), Err(CodecError::UnsupportedVersion(2)));
        let bytes = [0, 1, 0, 1, 0, 0, 0, 0];
        assert_eq!(
            decode_record(&bytes),
            Err(CodecError::UnsupportedVersion(0))
        );
    }

    #[test]
    fn the_largest_declared_length_only_waits_for_more_bytes() {
        let bytes = [1, 5, 0, 1, 0xff, 0xff, 0xff, 0];
        assert_eq!(decode_record(&bytes), Ok(None));
    }

    #[test]
    fn output_longer_than_one_record_is_split_at_65535_bytes() {
        let data = vec![b'x'; 2 * MAX_CONTENT_LEN + 10];
        let mut out = Vec::new();
        encode_stream(&mut out, RecordType::Stdout, 1, &data);
        let sizes: Vec<usize> = decode_all(&out).iter().map(|r| r.content.len()).collect();
        assert_eq!(sizes, [MAX_CONTENT_LEN, MAX_CONTENT_LEN, 10, 0]);
    }

    #[test]
    fn an_empty_stream_is_one_empty_record() {
        let mut out = Vec::new();
        encode_stream(&mut out, RecordType::Stdout, 1, b"");
        assert_eq!(out, [1, 6, 0, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn end_request_carries_app_and_protocol_status() {
        let mut out = Vec::new();
        encode_end_request(&mut out, 3, 0x0102_0304, ProtocolStatus::UnknownRole);
        assert_eq!(out, [1, 3, 0, 3, 0, 8, 0, 0, 1, 2, 3, 4, 3, 0, 0, 0]);
    }

    #[test]
    fn unknown_type_names_the_type_it_did_not_understand() {
        let mut out = Vec::new();
        encode_unknown_type(&mut out, RecordType::Other(99));
        assert_eq!(out, [1, 11, 0, 0, 0, 8, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn get_values_result_round_trips_its_pairs() {
        let mut out = Vec::new();
        encode_get_values_result(&mut out, &[(b"FCGI_MPXS_CONNS", b"0")]);
        let records = decode_all(&out);
        assert_eq!(records[0].kind, RecordType::GetValuesResult);
        assert_eq!(records[0].request_id, MANAGEMENT_ID);
        let pairs = decode_params(&records[0].content, &Limits::default()).unwrap();
        assert_eq!(pairs, [(b"FCGI_MPXS_CONNS".to_vec(), b"0".to_vec())]);
    }

    #[test]
    fn begin_request_decodes_role_and_keep_conn() {
        let begin = decode_begin_request(&[0, 1, 1, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            begin,
            BeginRequest {
                role: ROLE_RESPONDER,
                keep_conn: true
            }
        );
        assert!(
            !decode_begin_request(&[0, 3, 0, 0, 0, 0, 0, 0])
                .unwrap()
                .keep_conn
        );
        assert_eq!(
            decode_begin_request(&[0, 1, 1]),
            Err(CodecError::MalformedBeginRequest)
        );
    }

    #[test]
    fn params_with_one_and_four_byte_lengths_round_trip() {
        let long = vec![b'v'; 300];
        let pairs: [(&[u8], &[u8]); 3] = [(b"A", b"1"), (b"LONG", &long), (b"", b"")];
        let mut buf = Vec::new();
        encode_pairs(&mut buf, &pairs);
        assert_eq!(&buf[..4], [1, 1, b'A', b'1']);
        assert_eq!(&buf[4..9], [4, 0x80, 0, 1, 44]);
        let decoded = decode_params(&buf, &Limits::default()).unwrap();
        let expected: Vec<_> = pairs
            .iter()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(decoded, expected);
    }

    #[test]
    fn a_non_utf8_value_keeps_the_params_after_it() {
        let mut buf = Vec::new();
        encode_pairs(&mut buf, &[(b"BAD", b"\xff\xfe"), (b"AFTER", b"seen")]);
        let decoded = decode_params(&buf, &Limits::default()).unwrap();
        assert_eq!(decoded[0].1, b"\xff\xfe");
        assert_eq!(decoded[1], (b"AFTER".to_vec(), b"seen".to_vec()));
    }

    #[test]
    fn a_length_past_the_end_of_the_data_is_an_error_not_an_allocation() {
        let limits = Limits::default();
        let huge = [0xff, 0xff, 0xff, 0xff, 1, b'a'];
        assert_eq!(
            decode_params(&huge, &limits),
            Err(CodecError::TruncatedPair)
        );
        assert_eq!(
            decode_params(&[5, 1, b'a'], &limits),
            Err(CodecError::TruncatedPair)
        );
        assert_eq!(
            decode_params(&[0x80, 0], &limits),
            Err(CodecError::TruncatedPair)
        );
        assert_eq!(decode_params(&[3], &limits), Err(CodecError::TruncatedPair));
    }

    #[test]
    fn ten_thousand_params_decode_within_a_raised_limit() {
        let names: Vec<String> = (0..10_000).map(|i| format!("P{i}")).collect();
        let pairs: Vec<(&[u8], &[u8])> = names.iter().map(|n| (n.as_bytes(), &b"v"[..])).collect();
        let mut buf = Vec::new();
        encode_pairs(&mut buf, &pairs);
        let limits = Limits {
            max_params_count: 10_000,
            ..Limits::default()
        };
        let decoded = decode_params(&buf, &limits).unwrap();
        assert_eq!(decoded.len(), 10_000);
        assert_eq!(decoded[9_999].0, b"P9999");
    }

    #[test]
    fn params_over_the_count_or_byte_limit_are_refused() {
        let mut buf = Vec::new();
        encode_pairs(&mut buf, &[(b"A", b"1"), (b"B", b"2"), (b"C", b"3")]);
        let few = Limits {
            max_params_count: 2,
            ..Limits::default()
        };
        assert_eq!(
            decode_params(&buf, &few),
            Err(CodecError::TooManyParams { limit: 2 })
        );
        let small = Limits {
            max_params_bytes: 11,
            ..Limits::default()
        };
        assert_eq!(
            decode_params(&buf, &small),
            Err(CodecError::ParamsTooLarge { limit: 11 })
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders() {
        // A cheap deterministic fuzz: every record and pair decoder over pseudo-random
        // buffers, with the version byte forced valid half the time.
        let mut state: u32 = 0x1234_5678;
        let limits = Limits::default();
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let len = (state % 40) as usize;
            let mut buf: Vec<u8> = (0..len)
                .map(|i| (state.rotate_left(i as u32) % 256) as u8)
                .collect();
            if state % 2 == 0 {
                if let Some(first) = buf.first_mut() {
                    *first = VERSION_1;
                }
            }
            let _ = decode_record(&buf);
            let _ = decode_params(&buf, &limits);
            let _ = decode_begin_request(&buf);
        }
    }
}
