//! Reads the signature of an ONNX model (IR version, opsets, graph inputs and
//! outputs) from its bytes, without running it.
//!
//! An ONNX file is a protobuf `ModelProto`. Only the few fields the compiler
//! checks declarations against are decoded, straight from the byte slice:
//! everything else, node lists and weights included, is skipped by its length
//! prefix. The decoder never recurses (the messages it enters nest a fixed
//! five levels deep), never allocates from a length it has not checked
//! against the bytes left, and answers every input with a signature or an
//! [`OnnxError`]. [`read_file`] reads the bytes from disk, bounded the same
//! way: regular files only, at most [`MAX_FILE_BYTES`].

use std::fmt;
use std::io::Read as _;
use std::path::Path;

use nml_protocol::{Dim, ElementType};
use thiserror::Error;

use wire::Reader;

/// The newest IR version this reader accepts. Released ONNX is at 11; a much
/// larger value means the bytes are not an ONNX model.
const MAX_IR_VERSION: i64 = 100;

/// What a model takes and returns, as the graph declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnnxSignature {
    /// The ONNX IR version (`ModelProto.ir_version`).
    pub ir_version: i64,
    /// The operator sets the model imports.
    pub opsets: Vec<Opset>,
    /// Graph inputs the caller must feed: initializers listed among the
    /// inputs (as IR version 3 and older require) are left out.
    pub inputs: Vec<TensorInfo>,
    /// Graph outputs that are tensors, in graph order.
    pub outputs: Vec<TensorInfo>,
    /// Graph outputs that are not tensors (e.g. the sequence of maps that
    /// scikit-learn classifiers return); nml cannot read them, but a model may
    /// still be called for its tensor outputs.
    pub non_tensor_outputs: Vec<NonTensor>,
}

impl OnnxSignature {
    /// The version of the default operator set (domain `""` or `ai.onnx`).
    pub fn default_opset(&self) -> Option<i64> {
        self.opsets.iter().find(|o| o.domain.is_empty() || o.domain == "ai.onnx").map(|o| o.version)
    }
}

/// One imported operator set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opset {
    /// The domain; `""` is the default `ai.onnx` domain.
    pub domain: String,
    /// The operator set version.
    pub version: i64,
}

/// A graph input or output that is a tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name in the graph.
    pub name: String,
    /// Its element type.
    pub elem: GraphElem,
    /// Its dimensions; `None` when the graph leaves even the rank unknown.
    pub shape: Option<Vec<Dim>>,
}

/// A graph tensor's element type as the file declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GraphElem {
    /// A type TensorLib carries.
    Known(ElementType),
    /// Any other ONNX `TensorProto.DataType` code: undefined (0), complex,
    /// float8, int4, ...
    Other(i32),
}

impl From<i32> for GraphElem {
    fn from(code: i32) -> Self {
        ElementType::from_onnx_code(code).map_or(Self::Other(code), Self::Known)
    }
}

impl fmt::Display for GraphElem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Known(ty) => ty.name(),
            Self::Other(0) => "an undefined element type",
            Self::Other(14) => "complex64",
            Self::Other(15) => "complex128",
            Self::Other(17) => "float8e4m3fn",
            Self::Other(18) => "float8e4m3fnuz",
            Self::Other(19) => "float8e5m2",
            Self::Other(20) => "float8e5m2fnuz",
            Self::Other(21) => "uint4",
            Self::Other(22) => "int4",
            Self::Other(23) => "float4e2m1",
            Self::Other(code) => return write!(f, "ONNX element type {code}"),
        };
        f.write_str(name)
    }
}

/// A graph input or output that is not a tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonTensor {
    /// Its name in the graph.
    pub name: String,
    /// What it is instead.
    pub kind: ValueKind,
}

/// The kinds of non-tensor values an ONNX graph can pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// `sequence_type`.
    Sequence,
    /// `map_type`.
    Map,
    /// `optional_type`.
    Optional,
    /// `sparse_tensor_type`.
    SparseTensor,
    /// `opaque_type`.
    Opaque,
    /// No type at all, or one this reader does not know.
    Untyped,
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sequence => "a sequence",
            Self::Map => "a map",
            Self::Optional => "an optional",
            Self::SparseTensor => "a sparse tensor",
            Self::Opaque => "an opaque value",
            Self::Untyped => "untyped",
        })
    }
}

