//! A parser for the subset of PHP that ComusThumbz settings files (`ct/dat/config.inc.php`)
//! are written in.
//!
//! It reads the literal statements a config file is made of the way PHP would run them:
//! `$var = array(...)` and `[...]`, `$var['a']['b'] = ...`, `$var[] = ...`,
//! `define('NAME', value)`, `const NAME = value`, and
//! `date_default_timezone_set('Area/City')`. Values are literals (strings with PHP's
//! escapes, numbers in every PHP spelling, `true`/`false`/`null`, arrays), joined with `.`,
//! cast with `(int)`-style casts, or constants defined earlier. Every other statement (calls,
//! `include`, `if`, expressions over variables...) is skipped up to its end without being
//! run, and parsing goes on. A top-level `return`, `exit` or `die` ends the file, as it
//! ends PHP's run of it.
//!
//! Deliberate differences from PHP: `"$var"` interpolation is kept as literal text; bytes
//! that are not UTF-8 (from `"\xE9"`, say) become U+FFFD; a file with a syntax error is read
//! statement by statement instead of being rejected whole.
//!
//! Never panics, whatever the input: indexing is checked, loops always advance, and
//! nesting is limited to [`MAX_DEPTH`] levels. Pure: no I/O.

use std::collections::BTreeMap;

use super::{Entries, float_to_string, integer_key};

/// How deeply arrays, parentheses, casts and unary operators may nest in one statement,
/// and how deeply nested a stored value may be. Deeper statements are skipped.
pub const MAX_DEPTH: usize = 64;

/// A PHP value.
#[derive(Debug, Clone, PartialEq)]
pub enum PhpValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// An ordered map, in insertion order, each key at most once.
    Array(Vec<(PhpKey, PhpValue)>),
}

/// An array key. PHP turns decimal-integer strings like `"5"` into integer keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PhpKey {
    Int(i64),
    Str(String),
}

/// What a config file sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhpConfig {
    /// Global variables, by name without the `$`.
    pub variables: BTreeMap<String, PhpValue>,
    /// Constants from `define()` and `const`; the first definition wins, as in PHP.
    pub constants: BTreeMap<String, PhpValue>,
    /// The argument of the last `date_default_timezone_set()`, unchecked.
    pub timezone: Option<String>,
    /// How many statements were skipped: not understood, or refused as PHP would refuse
    /// them (like `$s['k'] = 1` when `$s` is a string).
    pub skipped: usize,
}

/// Reads a PHP settings file. Never fails: what cannot be understood is skipped and
/// counted in [`PhpConfig::skipped`].
pub fn parse_config(source: &str) -> PhpConfig {
    let tokens = tokenize(source);
    let mut config = PhpConfig::default();
    let mut parser = Parser {
        tokens: &tokens,
        pos: 0,
    };
    while parser.pos < tokens.len() {
        if parser.eat(";") {
            continue;
        }
        let start = parser.pos;
        match parser.statement(&config.constants) {
            Some(Statement::Stop) => break,
            Some(statement) => {
                if !config.apply(statement) {
                    config.skipped += 1;
                }
            }
            None => {
                parser.pos = start;
                parser.skip_statement();
                config.skipped += 1;
            }
        }
    }
    config
}

