//! The Open Inference Protocol (KServe v2) REST messages as JSON, and their
//! mapping onto nml's typed tensors and signatures.

use half::{bf16, f16};
use nml_protocol::{Dim, ElementType};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::inference::tensor::{ModelSignature, Tensor, TensorData, TensorSpec};

/// A tensor of `GET /v2/models/{name}`'s `inputs` or `outputs`.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct MetadataTensor {
    name: String,
    datatype: String,
    /// `-1` for a dynamic dimension.
    shape: Vec<i64>,
}

/// `GET /v2/models/{name}[/versions/{v}]`.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Metadata {
    #[serde(default)]
    inputs: Vec<MetadataTensor>,
    #[serde(default)]
    outputs: Vec<MetadataTensor>,
}

impl Metadata {
    /// The signature it reports, or the first tensor whose datatype nml
    /// cannot carry.
    pub(super) fn signature(&self) -> Result<ModelSignature, String> {
        let spec = |t: &MetadataTensor| {
            let element =
                element_type(&t.datatype).ok_or_else(|| format!("tensor `{}` has datatype {}", t.name, t.datatype))?;
            let shape = t.shape.iter().map(|&d| u64::try_from(d).map_or(Dim::Symbolic(None), Dim::Fixed)).collect();
            Ok(TensorSpec { name: t.name.clone(), element, shape })
        };
        Ok(ModelSignature {
            inputs: self.inputs.iter().map(spec).collect::<Result<_, String>>()?,
            outputs: self.outputs.iter().map(spec).collect::<Result<_, String>>()?,
        })
    }
}

/// One tensor of an infer request or response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct WireTensor {
    pub(super) name: String,
    pub(super) shape: Vec<u64>,
    pub(super) datatype: String,
    pub(super) data: Vec<Value>,
}

/// `POST …/infer`'s body.
#[derive(Debug, Serialize)]
pub(super) struct InferRequest {
    pub(super) inputs: Vec<WireTensor>,
}

/// `POST …/infer`'s answer.
#[derive(Debug, Deserialize)]
pub(super) struct InferResponse {
    #[serde(default)]
    pub(super) outputs: Vec<WireTensor>,
}

/// The protocol's name of an element type.
pub(super) fn datatype(element: ElementType) -> &'static str {
    match element {
        ElementType::Bool => "BOOL",
        ElementType::Uint8 => "UINT8",
        ElementType::Uint16 => "UINT16",
        ElementType::Uint32 => "UINT32",
        ElementType::Uint64 => "UINT64",
        ElementType::Int8 => "INT8",
        ElementType::Int16 => "INT16",
        ElementType::Int32 => "INT32",
        ElementType::Int64 => "INT64",
        ElementType::Float16 => "FP16",
        ElementType::BFloat16 => "BF16",
        ElementType::Float32 => "FP32",
        ElementType::Float64 => "FP64",
        ElementType::String => "BYTES",
    }
}

/// The element type of a protocol datatype.
pub(super) fn element_type(datatype: &str) -> Option<ElementType> {
    Some(match datatype {
        "BOOL" => ElementType::Bool,
        "UINT8" => ElementType::Uint8,
        "UINT16" => ElementType::Uint16,
        "UINT32" => ElementType::Uint32,
        "UINT64" => ElementType::Uint64,
        "INT8" => ElementType::Int8,
        "INT16" => ElementType::Int16,
        "INT32" => ElementType::Int32,
        "INT64" => ElementType::Int64,
        "FP16" => ElementType::Float16,
        "BF16" => ElementType::BFloat16,
        "FP32" => ElementType::Float32,
        "FP64" => ElementType::Float64,
        "BYTES" => ElementType::String,
        _ => return None,
    })
}

/// A typed tensor on the wire: flat, row-major data as JSON values.
pub(super) fn to_wire(tensor: &Tensor) -> WireTensor {
    fn values<T: Serialize>(v: &[T]) -> Vec<Value> {
        v.iter().map(|x| serde_json::to_value(x).unwrap_or(Value::Null)).collect()
    }
    let data = match &tensor.data {
        TensorData::Float16(v) => v.iter().map(|x| Value::from(f64::from(x.to_f32()))).collect(),
        TensorData::BFloat16(v) => v.iter().map(|x| Value::from(f64::from(x.to_f32()))).collect(),
        TensorData::Float32(v) => v.iter().map(|&x| Value::from(f64::from(x))).collect(),
        TensorData::Float64(v) => values(v),
        TensorData::Int8(v) => values(v),
        TensorData::Int16(v) => values(v),
        TensorData::Int32(v) => values(v),
        TensorData::Int64(v) => values(v),
        TensorData::Uint8(v) => values(v),
        TensorData::Uint16(v) => values(v),
        TensorData::Uint32(v) => values(v),
        TensorData::Uint64(v) => values(v),
        TensorData::Bool(v) => values(v),
        TensorData::String(v) => values(v),
    };
    WireTensor {
        name: tensor.name.clone(),
        shape: tensor.shape.iter().map(|&d| d as u64).collect(),
        datatype: datatype(tensor.data.element_type()).to_owned(),
        data,
    }
}

