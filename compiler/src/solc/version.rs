//! `pragma solidity` version requirements, read the way solc reads them.
//!
//! Solidity's syntax differs from Cargo's: a bare version is exact (`0.8.24`
//! means `=0.8.24`), comparators are separated by spaces, `a - b` is an
//! inclusive range and `||` separates alternatives. Each alternative becomes a
//! [`semver::VersionReq`].

use std::fmt;
use std::str::FromStr;

use semver::{Version, VersionReq};

/// A parsed `pragma solidity` requirement, e.g. `^0.8.24` or `>=0.8.0 <0.9.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolidityVersionReq {
    text: String,
    alternatives: Vec<VersionReq>,
}

/// A requirement solc would not accept either.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Solidity version requirement `{text}`: {reason}")]
pub struct VersionReqError {
    /// The requirement as written.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl SolidityVersionReq {
    /// Parses the text after `pragma solidity` (without the `;`).
    pub fn parse(text: &str) -> Result<Self, VersionReqError> {
        let error = |reason: String| VersionReqError { text: text.trim().to_owned(), reason };
        let mut alternatives = Vec::new();
        for alternative in text.split("||") {
            let cargo_syntax = to_cargo_syntax(alternative).map_err(error)?;
            let req = VersionReq::parse(&cargo_syntax).map_err(|e| error(e.to_string()))?;
            alternatives.push(req);
        }
        Ok(Self { text: text.trim().to_owned(), alternatives })
    }

    /// Whether `version` satisfies the requirement. Pre-release tags and build
    /// metadata (`+commit.…`, `-nightly…`) are ignored, as solc ignores them.
    pub fn matches(&self, version: &Version) -> bool {
        let release = Version::new(version.major, version.minor, version.patch);
        self.alternatives.iter().any(|req| req.matches(&release))
    }
}

impl fmt::Display for SolidityVersionReq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for SolidityVersionReq {
    type Err = VersionReqError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Whether `version` satisfies every requirement (an empty list is satisfied
/// by anything).
pub fn satisfies_all(requirements: &[SolidityVersionReq], version: &Version) -> bool {
    requirements.iter().all(|r| r.matches(version))
}

/// Rewrites one `||`-free Solidity requirement into Cargo's comma syntax.
fn to_cargo_syntax(alternative: &str) -> Result<String, String> {
    let tokens: Vec<&str> = alternative.split_whitespace().collect();
    if tokens.is_empty() {
        return Err("empty requirement".to_owned());
    }
    if let [from, "-", to] = tokens.as_slice() {
        return Ok(format!(">={from}, <={to}"));
    }
    if tokens.contains(&"-") {
        return Err("a range `a - b` stands alone".to_owned());
    }
    let mut comparators = Vec::new();
    let mut pending_op: Option<&str> = None;
    for token in tokens {
        let split = token.find(|c: char| c.is_ascii_digit() || matches!(c, '*' | 'x' | 'X')).unwrap_or(token.len());
        let (op, version) = token.split_at(split);
        if !matches!(op, "" | "^" | "~" | ">=" | "<=" | ">" | "<" | "=") {
            return Err(format!("unknown operator `{op}`"));
        }
        let op = match (pending_op.take(), op) {
            (Some(_), op) if !op.is_empty() => return Err("two operators in a row".to_owned()),
            (Some(op), _) => op,
            (None, op) => op,
        };
        if version.is_empty() {
            pending_op = Some(op);
            continue;
        }
        let wildcard = version.contains(['*', 'x', 'X']);
        comparators.push(match op {
            // A bare version is exact in Solidity; Cargo reads it as `^`.
            "" | "=" if !wildcard => format!("={version}"),
            "" | "=" => version.to_owned(),
            op => format!("{op}{version}"),
        });
    }
    if pending_op.is_some() {
        return Err("an operator without a version".to_owned());
    }
    Ok(comparators.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn accepts(req: &str, version: &str) -> bool {
        SolidityVersionReq::parse(req).unwrap().matches(&v(version))
    }

    #[test]
    fn caret_and_ranges() {
        assert!(accepts("^0.8.24", "0.8.37"));
        assert!(!accepts("^0.8.24", "0.8.23"));
        assert!(!accepts("^0.8.24", "0.9.0"));
        assert!(accepts(">=0.8.0 <0.9.0", "0.8.5"));
        assert!(!accepts(">=0.8.0 <0.9.0", "0.9.0"));
        assert!(accepts(">= 0.8.0  < 0.8.30", "0.8.29"));
        assert!(!accepts(">= 0.8.0  < 0.8.30", "0.8.30"));
        assert!(accepts("~0.8.20", "0.8.30"));
    }

    #[test]
    fn bare_version_is_exact() {
        assert!(accepts("0.8.24", "0.8.24"));
        assert!(!accepts("0.8.24", "0.8.25"));
        assert!(accepts("=0.8.24", "0.8.24"));
        assert!(accepts("0.8.x", "0.8.30"));
        assert!(!accepts("0.8.*", "0.7.6"));
    }

    #[test]
    fn hyphen_ranges_and_alternatives() {
        assert!(accepts("0.8.0 - 0.8.20", "0.8.20"));
        assert!(!accepts("0.8.0 - 0.8.20", "0.8.21"));
        assert!(accepts("^0.7.0 || ^0.8.0", "0.7.6"));
        assert!(accepts("^0.7.0 || ^0.8.0", "0.8.30"));
        assert!(!accepts("^0.7.0 || ^0.8.0", "0.6.12"));
    }

    #[test]
    fn build_metadata_and_prerelease_are_ignored() {
        assert!(accepts("^0.8.24", "0.8.28+commit.7893614a.Linux.gcc"));
        assert!(accepts("^0.8.24", "0.8.29-nightly.2025.1.1"));
    }

    #[test]
    fn nonsense_is_an_error() {
        for bad in ["", "^", "!0.8.0", "banana", "0.8.0 - ", ">= ^0.8.0", "0.8.0 - 0.8.1 - 0.8.2"] {
            let err = SolidityVersionReq::parse(bad).unwrap_err();
            assert!(err.to_string().starts_with("invalid Solidity version requirement"), "{bad}: {err}");
        }
    }

    #[test]
    fn satisfies_all_needs_every_requirement() {
        let reqs: Vec<SolidityVersionReq> = ["^0.8.20", "<0.8.30"].iter().map(|r| r.parse().unwrap()).collect();
        assert!(satisfies_all(&reqs, &v("0.8.29")));
        assert!(!satisfies_all(&reqs, &v("0.8.30")));
        assert!(satisfies_all(&[], &v("0.4.0")));
    }
}