impl PhpValue {
    /// The element under `key` of an array (`"5"` finds the integer key 5, as in PHP).
    pub fn get(&self, key: &str) -> Option<&PhpValue> {
        let PhpValue::Array(items) = self else {
            return None;
        };
        let key = PhpKey::from(key);
        items.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Strings, integers and floats as PHP would print them; `None` for `null`, booleans
    /// and arrays.
    pub fn as_text(&self) -> Option<String> {
        match self {
            PhpValue::Str(_) | PhpValue::Int(_) | PhpValue::Float(_) => {
                Some(into_string(self.clone()))
            }
            PhpValue::Null | PhpValue::Bool(_) | PhpValue::Array(_) => None,
        }
    }

    /// PHP truthiness: `""`, `"0"`, `0`, `0.0`, `false`, `null` and `[]` are false.
    pub fn is_truthy(&self) -> bool {
        match self {
            PhpValue::Null => false,
            PhpValue::Bool(b) => *b,
            PhpValue::Int(i) => *i != 0,
            PhpValue::Float(f) => *f != 0.0,
            PhpValue::Str(s) => !(s.is_empty() || s == "0"),
            PhpValue::Array(items) => !items.is_empty(),
        }
    }
}

impl From<&str> for PhpKey {
    /// PHP's key rule ([`integer_key`]): `"5"` is the integer key 5, `"05"` a string.
    fn from(text: &str) -> Self {
        match integer_key(text.as_bytes()) {
            Some(i) => PhpKey::Int(i),
            None => PhpKey::Str(text.to_string()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Statements
// ---------------------------------------------------------------------------------------

/// A statement understood, not yet applied.
#[derive(Debug)]
enum Statement {
    /// `$name[path...] = value;`, where `None` in the path is `[]` (append).
    Assign {
        name: String,
        path: Vec<Option<PhpKey>>,
        value: PhpValue,
    },
    Define(Vec<(String, PhpValue)>),
    Timezone(String),
    /// `return`, `exit`, `die`, `__halt_compiler`: nothing after it runs.
    Stop,
}

impl PhpConfig {
    /// Runs a statement; `false` when PHP would have failed it (like `$s['k'] = 1` on a
    /// string), in which case nothing changed.
    fn apply(&mut self, statement: Statement) -> bool {
        match statement {
            Statement::Assign { name, path, value } => {
                assign(&mut self.variables, name, path, value)
            }
            Statement::Define(constants) => {
                for (name, value) in constants {
                    self.constants.entry(name).or_insert(value);
                }
                true
            }
            Statement::Timezone(zone) => {
                self.timezone = Some(zone);
                true
            }
            // `parse_config` stops before applying it.
            Statement::Stop => true,
        }
    }
}

/// `$name[path] = value` with PHP's auto-vivification of missing, `null` and `false`
/// levels. Checks first, so a failing assignment changes nothing.
fn assign(
    variables: &mut BTreeMap<String, PhpValue>,
    name: String,
    path: Vec<Option<PhpKey>>,
    value: PhpValue,
) -> bool {
    let mut current = variables.get(&name);
    for segment in &path {
        match current {
            None | Some(PhpValue::Null | PhpValue::Bool(false)) => break,
            Some(PhpValue::Array(items)) => match segment {
                Some(key) => current = items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                None if next_index(items).is_none() => return false,
                None => break,
            },
            Some(_) => return false,
        }
    }

    let mut slot = variables.entry(name).or_insert(PhpValue::Null);
    for segment in path {
        if matches!(slot, PhpValue::Null | PhpValue::Bool(false)) {
            *slot = PhpValue::Array(Vec::new());
        }
        let PhpValue::Array(items) = slot else {
            return false;
        };
        let found = match &segment {
            Some(key) => items.iter().position(|(k, _)| k == key),
            None => None,
        };
        let index = match found {
            Some(index) => index,
            None => {
                let key = match segment {
                    Some(key) => key,
                    None => match next_index(items) {
                        Some(i) => PhpKey::Int(i),
                        None => return false,
                    },
                };
                items.push((key, PhpValue::Null));
                items.len() - 1
            }
        };
        let Some((_, next)) = items.get_mut(index) else {
            return false;
        };
        slot = next;
    }
    *slot = value;
    true
}

/// The key `$array[] = ...` uses: one past the largest integer key, or 0.
fn next_index(items: &[(PhpKey, PhpValue)]) -> Option<i64> {
    let largest = items
        .iter()
        .filter_map(|(k, _)| match k {
            PhpKey::Int(i) => Some(*i),
            PhpKey::Str(_) => None,
        })
        .max();
    match largest {
        None => Some(0),
        Some(i) => i.checked_add(1),
    }
}

// ---------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
}

type Constants = BTreeMap<String, PhpValue>;

impl<'t> Parser<'t> {
    fn peek_at(&self, ahead: usize) -> Option<&'t Token> {
        self.tokens.get(self.pos.checked_add(ahead)?)
    }

    fn peek(&self) -> Option<&'t Token> {
        self.peek_at(0)
    }

    fn next(&mut self) -> Option<&'t Token> {
        let token = self.peek()?;
        self.pos += 1;
        Some(token)
    }

    fn is(&self, punct: &str) -> bool {
        matches!(self.peek(), Some(Token::Punct(p)) if *p == punct)
    }

    fn eat(&mut self, punct: &str) -> bool {
        let found = self.is(punct);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, punct: &str) -> Option<()> {
        self.eat(punct).then_some(())
    }

    /// The end of a statement: `;`, `?>` (lexed as `;`), or the end of the file.
    fn end(&mut self) -> Option<()> {
        (self.eat(";") || self.peek().is_none()).then_some(())
    }

    /// One statement this module understands, or `None` to skip it.
    fn statement(&mut self, constants: &Constants) -> Option<Statement> {
        match self.peek()? {
            Token::Var(_) => self.assignment(constants),
            Token::Ident(_) | Token::Punct("\\") => self.keyword_statement(constants),
            _ => None,
        }
    }

    fn assignment(&mut self, constants: &Constants) -> Option<Statement> {
        let Some(Token::Var(name)) = self.next() else {
            return None;
        };
        let mut name = name.clone();
        let mut path = Vec::new();
        while self.eat("[") {
            if path.len() >= MAX_DEPTH {
                return None;
            }
            if self.eat("]") {
                path.push(None);
                continue;
            }
            let key = to_key(self.expr(constants, path.len() + 1)?)?;
            self.expect("]")?;
            path.push(Some(key));
        }
        self.expect("=")?;
        let value = self.expr(constants, path.len())?;
        self.end()?;
        if name == "GLOBALS" {
            // `$GLOBALS['x'] = ...` is `$x = ...` at the top level of a file.
            let Some(Some(PhpKey::Str(global))) = path.first() else {
                return None;
            };
            name = global.clone();
            path.remove(0);
        }
        Some(Statement::Assign { name, path, value })
    }

    fn keyword_statement(&mut self, constants: &Constants) -> Option<Statement> {
        self.eat("\\");
        let Some(Token::Ident(word)) = self.next() else {
            return None;
        };
        let is = |name: &str| word.eq_ignore_ascii_case(name);
        if is("return") || is("exit") || is("die") || is("__halt_compiler") {
            return Some(Statement::Stop);
        }
        if is("define") {
            let mut args = self.call_arguments(constants)?.into_iter();
            let (Some(PhpValue::Str(name)), Some(value), None) =
                (args.next(), args.next(), args.nth(1))
            else {
                return None;
            };
            self.end()?;
            return Some(Statement::Define(vec![(name, value)]));
        }
        if is("date_default_timezone_set") {
            let args = self.call_arguments(constants)?;
            let [PhpValue::Str(zone)] = <[PhpValue; 1]>::try_from(args).ok()? else {
                return None;
            };
            self.end()?;
            return Some(Statement::Timezone(zone));
        }
        if is("const") {
            let mut defined = Vec::new();
            loop {
                let Some(Token::Ident(name)) = self.next() else {
                    return None;
                };
                self.expect("=")?;
                defined.push((name.clone(), self.expr(constants, 0)?));
                if !self.eat(",") {
                    break;
                }
            }
            self.end()?;
            return Some(Statement::Define(defined));
        }
        None
    }

