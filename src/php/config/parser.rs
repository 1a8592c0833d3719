//! Tokens to statements: assignments (`$a['k'][] = ...`, `$GLOBALS['x'] = ...`),
//! `define()`, `const`, `date_default_timezone_set()`, `return`; values built from
//! literals, arrays, constants, casts, unary operators and `.`; and the skipping of every
//! other statement up to its end. Depth is limited to [`MAX_DEPTH`]. Pure.

use std::collections::BTreeMap;

use super::MAX_DEPTH;
use super::lexer::Token;
use super::value::{Cast, PhpKey, PhpValue, into_string, negate, nesting, to_key, to_number};
use crate::php::Entries;

/// A statement understood, not yet applied.
#[derive(Debug)]
pub(super) enum Statement {
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

/// A cursor over a file's tokens.
pub(super) struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
}

type Constants = BTreeMap<String, PhpValue>;

impl<'t> Parser<'t> {
    pub(super) fn new(tokens: &'t [Token]) -> Self {
        Parser { tokens, pos: 0 }
    }

    /// Whether every token has been read.
    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    /// Where the cursor is, for [`Parser::rewind`].
    pub(super) fn position(&self) -> usize {
        self.pos
    }

    /// Goes back to a [`Parser::position`].
    pub(super) fn rewind(&mut self, position: usize) {
        self.pos = position;
    }

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

    pub(super) fn eat(&mut self, punct: &str) -> bool {
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
    pub(super) fn statement(&mut self, constants: &Constants) -> Option<Statement> {
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
    pub(super) fn skip_statement(&mut self) {
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

#[cfg(test)]
mod tests {
    use super::super::test_support::{eval, k, list, str};
    use super::super::{MAX_DEPTH, parse_config};
    use super::*;

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
}
