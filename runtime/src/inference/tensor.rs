//! TensorLib tensors ↔ the typed tensors of an ONNX graph.
//!
//! # Inputs
//!
//! Request tensors are matched to the graph's inputs by name: every graph
//! input must be given exactly once, and a name the graph does not have is an
//! error. Numeric and boolean inputs come from `numbers`, string inputs from
//! `strings`. A number tensor's shape must have the graph's rank and agree
//! with every fixed dimension (a symbolic dimension such as `N` accepts any
//! size), and its values must fill the shape exactly. A string tensor carries
//! no shape: it takes the graph's, where at most one symbolic dimension is
//! inferred from the number of values.
//!
//! A number `(value, decimals)` is `value * 10^-decimals`, converted to the
//! graph's element type:
//! - float32 and float64: the nearest representable value (correctly rounded,
//!   ties to even, as Rust's and C's decimal parsers do); float16 and bfloat16
//!   round through float64. A value beyond the type's range is an error.
//! - integers: the number must be an integer (`(150, 2)` is 1.5 and is refused;
//!   `(100, 2)` is 1) within the type's range.
//! - bool: the number must be 0 or 1.
//!
//! # Outputs
//!
//! Outputs are returned in graph output order, each with its name and shape:
//! numeric ones in `numbers`, string ones in `strings`.
//! - floats become fixed point with [`FLOAT_DECIMALS`] = 18 decimals: the
//!   exact binary value times 10^18, rounded half away from zero (float32
//!   0.1 is 0.100000001490116119…, so `(100000001490116119, 18)`). NaN and
//!   infinities are errors, and so is a magnitude of 1.7e20 or more, which
//!   does not fit an int128 at 18 decimals.
//! - integers keep their value with 0 decimals; booleans are 0 or 1 with 0
//!   decimals.
//!
//! Every error names the model and the tensor (and the element, for values).

use std::fmt::{self, Write as _};

use half::{bf16, f16};
use nml_protocol::{Dim, ElementType, ModelId, ShapeDisplay};

use super::abi::{ModelInput, ModelOutput, MultiDimensionalNumberTensor, Number, StringTensor};
use super::error::InferenceError;

/// The decimals of every float output.
pub const FLOAT_DECIMALS: i128 = 18;

/// A graph input or output: name, element type and shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TensorSpec {
    /// The tensor's name in the graph.
    pub name: String,
    /// Its element type.
    pub element: ElementType,
    /// Its dimensions; empty for a scalar.
    pub shape: Vec<Dim>,
}

impl TensorSpec {
    /// The type and shape, e.g. `float32[N, 4]`.
    pub fn type_and_shape(&self) -> String {
        format!("{}{}", self.element, ShapeDisplay(&self.shape))
    }
}

impl fmt::Display for TensorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}{}", self.name, self.element, ShapeDisplay(&self.shape))
    }
}

/// A model's inputs and outputs, in graph order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ModelSignature {
    /// The graph's inputs (initializers excluded).
    pub inputs: Vec<TensorSpec>,
    /// The graph's outputs.
    pub outputs: Vec<TensorSpec>,
}

/// A typed tensor, as an executor feeds it to a model or reads it back.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The graph input or output it belongs to.
    pub name: String,
    /// Its dimensions (row-major); empty for a scalar.
    pub shape: Vec<usize>,
    /// Its elements.
    pub data: TensorData,
}

/// The elements of a [`Tensor`], flat and row-major.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // One variant per element type, named after it.
pub enum TensorData {
    Float16(Vec<f16>),
    BFloat16(Vec<bf16>),
    Float32(Vec<f32>),
    Float64(Vec<f64>),
    Int8(Vec<i8>),
    Int16(Vec<i16>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Uint8(Vec<u8>),
    Uint16(Vec<u16>),
    Uint32(Vec<u32>),
    Uint64(Vec<u64>),
    Bool(Vec<bool>),
    String(Vec<String>),
}

impl TensorData {
    /// The element type.
    pub fn element_type(&self) -> ElementType {
        match self {
            Self::Float16(_) => ElementType::Float16,
            Self::BFloat16(_) => ElementType::BFloat16,
            Self::Float32(_) => ElementType::Float32,
            Self::Float64(_) => ElementType::Float64,
            Self::Int8(_) => ElementType::Int8,
            Self::Int16(_) => ElementType::Int16,
            Self::Int32(_) => ElementType::Int32,
            Self::Int64(_) => ElementType::Int64,
            Self::Uint8(_) => ElementType::Uint8,
            Self::Uint16(_) => ElementType::Uint16,
            Self::Uint32(_) => ElementType::Uint32,
            Self::Uint64(_) => ElementType::Uint64,
            Self::Bool(_) => ElementType::Bool,
            Self::String(_) => ElementType::String,
        }
    }
}

/// Why a number does not convert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// An integer or bool element given a fraction.
    #[error("{value} is not an integer, so it cannot be {ty}")]
    NotAnInteger {
        /// The number, in decimal.
        value: String,
        /// The target type.
        ty: ElementType,
    },
    /// Beyond the target type's range.
    #[error("{value} is out of range for {ty}")]
    OutOfRange {
        /// The number, in decimal.
        value: String,
        /// The target type.
        ty: ElementType,
    },
    /// A bool element given something other than 0 or 1.
    #[error("{value} is not a bool (0 or 1)")]
    NotABool {
        /// The number, in decimal.
        value: String,
    },
    /// A float output that is NaN or infinite.
    #[error("{value} has no TensorLib number")]
    NotFinite {
        /// `NaN`, `inf` or `-inf`.
        value: String,
    },
    /// A float output too large for an int128 at 18 decimals.
    #[error("{value} is too large for a TensorLib number with 18 decimals (the limit is about 1.7e20)")]
    TooLarge {
        /// The value.
        value: String,
    },
}

