//! The nml compiler: `.nml` sources (Solidity plus `model`/`llm` declarations
//! and `infer`/`ask`/`chat` expressions) to Solidity, then to solc artifacts.
//!
//! Stages, each a module, stacked in one direction:
//! [`syntax`] (pest grammar, typed tree) → [`sema`] (imports, ONNX checks,
//! call-site checks) → [`lower`] (rewrites NML expressions into library calls)
//! → [`emit`] (tera templates, manifests) → [`solc`] (standard JSON through
//! foundry-compilers). [`Frontend`] runs everything up to solc; [`build`]
//! adds solc, the cache and the artifacts.

pub mod build;
pub mod coverage;
pub mod diagnostics;
pub mod emit;
pub mod lower;
pub mod project;
pub mod sema;
pub mod solc;
pub mod stdlib;
pub mod syntax;

use std::collections::BTreeMap;

use diagnostics::{Diagnostic, Severity};
use lower::SourceMap;
use project::{FileKind, Project};
use sema::Analysis;

/// The Solidity handed to solc for one project file.
#[derive(Debug, Clone)]
pub struct GeneratedUnit {
    /// Index of the file in [`Project::files`].
    pub file: usize,
    /// The source unit name (as solc sees it).
    pub unit_name: String,
    /// The Solidity text: lowered for `.nml`, unchanged for `.sol`.
    pub text: String,
    /// Generated offsets to source spans (identity for `.sol`).
    pub map: SourceMap,
}

/// Everything before solc: parsing, checks, lowering, Solidity validation.
#[derive(Debug, Clone)]
pub struct Frontend {
    /// The loaded project.
    pub project: Project,
    /// Checked declarations.
    pub analysis: Analysis,
    /// Solidity per project file (empty when there were errors).
    pub units: Vec<GeneratedUnit>,
    /// Per-contract model manifests.
    pub manifests: Vec<emit::Manifest>,
    /// Errors, warnings and notes so far.
    pub diagnostics: Vec<Diagnostic>,
    /// What solang-parser rejected. solc is the final authority on Solidity,
    /// so these become errors only when solc agrees (or cannot be asked).
    pub solang_rejections: Vec<Diagnostic>,
}

impl Frontend {
    /// Runs the front end over a loaded project.
    pub fn run(project: Project) -> Self {
        let analysis = sema::analyze(&project);
        let mut diagnostics = project.diagnostics.clone();
        for f in project.files.iter().filter(|f| f.is_entry) {
            if f.ast.as_ref().is_some_and(|a| a.items.is_empty()) {
                diagnostics.push(
                    Diagnostic::warning("W0001", format!("{} is empty: nothing to compile", f.unit_name))
                        .at(f.id, 0..0, "no items in this file")
                        .help("an .nml file holds Solidity items and model/llm declarations"),
                );
            }
        }
        diagnostics.extend(analysis.diagnostics.iter().cloned());
        let mut fe = Self {
            units: Vec::new(),
            manifests: Vec::new(),
            solang_rejections: Vec::new(),
            diagnostics,
            analysis,
            project,
        };
        if fe.has_errors() {
            // Notes (e.g. derived ids) only distract from errors.
            fe.diagnostics.retain(|d| d.severity != Severity::Note);
            return fe;
        }
        for (i, f) in fe.project.files.iter().enumerate() {
            let text = &fe.project.db.get(f.id).text;
            let (text, map) = match (&f.ast, f.kind) {
                (Some(unit), FileKind::Nml) => lower::lower_file(&fe.project, &fe.analysis, i, unit),
                _ => {
                    let seg = lower::Segment { generated: 0..text.len(), source: 0..text.len(), verbatim: true };
                    (text.to_string(), SourceMap { segments: vec![seg] })
                }
            };
            fe.units.push(GeneratedUnit { file: i, unit_name: f.unit_name.clone(), text, map });
        }
        fe.manifests = emit::manifests(&fe.project, &fe.analysis);
        fe.validate_solidity();
        fe
    }