    /// `( expr, expr, ... )` with an optional trailing comma.
    fn call_arguments(&mut self, constants: &Constants) -> Option<Vec<PhpValue>> {
        self.expect("(")?;
        let mut args = Vec::new();
        while !self.eat(")") {
            args.push(self.expr(constants, 1)?);
            if !self.eat(",") {
                self.expect(")")?;
                break;
            }
        }
        Some(args)
    }

    /// `unary ('.' unary)*`: literals joined with `.`.
    fn expr(&mut self, constants: &Constants, depth: usize) -> Option<PhpValue> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut value = self.unary(constants, depth)?;
        while self.eat(".") {
            let right = self.unary(constants, depth)?;
            let mut text = into_string(value);
            text.push_str(&into_string(right));
            value = PhpValue::Str(text);
        }
        Some(value)
    }

    fn unary(&mut self, constants: &Constants, depth: usize) -> Option<PhpValue> {
        if depth > MAX_DEPTH {
            return None;
        }
        if self.eat("-") {
            return negate(self.unary(constants, depth + 1)?);
        }
        if self.eat("+") {
            return to_number(self.unary(constants, depth + 1)?);
        }
        if self.eat("!") {
            let value = self.unary(constants, depth + 1)?;
            return Some(PhpValue::Bool(!value.is_truthy()));
        }
        if let Some(cast) = self.cast() {
            return cast.apply(self.unary(constants, depth + 1)?);
        }
        self.primary(constants, depth)
    }

    /// `(int)`, `(string)`... when the next three tokens are one.
    fn cast(&mut self) -> Option<Cast> {
        let (Some(Token::Punct("(")), Some(Token::Ident(name)), Some(Token::Punct(")"))) =
            (self.peek(), self.peek_at(1), self.peek_at(2))
        else {
            return None;
        };
        let cast = Cast::named(name)?;
        self.pos += 3;
        Some(cast)
    }

    fn primary(&mut self, constants: &Constants, depth: usize) -> Option<PhpValue> {
        match self.next()? {
            Token::Int(i) => Some(PhpValue::Int(*i)),
            Token::Float(f) => Some(PhpValue::Float(*f)),
            Token::Str(s) => Some(PhpValue::Str(s.clone())),
            Token::Punct("[") => self.array(constants, depth, "]"),
            Token::Punct("(") => {
                let value = self.expr(constants, depth + 1)?;
                self.expect(")")?;
                Some(value)
            }
            Token::Punct("\\") => match self.next()? {
                Token::Ident(name) => self.constant(name, constants, depth),
                _ => None,
            },
            Token::Ident(name) if name.eq_ignore_ascii_case("array") && self.eat("(") => {
                self.array(constants, depth, ")")
            }
            Token::Ident(name) => self.constant(name, constants, depth),
            _ => None,
        }
    }

    /// A constant's value; `None` for function calls, class constants and undefined names
    /// (PHP 8 throws for those).
    fn constant(&self, name: &str, constants: &Constants, depth: usize) -> Option<PhpValue> {
        if self.is("(") || self.is("::") || self.is("\\") {
            return None;
        }
        for (literal, value) in [
            ("true", PhpValue::Bool(true)),
            ("false", PhpValue::Bool(false)),
            ("null", PhpValue::Null),
        ] {
            if name.eq_ignore_ascii_case(literal) {
                return Some(value);
            }
        }
        let value = match name {
            "PHP_EOL" => PhpValue::Str("\n".into()),
            "DIRECTORY_SEPARATOR" => PhpValue::Str("/".into()),
            "PHP_INT_MAX" => PhpValue::Int(i64::MAX),
            "PHP_INT_MIN" => PhpValue::Int(i64::MIN),
            "PHP_INT_SIZE" => PhpValue::Int(8),
            _ => {
                let value = constants.get(name)?;
                // Constants can hold arrays; keep any value built from them within the
                // nesting limit.
                if depth + nesting(value) > MAX_DEPTH {
                    return None;
                }
                value.clone()
            }
        };
        Some(value)
    }

    /// The items of `[...]` or `array(...)`, after the opening bracket.
    fn array(&mut self, constants: &Constants, depth: usize, close: &str) -> Option<PhpValue> {
        let mut entries = Entries::default();
        // PHP 8.3+: the next automatic key is one past the largest integer key so far.
        let mut next_free: Option<i64> = None;
        let mut full = false;
        while !self.eat(close) {
            let first = self.expr(constants, depth + 1)?;
            let (key, value) = if self.eat("=>") {
                (to_key(first)?, self.expr(constants, depth + 1)?)
            } else if full {
                return None;
            } else {
                (PhpKey::Int(next_free.unwrap_or(0)), first)
            };
            if let PhpKey::Int(i) = key {
                if next_free.is_none_or(|next| i >= next) {
                    match i.checked_add(1) {
                        Some(next) => next_free = Some(next),
                        None => full = true,
                    }
                }
            }
            entries.insert(key, value);
            if !self.eat(",") {
                self.expect(close)?;
                break;
            }
        }
        Some(PhpValue::Array(entries.into_items()))
    }