/// `value * 10^-decimals` as the nearest float64 (correctly rounded).
pub fn number_to_f64(n: &Number) -> Result<f64, NumberError> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
        1e20, 1e21, 1e22,
    ];
    let (v, d) = (n.value, n.decimals);
    // Both operands exact, so the one IEEE division rounds correctly.
    if v.unsigned_abs() <= 1 << 53 && (0..=22).contains(&d) {
        return Ok(v as f64 / POW10[d as usize]);
    }
    let x: f64 = parse_decimal(n);
    if x.is_finite() { Ok(x) } else { Err(NumberError::OutOfRange { value: decimal(n), ty: ElementType::Float64 }) }
}

/// `value * 10^-decimals` as the nearest float32 (correctly rounded, without
/// going through float64).
pub fn number_to_f32(n: &Number) -> Result<f32, NumberError> {
    /// The powers of ten a float32 holds exactly (5^10 < 2^24).
    const POW10: [f32; 11] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];
    let (v, d) = (n.value, n.decimals);
    // Both operands exact, so the one IEEE division rounds correctly.
    if v.unsigned_abs() <= 1 << 24 && (0..=10).contains(&d) {
        return Ok(v as f32 / POW10[d as usize]);
    }
    let x: f32 = parse_decimal(n);
    if x.is_finite() { Ok(x) } else { Err(NumberError::OutOfRange { value: decimal(n), ty: ElementType::Float32 }) }
}

/// The number as an integer, if it is one.
pub fn number_to_integer(n: &Number, ty: ElementType) -> Result<i128, NumberError> {
    let (v, d) = (n.value, n.decimals);
    if v == 0 {
        return Ok(0);
    }
    let not_integer = || NumberError::NotAnInteger { value: decimal(n), ty };
    let out_of_range = || NumberError::OutOfRange { value: decimal(n), ty };
    if d >= 0 {
        // 10^38 is the largest power of ten in an i128; a nonzero value below
        // 10^39 divided by more is a fraction.
        let scale = u32::try_from(d).ok().and_then(|d| 10i128.checked_pow(d)).ok_or_else(not_integer)?;
        if v % scale == 0 { Ok(v / scale) } else { Err(not_integer()) }
    } else {
        let scale = d.checked_neg().and_then(|e| u32::try_from(e).ok()).and_then(|e| 10i128.checked_pow(e));
        scale.and_then(|s| v.checked_mul(s)).ok_or_else(out_of_range)
    }
}

/// The number as a bool: 0 is false, 1 is true, anything else is an error.
pub fn number_to_bool(n: &Number) -> Result<bool, NumberError> {
    match number_to_integer(n, ElementType::Bool) {
        Ok(0) => Ok(false),
        Ok(1) => Ok(true),
        _ => Err(NumberError::NotABool { value: decimal(n) }),
    }
}

