//! Fixtures from files: `projectRoot`, `readFile`, `readFileBinary`,
//! `exists`, and values out of JSON (`parseJsonUint`, `parseJsonIntArray`,
//! … and nml's `parseJsonFixed`/`parseJsonFixedArray`, which scale decimal
//! numbers — a model's test vectors as Python wrote them — to a fixed-point
//! integer).
//!
//! Paths are relative to the project root, and a test reads only inside
//! it (after links are followed); a file over [`MAX_FILE`] is refused.
//!
//! A key is a JSON path in the subset Foundry's tests use: `.` or `$` for
//! the whole document, then `.name` and `[index]` steps (`.returns`,
//! `.cases[2].input`). A number is read from a JSON number or from a
//! string: decimal, `0x` hex, or with ether units, as `envUint` reads it.

use std::path::{Path, PathBuf};

use alloy_dyn_abi::{DynSolType, DynSolValue};
use alloy_primitives::{I256, U256};
use serde_json::Value;

/// The largest file a test may read (16 MiB).
pub(super) const MAX_FILE: u64 = 16 << 20;

/// Why a fixture could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum FixtureError {
    /// The runner was given no project root.
    #[error("no project root: files are read only by `nml test`")]
    NoRoot,
    /// The path leads out of the project.
    #[error("{0}: outside the project (a test reads only the project's files)")]
    Outside(String),
    /// The file cannot be read.
    #[error("{path}: {why}")]
    Path { path: String, why: String },
    /// The document is not JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The key is not a path this reader understands.
    #[error("key `{0}` is not a JSON path (`.`, `$`, `.name`, `[index]`)")]
    BadKey(String),
    /// The key names nothing in the document.
    #[error("key `{0}` is not in the JSON")]
    Missing(String),
    /// The value at the key is not of the type asked.
    #[error("key `{key}`: {found} is not a valid {ty}")]
    Type { key: String, found: String, ty: String },
}

/// `path` inside `root`, if it is there (links followed).
fn inside(root: Option<&Path>, path: &str) -> Result<PathBuf, FixtureError> {
    let root = root.ok_or(FixtureError::NoRoot)?;
    let fail = |why: String| FixtureError::Path { path: path.to_owned(), why };
    let root = root.canonicalize().map_err(|e| fail(format!("the project root: {e}")))?;
    let full = root.join(path).canonicalize().map_err(|e| fail(e.to_string()))?;
    if !full.starts_with(&root) {
        return Err(FixtureError::Outside(path.to_owned()));
    }
    Ok(full)
}

/// `readFileBinary`: the bytes of a file of the project.
pub(super) fn read(root: Option<&Path>, path: &str) -> Result<Vec<u8>, FixtureError> {
    let full = inside(root, path)?;
    let fail = |why: String| FixtureError::Path { path: path.to_owned(), why };
    let size = full.metadata().map_err(|e| fail(e.to_string()))?.len();
    if size > MAX_FILE {
        return Err(fail(format!("{size} bytes, over the {MAX_FILE} a test may read")));
    }
    std::fs::read(&full).map_err(|e| fail(e.to_string()))
}

/// `readFile`: a text file of the project.
pub(super) fn read_text(root: Option<&Path>, path: &str) -> Result<String, FixtureError> {
    String::from_utf8(read(root, path)?).map_err(|_| FixtureError::Path {
        path: path.to_owned(),
        why: "not UTF-8 text (readFileBinary reads bytes)".to_owned(),
    })
}

/// `exists`: whether a path of the project exists.
pub(super) fn exists(root: Option<&Path>, path: &str) -> Result<bool, FixtureError> {
    match inside(root, path) {
        Ok(_) => Ok(true),
        Err(FixtureError::Path { .. }) => Ok(false),
        Err(other) => Err(other),
    }
}

/// The value at `key` of the JSON `json`.
fn at(json: &str, key: &str) -> Result<Value, FixtureError> {
    let document: Value = serde_json::from_str(json).map_err(|e| FixtureError::NotJson(e.to_string()))?;
    let bad = || FixtureError::BadKey(key.to_owned());
    let mut rest = key.strip_prefix('$').unwrap_or(key);
    let mut value = &document;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let (index, after) = after.split_once(']').ok_or_else(bad)?;
            let index: usize = index.trim().parse().map_err(|_| bad())?;
            value = value.get(index).ok_or_else(|| FixtureError::Missing(key.to_owned()))?;
            rest = after;
        } else if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let (name, after) = after.split_at(end);
            if !name.is_empty() {
                value = value.get(name).ok_or_else(|| FixtureError::Missing(key.to_owned()))?;
            } else if !after.is_empty() {
                return Err(bad());
            }
            rest = after;
        } else {
            return Err(bad());
        }
    }
    Ok(value.clone())
}