    /// Skips one statement without running it: up to `;` outside brackets, or up to the
    /// `}` closing a block at the top (with its `else`/`catch` parts), or up to the `;`
    /// after `endif`/`endwhile`... for PHP's alternative `if (...): ... endif;` syntax.
    /// Always consumes at least one token. Iterative, so any nesting is fine.
    fn skip_statement(&mut self) {
        let mut depth = 0usize;
        let mut open_alternative_blocks = 0usize;
        let mut keyword_before_paren: Option<bool> = None;
        let mut condition: Option<bool> = None;
        while let Some(token) = self.next() {
            let after_keyword = keyword_before_paren.take();
            match token {
                Token::Punct("(") => {
                    if depth == 0 {
                        condition = after_keyword;
                    }
                    depth += 1;
                }
                Token::Punct("[" | "{") => depth += 1,
                Token::Punct(")" | "]") => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        // `if (...):` opens a block that `endif;` closes.
                        let opens_block = condition.take();
                        if opens_block.is_some() && self.eat(":") && opens_block == Some(true) {
                            open_alternative_blocks += 1;
                        }
                    }
                }
                Token::Punct("}") => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 && open_alternative_blocks == 0 {
                        let continues = matches!(self.peek(), Some(Token::Ident(word))
                            if ["else", "elseif", "catch", "finally"]
                                .iter()
                                .any(|k| word.eq_ignore_ascii_case(k)));
                        if !continues {
                            self.eat(";");
                            return;
                        }
                    }
                }
                Token::Punct(";") if depth == 0 && open_alternative_blocks == 0 => return,
                Token::Ident(word) if depth == 0 => {
                    let is = |names: &[&str]| names.iter().any(|k| word.eq_ignore_ascii_case(k));
                    if is(&["if", "while", "for", "foreach", "switch", "declare"]) {
                        keyword_before_paren = Some(true);
                    } else if is(&["elseif"]) {
                        keyword_before_paren = Some(false);
                    } else if is(&["else"]) {
                        self.eat(":");
                    } else if is(&[
                        "endif",
                        "endwhile",
                        "endfor",
                        "endforeach",
                        "endswitch",
                        "enddeclare",
                    ]) {
                        open_alternative_blocks = open_alternative_blocks.saturating_sub(1);
                    }
                }
                _ => {}
            }
        }
    }
}

/// How many array levels a value has.
fn nesting(value: &PhpValue) -> usize {
    match value {
        PhpValue::Array(items) => 1 + items.iter().map(|(_, v)| nesting(v)).max().unwrap_or(0),
        _ => 0,
    }
}

// ---------------------------------------------------------------------------------------
// Conversions, as PHP does them
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Cast {
    Bool,
    Int,
    Float,
    Str,
    Array,
}

impl Cast {
    fn named(name: &str) -> Option<Cast> {
        let is = |names: &[&str]| names.iter().any(|n| name.eq_ignore_ascii_case(n));
        if is(&["bool", "boolean"]) {
            Some(Cast::Bool)
        } else if is(&["int", "integer"]) {
            Some(Cast::Int)
        } else if is(&["float", "double"]) {
            Some(Cast::Float)
        } else if is(&["string", "binary"]) {
            Some(Cast::Str)
        } else if is(&["array"]) {
            Some(Cast::Array)
        } else {
            None
        }
    }

    fn apply(self, value: PhpValue) -> Option<PhpValue> {
        Some(match self {
            Cast::Bool => PhpValue::Bool(value.is_truthy()),
            Cast::Int => PhpValue::Int(match value {
                PhpValue::Int(i) => i,
                PhpValue::Float(f) => float_to_int(f),
                // Strings saturate instead of wrapping (`zend_dval_to_lval_cap`).
                PhpValue::Str(s) => match numeric_prefix(&s) {
                    Some((PhpValue::Int(i), _)) => i,
                    Some((PhpValue::Float(f), _)) if f.is_finite() => f as i64,
                    _ => 0,
                },
                other => i64::from(other.is_truthy()),
            }),
            Cast::Float => PhpValue::Float(match value {
                PhpValue::Int(i) => i as f64,
                PhpValue::Float(f) => f,
                PhpValue::Str(s) => match numeric_prefix(&s) {
                    Some((PhpValue::Int(i), _)) => i as f64,
                    Some((PhpValue::Float(f), _)) => f,
                    _ => 0.0,
                },
                other => f64::from(u8::from(other.is_truthy())),
            }),
            Cast::Str => PhpValue::Str(into_string(value)),
            Cast::Array => match value {
                PhpValue::Array(items) => PhpValue::Array(items),
                PhpValue::Null => PhpValue::Array(Vec::new()),
                scalar => PhpValue::Array(vec![(PhpKey::Int(0), scalar)]),
            },
        })
    }
}

/// PHP's string conversion (`.` and `(string)`).
fn into_string(value: PhpValue) -> String {
    match value {
        PhpValue::Str(s) => s,
        PhpValue::Null | PhpValue::Bool(false) => String::new(),
        PhpValue::Bool(true) => "1".into(),
        PhpValue::Int(i) => i.to_string(),
        PhpValue::Float(f) => float_to_string(f),
        PhpValue::Array(_) => "Array".into(),
    }
}

