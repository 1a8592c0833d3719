//! Source text to tokens: PHP's open and close tags and the text outside them, comments,
//! names and variables, numbers in every spelling, strings of every kind (single- and
//! double-quoted, heredoc, nowdoc) with their escapes, and punctuation. Pure.

/// One token of the source.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Token {
    /// `$name`, without the `$`.
    Var(String),
    /// A name or keyword, as written.
    Ident(String),
    Int(i64),
    Float(f64),
    /// A string literal of any kind, escapes already processed.
    Str(String),
    /// An operator or bracket; `?>` is lexed as `;`, as PHP treats it.
    Punct(&'static str),
    /// Anything only good for skipping: a shell command in backticks, an unterminated
    /// string, an invalid number, a stray byte.
    Other,
}

/// Operators and brackets, longest first so the first match is the right one.
const PUNCTUATION: &[&str] = &[
    "<<=", ">>=", "**=", "...", "<=>", "===", "!==", "??=", "?->", "=>", "->", "::", "==", "!=",
    "<>", "<=", ">=", "&&", "||", "++", "--", "+=", "-=", "*=", "/=", ".=", "%=", "&=", "|=", "^=",
    "**", "??", "<<", ">>", "(", ")", "[", "]", "{", "}", ",", ";", "=", ".", "+", "-", "*", "/",
    "%", "!", "?", ":", "<", ">", "&", "|", "^", "~", "@", "\\", "$",
];

/// The tokens of a whole file, from its first `<?php` on. Never fails: what cannot be
/// lexed becomes [`Token::Other`].
pub(super) fn tokenize(source: &str) -> Vec<Token> {
    let mut lexer = Lexer {
        src: source.as_bytes(),
        pos: 0,
        tokens: Vec::new(),
    };
    lexer.run();
    lexer.tokens
}

/// A byte that can start a name; bytes of multibyte characters count, as in PHP.
fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_name_byte(b: u8) -> bool {
    is_name_start(b) || b.is_ascii_digit()
}

struct Lexer<'s> {
    src: &'s [u8],
    pos: usize,
    tokens: Vec<Token>,
}

impl<'s> Lexer<'s> {
    fn at(&self, i: usize) -> Option<u8> {
        self.src.get(i).copied()
    }