/// A float as a number with 18 decimals: the exact binary value times 10^18,
/// rounded half away from zero.
pub fn float_to_number(x: f64) -> Result<Number, NumberError> {
    if !x.is_finite() {
        return Err(NumberError::NotFinite { value: format!("{x}") });
    }
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = u128::from(bits & ((1 << 52) - 1));
    // |x| = mantissa * 2^exponent exactly.
    let (mantissa, exponent) = if biased == 0 { (fraction, -1074) } else { (fraction | (1 << 52), biased - 1075) };
    // mantissa < 2^53 and 10^18 < 2^60: the product fits a u128 exactly.
    let scaled = mantissa * 10u128.pow(FLOAT_DECIMALS as u32);
    let magnitude = if exponent >= 0 {
        // Must fit 127 bits after the shift.
        if scaled != 0 && scaled.leading_zeros() <= exponent as u32 {
            return Err(NumberError::TooLarge { value: format!("{x:e}") });
        }
        scaled << exponent
    } else {
        let shift = exponent.unsigned_abs();
        if shift >= 128 {
            0 // below 2^113 / 2^128 < 1/2
        } else {
            let quotient = scaled >> shift;
            let remainder = scaled & ((1u128 << shift) - 1);
            // A tie rounds the magnitude up: away from zero.
            if remainder >= 1u128 << (shift - 1) { quotient + 1 } else { quotient }
        }
    };
    let magnitude = i128::try_from(magnitude).map_err(|_| NumberError::TooLarge { value: format!("{x:e}") })?;
    let value = if x.is_sign_negative() { -magnitude } else { magnitude };
    Ok(Number { value, decimals: FLOAT_DECIMALS })
}

/// An integer as a number with 0 decimals.
pub fn integer_to_number(value: i128) -> Number {
    Number { value, decimals: 0 }
}

/// The number in plain decimal notation (`1.5`, `-0.001`, `15e40`), for messages.
pub fn decimal(n: &Number) -> String {
    let (v, d) = (n.value, n.decimals);
    if d == 0 || v == 0 {
        return v.to_string();
    }
    if !(0..=60).contains(&d) {
        return format!("{v}e{}", -(d as f64));
    }
    let digits = v.unsigned_abs().to_string();
    let d = d as usize;
    let sign = if v < 0 { "-" } else { "" };
    let (int, frac) = if digits.len() > d {
        let (i, f) = digits.split_at(digits.len() - d);
        (i.to_owned(), f.to_owned())
    } else {
        ("0".to_owned(), format!("{}{digits}", "0".repeat(d - digits.len())))
    };
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() { format!("{sign}{int}") } else { format!("{sign}{int}.{frac}") }
}

/// Parses `value e -decimals` with the standard library's correctly rounded
/// parser. Exponents beyond ±100000 are settled first: they under- or
/// overflow every float type, and the text would be absurdly long.
fn parse_decimal<F: std::str::FromStr + Default>(n: &Number) -> F {
    let (v, d) = (n.value, n.decimals);
    let text = if d > 100_000 {
        format!("{}0", if v < 0 { "-" } else { "" })
    } else if d < -100_000 {
        format!("{}inf", if v < 0 { "-" } else { "" })
    } else {
        let mut text = String::with_capacity(48);
        let _ = write!(text, "{v}e{}", -d);
        text
    };
    // The text is always a valid float literal.
    text.parse().unwrap_or_default()
}

/// Matches a request's tensors to the graph's inputs and converts them, in
/// graph input order.
pub fn decode_inputs(
    model: &ModelId,
    signature: &ModelSignature,
    input: &ModelInput,
) -> Result<Vec<Tensor>, InferenceError> {
    let model_name = || model.to_string();
    let given = input.numbers.iter().map(|t| t.name.as_str()).chain(input.strings.iter().map(|t| t.name.as_str()));
    for (i, name) in given.clone().enumerate() {
        if !signature.inputs.iter().any(|spec| spec.name == name) {
            let expected = signature.inputs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            return Err(InferenceError::UnknownInput { model: model_name(), tensor: name.to_owned(), expected });
        }
        if given.clone().take(i).any(|earlier| earlier == name) {
            return Err(InferenceError::DuplicateInput { model: model_name(), tensor: name.to_owned() });
        }
    }
    signature
        .inputs
        .iter()
        .map(|spec| {
            let numbers = input.numbers.iter().find(|t| t.name == spec.name);
            let strings = input.strings.iter().find(|t| t.name == spec.name);
            match (spec.element, numbers, strings) {
                (ElementType::String, _, Some(tensor)) => decode_strings(model, spec, tensor),
                (_, Some(tensor), _) if spec.element != ElementType::String => decode_numbers(model, spec, tensor),
                (_, None, None) => Err(InferenceError::MissingInput {
                    model: model_name(),
                    tensor: spec.name.clone(),
                    expected: spec.type_and_shape(),
                }),
                (element, _, _) => Err(InferenceError::WrongKind {
                    model: model_name(),
                    tensor: spec.name.clone(),
                    expected: format!("{} (in `{}`)", spec.type_and_shape(), kind_of(element)),
                    given: format!("a {} tensor", if element == ElementType::String { "number" } else { "string" }),
                }),
            }
        })
        .collect()
}

