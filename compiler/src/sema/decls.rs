//! Checks of `model` and `llm` declarations, against the language's rules and
//! the ONNX graph, and of duplicate names across files.

use std::collections::HashMap;
use std::path::Path;

use nml_protocol::{Dim as GraphDim, ElementType, ModelId, ModelIdForm, ShapeDisplay};

use super::onnx::{self, GraphElem, OnnxSignature, TensorInfo};
use super::{Analysis, Decl, DeclKind, Llm, LlmMode, Model, ModelMode, Tensor};
use crate::diagnostics::{Diagnostic, FileId, Severity};
use crate::project::Project;
use crate::syntax::ast::{self, Dim, Elem, LlmField, ModelField, Span, TensorDecl};

/// The largest decimals a fixed-point tensor may declare (int128 holds 38 digits).
pub(super) const MAX_DECIMALS: u32 = 38;
/// A graph tensor of strings.
const STRING: GraphElem = GraphElem::Known(ElementType::String);
/// The ONNX opsets ZK mode accepts.
const ZK_OPSETS: std::ops::RangeInclusive<i64> = 9..=18;

pub(super) fn check_model(project: &Project, file: usize, decl: &ast::ModelDecl, out: &mut Analysis) {
    let fid = project.files[file].id;
    let errors_before = count_errors(&out.diagnostics);
    let diags = &mut out.diagnostics;
    let name = &decl.name.value;

    let mut cid_field = None;
    let mut onnx_field = None;
    let mut mode_field = None;
    let mut seen: HashMap<&'static str, Span> = HashMap::new();
    let (mut inputs, mut outputs): (Vec<&TensorDecl>, Vec<&TensorDecl>) = (Vec::new(), Vec::new());
    for field in &decl.fields {
        let span = match field {
            ModelField::Cid(s) | ModelField::Onnx(s) => s.span,
            ModelField::Mode(i) => i.span,
            ModelField::Input(t) | ModelField::Output(t) => t.span,
        };
        if matches!(field, ModelField::Cid(_) | ModelField::Onnx(_) | ModelField::Mode(_))
            && let Some(first) = seen.insert(field.keyword(), span)
        {
            diags.push(duplicate_field(fid, field.keyword(), first, span));
            continue;
        }
        match field {
            ModelField::Cid(s) => cid_field = Some(s),
            ModelField::Onnx(s) => onnx_field = Some(s),
            ModelField::Mode(m) => mode_field = Some(m),
            ModelField::Input(t) => inputs.push(t),
            ModelField::Output(t) => outputs.push(t),
        }
    }

    let mode = match mode_field {
        None => ModelMode::Vanilla,
        Some(m) => match m.value.as_str() {
            "vanilla" => ModelMode::Vanilla,
            "tee" => ModelMode::Tee,
            "zk" => ModelMode::Zk,
            other => {
                diags.push(
                    Diagnostic::error("E0028", format!("unknown mode `{other}`"))
                        .at(fid, m.span.range(), "not a model mode")
                        .help("a model's mode is `vanilla`, `tee` or `zk`"),
                );
                ModelMode::Vanilla
            }
        },
    };

    let src = &project.db.get(fid).text;
    for group in [&inputs, &outputs] {
        let mut names: HashMap<&str, Span> = HashMap::new();
        let mut graph_names: HashMap<&str, Span> = HashMap::new();
        for t in group.iter() {
            if names.insert(&t.name.value, t.name.span).is_some() {
                diags.push(
                    Diagnostic::error(
                        "E0027",
                        format!("tensor `{}` is declared twice in model `{name}`", t.name.value),
                    )
                    .at(fid, t.name.span.range(), "declared again here")
                    .help("declare each input and output once"),
                );
            } else if graph_names.insert(t.graph_name(), t.graph_name_span()).is_some() {
                diags.push(
                    Diagnostic::error(
                        "E0027",
                        format!("graph tensor `{}` is declared twice in model `{name}`", t.graph_name()),
                    )
                    .at(fid, t.graph_name_span().range(), "declared again here")
                    .help("declare each input and output of the graph once"),
                );
            }
            if let Some(g) = &t.graph_name
                && g.value.is_empty()
            {
                diags.push(
                    Diagnostic::error("E0045", format!("tensor `{}` has an empty graph name", t.name.value))
                        .at(fid, g.span.range(), "empty")
                        .help(format!(
                            "write the graph tensor's name (e.g. `\"input:0\"`), or leave the string out when it is `{}`",
                            t.name.value
                        )),
                );
            }
            check_tensor_type(fid, src, t, diags);
        }
    }
    for t in &outputs {
        if !is_field_name(&t.name.value) {
            let ty = src.get(t.ty.span.range()).unwrap_or_default();
            diags.push(
                Diagnostic::error("E0043", format!("output `{}` cannot be a field of `{name}.Output`", t.name.value))
                    .at(fid, t.name.span.range(), "reserved in Solidity or by nml")
                    .help(format!(
                        "outputs become struct fields of this name; give the field another name and the graph's name as a string: `output {}_ {}: {ty};`",
                        t.name.value,
                        emit_graph_name(t.graph_name())
                    )),
            );
        }
    }

    let base = project.db.get(fid).path.parent().map(Path::to_owned).unwrap_or_default();
    let mut onnx_path = None;
    let mut onnx_bytes = None;
    if let Some(path) = onnx_field {
        let full = crate::project::normalize(&base.join(&path.value));
        match onnx::read_file(&full) {
            Ok(bytes) => match onnx::read_signature(&bytes) {
                Ok(sig) => {
                    check_against_graph(fid, decl, mode, &inputs, &outputs, &sig, diags);
                    onnx_bytes = Some(bytes);
                    onnx_path = Some(full);
                }
                Err(e) => diags.push(
                    Diagnostic::error("E0031", format!("`{}` is not a valid ONNX model: {e}", path.value))
                        .at(fid, path.span.range(), "not an ONNX graph")
                        .help("export the model to ONNX again (e.g. torch.onnx.export or tf2onnx) and check it with onnx.checker"),
                ),
            },
            Err(why) => diags.push(
                Diagnostic::error("E0030", format!("cannot read ONNX file `{}`: {why}", path.value))
                    .at(fid, path.span.range(), why.to_string())
                    .help(format!("the path is relative to the folder of {}", project.files[file].unit_name)),
            ),
        }
    } else if let Some(cached) =
        cid_field.and_then(|c| project.model_cache.as_ref().map(|d| d.join(format!("{}.onnx", c.value))))
        && let Ok(bytes) = onnx::read_file(&cached)
        && let Ok(sig) = onnx::read_signature(&bytes)
    {
        // Pulled by id (`nml models pull`): the cached file stands for `onnx`.
        check_against_graph(fid, decl, mode, &inputs, &outputs, &sig, diags);
        onnx_bytes = Some(bytes);
        onnx_path = Some(cached);
    } else if let Some(sig) = project.remote_signatures.get(&decl.name.value) {
        // Served by a model server (`[models.<Name>] endpoint`): its
        // reported signature stands in for the graph.
        check_against_graph(fid, decl, mode, &inputs, &outputs, sig, diags);
    }

    if mode == ModelMode::Zk {
        for t in inputs.iter().chain(outputs.iter()) {
            if t.ty.elem == Elem::String {
                diags.push(
                    Diagnostic::error("E0038", format!("zk mode cannot prove string tensor `{}`", t.name.value))
                        .at(fid, t.ty.elem_span.range(), "a string tensor")
                        .help("ZKML proves numeric graphs only: use `mode tee;` or numeric tensors"),
                );
            }
        }
    }

    let (id, id_derived) = match cid_field {
        Some(c) => {
            match ModelId::parse(&c.value) {
                Err(_) => diags.push(
                    Diagnostic::error("E0022", format!("`{}` is not a model id", c.value))
                        .at(fid, c.span.range(), "not a CIDv0, CIDv1 or Walrus blob id")
                        .help("ids are IPFS CIDv0 (`Qm…`, 46 characters), CIDv1 in base32 (`bafy…`/`bafk…`) or Walrus blob ids (43 characters of url-safe base64); or omit `cid` to derive one from the onnx file"),
                ),
                // An IPFS id must be the file's (a Walrus blob id cannot be checked here).
                Ok(given) if given.form() != ModelIdForm::Walrus => {
                    if let (Some(bytes), Some(path)) = (&onnx_bytes, onnx_field) {
                        let (v0, v1) = (ModelId::derive_v0(bytes), ModelId::derive(bytes));
                        if given != v0 && given != v1 {
                            diags.push(
                                Diagnostic::error(
                                    "E0044",
                                    format!("`cid` {} is not the IPFS id of `{}`", c.value, path.value),
                                )
                                .at(fid, c.span.range(), "the model hub would serve other bytes under this id")
                                .help(format!(
                                    "`ipfs add` gives the file {v0} (CIDv0), `ipfs add --cid-version 1` gives {v1}: use one of them, or remove `cid` to derive it"
                                )),
                            );
                        }
                    }
                }
                Ok(_) => {}
            }
            (c.value.clone(), false)
        }
        None => match &onnx_bytes {
            Some(bytes) => {
                let id = String::from(ModelId::derive(bytes));
                diags.push(
                    Diagnostic::new(
                        Severity::Note,
                        "N0001",
                        format!("model `{name}` has id {id} (derived from its ONNX file)"),
                    )
                    .at(fid, decl.name.span.range(), "no `cid` given")
                    .help(format!("pin it with `cid \"{id}\";` once the model is in the hub")),
                );
                (id, true)
            }
            None => {
                if onnx_field.is_none() {
                    diags.push(
                        Diagnostic::error("E0021", format!("model `{name}` needs a `cid` or an `onnx` file"))
                            .at(fid, decl.name.span.range(), "no model id")
                            .help("add `cid \"Qm…\";` (the model hub id) or `onnx \"../models/x.onnx\";` (the id is then derived)"),
                    );
                }
                (String::new(), false)
            }
        },
    };

    if count_errors(&out.diagnostics) == errors_before {
        let model = Model {
            name: name.clone(),
            id,
            id_derived,
            mode,
            onnx: onnx_path,
            inputs: inputs.iter().map(|t| tensor(t)).collect(),
            outputs: outputs.iter().map(|t| tensor(t)).collect(),
        };
        out.decls.push(Decl { file, name_span: decl.name.span, span: decl.span, kind: DeclKind::Model(model) });
    } else {
        out.decls.push(Decl {
            file,
            name_span: decl.name.span,
            span: decl.span,
            kind: DeclKind::Model(poisoned(name)),
        });
    }
}