    fn rest(&self) -> &'s [u8] {
        self.src.get(self.pos..).unwrap_or_default()
    }

    fn looking_at(&self, text: &[u8]) -> bool {
        self.rest().starts_with(text)
    }

    fn run(&mut self) {
        self.skip_inline_html();
        while let Some(b) = self.at(self.pos) {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                b'?' if self.looking_at(b"?>") => {
                    self.pos += 2;
                    self.tokens.push(Token::Punct(";"));
                    self.skip_inline_html();
                }
                b'#' => self.skip_line_comment(),
                b'/' if self.looking_at(b"//") => self.skip_line_comment(),
                b'/' if self.looking_at(b"/*") => self.skip_block_comment(),
                b'\'' => self.single_quoted(),
                b'"' | b'`' => self.double_quoted(b),
                b'<' if self.looking_at(b"<<<") && self.heredoc() => {}
                b'$' if self.at(self.pos + 1).is_some_and(is_name_start) => {
                    self.pos += 1;
                    let name = self.name();
                    self.tokens.push(Token::Var(name));
                }
                b'0'..=b'9' => self.number(),
                b'.' if self.at(self.pos + 1).is_some_and(|b| b.is_ascii_digit()) => self.number(),
                b if is_name_start(b) => {
                    let name = self.name();
                    self.tokens.push(Token::Ident(name));
                }
                _ => self.punctuation(),
            }
        }
    }

    /// Skips text outside `<?php ... ?>` up to the next open tag. `<?=` opens an `echo`.
    fn skip_inline_html(&mut self) {
        loop {
            let Some(found) = self.rest().windows(2).position(|w| w == b"<?") else {
                self.pos = self.src.len();
                return;
            };
            self.pos += found + 2;
            if self.looking_at(b"=") {
                self.pos += 1;
                self.tokens.push(Token::Ident("echo".into()));
                return;
            }
            let is_php = self
                .rest()
                .get(..3)
                .is_some_and(|word| word.eq_ignore_ascii_case(b"php"));
            if is_php
                && self
                    .at(self.pos + 3)
                    .is_none_or(|b| b.is_ascii_whitespace())
            {
                self.pos += 3;
                return;
            }
        }
    }

    /// `//` and `#` comments end at a line break or, as in PHP, just before `?>`.
    fn skip_line_comment(&mut self) {
        while let Some(b) = self.at(self.pos) {
            if b == b'\n' || b == b'\r' || self.looking_at(b"?>") {
                return;
            }
            self.pos += 1;
        }
    }

    fn skip_block_comment(&mut self) {
        self.pos += 2;
        match self.rest().windows(2).position(|w| w == b"*/") {
            Some(found) => self.pos += found + 2,
            None => self.pos = self.src.len(),
        }
    }

    fn name(&mut self) -> String {
        let start = self.pos;
        while self.at(self.pos).is_some_and(is_name_byte) {
            self.pos += 1;
        }
        // Names stop only at ASCII bytes, so this is whole characters.
        String::from_utf8_lossy(self.src.get(start..self.pos).unwrap_or_default()).into_owned()
    }

    /// A string or heredoc that never ends: nothing after its start is read.
    fn unterminated(&mut self) {
        self.tokens.push(Token::Other);
        self.pos = self.src.len();
    }

    /// `'...'`: only `\'` and `\\` are escapes.
    fn single_quoted(&mut self) {
        let mut text = Vec::new();
        let mut i = self.pos + 1;
        loop {
            match self.at(i) {
                None => return self.unterminated(),
                Some(b'\'') => break,
                Some(b'\\') if matches!(self.at(i + 1), Some(b'\'' | b'\\')) => {
                    text.extend(self.at(i + 1));
                    i += 2;
                }
                Some(b) => {
                    text.push(b);
                    i += 1;
                }
            }
        }
        self.pos = i + 1;
        self.tokens
            .push(Token::Str(String::from_utf8_lossy(&text).into_owned()));
    }

    /// `"..."` with PHP's escapes; `` `...` `` (a shell command) is only skipped.
    fn double_quoted(&mut self, quote: u8) {
        let start = self.pos + 1;
        let mut i = start;
        loop {
            match self.at(i) {
                None => return self.unterminated(),
                Some(b'\\') => i += 2,
                Some(b) if b == quote => break,
                Some(_) => i += 1,
            }
        }
        self.pos = i + 1;
        if quote == b'`' {
            self.tokens.push(Token::Other);
            return;
        }
        let raw = self.src.get(start..i).unwrap_or_default();
        self.tokens.push(Token::Str(unescape(raw, Some(quote))));
    }

    /// `<<<ID`, `<<<"ID"` (heredoc) or `<<<'ID'` (nowdoc), with PHP 7.3's flexible
    /// closing marker. `false` when this is not a heredoc after all.
    fn heredoc(&mut self) -> bool {
        let mut i = self.pos + 3;
        while matches!(self.at(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        let quote = match self.at(i) {
            Some(q @ (b'\'' | b'"')) => {
                i += 1;
                Some(q)
            }
            _ => None,
        };
        let label_start = i;
        if !self.at(i).is_some_and(is_name_start) {
            return false;
        }
        while self.at(i).is_some_and(is_name_byte) {
            i += 1;
        }
        let label = self.src.get(label_start..i).unwrap_or_default();
        if let Some(q) = quote {
            if self.at(i) != Some(q) {
                return false;
            }
            i += 1;
        }
        match (self.at(i), self.at(i + 1)) {
            (Some(b'\n'), _) => i += 1,
            (Some(b'\r'), Some(b'\n')) => i += 2,
            (Some(b'\r'), _) => i += 1,
            _ => return false,
        }
        let body_start = i;
        let mut line_start = i;
        loop {
            let mut marker = line_start;
            while matches!(self.at(marker), Some(b' ' | b'\t')) {
                marker += 1;
            }
            let after = marker + label.len();
            let closes = self.src.get(marker..after) == Some(label)
                && !self.at(after).is_some_and(is_name_byte);
            if closes {
                let mut body_end = line_start;
                // The line break before the closing marker is not part of the text.
                if body_end > body_start && self.at(body_end - 1) == Some(b'\n') {
                    body_end -= 1;
                }
                if body_end > body_start && self.at(body_end - 1) == Some(b'\r') {
                    body_end -= 1;
                }
                let body = self.src.get(body_start..body_end).unwrap_or_default();
                let body = remove_indentation(body, marker - line_start);
                let text = if quote == Some(b'\'') {
                    String::from_utf8_lossy(&body).into_owned()
                } else {
                    unescape(&body, None)
                };
                self.tokens.push(Token::Str(text));
                self.pos = after;
                return true;
            }
            match self
                .src
                .get(line_start..)
                .and_then(|rest| rest.iter().position(|b| *b == b'\n'))
            {
                Some(newline) => line_start += newline + 1,
                None => {
                    self.unterminated();
                    return true;
                }
            }
        }
    }

    /// Integers in every base with `_` separators, floats; overflowing integers become
    /// floats and `08` is invalid, as in PHP.
    fn number(&mut self) {
        let radix = match (self.at(self.pos), self.at(self.pos + 1)) {
            (Some(b'0'), Some(b'x' | b'X')) => 16,
            (Some(b'0'), Some(b'b' | b'B')) => 2,
            (Some(b'0'), Some(b'o' | b'O')) => 8,
            _ => 10,
        };
        if radix != 10 {
            let digits_start = self.pos + 2;
            if self
                .at(digits_start)
                .is_some_and(|b| (b as char).is_digit(radix))
            {
                self.pos = digits_start;
                let digits = self.digits(|b| (b as char).is_digit(radix));
                self.tokens.push(integer(&digits, radix));
                return;
            }
        }
        let whole = self.digits(|b| b.is_ascii_digit());
        let mut fraction = None;
        if self.at(self.pos) == Some(b'.') && !self.looking_at(b"...") {
            self.pos += 1;
            fraction = Some(self.digits(|b| b.is_ascii_digit()));
        }
        let mut exponent = None;
        if matches!(self.at(self.pos), Some(b'e' | b'E')) {
            let sign_len = usize::from(matches!(self.at(self.pos + 1), Some(b'+' | b'-')));
            if self
                .at(self.pos + 1 + sign_len)
                .is_some_and(|b| b.is_ascii_digit())
            {
                let negative = self.at(self.pos + 1) == Some(b'-');
                self.pos += 1 + sign_len;
                let digits = self.digits(|b| b.is_ascii_digit());
                exponent = Some(if negative {
                    format!("-{digits}")
                } else {
                    digits
                });
            }
        }
        let token = if fraction.is_some() || exponent.is_some() {
            let whole = if whole.is_empty() { "0" } else { &whole };
            let fraction = fraction
                .filter(|f| !f.is_empty())
                .unwrap_or_else(|| "0".into());
            let exponent = exponent.unwrap_or_else(|| "0".into());
            format!("{whole}.{fraction}e{exponent}")
                .parse()
                .map_or(Token::Other, Token::Float)
        } else if whole.len() > 1 && whole.starts_with('0') {
            if whole.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                integer(&whole, 8)
            } else {
                Token::Other
            }
        } else {
            integer(&whole, 10)
        };
        self.tokens.push(token);
    }

    /// Digits with single `_` between them, returned without the `_`.
    fn digits(&mut self, is_digit: impl Fn(u8) -> bool) -> String {
        let mut digits = String::new();
        loop {
            match self.at(self.pos) {
                Some(b) if is_digit(b) => {
                    digits.push(char::from(b));
                    self.pos += 1;
                }
                Some(b'_')
                    if !digits.is_empty() && self.at(self.pos + 1).is_some_and(&is_digit) =>
                {
                    self.pos += 1;
                }
                _ => return digits,
            }
        }
    }

    fn punctuation(&mut self) {
        let rest = self.rest();
        match PUNCTUATION.iter().find(|p| rest.starts_with(p.as_bytes())) {
            Some(punct) => {
                self.pos += punct.len();
                self.tokens.push(Token::Punct(punct));
            }
            None => {
                self.pos += 1;
                self.tokens.push(Token::Other);
            }
        }
    }
}

