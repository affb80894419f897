//! Emission: Solidity libraries for declarations (tera templates from
//! `templates/codegen/`) and the per-contract model manifests.

use std::sync::OnceLock;

use serde::Serialize;

use crate::project::Project;
use crate::sema::{Analysis, DeclKind, Llm, LlmMode, Model, ModelMode};
use crate::syntax::ast::{Dim, Elem, Item, TensorType};

const MODEL_TEMPLATE: &str = include_str!("../../../templates/codegen/model.sol.tera");
const LLM_TEMPLATE: &str = include_str!("../../../templates/codegen/llm.sol.tera");

fn templates() -> &'static tera::Tera {
    static TERA: OnceLock<tera::Tera> = OnceLock::new();
    TERA.get_or_init(|| {
        let mut t = tera::Tera::default();
        t.autoescape_on(vec![]);
        // The templates are compiled into the binary and covered by tests,
        // so a failure here is a bug in nml, not in user input.
        t.add_raw_templates([("model", MODEL_TEMPLATE), ("llm", LLM_TEMPLATE)])
            .expect("built-in codegen templates are valid");
        t
    })
}

fn render(name: &str, context: &impl Serialize) -> String {
    let ctx = tera::Context::from_serialize(context).expect("codegen contexts serialize");
    templates().render(name, &ctx).expect("built-in codegen templates render")
}

#[derive(Serialize)]
struct TensorCtx {
    name: String,
    param: String,
    param_type: String,
    field_type: String,
    elem_type: &'static str,
    is_string: bool,
    decimals: u32,
    dims: Vec<u64>,
    len: u64,
    dynamic: bool,
    slot: usize,
}

fn tensor_ctx(name: &str, ty: &TensorType, slot: usize) -> TensorCtx {
    let is_string = ty.elem == Elem::String;
    let elem_type = if is_string { "string" } else { "int256" };
    let len = ty.fixed_len();
    let array = match len {
        Some(n) => format!("{elem_type}[{n}]"),
        None => format!("{elem_type}[]"),
    };
    TensorCtx {
        name: name.to_owned(),
        param: format!("in_{name}"),
        param_type: format!("{array} memory"),
        field_type: array,
        elem_type,
        is_string,
        decimals: match ty.elem {
            Elem::Fixed(d) => d,
            Elem::String => 0,
        },
        dims: ty
            .dims
            .iter()
            .map(|d| match d.value {
                Dim::Fixed(n) => n,
                Dim::Dynamic => 0,
            })
            .collect(),
        len: len.unwrap_or(0),
        dynamic: len.is_none(),
        slot,
    }
}

/// The Solidity library for a model declaration.
pub fn model_library(model: &Model, source: &str) -> String {
    #[derive(Serialize)]
    struct Ctx<'a> {
        name: &'a str,
        source: &'a str,
        id: &'a str,
        mode: &'static str,
        inputs: Vec<TensorCtx>,
        outputs: Vec<TensorCtx>,
        n_numbers: usize,
        n_strings: usize,
    }
    // The template writes the id and the names between quotes as they are:
    // names are identifiers (ASCII by the grammar), and an id is ASCII once
    // sema has parsed or derived it. User strings go through `sol_string`.
    let (mut numbers, mut strings) = (0, 0);
    let inputs = model
        .inputs
        .iter()
        .map(|t| {
            let counter = if t.ty.elem == Elem::String { &mut strings } else { &mut numbers };
            *counter += 1;
            tensor_ctx(&t.name, &t.ty, *counter - 1)
        })
        .collect();
    let outputs = model.outputs.iter().map(|t| tensor_ctx(&t.name, &t.ty, 0)).collect();
    render(
        "model",
        &Ctx {
            name: &model.name,
            source,
            id: &model.id,
            mode: model.mode.solidity(),
            inputs,
            outputs,
            n_numbers: numbers,
            n_strings: strings,
        },
    )
}

/// The Solidity library for an llm declaration.
pub fn llm_library(llm: &Llm, source: &str) -> String {
    #[derive(Serialize)]
    struct Ctx<'a> {
        name: &'a str,
        source: &'a str,
        model: String,
        mode: &'static str,
        max_tokens: u32,
        temperature: u32,
        stop: Vec<String>,
    }
    render(
        "llm",
        &Ctx {
            name: &llm.name,
            source,
            model: sol_string(&llm.model),
            mode: llm.mode.solidity(),
            max_tokens: llm.max_tokens,
            temperature: llm.temperature,
            stop: llm.stop.iter().map(|s| sol_string(s)).collect(),
        },
    )
}

