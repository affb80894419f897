//! TensorLib's typed tensors ⇄ ONNX Runtime values, and ONNX Runtime's
//! element types as the [`ElementType`]s a signature lists.

use nml_protocol::ElementType;
use ort::value::{DynValue, TensorElementType};

use crate::inference::tensor::{Tensor, TensorData};

pub(super) fn to_value(data: TensorData, shape: &[usize]) -> ort::Result<DynValue> {
    use ort::value::Tensor as OrtTensor;
    let shape: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Ok(match data {
        TensorData::Float16(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::BFloat16(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Float32(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Float64(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Int8(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Int16(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Int32(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Int64(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Uint8(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Uint16(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Uint32(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Uint64(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Bool(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::String(v) => OrtTensor::from_string_array((shape, v.as_slice()))?.into_dyn(),
    })
}

pub(super) fn from_value(name: &str, value: &DynValue) -> ort::Result<Tensor> {
    let ty = value.dtype().tensor_type().ok_or_else(|| ort::Error::new(format!("output `{name}` is not a tensor")))?;
    macro_rules! extract {
        ($variant:ident, $ty:ty) => {{
            let (shape, data) = value.try_extract_tensor::<$ty>()?;
            (shape.iter().map(|&d| d as usize).collect(), TensorData::$variant(data.to_vec()))
        }};
    }
    let (shape, data) = match ty {
        TensorElementType::Float16 => extract!(Float16, half::f16),
        TensorElementType::Bfloat16 => extract!(BFloat16, half::bf16),
        TensorElementType::Float32 => extract!(Float32, f32),
        TensorElementType::Float64 => extract!(Float64, f64),
        TensorElementType::Int8 => extract!(Int8, i8),
        TensorElementType::Int16 => extract!(Int16, i16),
        TensorElementType::Int32 => extract!(Int32, i32),
        TensorElementType::Int64 => extract!(Int64, i64),
        TensorElementType::Uint8 => extract!(Uint8, u8),
        TensorElementType::Uint16 => extract!(Uint16, u16),
        TensorElementType::Uint32 => extract!(Uint32, u32),
        TensorElementType::Uint64 => extract!(Uint64, u64),
        TensorElementType::Bool => extract!(Bool, bool),
        TensorElementType::String => {
            let (shape, data) = value.try_extract_strings()?;
            (shape.iter().map(|&d| d as usize).collect(), TensorData::String(data))
        }
        other => {
            return Err(ort::Error::new(format!("output `{name}` has type {other}, which TensorLib cannot carry")));
        }
    };
    Ok(Tensor { name: name.to_owned(), shape, data })
}

pub(super) fn element_type(ty: TensorElementType) -> Option<ElementType> {
    Some(match ty {
        TensorElementType::Float16 => ElementType::Float16,
        TensorElementType::Bfloat16 => ElementType::BFloat16,
        TensorElementType::Float32 => ElementType::Float32,
        TensorElementType::Float64 => ElementType::Float64,
        TensorElementType::Int8 => ElementType::Int8,
        TensorElementType::Int16 => ElementType::Int16,
        TensorElementType::Int32 => ElementType::Int32,
        TensorElementType::Int64 => ElementType::Int64,
        TensorElementType::Uint8 => ElementType::Uint8,
        TensorElementType::Uint16 => ElementType::Uint16,
        TensorElementType::Uint32 => ElementType::Uint32,
        TensorElementType::Uint64 => ElementType::Uint64,
        TensorElementType::Bool => ElementType::Bool,
        TensorElementType::String => ElementType::String,
        _ => return None,
    })
}
