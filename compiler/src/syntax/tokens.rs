//! The tokens the syntax error diagnoses read again when the grammar
//! could not parse something (`malformed.rs`, `declaration.rs`): words,
//! string literals and single characters, with whitespace and comments
//! skipped.

use std::ops::Range;

use crate::diagnostics::{Diagnostic, FileId};

/// A word, a string literal or one other character.
#[derive(Debug)]
pub(super) struct Token<'a> {
    pub(super) text: &'a str,
    pub(super) span: Range<usize>,
}

impl Token<'_> {
    /// Whether it is a string literal (`"…"`, `'…'`, `unicode"…"`, `hex"…"`).
    pub(super) fn is_string(&self) -> bool {
        self.text.trim_start_matches("unicode").trim_start_matches("hex").starts_with(['"', '\''])
    }

    pub(super) fn is_ident(&self) -> bool {
        self.text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '$')
    }
}

pub(super) struct Cursor<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at byte `pos` of `src`.
    pub(super) fn at(src: &'a str, pos: usize) -> Self {
        Self { src, pos }
    }

    /// Where the next token is read from.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    /// The next token after whitespace and comments; at the end, an empty
    /// token (pointing at the last character, so a label can show it).
    pub(super) fn next(&mut self) -> Token<'a> {
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

    /// [`Cursor::next`], reading a `unicode"…"` or `hex"…"` literal as one token.
    pub(super) fn next_literal(&mut self) -> Token<'a> {
        let token = self.next();
        if matches!(token.text, "unicode" | "hex") && self.src[self.pos..].starts_with(['"', '\'']) {
            let string = self.next();
            let span = token.span.start..string.span.end;
            return Token { text: &self.src[span.clone()], span };
        }
        token
    }

    /// Skips one argument or input value, up to the `,`, `)` or `}` that
    /// ends it outside brackets; returns whether it was empty, and that end.
    pub(super) fn value(&mut self) -> (bool, Token<'a>) {
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

/// The syntax error for `found` where `what` belongs, with the `form` to
/// write as help.
pub(super) fn expected(file: FileId, found: Token<'_>, what: &str, form: &str) -> Diagnostic {
    let shown = match found.text {
        "" => "end of file".to_owned(),
        t => format!("`{t}`"),
    };
    Diagnostic::error("E0001", format!("syntax error: expected {what}, found {shown}"))
        .at(file, found.span, format!("expected {what}"))
        .help(format!("write {form}"))
}