fn tensor(t: &TensorDecl) -> Tensor {
    Tensor { name: t.name.value.clone(), graph_name: t.graph_name().to_owned(), ty: t.ty.clone() }
}

/// A placeholder for a declaration that failed its checks, so call sites
/// still resolve (and are not reported as unknown).
fn poisoned(name: &str) -> Model {
    Model {
        name: name.to_owned(),
        id: String::new(),
        id_derived: false,
        mode: ModelMode::Vanilla,
        onnx: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
    }
}

fn count_errors(diags: &[Diagnostic]) -> usize {
    diags.iter().filter(|d| d.is_error()).count()
}

fn duplicate_field(fid: FileId, keyword: &str, first: Span, again: Span) -> Diagnostic {
    let _ = first;
    Diagnostic::error("E0020", format!("`{keyword}` is given twice"))
        .at(fid, again.range(), "given again here")
        .help(format!("keep one `{keyword}`"))
}

/// Whether a declared dimension is one the precompile can take (a `uint32`
/// other than zero); the graph is compared only with those.
fn dim_in_range(n: u64) -> bool {
    (1..=u64::from(u32::MAX)).contains(&n)
}

/// Checks a declared type on its own. Numbers too large for the tree's
/// integers were saturated by the parser, so messages quote them from
/// `src`, as written.
fn check_tensor_type(fid: FileId, src: &str, t: &TensorDecl, diags: &mut Vec<Diagnostic>) {
    let written = |span: Span| src.get(span.range()).unwrap_or_default();
    if let Elem::Fixed(d) = t.ty.elem
        && d > MAX_DECIMALS
    {
        diags.push(
            Diagnostic::error("E0025", format!("`{}` has too many decimals", written(t.ty.elem_span)))
                .at(fid, t.ty.elem_span.range(), format!("at most {MAX_DECIMALS}"))
                .help("the precompile's numbers are int128, which hold 38 decimal digits"),
        );
    }
    let mut dynamic = 0;
    for d in &t.ty.dims {
        match d.value {
            Dim::Dynamic => {
                dynamic += 1;
                if dynamic == 2 {
                    diags.push(
                        Diagnostic::error(
                            "E0026",
                            format!("tensor `{}` has more than one dynamic dimension", t.name.value),
                        )
                        .at(fid, d.span.range(), "second `_`")
                        .help("at most one dimension may be `_`; the others fix the layout of the flat array"),
                    );
                }
            }
            Dim::Fixed(0) => diags.push(
                Diagnostic::error("E0026", format!("tensor `{}` has a zero dimension", t.name.value))
                    .at(fid, d.span.range(), "dimensions are positive")
                    .help("use a positive size or `_` for any size"),
            ),
            Dim::Fixed(n) if !dim_in_range(n) => diags.push(
                Diagnostic::error("E0026", format!("dimension {} is too large", written(d.span)))
                    .at(fid, d.span.range(), "the precompile's shapes are uint32")
                    .help(format!("dimensions must fit uint32 (at most {})", u32::MAX)),
            ),
            Dim::Fixed(_) => {}
        }
    }
}