/// PHP's float-to-int conversion on 64-bit: truncation, modular outside the range, 0 for
/// infinities and NaN.
fn float_to_int(f: f64) -> i64 {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    if !f.is_finite() {
        return 0;
    }
    if (-TWO_POW_63..TWO_POW_63).contains(&f) {
        return f as i64;
    }
    let mut modulus = f.trunc() % TWO_POW_64;
    if modulus < 0.0 {
        modulus += TWO_POW_64;
    }
    // Wrapping reinterpretation is the point here.
    (modulus as u64) as i64
}

/// The whitespace PHP allows around numeric strings: space, `\t`, `\n`, `\r`, `\v`, `\f`.
fn is_php_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// The number a string starts with (after whitespace) and the byte length it took, if it
/// starts with one: `Int` when it has no `.` or exponent and fits, `Float` otherwise.
fn numeric_prefix(text: &str) -> Option<(PhpValue, usize)> {
    let bytes = text.as_bytes();
    let at = |i: usize| bytes.get(i).copied();
    let digits_from = |mut i: usize| {
        while at(i).is_some_and(|b| b.is_ascii_digit()) {
            i += 1;
        }
        i
    };
    let mut i = 0;
    while at(i).is_some_and(is_php_space) {
        i += 1;
    }
    let start = i;
    if matches!(at(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let whole_start = i;
    i = digits_from(i);
    let mut is_float = false;
    let mut digit_count = i - whole_start;
    if at(i) == Some(b'.') {
        let fraction_end = digits_from(i + 1);
        digit_count += fraction_end - (i + 1);
        if digit_count > 0 {
            is_float = true;
            i = fraction_end;
        }
    }
    if digit_count == 0 {
        return None;
    }
    if matches!(at(i), Some(b'e' | b'E')) {
        let mut e = i + 1;
        if matches!(at(e), Some(b'+' | b'-')) {
            e += 1;
        }
        let end = digits_from(e);
        if end > e {
            is_float = true;
            i = end;
        }
    }
    let number = text.get(start..i)?;
    let value = match number.parse::<i64>() {
        Ok(int) if !is_float => PhpValue::Int(int),
        _ => PhpValue::Float(number.parse().ok()?),
    };
    Some((value, i))
}

/// PHP's unary `+`: numbers stay, `null`/booleans become 0/1, numeric strings (allowing
/// surrounding whitespace) become numbers; anything else throws in PHP 8.
fn to_number(value: PhpValue) -> Option<PhpValue> {
    match value {
        PhpValue::Int(_) | PhpValue::Float(_) => Some(value),
        PhpValue::Null => Some(PhpValue::Int(0)),
        PhpValue::Bool(b) => Some(PhpValue::Int(i64::from(b))),
        PhpValue::Str(s) => {
            let (number, used) = numeric_prefix(&s)?;
            let rest = s.get(used..)?;
            rest.bytes().all(is_php_space).then_some(number)
        }
        PhpValue::Array(_) => None,
    }
}

fn negate(value: PhpValue) -> Option<PhpValue> {
    Some(match to_number(value)? {
        PhpValue::Int(i) => i
            .checked_neg()
            .map_or(PhpValue::Float(-(i as f64)), PhpValue::Int),
        PhpValue::Float(f) => PhpValue::Float(-f),
        _ => return None,
    })
}

/// A value used as an array key; arrays cannot be keys.
fn to_key(value: PhpValue) -> Option<PhpKey> {
    Some(match value {
        PhpValue::Int(i) => PhpKey::Int(i),
        PhpValue::Str(s) => PhpKey::from(s.as_str()),
        PhpValue::Float(f) => PhpKey::Int(float_to_int(f)),
        PhpValue::Bool(b) => PhpKey::Int(i64::from(b)),
        PhpValue::Null => PhpKey::Str(String::new()),
        PhpValue::Array(_) => return None,
    })
}

// ---------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Token {
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

fn tokenize(source: &str) -> Vec<Token> {
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
    use super::*;

    fn str(s: &str) -> PhpValue {
        PhpValue::Str(s.into())
    }

    /// The value of `$x` after `<?php $x = {expr};`.
    fn eval(expr: &str) -> Option<PhpValue> {
        parse_config(&format!("<?php $x = {expr};"))
            .variables
            .remove("x")
    }

    fn list(items: &[(PhpKey, PhpValue)]) -> PhpValue {
        PhpValue::Array(items.to_vec())
    }

    fn k(key: &str) -> PhpKey {
        PhpKey::from(key)
    }

    const REALISTIC: &str = r#"<?php
/**
 * ComusThumbz configuration. Generated by the installer; edit with care.
 * Don't put "?>" at the end of this file.
 */
// Database settings
$dbhost = "localhost"; # the usual
$dbuser = 'ct_user';
$dbpass = 'p@ss;word//not-a-comment?>still-a-string';
$dbname = "comus_thumbz";

$link = mysqli_connect($dbhost, $dbuser, $dbpass, $dbname);
mysqli_set_charset($link, 'utf8mb4');

define('CT_VERSION', '5.2.1');
define("CT_DEBUG", false, true);
define('CT_ROOT', '/var/www/ct');
define('CT_DAT', CT_ROOT . '/dat');

include 'functions.inc.php';
include_once(CT_ROOT . "/lib/db.php");

date_default_timezone_set('Europe/Amsterdam');

$license_config = array(
    'license_key' => 'ABCDEF1234567890',
    'domain'      => "example.com",   // no www
    'email'       => 'owner@example.com',
);
$license_config['api_url'] = 'http://127.0.0.1:8081/api.php';

/* Features
   $features = array('broken' => true);
*/
$features = [
    'thumbnails' => true,
    'ai' => ['enabled' => TRUE, 'batch' => 0x20, 'models' => ['fast', 'good',],],
    'max_upload' => 64_000_000,
];

if (!defined('CT_INSTALLED')) {
    $license_config['domain'] = 'wrong.example';
    die("Not installed; run install.php");
}

$cache_time = 3600;
$site_name = "My \"Thumbs\" Site\n";
?>
"#;

    #[test]
    fn a_realistic_config_file_is_read_like_php_would() {
        let config = parse_config(REALISTIC);
        let license = &config.variables["license_config"];
        let text = |key: &str| license.get(key).and_then(PhpValue::as_text);
        assert_eq!(text("license_key").as_deref(), Some("ABCDEF1234567890"));
        assert_eq!(text("domain").as_deref(), Some("example.com"));
        assert_eq!(text("email").as_deref(), Some("owner@example.com"));
        assert_eq!(
            text("api_url").as_deref(),
            Some("http://127.0.0.1:8081/api.php")
        );
        assert_eq!(
            config.variables["dbpass"],
            str("p@ss;word//not-a-comment?>still-a-string")
        );
        assert_eq!(config.variables["dbhost"], str("localhost"));
        assert_eq!(config.variables["cache_time"], PhpValue::Int(3600));
        assert_eq!(config.variables["site_name"], str("My \"Thumbs\" Site\n"));
        assert_eq!(config.constants["CT_VERSION"], str("5.2.1"));
        assert_eq!(config.constants["CT_DEBUG"], PhpValue::Bool(false));
        assert_eq!(config.constants["CT_DAT"], str("/var/www/ct/dat"));
        assert_eq!(config.timezone.as_deref(), Some("Europe/Amsterdam"));

        let features = &config.variables["features"];
        let ai = features.get("ai").unwrap();
        assert_eq!(ai.get("batch"), Some(&PhpValue::Int(32)));
        assert_eq!(ai.get("enabled"), Some(&PhpValue::Bool(true)));
        assert_eq!(
            ai.get("models"),
            Some(&list(&[(k("0"), str("fast")), (k("1"), str("good"))]))
        );
        assert_eq!(features.get("max_upload"), Some(&PhpValue::Int(64_000_000)));

        // mysqli_connect, mysqli_set_charset, two includes and the if block.
        assert_eq!(config.skipped, 5);
        assert!(!config.variables.contains_key("link"));
        assert_eq!(features.get("broken"), None);
        // The file's license_config has exactly the four keys, in order.
        let PhpValue::Array(items) = license else {
            panic!("not an array")
        };
        let keys: Vec<_> = items.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(
            keys,
            [k("license_key"), k("domain"), k("email"), k("api_url")]
        );
    }

    #[test]
    fn later_assignments_overwrite_earlier_ones_in_place() {
        let config = parse_config(
            "<?php $a = ['x' => 1, 'y' => 2]; $a['x'] = 3; $b = 1; $b = 'two'; \
             $c = ['k' => 1, 'k' => 2, 'j' => 0];",
        );
        assert_eq!(
            config.variables["a"],
            list(&[(k("x"), PhpValue::Int(3)), (k("y"), PhpValue::Int(2))])
        );
        assert_eq!(config.variables["b"], str("two"));
        assert_eq!(
            config.variables["c"],
            list(&[(k("k"), PhpValue::Int(2)), (k("j"), PhpValue::Int(0))])
        );
    }

    #[test]
    fn nested_assignments_create_the_arrays_they_need() {
        let config = parse_config(
            "<?php $cfg['db']['host'] = 'h'; $cfg['db']['port'] = 3306; $cfg['list'][] = 'a'; \
             $cfg['list'][] = 'b'; $n = null; $n['k'] = 1; $GLOBALS['g'] = 'global';",
        );
        let cfg = &config.variables["cfg"];
        assert_eq!(cfg.get("db").unwrap().get("host"), Some(&str("h")));
        assert_eq!(
            cfg.get("db").unwrap().get("port"),
            Some(&PhpValue::Int(3306))
        );
        assert_eq!(
            cfg.get("list"),
            Some(&list(&[(k("0"), str("a")), (k("1"), str("b"))]))
        );
        assert_eq!(config.variables["n"], list(&[(k("k"), PhpValue::Int(1))]));
        assert_eq!(config.variables["g"], str("global"));
        assert_eq!(config.skipped, 0);
    }

    #[test]
    fn assigning_into_a_scalar_fails_and_changes_nothing() {
        let config =
            parse_config("<?php $s = 'text'; $s['k'] = 1; $a = ['x' => 5]; $a['x']['y'] = 1;");
        assert_eq!(config.variables["s"], str("text"));
        assert_eq!(config.variables["a"], list(&[(k("x"), PhpValue::Int(5))]));
        assert_eq!(config.skipped, 2);
    }

    #[test]
    fn arrays_take_both_spellings_trailing_commas_and_php_keys() {
        assert_eq!(
            eval("array(1, 'a' => 2, 5 => 3, 4, '7' => 5, '07' => 6, true => 7, null => 8,)"),
            Some(list(&[
                (PhpKey::Int(0), PhpValue::Int(1)),
                (k("a"), PhpValue::Int(2)),
                (PhpKey::Int(5), PhpValue::Int(3)),
                (PhpKey::Int(6), PhpValue::Int(4)),
                (PhpKey::Int(7), PhpValue::Int(5)),
                (PhpKey::Str("07".into()), PhpValue::Int(6)),
                (PhpKey::Int(1), PhpValue::Int(7)),
                (PhpKey::Str(String::new()), PhpValue::Int(8)),
            ]))
        );
        assert_eq!(eval("[]"), Some(PhpValue::Array(vec![])));
        assert_eq!(eval("ARRAY()"), Some(PhpValue::Array(vec![])));
        assert_eq!(
            eval("[[1, [2]], -5 => 'n', 'm']"),
            Some(list(&[
                (
                    PhpKey::Int(0),
                    list(&[
                        (PhpKey::Int(0), PhpValue::Int(1)),
                        (PhpKey::Int(1), list(&[(PhpKey::Int(0), PhpValue::Int(2))])),
                    ])
                ),
                (PhpKey::Int(-5), str("n")),
                (PhpKey::Int(1), str("m")),
            ]))
        );
        assert_eq!(eval("[1,,2]"), None);
        assert_eq!(eval("[[1] => 2]"), None);
    }

    #[test]
    fn get_finds_integer_keys_by_their_decimal_text() {
        let value = eval("[5 => 'five', '-3' => 'minus', '05' => 'padded']").unwrap();
        assert_eq!(value.get("5"), Some(&str("five")));
        assert_eq!(value.get("-3"), Some(&str("minus")));
        assert_eq!(value.get("05"), Some(&str("padded")));
        assert_eq!(value.get("6"), None);
        assert_eq!(str("x").get("0"), None);
        assert_eq!(PhpKey::from("-0"), PhpKey::Str("-0".into()));
        assert_eq!(PhpKey::from("+1"), PhpKey::Str("+1".into()));
        assert_eq!(PhpKey::from("0"), PhpKey::Int(0));
        assert_eq!(
            PhpKey::from("9223372036854775808"),
            PhpKey::Str("9223372036854775808".into())
        );
    }

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
    fn true_false_and_null_ignore_case() {
        assert_eq!(eval("TRUE"), Some(PhpValue::Bool(true)));
        assert_eq!(eval("False"), Some(PhpValue::Bool(false)));
        assert_eq!(eval("NuLL"), Some(PhpValue::Null));
        assert_eq!(eval("\\true"), Some(PhpValue::Bool(true)));
    }

    #[test]
    fn literals_and_constants_concatenate() {
        assert_eq!(
            eval("'a' . \"b\" . 1 . 1.5 . true . false . null"),
            Some(str("ab11.51"))
        );
        assert_eq!(eval("-1 . 'x'"), Some(str("-1x")));
        assert_eq!(eval("('a' . 'b') . PHP_EOL"), Some(str("ab\n")));
        let config = parse_config(
            "<?php define('BASE', '/srv'); const SUB = '/dat', N = 2; $p = BASE . SUB . N;",
        );
        assert_eq!(config.variables["p"], str("/srv/dat2"));
        assert_eq!(eval("UNDEFINED_CONSTANT . 'x'"), None);
        assert_eq!(eval("$y . 'x'"), None);
    }

    #[test]
    fn casts_convert_like_php() {
        assert_eq!(eval("(bool) '0'"), Some(PhpValue::Bool(false)));
        assert_eq!(eval("(BOOLEAN)'a'"), Some(PhpValue::Bool(true)));
        assert_eq!(eval("(int) '12abc'"), Some(PhpValue::Int(12)));
        assert_eq!(eval("(int)' 1e3'"), Some(PhpValue::Int(1000)));
        assert_eq!(eval("(int)'abc'"), Some(PhpValue::Int(0)));
        assert_eq!(
            eval("(int)'99999999999999999999'"),
            Some(PhpValue::Int(i64::MAX))
        );
        assert_eq!(eval("(integer) 3.99"), Some(PhpValue::Int(3)));
        assert_eq!(eval("(int) -3.99"), Some(PhpValue::Int(-3)));
        assert_eq!(eval("(string) 42 . '!'"), Some(str("42!")));
        assert_eq!(eval("(float) '2.5kg'"), Some(PhpValue::Float(2.5)));
        assert_eq!(
            eval("(array) 'x'"),
            Some(list(&[(PhpKey::Int(0), str("x"))]))
        );
        assert_eq!(eval("(object) 'x'"), None);
        assert_eq!(eval("!0"), Some(PhpValue::Bool(true)));
        assert_eq!(eval("-'5'"), Some(PhpValue::Int(-5)));
        assert_eq!(eval("-'abc'"), None);
        assert_eq!(float_to_int(1e19), -8_446_744_073_709_551_616);
    }

    #[test]
    fn defines_keep_their_first_value_and_the_last_timezone_wins() {
        let config = parse_config(
            "<?php define('A', 1); define('A', 2); \\define('B', [1, 2],); \
             date_default_timezone_set('UTC'); DATE_DEFAULT_TIMEZONE_SET(\"America/New_York\");",
        );
        assert_eq!(config.constants["A"], PhpValue::Int(1));
        assert_eq!(
            config.constants["B"],
            list(&[
                (PhpKey::Int(0), PhpValue::Int(1)),
                (PhpKey::Int(1), PhpValue::Int(2))
            ])
        );
        assert_eq!(config.timezone.as_deref(), Some("America/New_York"));
        assert_eq!(config.skipped, 0);
        let bad = parse_config("<?php define(A, 1); define('B'); date_default_timezone_set($tz);");
        assert!(bad.constants.is_empty());
        assert_eq!(bad.timezone, None);
        assert_eq!(bad.skipped, 3);
    }

    #[test]
    fn other_statements_are_skipped_without_running_them() {
        let config = parse_config(
            r#"<?php
            require_once __DIR__ . '/x.php';
            function setup() { $a = 'in function'; return 1; }
            if ($x) { $a = 'if'; } elseif ($y) { $a = 'elseif'; } else { $a = "else }"; }
            try { $a = 'try'; } catch (Exception $e) { $a = 'catch'; } finally { $a = 'f'; }
            $f = function () { $a = 'closure'; };
            if ($x): $a = 'alt'; if ($y): $a = 'nested'; endif; else: $a = 'alt else'; endif;
            foreach ($list as $item): $a = 'loop'; endforeach;
            while (false) $a = 'while';
            $b = $undefined + 1;
            $c = 1 + 2;
            $d = <<<EOT
              heredoc; with "quotes" and ?> and } inside
              EOT . strtoupper('x');
            echo `ls; rm`;
            class Config { const A = 1; public $a = 'class'; }
            $a = 'kept';
            "#,
        );
        assert_eq!(config.variables.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(config.variables["a"], str("kept"));
        assert!(config.constants.is_empty());
        assert_eq!(config.skipped, 13);
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
    fn a_top_level_return_ends_the_file() {
        let config = parse_config("<?php $a = 1; return; $b = 2;");
        assert!(config.variables.contains_key("a"));
        assert!(!config.variables.contains_key("b"));
    }

    #[test]
    fn comments_of_all_three_kinds_hide_code() {
        let config = parse_config(
            "<?php\n// $a = 1;\n# $b = 2;\n/* $c = 3;\n $d = 4; */ $e = /* inline */ 5; #[Attr]\n$f = 6; /* unterminated",
        );
        assert_eq!(config.variables.keys().collect::<Vec<_>>(), ["e", "f"]);
    }

    #[test]
    fn truthiness_follows_php() {
        for falsy in ["''", "'0'", "0", "0.0", "-0.0", "false", "null", "[]"] {
            assert!(!eval(falsy).unwrap().is_truthy(), "{falsy}");
        }
        for truthy in [
            "'a'", "'0.0'", "' '", "1", "-1", "0.1", "true", "[0]", "'false'",
        ] {
            assert!(eval(truthy).unwrap().is_truthy(), "{truthy}");
        }
    }

    #[test]
    fn as_text_prints_scalars_only() {
        assert_eq!(PhpValue::Int(-7).as_text().as_deref(), Some("-7"));
        assert_eq!(str("s").as_text().as_deref(), Some("s"));
        assert_eq!(PhpValue::Bool(true).as_text(), None);
        assert_eq!(PhpValue::Null.as_text(), None);
        assert_eq!(PhpValue::Array(vec![]).as_text(), None);
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_skipped_not_a_stack_overflow() {
        let at_limit = format!(
            "<?php $a = {}1{};",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        assert!(parse_config(&at_limit).variables.contains_key("a"));
        for source in [
            format!(
                "<?php $a = {}1{}; $b = 1;",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
            format!("<?php $a = {}1; $b = 1;", "-".repeat(100_000)),
            format!(
                "<?php $a = {}1{}; $b = 1;",
                "(".repeat(100_000),
                ")".repeat(100_000)
            ),
            format!("<?php $a = {}1; $b = 1;", "(int)".repeat(100_000)),
            format!("<?php $a{} = 1; $b = 1;", "[1]".repeat(100_000)),
            format!(
                "<?php $a = {}{}; $b = 1;",
                "array(".repeat(100_000),
                ")".repeat(100_000)
            ),
        ] {
            let config = parse_config(&source);
            assert!(!config.variables.contains_key("a"));
            assert_eq!(config.variables["b"], PhpValue::Int(1));
        }
        // Constants cannot be used to build values past the limit either.
        let mut source = format!("<?php define('C0', {}1{});", "[".repeat(60), "]".repeat(60));
        for n in 1..100 {
            source.push_str(&format!("define('C{n}', [[[[[[C{}]]]]]]);", n - 1));
        }
        let config = parse_config(&source);
        assert!(
            config
                .constants
                .values()
                .all(|value| nesting(value) <= MAX_DEPTH + 1)
        );
    }

    #[test]
    fn any_prefix_of_a_real_file_parses_without_panicking() {
        for (end, _) in REALISTIC.char_indices() {
            parse_config(&REALISTIC[..end]);
        }
    }

    #[test]
    fn random_input_never_panics() {
        const PIECES: &[&str] = &[
            "<?php ",
            "?>",
            "$a",
            "['k']",
            "[]",
            " = ",
            "array(",
            ")",
            "(",
            "[",
            "]",
            "{",
            "}",
            ";",
            ",",
            "=>",
            ".",
            "-",
            "'s\\'",
            "\"d\\",
            "\\x",
            "\\u{",
            "\\777",
            "0x",
            "0b1_",
            "1e",
            ".5",
            "08",
            "<<<EOT\n",
            "<<<'N'\n",
            "EOT",
            "\n",
            "//",
            "#",
            "/*",
            "*/",
            "define",
            "const ",
            "if",
            ":",
            "endif",
            "else",
            "é",
            "😀",
            "\u{feff}",
            "true",
            "(int)",
            "date_default_timezone_set",
            "return",
            "`",
            "\\",
            "\r",
            "GLOBALS",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3000 {
            let mut source = String::new();
            let len = (seed % 60) as usize;
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                source.push_str(PIECES[(seed % PIECES.len() as u64) as usize]);
            }
            parse_config(&source);
            parse_config(&format!("<?php {source}"));
        }
    }
}
