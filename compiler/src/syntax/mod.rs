//! Parsing: `.nml` text to the typed tree of [`ast`].

pub mod ast;
mod declaration;
mod malformed;
mod tokens;

use pest::Parser as _;
use pest::iterators::Pair;

use crate::diagnostics::{Diagnostic, FileId};
use ast::*;

/// The deepest bracket nesting accepted. Real code stays far below; the
/// limit keeps every recursive stage (pest, lowering, solc) on a small stack.
pub const MAX_NESTING: usize = 256;

/// The pest parser generated from `grammar.pest` (its `Rule` enum is
/// generated code without docs).
mod parser {
    #![allow(missing_docs)]
    #[derive(pest_derive::Parser)]
    #[grammar = "syntax/grammar.pest"]
    pub(super) struct NmlParser;
}
use parser::{NmlParser, Rule};

/// Rule calls pest may make per byte of input (and at least [`MIN_CALLS`]):
/// a bound on its backtracking, which a PEG parser without memoisation pays
/// exponentially on some malformed inputs (unclosed `ask X(` inside one
/// another, found by the fuzzer: 2 KB took 51 s). Well-formed files need far
/// fewer (the 10,000-line benchmark file: between 10 and 40 per byte).
pub const CALLS_PER_BYTE: usize = 500;

/// The call budget of a small file.
pub const MIN_CALLS: usize = 2_000_000;

/// Parses one file. Never panics, never hangs; every failure is a diagnostic.
pub fn parse(file: FileId, src: &str) -> Result<SourceUnit, Box<Diagnostic>> {
    let unclosed = check_nesting(file, src)?;
    let budget = MIN_CALLS.max(src.len().saturating_mul(CALLS_PER_BYTE));
    // The limit is process-wide and read when a parse starts; a parse of
    // another file on another thread at the same time gets one of the two
    // budgets, and both stay bounded.
    pest::set_call_limit(std::num::NonZeroUsize::new(budget));
    let mut pairs = NmlParser::parse(Rule::file, src).map_err(|e| {
        if matches!(&e.variant, pest::error::ErrorVariant::CustomError { message } if message == "call limit reached") {
            let (at, label) = match unclosed {
                Some(open) => (open..open + 1, "the parser gave up; this bracket is never closed"),
                None => (0..0, "the parser gave up on this file"),
            };
            return Box::new(
                Diagnostic::error("E0007", "syntax error: this file is too tangled to parse").at(file, at, label).help(
                    format!(
                        "the parser backtracked more than {budget} times, which malformed `infer`/`ask`/`chat` \
                         expressions nested in one another cause; look for an unclosed `(` or `{{` after one"
                    ),
                ),
            );
        }
        let at_end = match e.location {
            pest::error::InputLocation::Pos(p) => src[p..].trim().is_empty(),
            pest::error::InputLocation::Span((s, _)) => src[s..].trim().is_empty(),
        };
        Box::new(match unclosed {
            // Running into the end of the file with a bracket open is best
            // reported at the bracket.
            Some(open) if at_end => {
                let c = &src[open..open + 1];
                Diagnostic::error("E0001", format!("syntax error: unclosed `{c}`"))
                    .at(file, open..open + 1, format!("this `{c}` is never closed"))
                    .help(format!("add the matching `{}`", closing(c)))
            }
            _ => {
                let at = match e.location {
                    pest::error::InputLocation::Pos(p) | pest::error::InputLocation::Span((p, _)) => p,
                };
                declaration::diagnose(file, src, at).unwrap_or_else(|| syntax_error(file, src, e))
            }
        })
    })?;
    let Some(root) = pairs.next() else {
        return Ok(SourceUnit::default());
    };
    if let Some(keyword) = root.clone().into_inner().flatten().find(|p| p.as_rule() == Rule::nml_malformed) {
        return Err(Box::new(malformed::diagnose(file, src, span(&keyword))));
    }
    let items = root.into_inner().filter(|p| p.as_rule() != Rule::EOI).map(item).collect();
    Ok(SourceUnit { items })
}

fn closing(open: &str) -> &'static str {
    match open {
        "{" => "}",
        "(" => ")",
        _ => "]",
    }
}

