//! What is wrong in a `model` or `llm` declaration that the grammar could
//! not parse. The grammar can only say which field it expected next, at the
//! start of the field it gave up on (``expected `cid`, …, found `input` ``
//! for an `input` whose `;` is missing); the declaration is read again field
//! by field instead, so that the error points at the offending token and says
//! what belongs there.

use super::tokens::{Cursor, Token, expected};
use crate::diagnostics::{Diagnostic, FileId};

/// The syntax error in the `model` or `llm` declaration that holds byte
/// `at` of `src`, where the grammar gave up; `None` when `at` is in no
/// declaration or the declaration reads well field by field (the error is
/// elsewhere).
pub(super) fn diagnose(file: FileId, src: &str, at: usize) -> Option<Diagnostic> {
    let (kind, open) = enclosing_declaration(src, at)?;
    let mut cursor = Cursor::at(src, open);
    let error = |found: Token<'_>, what: &str, form: &str| Some(expected(file, found, what, form));
    loop {
        let field = cursor.next();
        let form = field_form(kind, field.text);
        match (kind, field.text) {
            (_, "}") => return None,
            (_, "") => return error(field, "`}` to close the declaration", "close it with `}`"),
            (Kind::Model, "cid" | "onnx") | (Kind::Llm, "model") => {
                let value = cursor.next_literal();
                if !value.is_string() {
                    return error(value, &format!("a string after `{}`", field.text), form);
                }
            }
            (_, "mode") => {
                let value = cursor.next();
                if !value.is_ident() {
                    return error(value, "a mode after `mode`", form);
                }
            }
            (Kind::Model, "input" | "output") => {
                let name = cursor.next();
                if !name.is_ident() {
                    return error(name, &format!("a tensor name after `{}`", field.text), form);
                }
                let mut colon = cursor.next_literal();
                if colon.is_string() {
                    colon = cursor.next();
                }
                if colon.text != ":" {
                    return error(colon, &format!("`:` after `{} {}`", field.text, name.text), form);
                }
                if let Some((found, what)) = tensor_type(&mut cursor) {
                    return error(found, &what, form);
                }
            }
            (Kind::Llm, "max_tokens" | "temperature") => {
                let value = cursor.next();
                if !is_integer(&value) {
                    let what = format!("a whole number after `{}`", field.text);
                    return error(value, &what, form);
                }
            }
            (Kind::Llm, "stop") => {
                if let Some((found, what)) = string_list(&mut cursor) {
                    return error(found, &what, form);
                }
            }
            _ => {
                let what = match kind {
                    Kind::Model => "a field (`cid`, `onnx`, `mode`, `input` or `output`) or `}`",
                    Kind::Llm => "a field (`model`, `mode`, `max_tokens`, `temperature` or `stop`) or `}`",
                };
                return error(field, what, kind.form());
            }
        }
        let semi = cursor.next();
        if semi.text == "." && matches!(field.text, "temperature" | "max_tokens") {
            let what = match field.text {
                "temperature" => "a whole number: `temperature` is in hundredths (50 for 0.5)",
                _ => "a whole number of tokens",
            };
            return error(semi, what, form);
        }
        if semi.text != ";" {
            return error(semi, &format!("`;` to end the `{}` field", field.text), form);
        }
    }
}

/// What a declaration declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Model,
    Llm,
}

impl Kind {
    /// A declaration of this kind, as the help writes it.
    fn form(self) -> &'static str {
        match self {
            Self::Model => "`model Name { onnx \"path\"; input x: fixed<18>[1, 4]; output y: fixed<18>[1]; }`",
            Self::Llm => "`llm Name { model \"id\"; max_tokens 64; temperature 0; stop [\"\\n\"]; }`",
        }
    }
}