fn kind_of(element: ElementType) -> &'static str {
    if element == ElementType::String { "strings" } else { "numbers" }
}

fn decode_numbers(
    model: &ModelId,
    spec: &TensorSpec,
    tensor: &MultiDimensionalNumberTensor,
) -> Result<Tensor, InferenceError> {
    let shape: Vec<usize> = tensor.shape.iter().map(|&d| d as usize).collect();
    let fits = shape.len() == spec.shape.len()
        && shape.iter().zip(&spec.shape).all(|(&n, dim)| !matches!(dim, Dim::Fixed(f) if *f != n as u64));
    if !fits {
        return Err(InferenceError::WrongShape {
            model: model.to_string(),
            tensor: spec.name.clone(),
            expected: spec.type_and_shape(),
            given: ShapeDisplay(&tensor.shape).to_string(),
        });
    }
    let count = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if count != Some(tensor.values.len()) {
        return Err(InferenceError::WrongCount {
            model: model.to_string(),
            tensor: spec.name.clone(),
            shape: ShapeDisplay(&tensor.shape).to_string(),
            expected: count.map_or_else(|| "too many".to_owned(), |c| c.to_string()),
            given: tensor.values.len(),
        });
    }
    let values = &tensor.values;
    let bad = |index: usize, e: NumberError| InferenceError::BadValue {
        model: model.to_string(),
        tensor: spec.name.clone(),
        index,
        reason: e.to_string(),
    };
    fn convert<T>(
        values: &[Number],
        f: impl Fn(&Number) -> Result<T, NumberError>,
        bad: impl Fn(usize, NumberError) -> InferenceError,
    ) -> Result<Vec<T>, InferenceError> {
        values.iter().enumerate().map(|(i, n)| f(n).map_err(|e| bad(i, e))).collect()
    }
    macro_rules! integers {
        ($variant:ident, $ty:ty) => {
            TensorData::$variant(convert(
                values,
                |n| {
                    let ty = ElementType::$variant;
                    number_to_integer(n, ty)
                        .and_then(|i| <$ty>::try_from(i).map_err(|_| NumberError::OutOfRange { value: decimal(n), ty }))
                },
                bad,
            )?)
        };
    }
    fn narrow<T: Copy + Into<f64>>(n: &Number, ty: ElementType, from: fn(f64) -> T) -> Result<T, NumberError> {
        let x = number_to_f64(n).map(from).map_err(|_| NumberError::OutOfRange { value: decimal(n), ty })?;
        if x.into().is_finite() { Ok(x) } else { Err(NumberError::OutOfRange { value: decimal(n), ty }) }
    }
    let data = match spec.element {
        ElementType::Float32 => TensorData::Float32(convert(values, number_to_f32, bad)?),
        ElementType::Float64 => TensorData::Float64(convert(values, number_to_f64, bad)?),
        ElementType::Float16 => {
            TensorData::Float16(convert(values, |n| narrow(n, ElementType::Float16, f16::from_f64), bad)?)
        }
        ElementType::BFloat16 => {
            TensorData::BFloat16(convert(values, |n| narrow(n, ElementType::BFloat16, bf16::from_f64), bad)?)
        }
        ElementType::Int8 => integers!(Int8, i8),
        ElementType::Int16 => integers!(Int16, i16),
        ElementType::Int32 => integers!(Int32, i32),
        ElementType::Int64 => integers!(Int64, i64),
        ElementType::Uint8 => integers!(Uint8, u8),
        ElementType::Uint16 => integers!(Uint16, u16),
        ElementType::Uint32 => integers!(Uint32, u32),
        ElementType::Uint64 => integers!(Uint64, u64),
        ElementType::Bool => TensorData::Bool(convert(values, number_to_bool, bad)?),
        ElementType::String => unreachable!("string inputs are read from string tensors"),
    };
    Ok(Tensor { name: spec.name.clone(), shape, data })
}