/// A tensor of a response as a typed tensor, or what is wrong with it.
pub(super) fn from_wire(wire: &WireTensor) -> Result<Tensor, String> {
    let element = element_type(&wire.datatype).ok_or_else(|| format!("unknown datatype {}", wire.datatype))?;
    // Some servers nest the data by shape; the protocol's form is flat.
    let mut flat = Vec::with_capacity(wire.data.len());
    flatten(&wire.data, &mut flat);
    let count: u64 = wire.shape.iter().product();
    if count != flat.len() as u64 {
        return Err(format!("shape {:?} holds {count} elements, the data has {}", wire.shape, flat.len()));
    }
    let number = |v: &Value| v.as_f64().ok_or_else(|| format!("`{v}` is not a number"));
    let int = |v: &Value| v.as_i64().ok_or_else(|| format!("`{v}` is not an integer"));
    let uint = |v: &Value| v.as_u64().ok_or_else(|| format!("`{v}` is not an unsigned integer"));
    macro_rules! each {
        ($f:expr) => {
            flat.iter().map($f).collect::<Result<Vec<_>, String>>()?
        };
    }
    let narrow = |v: &Value, what: &str| -> Result<i64, String> { int(v).map_err(|e| format!("{e} ({what})")) };
    let data = match element {
        ElementType::Float16 => TensorData::Float16(each!(|v| number(v).map(f16::from_f64))),
        ElementType::BFloat16 => TensorData::BFloat16(each!(|v| number(v).map(bf16::from_f64))),
        ElementType::Float32 => TensorData::Float32(each!(|v| number(v).map(|x| x as f32))),
        ElementType::Float64 => TensorData::Float64(each!(number)),
        ElementType::Int8 => {
            TensorData::Int8(each!(|v| narrow(v, "INT8").and_then(|x| i8::try_from(x).map_err(|e| e.to_string()))))
        }
        ElementType::Int16 => {
            TensorData::Int16(each!(|v| narrow(v, "INT16").and_then(|x| i16::try_from(x).map_err(|e| e.to_string()))))
        }
        ElementType::Int32 => {
            TensorData::Int32(each!(|v| narrow(v, "INT32").and_then(|x| i32::try_from(x).map_err(|e| e.to_string()))))
        }
        ElementType::Int64 => TensorData::Int64(each!(int)),
        ElementType::Uint8 => {
            TensorData::Uint8(each!(|v| uint(v).and_then(|x| u8::try_from(x).map_err(|e| e.to_string()))))
        }
        ElementType::Uint16 => {
            TensorData::Uint16(each!(|v| uint(v).and_then(|x| u16::try_from(x).map_err(|e| e.to_string()))))
        }
        ElementType::Uint32 => {
            TensorData::Uint32(each!(|v| uint(v).and_then(|x| u32::try_from(x).map_err(|e| e.to_string()))))
        }
        ElementType::Uint64 => TensorData::Uint64(each!(uint)),
        ElementType::Bool => TensorData::Bool(each!(|v| v.as_bool().ok_or_else(|| format!("`{v}` is not a boolean")))),
        ElementType::String => {
            TensorData::String(each!(|v| v.as_str().map(str::to_owned).ok_or_else(|| format!("`{v}` is not a string"))))
        }
    };
    let shape = wire.shape.iter().map(|&d| usize::try_from(d).map_err(|e| e.to_string())).collect::<Result<_, _>>()?;
    Ok(Tensor { name: wire.name.clone(), shape, data })
}

fn flatten(values: &[Value], into: &mut Vec<Value>) {
    for v in values {
        match v {
            Value::Array(inner) => flatten(inner, into),
            other => into.push(other.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_round_trip_through_the_wire() {
        let tensors = [
            Tensor { name: "x".into(), shape: vec![1, 2], data: TensorData::Float32(vec![1.5, -2.0]) },
            Tensor { name: "n".into(), shape: vec![3], data: TensorData::Int64(vec![1, -2, 3]) },
            Tensor { name: "s".into(), shape: vec![1], data: TensorData::String(vec!["hi".into()]) },
            Tensor { name: "b".into(), shape: vec![2], data: TensorData::Bool(vec![true, false]) },
        ];
        for tensor in tensors {
            let wire = to_wire(&tensor);
            assert_eq!(from_wire(&wire).unwrap(), tensor);
        }
    }

    #[test]
    fn nested_data_is_flattened_and_a_wrong_count_is_named() {
        let wire: WireTensor = serde_json::from_value(serde_json::json!({
            "name": "y", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]
        }))
        .unwrap();
        assert_eq!(from_wire(&wire).unwrap().data, TensorData::Float32(vec![1.0, 2.0, 3.0, 4.0]));
        let short = WireTensor { shape: vec![3], ..wire.clone() };
        assert!(from_wire(&short).unwrap_err().contains("holds 3 elements, the data has 4"));
        let text = WireTensor { datatype: "INT64".into(), data: vec![Value::from("x")], shape: vec![1], ..wire };
        assert!(from_wire(&text).unwrap_err().contains("is not an integer"));
    }

    #[test]
    fn metadata_becomes_a_signature() {
        let metadata: Metadata = serde_json::from_value(serde_json::json!({
            "name": "mlp", "platform": "onnx",
            "inputs": [{ "name": "x", "datatype": "FP32", "shape": [-1, 4] }],
            "outputs": [{ "name": "y", "datatype": "FP32", "shape": [1, 3] }]
        }))
        .unwrap();
        let signature = metadata.signature().unwrap();
        assert_eq!(signature.inputs[0].to_string(), "x: float32[?, 4]".replace('?', &Dim::Symbolic(None).to_string()));
        assert_eq!(signature.outputs[0].shape, vec![Dim::Fixed(1), Dim::Fixed(3)]);
    }
}