/// Why bytes are not an ONNX model nml can use.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OnnxError {
    /// No `graph` field, or bytes that are not protobuf from the start (a text
    /// or JSON file, an empty file).
    #[error("no graph: this is not an ONNX model")]
    NoGraph,
    /// `ir_version` missing or far outside the released versions.
    #[error("{}", ir_version_text(*.0))]
    BadIrVersion(Option<i64>),
    /// A field runs past the end of the bytes.
    #[error("the file is truncated: {what} at byte {offset} runs past its end")]
    Truncated {
        /// Where the field starts.
        offset: usize,
        /// What was being read.
        what: &'static str,
    },
    /// Bytes that break the protobuf wire format or ONNX's use of it.
    #[error("malformed protobuf at byte {offset}: {reason}")]
    Malformed {
        /// Where the bad field starts.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// A graph input that is not a tensor: nml feeds tensors only.
    #[error("graph input `{name}` is {kind}, not a tensor")]
    NonTensorInput {
        /// The input's name.
        name: String,
        /// What it is instead.
        kind: ValueKind,
    },
}

fn ir_version_text(found: Option<i64>) -> String {
    match found {
        None => "no ir_version: this is not an ONNX model".to_owned(),
        Some(v) => {
            format!("ir_version {v} is not an ONNX IR version (expected 1 to {MAX_IR_VERSION})")
        }
    }
}

/// The largest ONNX file read: 2 GiB, protobuf's limit on one message, so a
/// larger file cannot be an ONNX model (bigger models keep their weights in
/// external data files, which nml does not read).
pub const MAX_FILE_BYTES: u64 = 2 << 30;

/// Why an ONNX file's bytes could not be read.
#[derive(Debug, Error)]
pub enum ReadFileError {
    /// Nothing at the path.
    #[error("no such file")]
    NotFound,
    /// A directory.
    #[error("this is a directory, not a file")]
    Directory,
    /// A device, FIFO or socket: reading one may never end (`/dev/zero`) or
    /// never start (a FIFO without a writer).
    #[error("this is not a regular file (a device, a FIFO or a socket)")]
    NotRegular,
    /// Larger than [`MAX_FILE_BYTES`].
    #[error("the file is larger than 2 GiB ({MAX_FILE_BYTES} bytes), protobuf's limit for an ONNX model")]
    TooLarge,
    /// Any other I/O failure.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads an ONNX file: a regular file (symlinks followed) of at most
/// [`MAX_FILE_BYTES`], through a reader that stops there even if the file
/// grows after its size was checked.
pub fn read_file(path: &Path) -> Result<Vec<u8>, ReadFileError> {
    // Checked before opening: opening a FIFO blocks until a writer comes.
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ReadFileError::NotFound,
        _ => ReadFileError::Io(e),
    })?;
    if meta.is_dir() {
        return Err(ReadFileError::Directory);
    }
    if !meta.is_file() {
        return Err(ReadFileError::NotRegular);
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ReadFileError::TooLarge);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)?.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadFileError::TooLarge);
    }
    Ok(bytes)
}

/// Reads the signature of the ONNX model in `bytes`.
pub fn read_signature(bytes: &[u8]) -> Result<OnnxSignature, OnnxError> {
    let mut ir_version = None;
    let mut opsets = Vec::new();
    let mut graph: Option<GraphParts<'_>> = None;
    // Until a ModelProto field is recognised, a wire error means the bytes
    // are something else entirely (text, JSON, an image), which `NoGraph`
    // says better than a byte offset does.
    let mut recognised = false;
    for field in Reader::new(bytes, 0) {
        let field = not_onnx_unless(recognised, field)?;
        match field.number {
            1 => ir_version = Some(not_onnx_unless(recognised, field.varint("ModelProto.ir_version"))? as i64),
            7 => {
                let msg = not_onnx_unless(recognised, field.message("ModelProto.graph"))?;
                read_graph(msg, graph.get_or_insert_with(GraphParts::default))?;
            }
            8 => {
                let msg = not_onnx_unless(recognised, field.message("ModelProto.opset_import"))?;
                opsets.push(read_opset(msg)?);
            }
            _ => continue,
        }
        recognised = true;
    }
    let graph = graph.ok_or(OnnxError::NoGraph)?;
    let ir_version = match ir_version {
        Some(v) if (1..=MAX_IR_VERSION).contains(&v) => v,
        other => return Err(OnnxError::BadIrVersion(other)),
    };
    graph.finish(ir_version, opsets)
}