fn check_against_graph(
    fid: FileId,
    decl: &ast::ModelDecl,
    mode: ModelMode,
    inputs: &[&TensorDecl],
    outputs: &[&TensorDecl],
    sig: &OnnxSignature,
    diags: &mut Vec<Diagnostic>,
) {
    let name = &decl.name.value;
    for (declared, graph, what, code) in
        [(inputs, &sig.inputs, "input", "E0032"), (outputs, &sig.outputs, "output", "E0033")]
    {
        // An empty graph name is already reported (E0045).
        for t in declared.iter().filter(|t| !t.graph_name().is_empty()) {
            match graph.iter().find(|g| g.name == t.graph_name()) {
                Some(g) => check_tensor_against(fid, name, t, g, diags),
                None => {
                    let names: Vec<String> = graph.iter().map(|g| format!("`{}`", g.name)).collect();
                    diags.push(
                        Diagnostic::error(code, format!("model `{name}` has no {what} `{}`", t.graph_name()))
                            .at(fid, t.graph_name_span().range(), format!("not an {what} of the ONNX graph"))
                            .help(if names.is_empty() {
                                format!("the graph has no {what}s")
                            } else {
                                format!("the graph's {what}s are {}", names.join(", "))
                            }),
                    );
                }
            }
        }
    }
    for g in &sig.inputs {
        if !inputs.iter().any(|t| t.graph_name() == g.name) {
            diags.push(
                Diagnostic::error("E0037", format!("model `{name}` does not declare graph input `{}`", g.name))
                    .at(fid, decl.name.span.range(), format!("`{}` is missing", g.name))
                    .help(format!(
                        "every graph input must be declared: add `input {}: {};`",
                        suggest_names(&g.name, is_identifier),
                        suggest_type(g)
                    )),
            );
        }
    }
    if mode == ModelMode::Zk {
        if let Some(g) = sig.inputs.iter().chain(&sig.outputs).find(|g| g.elem == STRING) {
            diags.push(
                Diagnostic::error(
                    "E0038",
                    format!("zk mode cannot prove model `{name}`: graph tensor `{}` holds strings", g.name),
                )
                .at(fid, decl.name.span.range(), "a string tensor in the graph")
                .help("ZKML proves numeric graphs only: use `mode tee;`"),
            );
        }
        match sig.default_opset() {
            Some(v) if ZK_OPSETS.contains(&v) => {}
            v => diags.push(
                Diagnostic::error(
                    "E0039",
                    format!("zk mode needs ONNX opset 9 to 18; model `{name}` uses {}", v.map_or("none".into(), |v| v.to_string())),
                )
                .at(fid, decl.name.span.range(), "unsupported opset for ZKML")
                .help("re-export the model with an opset in 9..=18 (e.g. `torch.onnx.export(..., opset_version=17)`) or use `mode tee;`"),
            ),
        }
    }
}

