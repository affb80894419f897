//! Foundry's artifact layout: `out/<Stem>.sol/<Contract>.json`, and nml's
//! model manifest beside it (`<Contract>.manifest.json`).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::SolcOutput;

/// Writes one JSON file per contract of `output` under `out_dir`, each
/// atomically (through a temporary sibling and a rename), and returns the
/// `(source unit, contract)` pairs written. Standard library units
/// (`@nml/…`) are written too, as Foundry writes its dependencies'.
///
/// Two contracts that would land on the same file (same name in two units with
/// the same file stem) are an error rather than a silent overwrite.
pub fn write_artifacts(out_dir: &Path, output: &SolcOutput) -> io::Result<Vec<(String, String)>> {
    let mut planned: BTreeMap<PathBuf, &str> = BTreeMap::new();
    for a in &output.contracts {
        let path = artifact_path(out_dir, &a.source, &a.name);
        if let Some(other) = planned.insert(path.clone(), &a.source) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "contract {} is declared in both {other} and {}, and both would be written to {}; rename one of them",
                    a.name,
                    a.source,
                    path.display()
                ),
            ));
        }
    }
    let mut written = Vec::with_capacity(output.contracts.len());
    for a in &output.contracts {
        let json = serde_json::to_vec_pretty(&a.artifact).map_err(io::Error::other)?;
        write_atomic(&artifact_path(out_dir, &a.source, &a.name), &json)?;
        written.push((a.source.clone(), a.name.clone()));
    }
    Ok(written)
}

/// Where the artifact of `contract` from source unit `unit` goes:
/// `src/Pool.nml` + `Pool` → `<out_dir>/Pool.sol/Pool.json`.
pub fn artifact_path(out_dir: &Path, unit: &str, contract: &str) -> PathBuf {
    out_dir.join(format!("{}.sol", artifact_stem(unit))).join(format!("{contract}.json"))
}

/// Where the model manifest of `contract` from source unit `unit` goes, next
/// to its artifact: `src/Pool.nml` + `Pool` → `<out_dir>/Pool.sol/Pool.manifest.json`.
pub fn manifest_path(out_dir: &Path, unit: &str, contract: &str) -> PathBuf {
    out_dir.join(format!("{}.sol", artifact_stem(unit))).join(format!("{contract}.manifest.json"))
}

/// The file stem of a source unit: `src/Pool.nml` → `Pool`, `@nml/og/Test.sol` → `Test`.
pub fn artifact_stem(unit: &str) -> &str {
    let file = unit.rsplit('/').next().unwrap_or(unit);
    file.strip_suffix(".nml").or_else(|| file.strip_suffix(".sol")).unwrap_or(file)
}

/// Writes through a temporary sibling and a rename, so that a reader (or a
/// killed build) never leaves half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Unique per process and per call: two threads writing the same path
    // must not share (and rename away) one temporary file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solc::Artifact;

    fn artifact(source: &str, name: &str) -> Artifact {
        let artifact = serde_json::from_value(serde_json::json!({
            "abi": [],
            "bytecode": { "object": "0x6080", "sourceMap": "", "linkReferences": {} },
            "methodIdentifiers": {}
        }))
        .unwrap();
        Artifact { source: source.to_owned(), name: name.to_owned(), artifact }
    }

    fn output(contracts: Vec<Artifact>) -> SolcOutput {
        SolcOutput { solc_version: "0.8.37".to_owned(), contracts, diagnostics: Vec::new(), sources: BTreeMap::new() }
    }

    #[test]
    fn layout_is_foundrys() {
        let out = Path::new("out");
        assert_eq!(artifact_path(out, "src/Pool.nml", "Pool"), Path::new("out/Pool.sol/Pool.json"));
        assert_eq!(artifact_path(out, "src/lib/Math.sol", "Math"), Path::new("out/Math.sol/Math.json"));
        assert_eq!(artifact_path(out, "@nml/og/OGInference.sol", "IOG"), Path::new("out/OGInference.sol/IOG.json"));
        assert_eq!(manifest_path(out, "src/Pool.nml", "Pool"), Path::new("out/Pool.sol/Pool.manifest.json"));
    }

    #[test]
    fn writes_every_contract() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_artifacts(
            dir.path(),
            &output(vec![
                artifact("src/Pool.nml", "Pool"),
                artifact("src/Pool.nml", "Helper"),
                artifact("@nml/og/T.sol", "T"),
            ]),
        )
        .unwrap();
        assert_eq!(written.len(), 3);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("Pool.sol/Helper.json")).unwrap()).unwrap();
        assert_eq!(json["bytecode"]["object"], "0x6080");
        assert!(dir.path().join("T.sol/T.json").is_file());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("Pool.sol"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn refuses_to_overwrite_a_namesake() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_artifacts(
            dir.path(),
            &output(vec![artifact("src/a/Pool.sol", "Pool"), artifact("src/b/Pool.nml", "Pool")]),
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(err.to_string().contains("src/a/Pool.sol") && err.to_string().contains("src/b/Pool.nml"), "{err}");
        assert!(!dir.path().join("Pool.sol").exists());
    }
}