/// Turns any error into [`OnnxError::NoGraph`] while no ModelProto field has
/// been `recognised`.
fn not_onnx_unless<T>(recognised: bool, result: Result<T, OnnxError>) -> Result<T, OnnxError> {
    result.map_err(|e| if recognised { e } else { OnnxError::NoGraph })
}

/// The parts of a `GraphProto` the signature needs, borrowed from the bytes.
#[derive(Default)]
struct GraphParts<'a> {
    inputs: Vec<Value<'a>>,
    outputs: Vec<Value<'a>>,
    initializers: Vec<&'a str>,
}

/// A `ValueInfoProto`.
struct Value<'a> {
    name: &'a str,
    ty: Type<'a>,
}

/// The part of a `TypeProto` that matters here.
enum Type<'a> {
    Tensor { elem: i32, shape: Option<Vec<RawDim<'a>>> },
    Other(ValueKind),
}

/// A `TensorShapeProto.Dimension` before its name is copied out.
#[derive(Clone, Copy)]
enum RawDim<'a> {
    Fixed(u64),
    Symbolic(&'a str),
    Unknown,
}

impl<'a> GraphParts<'a> {
    fn finish(mut self, ir_version: i64, opsets: Vec<Opset>) -> Result<OnnxSignature, OnnxError> {
        if !self.initializers.is_empty() {
            self.initializers.sort_unstable();
            let initializers = &self.initializers;
            self.inputs.retain(|v| initializers.binary_search(&v.name).is_err());
        }
        let mut inputs = Vec::with_capacity(self.inputs.len());
        for v in self.inputs {
            match v.ty {
                Type::Tensor { elem, shape } => inputs.push(tensor_info(v.name, elem, shape)),
                Type::Other(kind) => {
                    return Err(OnnxError::NonTensorInput { name: v.name.to_owned(), kind });
                }
            }
        }
        let mut outputs = Vec::with_capacity(self.outputs.len());
        let mut non_tensor_outputs = Vec::new();
        for v in self.outputs {
            match v.ty {
                Type::Tensor { elem, shape } => outputs.push(tensor_info(v.name, elem, shape)),
                Type::Other(kind) => non_tensor_outputs.push(NonTensor { name: v.name.to_owned(), kind }),
            }
        }
        Ok(OnnxSignature { ir_version, opsets, inputs, outputs, non_tensor_outputs })
    }
}

fn tensor_info(name: &str, elem: i32, shape: Option<Vec<RawDim<'_>>>) -> TensorInfo {
    let shape = shape.map(|dims| {
        dims.into_iter()
            .map(|d| match d {
                RawDim::Fixed(n) => Dim::Fixed(n),
                RawDim::Symbolic(s) => Dim::Symbolic(Some(s.to_owned())),
                RawDim::Unknown => Dim::Symbolic(None),
            })
            .collect()
    });
    TensorInfo { name: name.to_owned(), elem: GraphElem::from(elem), shape }
}

fn read_opset(msg: Reader<'_>) -> Result<Opset, OnnxError> {
    let mut opset = Opset { domain: String::new(), version: 0 };
    for field in msg {
        let field = field?;
        match field.number {
            1 => field.string("OperatorSetIdProto.domain")?.clone_into(&mut opset.domain),
            2 => opset.version = field.varint("OperatorSetIdProto.version")? as i64,
            _ => {}
        }
    }
    Ok(opset)
}