/// `s` as a Solidity string literal (`unicode"..."` when it is not ASCII).
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

/// What one contract can call: written next to its artifact
/// ([`manifest_path`](crate::solc::manifest_path)) for deployment tools; `nml
/// devnet --project` and `nml test` register its models from the front end's
/// copy.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Manifest {
    /// The contract's name.
    pub contract: String,
    /// Its source unit.
    pub source: String,
    /// The models it calls.
    pub models: Vec<ManifestModel>,
    /// The LLMs it calls.
    pub llms: Vec<ManifestLlm>,
}

/// A model in a [`Manifest`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ManifestModel {
    /// The declaration's name.
    pub name: String,
    /// The model hub id.
    pub id: String,
    /// Whether the id was derived from the ONNX file.
    pub id_derived: bool,
    /// Execution mode.
    pub mode: ModelMode,
    /// The ONNX file, relative to the project root.
    pub onnx: Option<String>,
    /// Declared inputs: `(name, type)`.
    pub inputs: Vec<(String, String)>,
    /// Declared outputs: `(name, type)`.
    pub outputs: Vec<(String, String)>,
}

/// An LLM in a [`Manifest`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ManifestLlm {
    /// The declaration's name.
    pub name: String,
    /// The LLM's id.
    pub model: String,
    /// Execution mode.
    pub mode: LlmMode,
    /// Token limit.
    pub max_tokens: u32,
    /// Temperature in hundredths.
    pub temperature: u32,
}

/// `fixed<18>[1, 30]` — a declared type as written.
pub fn type_text(ty: &TensorType) -> String {
    let elem = match ty.elem {
        Elem::Fixed(d) => format!("fixed<{d}>"),
        Elem::String => "string".into(),
    };
    let dims: Vec<String> = ty
        .dims
        .iter()
        .map(|d| match d.value {
            Dim::Fixed(n) => n.to_string(),
            Dim::Dynamic => "_".into(),
        })
        .collect();
    format!("{elem}[{}]", dims.join(", "))
}

/// The manifests of every contract in the project's `.nml` files.
pub fn manifests(project: &Project, analysis: &Analysis) -> Vec<Manifest> {
    let mut out = Vec::new();
    for (i, f) in project.files.iter().enumerate() {
        let Some(unit) = &f.ast else { continue };
        if f.kind != crate::project::FileKind::Nml {
            continue;
        }
        for item in &unit.items {
            let Item::Solidity(sol) = item else { continue };
            let Some(name) = crate::sema::item_name(sol) else { continue };
            let mut used: Vec<String> = Vec::new();
            crate::sema::visit_item(sol, &mut |e, _| {
                if !used.contains(&e.target.value) {
                    used.push(e.target.value.clone());
                }
            });
            let mut manifest = Manifest {
                contract: name.value.clone(),
                source: f.unit_name.clone(),
                models: Vec::new(),
                llms: Vec::new(),
            };
            for u in &used {
                let Some(decl) = analysis.lookup(project, i, u) else { continue };
                match &decl.kind {
                    DeclKind::Model(m) => manifest.models.push(ManifestModel {
                        name: m.name.clone(),
                        id: m.id.clone(),
                        id_derived: m.id_derived,
                        mode: m.mode,
                        onnx: m.onnx.as_ref().map(|p| {
                            p.strip_prefix(crate::project::normalize(&project.root))
                                .unwrap_or(p)
                                .to_string_lossy()
                                .replace('\\', "/")
                        }),
                        inputs: m.inputs.iter().map(|t| (t.name.clone(), type_text(&t.ty))).collect(),
                        outputs: m.outputs.iter().map(|t| (t.name.clone(), type_text(&t.ty))).collect(),
                    }),
                    DeclKind::Llm(l) => manifest.llms.push(ManifestLlm {
                        name: l.name.clone(),
                        model: l.model.clone(),
                        mode: l.mode,
                        max_tokens: l.max_tokens,
                        temperature: l.temperature,
                    }),
                }
            }
            out.push(manifest);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sol_string_escapes() {
        assert_eq!(sol_string("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(sol_string("é"), "unicode\"é\"");
    }
}
