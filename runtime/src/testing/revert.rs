//! Revert data in words, for `nml test`'s reports: `Error(string)`,
//! `Panic(uint256)`, a custom error that a compiled contract's ABI or nml's
//! stdlib declares, decoded with its arguments, and anything else as the raw
//! data in hex. Revert data is never shown as text unless it is an
//! `Error(string)`: four bytes of a selector are not a message.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use alloy_dyn_abi::parser::Parameters;
use alloy_dyn_abi::{DynSolType, DynSolValue, Specifier};
use alloy_primitives::{Bytes, hex, keccak256};
use alloy_sol_types::{ContractError, GenericContractError, Panic, SolInterface};

/// The stdlib files that declare errors (the runtime errors of the
/// Solidity that nml generates for `model` declarations).
const STDLIB_ERRORS: &[&str] = &[include_str!("../../../stdlib/nml/Tensors.sol")];

/// The custom errors a revert may carry, by selector. [`Default`] knows
/// nml's stdlib errors; [`RevertDecoder::add_abi`] adds a contract's.
#[derive(Debug, Clone)]
pub struct RevertDecoder {
    errors: BTreeMap<[u8; 4], CustomError>,
}

#[derive(Debug, Clone)]
struct CustomError {
    name: String,
    params: Vec<DynSolType>,
}

/// What a revert's data says.
#[derive(Debug, Clone, PartialEq)]
pub enum RevertReason {
    /// No data (`revert()`, `require(cond)`).
    Empty,
    /// An `Error(string)`'s message.
    Message(String),
    /// A `Panic(uint256)`.
    Panic(Panic),
    /// A custom error the decoder knows, with its arguments.
    Custom {
        /// The error's name.
        name: String,
        /// Its arguments.
        args: Vec<DynSolValue>,
    },
    /// Data the decoder cannot name.
    Raw(Bytes),
}

/// The stdlib's errors, read once (every test's inspectors start from them).
static STDLIB: LazyLock<RevertDecoder> = LazyLock::new(|| {
    let mut decoder = RevertDecoder { errors: BTreeMap::new() };
    for source in STDLIB_ERRORS {
        for (name, params) in source.lines().filter_map(error_declaration) {
            decoder.insert(name, params);
        }
    }
    decoder
});

impl Default for RevertDecoder {
    fn default() -> Self {
        STDLIB.clone()
    }
}

impl RevertDecoder {
    /// Adds the custom errors of a contract's JSON ABI (an artifact's
    /// `abi`); items that are not errors, or whose types do not parse, are
    /// skipped.
    pub fn add_abi(&mut self, abi: &serde_json::Value) {
        for item in abi.as_array().map(Vec::as_slice).unwrap_or_default() {
            if item["type"] != "error" {
                continue;
            }
            let Some(name) = item["name"].as_str() else { continue };
            let inputs = item["inputs"].as_array().map(Vec::as_slice).unwrap_or_default();
            let params: Result<Vec<DynSolType>, _> = inputs.iter().map(|p| DynSolType::parse(&param_type(p))).collect();
            if let Ok(params) = params {
                self.insert(name.to_owned(), params);
            }
        }
    }

    /// What `data` says.
    pub fn decode(&self, data: &[u8]) -> RevertReason {
        if data.is_empty() {
            return RevertReason::Empty;
        }
        match GenericContractError::abi_decode(data) {
            Ok(ContractError::Revert(revert)) => return RevertReason::Message(revert.reason),
            Ok(ContractError::Panic(panic)) => return RevertReason::Panic(panic),
            Ok(ContractError::CustomError(never)) => match never {},
            Err(_) => {}
        }
        if let Some(selector) = data.get(..4).and_then(|s| <[u8; 4]>::try_from(s).ok())
            && let Some(error) = self.errors.get(&selector)
            && let Ok(DynSolValue::Tuple(args)) = DynSolType::Tuple(error.params.clone()).abi_decode_params(&data[4..])
        {
            return RevertReason::Custom { name: error.name.clone(), args };
        }
        RevertReason::Raw(Bytes::copy_from_slice(data))
    }