/// Rejects bracket nesting deeper than [`MAX_NESTING`] before any recursive
/// stage sees it, and returns the innermost bracket left open at the end.
/// Skips strings and comments so their brackets do not count.
fn check_nesting(file: FileId, src: &str) -> Result<Option<usize>, Box<Diagnostic>> {
    let bytes = src.as_bytes();
    let mut i = 0usize;
    let mut open: Vec<usize> = Vec::new();
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i += bytes[i..].iter().position(|&b| b == b'\n').unwrap_or(bytes.len() - i);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2 + src[i + 2..].find("*/").map_or(bytes.len(), |p| p + 2);
            }
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'(' | b'[' => {
                open.push(i);
                if open.len() > MAX_NESTING {
                    return Err(Box::new(
                        Diagnostic::error("E0003", "brackets nested too deeply")
                            .at(file, i..i + 1, format!("nesting depth exceeds {MAX_NESTING} here"))
                            .help("split the expression or the declarations into smaller parts"),
                    ));
                }
            }
            b'}' | b')' | b']' => {
                open.pop();
            }
            _ => {}
        }
        i += 1;
    }
    Ok(open.last().copied())
}

fn syntax_error(file: FileId, src: &str, err: pest::error::Error<Rule>) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    let (start, end) = match err.location {
        InputLocation::Pos(p) => (p, p),
        InputLocation::Span((s, e)) => (s, e),
    };
    // Point at the offending token rather than at nothing.
    let end = if end > start { end } else { src[start..].chars().next().map_or(start, |c| start + c.len_utf8()) };
    let (message, label) = match &err.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<&str> = positives.iter().filter_map(|r| rule_name(*r)).collect();
            names.dedup();
            let found = match next_token(&src[start..]) {
                "" => "end of file".to_owned(),
                t => format!("`{}`", truncate(t, 24)),
            };
            let expected = match names.as_slice() {
                [] => "valid syntax".to_owned(),
                [one] => (*one).to_owned(),
                [init @ .., last] => format!("{} or {last}", init.join(", ")),
            };
            (format!("expected {expected}, found {found}"), format!("expected {expected}"))
        }
        ErrorVariant::CustomError { message } => (message.clone(), message.clone()),
    };
    Diagnostic::error("E0001", format!("syntax error: {message}")).at(file, start..end, label)
}

/// The token at the start of `s`: a word, or one other character.
fn next_token(s: &str) -> &str {
    let s = s.trim_start();
    let word = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$')).unwrap_or(s.len());
    match word {
        0 => s.chars().next().map_or("", |c| &s[..c.len_utf8()]),
        n => &s[..n],
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Readable names of the rules pest reports as expected.
fn rule_name(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "end of file",
        Rule::pragma_nml | Rule::pragma => "`pragma`",
        Rule::import => "`import`",
        Rule::model_decl => "`model`",
        Rule::llm_decl => "`llm`",
        Rule::sol_item => "a Solidity item",
        Rule::cid_field => "`cid`",
        Rule::onnx_field => "`onnx`",
        Rule::mode_field => "`mode`",
        Rule::input_field => "`input`",
        Rule::output_field => "`output`",
        Rule::llm_model_field => "`model`",
        Rule::max_tokens_field => "`max_tokens`",
        Rule::temperature_field => "`temperature`",
        Rule::stop_field => "`stop`",
        Rule::tensor_type => "a tensor type (`fixed<D>[...]`, `int[...]` or `string[...]`)",
        Rule::fixed_type => "`fixed<D>`",
        Rule::int_type => "`int`",
        Rule::string_type => "`string`",
        Rule::integer => "an integer",
        Rule::dynamic_dim => "`_`",
        Rule::ident => "an identifier",
        Rule::string_lit => "a string literal",
        Rule::pragma_value => "a version",
        Rule::semi => "`;`",
        Rule::brace_group => "`{`",
        Rule::paren_group => "`(`",
        Rule::bracket_group => "`[`",
        Rule::infer_named | Rule::infer_pos => "`infer`",
        Rule::ask_expr => "`ask`",
        Rule::chat_expr => "`chat`",
        Rule::named_arg => "`input: expression`",
        Rule::arg => "an expression",
        Rule::kw_misuse => return None,
        _ => return None,
    })
}

fn span(p: &Pair<'_, Rule>) -> Span {
    let s = p.as_span();
    // Repetitions may end with the implicit whitespace they tried to skip.
    let trimmed = s.as_str().trim_end_matches(|c: char| c.is_ascii_whitespace());
    Span::new(s.start(), s.start() + trimmed.len())
}

