//! What `nml coverage` counts, read from solc's output: the functions,
//! statements and branches of each covered source (from its AST, at the
//! line of the `.nml` or `.sol` file the user wrote), and for each
//! contract's creation and runtime code which instructions say that each
//! was reached (from its source map).
//!
//! An item's count comes from the hits of those instructions:
//! - a **statement** owns the instructions whose innermost enclosing
//!   statement it is (a compound statement — `if`, a loop, `try` — owns its
//!   header, not its bodies), and counts the most-hit of them;
//! - a **function** (or modifier) counts its entry and exit: the
//!   instructions that solc maps to the whole definition;
//! - a **branch** of an `if` counts its body's first statement; the `else`
//!   of an `if` without one counts the evaluations that did not take the
//!   `if` body; a branch of `c ? a : b` counts the code of `a` or of `b`.
//!
//! The runtime counts hits per program counter of each code it ran; this
//! module turns program counters into items ([`CoverageMap::add`]).

use std::collections::BTreeMap;
use std::ops::Range;

use foundry_compilers::artifacts::{BytecodeObject, CompactBytecode, Offsets};
use serde_json::Value;

use crate::Frontend;
use crate::solc::SolcOutput;

/// A function, statement or branch of a covered source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Index into [`CoverageMap::files`].
    pub file: usize,
    /// 1-based line in the file the user wrote.
    pub line: usize,
    /// What it is.
    pub kind: ItemKind,
    /// Where it lies in the text solc compiled.
    range: Range<usize>,
    count: Count,
}

/// The kinds of items coverage counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind {
    /// A function, constructor, fallback, receive or modifier, by name.
    Function(String),
    /// A statement.
    Statement,
    /// Path `path` (0: taken, 1: not taken) of the two-way branch `group`
    /// (numbered within its file).
    Branch {
        /// The branch point, numbered within the file.
        group: usize,
        /// 0 for the `if` body (`c ? a : b`: `a`), 1 for the other way.
        path: usize,
    },
}

/// How an item's count is made from the hits of instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Count {
    /// The most-hit instruction this statement owns.
    Owned,
    /// The most-hit instruction mapped to exactly the item's range.
    Exact,
    /// The most-hit instruction inside the item's range.
    Inside,
    /// The count of another item.
    Of(usize),
    /// The count of the first item less that of the second.
    Rest(usize, usize),
    /// [`Count::Exact`], or where no instruction is the item's, the count
    /// of another item.
    Entry(usize),
}

/// A covered source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoveredFile {
    /// Its source unit name, e.g. `src/Pool.nml`.
    pub unit: String,
}

/// One contract's creation or runtime code, and the items its instructions
/// count for.
#[derive(Debug)]
struct Code {
    /// The code, `None` where a deployed copy may differ (library
    /// addresses, immutables).
    pattern: Vec<Option<u8>>,
    /// Creation code runs with its constructor's arguments after it.
    creation: bool,
    /// `(item, pc)`: the instructions that count for each item.
    anchors: Vec<(usize, usize)>,
}

/// The items of the covered sources, and where each contract's code counts
/// for them.
#[derive(Debug, Default)]
pub struct CoverageMap {
    files: Vec<CoveredFile>,
    items: Vec<Item>,
    /// The items of each file (they are file by file).
    spans: Vec<Range<usize>>,
    codes: Vec<Code>,
}