    fn insert(&mut self, name: String, params: Vec<DynSolType>) {
        let types: Vec<_> = params.iter().map(DynSolType::sol_type_name).collect();
        let signature = format!("{name}({})", types.join(","));
        let mut selector = [0; 4];
        selector.copy_from_slice(&keccak256(signature.as_bytes())[..4]);
        self.errors.insert(selector, CustomError { name, params });
    }
}

impl RevertReason {
    /// The data itself in words, without "reverted": an `Error(string)`'s
    /// message, a panic, a custom error, else the hex (`0x` for none).
    pub fn data(&self) -> String {
        match self {
            Self::Empty => "0x".to_owned(),
            Self::Raw(data) => format!("0x{}", hex::encode(data)),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for RevertReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("reverted without a reason"),
            Self::Message(message) => f.write_str(message),
            Self::Panic(panic) => write!(f, "{panic}"),
            Self::Custom { name, args } => {
                let args: Vec<String> = args.iter().map(format_value).collect();
                write!(f, "{name}({})", args.join(", "))
            }
            Self::Raw(data) => write!(f, "reverted with 0x{}", hex::encode(data)),
        }
    }
}

/// A Solidity `error Name(type name, …);` line: its name and parameter types.
fn error_declaration(line: &str) -> Option<(String, Vec<DynSolType>)> {
    let declaration = line.trim().strip_prefix("error ")?.trim_end().strip_suffix(';')?;
    let open = declaration.find('(')?;
    let params = Parameters::parse(&declaration[open..]).ok()?.resolve().ok()?;
    let DynSolType::Tuple(params) = params else { return None };
    Some((declaration[..open].trim().to_owned(), params))
}

/// A JSON ABI parameter's type, tuples spelt out (`(uint256,address)[]`).
fn param_type(param: &serde_json::Value) -> String {
    let ty = param["type"].as_str().unwrap_or_default();
    match ty.strip_prefix("tuple") {
        Some(suffix) => {
            let inner: Vec<String> =
                param["components"].as_array().map(Vec::as_slice).unwrap_or_default().iter().map(param_type).collect();
            format!("({}){suffix}", inner.join(","))
        }
        None => ty.to_owned(),
    }
}

