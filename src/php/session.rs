//! A reader for the contents of PHP session files, as PHP's `files` save handler writes
//! them, so that the admin's login can be checked without running PHP.
//!
//! Both serialize handlers are understood: `php` (the default: `name|<value>name|<value>`)
//! and `php_serialize` (one serialized array `a:N:{...}` whose keys are the session keys).
//! [`parse_session`] tells them apart from the content; [`parse_session_as`] takes the
//! handler from the caller. Values follow `unserialize()`'s grammar: `N;`, `b:1;`, `i:-12;`,
//! `d:0.5;` (and `NAN`, `INF`, `-INF`), `s:LEN:"bytes";` with LEN in bytes, and arrays.
//! Objects (`O:` and `C:`), enums (`E:`) and references (`r:`, `R:`) are parsed past and
//! kept opaque: never looked into, never followed, never truthy.
//!
//! Deny by default: anything malformed makes the whole file an error, since a file PHP
//! itself could not read is a logged-out session. Checked as `unserialize()` checks them:
//! class and enum names, references pointing back at an earlier value (and `r:` at an
//! object). Some things PHP accepts are refused here (the never-written `S:` strings,
//! integers out of range, which PHP clamps, and object counts that are not digits); what
//! cannot be checked without PHP's classes (whether a class exists or accepts its data) is
//! accepted. Checked against PHP 8.2's `session_decode()` on mutated real files: nothing it
//! refuses is accepted here. Never panics, whatever the input:
//! declared lengths are checked against what is left before use (`s:999999999:` allocates
//! nothing), declared element counts are never preallocated, nesting is limited to
//! [`MAX_DEPTH`], and every step consumes input, so time is linear. Errors say where and
//! what, never quoting the file's bytes. Pure: no I/O.

use std::fmt;
use std::str::FromStr;

use super::{Entries, float_to_string, integer_key};

/// How deeply arrays and objects may nest. PHP allows more (4096 by default), but a
/// session deeper than this is no login session: it is refused.
pub const MAX_DEPTH: usize = 64;

/// A value read from a session file.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// The bytes as stored: PHP strings need not be UTF-8.
    Str(Vec<u8>),
    /// An ordered map in file order, each key at most once (a repeated key keeps its first
    /// place and takes its last value, as `unserialize()` does).
    Array(Vec<(SessionKey, SessionValue)>),
    /// An object or enum case, by class name, with its contents skipped.
    Object(String),
    /// A reference to another value in the file (`r:N;`, `R:N;`), not followed.
    Reference,
}

/// An array key. As in PHP, a string key that spells a canonical decimal integer
/// (`"5"`, not `"05"`) is turned into an integer key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SessionKey {
    Int(i64),
    Str(Vec<u8>),
}

/// PHP's `session.serialize_handler`: how the session's keys are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// `name|<value>` repeated; names cannot contain `|`.
    Php,
    /// One serialized array holding the whole `$_SESSION`.
    PhpSerialize,
}

/// The contents of a session file: `$_SESSION`, as PHP would rebuild it.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The layout the file was read with.
    pub handler: Handler,
    /// The top-level keys in file order, each at most once. Integer keys (possible with
    /// `php_serialize`) appear in their decimal spelling.
    pub entries: Vec<(Vec<u8>, SessionValue)>,
}

/// Why a session file was refused. Says where and what, never quoting the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionError {
    /// Byte offset in the file where reading stopped.
    pub offset: usize,
    pub kind: SessionErrorKind,
}

/// What was wrong in a session file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionErrorKind {
    /// The file ends in the middle of a value.
    Truncated,
    /// Another byte was found where this was expected.
    Expected(&'static str),
    /// A type letter `unserialize()` does not know.
    UnknownType,
    /// A number does not fit in 64 bits.
    NumberOutOfRange,
    /// A declared byte length runs past the end of the file.
    LengthPastEnd,
    /// Arrays or objects nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A `php`-handler entry has no `|` after its name.
    MissingDelimiter,
    /// Bytes are left after a `php_serialize` array.
    TrailingData,
    /// An `r:`/`R:` reference to no earlier value, or an `r:` to one that is not an
    /// object.
    BadReference,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed session data at byte {}: ", self.offset)?;
        match self.kind {
            SessionErrorKind::Truncated => f.write_str("the data ends in the middle of a value"),
            SessionErrorKind::Expected(what) => write!(f, "expected {what}"),
            SessionErrorKind::UnknownType => f.write_str("unknown value type"),
            SessionErrorKind::NumberOutOfRange => f.write_str("number out of range"),
            SessionErrorKind::LengthPastEnd => {
                f.write_str("declared length runs past the end of the data")
            }
            SessionErrorKind::TooDeep => {
                write!(f, "values nested deeper than {MAX_DEPTH} levels")
            }
            SessionErrorKind::MissingDelimiter => f.write_str("session key without '|'"),
            SessionErrorKind::TrailingData => f.write_str("data after the session array"),
            SessionErrorKind::BadReference => f.write_str("reference to no earlier value"),
        }
    }
}

impl std::error::Error for SessionError {}

/// Reads a session file's contents, telling the handler from the content: data that
/// starts like a serialized array (`a:` digits `:{`) is read as `php_serialize`, anything
/// else as `php`.
///
/// Why data that starts like an array is never retried as `php`: a damaged
/// `php_serialize` file could otherwise be misread as `php` entries split at a `|` inside
/// a string value, and a `php` session whose first key starts with `a:1:{` does not occur.
pub fn parse_session(bytes: &[u8]) -> Result<Session, SessionError> {
    parse_session_as(bytes, detect_handler(bytes))
}

/// Reads a session file's contents with a known handler (PHP's
/// `session.serialize_handler`).
pub fn parse_session_as(bytes: &[u8], handler: Handler) -> Result<Session, SessionError> {
    let mut parser = Parser {
        input: bytes,
        pos: 0,
        slots: Vec::new(),
        slots_unknown: false,
    };
    let entries = match handler {
        Handler::Php => parser.php_entries()?,
        Handler::PhpSerialize => parser.php_serialize_entries()?,
    };
    Ok(Session { handler, entries })
}