/// What a scalar of type `ty` is read from.
fn scalar(value: &Value, ty: &DynSolType, key: &str) -> Result<DynSolValue, FixtureError> {
    let wrong = || FixtureError::Type { key: key.to_owned(), found: value.to_string(), ty: ty.to_string() };
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
        Value::Bool(b) if *ty == DynSolType::Bool => b.to_string(),
        _ => return Err(wrong()),
    };
    if *ty == DynSolType::String {
        return Ok(DynSolValue::String(text));
    }
    ty.coerce_str(text.trim()).map_err(|_| wrong())
}

/// `parseJsonUint` and the like: the scalar at `key`.
pub(super) fn parse(json: &str, key: &str, ty: &DynSolType) -> Result<DynSolValue, FixtureError> {
    scalar(&at(json, key)?, ty, key)
}

/// `parseJsonUintArray` and the like: the array at `key`, each a `ty`.
pub(super) fn parse_array(json: &str, key: &str, ty: &DynSolType) -> Result<DynSolValue, FixtureError> {
    let value = at(json, key)?;
    let Value::Array(items) = &value else {
        return Err(FixtureError::Type { key: key.to_owned(), found: value.to_string(), ty: format!("{ty}[]") });
    };
    let items = items.iter().map(|item| scalar(item, ty, key)).collect::<Result<_, _>>()?;
    Ok(DynSolValue::Array(items))
}