impl CoverageMap {
    /// The items of every source unit of `output` that `covered` accepts,
    /// located in the files of `fe`, and the instructions of every contract
    /// of `output` that count for them. `output` must come from a job that
    /// asked for ASTs ([`crate::build::build_for_coverage`]).
    pub fn new(fe: &Frontend, output: &SolcOutput, covered: impl Fn(&str) -> bool) -> Self {
        let mut map = Self::default();
        // solc's source id → the file's index in `map.files`.
        let mut by_id: BTreeMap<u32, usize> = BTreeMap::new();
        for (unit_name, source) in &output.sources {
            let Some(ast) = source.ast.as_ref().filter(|_| covered(unit_name)) else { continue };
            let Some(unit) = fe.units.iter().find(|u| &u.unit_name == unit_name) else { continue };
            let original = &fe.project.db.get(fe.project.files[unit.file].id).text;
            let starts = line_starts(original);
            let file = map.files.len();
            map.files.push(CoveredFile { unit: unit_name.clone() });
            by_id.insert(source.id, file);
            let first = map.items.len();
            Walk { items: &mut map.items, file, groups: 0 }.unit(ast);
            // Items nml generated (a model's library) are not the user's
            // lines; the rest get the line of the text they were copied from.
            let mut kept = Vec::new();
            let mut renumber = vec![usize::MAX; map.items.len() - first];
            for (i, mut item) in map.items.drain(first..).enumerate() {
                if unit.map.is_generated(item.range.start) {
                    continue;
                }
                let at = unit.map.to_source(item.range.start..item.range.start + 1).map_or(0, |r| r.start);
                item.line = starts.partition_point(|&s| s <= at);
                renumber[i] = first + kept.len();
                kept.push(item);
            }
            let moved = |i: usize| renumber.get(i - first).copied().filter(|&i| i != usize::MAX);
            for item in &mut kept {
                item.count = match item.count {
                    Count::Of(i) => moved(i).map_or(Count::Inside, Count::Of),
                    Count::Rest(a, b) => moved(a).zip(moved(b)).map_or(Count::Inside, |(a, b)| Count::Rest(a, b)),
                    Count::Entry(i) => moved(i).map_or(Count::Exact, Count::Entry),
                    other => other,
                };
            }
            // Branch points numbered from 0 in each file, in source order.
            let mut groups: BTreeMap<usize, usize> = BTreeMap::new();
            for item in &mut kept {
                if let ItemKind::Branch { group, .. } = &mut item.kind {
                    let next = groups.len();
                    *group = *groups.entry(*group).or_insert(next);
                }
            }
            map.items.extend(kept);
            map.spans.push(first..map.items.len());
        }
        for artifact in &output.contracts {
            let artifact = &artifact.artifact;
            if let Some(bytecode) = &artifact.bytecode {
                map.add_code(bytecode, &[], true, &by_id);
            }
            if let Some(deployed) = &artifact.deployed_bytecode
                && let Some(bytecode) = &deployed.bytecode
            {
                let immutables: Vec<&Offsets> = deployed.immutable_references.values().flatten().collect();
                map.add_code(bytecode, &immutables, false, &by_id);
            }
        }
        map
    }

    fn add_code(
        &mut self,
        bytecode: &CompactBytecode,
        open: &[&Offsets],
        creation: bool,
        by_id: &BTreeMap<u32, usize>,
    ) {
        let Some(source_map) = bytecode.source_map.as_deref() else { return };
        let mut pattern: Vec<Option<u8>> = match &bytecode.object {
            BytecodeObject::Bytecode(bytes) => bytes.iter().map(|b| Some(*b)).collect(),
            BytecodeObject::Unlinked(hex) => nml_protocol::bytecode::unlinked_code(hex),
        };
        if pattern.is_empty() {
            return;
        }
        // A library's runtime code starts with `PUSH20 <its own address>`
        // (zero in the artifact) for its call protection: open.
        if !creation && pattern.len() > 21 && pattern[0] == Some(0x73) && pattern[1..21].iter().all(|b| *b == Some(0)) {
            pattern[1..21].fill(None);
        }
        let links = bytecode.link_references.values().flat_map(|m| m.values()).flatten();
        for offsets in links.chain(open.iter().copied()) {
            for byte in pattern.iter_mut().skip(offsets.start as usize).take(offsets.length as usize) {
                *byte = None;
            }
        }
        let mut anchors = Vec::new();
        for (pc, element) in instructions(&pattern).zip(parse_source_map(source_map)) {
            let Some(&file) = element.file.and_then(|id| by_id.get(&id)) else { continue };
            self.anchor(file, element.range, pc, &mut anchors);
        }
        if !anchors.is_empty() {
            self.codes.push(Code { pattern, creation, anchors });
        }
    }

