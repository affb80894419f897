//! Diagnostics: one [`Diagnostic`] type for every stage, rendered by separate
//! emitters — miette's graphical report for humans, JSON lines for machines.

use std::fmt::{self, Write as _};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde::Serialize;

/// Index of a file in a [`SourceDb`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// One source file known to the compiler.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path on disk.
    pub path: PathBuf,
    /// The path as shown to users (relative to the project root when possible).
    pub display: String,
    /// The file's text.
    pub text: Arc<str>,
    /// Byte offsets of line starts, for line/column lookups.
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Creates a source file and indexes its lines.
    pub fn new(path: PathBuf, display: String, text: Arc<str>) -> Self {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Self { path, display, text, line_starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let col = self.text.get(start..offset).map_or(offset - start, |s| s.chars().count());
        (line + 1, col + 1)
    }
}

/// All source files of a compilation, addressed by [`FileId`].
#[derive(Debug, Default, Clone)]
pub struct SourceDb {
    files: Vec<SourceFile>,
}

impl SourceDb {
    /// Adds a file and returns its id.
    pub fn add(&mut self, path: PathBuf, display: String, text: Arc<str>) -> FileId {
        let id = FileId(u32::try_from(self.files.len()).unwrap_or(u32::MAX));
        self.files.push(SourceFile::new(path, display, text));
        id
    }

    /// The file with this id.
    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    /// The id of a file already added under this path.
    pub fn find(&self, path: &Path) -> Option<FileId> {
        self.files.iter().position(|f| f.path == path).map(|i| FileId(i as u32))
    }

    /// Iterates over all files with their ids.
    pub fn iter(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files.iter().enumerate().map(|(i, f)| (FileId(i as u32), f))
    }
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Stops the build.
    Error,
    /// Worth reading; the build goes on.
    Warning,
    /// Information, e.g. a derived model id.
    Note,
}

/// A located message with a code, a label and a help line, like rustc's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error, warning or note.
    pub severity: Severity,
    /// Stable code, e.g. `nml::E0013` or `solc::7576`.
    pub code: String,
    /// The headline.
    pub message: String,
    /// Where, if anywhere.
    pub location: Option<(FileId, Range<usize>)>,
    /// The text under the span.
    pub label: Option<String>,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error with an `nml::` code.
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, message)
    }

    /// A warning with an `nml::` code.
    pub fn warning(code: &str, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, message)
    }

    /// A diagnostic of any severity; `code` is used as given when it already
    /// has a namespace (`solc::1234`), else prefixed with `nml::`.
    pub fn new(severity: Severity, code: &str, message: impl Into<String>) -> Self {
        let code = if code.contains("::") { code.to_owned() } else { format!("nml::{code}") };
        Self { severity, code, message: message.into(), location: None, label: None, help: None }
    }

    /// Attaches a location and the label printed under it.
    pub fn at(mut self, file: FileId, span: Range<usize>, label: impl Into<String>) -> Self {
        self.location = Some((file, span));
        self.label = Some(label.into());
        self
    }

    /// Attaches a help line.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Whether this stops the build.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A diagnostic bound to its source text, in the shape miette renders.
#[derive(Debug)]
struct Report<'a> {
    diag: &'a Diagnostic,
    source: Option<NamedSource<Arc<str>>>,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(&self.diag.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Note => miette::Severity::Advice,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diag.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (_, span) = self.diag.location.as_ref()?;
        let label = LabeledSpan::new_primary_with_span(
            self.diag.label.clone(),
            (span.start, span.end.saturating_sub(span.start)),
        );
        Some(Box::new(std::iter::once(label)))
    }
}

/// How diagnostics are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageFormat {
    /// miette's graphical reports.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Renders diagnostics for humans: miette's graphical report, plain unicode,
/// `width` columns. `color` adds ANSI styles.
pub fn render_human(db: &SourceDb, diags: &[Diagnostic], color: bool, width: usize) -> String {
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(width);
    let mut out = String::new();
    for diag in diags {
        let source = diag.location.as_ref().map(|(file, _)| {
            let f = db.get(*file);
            NamedSource::new(f.display.clone(), Arc::clone(&f.text)).with_language("solidity")
        });
        let report = Report { diag, source };
        if handler.render_report(&mut out, &report).is_err() {
            // Rendering into a String cannot fail for I/O reasons; fall back to
            // the headline if miette rejects a span.
            let _ = writeln!(out, "{}: {}", diag.code, diag.message);
        }
    }
    out
}

/// The JSON form of one diagnostic (a line of `--message-format json`).
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic<'a> {
    /// `error`, `warning` or `note`.
    pub severity: Severity,
    /// The code, e.g. `nml::E0013`.
    pub code: &'a str,
    /// The headline.
    pub message: &'a str,
    /// The file as displayed, if located.
    pub file: Option<&'a str>,
    /// 1-based line of the span start.
    pub line: Option<usize>,
    /// 1-based column (characters) of the span start.
    pub column: Option<usize>,
    /// 1-based line of the span end.
    pub end_line: Option<usize>,
    /// 1-based column of the span end.
    pub end_column: Option<usize>,
    /// The label under the span.
    pub label: Option<&'a str>,
    /// The help line.
    pub help: Option<&'a str>,
}

/// Renders diagnostics as JSON lines.
pub fn render_json(db: &SourceDb, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let (file, start, end) = match &d.location {
            Some((id, span)) => {
                let f = db.get(*id);
                (Some(f.display.as_str()), Some(f.line_col(span.start)), Some(f.line_col(span.end)))
            }
            None => (None, None, None),
        };
        let json = JsonDiagnostic {
            severity: d.severity,
            code: &d.code,
            message: &d.message,
            file,
            line: start.map(|p| p.0),
            column: start.map(|p| p.1),
            end_line: end.map(|p| p.0),
            end_column: end.map(|p| p.1),
            label: d.label.as_deref(),
            help: d.help.as_deref(),
        };
        // Serializing plain strings and integers cannot fail.
        out.push_str(&serde_json::to_string(&json).unwrap_or_default());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let f = SourceFile::new("a".into(), "a".into(), "ab\nçd\n".into());
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f.line_col(5), (2, 2));
        assert_eq!(f.line_col(100), (3, 1));
    }

    #[test]
    fn json_has_position() {
        let mut db = SourceDb::default();
        let id = db.add("x.nml".into(), "x.nml".into(), "ab\ncd".into());
        let d = Diagnostic::error("E0001", "bad").at(id, 3..4, "here").help("fix");
        let json = render_json(&db, &[d]);
        assert!(json.contains(r#""line":2,"column":1"#), "{json}");
        assert!(json.contains(r#""code":"nml::E0001""#), "{json}");
    }
}