    /// Whether any error was found.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Parses every generated unit with solang-parser. The libraries
    /// generated for `model`/`llm` declarations are blanked out first (same
    /// offsets, so diagnostics still map): they are nml's own code, checked
    /// by its tests and by solc, and on a file with many models they are
    /// most of the text.
    fn validate_solidity(&mut self) {
        for unit in &self.units {
            if let Err(errors) = solang_parser::parse(&self.user_solidity(unit), 0) {
                // solang reports cascades; the first error is the useful one.
                if let Some(e) = errors.into_iter().next() {
                    let (start, end) = match e.loc {
                        solang_parser::pt::Loc::File(_, s, e) => (s, e),
                        _ => (0, 0),
                    };
                    let d = self.map_diagnostic(
                        &unit.unit_name,
                        Some((start, end)),
                        Severity::Error,
                        "E0050",
                        format!("Solidity syntax error: {}", trim_expected(&e.message)),
                    );
                    self.solang_rejections.push(d);
                }
            }
        }
    }

    /// `unit`'s text with the generated declaration libraries replaced by
    /// spaces (newlines kept).
    fn user_solidity(&self, unit: &GeneratedUnit) -> String {
        let Some(ast) = &self.project.files[unit.file].ast else { return unit.text.clone() };
        let declarations: Vec<std::ops::Range<usize>> = ast
            .items
            .iter()
            .filter_map(|item| match item {
                syntax::ast::Item::Model(m) => Some(m.span.range()),
                syntax::ast::Item::Llm(l) => Some(l.span.range()),
                _ => None,
            })
            .collect();
        if declarations.is_empty() {
            return unit.text.clone();
        }
        let mut bytes = unit.text.clone().into_bytes();
        for segment in unit.map.segments.iter().filter(|s| !s.verbatim && declarations.contains(&s.source)) {
            for byte in &mut bytes[segment.generated.clone()] {
                if *byte != b'\n' {
                    *byte = b' ';
                }
            }
        }
        // Whole characters were replaced by ASCII spaces.
        String::from_utf8(bytes).unwrap_or_else(|_| unit.text.clone())
    }

    /// The sources for solc: generated units, then the stdlib (its
    /// on-demand files only when a file imports them, directly or through
    /// another stdlib file).
    pub fn solc_sources(&self) -> BTreeMap<String, String> {
        let mut sources: BTreeMap<String, String> =
            self.units.iter().map(|u| (u.unit_name.clone(), u.text.clone())).collect();
        let imported = |name: &str| {
            self.project
                .files
                .iter()
                .any(|f| f.imports.iter().any(|i| i.target == project::ImportTarget::Stdlib && i.path.value == name))
        };
        let wanted = |name: &str| {
            imported(name)
                || stdlib::names().into_iter().any(|by| imported(by) && stdlib::on_demand_imports(by).contains(&name))
        };
        for (name, text) in stdlib::files() {
            if !stdlib::on_demand(name) || wanted(name) {
                sources.insert(name.to_owned(), text.to_owned());
            }
        }
        sources
    }

    /// A diagnostic about generated text, located at its `.nml` source.
    pub fn map_diagnostic(
        &self,
        unit_name: &str,
        span: Option<(usize, usize)>,
        severity: Severity,
        code: &str,
        message: String,
    ) -> Diagnostic {
        let mut d = Diagnostic::new(severity, code, message);
        let Some(unit) = self.units.iter().find(|u| u.unit_name == unit_name) else {
            if let Some(name) = unit_name.strip_prefix("@nml/") {
                d.help = Some(format!("in nml's standard library file @nml/{name}"));
            }
            return d;
        };
        let fid = self.project.files[unit.file].id;
        let Some((start, end)) = span else {
            // File-level findings (e.g. a missing SPDX line) point at the file.
            return d.at(fid, 0..0, "in this file");
        };
        let generated = unit.map.is_generated(start);
        if let Some(range) = unit.map.to_source(start..end) {
            let label = if generated { "in the Solidity nml generated for this" } else { "here" };
            d = d.at(fid, range, label);
            if generated {
                let line = unit.text[..start.min(unit.text.len())].matches('\n').count() + 1;
                d.help = Some(format!(
                    "the generated Solidity is in {}/gen/{} (line {line})",
                    self.project.config.project.out,
                    gen_path(unit_name)
                ));
            }
        }
        d
    }
}

/// Where the generated Solidity of a unit is written under `out/gen/`.
pub fn gen_path(unit_name: &str) -> String {
    match unit_name.strip_suffix(".nml") {
        Some(stem) => format!("{stem}.sol"),
        None => unit_name.to_owned(),
    }
}

/// solang lists every token it could have accepted; past a handful the list
/// hides the point.
fn trim_expected(message: &str) -> &str {
    match message.split_once(", expected ") {
        Some((head, list)) if list.matches(", ").count() >= 6 => head,
        _ => message,
    }
}
