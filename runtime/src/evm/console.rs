//! `console.log` (`@nml/nml/console.sol`): what contracts and tests send to
//! the console address, read back as the line it prints. The devnet's
//! precompile set answers the address (as an account without code would:
//! nothing, and no gas) and hands the lines of mined transactions to its
//! mempool's console sink: `nml devnet` prints them, the test runner keeps
//! each test's.
//!
//! Every signature the stdlib's `console.sol` writes is known, under
//! `uint256`/`int256` and under the `uint`/`int` spellings that older
//! copies of Hardhat's `console.sol` hash, and a few that other consoles
//! add (`log(int256)`, `log(bytes)`, `log(bytes4)`, `log(string,int256)`),
//! so contracts compiled against those print here too.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use alloy_dyn_abi::{DynSolType, DynSolValue};
use alloy_primitives::{Address, address, keccak256};

/// The console's address: the bytes of `console.log`.
pub const CONSOLE_ADDRESS: Address = address!("000000000000000000636F6e736F6c652e6c6f67");

/// Where a devnet's console lines go (`nml devnet` prints them).
#[derive(Clone)]
pub struct ConsoleSink(pub Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for ConsoleSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConsoleSink")
    }
}

/// The line a call to the console with `input` (selector and arguments)
/// prints; `None` for a selector `console.sol` does not have, or
/// arguments that do not decode.
pub fn line(input: &[u8]) -> Option<String> {
    let (selector, args) = input.split_first_chunk::<4>()?;
    let types = signatures().get(selector)?;
    let values = match types.len() {
        0 => Vec::new(),
        _ => match DynSolType::Tuple(types.clone()).abi_decode_params(args).ok()? {
            DynSolValue::Tuple(values) => values,
            _ => return None,
        },
    };
    Some(format(&values))
}

/// The signatures of `console.sol` by selector (see `tools/make_console.py`).
fn signatures() -> &'static HashMap<[u8; 4], Vec<DynSolType>> {
    static TABLE: OnceLock<HashMap<[u8; 4], Vec<DynSolType>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = HashMap::new();
        let mut add = |name: &str, types: &[&str]| {
            let parsed: Vec<DynSolType> = types.iter().filter_map(|t| t.parse().ok()).collect();
            // Hardhat's older console hashes `uint` and `int`.
            let old: Vec<&str> = types
                .iter()
                .map(|t| match *t {
                    "uint256" => "uint",
                    "int256" => "int",
                    other => other,
                })
                .collect();
            for spelling in [types.to_vec(), old] {
                let signature = format!("{name}({})", spelling.join(","));
                let selector: [u8; 4] = keccak256(signature.as_bytes())[..4].try_into().unwrap_or_default();
                table.insert(selector, parsed.clone());
            }
        };
        add("log", &[]);
        for (name, ty) in [
            ("logUint", "uint256"),
            ("logInt", "int256"),
            ("logString", "string"),
            ("logBool", "bool"),
            ("logAddress", "address"),
            ("logBytes", "bytes"),
        ] {
            add(name, &[ty]);
        }
        for n in 1..=32 {
            add(&format!("logBytes{n}"), &[&format!("bytes{n}")]);
        }
        for ty in ["uint256", "int256", "string", "bool", "address", "bytes", "bytes32"] {
            add("log", &[ty]);
        }
        // Other consoles' (not the stdlib's, where a literal would find two
        // overloads): `log(bytes4)` and the like, `log(string,int256)`.
        for n in 1..=32 {
            add("log", &[&format!("bytes{n}")]);
        }
        add("log", &["string", "int256"]);
        const COMBINED: [&str; 4] = ["uint256", "string", "bool", "address"];
        for count in 2..=4u32 {
            for mut n in 0..COMBINED.len().pow(count) {
                let mut types = Vec::new();
                for _ in 0..count {
                    types.push(COMBINED[n % COMBINED.len()]);
                    n /= COMBINED.len();
                }
                add("log", &types);
            }
        }
        table
    })
}

/// The arguments as one line: a first string's `%` specifiers are filled
/// from the arguments after it, and what is left is added after a space
/// each (as Hardhat and Foundry print them).
fn format(values: &[DynSolValue]) -> String {
    let Some((DynSolValue::String(template), rest)) = values.split_first() else {
        return values.iter().map(text).collect::<Vec<_>>().join(" ");
    };
    let mut rest = rest.iter();
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some('%') => {
                chars.next();
                out.push('%');
            }
            Some(spec @ ('s' | 'd' | 'i' | 'x' | 'o' | 'e')) => match rest.next() {
                Some(value) => {
                    chars.next();
                    out.push_str(&specified(spec, value));
                }
                None => out.push('%'),
            },
            _ => out.push('%'),
        }
    }
    for value in rest {
        out.push(' ');
        out.push_str(&text(value));
    }
    out
}