/// `a:` digits `:{` at the very start.
fn detect_handler(bytes: &[u8]) -> Handler {
    let Some(rest) = bytes.strip_prefix(b"a:") else {
        return Handler::Php;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > 0 && rest[digits..].starts_with(b":{") {
        Handler::PhpSerialize
    } else {
        Handler::Php
    }
}

impl Session {
    /// The value of `$_SESSION[key]`, top level only. `None` when the key is absent.
    pub fn get(&self, key: &str) -> Option<&SessionValue> {
        self.entries
            .iter()
            .find(|(name, _)| name == key.as_bytes())
            .map(|(_, value)| value)
    }
}

impl SessionValue {
    /// The element under `key` of an array (`"5"` finds the integer key 5, as in PHP);
    /// `None` for anything but an array. Chain it for nested keys:
    /// `session.get("user").and_then(|u| u.get("role"))`.
    pub fn get(&self, key: &str) -> Option<&SessionValue> {
        let SessionValue::Array(items) = self else {
            return None;
        };
        let key = SessionKey::from_bytes(key.as_bytes());
        items.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// PHP truthiness: `""`, `"0"`, `0`, `0.0`, `false`, `null` and `[]` are false.
    /// Objects and references are false too, unlike PHP: their contents are not read, so
    /// they are denied by default.
    pub fn is_truthy(&self) -> bool {
        match self {
            SessionValue::Null | SessionValue::Object(_) | SessionValue::Reference => false,
            SessionValue::Bool(b) => *b,
            SessionValue::Int(i) => *i != 0,
            SessionValue::Float(f) => *f != 0.0,
            SessionValue::Str(s) => !(s.is_empty() || s == b"0"),
            SessionValue::Array(items) => !items.is_empty(),
        }
    }

    /// Whether the value, converted to a string as PHP's `(string)` would, is exactly
    /// `expected`: strings byte for byte, integers in decimal, floats as `echo` prints
    /// them (`1.5`, `1.0E+25`), `true` as `"1"` and `false` as `""`. `null`, arrays,
    /// objects and references match nothing.
    pub fn matches(&self, expected: &str) -> bool {
        match self {
            SessionValue::Str(s) => s == expected.as_bytes(),
            SessionValue::Int(i) => i.to_string() == expected,
            SessionValue::Float(f) => float_to_string(*f) == expected,
            SessionValue::Bool(b) => expected == if *b { "1" } else { "" },
            SessionValue::Null
            | SessionValue::Array(_)
            | SessionValue::Object(_)
            | SessionValue::Reference => false,
        }
    }

    /// The type's name for logs and reports: `"null"`, `"bool"`, `"int"`, `"float"`,
    /// `"string"`, `"array"`, `"object"` or `"reference"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            SessionValue::Null => "null",
            SessionValue::Bool(_) => "bool",
            SessionValue::Int(_) => "int",
            SessionValue::Float(_) => "float",
            SessionValue::Str(_) => "string",
            SessionValue::Array(_) => "array",
            SessionValue::Object(_) => "object",
            SessionValue::Reference => "reference",
        }
    }
}

impl SessionKey {
    /// PHP's key rule ([`integer_key`]): `"5"` is the integer key 5, `"05"` a string.
    fn from_bytes(bytes: &[u8]) -> SessionKey {
        match integer_key(bytes) {
            Some(i) => SessionKey::Int(i),
            None => SessionKey::Str(bytes.to_vec()),
        }
    }

    /// The key as PHP would print it.
    fn into_bytes(self) -> Vec<u8> {
        match self {
            SessionKey::Int(i) => i.to_string().into_bytes(),
            SessionKey::Str(s) => s,
        }
    }
}

/// One line per top-level key, in file order: the key, a tab, and the value's type, with
/// the byte length of strings, the element count of arrays and the class of objects.
/// Values are never shown. Keys that are not plain printable UTF-8 (or that hold
/// whitespace, quotes or backslashes, or are empty) are quoted and escaped, so each line
/// splits unambiguously at its first tab. For example (`→` is the tab):
///
/// ```text
/// admin_logged_in→bool
/// admin_user→string, 4 bytes
/// cart→array, 1 element
/// "bad\xffkey"→object stdClass
/// ```
pub fn session_keys_report(session: &Session) -> String {
    let mut out = String::new();
    for (key, value) in &session.entries {
        out.push_str(&display_key(key));
        out.push('\t');
        out.push_str(value.type_name());
        match value {
            SessionValue::Str(s) => out.push_str(&count(s.len(), "byte")),
            SessionValue::Array(items) => out.push_str(&count(items.len(), "element")),
            SessionValue::Object(class) => {
                out.push(' ');
                out.push_str(&display_key(class.as_bytes()));
            }
            _ => {}
        }
        out.push('\n');
    }
    out
}

/// `", 1 byte"`, `", 4 bytes"`.
fn count(n: usize, noun: &str) -> String {
    let plural = if n == 1 { "" } else { "s" };
    format!(", {n} {noun}{plural}")
}

