//! The EIP-712 typed data `eth_signTypedData_v4` signs, read from the
//! client's JSON within bounds.
//!
//! alloy's resolver turns each array dimension and each struct level into one
//! more level of a nested type, which it then walks recursively: a field of
//! type `uint256` followed by 30,000 `[]` (60 KB) overflows a thread's stack,
//! and a stack overflow aborts the whole process. So the types are checked
//! here, on the JSON, before alloy reads any of them: at most
//! [`MAX_TYPE_NESTING`] arrays (and tuples) in one type, [`MAX_TYPES`] types,
//! [`MAX_FIELDS`] fields in all, and struct references at most
//! [`MAX_STRUCT_DEPTH`] deep, cycles refused. The check itself never recurses
//! deeper than [`MAX_STRUCT_DEPTH`] and visits each type once.

use std::collections::BTreeMap;

use alloy_dyn_abi::TypedData;
use jsonrpsee::types::ErrorObjectOwned;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::params::invalid;

/// The most array dimensions and tuple parentheses one type may have
/// (`uint256[][]` has two).
pub(super) const MAX_TYPE_NESTING: usize = 32;

/// The most struct types one typed data may define.
pub(super) const MAX_TYPES: usize = 1_024;

/// The most fields all its struct types may have together.
pub(super) const MAX_FIELDS: usize = 1_024;

/// The deepest chain of struct references (a struct with elementary fields
/// only is 1 deep; one with a field of that struct, 2).
pub(super) const MAX_STRUCT_DEPTH: usize = 32;

/// The longest piece of a client's type name an error message quotes.
const QUOTED: usize = 64;

/// Why typed data was refused before alloy read it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum TypedDataError {
    /// Not a JSON object (nor a string holding one).
    #[error("typed data must be a JSON object")]
    NotAnObject,
    /// `types` or `primaryType` is missing or of the wrong shape.
    #[error("{0}")]
    Shape(String),
    /// A type nests too many arrays or tuples.
    #[error("type {0} nests more than {MAX_TYPE_NESTING} arrays or tuples")]
    TooNested(String),
    /// Too many struct types.
    #[error("more than {MAX_TYPES} types")]
    TooManyTypes,
    /// Too many fields.
    #[error("more than {MAX_FIELDS} fields in all")]
    TooManyFields,
    /// A chain of struct references too deep.
    #[error("type {0} nests structs more than {MAX_STRUCT_DEPTH} deep")]
    TooDeep(String),
    /// A struct that refers to itself, directly or through others.
    #[error("type {0} refers to itself")]
    Cycle(String),
}

/// Reads argument `i` of `eth_signTypedData_v4` (an object, or a string
/// holding one) as typed data, refusing it (`-32602`) past the bounds.
pub(super) fn read(i: usize, value: &Value) -> Result<TypedData, ErrorObjectOwned> {
    let bad = |e: &dyn std::fmt::Display| invalid(format!("invalid argument {i}: {e}"));
    let parsed;
    let value = match value {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).map_err(|e| bad(&e))?;
            &parsed
        }
        other => other,
    };
    check(value).map_err(|e| bad(&e))?;
    TypedData::deserialize(value).map_err(|e| bad(&e))
}

/// The part of typed data the bounds are about, read as alloy reads it
/// (a field as `{"type", "name"}` or `[type, name]`).
#[derive(Deserialize)]
struct Types {
    types: BTreeMap<String, Vec<Field>>,
    #[serde(rename = "primaryType")]
    primary_type: String,
}

#[derive(Deserialize)]
struct Field {
    #[serde(rename = "type")]
    type_name: String,
    /// Read (and dropped) so that a field is read in the same shapes as alloy reads it.
    #[serde(rename = "name")]
    _name: IgnoredAny,
}

