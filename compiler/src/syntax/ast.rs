//! The typed syntax tree of an `.nml` file.
//!
//! NML declarations and expressions are fully typed; Solidity is kept as
//! token trees ([`Tt`]) whose text is sliced from the source by span.

use std::ops::Range;

/// A byte range in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from byte offsets.
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// As a `Range` (for slicing and diagnostics).
    pub fn range(self) -> Range<usize> {
        self.start..self.end
    }
}

/// A value with the span it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub span: Span,
}

/// An identifier.
pub type Ident = Spanned<String>;

/// A string literal, decoded; nml writes it back with
/// [`sol_string`](crate::syntax::sol_string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrLit {
    /// The decoded value.
    pub value: String,
    /// Where it is.
    pub span: Span,
}

/// A parsed `.nml` (or `.sol`) file.
#[derive(Debug, Clone, Default)]
pub struct SourceUnit {
    /// File-level items in source order.
    pub items: Vec<Item>,
}

/// A file-level item.
#[derive(Debug, Clone)]
pub enum Item {
    /// `pragma nml <version>;`
    PragmaNml {
        /// The version requirement as written; `None` for `pragma nml;`.
        version: Option<Spanned<String>>,
        /// The whole pragma.
        span: Span,
    },
    /// Any other pragma; `pragma solidity` is read for the solc version.
    Pragma {
        /// `solidity`, `abicoder`, `experimental`, ...
        name: Ident,
        /// The rest up to `;`.
        value: Option<Spanned<String>>,
        /// The whole pragma.
        span: Span,
    },
    /// An import of any form; only the path matters to nml.
    Import {
        /// The imported path.
        path: StrLit,
        /// The whole import.
        span: Span,
    },
    /// A `model` declaration.
    Model(ModelDecl),
    /// An `llm` declaration.
    Llm(LlmDecl),
    /// A Solidity item (contract, library, free function, struct, ...).
    Solidity(SolItem),
}

/// `model NAME { ... }`
#[derive(Debug, Clone)]
pub struct ModelDecl {
    /// The model's name (also the generated library's).
    pub name: Ident,
    /// Fields in source order.
    pub fields: Vec<ModelField>,
    /// The whole declaration.
    pub span: Span,
}

/// One field of a model declaration.
#[derive(Debug, Clone)]
pub enum ModelField {
    /// `cid "<id>";`
    Cid(StrLit),
    /// `onnx "<path>";`
    Onnx(StrLit),
    /// `mode vanilla|tee|zk;`
    Mode(Ident),
    /// `input NAME ["graph name"]: TYPE;`
    Input(TensorDecl),
    /// `output NAME ["graph name"]: TYPE;`
    Output(TensorDecl),
}

impl ModelField {
    /// The field's keyword, for duplicate-field messages.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Cid(_) => "cid",
            Self::Onnx(_) => "onnx",
            Self::Mode(_) => "mode",
            Self::Input(_) => "input",
            Self::Output(_) => "output",
        }
    }
}

/// `NAME ["graph name"]: TYPE` of a model input or output.
#[derive(Debug, Clone)]
pub struct TensorDecl {
    /// The name Solidity sees: the `infer` argument's name, the
    /// `Output` field's name.
    pub name: Ident,
    /// The graph tensor's name when it is written apart from `name`
    /// (graph names need not be identifiers: `input:0`, `output.1`).
    pub graph_name: Option<StrLit>,
    /// Its declared type.
    pub ty: TensorType,
    /// The whole field.
    pub span: Span,
}

/// `fixed<D>[d1, ...]`, `int[...]` or `string[...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorType {
    /// The element type.
    pub elem: Elem,
    /// Span of the element type.
    pub elem_span: Span,
    /// Dimensions, outermost first.
    pub dims: Vec<Spanned<Dim>>,
    /// The whole type.
    pub span: Span,
}

impl TensorDecl {
    /// The graph tensor's name: the string when one is given, else `name`.
    pub fn graph_name(&self) -> &str {
        self.graph_name.as_ref().map_or(&self.name.value, |s| &s.value)
    }

    /// Where the graph tensor's name is written.
    pub fn graph_name_span(&self) -> Span {
        self.graph_name.as_ref().map_or(self.name.span, |s| s.span)
    }
}