/// A key as is when plain, else in quotes with `\"`, `\\`, `\n`, `\u{..}` and `\xNN`
/// (for bytes that are not UTF-8) escapes.
fn display_key(key: &[u8]) -> String {
    let plain = !key.is_empty()
        && std::str::from_utf8(key).is_ok_and(|s| {
            s.chars()
                .all(|c| !(c.is_control() || c.is_whitespace() || c == '"' || c == '\\'))
        });
    if plain {
        return String::from_utf8_lossy(key).into_owned();
    }
    let mut out = String::from("\"");
    for chunk in key.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '"' || c == '\\' {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------------
// The parser
// ---------------------------------------------------------------------------------------

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    /// The values `unserialize()` numbers for `r:N` and `R:N` (every value but an `R:`
    /// one; keys are not values), each with whether it is an object: `r:` may only
    /// point at an object.
    slots: Vec<bool>,
    /// Set by a `C:` object, whose class numbers values of its own that cannot be seen
    /// from here: references after it are only checked to be from 1.
    slots_unknown: bool,
}

impl<'a> Parser<'a> {
    fn error(&self, kind: SessionErrorKind) -> SessionError {
        error_at(self.pos, kind)
    }

    /// `Expected(what)` here, or `Truncated` at the end of the input.
    fn unexpected(&self, what: &'static str) -> SessionError {
        if self.pos >= self.input.len() {
            self.error(SessionErrorKind::Truncated)
        } else {
            self.error(SessionErrorKind::Expected(what))
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), SessionError> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    /// `[0-9]*`
    fn digits(&mut self) -> &'a [u8] {
        let start = self.pos;
        let rest = self.input.get(start..).unwrap_or_default();
        let count = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        self.pos += count;
        &rest[..count]
    }

    /// `[+-]?`
    fn sign(&mut self) {
        if !self.eat(b'-') {
            self.eat(b'+');
        }
    }

    /// The bytes from `start` to here, which the grammar has checked, as a number; `kind`
    /// at `start` when they do not fit in `T`.
    fn parse_since<T: FromStr>(
        &self,
        start: usize,
        kind: SessionErrorKind,
    ) -> Result<T, SessionError> {
        ascii(&self.input[start..self.pos])
            .parse()
            .map_err(|_| error_at(start, kind))
    }

    /// `[0-9]+`, a length or a count.
    fn unsigned(&mut self) -> Result<usize, SessionError> {
        let start = self.pos;
        if self.digits().is_empty() {
            return Err(self.unexpected("a digit"));
        }
        self.parse_since(start, SessionErrorKind::NumberOutOfRange)
    }

    /// `[+-]?[0-9]+`
    fn integer(&mut self) -> Result<i64, SessionError> {
        let start = self.pos;
        self.sign();
        if self.digits().is_empty() {
            return Err(self.unexpected("a digit"));
        }
        self.parse_since(start, SessionErrorKind::NumberOutOfRange)
    }

    /// `NAN`, `INF`, `-INF`, or `[+-]?` digits with an optional `.` and fraction (at least
    /// one digit on either side) and an optional `[eE][+-]?[0-9]+` exponent.
    fn float(&mut self) -> Result<f64, SessionError> {
        let rest = &self.input[self.pos..];
        for (text, value) in [
            (&b"NAN"[..], f64::NAN),
            (b"INF", f64::INFINITY),
            (b"-INF", f64::NEG_INFINITY),
        ] {
            if rest.starts_with(text) {
                self.pos += text.len();
                return Ok(value);
            }
        }
        let start = self.pos;
        self.sign();
        let mut mantissa_digits = self.digits().len();
        if self.eat(b'.') {
            mantissa_digits += self.digits().len();
        }
        if mantissa_digits == 0 {
            return Err(self.unexpected("a number"));
        }
        if self.eat(b'e') || self.eat(b'E') {
            self.sign();
            if self.digits().is_empty() {
                return Err(self.unexpected("an exponent"));
            }
        }
        // The grammar above is a subset of what Rust's parser accepts, so this never
        // fails; the error is kept rather than an unwrap.
        self.parse_since(start, SessionErrorKind::Expected("a number"))
    }

    /// Exactly `len` bytes, checked against what is left before anything is taken.
    fn take(&mut self, len: usize) -> Result<&'a [u8], SessionError> {
        let rest = &self.input[self.pos..];
        if len > rest.len() {
            return Err(self.error(SessionErrorKind::LengthPastEnd));
        }
        self.pos += len;
        Ok(&rest[..len])
    }

    /// `LEN:"bytes"`: the bytes are taken by count, never by looking for the closing
    /// quote, since they may hold quotes themselves.
    fn counted(&mut self) -> Result<&'a [u8], SessionError> {
        let len = self.unsigned()?;
        self.expect(b':', "':' after a length")?;
        self.expect(b'"', "'\"' before a string")?;
        let bytes = self.take(len)?;
        self.expect(b'"', "'\"' after a string of the declared length")?;
        Ok(bytes)
    }

    /// `LEN:"Class"`, with a name PHP would accept. Bytes above 0x7F are allowed; the
    /// name is only shown, so it is kept lossily.
    fn class_name(&mut self) -> Result<String, SessionError> {
        let at = self.pos;
        let name = self.counted()?;
        if !valid_name(name) {
            return Err(error_at(at, SessionErrorKind::Expected("a class name")));
        }
        Ok(String::from_utf8_lossy(name).into_owned())
    }

    /// `name|value` entries up to the end of the input.
    fn php_entries(&mut self) -> Result<Vec<(Vec<u8>, SessionValue)>, SessionError> {
        let mut entries = Entries::default();
        while self.pos < self.input.len() {
            let rest = &self.input[self.pos..];
            let Some(bar) = rest.iter().position(|&b| b == b'|') else {
                return Err(self.error(SessionErrorKind::MissingDelimiter));
            };
            let name = &rest[..bar];
            self.pos += bar + 1;
            let value = self.value(0)?;
            // Names are strings here, even numeric ones: PHP sets `$_SESSION["5"]`.
            entries.insert(SessionKey::Str(name.to_vec()), value);
        }
        Ok(entries
            .into_items()
            .into_iter()
            .map(|(k, v)| (k.into_bytes(), v))
            .collect())
    }

    /// One array that must span the whole input.
    fn php_serialize_entries(&mut self) -> Result<Vec<(Vec<u8>, SessionValue)>, SessionError> {
        if self.peek() != Some(b'a') {
            return Err(self.unexpected("a serialized array"));
        }
        let SessionValue::Array(items) = self.value(0)? else {
            return Err(self.error(SessionErrorKind::Expected("a serialized array")));
        };
        if self.pos != self.input.len() {
            return Err(self.error(SessionErrorKind::TrailingData));
        }
        Ok(items
            .into_iter()
            .map(|(k, v)| (k.into_bytes(), v))
            .collect())
    }

    /// One serialized value; `depth` is how many arrays and objects enclose it.
    fn value(&mut self, depth: usize) -> Result<SessionValue, SessionError> {
        let start = self.pos;
        let Some(tag) = self.peek() else {
            return Err(self.error(SessionErrorKind::Truncated));
        };
        self.pos += 1;
        // Numbered before its contents, as `unserialize()` does.
        let slot = self.slots.len();
        if tag != b'R' {
            self.slots.push(false);
        }
        let value = match tag {
            b'N' => SessionValue::Null,
            b'b' => {
                self.colon()?;
                let value = match self.peek() {
                    Some(b'0') => false,
                    Some(b'1') => true,
                    _ => return Err(self.unexpected("0 or 1")),
                };
                self.pos += 1;
                SessionValue::Bool(value)
            }
            b'i' => {
                self.colon()?;
                SessionValue::Int(self.integer()?)
            }
            b'd' => {
                self.colon()?;
                SessionValue::Float(self.float()?)
            }
            b's' => {
                self.colon()?;
                SessionValue::Str(self.counted()?.to_vec())
            }
            b'a' => {
                self.colon()?;
                self.enter(depth)?;
                let count = self.unsigned()?;
                self.expect(b':', "':' after the element count")?;
                self.expect(b'{', "'{'")?;
                let items = self.elements(count, depth + 1)?;
                self.expect(b'}', "'}' after the declared elements")?;
                // Arrays and objects end with `}`, not `;`.
                return Ok(SessionValue::Array(items));
            }
            b'O' => {
                self.colon()?;
                self.enter(depth)?;
                let class = self.class_name()?;
                self.expect(b':', "':' after the class name")?;
                let count = self.unsigned()?;
                self.expect(b':', "':' after the property count")?;
                self.expect(b'{', "'{'")?;
                // PHP creates the object before its properties, which may point back at it.
                self.slots[slot] = true;
                // Parsed only to find where the object ends.
                self.elements(count, depth + 1)?;
                self.expect(b'}', "'}' after the declared properties")?;
                return Ok(SessionValue::Object(class));
            }
            b'C' => {
                self.colon()?;
                let class = self.class_name()?;
                self.expect(b':', "':' after the class name")?;
                let len = self.unsigned()?;
                self.expect(b':', "':' after the data length")?;
                self.expect(b'{', "'{'")?;
                self.take(len)?;
                self.expect(b'}', "'}' after data of the declared length")?;
                self.slots[slot] = true;
                self.slots_unknown = true;
                return Ok(SessionValue::Object(class));
            }
            b'E' => {
                self.colon()?;
                let at = self.pos;
                let name = self.counted()?;
                let enum_case = name
                    .iter()
                    .position(|&b| b == b':')
                    .map(|colon| (&name[..colon], &name[colon + 1..]));
                match enum_case {
                    Some((class, case)) if valid_name(class) && valid_name(case) => {
                        self.slots[slot] = true;
                        SessionValue::Object(String::from_utf8_lossy(class).into_owned())
                    }
                    _ => {
                        return Err(error_at(
                            at,
                            SessionErrorKind::Expected("an enum as Class:Case"),
                        ));
                    }
                }
            }
            b'r' | b'R' => {
                self.colon()?;
                let at = self.pos;
                let number = self.unsigned()?;
                // `r:` copies an earlier object (and is one); `R:` makes a PHP reference
                // to any earlier value. Numbers are 1-based; neither may point at itself.
                let target = number.checked_sub(1).filter(|&target| {
                    self.slots_unknown
                        || if tag == b'r' {
                            target < slot && self.slots[target]
                        } else {
                            target < slot
                        }
                });
                if target.is_none() {
                    return Err(error_at(at, SessionErrorKind::BadReference));
                }
                if tag == b'r' {
                    self.slots[slot] = true;
                }
                SessionValue::Reference
            }
            _ => {
                self.pos = start;
                return Err(self.error(SessionErrorKind::UnknownType));
            }
        };
        self.expect(b';', "';' after a value")?;
        Ok(value)
    }

    fn colon(&mut self) -> Result<(), SessionError> {
        self.expect(b':', "':' after the type letter")
    }

    /// An array key or property name: `i:N;` or `s:LEN:"bytes";`.
    fn key(&mut self) -> Result<SessionKey, SessionError> {
        let key = match self.peek() {
            Some(b'i') => {
                self.pos += 1;
                self.colon()?;
                SessionKey::Int(self.integer()?)
            }
            Some(b's') => {
                self.pos += 1;
                self.colon()?;
                SessionKey::from_bytes(self.counted()?)
            }
            _ => return Err(self.unexpected("an i: or s: key")),
        };
        self.expect(b';', "';' after a key")?;
        Ok(key)
    }

    fn enter(&self, depth: usize) -> Result<(), SessionError> {
        if depth >= MAX_DEPTH {
            Err(self.error(SessionErrorKind::TooDeep))
        } else {
            Ok(())
        }
    }

    /// `count` key-value pairs. Nothing is preallocated from `count`: a huge declared
    /// count simply runs into the end of the input.
    fn elements(
        &mut self,
        count: usize,
        depth: usize,
    ) -> Result<Vec<(SessionKey, SessionValue)>, SessionError> {
        let mut entries = Entries::default();
        for _ in 0..count {
            let key = self.key()?;
            let value = self.value(depth)?;
            entries.insert(key, value);
        }
        Ok(entries.into_items())
    }
}