/// A value as `%s` and unformatted arguments print it.
fn text(value: &DynSolValue) -> String {
    match value {
        DynSolValue::Uint(n, _) => n.to_string(),
        DynSolValue::Int(n, _) => n.to_string(),
        DynSolValue::Bool(b) => b.to_string(),
        DynSolValue::Address(a) => a.to_checksum(None),
        DynSolValue::String(s) => s.clone(),
        DynSolValue::Bytes(b) => alloy_primitives::hex::encode_prefixed(b),
        DynSolValue::FixedBytes(word, size) => alloy_primitives::hex::encode_prefixed(&word[..*size]),
        other => format!("{other:?}"),
    }
}

/// A value under a specifier: `%d`/`%i` a number in decimal, `%x` in hex,
/// `%e` in exponent notation; `%s`, `%o` and a non-number as [`text`].
fn specified(spec: char, value: &DynSolValue) -> String {
    let (negative, magnitude) = match value {
        DynSolValue::Uint(n, _) => (false, *n),
        DynSolValue::Int(n, _) => (n.is_negative(), n.unsigned_abs()),
        _ => return text(value),
    };
    let sign = if negative { "-" } else { "" };
    match spec {
        'x' => format!("{sign}0x{magnitude:x}"),
        'e' => {
            let digits = magnitude.to_string();
            let (head, tail) = digits.split_at(1);
            let tail = tail.trim_end_matches('0');
            let mut out = format!("{sign}{head}");
            if !tail.is_empty() {
                let _ = write!(out, ".{tail}");
            }
            let _ = write!(out, "e{}", digits.len() - 1);
            out
        }
        _ => text(value),
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{I256, U256};
    use alloy_sol_types::{SolCall, sol};

    use super::*;

    sol! {
        function log(string p0, uint256 p1, address p2, bool p3);
        function logInt(int256 p0);
        function logBytes4(bytes4 p0);
    }

    #[test]
    fn every_signature_of_the_stdlib_console_is_known() {
        let console = include_str!("../../../stdlib/nml/console.sol");
        let mut count = 0;
        for signature in console.split("encodeWithSignature(\"").skip(1).filter_map(|s| s.split('"').next()) {
            let selector: [u8; 4] = keccak256(signature.as_bytes())[..4].try_into().unwrap();
            assert!(signatures().contains_key(&selector), "{signature} is not known");
            count += 1;
        }
        assert!(count > 370, "{count} signatures");
        // Hardhat's older spelling too.
        let old: [u8; 4] = keccak256("log(uint,string)")[..4].try_into().unwrap();
        assert!(signatures().contains_key(&old));
    }

    #[test]
    fn a_template_is_filled_and_what_is_left_follows() {
        let to = address!("00000000000000000000000000000000000000aa");
        let call = logCall { p0: "fee %s bps, %d%% to".into(), p1: U256::from(30), p2: to, p3: true };
        assert_eq!(
            line(&call.abi_encode()).unwrap(),
            "fee 30 bps, 0x00000000000000000000000000000000000000AA% to true"
        );
        let call = logCall { p0: "%x %e %s".into(), p1: U256::from(255), p2: to, p3: false };
        assert_eq!(line(&call.abi_encode()).unwrap(), "0xff 0x00000000000000000000000000000000000000AA false");
        let call = logCall { p0: "no args left: %s %s %s %s".into(), p1: U256::from(1_500_000), p2: to, p3: false };
        assert_eq!(
            line(&call.abi_encode()).unwrap(),
            "no args left: 1500000 0x00000000000000000000000000000000000000AA false %s"
        );
        assert_eq!(specified('e', &DynSolValue::Uint(U256::from(1_500_000), 256)), "1.5e6");
        assert_eq!(specified('e', &DynSolValue::Int(I256::try_from(-7).unwrap(), 256)), "-7e0");
        assert_eq!(line(&logIntCall { p0: I256::try_from(-42).unwrap() }.abi_encode()).unwrap(), "-42");
        assert_eq!(line(&logBytes4Call { p0: [0xde, 0xad, 0xbe, 0xef].into() }.abi_encode()).unwrap(), "0xdeadbeef");
    }

    #[test]
    fn unknown_selectors_and_bad_arguments_print_nothing() {
        assert_eq!(line(&[0x12, 0x34]), None);
        assert_eq!(line(&[0xde, 0xad, 0xbe, 0xef]), None);
        let mut call = truncated_log_int();
        call.truncate(10);
        assert_eq!(line(&call), None);
        assert_eq!(line(&keccak256("log()")[..4]).as_deref(), Some(""));
    }

    fn truncated_log_int() -> Vec<u8> {
        logIntCall { p0: I256::ONE }.abi_encode()
    }
}
