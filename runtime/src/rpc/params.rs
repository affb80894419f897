//! Positional parameters, checked the way geth checks them: count first,
//! then each value's type, every failure a -32602 with the argument's index.

use alloy_primitives::U256;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// JSON-RPC "invalid params".
pub(crate) const INVALID_PARAMS: i32 = -32602;

pub(crate) fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(INVALID_PARAMS, message, None::<()>)
}

/// The parameters of one call.
#[derive(Debug)]
pub(crate) struct Args(Vec<Value>);

impl Args {
    /// Reads the parameters, requiring between `min` and `max` of them.
    pub(crate) fn new(params: &Params<'_>, min: usize, max: usize) -> Result<Self, ErrorObjectOwned> {
        let values: Vec<Value> = match params.as_str() {
            None => Vec::new(),
            Some(raw) => match serde_json::from_str::<Value>(raw) {
                Ok(Value::Array(values)) => values,
                Ok(Value::Null) => Vec::new(),
                Ok(_) => return Err(invalid("non-array args")),
                Err(e) => return Err(invalid(format!("invalid params: {e}"))),
            },
        };
        // Trailing nulls count as absent optional arguments.
        let len = values.iter().rposition(|v| !v.is_null()).map_or(0, |i| i + 1);
        if len > max {
            return Err(invalid(format!("too many arguments, want at most {max}")));
        }
        if len < min {
            return Err(invalid(format!("missing value for required argument {len}")));
        }
        Ok(Self(values))
    }

    /// Argument `i`, required.
    pub(crate) fn req<T: DeserializeOwned>(&self, i: usize) -> Result<T, ErrorObjectOwned> {
        match self.0.get(i) {
            Some(value) if !value.is_null() => decode(i, value.clone()),
            _ => Err(invalid(format!("missing value for required argument {i}"))),
        }
    }

    /// Argument `i`, optional.
    pub(crate) fn opt<T: DeserializeOwned>(&self, i: usize) -> Result<Option<T>, ErrorObjectOwned> {
        match self.0.get(i) {
            Some(value) if !value.is_null() => decode(i, value.clone()).map(Some),
            _ => Ok(None),
        }
    }

    /// Argument `i` as a quantity: a hex string or a JSON number.
    pub(crate) fn quantity(&self, i: usize) -> Result<Option<u64>, ErrorObjectOwned> {
        let Some(value) = self.opt::<Value>(i)? else { return Ok(None) };
        quantity(i, &value).map(Some)
    }

    /// Argument `i` raw.
    pub(crate) fn raw(&self, i: usize) -> Option<&Value> {
        self.0.get(i).filter(|v| !v.is_null())
    }
}

fn decode<T: DeserializeOwned>(i: usize, value: Value) -> Result<T, ErrorObjectOwned> {
    serde_json::from_value(value).map_err(|e| invalid(format!("invalid argument {i}: {e}")))
}

/// A u64 given as a JSON number, a hex string or a decimal string.
pub(crate) fn quantity(i: usize, value: &Value) -> Result<u64, ErrorObjectOwned> {
    let bad = || invalid(format!("invalid argument {i}: expected a quantity, got {value}"));
    match value {
        Value::Number(n) => n.as_u64().ok_or_else(bad),
        Value::String(s) => {
            let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => s.parse::<u64>().ok(),
            };
            parsed.ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

/// A U256 given as a JSON number, a hex string or a decimal string.
pub(crate) fn quantity_u256(i: usize, value: &Value) -> Result<U256, ErrorObjectOwned> {
    let bad = || invalid(format!("invalid argument {i}: expected a quantity, got {value}"));
    match value {
        Value::Number(n) => n.as_u64().map(U256::from).ok_or_else(bad),
        Value::String(s) => s.parse::<U256>().map_err(|_| bad()),
        _ => Err(bad()),
    }
}
