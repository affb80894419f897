//! The types of ONNX graph tensors: the element types TensorLib carries (with
//! their ONNX `TensorProto.DataType` codes) and the dimensions of a shape.

use std::fmt::{self, Write as _};

/// The element types a TensorLib tensor converts to and from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElementType {
    /// IEEE half precision.
    Float16,
    /// bfloat16.
    BFloat16,
    /// IEEE single precision.
    Float32,
    /// IEEE double precision.
    Float64,
    /// Signed 8-bit integer.
    Int8,
    /// Signed 16-bit integer.
    Int16,
    /// Signed 32-bit integer.
    Int32,
    /// Signed 64-bit integer.
    Int64,
    /// Unsigned 8-bit integer.
    Uint8,
    /// Unsigned 16-bit integer.
    Uint16,
    /// Unsigned 32-bit integer.
    Uint32,
    /// Unsigned 64-bit integer.
    Uint64,
    /// Boolean.
    Bool,
    /// UTF-8 string.
    String,
}

impl ElementType {
    /// Every element type, in ONNX `DataType` code order.
    pub const ALL: [Self; 14] = [
        Self::Float32,
        Self::Uint8,
        Self::Int8,
        Self::Uint16,
        Self::Int16,
        Self::Int32,
        Self::Int64,
        Self::String,
        Self::Bool,
        Self::Float16,
        Self::Float64,
        Self::Uint32,
        Self::Uint64,
        Self::BFloat16,
    ];

    /// The element type of an ONNX `TensorProto.DataType` code; `None` for a
    /// type TensorLib cannot carry (undefined, complex, float8, int4, …).
    pub fn from_onnx_code(code: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|ty| ty.onnx_code() == code)
    }

    /// The ONNX `TensorProto.DataType` code.
    pub fn onnx_code(self) -> i32 {
        match self {
            Self::Float32 => 1,
            Self::Uint8 => 2,
            Self::Int8 => 3,
            Self::Uint16 => 4,
            Self::Int16 => 5,
            Self::Int32 => 6,
            Self::Int64 => 7,
            Self::String => 8,
            Self::Bool => 9,
            Self::Float16 => 10,
            Self::Float64 => 11,
            Self::Uint32 => 12,
            Self::Uint64 => 13,
            Self::BFloat16 => 16,
        }
    }

    /// The name used in messages and in `nml models list`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Float16 => "float16",
            Self::BFloat16 => "bfloat16",
            Self::Float32 => "float32",
            Self::Float64 => "float64",
            Self::Int8 => "int8",
            Self::Int16 => "int16",
            Self::Int32 => "int32",
            Self::Int64 => "int64",
            Self::Uint8 => "uint8",
            Self::Uint16 => "uint16",
            Self::Uint32 => "uint32",
            Self::Uint64 => "uint64",
            Self::Bool => "bool",
            Self::String => "string",
        }
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One dimension of a graph input or output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Dim {
    /// A fixed size.
    Fixed(u64),
    /// Any size; the graph may name it (`N`, `batch`).
    Symbolic(Option<String>),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(n) => write!(f, "{n}"),
            Self::Symbolic(Some(name)) => f.write_str(name),
            Self::Symbolic(None) => f.write_str("?"),
        }
    }
}

/// Displays a shape as `[N, 4]`: its dimensions (or sizes) in brackets,
/// separated by commas.
#[derive(Debug, Clone, Copy)]
pub struct ShapeDisplay<'a, T>(pub &'a [T]);

impl<T: fmt::Display> fmt::Display for ShapeDisplay<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('[')?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_char(']')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onnx_codes_map_both_ways() {
        assert_eq!(ElementType::from_onnx_code(1), Some(ElementType::Float32));
        assert_eq!(ElementType::from_onnx_code(11), Some(ElementType::Float64));
        assert_eq!(ElementType::from_onnx_code(7), Some(ElementType::Int64));
        assert_eq!(ElementType::from_onnx_code(8), Some(ElementType::String));
        assert_eq!(ElementType::from_onnx_code(16), Some(ElementType::BFloat16));
        // Undefined, complex64/128, float8 and int4 types, and codes ONNX has not assigned.
        for code in [0, 14, 15, 17, 21, 22, 23, 99, -1] {
            assert_eq!(ElementType::from_onnx_code(code), None, "{code}");
        }
        let mut known = 0;
        for code in 0..32 {
            if let Some(ty) = ElementType::from_onnx_code(code) {
                assert_eq!(ty.onnx_code(), code, "{ty}");
                known += 1;
            }
        }
        assert_eq!(known, ElementType::ALL.len());
        for ty in ElementType::ALL {
            assert_eq!(ElementType::from_onnx_code(ty.onnx_code()), Some(ty));
        }
    }

    #[test]
    fn element_types_are_named_alike_in_messages_and_json() {
        for ty in ElementType::ALL {
            assert_eq!(serde_json::to_string(&ty).unwrap(), format!("\"{}\"", ty.name()));
            assert_eq!(ty.to_string(), ty.name());
        }
        assert_eq!(ElementType::Float32.to_string(), "float32");
        assert_eq!(ElementType::BFloat16.to_string(), "bfloat16");
        assert_eq!(ElementType::Uint64.to_string(), "uint64");
    }

    #[test]
    fn shapes_display_and_serialize() {
        let shape = [Dim::Symbolic(Some("N".into())), Dim::Fixed(4), Dim::Symbolic(None)];
        assert_eq!(ShapeDisplay(&shape).to_string(), "[N, 4, ?]");
        assert_eq!(ShapeDisplay::<u32>(&[]).to_string(), "[]");
        assert_eq!(serde_json::to_string(&shape).unwrap(), r#"["N",4,null]"#);
    }
}
