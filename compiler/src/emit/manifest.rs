//! Per-contract manifests: the models and LLMs a contract can call, through
//! its own bodies, its bases (transitively), the libraries it uses and the
//! free functions it calls.
//!
//! Reachability is a sound over-approximation read from the token trees:
//! a contract reaches the contracts named in its `is` list and every library
//! or free function whose name appears anywhere in it, as seen from its
//! file; what those reach, it reaches too.

use std::collections::HashMap;

use serde::Serialize;

use super::type_text;
use crate::project::{FileKind, Project};
use crate::sema::{Analysis, Decl, DeclKind, LlmMode, ModelMode};
use crate::syntax::ast::{Delim, Item, SolItem, Tt};

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
    /// Declared inputs: `(graph name, type)`.
    pub inputs: Vec<(String, String)>,
    /// Declared outputs: `(graph name, type)`.
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

/// The manifests of the project's contracts, libraries and interfaces (the
/// items solc writes an artifact for): every one in an `.nml` file, and one
/// in a `.sol` file when it reaches a model or llm (through an `.nml` base
/// or library).
pub fn manifests(project: &Project, analysis: &Analysis) -> Vec<Manifest> {
    let graph = Graph::new(project);
    let mut out = Vec::new();
    for (n, node) in graph.nodes.iter().enumerate() {
        if node.kind == Kind::Function {
            continue;
        }
        let decls = graph.reachable_decls(project, analysis, n);
        let file = &project.files[node.file];
        if file.kind != FileKind::Nml && decls.is_empty() {
            continue;
        }
        let mut manifest = Manifest {
            contract: node.name.to_owned(),
            source: file.unit_name.clone(),
            models: Vec::new(),
            llms: Vec::new(),
        };
        for decl in decls {
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
                    inputs: m.inputs.iter().map(|t| (t.graph_name.clone(), type_text(&t.ty))).collect(),
                    outputs: m.outputs.iter().map(|t| (t.graph_name.clone(), type_text(&t.ty))).collect(),
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
    out
}

/// What a named file-level Solidity item is, as far as reachability goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A contract, abstract contract or interface: reached through `is`.
    Contract,
    /// A library: reached by name.
    Library,
    /// A free function: reached by name.
    Function,
}

/// A named file-level item that can lead to a model or llm call.
struct Node<'a> {
    file: usize,
    name: &'a str,
    kind: Kind,
    item: &'a SolItem,
}

/// Every contract, library and free function of the project, by name.
struct Graph<'a> {
    nodes: Vec<Node<'a>>,
    by_name: HashMap<&'a str, Vec<usize>>,
    /// The files each file sees.
    visible: Vec<Vec<usize>>,
}

impl<'a> Graph<'a> {
    fn new(project: &'a Project) -> Self {
        let mut nodes = Vec::new();
        for (file, f) in project.files.iter().enumerate() {
            let Some(unit) = &f.ast else { continue };
            for item in &unit.items {
                let Item::Solidity(sol) = item else { continue };
                let (Some(kind), Some(name)) = (kind(sol), crate::sema::item_name(sol)) else { continue };
                nodes.push(Node { file, name: &name.value, kind, item: sol });
            }
        }
        let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            by_name.entry(n.name).or_default().push(i);
        }
        let visible = (0..project.files.len()).map(|f| project.visible_files(f)).collect();
        Self { nodes, by_name, visible }
    }

    /// The models and llms reachable from node `start`, each once: its own
    /// calls first, then those of what it reaches, depth first.
    fn reachable_decls<'d>(&self, project: &Project, analysis: &'d Analysis, start: usize) -> Vec<&'d Decl> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![start];
        let mut decls: Vec<&Decl> = Vec::new();
        while let Some(n) = stack.pop() {
            if std::mem::replace(&mut seen[n], true) {
                continue;
            }
            let node = &self.nodes[n];
            crate::sema::visit_item(node.item, &mut |e, _| {
                if let Some(d) = analysis.lookup(project, node.file, &e.target.value)
                    && !decls.iter().any(|known| std::ptr::eq(*known, d))
                {
                    decls.push(d);
                }
            });
            // Pushed in reverse so that the first named is visited first.
            let mut next = self.references(n);
            next.reverse();
            stack.extend(next.into_iter().filter(|&m| !seen[m]));
        }
        decls
    }

    /// The nodes that node `n` names: bases in its `is` list, and libraries
    /// and free functions anywhere in it, visible from its file.
    fn references(&self, n: usize) -> Vec<usize> {
        let node = &self.nodes[n];
        let visible = &self.visible[node.file];
        let mut out = Vec::new();
        let mut resolve = |name: &str, kinds: &[Kind]| {
            for &m in self.by_name.get(name).into_iter().flatten() {
                let target = &self.nodes[m];
                if m != n && kinds.contains(&target.kind) && visible.contains(&target.file) && !out.contains(&m) {
                    out.push(m);
                }
            }
        };
        if node.kind == Kind::Contract {
            for base in bases(node.item) {
                resolve(base, &[Kind::Contract]);
            }
        }
        names(&node.item.tts, &mut |name| resolve(name, &[Kind::Library, Kind::Function]));
        out
    }
}

/// The kind of a file-level Solidity item, if it is one that reachability
/// follows.
fn kind(item: &SolItem) -> Option<Kind> {
    let mut idents = item.tts.iter().filter_map(|t| match t {
        Tt::Ident(i) => Some(i.value.as_str()),
        _ => None,
    });
    match idents.next()? {
        "abstract" | "contract" | "interface" => Some(Kind::Contract),
        "library" => Some(Kind::Library),
        "function" => Some(Kind::Function),
        _ => None,
    }
}

/// The names in a contract's `is` list: the identifiers between `is` and
/// the body, outside brackets (a base's constructor arguments are not
/// bases; a qualified base `A.B` gives both parts, which is harmless).
fn bases(item: &SolItem) -> Vec<&str> {
    let body = item.tts.iter().rposition(|t| matches!(t, Tt::Group { delim: Delim::Brace, .. }));
    let heading = &item.tts[..body.unwrap_or(item.tts.len())];
    heading
        .iter()
        .filter_map(|t| match t {
            Tt::Ident(i) => Some(i.value.as_str()),
            _ => None,
        })
        .skip_while(|w| *w != "is")
        .skip(1)
        .collect()
}

/// Calls `f` on every identifier in `tts`, inside brackets and NML
/// expressions' arguments too.
fn names<'t>(tts: &'t [Tt], f: &mut impl FnMut(&'t str)) {
    for t in tts {
        match t {
            Tt::Ident(i) => f(&i.value),
            Tt::Group { tts, .. } => names(tts, f),
            Tt::Nml(e) => e.args.iter().for_each(|a| names(&a.tts, f)),
            Tt::Semi(_) | Tt::KwMisuse(_) => {}
        }
    }
}