    /// The items an instruction at `pc` mapped to `range` of `file` counts for.
    fn anchor(&self, file: usize, range: Range<usize>, pc: usize, anchors: &mut Vec<(usize, usize)>) {
        let inside = |item: &Item| item.range.start <= range.start && range.end <= item.range.end;
        let mut owner: Option<usize> = None;
        let span = self.span(file);
        for (i, item) in self.items.iter().enumerate().skip(span.start).take(span.len()) {
            match item.count {
                Count::Exact | Count::Entry(_) if item.range == range => anchors.push((i, pc)),
                Count::Inside if inside(item) => anchors.push((i, pc)),
                // Statements nest; the innermost (shortest) one owns it.
                Count::Owned if inside(item) && owner.is_none_or(|o| self.items[o].range.len() > item.range.len()) => {
                    owner = Some(i);
                }
                _ => {}
            }
        }
        if let Some(owner) = owner {
            anchors.push((owner, pc));
        }
    }

    /// The covered files.
    pub fn files(&self) -> &[CoveredFile] {
        &self.files
    }

    /// Every item, file by file, in source order within a file.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Where the items of `file` are in [`items`](Self::items) (empty for
    /// a file that is not covered).
    pub fn span(&self, file: usize) -> Range<usize> {
        self.spans.get(file).cloned().unwrap_or_default()
    }

    /// A zero count for every item, for [`add`](Self::add).
    pub fn zero(&self) -> Vec<u64> {
        vec![0; self.items.len()]
    }

    /// Adds the hits of one code the EVM ran (`hits[pc]`: how often the
    /// instruction at `pc` ran) to `counts`: its instructions' hits go to
    /// the items they count for. Whether the code is one of the contracts
    /// (code that is not, a test's or the standard library's, counts for
    /// nothing).
    pub fn add(&self, counts: &mut [u64], code: &[u8], hits: &[u32]) -> bool {
        let Some(known) = self.codes.iter().find(|c| c.matches(code)) else { return false };
        // Per item, the most-hit of its instructions in this code.
        let mut most: BTreeMap<usize, u32> = BTreeMap::new();
        for &(item, pc) in &known.anchors {
            let hit = hits.get(pc).copied().unwrap_or(0);
            let entry = most.entry(item).or_default();
            *entry = (*entry).max(hit);
        }
        for (item, hit) in most {
            counts[item] += u64::from(hit);
        }
        true
    }

    /// The final count of every item, from what [`add`](Self::add) summed:
    /// branches that are counted by other items get theirs.
    pub fn resolve(&self, counts: &[u64]) -> Vec<u64> {
        // Items count for others only through statements and earlier
        // branches: the recursion is shallow and ends.
        fn value(items: &[Item], counts: &[u64], i: usize) -> u64 {
            match items[i].count {
                Count::Of(other) => value(items, counts, other),
                Count::Rest(whole, part) => value(items, counts, whole).saturating_sub(value(items, counts, part)),
                Count::Entry(first) if counts[i] == 0 => value(items, counts, first),
                Count::Owned | Count::Exact | Count::Inside | Count::Entry(_) => counts[i],
            }
        }
        (0..self.items.len()).map(|i| value(&self.items, counts, i)).collect()
    }
}

impl Code {
    fn matches(&self, code: &[u8]) -> bool {
        let length_fits =
            if self.creation { code.len() >= self.pattern.len() } else { code.len() == self.pattern.len() };
        length_fits && self.pattern.iter().zip(code).all(|(want, got)| want.is_none_or(|w| w == *got))
    }
}

/// The program counter of each instruction of `code`, in order: a `PUSHn`
/// takes its `n` bytes of data with it.
fn instructions(code: &[Option<u8>]) -> impl Iterator<Item = usize> + '_ {
    let mut pc = 0;
    std::iter::from_fn(move || {
        let op = code.get(pc)?;
        let at = pc;
        pc += 1 + match op {
            Some(op @ 0x60..=0x7f) => usize::from(op - 0x5f),
            _ => 0,
        };
        Some(at)
    })
}

/// One instruction's entry of a source map.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SourceElement {
    range: Range<usize>,
    /// solc's source id; `None` for code of no source (`-1`).
    file: Option<u32>,
}