fn decode_strings(model: &ModelId, spec: &TensorSpec, tensor: &StringTensor) -> Result<Tensor, InferenceError> {
    let count = tensor.values.len();
    let fixed: Option<usize> = spec
        .shape
        .iter()
        .filter_map(|d| match d {
            Dim::Fixed(n) => Some(usize::try_from(*n).ok()),
            Dim::Symbolic(_) => None,
        })
        .try_fold(1usize, |acc, n| n.and_then(|n| acc.checked_mul(n)));
    let free = spec.shape.iter().filter(|d| matches!(d, Dim::Symbolic(_))).count();
    let wrong_count = |expected: String| InferenceError::WrongCount {
        model: model.to_string(),
        tensor: spec.name.clone(),
        shape: ShapeDisplay(&spec.shape).to_string(),
        expected,
        given: count,
    };
    let inferred = match (free, fixed) {
        (0, Some(fixed)) if fixed == count => None,
        (0, Some(fixed)) => return Err(wrong_count(fixed.to_string())),
        (1, Some(fixed)) if fixed > 0 && count.is_multiple_of(fixed) => Some(count / fixed),
        (1, Some(0)) if count == 0 => Some(0),
        (1, Some(fixed)) => return Err(wrong_count(format!("a multiple of {fixed}"))),
        _ => {
            return Err(InferenceError::WrongShape {
                model: model.to_string(),
                tensor: spec.name.clone(),
                expected: format!("{} with at most one free dimension", spec.type_and_shape()),
                given: format!("{count} strings (string tensors carry no shape, so it is taken from the graph)"),
            });
        }
    };
    let shape = spec
        .shape
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => *n as usize,
            Dim::Symbolic(_) => inferred.unwrap_or_default(),
        })
        .collect();
    if let Some(index) = tensor.values.iter().position(|s| s.contains('\0')) {
        return Err(InferenceError::BadValue {
            model: model.to_string(),
            tensor: spec.name.clone(),
            index,
            reason: "the string contains a NUL character, which ONNX Runtime cannot take".to_owned(),
        });
    }
    Ok(Tensor { name: spec.name.clone(), shape, data: TensorData::String(tensor.values.clone()) })
}