fn check_tensor_against(fid: FileId, model: &str, t: &TensorDecl, g: &TensorInfo, diags: &mut Vec<Diagnostic>) {
    let compatible = match t.ty.elem {
        Elem::String => g.elem == STRING,
        Elem::Fixed(_) => is_numeric(g.elem),
    };
    if !compatible {
        diags.push(
            Diagnostic::error(
                "E0034",
                format!("tensor `{}` of model `{model}` is {} in the graph", t.name.value, g.elem),
            )
            .at(fid, t.ty.elem_span.range(), "incompatible element type")
            .help(match g.elem {
                STRING => "declare it as `string[...]`".to_owned(),
                e if is_numeric(e) => format!("declare it as `fixed<D>[...]` (the graph holds {e})"),
                e => format!("nml cannot pass {e} tensors"),
            }),
        );
    }
    let Some(gdims) = &g.shape else { return };
    if gdims.len() != t.ty.dims.len() {
        diags.push(
            Diagnostic::error(
                "E0035",
                format!(
                    "tensor `{}` of model `{model}` has rank {} in the graph, {} here",
                    t.name.value,
                    gdims.len(),
                    t.ty.dims.len()
                ),
            )
            .at(fid, t.ty.span.range(), format!("rank {}", t.ty.dims.len()))
            .help(format!("the graph's shape is {}", ShapeDisplay(gdims))),
        );
        return;
    }
    for (d, gd) in t.ty.dims.iter().zip(gdims) {
        // A dimension out of range is already reported (E0026).
        if let (Dim::Fixed(n), GraphDim::Fixed(m)) = (d.value, gd)
            && n != *m
            && dim_in_range(n)
        {
            diags.push(
                Diagnostic::error(
                    "E0036",
                    format!("tensor `{}` of model `{model}`: dimension is {m} in the graph, {n} here", t.name.value),
                )
                .at(fid, d.span.range(), format!("expected {m}"))
                .help(format!("the graph's shape is {}", ShapeDisplay(gdims))),
            );
        }
    }
}