fn format_value(value: &DynSolValue) -> String {
    match value {
        DynSolValue::Bool(b) => b.to_string(),
        DynSolValue::Int(i, _) => i.to_string(),
        DynSolValue::Uint(u, _) => u.to_string(),
        DynSolValue::Address(a) => a.to_string(),
        DynSolValue::String(s) => format!("{s:?}"),
        DynSolValue::FixedBytes(b, size) => format!("0x{}", hex::encode(&b[..*size])),
        DynSolValue::Bytes(b) => format!("0x{}", hex::encode(b)),
        DynSolValue::Array(v) | DynSolValue::FixedArray(v) => {
            format!("[{}]", v.iter().map(format_value).collect::<Vec<_>>().join(", "))
        }
        DynSolValue::Tuple(v) => format!("({})", v.iter().map(format_value).collect::<Vec<_>>().join(", ")),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{Address, I256, U256};
    use alloy_sol_types::{Revert, SolError, sol};

    use super::*;

    sol! {
        error NmlShapeMismatch(string model, string tensor, uint32[] expected, uint32[] actual);
        error NmlValueOutOfRange(string model, string tensor, uint256 index, int256 value);
    }

    fn custom(signature: &str, args: &[u8]) -> Vec<u8> {
        let mut data = keccak256(signature)[..4].to_vec();
        data.extend_from_slice(args);
        data
    }

    #[test]
    fn a_revert_reads_as_its_reason_its_panic_its_custom_error_or_its_bytes() {
        let mut decoder = RevertDecoder::default();
        decoder.add_abi(&serde_json::json!([
            {"type": "function", "name": "f", "inputs": []},
            {"type": "error", "name": "Unauthorized", "inputs": [{"name": "who", "type": "address"}]},
            {"type": "error", "name": "Bad", "inputs": [{"name": "p", "type": "tuple[]", "components": [{"type": "uint8"}, {"type": "bool"}]}]},
        ]));
        let says = |data: &[u8]| decoder.decode(data).to_string();
        assert_eq!(says(&Revert::from("no").abi_encode()), "no");
        let panic = Panic { code: U256::from(0x11) }.abi_encode();
        assert_eq!(says(&panic), "panic: arithmetic underflow or overflow (0x11)");
        assert_eq!(says(&custom("Unauthorized(address)", &[0; 32])), format!("Unauthorized({})", Address::ZERO));
        let pair = DynSolValue::Tuple(vec![DynSolValue::Uint(U256::from(7), 8), DynSolValue::Bool(true)]);
        let tuples = DynSolValue::Tuple(vec![DynSolValue::Array(vec![pair])]).abi_encode_params();
        assert_eq!(says(&custom("Bad((uint8,bool)[])", &tuples)), "Bad([(7, true)])");
        assert_eq!(says(&[0xff, 0xfe]), "reverted with 0xfffe");
        assert_eq!(says(&[]), "reverted without a reason");
        assert_eq!(decoder.decode(&[]).data(), "0x");
    }

    /// The selector of an error nobody declared is data, not text, though
    /// its bytes are valid UTF-8 (`ZeroAmount()` is `\x1f* \x05`).
    #[test]
    fn unknown_selectors_and_bare_bytes_are_hex_never_text() {
        let decoder = RevertDecoder::default();
        let zero_amount = custom("ZeroAmount()", &[]);
        assert_eq!(zero_amount, b"\x1f* \x05");
        assert_eq!(decoder.decode(&zero_amount), RevertReason::Raw(zero_amount.clone().into()));
        assert_eq!(decoder.decode(&zero_amount).to_string(), "reverted with 0x1f2a2005");
        assert_eq!(decoder.decode(&zero_amount).data(), "0x1f2a2005");
        assert_eq!(decoder.decode(b"bare").to_string(), "reverted with 0x62617265");
        // A known selector whose arguments do not decode is raw data too.
        let mut known = RevertDecoder::default();
        known.add_abi(&serde_json::json!([{"type": "error", "name": "ZeroAmount", "inputs": [{"type": "uint256"}]}]));
        let truncated = custom("ZeroAmount(uint256)", &[1]);
        assert_eq!(known.decode(&truncated), RevertReason::Raw(truncated.clone().into()));
        assert_eq!(known.decode(&custom("ZeroAmount(uint256)", &[0; 32])).to_string(), "ZeroAmount(0)");
    }

    #[test]
    fn nmls_stdlib_errors_are_known_without_an_abi() {
        let decoder = RevertDecoder::default();
        let shape = NmlShapeMismatch {
            model: "Volatility".into(),
            tensor: "vol".into(),
            expected: vec![1],
            actual: vec![2, 3],
        };
        assert_eq!(
            decoder.decode(&shape.abi_encode()).to_string(),
            r#"NmlShapeMismatch("Volatility", "vol", [1], [2, 3])"#
        );
        let range = NmlValueOutOfRange {
            model: "m".into(),
            tensor: "x".into(),
            index: U256::from(4),
            value: I256::try_from(-5).unwrap(),
        };
        assert_eq!(decoder.decode(&range.abi_encode()).to_string(), r#"NmlValueOutOfRange("m", "x", 4, -5)"#);
    }

    /// Every `error` a stdlib file declares is in [`STDLIB_ERRORS`], and
    /// every one of them parses.
    #[test]
    fn the_decoder_reads_every_error_the_stdlib_declares() {
        let stdlib = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../stdlib");
        let mut stack = vec![stdlib];
        let mut declared = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("the stdlib").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("a stdlib file");
                let errors = text.lines().filter(|l| l.trim_start().starts_with("error ")).count();
                if errors > 0 {
                    assert!(STDLIB_ERRORS.contains(&text.as_str()), "{} declares errors", path.display());
                    declared += errors;
                }
            }
        }
        let known: usize = STDLIB_ERRORS.iter().map(|s| s.lines().filter_map(error_declaration).count()).sum();
        assert_eq!(known, declared);
        assert!(known >= 4, "{known}");
    }
}
