//! Semantic checks: every model and llm declaration against its ONNX graph
//! and the language's rules, names across imports, and every call site.

mod calls;
pub use calls::{item_name, visit_item};
mod decls;
pub mod onnx;

use std::path::PathBuf;

use crate::diagnostics::{Diagnostic, FileId};
use crate::project::{FileKind, Project};
use crate::syntax::ast::{self, Span, TensorType};

/// How a model runs and is proven (the precompile's `ModelInferenceMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelMode {
    /// No proof.
    Vanilla,
    /// A ZKML proof.
    Zk,
    /// A TEE attestation.
    Tee,
}

impl ModelMode {
    /// The Solidity enum member.
    pub fn solidity(self) -> &'static str {
        match self {
            Self::Vanilla => "VANILLA",
            Self::Zk => "ZK",
            Self::Tee => "TEE",
        }
    }
}

/// How an LLM runs (the precompile's `LLMInferenceMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LlmMode {
    /// No proof.
    Vanilla,
    /// A TEE attestation.
    Tee,
}

impl LlmMode {
    /// The Solidity enum member.
    pub fn solidity(self) -> &'static str {
        match self {
            Self::Vanilla => "VANILLA",
            Self::Tee => "TEE",
        }
    }
}

/// A declared input or output.
#[derive(Debug, Clone)]
pub struct Tensor {
    /// The name Solidity sees (`infer` argument, `Output` field).
    pub name: String,
    /// The graph tensor's name: what goes on the wire and in the manifest.
    pub graph_name: String,
    /// Its declared type.
    pub ty: TensorType,
}

/// A checked `model` declaration.
#[derive(Debug, Clone)]
pub struct Model {
    /// Its name.
    pub name: String,
    /// The model hub id passed as `modelCID`.
    pub id: String,
    /// Whether `id` was derived from the ONNX file's bytes.
    pub id_derived: bool,
    /// Execution mode.
    pub mode: ModelMode,
    /// The ONNX file on disk.
    pub onnx: Option<PathBuf>,
    /// Inputs in declaration order.
    pub inputs: Vec<Tensor>,
    /// Outputs in declaration order.
    pub outputs: Vec<Tensor>,
}

/// A checked `llm` declaration.
#[derive(Debug, Clone)]
pub struct Llm {
    /// Its name.
    pub name: String,
    /// The LLM's id.
    pub model: String,
    /// Execution mode.
    pub mode: LlmMode,
    /// Token limit.
    pub max_tokens: u32,
    /// Temperature in hundredths.
    pub temperature: u32,
    /// Stop sequences.
    pub stop: Vec<String>,
}

/// What a declaration declares.
#[derive(Debug, Clone)]
pub enum DeclKind {
    /// A model.
    Model(Model),
    /// An llm.
    Llm(Llm),
}

/// A checked declaration with its origin.
#[derive(Debug, Clone)]
pub struct Decl {
    /// Index of the declaring file in [`Project::files`].
    pub file: usize,
    /// Its name's span.
    pub name_span: Span,
    /// The whole declaration.
    pub span: Span,
    /// The model or llm.
    pub kind: DeclKind,
}

impl Decl {
    /// The declared name.
    pub fn name(&self) -> &str {
        match &self.kind {
            DeclKind::Model(m) => &m.name,
            DeclKind::Llm(l) => &l.name,
        }
    }
}

/// The result of semantic analysis.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    /// Every declaration that passed its own checks (call sites resolve
    /// against these; a broken declaration is reported once, not per use).
    pub decls: Vec<Decl>,
    /// Errors, warnings and notes.
    pub diagnostics: Vec<Diagnostic>,
}

impl Analysis {
    /// The declaration named `name` visible from file `file`.
    pub fn lookup(&self, project: &Project, file: usize, name: &str) -> Option<&Decl> {
        let visible = project.visible_files(file);
        self.decls.iter().find(|d| d.name() == name && visible.contains(&d.file))
    }
}

/// Checks a loaded project.
pub fn analyze(project: &Project) -> Analysis {
    let mut analysis = Analysis::default();
    for (i, file) in project.files.iter().enumerate() {
        if file.kind != FileKind::Nml {
            continue;
        }
        let Some(unit) = &file.ast else { continue };
        for item in &unit.items {
            match item {
                ast::Item::Model(m) => decls::check_model(project, i, m, &mut analysis),
                ast::Item::Llm(l) => decls::check_llm(project, i, l, &mut analysis),
                ast::Item::PragmaNml { version, span } => {
                    check_pragma(file.id, version.as_ref(), *span, &mut analysis.diagnostics)
                }
                _ => {}
            }
        }
    }
    decls::check_duplicates(project, &mut analysis);
    for (i, file) in project.files.iter().enumerate() {
        if file.kind == FileKind::Nml
            && let Some(unit) = &file.ast
        {
            calls::check_calls(project, i, unit, &mut analysis);
        }
    }
    analysis
}

/// The version of the language this compiler implements.
pub const LANGUAGE_VERSION: semver::Version = semver::Version::new(0, 1, 0);

fn check_pragma(file: FileId, version: Option<&ast::Spanned<String>>, pragma: Span, diags: &mut Vec<Diagnostic>) {
    let Some(version) = version else {
        // The pragma ends with `;` where the version should be.
        let semi = pragma.end.saturating_sub(1)..pragma.end;
        diags.push(
            Diagnostic::error("E0006", "`pragma nml` needs a version")
                .at(file, semi, "expected a version such as `0.1` before `;`")
                .help("write `pragma nml 0.1;`"),
        );
        return;
    };
    match semver::VersionReq::parse(&version.value) {
        Ok(req) if req.matches(&LANGUAGE_VERSION) => {}
        Ok(_) => diags.push(
            Diagnostic::error(
                "E0006",
                format!("this file needs nml {}, this compiler is nml {LANGUAGE_VERSION}", version.value),
            )
            .at(file, version.span.range(), "unsupported language version")
            .help("write `pragma nml 0.1;`"),
        ),
        Err(_) => diags.push(
            Diagnostic::error("E0006", format!("`{}` is not a version requirement", version.value))
                .at(file, version.span.range(), "expected a version such as `0.1`")
                .help("write `pragma nml 0.1;`"),
        ),
    }
}