/// Whether `word` can name an output: a field of the generated `Output`
/// struct beside `simulated`.
fn is_field_name(word: &str) -> bool {
    is_identifier(word) && !super::calls::is_reserved(word) && word != "simulated"
}

/// Whether `word` is an identifier of the grammar (and of Solidity).
fn is_identifier(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// The names part of a suggested declaration of graph tensor `graph`: the
/// graph's name itself when `usable` accepts it, else an identifier made
/// from it and the graph's name as a string (`input_0 "input:0"`).
fn suggest_names(graph: &str, usable: impl Fn(&str) -> bool) -> String {
    if usable(graph) {
        return graph.to_owned();
    }
    let mut ident = String::new();
    for c in graph.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '$' {
            ident.push(c);
        } else if !ident.ends_with('_') {
            ident.push('_');
        }
    }
    if !ident.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '$') {
        ident.insert_str(0, "t_");
    }
    while !usable(&ident) {
        ident.push('_');
    }
    format!("{ident} {}", emit_graph_name(graph))
}

/// A graph name as a string literal of the grammar.
fn emit_graph_name(graph: &str) -> String {
    crate::syntax::sol_string(graph)
}

fn suggest_type(g: &TensorInfo) -> String {
    let elem = if g.elem == STRING {
        "string".to_owned()
    } else if is_float(g.elem) {
        "fixed<18>".to_owned()
    } else {
        "int".to_owned()
    };
    let dims: Vec<String> = match &g.shape {
        Some(dims) => dims
            .iter()
            .map(|d| match d {
                GraphDim::Fixed(n) => n.to_string(),
                _ => "_".into(),
            })
            .collect(),
        None => vec!["_".into()],
    };
    format!("{elem}[{}]", dims.join(", "))
}