/// `keyExistsJson`.
pub(super) fn key_exists(json: &str, key: &str) -> Result<bool, FixtureError> {
    match at(json, key) {
        Ok(_) => Ok(true),
        Err(FixtureError::Missing(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `parseJsonFixed`: the decimal number at `key` times 10^`decimals`,
/// rounded to the nearest integer (halves away from zero).
pub(super) fn parse_fixed(json: &str, key: &str, decimals: u8) -> Result<I256, FixtureError> {
    fixed(&at(json, key)?, decimals, key)
}

/// `parseJsonFixedArray`: each number of the array at `key`, as
/// [`parse_fixed`] reads one.
pub(super) fn parse_fixed_array(json: &str, key: &str, decimals: u8) -> Result<Vec<I256>, FixtureError> {
    let value = at(json, key)?;
    let Value::Array(items) = &value else {
        return Err(FixtureError::Type { key: key.to_owned(), found: value.to_string(), ty: "number[]".to_owned() });
    };
    items.iter().map(|item| fixed(item, decimals, key)).collect()
}

/// A JSON number (or a string holding one, `1.5`, `-2e-3`) in fixed point.
fn fixed(value: &Value, decimals: u8, key: &str) -> Result<I256, FixtureError> {
    let wrong = |ty: &str| FixtureError::Type { key: key.to_owned(), found: value.to_string(), ty: ty.to_owned() };
    // Rust writes an f64 as the shortest decimal that reads back as it,
    // never in exponent notation: 0.1 is "0.1", not 0.1000000000000000055….
    let text = match value {
        Value::Number(n) if n.is_f64() => n.as_f64().filter(|f| f.is_finite()).map(|f| f.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.trim().to_owned()),
        _ => None,
    };
    let text = text.ok_or_else(|| wrong("number"))?;
    scale(&text, decimals).ok_or_else(|| wrong(&format!("number with {decimals} decimals that fits an int256")))
}

/// `text` (`-12.5`, `3e-4`) times 10^`decimals`, rounded half away from zero.
fn scale(text: &str, decimals: u8) -> Option<I256> {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().ok()?),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() || !(whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit())) {
        return None;
    }
    // digits × 10^shift is the value times 10^decimals.
    let digits = format!("{whole}{fraction}");
    let shift = i64::from(decimals).checked_add(exponent)?.checked_sub(fraction.len() as i64)?;
    if digits.len() as i64 + shift > 80 {
        return None;
    }
    let digits = digits.trim_start_matches('0');
    let magnitude = if shift >= 0 {
        let padded = format!("{digits}{}", "0".repeat(shift as usize));
        U256::from_str_radix(if padded.is_empty() { "0" } else { &padded }, 10).ok()?
    } else {
        let cut = usize::try_from(shift.unsigned_abs()).unwrap_or(usize::MAX);
        let (kept, dropped) = digits.split_at(digits.len().saturating_sub(cut));
        let kept = if kept.is_empty() { U256::ZERO } else { U256::from_str_radix(kept, 10).ok()? };
        // Digits dropped past the last kept one: round on the first.
        let first_dropped =
            if dropped.len() < cut { b'0' } else { dropped.as_bytes().first().copied().unwrap_or(b'0') };
        if first_dropped >= b'5' { kept.checked_add(U256::from(1))? } else { kept }
    };
    let value = I256::try_from(magnitude).ok()?;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_step_through_objects_and_arrays() {
        let json = r#"{"cases": [{"input": [1, 2]}, {"input": [3, "0x04"], "name": "b"}], "ok": true}"#;
        assert_eq!(at(json, ".cases[1].name").unwrap(), "b");
        assert_eq!(at(json, "$.cases[0].input[1]").unwrap(), 2);
        assert_eq!(at(json, ".").unwrap()["ok"], true);
        assert_eq!(at(json, ".cases[5]"), Err(FixtureError::Missing(".cases[5]".to_owned())));
        assert_eq!(at(json, "cases"), Err(FixtureError::BadKey("cases".to_owned())));
        assert_eq!(at(json, ".cases[x]"), Err(FixtureError::BadKey(".cases[x]".to_owned())));
        assert!(matches!(at("{", "."), Err(FixtureError::NotJson(_))));
        let uints = parse_array(json, ".cases[1].input", &DynSolType::Uint(256)).unwrap();
        assert_eq!(
            uints,
            DynSolValue::Array(vec![DynSolValue::Uint(U256::from(3), 256), DynSolValue::Uint(U256::from(4), 256)])
        );
        assert!(key_exists(json, ".ok").unwrap() && !key_exists(json, ".no").unwrap());
        assert_eq!(parse(json, ".ok", &DynSolType::Bool).unwrap(), DynSolValue::Bool(true));
        // A number that is not an integer is not a uint.
        assert!(matches!(parse(r#"{"a": 1.5}"#, ".a", &DynSolType::Uint(256)), Err(FixtureError::Type { .. })));
        assert!(matches!(parse(r#"{"a": -1}"#, ".a", &DynSolType::Uint(256)), Err(FixtureError::Type { .. })));
        assert_eq!(parse(r#"{"a": -1}"#, ".a", &DynSolType::Int(256)).unwrap(), DynSolValue::Int(I256::MINUS_ONE, 256));
        assert_eq!(
            parse(r#"{"a": "1.5 ether"}"#, ".a", &DynSolType::Uint(256)).unwrap(),
            DynSolValue::Uint(U256::from(15u64) * U256::from(10u64).pow(U256::from(17)), 256)
        );
    }

    #[test]
    fn decimals_scale_exactly_and_round_half_away_from_zero() {
        let e = |n: u32| I256::try_from(U256::from(10u64).pow(U256::from(n))).unwrap();
        assert_eq!(scale("0.1", 18), Some(e(17)));
        assert_eq!(scale("-12.5", 1), Some(I256::try_from(-125).unwrap()));
        assert_eq!(scale("3e-4", 18), Some(I256::try_from(3).unwrap() * e(14)));
        assert_eq!(scale("1.25", 1), Some(I256::try_from(13).unwrap()));
        assert_eq!(scale("-1.25", 1), Some(I256::try_from(-13).unwrap()));
        assert_eq!(scale("0.0004", 3), Some(I256::ZERO));
        assert_eq!(scale("0.0005", 3), Some(I256::ONE));
        assert_eq!(scale("7", 0), Some(I256::try_from(7).unwrap()));
        assert_eq!(scale("1e90", 0), None);
        assert_eq!(scale("1e-9223372036854775807", 18), Some(I256::ZERO));
        assert_eq!(scale("1e9223372036854775807", 18), None);
        assert_eq!(scale("abc", 2), None);
        assert_eq!(scale(".", 2), None);
        // JSON numbers as Python writes them, through f64 and back.
        let json = r#"{"returns": [0.012345678901234568, -0.5, 2, "1e-5"]}"#;
        let fixed = parse_fixed_array(json, ".returns", 18).unwrap();
        assert_eq!(fixed[0], I256::try_from(12_345_678_901_234_568i64).unwrap());
        assert_eq!(fixed[1], -(e(17) * I256::try_from(5).unwrap()));
        assert_eq!(fixed[2], e(18) * I256::try_from(2).unwrap());
        assert_eq!(fixed[3], e(13));
        assert!(matches!(parse_fixed(r#"{"a": true}"#, ".a", 18), Err(FixtureError::Type { .. })));
    }

    #[test]
    fn a_test_reads_only_the_projects_files() {
        let project = tempfile::tempdir().unwrap();
        let root = project.path();
        std::fs::create_dir_all(root.join("test/fixtures")).unwrap();
        std::fs::write(root.join("test/fixtures/a.json"), "{\"x\": 1}").unwrap();
        assert_eq!(read_text(Some(root), "test/fixtures/a.json").unwrap(), "{\"x\": 1}");
        assert!(exists(Some(root), "test/fixtures/a.json").unwrap());
        assert!(!exists(Some(root), "test/fixtures/b.json").unwrap());
        let outside = read(Some(root), "../../../../../../etc/hostname");
        assert!(matches!(outside, Err(FixtureError::Outside(_)) | Err(FixtureError::Path { .. })), "{outside:?}");
        assert_eq!(exists(Some(root), "/etc"), Err(FixtureError::Outside("/etc".to_owned())));
        assert_eq!(read(None, "a.json"), Err(FixtureError::NoRoot));
        std::fs::write(root.join("bin"), [0xff, 0xfe]).unwrap();
        assert!(read_text(Some(root), "bin").is_err());
        assert_eq!(read(Some(root), "bin").unwrap(), [0xff, 0xfe]);
    }
}
