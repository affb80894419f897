//! What is wrong in an `infer`, `ask` or `chat` expression that the grammar
//! could not parse (its `nml_malformed` rule): the expression is read again
//! token by token from its keyword, so that the error points at the
//! offending token and says what belongs there, rather than calling the
//! keyword a misused identifier.

use std::ops::Range;

use super::ast::Span;
use crate::diagnostics::{Diagnostic, FileId};

/// The syntax error of the malformed expression whose keyword is at `keyword`.
pub(super) fn diagnose(file: FileId, src: &str, keyword: Span) -> Diagnostic {
    let kw = &src[keyword.range()];
    let (callee, form) = match kw {
        "infer" => ("model", "`infer Model { input: value }` or `infer Model(value, ...)`"),
        "ask" => ("llm", "`ask Llm(prompt)`"),
        _ => ("llm", "`chat Llm(messages)`"),
    };
    let error = |token: Token<'_>, what: &str| expected(file, token, what, form);
    let mut cursor = Cursor { src, pos: keyword.end };
    let name = cursor.next();
    if !name.is_ident() {
        return error(name, &format!("the name of a {callee} after `{kw}`"));
    }
    let open = cursor.next();
    match (kw, open.text) {
        ("infer", "{") => loop {
            let input = cursor.next();
            if input.text == "}" {
                break;
            }
            if !input.is_ident() {
                return error(input, "an input name");
            }
            let colon = cursor.next();
            if colon.text != ":" {
                return error(colon, &format!("`:` after input `{}`", input.text));
            }
            let (empty, end) = cursor.value();
            if empty {
                return error(end, &format!("a value for input `{}`", input.text));
            }
            match end.text {
                "," => {}
                "}" => break,
                _ => return error(end, "`,` or `}`"),
            }
        },
        (_, "(") => loop {
            let first = cursor.pos == open.span.end;
            let (empty, end) = cursor.value();
            match end.text {
                ")" if empty && first => break,
                _ if empty => return error(end, "an argument"),
                "," => {}
                ")" => break,
                _ => return error(end, "`,` or `)`"),
            }
        },
        ("infer", _) => return error(open, &format!("`{{` or `(` after `infer {}`", name.text)),
        _ => return error(open, &format!("`(` after `{kw} {}`", name.text)),
    }
    // Every part is in place, so what is wrong is around the expression.
    Diagnostic::error("E0001", format!("syntax error: malformed `{kw}` expression"))
        .at(file, keyword.range(), format!("this `{kw}` expression"))
        .help(format!("write {form}"))
}

fn expected(file: FileId, found: Token<'_>, what: &str, form: &str) -> Diagnostic {
    let shown = match found.text {
        "" => "end of file".to_owned(),
        t => format!("`{t}`"),
    };
    Diagnostic::error("E0001", format!("syntax error: expected {what}, found {shown}"))
        .at(file, found.span, format!("expected {what}"))
        .help(format!("write {form}"))
}

/// A word, a string literal or one other character.
#[derive(Debug)]
struct Token<'a> {
    text: &'a str,
    span: Range<usize>,
}

impl Token<'_> {
    fn is_ident(&self) -> bool {
        self.text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '$')
    }
}

struct Cursor<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// The next token after whitespace and comments; at the end, an empty
    /// token (pointing at the last character, so a label can show it).
    fn next(&mut self) -> Token<'a> {
        self.skip_trivia();
        let rest = &self.src[self.pos..];
        let len = match rest.chars().next() {
            None => 0,
            Some(q @ ('"' | '\'')) => {
                let mut escaped = false;
                rest.char_indices()
                    .skip(1)
                    .find(|&(_, c)| {
                        let end = !escaped && (c == q || c == '\n');
                        escaped = !escaped && c == '\\';
                        end
                    })
                    .map_or(rest.len(), |(i, c)| i + c.len_utf8())
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '$' => {
                rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$')).unwrap_or(rest.len())
            }
            Some(c) => c.len_utf8(),
        };
        let start = self.pos;
        self.pos += len;
        if len == 0 {
            let last = self.src[..start].chars().next_back().map_or(start, |c| start - c.len_utf8());
            return Token { text: "", span: last..start };
        }
        Token { text: &self.src[start..self.pos], span: start..self.pos }
    }

    /// Skips one argument or input value, up to the `,`, `)` or `}` that
    /// ends it outside brackets; returns whether it was empty, and that end.
    fn value(&mut self) -> (bool, Token<'a>) {
        let mut depth = 0usize;
        let mut empty = true;
        loop {
            let t = self.next();
            match t.text {
                "" => return (empty, t),
                "," | ")" | "}" if depth == 0 => return (empty, t),
                "(" | "[" | "{" => depth += 1,
                ")" | "]" | "}" => depth = depth.saturating_sub(1),
                _ => {}
            }
            empty = false;
        }
    }

    fn skip_trivia(&mut self) {
        loop {
            let rest = &self.src[self.pos..];
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with("//") {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else if let Some(body) = trimmed.strip_prefix("/*") {
                self.pos += 2 + body.find("*/").map_or(body.len(), |i| i + 2);
            } else {
                return;
            }
        }
    }
}