impl TensorType {
    /// The element count when every dim is fixed.
    pub fn fixed_len(&self) -> Option<u64> {
        self.dims.iter().try_fold(1u64, |acc, d| match d.value {
            Dim::Fixed(n) => acc.checked_mul(n),
            Dim::Dynamic => None,
        })
    }
}

/// Element type of a declared tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem {
    /// Fixed point with this many decimals (`int` is `Fixed(0)`).
    Fixed(u32),
    /// Strings.
    String,
}

/// One dimension of a declared tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(u64),
    /// `_`: any size.
    Dynamic,
}

/// `llm NAME { ... }`
#[derive(Debug, Clone)]
pub struct LlmDecl {
    /// The llm's name (also the generated library's).
    pub name: Ident,
    /// Fields in source order.
    pub fields: Vec<LlmField>,
    /// The whole declaration.
    pub span: Span,
}

/// One field of an llm declaration.
#[derive(Debug, Clone)]
pub enum LlmField {
    /// `model "<id>";`
    Model(StrLit),
    /// `mode vanilla|tee;`
    Mode(Ident),
    /// `max_tokens N;` (raw digits; range-checked by sema)
    MaxTokens(Spanned<String>),
    /// `temperature N;` (raw digits; range-checked by sema)
    Temperature(Spanned<String>),
    /// `stop ["...", ...];`
    Stop(Vec<StrLit>, Span),
}

impl LlmField {
    /// The field's keyword, for duplicate-field messages.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Model(_) => "model",
            Self::Mode(_) => "mode",
            Self::MaxTokens(_) => "max_tokens",
            Self::Temperature(_) => "temperature",
            Self::Stop(..) => "stop",
        }
    }

    /// Where the field is.
    pub fn span(&self) -> Span {
        match self {
            Self::Model(s) => s.span,
            Self::Mode(i) => i.span,
            Self::MaxTokens(s) | Self::Temperature(s) => s.span,
            Self::Stop(_, span) => *span,
        }
    }
}

/// A Solidity item kept as token trees.
#[derive(Debug, Clone)]
pub struct SolItem {
    /// The item's token trees (identifiers, `;`, groups, NML expressions).
    pub tts: Vec<Tt>,
    /// The whole item.
    pub span: Span,
}

/// Bracket kind of a [`Tt::Group`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delim {
    /// `{ }`
    Brace,
    /// `( )`
    Paren,
    /// `[ ]`
    Bracket,
}

/// A token tree: the parts of Solidity that later stages need.
#[derive(Debug, Clone)]
pub enum Tt {
    /// An identifier or keyword.
    Ident(Ident),
    /// `;`
    Semi(Span),
    /// A bracketed group.
    Group {
        /// The bracket kind.
        delim: Delim,
        /// Its contents.
        tts: Vec<Tt>,
        /// From the opening to the closing bracket, inclusive.
        span: Span,
    },
    /// An NML expression.
    Nml(NmlExpr),
    /// `infer`, `ask` or `chat` where Solidity needs an identifier.
    KwMisuse(Ident),
}

/// Which NML expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NmlKind {
    /// `infer M { name: expr, ... }`
    InferNamed,
    /// `infer M(expr, ...)`
    InferPositional,
    /// `ask L(expr)`
    Ask,
    /// `chat L(expr)`
    Chat,
}

impl NmlKind {
    /// The keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::InferNamed | Self::InferPositional => "infer",
            Self::Ask => "ask",
            Self::Chat => "chat",
        }
    }
}

/// An `infer`, `ask` or `chat` expression.
#[derive(Debug, Clone)]
pub struct NmlExpr {
    /// Which form.
    pub kind: NmlKind,
    /// The model or llm named.
    pub target: Ident,
    /// Its arguments in source order.
    pub args: Vec<Arg>,
    /// The whole expression.
    pub span: Span,
}

/// One argument of an NML expression.
#[derive(Debug, Clone)]
pub struct Arg {
    /// The input name of a named argument.
    pub name: Option<Ident>,
    /// The Solidity expression's token trees (may hold nested NML expressions).
    pub tts: Vec<Tt>,
    /// The Solidity expression.
    pub span: Span,
}