/// solc's compressed source map (`s:l:f:j:m;…`), one element per
/// instruction: an empty field repeats the previous element's.
fn parse_source_map(map: &str) -> impl Iterator<Item = SourceElement> + '_ {
    let (mut start, mut length, mut file) = (0i64, 0i64, -1i64);
    map.split(';').map(move |entry| {
        let mut fields = entry.split(':');
        let mut next = |value: &mut i64| {
            if let Some(field) = fields.next().filter(|f| !f.is_empty()) {
                *value = field.parse().unwrap_or(-1);
            }
        };
        next(&mut start);
        next(&mut length);
        next(&mut file);
        let range = match (usize::try_from(start), usize::try_from(length)) {
            (Ok(s), Ok(l)) => s..s + l,
            _ => 0..0,
        };
        SourceElement { range, file: u32::try_from(file).ok() }
    })
}

/// The byte offset at which each line of `text` starts.
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect()
}

/// `start:length:file` of an AST node's `src`.
fn src(node: &Value) -> Option<Range<usize>> {
    let mut parts = node["src"].as_str()?.split(':');
    let start: usize = parts.next()?.parse().ok()?;
    let length: usize = parts.next()?.parse().ok()?;
    Some(start..start + length)
}

/// The walk of one source unit's AST, adding items.
struct Walk<'a> {
    items: &'a mut Vec<Item>,
    file: usize,
    groups: usize,
}