/// Checks typed data's types against the bounds.
fn check(value: &Value) -> Result<(), TypedDataError> {
    // alloy also reads a string as typed data: here only an object goes on,
    // so that nothing reaches alloy unchecked.
    if !value.is_object() {
        return Err(TypedDataError::NotAnObject);
    }
    let Types { types, primary_type } = Types::deserialize(value).map_err(|e| TypedDataError::Shape(e.to_string()))?;
    if types.len() > MAX_TYPES {
        return Err(TypedDataError::TooManyTypes);
    }
    if types.values().map(Vec::len).sum::<usize>() > MAX_FIELDS {
        return Err(TypedDataError::TooManyFields);
    }
    let names = types.keys().map(String::as_str);
    for name in names.chain([primary_type.as_str()]).chain(types.values().flatten().map(|f| f.type_name.as_str())) {
        if name.chars().filter(|c| matches!(c, '[' | '(')).count() > MAX_TYPE_NESTING {
            return Err(TypedDataError::TooNested(quoted(name)));
        }
    }
    // Only what alloy resolves: the primary type and the domain's, and the
    // structs they reach (an unused type may refer to itself, as alloy allows).
    let mut depths = Depths { types: &types, known: BTreeMap::new() };
    for root in [primary_type.as_str(), "EIP712Domain"] {
        if let Some((name, _)) = types.get_key_value(root) {
            depths.depth(name, 1)?;
        }
    }
    Ok(())
}

/// A type's struct-reference depth, computed once per type.
struct Depths<'a> {
    types: &'a BTreeMap<String, Vec<Field>>,
    /// `None` while the type's fields are being visited: meeting it again
    /// then is a cycle.
    known: BTreeMap<&'a str, Option<usize>>,
}

impl<'a> Depths<'a> {
    /// The depth of struct `name`, reached at depth `level`.
    fn depth(&mut self, name: &'a str, level: usize) -> Result<usize, TypedDataError> {
        match self.known.get(name) {
            Some(Some(depth)) if level + depth - 1 <= MAX_STRUCT_DEPTH => return Ok(*depth),
            Some(Some(_)) => return Err(TypedDataError::TooDeep(quoted(name))),
            Some(None) => return Err(TypedDataError::Cycle(quoted(name))),
            None if level > MAX_STRUCT_DEPTH => return Err(TypedDataError::TooDeep(quoted(name))),
            None => {}
        }
        self.known.insert(name, None);
        let mut deepest = 0;
        let types = self.types;
        for field in &types[name] {
            // A field's struct is its type with the array dimensions cut off.
            let root = field.type_name.split('[').next().unwrap_or_default();
            if let Some((child, _)) = types.get_key_value(root) {
                deepest = deepest.max(self.depth(child, level + 1)?);
            }
        }
        self.known.insert(name, Some(deepest + 1));
        Ok(deepest + 1)
    }
}

