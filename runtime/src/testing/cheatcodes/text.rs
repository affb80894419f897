//! Values to and from text, as Foundry writes and reads them: `toString`
//! (addresses checksummed, bytes and `bytes32` as lowercase `0x` hex), and
//! the environment variables of `envUint`, `envInt`, `envAddress`,
//! `envBool`, `envString`, `envBytes32` and `envOr`.
//!
//! A variable is parsed as alloy's `DynSolType::coerce_str` parses a value
//! of its type (the parser Foundry uses): decimal or `0x`/`0b`/`0o`
//! numbers, ether units (`1.5 ether`), 20-byte addresses and 32-byte words
//! in hex, a string as it is but for trailing whitespace (or, in quotes,
//! what they hold); a bool is also `1`/`0` or `TRUE` in any case.
//! Whitespace around a value that is not a string is ignored (as nml's
//! `envOr` always did).
//! A variable that is not set, or does not parse, makes `env*` revert with
//! a reason that names it (never its value, which may be a secret), and
//! `envOr` answer its default.

use alloy_dyn_abi::{DynSolType, DynSolValue};
use alloy_primitives::{Address, hex};

/// Why an environment variable has no value of the type asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum EnvVarError {
    /// It is not set.
    #[error("environment variable `{0}` is not set")]
    Missing(String),
    /// It is set to bytes that are not UTF-8.
    #[error("environment variable `{0}` is not valid UTF-8")]
    NotUnicode(String),
    /// It does not parse as the type.
    #[error("environment variable `{name}` is not a valid {ty}")]
    Unparsable { name: String, ty: String },
}

/// The environment variable `name` as a value of type `ty`.
pub(super) fn env_var(name: &str, ty: &DynSolType) -> Result<DynSolValue, EnvVarError> {
    let text = std::env::var(name).map_err(|e| match e {
        std::env::VarError::NotPresent => EnvVarError::Missing(name.to_owned()),
        std::env::VarError::NotUnicode(_) => EnvVarError::NotUnicode(name.to_owned()),
    })?;
    parse(&text, ty).ok_or_else(|| EnvVarError::Unparsable { name: name.to_owned(), ty: ty.to_string() })
}

/// `envOr(name, default)`: the variable as `default`'s type, or `default`.
pub(super) fn env_or(name: &str, default: DynSolValue) -> DynSolValue {
    default.as_type().and_then(|ty| env_var(name, &ty).ok()).unwrap_or(default)
}

/// `text` as a value of type `ty`, if it is one.
fn parse(text: &str, ty: &DynSolType) -> Option<DynSolValue> {
    let text = if *ty == DynSolType::String { text } else { text.trim() };
    if let Ok(value) = ty.coerce_str(text) {
        return Some(value);
    }
    match (ty, text) {
        (DynSolType::Bool, "1") => Some(DynSolValue::Bool(true)),
        (DynSolType::Bool, "0") => Some(DynSolValue::Bool(false)),
        (DynSolType::Bool, t) if t.eq_ignore_ascii_case("true") => Some(DynSolValue::Bool(true)),
        (DynSolType::Bool, t) if t.eq_ignore_ascii_case("false") => Some(DynSolValue::Bool(false)),
        _ => None,
    }
}

/// `toString(address)`: checksummed (EIP-55).
pub(super) fn address(value: Address) -> String {
    value.to_checksum(None)
}

/// `toString(bytes)` and `toString(bytes32)`: `0x` and lowercase hex.
pub(super) fn hex_string(value: &[u8]) -> String {
    hex::encode_prefixed(value)
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{B256, I256, U256, address};

    use super::*;

    #[test]
    fn variables_parse_as_foundry_parses_them() {
        let uint = DynSolType::Uint(256);
        assert_eq!(parse(" 42\n", &uint), Some(DynSolValue::Uint(U256::from(42), 256)));
        assert_eq!(parse("0x2a", &uint), Some(DynSolValue::Uint(U256::from(42), 256)));
        assert_eq!(parse("1 gwei", &uint), Some(DynSolValue::Uint(U256::from(1_000_000_000u64), 256)));
        assert_eq!(parse("forty-two", &uint), None);
        assert_eq!(parse("-7", &DynSolType::Int(256)), Some(DynSolValue::Int(I256::try_from(-7).unwrap(), 256)));
        for (text, value) in [("true", true), ("TRUE", true), ("1", true), ("false", false), ("0", false)] {
            assert_eq!(parse(text, &DynSolType::Bool), Some(DynSolValue::Bool(value)), "{text}");
        }
        assert_eq!(parse("yes", &DynSolType::Bool), None);
        let owner = address!("7E5F4552091A69125d5DfCb7b8C2659029395Bdf");
        assert_eq!(
            parse("0x7e5f4552091a69125d5dfcb7b8c2659029395bdf", &DynSolType::Address),
            Some(DynSolValue::Address(owner))
        );
        assert_eq!(parse("0x7e5f", &DynSolType::Address), None);
        let word = B256::repeat_byte(0xab);
        assert_eq!(
            parse(&hex_string(word.as_slice()), &DynSolType::FixedBytes(32)),
            Some(DynSolValue::FixedBytes(word, 32))
        );
        assert_eq!(parse(" hello \n", &DynSolType::String), Some(DynSolValue::String(" hello".into())));
        assert_eq!(parse("\" hello \"", &DynSolType::String), Some(DynSolValue::String(" hello ".into())));
    }

    #[test]
    fn missing_and_unparsable_variables_are_named_and_envor_falls_back() {
        let missing = "NML_TEXT_TEST_SURELY_UNSET_VARIABLE";
        let err = env_var(missing, &DynSolType::Uint(256)).unwrap_err();
        assert_eq!(err.to_string(), format!("environment variable `{missing}` is not set"));
        // PATH is set in any test environment, and is not a number.
        let err = env_var("PATH", &DynSolType::Uint(256)).unwrap_err();
        assert_eq!(err.to_string(), "environment variable `PATH` is not a valid uint256");
        let fallback = DynSolValue::Address(Address::repeat_byte(7));
        assert_eq!(env_or(missing, fallback.clone()), fallback);
        assert_eq!(env_or("PATH", DynSolValue::Int(I256::ONE, 256)), DynSolValue::Int(I256::ONE, 256));
    }

    #[test]
    fn values_are_written_as_foundry_writes_them() {
        assert_eq!(
            address(address!("7e5f4552091a69125d5dfcb7b8c2659029395bdf")),
            "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
        );
        assert_eq!(hex_string(&[0xde, 0xad, 0xBE, 0xEF]), "0xdeadbeef");
        assert_eq!(hex_string(&[]), "0x");
    }
}