/// An integer literal's digits in `radix`; a float when it overflows, as in PHP (which
/// rounds decimal digits like `strtod` and folds the other bases digit by digit).
fn integer(digits: &str, radix: u32) -> Token {
    match i64::from_str_radix(digits, radix) {
        Ok(i) => Token::Int(i),
        Err(_) if radix == 10 => digits.parse().map_or(Token::Other, Token::Float),
        Err(_) => Token::Float(
            digits
                .chars()
                .filter_map(|c| c.to_digit(radix))
                .fold(0.0, |total, d| total * f64::from(radix) + f64::from(d)),
        ),
    }
}

/// Removes up to `width` leading spaces and tabs from every line (heredoc indentation).
fn remove_indentation(body: &[u8], width: usize) -> Vec<u8> {
    if width == 0 {
        return body.to_vec();
    }
    let mut out = Vec::with_capacity(body.len());
    for (n, line) in body.split(|b| *b == b'\n').enumerate() {
        if n > 0 {
            out.push(b'\n');
        }
        let indent = line
            .iter()
            .take(width)
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        out.extend_from_slice(line.get(indent..).unwrap_or_default());
    }
    out
}

/// PHP's double-quote escapes. `quote` is the delimiter that `\` may escape (`None` in
/// heredocs). Unknown escapes stay as written; `$var` is not interpolated.
fn unescape(raw: &[u8], quote: Option<u8>) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let Some(&escaped) = raw.get(i + 1) else {
            out.push(b'\\');
            break;
        };
        i += 2;
        match escaped {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'v' => out.push(0x0b),
            b'e' => out.push(0x1b),
            b'f' => out.push(0x0c),
            b'\\' | b'$' => out.push(escaped),
            b'"' | b'`' if quote == Some(escaped) => out.push(escaped),
            b'0'..=b'7' => {
                let mut value = u32::from(escaped - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                // `\400` and up wrap around to a byte, as PHP does.
                out.push((value & 0xff) as u8);
            }
            b'x' if raw.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut value = 0u8;
                for _ in 0..2 {
                    match raw.get(i).and_then(|d| char::from(*d).to_digit(16)) {
                        Some(d) => {
                            value = value * 16 + d as u8;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push(value);
            }
            b'u' if raw.get(i) == Some(&b'{') => match unicode_escape(raw.get(i + 1..)) {
                Some((c, used)) => {
                    let mut buffer = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                    i += 1 + used;
                }
                // PHP refuses the whole file here; keeping the text is kinder.
                None => out.extend_from_slice(b"\\u"),
            },
            _ => {
                out.push(b'\\');
                out.push(escaped);
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `HHHH}` after `\u{`: the character and the bytes used, including the `}`.
fn unicode_escape(raw: Option<&[u8]>) -> Option<(char, usize)> {
    let raw = raw?;
    let close = raw.iter().position(|b| *b == b'}')?;
    let hex = std::str::from_utf8(raw.get(..close)?).ok()?;
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let code = u32::from_str_radix(hex, 16).ok()?;
    Some((char::from_u32(code)?, close + 1))
}

#[cfg(test)]
mod tests {
    use super::super::parse_config;
    use super::super::test_support::{eval, str};
    use super::super::value::PhpValue;
    use crate::php::float_to_string;

    #[test]
    fn single_quoted_strings_know_only_two_escapes() {
        assert_eq!(
            eval(r"'it\'s a \\ and \n and \x41 $x'"),
            Some(str(r"it's a \ and \n and \x41 $x"))
        );
        assert_eq!(eval("'multi\nline'"), Some(str("multi\nline")));
    }

    #[test]
    fn double_quoted_strings_have_phps_escapes_but_no_interpolation() {
        assert_eq!(
            eval(r#""a\nb\tc\rd\ve\ef\fg\\h\$i\"j""#),
            Some(str("a\nb\tc\rd\u{b}e\u{1b}f\u{c}g\\h$i\"j"))
        );
        assert_eq!(eval(r#""\101\60\0x""#), Some(str("A0\0x")));
        assert_eq!(eval(r#""\x41\x4a\x7""#), Some(str("AJ\u{7}")));
        assert_eq!(eval(r#""\u{48}\u{e9}\u{1F600}""#), Some(str("Hé😀")));
        assert_eq!(
            eval(r#""$name and {$x['k']} stay""#),
            Some(str("$name and {$x['k']} stay"))
        );
        assert_eq!(
            eval(r#""\q \u \u{zz} \x \'""#),
            Some(str(r"\q \u \u{zz} \x \'"))
        );
        // \777 wraps to 0xFF, which is not UTF-8 on its own.
        assert_eq!(eval(r#""\777""#), Some(str("\u{fffd}")));
        assert_eq!(eval(r#""\xc3\xa9""#), Some(str("é")));
    }

    #[test]
    fn integers_come_in_every_php_spelling() {
        for (literal, value) in [
            ("42", 42),
            ("-42", -42),
            ("+42", 42),
            ("0x1A", 26),
            ("0XfF", 255),
            ("017", 15),
            ("0o17", 15),
            ("0O17", 15),
            ("0b101", 5),
            ("1_000_000", 1_000_000),
            ("0x7FFF_FFFF", 0x7fff_ffff),
            ("0", 0),
            ("- - 3", 3),
            ("9223372036854775807", i64::MAX),
        ] {
            assert_eq!(eval(literal), Some(PhpValue::Int(value)), "{literal}");
        }
        assert_eq!(
            eval("9223372036854775808"),
            Some(PhpValue::Float(9_223_372_036_854_775_808.0))
        );
        assert_eq!(
            eval("-9223372036854775808"),
            Some(PhpValue::Float(-9_223_372_036_854_775_808.0))
        );
        assert_eq!(
            eval("0xFFFFFFFFFFFFFFFF"),
            Some(PhpValue::Float(18_446_744_073_709_551_615.0))
        );
        assert_eq!(eval("08"), None);
        assert_eq!(eval("1__0"), None);
        assert_eq!(eval("1_"), None);
    }

    #[test]
    fn floats_parse_and_print_like_php() {
        for (literal, value, printed) in [
            ("1.5", 1.5, "1.5"),
            ("-0.25", -0.25, "-0.25"),
            (".5", 0.5, "0.5"),
            ("1.", 1.0, "1"),
            ("1e3", 1000.0, "1000"),
            ("1.5E-3", 0.0015, "0.0015"),
            ("2.5e+2", 250.0, "250"),
            ("1_000.5", 1000.5, "1000.5"),
            ("0.1", 0.1, "0.1"),
            ("1e14", 1e14, "1.0E+14"),
            ("1e13", 1e13, "10000000000000"),
            ("0.0001", 0.0001, "0.0001"),
            ("0.00001", 0.00001, "1.0E-5"),
            (
                "123456789012345678.0",
                123_456_789_012_345_680.0,
                "1.2345678901235E+17",
            ),
            ("-1.5e-7", -1.5e-7, "-1.5E-7"),
            ("-0.0", -0.0, "-0"),
            ("08.5", 8.5, "8.5"),
        ] {
            assert_eq!(eval(literal), Some(PhpValue::Float(value)), "{literal}");
            assert_eq!(
                PhpValue::Float(value).as_text().as_deref(),
                Some(printed),
                "{literal}"
            );
        }
        assert_eq!(float_to_string(f64::INFINITY), "INF");
        assert_eq!(float_to_string(f64::NAN), "NAN");
        assert_eq!(float_to_string(0.1 + 0.2), "0.3");
        assert_eq!(eval("1e999"), Some(PhpValue::Float(f64::INFINITY)));
    }

    #[test]
    fn heredocs_and_nowdocs_are_strings() {
        let config = parse_config(
            "<?php\n$h = <<<EOT\n  Line \\x41\n    indented \"q\" $x\n  EOT;\n\
             $n = <<<'RAW'\nkeep \\x41\nRAW;\n$e = <<<\"E\"\nE;\n",
        );
        assert_eq!(config.variables["h"], str("Line A\n  indented \"q\" $x"));
        assert_eq!(config.variables["n"], str("keep \\x41"));
        assert_eq!(config.variables["e"], str(""));
    }

    #[test]
    fn text_outside_php_tags_is_ignored_and_close_tags_end_statements() {
        let config = parse_config(
            "$a = 'not php'; <?php $b = 1 ?> html $c = 2; <?PHP $d = 3; // comment ?> $e = 4;\n\
             <?= $f = 5 ?><?php\n# shell comment\n$g = 6;",
        );
        assert_eq!(config.variables.keys().collect::<Vec<_>>(), ["b", "d", "g"]);
        assert_eq!(config.skipped, 1);
    }

    #[test]
    fn comments_of_all_three_kinds_hide_code() {
        let config = parse_config(
            "<?php\n// $a = 1;\n# $b = 2;\n/* $c = 3;\n $d = 4; */ $e = /* inline */ 5; #[Attr]\n$f = 6; /* unterminated",
        );
        assert_eq!(config.variables.keys().collect::<Vec<_>>(), ["e", "f"]);
    }
}