/// An error found at byte `offset`.
fn error_at(offset: usize, kind: SessionErrorKind) -> SessionError {
    SessionError { offset, kind }
}

/// Bytes the grammar has already checked are ASCII digits, signs, dots and exponents.
fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// PHP's `zend_is_valid_class_name`: `A-Z a-z 0-9 _ \` and bytes above 0x7F, which
/// `unserialize()` checks before looking the class up. Not empty either.
fn valid_name(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'\\' || b >= 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by PHP 8.2 with `session.serialize_handler=php`.
    const PHP_FILE: &[u8] = br#"admin_logged_in|b:1;admin_user|s:8:"bo"ss;|}";f|d:1.0E+25;cart|a:3:{i:0;i:1;s:1:"x";O:8:"stdClass":0:{}i:5;i:2;}o|O:11:"ArrayObject":4:{i:0;i:0;i:1;a:2:{i:0;i:1;i:1;i:2;}i:2;a:0:{}i:3;N;}"#;

    /// The same session written by PHP 8.2 with `session.serialize_handler=php_serialize`.
    const PHP_SERIALIZE_FILE: &[u8] = br#"a:6:{s:15:"admin_logged_in";b:1;s:10:"admin_user";s:8:"bo"ss;|}";i:5;d:1.5;s:1:"f";d:1.0E+25;s:4:"cart";a:3:{i:0;i:1;s:1:"x";O:8:"stdClass":0:{}i:5;i:2;}s:1:"o";O:11:"ArrayObject":4:{i:0;i:0;i:1;a:2:{i:0;i:1;i:1;i:2;}i:2;a:0:{}i:3;N;}}"#;

    fn str(s: &[u8]) -> SessionValue {
        SessionValue::Str(s.to_vec())
    }

    fn skey(s: &str) -> SessionKey {
        SessionKey::Str(s.as_bytes().to_vec())
    }

    /// The one value of a `php` session `x|<value>`.
    fn value(serialized: &str) -> Result<SessionValue, SessionError> {
        let session = parse_session(format!("x|{serialized}").as_bytes())?;
        assert_eq!(session.entries.len(), 1);
        Ok(session.entries[0].1.clone())
    }

    fn keys(session: &Session) -> Vec<&[u8]> {
        session.entries.iter().map(|(k, _)| k.as_slice()).collect()
    }

    #[test]
    fn a_php_handler_file_written_by_php_is_read() {
        let session = parse_session(PHP_FILE).unwrap();
        assert_eq!(session.handler, Handler::Php);
        let expected: Vec<&[u8]> = vec![b"admin_logged_in", b"admin_user", b"f", b"cart", b"o"];
        assert_eq!(keys(&session), expected);
        assert_eq!(
            session.get("admin_logged_in"),
            Some(&SessionValue::Bool(true))
        );
        assert_eq!(session.get("admin_user"), Some(&str(br#"bo"ss;|}"#)));
        assert_eq!(session.get("f"), Some(&SessionValue::Float(1.0e25)));
        assert_eq!(
            session.get("cart"),
            Some(&SessionValue::Array(vec![
                (SessionKey::Int(0), SessionValue::Int(1)),
                (skey("x"), SessionValue::Object("stdClass".into())),
                (SessionKey::Int(5), SessionValue::Int(2)),
            ]))
        );
        assert_eq!(
            session.get("o"),
            Some(&SessionValue::Object("ArrayObject".into()))
        );
        assert_eq!(session.get("missing"), None);
    }

    #[test]
    fn a_php_serialize_handler_file_written_by_php_is_read() {
        let session = parse_session(PHP_SERIALIZE_FILE).unwrap();
        assert_eq!(session.handler, Handler::PhpSerialize);
        let expected: Vec<&[u8]> =
            vec![b"admin_logged_in", b"admin_user", b"5", b"f", b"cart", b"o"];
        assert_eq!(keys(&session), expected);
        let php = parse_session(PHP_FILE).unwrap();
        for key in ["admin_logged_in", "admin_user", "f", "cart", "o"] {
            assert_eq!(session.get(key), php.get(key), "{key}");
        }
        assert_eq!(session.get("5"), Some(&SessionValue::Float(1.5)));
    }

    #[test]
    fn an_empty_file_is_an_empty_php_session() {
        let session = parse_session(b"").unwrap();
        assert_eq!(session.handler, Handler::Php);
        assert!(session.entries.is_empty());
        let session = parse_session(b"a:0:{}").unwrap();
        assert_eq!(session.handler, Handler::PhpSerialize);
        assert!(session.entries.is_empty());
    }

    #[test]
    fn every_scalar_type_is_read() {
        assert_eq!(value("N;").unwrap(), SessionValue::Null);
        assert_eq!(value("b:0;").unwrap(), SessionValue::Bool(false));
        assert_eq!(value("b:1;").unwrap(), SessionValue::Bool(true));
        assert_eq!(value("i:-12;").unwrap(), SessionValue::Int(-12));
        assert_eq!(value("i:+7;").unwrap(), SessionValue::Int(7));
        assert_eq!(
            value("i:-9223372036854775808;").unwrap(),
            SessionValue::Int(i64::MIN)
        );
        assert_eq!(value("d:0.5;").unwrap(), SessionValue::Float(0.5));
        assert_eq!(value("d:-1.5E-7;").unwrap(), SessionValue::Float(-1.5e-7));
        assert_eq!(value("d:1.;").unwrap(), SessionValue::Float(1.0));
        assert_eq!(value("d:.5;").unwrap(), SessionValue::Float(0.5));
        assert_eq!(value("d:+1e+5;").unwrap(), SessionValue::Float(1e5));
        assert_eq!(value("d:3;").unwrap(), SessionValue::Float(3.0));
        assert_eq!(value("d:INF;").unwrap(), SessionValue::Float(f64::INFINITY));
        assert_eq!(
            value("d:-INF;").unwrap(),
            SessionValue::Float(f64::NEG_INFINITY)
        );
        assert!(matches!(value("d:NAN;").unwrap(), SessionValue::Float(f) if f.is_nan()));
        assert_eq!(value("s:0:\"\";").unwrap(), str(b""));
        assert_eq!(value("s:3:\"abc\";").unwrap(), str(b"abc"));
        // LEN counts bytes, not characters: "é" is two.
        assert_eq!(value("s:2:\"é\";").unwrap(), str("é".as_bytes()));
    }

    #[test]
    fn strings_are_taken_by_length_whatever_bytes_they_hold() {
        let tricky: &[u8] = b"a|b\"c;d}e\";s:1:\"x\xff\x00\n";
        let mut file = format!("x|s:{}:\"", tricky.len()).into_bytes();
        file.extend_from_slice(tricky);
        file.extend_from_slice(b"\";y|i:1;");
        let session = parse_session(&file).unwrap();
        assert_eq!(session.get("x"), Some(&str(tricky)));
        assert_eq!(session.get("y"), Some(&SessionValue::Int(1)));
    }

    #[test]
    fn php_names_end_at_the_first_bar_and_may_hold_any_other_byte() {
        let session = parse_session(b"we\xffird name;\"}|i:1;|i:2;").unwrap();
        let expected: Vec<&[u8]> = vec![b"we\xffird name;\"}", b""];
        assert_eq!(keys(&session), expected);
    }

    #[test]
    fn nested_arrays_are_read() {
        let v = value(r#"a:2:{s:4:"user";a:2:{s:4:"name";s:4:"boss";s:5:"roles";a:1:{i:0;s:5:"admin";}}i:-3;b:0;}"#)
            .unwrap();
        let user = v.get("user").unwrap();
        assert_eq!(user.get("name"), Some(&str(b"boss")));
        assert_eq!(
            user.get("roles").and_then(|r| r.get("0")),
            Some(&str(b"admin"))
        );
        assert_eq!(v.get("-3"), Some(&SessionValue::Bool(false)));
        assert_eq!(v.get("nope"), None);
        assert_eq!(SessionValue::Int(1).get("0"), None);
    }

    #[test]
    fn numeric_string_keys_become_integer_keys_as_in_php() {
        let v = value(r#"a:4:{s:1:"5";i:1;s:2:"05";i:2;s:2:"-0";i:3;s:2:"-4";i:4;}"#).unwrap();
        let SessionValue::Array(items) = &v else {
            panic!("{v:?}")
        };
        let keys: Vec<_> = items.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(
            keys,
            [
                SessionKey::Int(5),
                skey("05"),
                skey("-0"),
                SessionKey::Int(-4)
            ]
        );
    }

    #[test]
    fn a_repeated_key_keeps_its_place_and_takes_the_last_value() {
        let v = value(r#"a:3:{i:5;s:1:"a";i:6;N;s:1:"5";s:1:"b";}"#).unwrap();
        assert_eq!(
            v,
            SessionValue::Array(vec![
                (SessionKey::Int(5), str(b"b")),
                (SessionKey::Int(6), SessionValue::Null),
            ])
        );
        let session = parse_session(b"a|i:1;b|i:2;a|i:3;").unwrap();
        assert_eq!(
            session.entries,
            vec![
                (b"a".to_vec(), SessionValue::Int(3)),
                (b"b".to_vec(), SessionValue::Int(2)),
            ]
        );
    }

    #[test]
    fn objects_are_parsed_past_and_kept_opaque() {
        // Private and protected property names hold NUL bytes.
        let session = parse_session(
            b"o|O:1:\"P\":3:{s:4:\"\0P\0a\";a:1:{i:0;O:8:\"stdClass\":1:{s:1:\"}\";s:1:\"}\";}}s:4:\"\0*\0b\";i:2;s:1:\"c\";N;}after|b:1;",
        )
        .unwrap();
        assert_eq!(session.get("o"), Some(&SessionValue::Object("P".into())));
        assert_eq!(session.get("after"), Some(&SessionValue::Bool(true)));
    }

    #[test]
    fn class_names_php_would_refuse_are_refused() {
        assert_eq!(
            value(r#"O:5:"A\B_c":0:{}"#).unwrap(),
            SessionValue::Object(r"A\B_c".into())
        );
        assert_eq!(
            value("O:2:\"é\":0:{}").unwrap(),
            SessionValue::Object("é".into())
        );
        for bad in [
            r#"O:0:"":0:{}"#,
            r#"O:3:"a;b":0:{}"#,
            r#"O:3:"a-b":0:{}"#,
            r#"C:3:"a}b":0:{}"#,
            r#"E:5:"S:H-x";"#,
            r#"E:2:"S:";"#,
            r#"E:2:":H";"#,
        ] {
            assert!(value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn custom_serialized_objects_are_skipped_by_their_length() {
        let session =
            parse_session(br#"c|C:11:"ArrayObject":21:{x:i:0;a:0:{};m:a:0:{}}after|b:1;"#).unwrap();
        assert_eq!(
            session.get("c"),
            Some(&SessionValue::Object("ArrayObject".into()))
        );
        assert_eq!(session.get("after"), Some(&SessionValue::Bool(true)));
        // The data may hold braces; only its declared length counts.
        let session = parse_session(br#"c|C:1:"X":3:{}}}}after|N;"#).unwrap();
        assert_eq!(session.get("after"), Some(&SessionValue::Null));
    }

    #[test]
    fn enums_and_references_are_opaque() {
        let v =
            value(r#"a:4:{i:0;E:11:"Suit:Hearts";i:1;a:1:{i:0;i:1;}i:2;R:3;i:3;r:2;}"#).unwrap();
        assert_eq!(v.get("0"), Some(&SessionValue::Object("Suit".into())));
        assert_eq!(v.get("2"), Some(&SessionValue::Reference));
        assert_eq!(v.get("3"), Some(&SessionValue::Reference));
        assert!(value(r#"E:4:"Suit";"#).is_err());
    }

    #[test]
    fn references_must_point_back_as_unserialize_numbers_values() {
        // As PHP writes it: the session array is 1, `x` is 2, `x[0]` is 3 and its
        // element 4; `R:` is not numbered; the object is 5.
        let ok = |s: &str| parse_session(s.as_bytes()).is_ok();
        assert!(ok(
            r#"a:1:{s:1:"x";a:4:{i:0;a:1:{i:0;i:1;}i:1;R:3;i:2;O:8:"stdClass":0:{}i:3;r:5;}}"#
        ));
        assert!(ok(r#"a|N;b|R:1;c|a:1:{i:0;R:2;}"#));
        // Pointing at the array or object being read is fine.
        assert!(ok(r#"a|a:1:{i:0;R:1;}"#));
        assert!(ok(r#"a|O:8:"stdClass":1:{s:1:"p";r:1;}"#));
        assert!(ok(r#"a|O:1:"X":0:{}b|r:1;c|r:2;"#));
        assert!(ok(r#"a|E:3:"S:H";b|r:1;"#));
        for bad in [
            "a|R:1;",
            "a|r:1;",
            "a|R:0;",
            "a|N;b|R:2;",
            "a|a:1:{i:0;R:3;}",
            "a|N;b|R:1;c|a:1:{i:0;R:3;}",
            // Nor at itself.
            r#"a|O:1:"X":0:{}b|R:1;c|r:2;"#,
            r#"a|O:8:"stdClass":1:{s:1:"p";r:2;}"#,
            // `r:` must point at an object.
            "a|N;b|r:1;",
            "a|a:1:{i:0;r:1;}",
        ] {
            let error = parse_session(bad.as_bytes()).unwrap_err();
            assert_eq!(error.kind, SessionErrorKind::BadReference, "{bad}");
        }
        // After a `C:` object the numbering is its class's business.
        assert!(ok(r#"a|C:1:"X":0:{}b|N;c|r:9;"#));
    }

    #[test]
    fn php_truthiness_denies_objects_and_references() {
        let truthy = |s: &str| value(s).unwrap().is_truthy();
        for yes in [
            "b:1;",
            "i:1;",
            "i:-1;",
            "d:0.1;",
            "d:NAN;",
            "s:1:\"a\";",
            "s:2:\"00\";",
            "s:3:\"0.0\";",
            "a:1:{i:0;N;}",
        ] {
            assert!(truthy(yes), "{yes}");
        }
        for no in [
            "N;",
            "b:0;",
            "i:0;",
            "d:0;",
            "d:-0;",
            "s:0:\"\";",
            "s:1:\"0\";",
            "a:0:{}",
            "O:8:\"stdClass\":0:{}",
            "E:6:\"Suit:H\";",
        ] {
            assert!(!truthy(no), "{no}");
        }
        assert!(!SessionValue::Reference.is_truthy());
        // A reference to a truthy value is still not truthy: it is never followed.
        let session = parse_session(b"a|b:1;b|R:1;").unwrap();
        assert!(!session.get("b").unwrap().is_truthy());
    }

    #[test]
    fn matches_compares_php_string_forms() {
        let m = |s: &str, expected: &str| value(s).unwrap().matches(expected);
        assert!(m("s:4:\"boss\";", "boss"));
        assert!(!m("s:4:\"boss\";", "Boss"));
        assert!(!m("s:5:\"boss \";", "boss"));
        assert!(m("i:1;", "1"));
        assert!(!m("i:1;", "01"));
        assert!(m("i:-3;", "-3"));
        assert!(m("b:1;", "1"));
        assert!(!m("b:1;", "true"));
        assert!(m("b:0;", ""));
        assert!(m("d:1.5;", "1.5"));
        assert!(m("d:2;", "2"));
        assert!(m("d:0.30000000000000004;", "0.3"));
        assert!(m("d:1.0E+25;", "1.0E+25"));
        assert!(m("d:-INF;", "-INF"));
        assert!(!m("N;", ""));
        assert!(!m("a:0:{}", ""));
        assert!(!m("O:8:\"stdClass\":0:{}", "stdClass"));
        assert!(!SessionValue::Reference.matches(""));
    }

    #[test]
    fn type_names_are_phps() {
        let names: Vec<_> = [
            "N;",
            "b:1;",
            "i:1;",
            "d:1;",
            "s:0:\"\";",
            "a:0:{}",
            "O:1:\"X\":0:{}",
        ]
        .iter()
        .map(|s| value(s).unwrap().type_name())
        .chain([SessionValue::Reference.type_name()])
        .collect();
        assert_eq!(
            names,
            [
                "null",
                "bool",
                "int",
                "float",
                "string",
                "array",
                "object",
                "reference"
            ]
        );
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            "N",
            "n;",
            "b:2;",
            "b:;",
            "b:1",
            "i:;",
            "i:1.5;",
            "i:- 1;",
            "i:9223372036854775808;",
            "i:1",
            "d:;",
            "d:.;",
            "d:1e;",
            "d:inf;",
            "d:NaN;",
            "d:1,5;",
            "s:3:\"ab\";",
            "s:1:\"ab\";",
            "s:-1:\"\";",
            "s:+1:\"a\";",
            "s:1:'a';",
            "s:1:\"a\"",
            "s:18446744073709551616:\"a\";",
            "a:1:{}",
            "a:1:{i:0;i:1;i:1;i:2;}",
            "a:1:{d:0.5;i:1;}",
            "a:1:{N;i:1;}",
            "a:1:{i:0;i:1;",
            "a:0:{};",
            "O:8:\"stdClass\":1:{}",
            "O:8:\"stdClass\":0:{",
            "C:1:\"X\":5:{}",
            "E:4:\"Suit\";",
            "r:;",
            "x:1;",
            "S:1:\"a\";",
            "",
        ] {
            assert!(
                parse_session(format!("x|{bad}").as_bytes()).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn malformed_files_are_refused() {
        for bad in [
            &b"no bar"[..],
            b"x|i:1;trailing",
            b"x|i:1;;",
            b"a:1:{s:1:\"x\";b:1;}extra",
            b"a:1:{s:1:\"x\";b:1;",
            b"a:2:{s:1:\"x\";b:1;}",
            // Damaged php_serialize data is not retried as `php` entries split at the `|`
            // inside a string.
            b"a:1:{s:1:\"k\";s:3:\"x|N;",
        ] {
            assert!(
                parse_session(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_session_as(b"x|b:1;", Handler::PhpSerialize).is_err());
        assert!(parse_session_as(b"s:1:\"x\";", Handler::PhpSerialize).is_err());
    }

    #[test]
    fn a_php_serialize_file_truncated_at_any_byte_is_refused() {
        for end in 0..PHP_SERIALIZE_FILE.len() {
            let cut = &PHP_SERIALIZE_FILE[..end];
            if end == 0 {
                continue; // An empty file is an empty session.
            }
            assert!(parse_session(cut).is_err(), "cut at {end}");
            assert!(parse_session_as(cut, Handler::PhpSerialize).is_err());
        }
    }

    #[test]
    fn a_php_file_truncated_at_any_byte_is_refused_unless_cut_between_entries() {
        let full = parse_session(PHP_FILE).unwrap();
        let mut whole_entries = 0;
        for end in 0..PHP_FILE.len() {
            match parse_session(&PHP_FILE[..end]) {
                Err(_) => {}
                Ok(session) => {
                    // Only a cut right after an entry's value leaves a valid file: the
                    // entries before the cut, unchanged.
                    let n = session.entries.len();
                    assert_eq!(session.entries[..], full.entries[..n], "cut at {end}");
                    assert!(end == 0 || PHP_FILE[end - 1] == b';' || PHP_FILE[end - 1] == b'}');
                    whole_entries += 1;
                }
            }
        }
        // The empty file and the four cuts between the five entries.
        assert_eq!(whole_entries, 5);
    }

    #[test]
    fn huge_declared_lengths_and_counts_allocate_nothing_and_fail() {
        for bad in [
            &b"x|s:999999999:\"abc\";"[..],
            b"x|a:999999999:{i:0;i:1;}",
            b"a:999999999:{s:1:\"x\";b:1;}",
            b"x|O:999999999:\"stdClass\":0:{}",
            b"x|O:8:\"stdClass\":999999999:{}",
            b"x|C:1:\"X\":999999999:{}",
            b"x|s:99999999999999999999999:\"a\";",
        ] {
            let error = parse_session(bad).unwrap_err();
            assert!(
                matches!(
                    error.kind,
                    SessionErrorKind::LengthPastEnd
                        | SessionErrorKind::Truncated
                        | SessionErrorKind::Expected(_)
                        | SessionErrorKind::NumberOutOfRange
                ),
                "{error}"
            );
        }
    }

    #[test]
    fn nesting_is_limited_to_max_depth() {
        let nested = |levels: usize| {
            let mut s = "x|".to_string();
            s.push_str(&"a:1:{i:0;".repeat(levels));
            s.push_str("N;");
            s.push_str(&"}".repeat(levels));
            s
        };
        assert!(parse_session(nested(MAX_DEPTH).as_bytes()).is_ok());
        let error = parse_session(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert_eq!(error.kind, SessionErrorKind::TooDeep);
        // Far deeper than any stack would allow: refused at the limit, no overflow.
        let error = parse_session(nested(1_000_000).as_bytes()).unwrap_err();
        assert_eq!(error.kind, SessionErrorKind::TooDeep);
        let objects = format!("x|{}N;", "O:1:\"X\":1:{i:0;".repeat(MAX_DEPTH + 1));
        assert!(parse_session(objects.as_bytes()).is_err());
    }

    #[test]
    fn many_entries_and_repeated_keys_parse_in_linear_time() {
        let mut file = String::new();
        for i in 0..100_000 {
            file.push_str(&format!("k{}|i:{i};", i % 50_000));
        }
        let session = parse_session(file.as_bytes()).unwrap();
        assert_eq!(session.entries.len(), 50_000);
        assert_eq!(session.get("k7"), Some(&SessionValue::Int(50_007)));
        let mut array = String::from("x|a:100000:{");
        for i in 0..100_000 {
            array.push_str(&format!("i:{};N;", i % 10));
        }
        array.push('}');
        let session = parse_session(array.as_bytes()).unwrap();
        let Some(SessionValue::Array(items)) = session.get("x") else {
            panic!()
        };
        assert_eq!(items.len(), 10);
    }

    #[test]
    fn random_damage_never_panics() {
        // A small deterministic fuzz: flip, insert and delete bytes of real files.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"0123456789:;{}\"|asidbNOCErR-+.eE\xff";
        for _ in 0..20_000 {
            let mut bytes = if next() % 2 == 0 {
                PHP_FILE.to_vec()
            } else {
                PHP_SERIALIZE_FILE.to_vec()
            };
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % bytes.len();
                let byte = alphabet[(next() as usize) % alphabet.len()];
                match next() % 3 {
                    0 => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ => {
                        bytes.remove(at);
                    }
                }
            }
            if let Ok(session) = parse_session(&bytes) {
                let _ = session_keys_report(&session);
            }
        }
    }

    #[test]
    fn errors_say_where_and_what_without_quoting_the_data() {
        let error = parse_session(b"admin|s:6:\"secret\"x").unwrap_err();
        assert_eq!(error.offset, 18);
        assert_eq!(
            error.to_string(),
            "malformed session data at byte 18: expected ';' after a value"
        );
        let error = parse_session(b"admin|s:6:\"secr").unwrap_err();
        assert_eq!(
            error.to_string(),
            "malformed session data at byte 11: declared length runs past the end of the data"
        );
        let error = parse_session(b"secret").unwrap_err();
        assert_eq!(
            error.to_string(),
            "malformed session data at byte 0: session key without '|'"
        );
    }

    #[test]
    fn the_keys_report_shows_types_and_sizes_but_never_values() {
        let session = parse_session(PHP_FILE).unwrap();
        assert_eq!(
            session_keys_report(&session),
            "admin_logged_in\tbool\n\
             admin_user\tstring, 8 bytes\n\
             f\tfloat\n\
             cart\tarray, 3 elements\n\
             o\tobject ArrayObject\n"
        );
        let session =
            parse_session(b"a b|N;\"q\"|i:1;t\tx|R:1;\xff\\|d:1;|s:6:\"secret\";l|a:1:{i:0;N;}")
                .unwrap();
        let report = session_keys_report(&session);
        assert_eq!(
            report,
            "\"a b\"\tnull\n\
             \"\\\"q\\\"\"\tint\n\
             \"t\\tx\"\treference\n\
             \"\\xff\\\\\"\tfloat\n\
             \"\"\tstring, 6 bytes\n\
             l\tarray, 1 element\n"
        );
        assert!(!report.contains("secret"));
    }
}
