//! Model ids derived from a file's bytes are the ids `ipfs add` gives it, for
//! files of any size: nml's own UnixFS builder (`nml_protocol::unixfs`)
//! against IPFS's JavaScript UnixFS importer, installed from npm by this test
//! into `target/client-deps/unixfs` (set `NML_SKIP_CLIENT_TESTS=1` where Node
//! is missing). And `nml models id` prints both forms.

use std::path::PathBuf;
use std::process::Command;

use nml_protocol::ModelId;
use nml_protocol::unixfs::CHUNK_SIZE;

mod common;

const IMPORTER: &str = "ipfs-unixfs-importer@17.1.1";
const BLOCKSTORE: &str = "blockstore-core@7.0.1";

/// Bytes that do not repeat within a chunk (a xorshift stream).
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn derived_ids_match_the_unixfs_importer_for_files_of_any_size() {
    if std::env::var_os("NML_SKIP_CLIENT_TESTS").is_some() {
        eprintln!("NML_SKIP_CLIENT_TESTS is set: skipping the UnixFS importer comparison");
        return;
    }
    let deps = common::deps_dir().join("unixfs");
    common::provision(&deps, &format!(".installed-{IMPORTER}-{BLOCKSTORE}"), |dir| {
        common::run_checked(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
                .arg(dir)
                .args([IMPORTER, BLOCKSTORE]),
            "npm install ipfs-unixfs-importer",
        );
    });
    let files = tempfile::tempdir().unwrap();
    // One byte; exactly one chunk; one chunk and a byte; several MiB; and
    // 175 chunks and a byte, so the tree has two levels of parents.
    let sizes = [1, CHUNK_SIZE, CHUNK_SIZE + 1, 5 * 1024 * 1024 + 3, 175 * CHUNK_SIZE + 1];
    let paths: Vec<PathBuf> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            let path = files.path().join(format!("model-{size}.onnx"));
            std::fs::write(&path, bytes(size, i as u64 + 1)).unwrap();
            path
        })
        .collect();
    // ES modules resolve packages from the script's folder: run a copy there.
    let script = deps.join(format!("unixfs_cid_{}.mjs", std::process::id()));
    std::fs::copy(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/unixfs_cid.mjs"), &script).unwrap();
    let output = Command::new("node").arg(&script).args(&paths).output().expect("node");
    let _ = std::fs::remove_file(&script);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), sizes.len(), "{stdout}");
    for (path, line) in paths.iter().zip(lines) {
        let [_, v0, v1] = line.split(' ').collect::<Vec<_>>().try_into().expect("three fields");
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(ModelId::derive_v0(&bytes).as_str(), v0, "CIDv0 of {}", path.display());
        assert_eq!(ModelId::derive(&bytes).as_str(), v1, "CIDv1 of {}", path.display());
    }
}

#[test]
fn nml_models_id_prints_both_forms() {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("runtime/tests/models/bench.onnx");
    let output = Command::new(env!("CARGO_BIN_EXE_nml")).args(["models", "id"]).arg(&model).output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    let bytes = std::fs::read(&model).unwrap();
    assert!(
        text.contains(ModelId::derive(&bytes).as_str()) && text.contains(ModelId::derive_v0(&bytes).as_str()),
        "{text}"
    );
    // bench.onnx spans two chunks: its CIDv1 is a dag-pb root, not a raw leaf.
    assert!(ModelId::derive(&bytes).as_str().starts_with("bafybei"), "{text}");
}