/// At most [`QUOTED`] characters of `name`, quoted.
fn quoted(name: &str) -> String {
    match name.char_indices().nth(QUOTED) {
        Some((end, _)) => format!("{:?}…", &name[..end]),
        None => format!("{name:?}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn domain() -> Value {
        json!({ "name": "nml", "version": "1", "chainId": 31337 })
    }

    fn typed(types: Value, primary: &str, message: Value) -> Value {
        json!({ "types": types, "primaryType": primary, "domain": domain(), "message": message })
    }

    /// A chain of `depth` structs `T0 → T1 → …`, each field `nesting` arrays
    /// deep, the last holding a `uint256` as deeply nested.
    fn chain(depth: usize, nesting: usize) -> Value {
        let dims = "[]".repeat(nesting);
        let mut types = serde_json::Map::new();
        types.insert("EIP712Domain".into(), json!([{ "name": "name", "type": "string" }]));
        for i in 0..depth {
            let child = if i + 1 == depth { "uint256".to_owned() } else { format!("T{}", i + 1) };
            types.insert(format!("T{i}"), json!([{ "name": "f", "type": format!("{child}{dims}") }]));
        }
        typed(Value::Object(types), "T0", json!({ "f": [] }))
    }

    fn refused(value: &Value) -> TypedDataError {
        check(value).expect_err("refused")
    }

    #[test]
    fn thirty_thousand_array_dimensions_are_refused() {
        let huge = chain(1, 30_000);
        assert!(matches!(refused(&huge), TypedDataError::TooNested(_)));
        let message = read(1, &huge).expect_err("refused").message().to_owned();
        assert!(message.starts_with("invalid argument 1: type \"uint256[][]"), "{message}");
        assert!(message.len() < 200, "the error quotes only the start of the type: {message}");
        // The same, as a string of JSON, and as a string of a string.
        assert!(read(1, &Value::String(huge.to_string())).is_err());
        assert_eq!(refused(&Value::String(huge.to_string())), TypedDataError::NotAnObject);
        let tuples = chain(1, 0);
        let mut tuples = tuples.clone();
        tuples["types"]["T0"][0]["type"] = json!(format!("{}uint256{}", "(".repeat(33), ")".repeat(33)));
        assert!(matches!(refused(&tuples), TypedDataError::TooNested(_)));
        let mut primary = chain(1, 0);
        primary["primaryType"] = json!(format!("T0{}", "[]".repeat(33)));
        assert!(matches!(refused(&primary), TypedDataError::TooNested(_)));
    }

    #[test]
    fn types_at_every_bound_are_signed_on_a_small_stack() {
        // The deepest allowed nesting, walked by alloy on a thread with the
        // stack of a tokio worker (2 MiB): it must not overflow.
        let deepest = chain(MAX_STRUCT_DEPTH, MAX_TYPE_NESTING);
        let data = read(1, &deepest).expect("within the bounds");
        let hash = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || data.eip712_signing_hash().map_err(|e| e.to_string()))
            .expect("thread")
            .join()
            .expect("no overflow");
        assert!(hash.is_ok(), "{hash:?}");
    }

    #[test]
    fn struct_depth_counts_and_cycles_are_bounded() {
        assert!(matches!(refused(&chain(MAX_STRUCT_DEPTH + 1, 0)), TypedDataError::TooDeep(_)));
        let self_referential = typed(
            json!({ "EIP712Domain": [], "Node": [{ "name": "next", "type": "Node[]" }] }),
            "Node",
            json!({ "next": [] }),
        );
        assert_eq!(refused(&self_referential), TypedDataError::Cycle("\"Node\"".into()));
        let mutual = typed(
            json!({ "EIP712Domain": [], "A": [{ "name": "b", "type": "B" }], "B": [{ "name": "a", "type": "A[2]" }] }),
            "A",
            json!({}),
        );
        assert!(matches!(refused(&mutual), TypedDataError::Cycle(_)));
        // A type nobody reaches from the primary type or the domain is never
        // resolved (alloy signs such data): its cycle is no matter.
        let unused = typed(
            json!({ "EIP712Domain": [], "Mail": [{ "name": "v", "type": "uint256" }], "Node": [{ "name": "kids", "type": "Node[]" }] }),
            "Mail",
            json!({ "v": 1 }),
        );
        assert_eq!(check(&unused), Ok(()));
        // A diamond is no cycle: each type is visited once.
        let diamond = typed(
            json!({
                "EIP712Domain": [],
                "Top": [{ "name": "l", "type": "L" }, { "name": "r", "type": "R" }],
                "L": [{ "name": "x", "type": "X" }],
                "R": [{ "name": "x", "type": "X" }],
                "X": [{ "name": "v", "type": "uint256" }],
            }),
            "Top",
            json!({ "l": { "x": { "v": 1 } }, "r": { "x": { "v": 2 } } }),
        );
        assert_eq!(check(&diamond), Ok(()));
        let many: serde_json::Map<String, Value> = (0..=MAX_TYPES).map(|i| (format!("T{i}"), json!([]))).collect();
        assert_eq!(refused(&typed(Value::Object(many), "T0", json!({}))), TypedDataError::TooManyTypes);
        let fields: Vec<Value> =
            (0..=MAX_FIELDS).map(|i| json!({ "name": format!("f{i}"), "type": "uint8" })).collect();
        assert_eq!(
            refused(&typed(json!({ "EIP712Domain": [], "T": fields }), "T", json!({}))),
            TypedDataError::TooManyFields
        );
    }

    #[test]
    fn a_type_reached_deep_is_measured_from_where_it_is_reached() {
        // `A0` is visited first (1 deep), then reached again from the end of
        // a chain of 32 (33 deep in all): its remembered depth must count
        // from where it is reached.
        let mut types = serde_json::Map::new();
        types.insert("EIP712Domain".into(), json!([]));
        types.insert("A0".into(), json!([{ "name": "f", "type": "uint256" }]));
        for i in 1..MAX_STRUCT_DEPTH {
            types.insert(format!("B{i:02}"), json!([{ "name": "f", "type": format!("B{:02}", i + 1) }]));
        }
        types.insert(format!("B{MAX_STRUCT_DEPTH:02}"), json!([{ "name": "f", "type": "A0" }]));
        assert!(matches!(refused(&typed(Value::Object(types), "B01", json!({}))), TypedDataError::TooDeep(_)));
    }
}