pub(super) fn check_llm(project: &Project, file: usize, decl: &ast::LlmDecl, out: &mut Analysis) {
    let fid = project.files[file].id;
    let name = &decl.name.value;
    let diags = &mut out.diagnostics;
    let mut seen: HashMap<&'static str, Span> = HashMap::new();
    let mut llm = Llm {
        name: name.clone(),
        model: String::new(),
        mode: LlmMode::Vanilla,
        max_tokens: 256,
        temperature: 0,
        stop: Vec::new(),
    };
    let mut has_model = false;
    for field in &decl.fields {
        if let Some(first) = seen.insert(field.keyword(), field.span()) {
            diags.push(duplicate_field(fid, field.keyword(), first, field.span()));
            continue;
        }
        match field {
            LlmField::Model(s) => {
                if s.value.trim().is_empty() {
                    diags.push(
                        Diagnostic::error("E0021", format!("llm `{name}` has an empty model id"))
                            .at(fid, s.span.range(), "empty")
                            .help("give the LLM's id, e.g. `model \"meta-llama/Llama-3.1-8B-Instruct\";`"),
                    );
                }
                llm.model = s.value.clone();
                has_model = true;
            }
            LlmField::Mode(m) => match m.value.as_str() {
                "vanilla" => llm.mode = LlmMode::Vanilla,
                "tee" => llm.mode = LlmMode::Tee,
                other => diags.push(
                    Diagnostic::error("E0028", format!("unknown llm mode `{other}`"))
                        .at(fid, m.span.range(), "not an llm mode")
                        .help("an llm's mode is `vanilla` or `tee` (LLMs have no zk mode)"),
                ),
            },
            LlmField::MaxTokens(n) => match n.value.parse::<u32>() {
                Ok(v) if v >= 1 => llm.max_tokens = v,
                _ => diags.push(
                    Diagnostic::error("E0024", format!("max_tokens {} is out of range", n.value))
                        .at(fid, n.span.range(), "must be 1 to 4294967295")
                        .help("max_tokens is a uint32 and at least 1"),
                ),
            },
            LlmField::Temperature(n) => match n.value.parse::<u32>() {
                Ok(v) if v <= 100 => llm.temperature = v,
                _ => diags.push(
                    Diagnostic::error("E0023", format!("temperature {} is out of range", n.value))
                        .at(fid, n.span.range(), "must be 0 to 100")
                        .help("temperature is in hundredths: 0 is deterministic, 100 is 1.0"),
                ),
            },
            LlmField::Stop(list, _) => llm.stop = list.iter().map(|s| s.value.clone()).collect(),
        }
    }
    if !has_model {
        diags.push(
            Diagnostic::error("E0021", format!("llm `{name}` needs a `model`"))
                .at(fid, decl.name.span.range(), "no model id")
                .help("add `model \"meta-llama/Llama-3.1-8B-Instruct\";` (the LLM's id)"),
        );
    }
    out.decls.push(Decl { file, name_span: decl.name.span, span: decl.span, kind: DeclKind::Llm(llm) });
}

