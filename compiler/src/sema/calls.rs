//! Call sites: where `infer`/`ask`/`chat` may appear, what they name, and
//! their arguments against the declaration.

use std::collections::HashMap;

use super::{Analysis, DeclKind};
use crate::diagnostics::Diagnostic;
use crate::project::Project;
use crate::syntax::ast::{self, Delim, Ident, NmlExpr, NmlKind, SolItem, Tt};

/// Words Solidity reserves: an identifier that nml generates from a user's
/// name (a struct field per output) must not be one of them.
const RESERVED: &[&str] = &[
    "abstract",
    "address",
    "after",
    "alias",
    "anonymous",
    "apply",
    "as",
    "assembly",
    "auto",
    "bool",
    "break",
    "byte",
    "bytes",
    "calldata",
    "case",
    "catch",
    "constant",
    "constructor",
    "continue",
    "contract",
    "copyof",
    "default",
    "define",
    "delete",
    "do",
    "else",
    "emit",
    "enum",
    "event",
    "external",
    "fallback",
    "false",
    "final",
    "fixed",
    "for",
    "function",
    "if",
    "immutable",
    "implements",
    "import",
    "in",
    "indexed",
    "inline",
    "int",
    "interface",
    "internal",
    "is",
    "let",
    "library",
    "macro",
    "mapping",
    "match",
    "memory",
    "modifier",
    "mutable",
    "new",
    "null",
    "of",
    "override",
    "partial",
    "payable",
    "pragma",
    "private",
    "promise",
    "public",
    "pure",
    "receive",
    "reference",
    "relocatable",
    "return",
    "returns",
    "sealed",
    "sizeof",
    "static",
    "storage",
    "string",
    "struct",
    "supports",
    "switch",
    "true",
    "try",
    "type",
    "typedef",
    "typeof",
    "ufixed",
    "uint",
    "unchecked",
    "using",
    "var",
    "view",
    "virtual",
    "while",
];

