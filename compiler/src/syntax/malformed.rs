//! What is wrong in an `infer`, `ask` or `chat` expression that the grammar
//! could not parse (its `nml_malformed` rule): the expression is read again
//! token by token from its keyword, so that the error points at the
//! offending token and says what belongs there, rather than calling the
//! keyword a misused identifier.

use super::ast::Span;
use super::tokens::{Cursor, Token, expected};
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
    let mut cursor = Cursor::at(src, keyword.end);
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
            let first = cursor.pos() == open.span.end;
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