impl Walk<'_> {
    fn push(&mut self, kind: ItemKind, range: Range<usize>, count: Count) -> usize {
        self.items.push(Item { file: self.file, line: 0, kind, range, count });
        self.items.len() - 1
    }

    fn unit(&mut self, ast: &Value) {
        for node in ast["nodes"].as_array().into_iter().flatten() {
            match node["nodeType"].as_str() {
                Some("ContractDefinition") => {
                    let contract = node["name"].as_str().unwrap_or_default();
                    for member in node["nodes"].as_array().into_iter().flatten() {
                        self.definition(member, Some(contract));
                    }
                }
                _ => self.definition(node, None),
            }
        }
    }

    /// A function or modifier with a body, named `Contract.name` inside a
    /// contract (as LCOV readers tell one file's functions apart).
    fn definition(&mut self, node: &Value, contract: Option<&str>) {
        let name = match (node["nodeType"].as_str(), node["kind"].as_str()) {
            (Some("ModifierDefinition"), _) => node["name"].as_str().unwrap_or_default(),
            (Some("FunctionDefinition"), Some(kind @ ("constructor" | "fallback" | "receive"))) => kind,
            (Some("FunctionDefinition"), _) => node["name"].as_str().unwrap_or_default(),
            _ => return,
        };
        let name = contract.map_or_else(|| name.to_owned(), |contract| format!("{contract}.{name}"));
        let (Some(range), body) = (src(node), &node["body"]) else { return };
        if !body.is_object() {
            return;
        }
        let function = self.push(ItemKind::Function(name), range, Count::Exact);
        let first = self.items.len();
        self.block(body);
        let Some(statement) = self.items[first..].iter().position(|i| i.kind == ItemKind::Statement) else { return };
        self.items[function].count = if node["nodeType"] == "ModifierDefinition" {
            // solc maps no instruction to a whole modifier (its code is
            // placed in each function it modifies): its first statement.
            Count::Of(first + statement)
        } else {
            // `fallback` and `receive` are entered from the dispatcher with
            // no instruction of their own: their first statement then.
            Count::Entry(first + statement)
        };
    }

    fn block(&mut self, block: &Value) {
        for statement in block["statements"].as_array().into_iter().flatten() {
            self.statement(statement);
        }
    }

    /// A statement, or a block standing where one may. The index of the
    /// first statement item it made, if any.
    fn statement(&mut self, node: &Value) -> Option<usize> {
        let kind = node["nodeType"].as_str()?;
        if matches!(kind, "Block" | "UncheckedBlock") {
            let first = self.items.len();
            self.block(node);
            return self.items[first..].iter().position(|i| i.kind == ItemKind::Statement).map(|i| first + i);
        }
        if kind == "PlaceholderStatement" {
            // A modifier's `_` has no code of its own: the function's runs there.
            return None;
        }
        let this = self.push(ItemKind::Statement, src(node)?, Count::Owned);
        match kind {
            "IfStatement" => {
                let group = self.next_group();
                let taken = self.push(ItemKind::Branch { group, path: 0 }, 0..0, Count::Inside);
                let other = self.push(ItemKind::Branch { group, path: 1 }, 0..0, Count::Inside);
                self.conditionals(&node["condition"]);
                let first_taken = self.statement(&node["trueBody"]);
                let first_other = if node["falseBody"].is_object() { self.statement(&node["falseBody"]) } else { None };
                self.items[taken].count = match (first_taken, first_other) {
                    (Some(first), _) => Count::Of(first),
                    (None, Some(first)) => Count::Rest(this, first),
                    (None, None) => Count::Of(this),
                };
                self.items[other].count = match first_other {
                    Some(first) => Count::Of(first),
                    None => Count::Rest(this, taken),
                };
                // A branch is reported at its `if`.
                self.items[taken].range = self.items[this].range.start..self.items[this].range.start;
                self.items[other].range = self.items[taken].range.clone();
            }
            "ForStatement" | "WhileStatement" | "DoWhileStatement" => {
                self.conditionals(&node["condition"]);
                self.statement(&node["body"]);
            }
            "TryStatement" => {
                for clause in node["clauses"].as_array().into_iter().flatten() {
                    self.statement(&clause["block"]);
                }
            }
            _ => self.conditionals(node),
        }
        Some(this)
    }

    fn next_group(&mut self) -> usize {
        self.groups += 1;
        self.groups - 1
    }

    /// The branches of every `c ? a : b` in an expression.
    fn conditionals(&mut self, node: &Value) {
        match node {
            Value::Object(fields) => {
                if node["nodeType"] == "Conditional"
                    && let (Some(a), Some(b)) = (src(&node["trueExpression"]), src(&node["falseExpression"]))
                {
                    let group = self.next_group();
                    self.push(ItemKind::Branch { group, path: 0 }, a, Count::Inside);
                    self.push(ItemKind::Branch { group, path: 1 }, b, Count::Inside);
                }
                fields.values().for_each(|v| self.conditionals(v));
            }
            Value::Array(values) => values.iter().for_each(|v| self.conditionals(v)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_map_repeats_what_an_entry_leaves_out() {
        let elements: Vec<SourceElement> = parse_source_map("10:5:0:-:0;;12:2;:3:1;-1:-1:-1").collect();
        assert_eq!(
            elements,
            [
                SourceElement { range: 10..15, file: Some(0) },
                SourceElement { range: 10..15, file: Some(0) },
                SourceElement { range: 12..14, file: Some(0) },
                SourceElement { range: 12..15, file: Some(1) },
                SourceElement { range: 0..0, file: None },
            ]
        );
    }

    #[test]
    fn a_push_takes_its_data_with_it() {
        // PUSH1 01, PUSH2 0203, ADD, PUSH32 (32 bytes), STOP
        let mut code = vec![0x60, 0x01, 0x61, 0x02, 0x03, 0x01, 0x7f];
        code.extend([0xaa; 32]);
        code.push(0x00);
        let code: Vec<Option<u8>> = code.into_iter().map(Some).collect();
        assert_eq!(instructions(&code).collect::<Vec<_>>(), [0, 2, 5, 6, 39]);
        // An open byte (a library's address) is data like any other.
        assert_eq!(instructions(&[Some(0x73), None, None]).collect::<Vec<_>>(), [0]);
    }

    /// `src` of a node at `range`.
    fn at(range: Range<usize>) -> String {
        format!("{}:{}:0", range.start, range.len())
    }

    #[test]
    fn an_if_counts_its_header_and_its_branches_count_their_bodies() {
        // function f() { if (c) { a; } b; } — offsets are what matter.
        let ast = serde_json::json!({"nodes": [{"nodeType": "ContractDefinition", "name": "C", "nodes": [{
            "nodeType": "FunctionDefinition", "kind": "function", "name": "f", "src": at(0..100),
            "body": {"nodeType": "Block", "src": at(10..100), "statements": [
                {"nodeType": "IfStatement", "src": at(20..60),
                 "condition": {"nodeType": "Identifier", "src": at(24..25)},
                 "trueBody": {"nodeType": "Block", "src": at(30..60), "statements": [
                    {"nodeType": "ExpressionStatement", "src": at(40..50),
                     "expression": {"nodeType": "Conditional", "src": at(40..49),
                        "trueExpression": {"src": at(44..45)}, "falseExpression": {"src": at(47..48)}}}]},
                 "falseBody": null},
                {"nodeType": "ExpressionStatement", "src": at(70..80)}]}}]}]});
        let mut map = CoverageMap::default();
        Walk { items: &mut map.items, file: 0, groups: 0 }.unit(&ast);
        map.spans.push(0..map.items.len());
        let kinds: Vec<&ItemKind> = map.items.iter().map(|i| &i.kind).collect();
        assert_eq!(
            kinds,
            [
                &ItemKind::Function("C.f".to_owned()),
                &ItemKind::Statement,
                &ItemKind::Branch { group: 0, path: 0 },
                &ItemKind::Branch { group: 0, path: 1 },
                &ItemKind::Statement,
                &ItemKind::Branch { group: 1, path: 0 },
                &ItemKind::Branch { group: 1, path: 1 },
                &ItemKind::Statement,
            ]
        );
        // Instructions: the function's entry (pc 0), the condition (pc 1),
        // the body's statement (pc 2), `a` of the ternary (pc 3), `b;` (pc 4).
        let mut anchors = Vec::new();
        for (pc, range) in [(0, 0..100), (1, 24..25), (2, 40..50), (3, 44..45), (4, 70..80)] {
            map.anchor(0, range, pc, &mut anchors);
        }
        assert_eq!(anchors, [(0, 0), (1, 1), (4, 2), (5, 3), (4, 3), (7, 4)]);
        map.codes.push(Code { pattern: vec![Some(0x5b); 5], creation: false, anchors });
        let mut counts = map.zero();
        // Called 3 times: the condition held once, the ternary took `a` then.
        assert!(map.add(&mut counts, &[0x5b; 5], &[3, 3, 1, 1, 3]));
        assert!(!map.add(&mut counts, &[0x5b; 4], &[9; 4]), "other code counts for nothing");
        assert_eq!(map.resolve(&counts), [3, 3, 1, 2, 1, 1, 0, 3]);
    }

    #[test]
    fn a_modifier_counts_its_first_statement_and_its_placeholder_is_no_statement() {
        let ast = serde_json::json!({"nodes": [{"nodeType": "ContractDefinition", "nodes": [{
            "nodeType": "ModifierDefinition", "name": "counted", "src": at(0..50),
            "body": {"nodeType": "Block", "src": at(10..50), "statements": [
                {"nodeType": "ExpressionStatement", "src": at(12..20)},
                {"nodeType": "PlaceholderStatement", "src": at(22..24)},
                {"nodeType": "ExpressionStatement", "src": at(30..40)}]}}]}]});
        let mut map = CoverageMap::default();
        Walk { items: &mut map.items, file: 0, groups: 0 }.unit(&ast);
        let counts: Vec<Count> = map.items.iter().map(|i| i.count).collect();
        assert_eq!(counts, [Count::Of(1), Count::Owned, Count::Owned]);
        assert_eq!(map.resolve(&[0, 4, 3]), [4, 4, 3]);
    }

    #[test]
    fn creation_code_is_known_with_its_constructor_arguments_and_runtime_code_exactly() {
        let code = |creation| Code { pattern: vec![Some(1), None, Some(3)], creation, anchors: Vec::new() };
        assert!(code(true).matches(&[1, 9, 3, 0xaa, 0xbb]));
        assert!(!code(false).matches(&[1, 9, 3, 0xaa]));
        assert!(code(false).matches(&[1, 9, 3]));
        assert!(!code(false).matches(&[2, 9, 3]));
    }
}