/// Converts a model's outputs (in graph output order) to the precompile's
/// answer, with `is_simulation_result = false`.
pub fn encode_outputs(model: &ModelId, outputs: Vec<Tensor>) -> Result<ModelOutput, InferenceError> {
    let mut answer = ModelOutput::default();
    for tensor in outputs {
        let bad = |index: usize, reason: String| InferenceError::BadOutput {
            model: model.to_string(),
            tensor: tensor.name.clone(),
            index,
            reason,
        };
        let shape = tensor
            .shape
            .iter()
            .map(|&d| u32::try_from(d).map_err(|_| bad(0, format!("dimension {d} does not fit a uint32"))))
            .collect::<Result<Vec<u32>, _>>()?;
        fn floats<T: Copy>(
            values: &[T],
            widen: impl Fn(T) -> f64,
            bad: impl Fn(usize, String) -> InferenceError,
        ) -> Result<Vec<Number>, InferenceError> {
            values
                .iter()
                .enumerate()
                .map(|(i, &x)| float_to_number(widen(x)).map_err(|e| bad(i, e.to_string())))
                .collect()
        }
        fn integers<T: Copy + Into<i128>>(values: &[T]) -> Vec<Number> {
            values.iter().map(|&x| integer_to_number(x.into())).collect()
        }
        let values = match &tensor.data {
            TensorData::String(values) => {
                answer.strings.push(StringTensor { name: tensor.name.clone(), values: values.clone() });
                continue;
            }
            TensorData::Float16(v) => floats(v, f16::to_f64, bad)?,
            TensorData::BFloat16(v) => floats(v, bf16::to_f64, bad)?,
            TensorData::Float32(v) => floats(v, f64::from, bad)?,
            TensorData::Float64(v) => floats(v, |x| x, bad)?,
            TensorData::Int8(v) => integers(v),
            TensorData::Int16(v) => integers(v),
            TensorData::Int32(v) => integers(v),
            TensorData::Int64(v) => integers(v),
            TensorData::Uint8(v) => integers(v),
            TensorData::Uint16(v) => integers(v),
            TensorData::Uint32(v) => integers(v),
            TensorData::Uint64(v) => integers(v),
            TensorData::Bool(v) => v.iter().map(|&b| integer_to_number(i128::from(b))).collect(),
        };
        answer.numbers.push(MultiDimensionalNumberTensor { name: tensor.name, values, shape });
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float32_fast_path_rounds_as_the_decimal_parser() {
        // Every value the fast path takes, spread over its range, against
        // the correctly rounded parse of the same decimal.
        let mut v: i128 = 1;
        for i in 0..20_000i128 {
            v = (v * 6_364_136_223_846_793 + 1_442_695_040_888_963) % (1 << 25) - (1 << 24);
            for d in 0..=10 {
                let n = Number { value: v + i % 3, decimals: d };
                let parsed: f32 = format!("{}e{}", n.value, -d).parse().unwrap();
                assert_eq!(number_to_f32(&n).unwrap().to_bits(), parsed.to_bits(), "{n:?}");
            }
        }
    }

    fn n(value: i128, decimals: i128) -> Number {
        Number { value, decimals }
    }

    fn model() -> ModelId {
        ModelId::derive(b"test model")
    }

    #[test]
    fn numbers_to_floats_round_correctly() {
        assert_eq!(number_to_f32(&n(15, 1)), Ok(1.5));
        assert_eq!(number_to_f32(&n(1, 1)), Ok(0.1f32));
        assert_eq!(number_to_f64(&n(1, 1)), Ok(0.1f64));
        assert_eq!(number_to_f64(&n(-25, 2)), Ok(-0.25));
        assert_eq!(number_to_f64(&n(3, -2)), Ok(300.0));
        // 2^24 + 1 is a tie between two float32s: ties go to even.
        assert_eq!(number_to_f32(&n(16_777_217, 0)), Ok(16_777_216.0));
        // Rounding once from the decimal, not through float64: 1 + 2^-24 + 2^-60
        // is nearer to 1 + 2^-23 than to 1, but float64 would first round it
        // to the tie 1 + 2^-24 and then to even, 1.
        let just_above_tie = n(1_000_000_059_604_644_776_257_986_737_988_403_547, 36);
        assert_eq!(number_to_f32(&just_above_tie), Ok(1.0 + f32::EPSILON));
        assert_eq!(number_to_f64(&n(i128::MAX, 0)), Ok(i128::MAX as f64));
        assert_eq!(number_to_f64(&n(7, 400)), Ok(0.0));
        assert_eq!(number_to_f64(&n(7, i128::MAX)), Ok(0.0));
        assert_eq!(
            number_to_f32(&n(1, -39)),
            Err(NumberError::OutOfRange { value: "1e39".into(), ty: ElementType::Float32 })
        );
        assert_eq!(number_to_f64(&n(1, -39)), Ok(1e39));
        assert!(number_to_f64(&n(1, -400)).is_err());
        assert!(number_to_f64(&n(1, i128::MIN)).is_err());
    }

    #[test]
    fn numbers_to_integers_must_be_exact_and_in_range() {
        let ty = ElementType::Int64;
        assert_eq!(number_to_integer(&n(100, 2), ty), Ok(1));
        assert_eq!(number_to_integer(&n(-7, 0), ty), Ok(-7));
        assert_eq!(number_to_integer(&n(0, i128::MIN), ty), Ok(0));
        assert_eq!(number_to_integer(&n(1, -38), ty), Ok(10i128.pow(38)));
        assert_eq!(number_to_integer(&n(150, 2), ty), Err(NumberError::NotAnInteger { value: "1.5".into(), ty }));
        assert_eq!(
            number_to_integer(&n(5, 39), ty),
            Err(NumberError::NotAnInteger { value: "0.".to_owned() + &"0".repeat(38) + "5", ty })
        );
        assert!(matches!(number_to_integer(&n(2, -38), ty), Err(NumberError::OutOfRange { .. })));
        assert!(matches!(number_to_integer(&n(1, i128::MIN), ty), Err(NumberError::OutOfRange { .. })));
        assert_eq!(number_to_bool(&n(10, 1)), Ok(true));
        assert_eq!(number_to_bool(&n(0, 5)), Ok(false));
        assert_eq!(number_to_bool(&n(2, 0)), Err(NumberError::NotABool { value: "2".into() }));
        assert_eq!(number_to_bool(&n(5, 1)), Err(NumberError::NotABool { value: "0.5".into() }));
    }

    #[test]
    fn floats_to_numbers_have_18_decimals_rounded_half_away_from_zero() {
        let e18 = |value: i128| Ok(n(value, 18));
        assert_eq!(float_to_number(1.5), e18(1_500_000_000_000_000_000));
        assert_eq!(float_to_number(-0.0), e18(0));
        // The exact binary value, not the shortest decimal.
        assert_eq!(float_to_number(f64::from(0.1f32)), e18(100_000_001_490_116_119));
        assert_eq!(float_to_number(0.1), e18(100_000_000_000_000_006));
        // 2^-19 * 10^18 = 1907348632812.5 exactly: a tie.
        assert_eq!(float_to_number(2f64.powi(-19)), e18(1_907_348_632_813));
        assert_eq!(float_to_number(-(2f64.powi(-19))), e18(-1_907_348_632_813));
        assert_eq!(float_to_number(3.0 * 2f64.powi(-19)), e18(5_722_045_898_438));
        assert_eq!(float_to_number(2f64.powi(-60)), e18(1)); // 0.867...
        assert_eq!(float_to_number(2f64.powi(-61)), e18(0)); // 0.434...
        assert_eq!(float_to_number(f64::MIN_POSITIVE / 4.0), e18(0));
        assert_eq!(float_to_number(1.7e20).map(|x| x.value / 10i128.pow(18)), Ok(170_000_000_000_000_000_000));
        assert!(matches!(float_to_number(1.71e20), Err(NumberError::TooLarge { .. })));
        assert!(matches!(float_to_number(f64::from(f32::MAX)), Err(NumberError::TooLarge { .. })));
        assert_eq!(float_to_number(f64::NAN), Err(NumberError::NotFinite { value: "NaN".into() }));
        assert_eq!(float_to_number(f64::NEG_INFINITY), Err(NumberError::NotFinite { value: "-inf".into() }));
    }

    #[test]
    fn numbers_print_in_decimal() {
        assert_eq!(decimal(&n(15, 1)), "1.5");
        assert_eq!(decimal(&n(-1, 3)), "-0.001");
        assert_eq!(decimal(&n(100, 2)), "1");
        assert_eq!(decimal(&n(15, -1)), "15e1");
        assert_eq!(decimal(&n(i128::MIN, 0)), i128::MIN.to_string());
    }

    fn spec(name: &str, element: ElementType, shape: &[Option<u64>]) -> TensorSpec {
        let shape = shape.iter().map(|d| d.map_or_else(|| Dim::Symbolic(Some("N".into())), Dim::Fixed)).collect();
        TensorSpec { name: name.into(), element, shape }
    }

    fn numbers(name: &str, values: &[i128], shape: &[u32]) -> MultiDimensionalNumberTensor {
        MultiDimensionalNumberTensor {
            name: name.into(),
            values: values.iter().map(|&v| n(v, 0)).collect(),
            shape: shape.to_vec(),
        }
    }

    fn signature() -> ModelSignature {
        ModelSignature {
            inputs: vec![
                spec("x", ElementType::Float32, &[None, Some(2)]),
                spec("s", ElementType::String, &[Some(1), None]),
                spec("k", ElementType::Uint8, &[]),
            ],
            outputs: vec![],
        }
    }

    fn input(numbers_: Vec<MultiDimensionalNumberTensor>, strings: &[(&str, &[&str])]) -> ModelInput {
        ModelInput {
            numbers: numbers_,
            strings: strings
                .iter()
                .map(|(name, values)| StringTensor {
                    name: (*name).into(),
                    values: values.iter().map(|s| (*s).into()).collect(),
                })
                .collect(),
        }
    }

    fn decode(input: &ModelInput) -> Result<Vec<Tensor>, String> {
        decode_inputs(&model(), &signature(), input).map_err(|e| e.to_string())
    }

    #[test]
    fn inputs_are_matched_by_name_in_graph_order() {
        let good =
            input(vec![numbers("k", &[255], &[]), numbers("x", &[1, 2, 3, 4, 5, 6], &[3, 2])], &[("s", &["a", "b"])]);
        let tensors = decode(&good).unwrap();
        assert_eq!(
            tensors,
            vec![
                Tensor {
                    name: "x".into(),
                    shape: vec![3, 2],
                    data: TensorData::Float32(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
                },
                Tensor { name: "s".into(), shape: vec![1, 2], data: TensorData::String(vec!["a".into(), "b".into()]) },
                Tensor { name: "k".into(), shape: vec![], data: TensorData::Uint8(vec![255]) },
            ]
        );
    }

    #[test]
    fn every_mismatch_names_the_model_and_the_tensor() {
        let m = model();
        let x = || numbers("x", &[1, 2], &[1, 2]);
        let k = || numbers("k", &[1], &[]);
        let cases: Vec<(ModelInput, String)> = vec![
            (
                input(vec![x(), k(), numbers("y", &[1], &[1])], &[("s", &["a"])]),
                format!(
                    "model `{m}` has no input named `y` (its inputs: x: float32[N, 2], s: string[1, N], k: uint8[])"
                ),
            ),
            (input(vec![x(), k(), x()], &[("s", &["a"])]), format!("model `{m}`: input `x` is given more than once")),
            (input(vec![x(), k()], &[]), format!("model `{m}`: input `s` is missing (expected string[1, N])")),
            (
                input(vec![x(), k()], &[("s", &["a"]), ("k", &["1"])]),
                format!("model `{m}`: input `k` is given more than once"),
            ),
            (
                input(vec![x(), numbers("s", &[1], &[1, 1])], &[("k", &["1"])]),
                format!(
                    "model `{m}`: input `s` expects string[1, N] (in `strings`), but the request gives a number tensor"
                ),
            ),
            (
                input(vec![numbers("x", &[1, 2, 3], &[1, 3]), k()], &[("s", &["a"])]),
                format!("model `{m}`: input `x` has shape [1, 3], but the model expects float32[N, 2]"),
            ),
            (
                input(vec![numbers("x", &[1, 2], &[2]), k()], &[("s", &["a"])]),
                format!("model `{m}`: input `x` has shape [2], but the model expects float32[N, 2]"),
            ),
            (
                input(vec![numbers("x", &[1, 2, 3], &[2, 2]), k()], &[("s", &["a"])]),
                format!("model `{m}`: input `x` has shape [2, 2], which holds 4 values, but 3 are given"),
            ),
            (
                input(vec![x(), numbers("k", &[256], &[])], &[("s", &["a"])]),
                format!("model `{m}`: input `k` element 0: 256 is out of range for uint8"),
            ),
            (
                input(vec![x(), numbers("k", &[-1], &[])], &[("s", &["a"])]),
                format!("model `{m}`: input `k` element 0: -1 is out of range for uint8"),
            ),
            (
                input(vec![x(), k()], &[("s", &["a", "b\0"])]),
                format!(
                    "model `{m}`: input `s` element 1: the string contains a NUL character, which ONNX Runtime cannot take"
                ),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(decode(&input).unwrap_err(), expected);
        }
        let fraction = input(
            vec![x(), MultiDimensionalNumberTensor { name: "k".into(), values: vec![n(15, 1)], shape: vec![] }],
            &[("s", &["a"])],
        );
        assert_eq!(
            decode(&fraction).unwrap_err(),
            format!("model `{m}`: input `k` element 0: 1.5 is not an integer, so it cannot be uint8")
        );
    }

    #[test]
    fn string_shapes_come_from_the_graph() {
        let m = model();
        let one_free =
            ModelSignature { inputs: vec![spec("s", ElementType::String, &[None, Some(2)])], outputs: vec![] };
        let decode = |sig: &ModelSignature, values: &[&str]| decode_inputs(&m, sig, &input(vec![], &[("s", values)]));
        assert_eq!(decode(&one_free, &["a", "b", "c", "d"]).unwrap()[0].shape, vec![2, 2]);
        assert_eq!(
            decode(&one_free, &["a", "b", "c"]).unwrap_err().to_string(),
            format!("model `{m}`: input `s` has shape [N, 2], which holds a multiple of 2 values, but 3 are given")
        );
        let fixed = ModelSignature { inputs: vec![spec("s", ElementType::String, &[Some(1)])], outputs: vec![] };
        assert_eq!(
            decode(&fixed, &["a", "b"]).unwrap_err().to_string(),
            format!("model `{m}`: input `s` has shape [1], which holds 1 values, but 2 are given")
        );
        let two_free = ModelSignature { inputs: vec![spec("s", ElementType::String, &[None, None])], outputs: vec![] };
        assert!(decode(&two_free, &["a"]).unwrap_err().to_string().contains("at most one free dimension"));
    }

    #[test]
    fn outputs_keep_graph_order_names_and_shapes() {
        let m = model();
        let outputs = vec![
            Tensor { name: "p".into(), shape: vec![1, 2], data: TensorData::Float32(vec![0.25, -2.0]) },
            Tensor { name: "label".into(), shape: vec![1], data: TensorData::String(vec!["cat".into()]) },
            Tensor { name: "k".into(), shape: vec![2], data: TensorData::Uint64(vec![u64::MAX, 0]) },
            Tensor { name: "b".into(), shape: vec![], data: TensorData::Bool(vec![true]) },
        ];
        let answer = encode_outputs(&m, outputs).unwrap();
        assert!(!answer.is_simulation_result && answer.jsons.is_empty());
        assert_eq!(
            answer.numbers,
            vec![
                MultiDimensionalNumberTensor {
                    name: "p".into(),
                    values: vec![n(250_000_000_000_000_000, 18), n(-2_000_000_000_000_000_000, 18)],
                    shape: vec![1, 2]
                },
                MultiDimensionalNumberTensor {
                    name: "k".into(),
                    values: vec![n(u64::MAX.into(), 0), n(0, 0)],
                    shape: vec![2]
                },
                MultiDimensionalNumberTensor { name: "b".into(), values: vec![n(1, 0)], shape: vec![] },
            ]
        );
        assert_eq!(answer.strings, vec![StringTensor { name: "label".into(), values: vec!["cat".into()] }]);

        let nan = vec![Tensor { name: "y".into(), shape: vec![2], data: TensorData::Float64(vec![1.0, f64::NAN]) }];
        assert_eq!(
            encode_outputs(&m, nan).unwrap_err().to_string(),
            format!("model `{m}`: output `y` element 1: NaN has no TensorLib number")
        );
    }
}