/// Whether `word` is reserved in Solidity (including sized types like `uint8`).
pub(super) fn is_reserved(word: &str) -> bool {
    if RESERVED.contains(&word) {
        return true;
    }
    let sized = |prefix: &str| {
        word.strip_prefix(prefix).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    sized("uint") || sized("int") || sized("bytes")
}

/// The declared name of a Solidity item (`contract C`, `struct S`, ...).
pub fn item_name(item: &SolItem) -> Option<&Ident> {
    let mut idents = item.tts.iter().filter_map(|t| match t {
        Tt::Ident(i) => Some(i),
        _ => None,
    });
    let mut first = idents.next()?;
    if first.value == "abstract" {
        first = idents.next()?;
    }
    match first.value.as_str() {
        "contract" | "library" | "interface" | "struct" | "enum" | "error" | "event" | "function" | "type" => {
            idents.next()
        }
        _ => None,
    }
}

/// Calls `f` on every NML expression in `tts` (outer before nested) with
/// whether it sits where NML expressions are allowed.
pub fn visit_item(item: &SolItem, f: &mut impl FnMut(&NmlExpr, bool)) {
    let first = item.tts.iter().find_map(|t| match t {
        Tt::Ident(i) => Some(i.value.as_str()),
        _ => None,
    });
    match first {
        Some("contract" | "library" | "interface" | "abstract") => {
            for (i, t) in item.tts.iter().enumerate() {
                match t {
                    Tt::Group { delim: Delim::Brace, tts, .. } if i + 1 == item.tts.len() => visit_members(tts, f),
                    other => visit_tts(std::slice::from_ref(other), false, f),
                }
            }
        }
        _ => visit_member(&item.tts, f),
    }
}

/// Visits a contract body: members end at `;` or at a closing brace group.
fn visit_members(tts: &[Tt], f: &mut impl FnMut(&NmlExpr, bool)) {
    let mut start = 0;
    for (i, t) in tts.iter().enumerate() {
        if matches!(t, Tt::Semi(_) | Tt::Group { delim: Delim::Brace, .. }) {
            // A brace group ends a member unless an expression continues
            // after it (a struct literal inside an initializer is in parens).
            visit_member(&tts[start..=i], f);
            start = i + 1;
        }
    }
    visit_member(&tts[start..], f);
}

/// Visits one member or free item: the trailing brace group of a function,
/// modifier, constructor, fallback or receive is a body.
fn visit_member(tts: &[Tt], f: &mut impl FnMut(&NmlExpr, bool)) {
    let is_callable = tts.iter().find_map(|t| match t {
        Tt::Ident(i) => Some(i.value.as_str()),
        _ => None,
    });
    let is_callable = matches!(is_callable, Some("function" | "modifier" | "constructor" | "fallback" | "receive"));
    for (i, t) in tts.iter().enumerate() {
        let is_body = is_callable && i + 1 == tts.len() && matches!(t, Tt::Group { delim: Delim::Brace, .. });
        visit_tts(std::slice::from_ref(t), is_body, f);
    }
}

fn visit_tts(tts: &[Tt], allowed: bool, f: &mut impl FnMut(&NmlExpr, bool)) {
    for t in tts {
        match t {
            Tt::Group { tts, .. } => visit_tts(tts, allowed, f),
            Tt::Nml(e) => {
                f(e, allowed);
                for arg in &e.args {
                    visit_tts(&arg.tts, allowed, f);
                }
            }
            Tt::Ident(_) | Tt::Semi(_) | Tt::KwMisuse(_) => {}
        }
    }
}

fn visit_misuse(tts: &[Tt], f: &mut impl FnMut(&Ident)) {
    for t in tts {
        match t {
            Tt::Group { tts, .. } => visit_misuse(tts, f),
            Tt::Nml(e) => e.args.iter().for_each(|a| visit_misuse(&a.tts, f)),
            Tt::KwMisuse(i) => f(i),
            Tt::Ident(_) | Tt::Semi(_) => {}
        }
    }
}

pub(super) fn check_calls(project: &Project, file: usize, unit: &ast::SourceUnit, out: &mut Analysis) {
    let fid = project.files[file].id;
    let mut diags = Vec::new();
    for item in &unit.items {
        let ast::Item::Solidity(sol) = item else { continue };
        visit_misuse(&sol.tts, &mut |kw| {
            diags.push(
                Diagnostic::error("E0004", format!("`{}` is a keyword in .nml files", kw.value))
                    .at(fid, kw.span.range(), "expected an identifier, found an NML keyword")
                    .help(format!(
                        "rename it (e.g. `{0}_`), or move this code into a .sol file where `{0}` is an ordinary name; `{0}` starts an expression like `{1}`",
                        kw.value,
                        match kw.value.as_str() {
                            "infer" => "infer Model { input: value }",
                            "ask" => "ask Llm(\"prompt\")",
                            _ => "chat Llm(messages)",
                        }
                    )),
            );
        });
        visit_item(sol, &mut |expr, allowed| {
            if !allowed {
                diags.push(
                    Diagnostic::error("E0005", format!("`{}` is only allowed inside function and modifier bodies", expr.kind.keyword()))
                        .at(fid, expr.span.range(), "not inside a body")
                        .help("model calls are transactions' work: call the model in a function (e.g. a constructor or a setter) and store the result"),
                );
                return;
            }
            check_expr(project, file, expr, out, &mut diags);
        });
    }
    out.diagnostics.extend(diags);
}

fn check_expr(project: &Project, file: usize, expr: &NmlExpr, analysis: &Analysis, diags: &mut Vec<Diagnostic>) {
    let fid = project.files[file].id;
    let target = &expr.target;
    let Some(decl) = analysis.lookup(project, file, &target.value) else {
        let what =
            if expr.kind == NmlKind::InferNamed || expr.kind == NmlKind::InferPositional { "model" } else { "llm" };
        let known: Vec<String> = analysis
            .decls
            .iter()
            .filter(|d| project.visible_files(file).contains(&d.file))
            .filter(|d| matches!((&d.kind, what), (DeclKind::Model(_), "model") | (DeclKind::Llm(_), "llm")))
            .map(|d| format!("`{}`", d.name()))
            .collect();
        diags.push(
            Diagnostic::error("E0010", format!("unknown {what} `{}`", target.value))
                .at(fid, target.span.range(), format!("no {what} of this name is declared or imported"))
                .help(if known.is_empty() {
                    format!("declare it with `{what} {} {{ ... }}` or import the file that does", target.value)
                } else {
                    format!("the {what}s in scope are {}", known.join(", "))
                }),
        );
        return;
    };
    match (&decl.kind, expr.kind) {
        (DeclKind::Model(m), NmlKind::InferNamed) => {
            let mut seen: HashMap<&str, ast::Span> = HashMap::new();
            for arg in &expr.args {
                let Some(name) = &arg.name else { continue };
                if !m.inputs.is_empty() && !m.inputs.iter().any(|t| t.name == name.value) {
                    let names: Vec<String> = m.inputs.iter().map(|t| format!("`{}`", t.name)).collect();
                    diags.push(
                        Diagnostic::error("E0013", format!("model `{}` has no input `{}`", m.name, name.value))
                            .at(fid, name.span.range(), "unknown input")
                            .help(format!("the inputs of `{}` are {}", m.name, names.join(", "))),
                    );
                } else if seen.insert(&name.value, name.span).is_some() {
                    diags.push(
                        Diagnostic::error("E0014", format!("input `{}` is given twice", name.value))
                            .at(fid, name.span.range(), "given again here")
                            .help("give each input once"),
                    );
                }
            }
            let missing: Vec<String> = m
                .inputs
                .iter()
                .filter(|t| !expr.args.iter().any(|a| a.name.as_ref().is_some_and(|n| n.value == t.name)))
                .map(|t| format!("`{}`", t.name))
                .collect();
            if !missing.is_empty() && !m.inputs.is_empty() {
                diags.push(
                    Diagnostic::error(
                        "E0012",
                        format!("missing input{} {} of model `{}`", plural(missing.len()), missing.join(", "), m.name),
                    )
                    .at(fid, expr.span.range(), "every input must be given")
                    .help(format!(
                        "add {}",
                        missing.iter().map(|n| format!("{}: …", n.trim_matches('`'))).collect::<Vec<_>>().join(", ")
                    )),
                );
            }
        }
        (DeclKind::Model(m), NmlKind::InferPositional) => {
            if !m.inputs.is_empty() && expr.args.len() != m.inputs.len() {
                let names: Vec<&str> = m.inputs.iter().map(|t| t.name.as_str()).collect();
                diags.push(
                    Diagnostic::error(
                        "E0015",
                        format!(
                            "model `{}` takes {} input{}, {} given",
                            m.name,
                            m.inputs.len(),
                            plural(m.inputs.len()),
                            expr.args.len()
                        ),
                    )
                    .at(
                        fid,
                        expr.span.range(),
                        format!("expected {} argument{}", m.inputs.len(), plural(m.inputs.len())),
                    )
                    .help(format!("the inputs in order are ({})", names.join(", "))),
                );
            }
        }
        (DeclKind::Llm(l), NmlKind::Ask | NmlKind::Chat) => {
            if expr.args.len() != 1 {
                let what = if expr.kind == NmlKind::Ask {
                    "a prompt (`string memory`)"
                } else {
                    "the messages (`ChatMessage[] memory`)"
                };
                diags.push(
                    Diagnostic::error(
                        "E0015",
                        format!("`{}` takes one argument, {} given", expr.kind.keyword(), expr.args.len()),
                    )
                    .at(fid, expr.span.range(), "expected one argument")
                    .help(format!("`{} {}(...)` takes {what}", expr.kind.keyword(), l.name)),
                );
            }
        }
        (DeclKind::Model(m), kind) => diags.push(
            Diagnostic::error("E0011", format!("`{}` is a model; `{}` calls an llm", m.name, kind.keyword()))
                .at(fid, expr.span.range(), "wrong kind of call")
                .help(format!("run a model with `infer {} {{ ... }}`", m.name)),
        ),
        (DeclKind::Llm(l), _) => diags.push(
            Diagnostic::error("E0011", format!("`{}` is an llm; `infer` runs a model", l.name))
                .at(fid, expr.span.range(), "wrong kind of call")
                .help(format!("call an llm with `ask {}(prompt)` or `chat {}(messages)`", l.name, l.name)),
        ),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
