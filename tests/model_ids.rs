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

/// IPFS's JavaScript UnixFS importer and blockstore, installed once per
/// target directory.
fn unixfs_deps() -> PathBuf {
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
    deps
}

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
    let deps = unixfs_deps();
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

/// `nml models pull` against a local trustless gateway that IPFS's own
/// JavaScript libraries fill (`tests/clients/ipfs_gateway.mjs`): a model of
/// several chunks comes back byte for byte by its CIDv0 and its CIDv1, lands
/// in nml's cache, and a project declares it by `cid` alone; a gateway that
/// lies is caught by the block check.
#[test]
fn models_pull_from_a_gateway_checks_every_block() {
    if std::env::var_os("NML_SKIP_CLIENT_TESTS").is_some() {
        eprintln!("NML_SKIP_CLIENT_TESTS is set: skipping the gateway test");
        return;
    }
    use std::io::{BufRead, BufReader};
    let deps = unixfs_deps();
    let home = tempfile::tempdir().unwrap();
    // A real model padded past one chunk would not load; a model of one
    // chunk and a random file of three chunks and a bit exercise both layouts.
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("runtime/tests/models/mlp.onnx");
    let big = home.path().join("big.bin");
    std::fs::write(&big, bytes(3 * CHUNK_SIZE + 5, 9)).unwrap();
    let script = deps.join(format!("ipfs_gateway_{}.mjs", std::process::id()));
    std::fs::copy(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/ipfs_gateway.mjs"), &script).unwrap();
    /// The gateway's process, killed when dropped (also when an assertion fails).
    struct Gateway(std::process::Child);
    impl Drop for Gateway {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let start = |tamper: bool| {
        let mut child = Command::new("node")
            .arg(&script)
            .arg(&model)
            .arg(&big)
            .env("TAMPER", if tamper { "1" } else { "0" })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("node");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut ids = Vec::new();
        let port = loop {
            let line = lines.next().expect("a line").expect("utf-8");
            if let Some(port) = line.strip_prefix("listening ") {
                break port.to_owned();
            }
            ids.push(line.split(' ').skip(1).map(str::to_owned).collect::<Vec<_>>());
        };
        (Gateway(child), format!("http://127.0.0.1:{port}"), ids)
    };
    let (gateway, url, ids) = start(false);
    let nml = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_nml")).args(args).env("NML_HOME", home.path()).output().expect("nml")
    };
    for (file, forms) in [(&model, &ids[0]), (&big, &ids[1])] {
        for id in forms {
            let pulled = nml(&["models", "pull", id, "--gateway", &url]);
            assert!(pulled.status.success(), "{}", String::from_utf8_lossy(&pulled.stderr));
            let path = String::from_utf8_lossy(&pulled.stdout).trim().to_owned();
            assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(file).unwrap(), "{id}");
        }
    }
    let unknown =
        nml(&["models", "pull", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "--gateway", &url]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("HTTP 404"));

    // A project declares the pulled model by id alone: checked and built.
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("nml.toml"), "[project]\nname = \"pulled\"\n").unwrap();
    std::fs::create_dir_all(project.path().join("src")).unwrap();
    let declare = |output: &str| {
        format!(
            "pragma nml 0.1;\npragma solidity ^0.8.24;\nmodel Mlp {{\n    cid \"{}\";\n    input x: fixed<18>[1, 4];\n    output {output}: fixed<18>[1, 3];\n}}\ncontract C {{\n    function f(int256[4] calldata x) external returns (int256) {{\n        return (infer Mlp {{ x: x }}).{output}[0];\n    }}\n}}\n",
            ids[0][1]
        )
    };
    std::fs::write(project.path().join("src/C.nml"), declare("y")).unwrap();
    let built = nml(&["build", project.path().to_str().unwrap()]);
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    std::fs::write(project.path().join("src/C.nml"), declare("z")).unwrap();
    let wrong = nml(&["build", project.path().to_str().unwrap()]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("has no output `z`"));
    drop(gateway);

    // A lying gateway: the tampered leaf is refused.
    let (liar, url, ids) = start(true);
    let lied = nml(&["models", "pull", &ids[1][1], "--gateway", &url]);
    drop(liar);
    let _ = std::fs::remove_file(&script);
    assert!(!lied.status.success());
    // miette wraps long lines: compare without the layout.
    let said: String = String::from_utf8_lossy(&lied.stderr).chars().filter(|c| c.is_alphanumeric()).collect();
    assert!(said.contains("doesnotmatchitsid"), "{said}");
}
