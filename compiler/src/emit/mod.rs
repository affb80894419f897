//! Emission: Solidity libraries for declarations (tera templates from
//! `templates/codegen/`) and the per-contract model manifests
//! ([`manifest`]).

mod manifest;
pub use manifest::{Manifest, ManifestLlm, ManifestModel, manifests};

use std::sync::OnceLock;

use serde::Serialize;

use crate::sema::{Llm, Model, Tensor};
use crate::syntax::ast::{Dim, Elem, TensorType};
use crate::syntax::sol_string;

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
    /// The identifier: parameter and `Output` field.
    name: String,
    /// The graph tensor's name as a string literal: what goes on the wire.
    wire: String,
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

fn tensor_ctx(tensor: &Tensor, slot: usize) -> TensorCtx {
    let (name, ty) = (&tensor.name, &tensor.ty);
    let is_string = ty.elem == Elem::String;
    let elem_type = if is_string { "string" } else { "int256" };
    let len = ty.fixed_len();
    let array = match len {
        Some(n) => format!("{elem_type}[{n}]"),
        None => format!("{elem_type}[]"),
    };
    TensorCtx {
        name: name.to_owned(),
        wire: sol_string(&tensor.graph_name),
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
    // The template writes the id between quotes as it is: an id is ASCII
    // once sema has parsed or derived it. Graph names are any string and go
    // through `sol_string`; tensor identifiers are ASCII by the grammar.
    let (mut numbers, mut strings) = (0, 0);
    let inputs = model
        .inputs
        .iter()
        .map(|t| {
            let counter = if t.ty.elem == Elem::String { &mut strings } else { &mut numbers };
            *counter += 1;
            tensor_ctx(t, *counter - 1)
        })
        .collect();
    let outputs = model.outputs.iter().map(|t| tensor_ctx(t, 0)).collect();
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