/// How the help writes the field `name` of a `kind` declaration.
fn field_form(kind: Kind, name: &str) -> &'static str {
    match (kind, name) {
        (Kind::Model, "cid") => "`cid \"Qm…\";`",
        (Kind::Model, "onnx") => "`onnx \"../models/file.onnx\";`",
        (_, "mode") => "`mode vanilla;` (or `tee`, `zk`)",
        (Kind::Model, "input") => "`input name: fixed<18>[1, 4];` (or `input name \"graph:name\": …;`)",
        (Kind::Model, "output") => "`output name: fixed<18>[1];` (or `output name \"graph:name\": …;`)",
        (Kind::Llm, "model") => "`model \"meta-llama/Llama-3.1-8B-Instruct\";`",
        (Kind::Llm, "max_tokens") => "`max_tokens 64;`",
        (Kind::Llm, "temperature") => "`temperature 0;` (hundredths: 70 is 0.7)",
        (Kind::Llm, "stop") => "`stop [\"\\n\", \"END\"];`",
        (kind, _) => kind.form(),
    }
}

/// The declaration around byte `at`: its kind and where its fields start
/// (after its `{`), when `at` lies inside its braces. Reads the file's top
/// level from the start, skipping brace groups, strings and comments.
fn enclosing_declaration(src: &str, at: usize) -> Option<(Kind, usize)> {
    let mut cursor = Cursor::at(src, 0);
    let mut found = None;
    let mut depth = 0usize;
    let mut head: Vec<Token<'_>> = Vec::new();
    loop {
        let token = cursor.next();
        if token.text.is_empty() || token.span.start > at {
            return found;
        }
        match token.text {
            "{" => {
                if depth == 0 {
                    found = match head.as_slice() {
                        [.., kw, name] if name.is_ident() && kw.text == "model" => Some((Kind::Model, token.span.end)),
                        [.., kw, name] if name.is_ident() && kw.text == "llm" => Some((Kind::Llm, token.span.end)),
                        _ => None,
                    };
                }
                depth += 1;
            }
            "}" => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    found = None;
                }
            }
            _ => {}
        }
        if depth == 0 {
            head.push(token);
            if head.len() > 2 {
                head.remove(0);
            }
        }
    }
}

/// `fixed<D>`, `int` or `string`, then `[dim, …]`: what is missing, if
/// anything (the token found, and what was expected there).
fn tensor_type<'a>(cursor: &mut Cursor<'a>) -> Option<(Token<'a>, String)> {
    let elem = cursor.next();
    match elem.text {
        "fixed" => {
            let lt = cursor.next();
            if lt.text != "<" {
                return Some((lt, "`<` after `fixed` (`fixed<18>`)".into()));
            }
            let decimals = cursor.next();
            if !is_integer(&decimals) {
                return Some((decimals, "a number of decimals in `fixed<…>`".into()));
            }
            let gt = cursor.next();
            if gt.text != ">" {
                return Some((gt, "`>` to close `fixed<…>`".into()));
            }
        }
        "int" | "string" => {}
        _ => return Some((elem, "a tensor type (`fixed<D>[...]`, `int[...]` or `string[...]`)".into())),
    }
    let open = cursor.next();
    if open.text != "[" {
        return Some((open, "`[` and the tensor's shape (`[1, 4]`)".into()));
    }
    loop {
        let dim = cursor.next();
        if !(is_integer(&dim) || dim.text == "_") {
            return Some((dim, "a dimension (a number, or `_` for any size)".into()));
        }
        let next = cursor.next();
        match next.text {
            "," => {}
            "]" => return None,
            _ => return Some((next, "`,` or `]` in the shape".into())),
        }
    }
}

/// `[ "a", "b", ]`: what is missing, if anything.
fn string_list<'a>(cursor: &mut Cursor<'a>) -> Option<(Token<'a>, String)> {
    let open = cursor.next();
    if open.text != "[" {
        return Some((open, "`[` after `stop`".into()));
    }
    let mut first = true;
    loop {
        let item = cursor.next_literal();
        match item.text {
            "]" => return None,
            _ if item.is_string() => {}
            _ if first => return Some((item, "a string or `]`".into())),
            _ => return Some((item, "a string".into())),
        }
        first = false;
        let next = cursor.next();
        match next.text {
            "," => {}
            "]" => return None,
            _ => return Some((next, "`,` or `]` after a stop string".into())),
        }
    }
}

fn is_integer(token: &Token<'_>) -> bool {
    !token.text.is_empty() && token.text.bytes().all(|b| b.is_ascii_digit())
}