/// Reports a model or llm whose name is also declared by another item that
/// the same file can see (in the file itself or through imports).
pub(super) fn check_duplicates(project: &Project, out: &mut Analysis) {
    // Every file-level name per file: (name, file index, span).
    let mut names: Vec<Vec<(String, Span)>> = vec![Vec::new(); project.files.len()];
    for (i, f) in project.files.iter().enumerate() {
        let Some(unit) = &f.ast else { continue };
        for item in &unit.items {
            match item {
                ast::Item::Model(m) => names[i].push((m.name.value.clone(), m.name.span)),
                ast::Item::Llm(l) => names[i].push((l.name.value.clone(), l.name.span)),
                ast::Item::Solidity(s) => {
                    if let Some(n) = super::calls::item_name(s) {
                        names[i].push((n.value.clone(), n.span));
                    }
                }
                _ => {}
            }
        }
    }
    let mut reported = Vec::new();
    for d in &out.decls {
        let visible = project.visible_files(d.file);
        let clash = visible
            .iter()
            .flat_map(|&f| names[f].iter().map(move |(n, s)| (f, n, *s)))
            .find(|(f, n, s)| n.as_str() == d.name() && !(*f == d.file && *s == d.name_span));
        if let Some((f, _, span)) = clash {
            // Report each pair once, at the later declaration.
            let key = if (f, span.start) < (d.file, d.name_span.start) {
                ((f, span.start), (d.file, d.name_span.start))
            } else {
                ((d.file, d.name_span.start), (f, span.start))
            };
            if reported.contains(&key) {
                continue;
            }
            reported.push(key);
            let (at_file, at_span) = key.1;
            let (other_file, _) = key.0;
            let at_fid = project.files[at_file].id;
            let at_span = if at_file == d.file && at_span == d.name_span.start { d.name_span } else { span };
            out.diagnostics.push(
                Diagnostic::error("E0040", format!("`{}` is declared twice", d.name()))
                    .at(at_fid, at_span.range(), "declared again here")
                    .help(format!(
                        "the other declaration is in {}; rename one of them",
                        project.files[other_file].unit_name
                    )),
            );
        }
    }
}

fn is_float(e: GraphElem) -> bool {
    use ElementType::{BFloat16, Float16, Float32, Float64};
    matches!(e, GraphElem::Known(Float16 | BFloat16 | Float32 | Float64))
}

/// Element types the precompile's fixed-point numbers convert to and from:
/// every one TensorLib carries but strings.
fn is_numeric(e: GraphElem) -> bool {
    matches!(e, GraphElem::Known(ty) if ty != ElementType::String)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggested_declarations_are_valid_syntax() {
        for (graph, expected) in [
            ("returns", "returns"),
            ("input:0", r#"input_0 "input:0""#),
            ("input.1", r#"input_1 "input.1""#),
            ("onnx::Gemm_0", r#"onnx_Gemm_0 "onnx::Gemm_0""#),
            ("0", r#"t_0 "0""#),
            ("é\"x", r#"_x unicode"é\"x""#),
        ] {
            let names = suggest_names(graph, is_identifier);
            assert_eq!(names, expected);
            let src = format!("model M {{ input {names}: fixed<18>[1]; output {names}: fixed<18>[1]; }}");
            let unit = crate::syntax::parse(FileId(0), &src).expect("the suggestion parses");
            let Some(ast::Item::Model(m)) = unit.items.first() else { panic!("a model") };
            let ModelField::Input(t) = &m.fields[0] else { panic!("an input") };
            assert_eq!(t.graph_name(), graph);
        }
        assert_eq!(suggest_names("string", is_field_name), r#"string_ "string""#);
        assert_eq!(suggest_names("simulated", is_field_name), r#"simulated_ "simulated""#);
    }
}