fn read_graph<'a>(msg: Reader<'a>, parts: &mut GraphParts<'a>) -> Result<(), OnnxError> {
    for field in msg {
        let field = field?;
        match field.number {
            5 => {
                if let Some(name) = tensor_name(field.message("GraphProto.initializer")?)? {
                    parts.initializers.push(name);
                }
            }
            11 => parts.inputs.push(read_value_info(field.message("GraphProto.input")?)?),
            12 => parts.outputs.push(read_value_info(field.message("GraphProto.output")?)?),
            15 => {
                // SparseTensorProto: its `values` tensor carries the name.
                for f in field.message("GraphProto.sparse_initializer")? {
                    let f = f?;
                    if f.number == 1
                        && let Some(name) = tensor_name(f.message("SparseTensorProto.values")?)?
                    {
                        parts.initializers.push(name);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The `name` of a `TensorProto`, skipping its data.
fn tensor_name(msg: Reader<'_>) -> Result<Option<&str>, OnnxError> {
    let mut name = None;
    for field in msg {
        let field = field?;
        if field.number == 8 {
            name = Some(field.string("TensorProto.name")?);
        }
    }
    Ok(name)
}

fn read_value_info(msg: Reader<'_>) -> Result<Value<'_>, OnnxError> {
    let mut value = Value { name: "", ty: Type::Other(ValueKind::Untyped) };
    for field in msg {
        let field = field?;
        match field.number {
            1 => value.name = field.string("ValueInfoProto.name")?,
            2 => read_type(field.message("ValueInfoProto.type")?, &mut value.ty)?,
            _ => {}
        }
    }
    Ok(value)
}

/// Reads a `TypeProto` into `ty`. A message given twice merges, as protobuf
/// specifies: the last `value` case wins and tensor dims accumulate.
fn read_type<'a>(msg: Reader<'a>, ty: &mut Type<'a>) -> Result<(), OnnxError> {
    for field in msg {
        let field = field?;
        let kind = match field.number {
            1 => {
                let tensor = field.message("TypeProto.tensor_type")?;
                if !matches!(ty, Type::Tensor { .. }) {
                    *ty = Type::Tensor { elem: 0, shape: None };
                }
                if let Type::Tensor { elem, shape } = ty {
                    read_tensor_type(tensor, elem, shape)?;
                }
                continue;
            }
            4 => ValueKind::Sequence,
            5 => ValueKind::Map,
            7 => ValueKind::Opaque,
            8 => ValueKind::SparseTensor,
            9 => ValueKind::Optional,
            _ => continue,
        };
        field.message("TypeProto.value")?;
        *ty = Type::Other(kind);
    }
    Ok(())
}

fn read_tensor_type<'a>(msg: Reader<'a>, elem: &mut i32, shape: &mut Option<Vec<RawDim<'a>>>) -> Result<(), OnnxError> {
    for field in msg {
        let field = field?;
        match field.number {
            // int32 fields travel as 64-bit varints; protobuf keeps the low
            // 32 bits.
            1 => *elem = field.varint("TypeProto.Tensor.elem_type")? as i32,
            2 => {
                let dims = shape.get_or_insert_with(Vec::new);
                for dim in field.message("TypeProto.Tensor.shape")? {
                    let dim = dim?;
                    if dim.number == 1 {
                        dims.push(read_dim(dim.message("TensorShapeProto.dim")?)?);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn read_dim(msg: Reader<'_>) -> Result<RawDim<'_>, OnnxError> {
    let mut dim = RawDim::Unknown;
    for field in msg {
        let field = field?;
        match field.number {
            // Some exporters write -1 for an unknown size.
            1 => {
                let v = field.varint("Dimension.dim_value")? as i64;
                dim = u64::try_from(v).map_or(RawDim::Unknown, RawDim::Fixed);
            }
            2 => {
                let name = field.string("Dimension.dim_param")?;
                dim = if name.is_empty() { RawDim::Unknown } else { RawDim::Symbolic(name) };
            }
            _ => {}
        }
    }
    Ok(dim)
}

/// The protobuf wire format: fields read one at a time off a byte slice.
mod wire {
    use super::OnnxError;

    /// A field's payload.
    #[derive(Debug, Clone, Copy)]
    pub(super) enum Payload<'a> {
        Varint(u64),
        Fixed64,
        Bytes(&'a [u8]),
        Fixed32,
    }

    /// One field of a message.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct Field<'a> {
        pub(super) number: u32,
        payload: Payload<'a>,
        /// Absolute offset of the tag in the whole file.
        offset: usize,
        /// Absolute offset of a length-delimited payload's first byte.
        data_offset: usize,
    }

    /// The fields of one message, in order. After an error it yields nothing
    /// more.
    #[derive(Debug, Clone)]
    pub(super) struct Reader<'a> {
        buf: &'a [u8],
        pos: usize,
        /// Absolute offset of `buf` in the whole file, for error messages.
        base: usize,
    }

    impl<'a> Reader<'a> {
        pub(super) fn new(buf: &'a [u8], base: usize) -> Self {
            Self { buf, pos: 0, base }
        }

        fn varint(&mut self, start: usize) -> Result<u64, OnnxError> {
            let mut value = 0u64;
            for i in 0..10 {
                let Some(&byte) = self.buf.get(self.pos) else {
                    return Err(OnnxError::Truncated { offset: self.base + start, what: "a varint" });
                };
                self.pos += 1;
                value |= u64::from(byte & 0x7f) << (7 * i);
                if byte < 0x80 {
                    return Ok(value);
                }
            }
            Err(malformed(self.base + start, "a varint longer than 10 bytes"))
        }

        fn take(&mut self, len: u64, start: usize, what: &'static str) -> Result<&'a [u8], OnnxError> {
            let left = self.buf.len() - self.pos;
            match usize::try_from(len) {
                Ok(len) if len <= left => {
                    let bytes = &self.buf[self.pos..self.pos + len];
                    self.pos += len;
                    Ok(bytes)
                }
                _ => Err(OnnxError::Truncated { offset: self.base + start, what }),
            }
        }

        fn field(&mut self) -> Result<Field<'a>, OnnxError> {
            let start = self.pos;
            let offset = self.base + start;
            let tag = self.varint(start)?;
            let number = match u32::try_from(tag >> 3) {
                Ok(n) if (1..1 << 29).contains(&n) => n,
                _ => {
                    return Err(malformed(offset, format!("field number {} is out of range", tag >> 3)));
                }
            };
            let mut data_offset = offset;
            let payload = match tag & 7 {
                0 => Payload::Varint(self.varint(start)?),
                1 => {
                    self.take(8, start, "a 64-bit field")?;
                    Payload::Fixed64
                }
                2 => {
                    let len = self.varint(start)?;
                    data_offset = self.base + self.pos;
                    Payload::Bytes(self.take(len, start, "a length-delimited field")?)
                }
                5 => {
                    self.take(4, start, "a 32-bit field")?;
                    Payload::Fixed32
                }
                3 | 4 => return Err(malformed(offset, "a protobuf group, which ONNX never uses")),
                w => return Err(malformed(offset, format!("invalid wire type {w}"))),
            };
            Ok(Field { number, payload, offset, data_offset })
        }
    }

    impl<'a> Iterator for Reader<'a> {
        type Item = Result<Field<'a>, OnnxError>;

        fn next(&mut self) -> Option<Self::Item> {
            if self.pos >= self.buf.len() {
                return None;
            }
            let field = self.field();
            if field.is_err() {
                self.pos = self.buf.len();
            }
            Some(field)
        }
    }

    impl<'a> Field<'a> {
        /// A varint field's value.
        pub(super) fn varint(&self, what: &str) -> Result<u64, OnnxError> {
            match self.payload {
                Payload::Varint(v) => Ok(v),
                _ => Err(self.wrong_type(what, "a varint")),
            }
        }

        /// An embedded message's fields.
        pub(super) fn message(&self, what: &str) -> Result<Reader<'a>, OnnxError> {
            match self.payload {
                Payload::Bytes(b) => Ok(Reader::new(b, self.data_offset)),
                _ => Err(self.wrong_type(what, "a message")),
            }
        }

        /// A string field's text.
        pub(super) fn string(&self, what: &str) -> Result<&'a str, OnnxError> {
            match self.payload {
                Payload::Bytes(b) => {
                    std::str::from_utf8(b).map_err(|_| malformed(self.offset, format!("{what} is not UTF-8")))
                }
                _ => Err(self.wrong_type(what, "a string")),
            }
        }

        fn wrong_type(&self, what: &str, expected: &str) -> OnnxError {
            malformed(self.offset, format!("{what} should be {expected}"))
        }
    }

    fn malformed(offset: usize, reason: impl Into<String>) -> OnnxError {
        OnnxError::Malformed { offset, reason: reason.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protobuf encoding helpers for hand-built messages.
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn tag(number: u32, wire: u8, out: &mut Vec<u8>) {
        varint(u64::from(number) << 3 | u64::from(wire), out);
    }

    fn int(number: u32, v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        tag(number, 0, &mut out);
        varint(v, &mut out);
        out
    }

    fn bytes(number: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        tag(number, 2, &mut out);
        varint(payload.len() as u64, &mut out);
        out.extend_from_slice(payload);
        out
    }

    fn tensor_value(name: &str, elem: u64, dims: &[Vec<u8>]) -> Vec<u8> {
        let shape: Vec<u8> = dims.iter().flat_map(|d| bytes(1, d)).collect();
        let tensor = [int(1, elem), bytes(2, &shape)].concat();
        [bytes(1, name.as_bytes()), bytes(2, &bytes(1, &tensor))].concat()
    }

    fn model(graph: &[u8]) -> Vec<u8> {
        let opset = [bytes(1, b""), int(2, 17)].concat();
        [int(1, 8), bytes(7, graph), bytes(8, &opset)].concat()
    }

    #[test]
    fn onnx_unknown_fields_of_every_wire_type_are_skipped() {
        let mut unknown = Vec::new();
        unknown.extend(int(90, u64::MAX));
        tag(91, 1, &mut unknown);
        unknown.extend_from_slice(&[0xff; 8]);
        unknown.extend(bytes(92, &[0x18, 0xff, 0xff]));
        tag(93, 5, &mut unknown);
        unknown.extend_from_slice(&[0xee; 4]);

        let dim = [int(1, 4), unknown.clone()].concat();
        let input = [tensor_value("x", 1, &[dim]), unknown.clone()].concat();
        let graph = [unknown.clone(), bytes(11, &input), unknown.clone()].concat();
        let bytes = [unknown.clone(), model(&graph), unknown].concat();
        let sig = read_signature(&bytes).expect("valid model");
        assert_eq!(sig.inputs.len(), 1);
        assert_eq!(sig.inputs[0].name, "x");
        assert_eq!(sig.inputs[0].elem, GraphElem::Known(ElementType::Float32));
        assert_eq!(sig.inputs[0].shape, Some(vec![Dim::Fixed(4)]));
        assert_eq!(sig.default_opset(), Some(17));
    }

    #[test]
    fn onnx_groups_are_malformed() {
        let graph = bytes(11, &tensor_value("x", 1, &[]));
        for wire in [3, 4] {
            let mut inner = graph.clone();
            tag(50, wire, &mut inner);
            let err = read_signature(&model(&inner)).unwrap_err();
            assert!(matches!(err, OnnxError::Malformed { ref reason, .. } if reason.contains("group")), "{err}");
        }
    }

    #[test]
    fn onnx_errors_carry_absolute_offsets() {
        let graph = [bytes(11, &tensor_value("x", 1, &[])), vec![0x5f]].concat(); // field 11, wire type 7
        let bytes = model(&graph);
        let at = bytes.iter().position(|&b| b == 0x5f).expect("marker");
        assert_eq!(
            read_signature(&bytes),
            Err(OnnxError::Malformed { offset: at, reason: "invalid wire type 7".into() })
        );
    }

    #[test]
    fn onnx_length_prefix_past_the_end_is_truncated_not_allocated() {
        let mut bytes = int(1, 8);
        tag(7, 2, &mut bytes);
        varint(u64::MAX >> 1, &mut bytes);
        bytes.extend_from_slice(b"tiny");
        assert_eq!(read_signature(&bytes), Err(OnnxError::Truncated { offset: 2, what: "a length-delimited field" }));
    }

    #[test]
    fn onnx_overlong_varint_is_malformed() {
        let bytes = [int(1, 8), vec![0x08], vec![0xff; 11]].concat();
        assert!(matches!(read_signature(&bytes), Err(OnnxError::Malformed { offset: 2, .. })));
        // Before any ModelProto field, the same bytes are simply not ONNX.
        assert_eq!(read_signature(&bytes[2..]), Err(OnnxError::NoGraph));
    }

    #[test]
    fn onnx_wrong_wire_type_for_a_known_field_is_malformed() {
        let bytes = [int(1, 8), int(7, 1)].concat();
        let err = read_signature(&bytes).unwrap_err();
        assert_eq!(err, OnnxError::Malformed { offset: 2, reason: "ModelProto.graph should be a message".into() });
    }

    #[test]
    fn onnx_missing_or_absurd_ir_version() {
        let graph = bytes(11, &tensor_value("x", 1, &[]));
        assert_eq!(read_signature(&bytes(7, &graph)), Err(OnnxError::BadIrVersion(None)));
        let bytes = [int(1, 5000), bytes(7, &graph)].concat();
        assert_eq!(read_signature(&bytes), Err(OnnxError::BadIrVersion(Some(5000))));
    }

    #[test]
    fn onnx_dims_symbolic_unknown_and_negative() {
        let dims = [bytes(2, b"batch"), int(1, -1i64 as u64), Vec::new(), bytes(2, b""), int(1, 0)];
        let graph = bytes(11, &tensor_value("x", 7, &dims));
        let sig = read_signature(&model(&graph)).expect("valid model");
        assert_eq!(
            sig.inputs[0].shape,
            Some(vec![
                Dim::Symbolic(Some("batch".into())),
                Dim::Symbolic(None),
                Dim::Symbolic(None),
                Dim::Symbolic(None),
                Dim::Fixed(0)
            ])
        );
        assert_eq!(sig.inputs[0].elem, GraphElem::Known(ElementType::Int64));
    }

    #[test]
    fn onnx_tensor_without_shape_has_unknown_rank() {
        let value = [bytes(1, b"x"), bytes(2, &bytes(1, &int(1, 1)))].concat();
        let sig = read_signature(&model(&bytes(11, &value))).expect("valid model");
        assert_eq!(sig.inputs[0].shape, None);
        // An empty shape message is a scalar, not an unknown rank.
        let sig = read_signature(&model(&bytes(11, &tensor_value("x", 1, &[])))).expect("valid model");
        assert_eq!(sig.inputs[0].shape, Some(vec![]));
    }

    #[test]
    fn onnx_non_tensor_inputs_are_errors_and_outputs_are_set_aside() {
        let seq = [bytes(1, b"seq"), bytes(2, &bytes(4, &[]))].concat();
        let map = [bytes(1, b"probs"), bytes(2, &bytes(5, &[]))].concat();
        let untyped = bytes(1, b"bare");
        assert_eq!(
            read_signature(&model(&bytes(11, &seq))),
            Err(OnnxError::NonTensorInput { name: "seq".into(), kind: ValueKind::Sequence })
        );
        assert_eq!(
            read_signature(&model(&bytes(11, &untyped))).unwrap_err().to_string(),
            "graph input `bare` is untyped, not a tensor"
        );
        let graph = [bytes(12, &tensor_value("label", 7, &[])), bytes(12, &map)].concat();
        let sig = read_signature(&model(&graph)).expect("valid model");
        assert_eq!(sig.outputs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["label"]);
        assert_eq!(sig.non_tensor_outputs, [NonTensor { name: "probs".into(), kind: ValueKind::Map }]);
    }

    #[test]
    fn onnx_sparse_initializers_hide_inputs() {
        let values = bytes(8, b"w");
        let graph = [
            bytes(11, &tensor_value("x", 1, &[])),
            bytes(11, &tensor_value("w", 1, &[])),
            bytes(15, &bytes(1, &values)),
        ]
        .concat();
        let sig = read_signature(&model(&graph)).expect("valid model");
        assert_eq!(sig.inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["x"]);
    }

    #[test]
    fn onnx_names_must_be_utf8() {
        let value = [bytes(1, &[0xff, 0xfe]), bytes(2, &bytes(1, &int(1, 1)))].concat();
        let err = read_signature(&model(&bytes(11, &value))).unwrap_err();
        assert!(matches!(err, OnnxError::Malformed { ref reason, .. } if reason.contains("UTF-8")), "{err}");
    }

    #[test]
    fn onnx_elem_type_display() {
        assert_eq!(GraphElem::from(1).to_string(), "float32");
        assert_eq!(GraphElem::from(11).to_string(), "float64");
        assert_eq!(GraphElem::from(7).to_string(), "int64");
        assert_eq!(GraphElem::from(8), GraphElem::Known(ElementType::String));
        assert_eq!(GraphElem::from(14).to_string(), "complex64");
        assert_eq!(GraphElem::from(0).to_string(), "an undefined element type");
        assert_eq!(GraphElem::from(99).to_string(), "ONNX element type 99");
    }

    #[test]
    fn onnx_default_opset_accepts_both_spellings() {
        let sig = |domain: &str| OnnxSignature {
            ir_version: 8,
            opsets: vec![
                Opset { domain: "ai.onnx.ml".into(), version: 3 },
                Opset { domain: domain.into(), version: 13 },
            ],
            inputs: vec![],
            outputs: vec![],
            non_tensor_outputs: vec![],
        };
        assert_eq!(sig("").default_opset(), Some(13));
        assert_eq!(sig("ai.onnx").default_opset(), Some(13));
        assert_eq!(sig("com.microsoft").default_opset(), None);
    }
}
