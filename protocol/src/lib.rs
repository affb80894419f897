//! The vocabulary the nml compiler and the nml runtime both speak, written
//! once: a compiled contract calls a model by the same id, and describes its
//! tensors with the same element types, as the node that serves it.
//!
//! - [`model_id`]: model ids in the forms the model hub accepts (IPFS CIDv0,
//!   CIDv1, Walrus blob ids), and the ids derived from a model's bytes;
//! - [`unixfs`]: how `ipfs add` derives a file's id, for files of any size;
//! - [`tensor`]: the element types of ONNX tensors that TensorLib carries,
//!   with their ONNX `DataType` codes, and the dimensions of a graph tensor;
//! - [`bytecode`]: an artifact's bytecode with its library placeholders.
//!
//! This crate sits below both: it depends on neither, and holds no logic of
//! either (no parsing of `.nml`, no running of models).

pub mod bytecode;
pub mod model_id;
pub mod tensor;
pub mod unixfs;
pub mod unixfs_read;

pub use model_id::{InvalidModelId, ModelId, ModelIdForm};
pub use tensor::{Dim, ElementType, ShapeDisplay};