fn ident(p: Pair<'_, Rule>) -> Ident {
    Spanned { span: span(&p), value: p.as_str().to_owned() }
}

fn string(p: Pair<'_, Rule>) -> StrLit {
    let raw = p.as_str();
    StrLit { value: unescape(raw), span: span(&p) }
}

/// Decodes a Solidity string literal (`"…"`, `'…'`, `unicode"…"` or
/// `hex"…"`) as solc does, then reads its bytes as UTF-8 (lossily: the
/// values nml reads are ids, paths, names and stop sequences, all text).
fn unescape(raw: &str) -> String {
    if let Some(body) = raw.strip_prefix("hex") {
        let digits: Vec<u8> = quoted(body).bytes().filter(|b| *b != b'_').collect();
        let bytes: Vec<u8> = digits
            .chunks(2)
            .filter_map(|pair| std::str::from_utf8(pair).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect();
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    let body = quoted(raw.strip_prefix("unicode").unwrap_or(raw));
    let mut out = Vec::with_capacity(body.len());
    let mut chars = body.chars();
    let push = |out: &mut Vec<u8>, c: char| out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    while let Some(c) = chars.next() {
        if c != '\\' {
            push(&mut out, c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('r') => out.push(b'\r'),
            Some('0') => out.push(0),
            Some('x') => {
                let digits: String = chars.by_ref().take(2).collect();
                out.extend(u8::from_str_radix(&digits, 16).ok());
            }
            Some('u') => {
                let digits: String = chars.by_ref().take(4).collect();
                let c = u32::from_str_radix(&digits, 16).ok().map(|u| char::from_u32(u).unwrap_or('\u{FFFD}'));
                c.into_iter().for_each(|c| push(&mut out, c));
            }
            // A backslash before a line break continues the line.
            Some('\n') | None => {}
            Some(other) => push(&mut out, other),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `s` as a string literal that Solidity and this grammar read back as `s`
/// (`unicode"..."` when it is not ASCII): the inverse of [`unescape`].
pub fn sol_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    if s.is_ascii() { out } else { format!("unicode{out}") }
}

/// A literal's text between its quotes.
fn quoted(literal: &str) -> &str {
    literal.get(1..literal.len().saturating_sub(1)).unwrap_or("")
}

fn item(p: Pair<'_, Rule>) -> Item {
    let sp = span(&p);
    match p.as_rule() {
        Rule::pragma_nml => {
            let version =
                p.into_inner().next().map(|v| Spanned { span: span(&v), value: v.as_str().trim().to_owned() });
            Item::PragmaNml { version, span: sp }
        }
        Rule::pragma => {
            let mut inner = p.into_inner();
            let name = inner.next().map(ident).unwrap_or(Spanned { value: String::new(), span: sp });
            let value = inner.next().map(|v| Spanned { span: span(&v), value: v.as_str().trim().to_owned() });
            Item::Pragma { name, value, span: sp }
        }
        Rule::import => {
            let path = p
                .into_inner()
                .find(|q| q.as_rule() == Rule::string_lit)
                .map(string)
                .unwrap_or(StrLit { value: String::new(), span: sp });
            Item::Import { path, span: sp }
        }
        Rule::model_decl => Item::Model(model_decl(p)),
        Rule::llm_decl => Item::Llm(llm_decl(p)),
        _ => Item::Solidity(SolItem { tts: tts(p.into_inner()), span: sp }),
    }
}

fn model_decl(p: Pair<'_, Rule>) -> ModelDecl {
    let sp = span(&p);
    let mut inner = p.into_inner();
    let name = inner.next().map(ident).unwrap_or(Spanned { value: String::new(), span: sp });
    let fields = inner
        .filter_map(|f| {
            let fsp = span(&f);
            let rule = f.as_rule();
            let mut parts = f.into_inner();
            let first = parts.next()?;
            Some(match rule {
                Rule::cid_field => ModelField::Cid(string(first)),
                Rule::onnx_field => ModelField::Onnx(string(first)),
                Rule::mode_field => ModelField::Mode(ident(first)),
                Rule::input_field | Rule::output_field => {
                    let mut next = parts.next()?;
                    let graph_name = if next.as_rule() == Rule::string_lit {
                        let s = string(next);
                        next = parts.next()?;
                        Some(s)
                    } else {
                        None
                    };
                    let decl = TensorDecl { name: ident(first), graph_name, ty: tensor_type(next), span: fsp };
                    if rule == Rule::input_field { ModelField::Input(decl) } else { ModelField::Output(decl) }
                }
                _ => return None,
            })
        })
        .collect();
    ModelDecl { name, fields, span: sp }
}

fn tensor_type(p: Pair<'_, Rule>) -> TensorType {
    let sp = span(&p);
    let mut inner = p.into_inner();
    let (elem, elem_span) = match inner.next() {
        Some(e) => {
            let esp = span(&e);
            let elem = match e.as_rule() {
                Rule::fixed_type => {
                    let d = e.into_inner().next().map_or("", |d| d.as_str());
                    // Out-of-range decimals are reported by sema, quoting the
                    // source; saturate here.
                    Elem::Fixed(d.parse().unwrap_or(u32::MAX))
                }
                Rule::string_type => Elem::String,
                _ => Elem::Fixed(0),
            };
            (elem, esp)
        }
        None => (Elem::Fixed(0), sp),
    };
    let dims = inner
        .map(|d| Spanned {
            span: span(&d),
            value: match d.as_rule() {
                Rule::dynamic_dim => Dim::Dynamic,
                // Likewise for sizes past u64.
                _ => Dim::Fixed(d.as_str().parse().unwrap_or(u64::MAX)),
            },
        })
        .collect();
    TensorType { elem, elem_span, dims, span: sp }
}

fn llm_decl(p: Pair<'_, Rule>) -> LlmDecl {
    let sp = span(&p);
    let mut inner = p.into_inner();
    let name = inner.next().map(ident).unwrap_or(Spanned { value: String::new(), span: sp });
    let fields = inner
        .filter_map(|f| {
            let fsp = span(&f);
            let rule = f.as_rule();
            let mut parts = f.into_inner();
            Some(match rule {
                Rule::llm_model_field => LlmField::Model(string(parts.next()?)),
                Rule::mode_field => LlmField::Mode(ident(parts.next()?)),
                Rule::max_tokens_field => LlmField::MaxTokens(ident(parts.next()?)),
                Rule::temperature_field => LlmField::Temperature(ident(parts.next()?)),
                Rule::stop_field => LlmField::Stop(parts.map(string).collect(), fsp),
                _ => return None,
            })
        })
        .collect();
    LlmDecl { name, fields, span: sp }
}

fn tts<'a>(pairs: impl Iterator<Item = Pair<'a, Rule>>) -> Vec<Tt> {
    pairs.filter_map(tt).collect()
}

fn tt(p: Pair<'_, Rule>) -> Option<Tt> {
    let sp = span(&p);
    Some(match p.as_rule() {
        Rule::ident => Tt::Ident(ident(p)),
        Rule::semi => Tt::Semi(sp),
        Rule::brace_group => Tt::Group { delim: Delim::Brace, tts: tts(p.into_inner()), span: sp },
        Rule::paren_group => Tt::Group { delim: Delim::Paren, tts: tts(p.into_inner()), span: sp },
        Rule::bracket_group => Tt::Group { delim: Delim::Bracket, tts: tts(p.into_inner()), span: sp },
        Rule::kw_misuse => Tt::KwMisuse(ident(p)),
        Rule::infer_named | Rule::infer_pos | Rule::ask_expr | Rule::chat_expr => Tt::Nml(nml_expr(p)),
        _ => return None,
    })
}

fn nml_expr(p: Pair<'_, Rule>) -> NmlExpr {
    let sp = span(&p);
    let kind = match p.as_rule() {
        Rule::infer_named => NmlKind::InferNamed,
        Rule::infer_pos => NmlKind::InferPositional,
        Rule::ask_expr => NmlKind::Ask,
        _ => NmlKind::Chat,
    };
    let mut inner = p.into_inner();
    let target = inner.next().map(ident).unwrap_or(Spanned { value: String::new(), span: sp });
    let args = inner
        .filter_map(|a| match a.as_rule() {
            Rule::named_arg => {
                let mut parts = a.into_inner();
                let name = parts.next().map(ident);
                let expr = parts.next()?;
                Some(Arg { name, span: span(&expr), tts: tts(expr.into_inner()) })
            }
            Rule::arg => Some(Arg { name: None, span: span(&a), tts: tts(a.into_inner()) }),
            _ => None,
        })
        .collect();
    NmlExpr { kind, target, args, span: sp }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(src: &str) -> SourceUnit {
        match parse(FileId(0), src) {
            Ok(u) => u,
            Err(d) => panic!("parse failed: {d:?}"),
        }
    }

    /// Every one-character deletion and every truncation of declarations
    /// parses to a result or a diagnostic with a span inside the file, and
    /// never panics (the declaration and expression diagnoses read the
    /// broken text again token by token).
    #[test]
    fn broken_declarations_are_diagnosed_without_panicking() {
        let src = "pragma nml 0.1;\nmodel V { cid \"Qm\"; onnx 'm.onnx'; mode tee; input r \"in:0\": fixed<18>[1, _]; \
                   output y: int[2]; }\nllm L { model unicode\"é\"; max_tokens 8; temperature 5; stop [\"a\", \"b\",]; }\n\
                   contract C { function f() external { infer V { r: x }; ask L(\"p\"); } }\n";
        assert!(parse(FileId(0), src).is_ok());
        let cuts = src.char_indices().map(|(i, c)| format!("{}{}", &src[..i], &src[i + c.len_utf8()..]));
        let prefixes = src.char_indices().map(|(i, _)| src[..i].to_owned());
        for broken in cuts.chain(prefixes) {
            if let Err(d) = parse(FileId(0), &broken)
                && let Some((_, span)) = &d.location
            {
                assert!(span.start <= span.end && span.end <= broken.len(), "{broken:?}: {d:?}");
                assert!(broken.is_char_boundary(span.start) && broken.is_char_boundary(span.end), "{broken:?}");
            }
        }
    }

    #[test]
    fn parses_model_and_infer() {
        let src = r#"pragma nml 0.1;
model V { cid "Qm"; input returns: fixed<18>[1, 30]; output vol: fixed<18>[_]; }
contract C { function f(int256[30] calldata r) external { V.Output memory o = infer V { returns: r }; } }"#;
        let unit = parse_ok(src);
        assert_eq!(unit.items.len(), 3);
        let Item::Model(m) = &unit.items[1] else { panic!("expected model") };
        assert_eq!(m.name.value, "V");
        assert_eq!(m.fields.len(), 3);
        let Item::Solidity(c) = &unit.items[2] else { panic!("expected solidity") };
        let mut found = Vec::new();
        fn walk(tts: &[Tt], out: &mut Vec<NmlExpr>) {
            for t in tts {
                match t {
                    Tt::Group { tts, .. } => walk(tts, out),
                    Tt::Nml(e) => out.push(e.clone()),
                    _ => {}
                }
            }
        }
        walk(&c.tts, &mut found);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, NmlKind::InferNamed);
        assert_eq!(found[0].args[0].name.as_ref().map(|n| n.value.as_str()), Some("returns"));
        assert_eq!(&src[found[0].args[0].span.range()], "r");
    }

    #[test]
    fn keywords_inside_strings_and_comments_are_text() {
        let src = "contract C { string s = \"infer x\"; // ask me\n }";
        let unit = parse_ok(src);
        let Item::Solidity(c) = &unit.items[0] else { panic!() };
        let Tt::Group { tts, .. } = c.tts.last().unwrap() else { panic!() };
        assert!(tts.iter().all(|t| !matches!(t, Tt::Nml(_) | Tt::KwMisuse(_))));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let src = "{".repeat(100_000);
        let err = parse(FileId(0), &src).unwrap_err();
        assert_eq!(err.code, "nml::E0003");
    }

    #[test]
    fn sol_string_escapes() {
        assert_eq!(sol_string("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(sol_string("é"), "unicode\"é\"");
        assert_eq!(unescape(&sol_string("input:0\u{7f}é")), "input:0\u{7f}é");
    }

    #[test]
    fn unescape_handles_escapes() {
        assert_eq!(unescape(r#""a\nb\"c""#), "a\nb\"c");
        assert_eq!(unescape("'x'"), "x");
        assert_eq!(unescape(r#""\u00e9\x41""#), "éA");
        assert_eq!(unescape(r#""\xc3\xa9""#), "é");
        assert_eq!(unescape(r#"unicode"é""#), "é");
        assert_eq!(unescape(r#"hex"41_42""#), "AB");
    }
}
