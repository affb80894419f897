//! solc end to end: provisioning from npm into the cache, the Node shim behind
//! solc's command line, and the compiler's standard-JSON driver on top.
//!
//! These tests install the npm package `solc` on first use (into nml's usual
//! cache, so later runs only check it) and spend about a second of Node
//! start-up per solc call.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Barrier, OnceLock};

use nml::toolchain::solc::{DEFAULT_VERSION, Origin, Resolver, SolcInstall, ToolchainError};
use nml_compiler::diagnostics::Severity;
use nml_compiler::solc::{self, SolcJob};

/// A resolver that ignores `NML_SOLC` and `PATH`, so the npm path is what is
/// tested whatever the machine has installed.
fn npm_only(cache_dir: Option<PathBuf>) -> Resolver {
    Resolver { env_override: None, search_path: None, cache_dir, progress: false }
}

/// The npm solc, resolved once per test binary.
fn solc() -> &'static SolcInstall {
    static SOLC: OnceLock<SolcInstall> = OnceLock::new();
    SOLC.get_or_init(|| {
        npm_only(nml::toolchain::cache_dir()).resolve(&["^0.8.24".to_owned()], None).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn sources(items: &[(&str, &str)]) -> BTreeMap<String, String> {
    items.iter().map(|(name, text)| ((*name).to_owned(), (*text).to_owned())).collect()
}

fn version_line(solc: &Path) -> String {
    let out = Command::new(solc).arg("--version").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("solc, the solidity compiler commandline interface"));
    lines.next().unwrap().to_owned()
}

#[test]
fn provisions_from_npm_then_only_checks_the_cache() {
    let first = solc();
    assert!(matches!(first.origin, Origin::Installed | Origin::Cache), "{first:?}");
    assert_eq!(first.version.to_string(), DEFAULT_VERSION);
    assert!(first.path.ends_with(format!("solc/{DEFAULT_VERSION}/solc")), "{}", first.path.display());

    let again = npm_only(nml::toolchain::cache_dir())
        .resolve(&["^0.8.24".to_owned(), ">=0.8.0 <0.9.0".to_owned()], None)
        .unwrap();
    assert_eq!(again.origin, Origin::Cache);
    assert_eq!(again.path, first.path);

    let line = version_line(&first.path);
    assert_eq!(line, format!("Version: {}", first.long_version));
    assert!(line.starts_with(&format!("Version: {DEFAULT_VERSION}+commit.")), "{line}");
}

#[test]
fn compiles_a_contract_with_imports_from_memory_and_disk() {
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(project.path().join("lib")).unwrap();
    std::fs::write(
        project.path().join("lib/Disk.sol"),
        "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\nlibrary Disk { function two() internal pure returns (uint256) { return 2; } }\n",
    )
    .unwrap();
    let job = SolcJob {
        sources: sources(&[
            (
                "src/Counter.nml",
                "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\nimport \"@nml/og/Lib.sol\";\nimport \"lib/Disk.sol\";\n\
                 contract Counter {\n    uint256 public count;\n    event Set(uint256 v);\n\
                     function set(uint256 v) external { count = v * Lib.one() * Disk.two(); emit Set(v); }\n}\n",
            ),
            (
                "@nml/og/Lib.sol",
                "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\nlibrary Lib { function one() internal pure returns (uint256) { return 1; } }\n",
            ),
        ]),
        optimizer_runs: Some(200),
        evm_version: Some("cancun".to_owned()),
        via_ir: false,
        remappings: Vec::new(),
        base_path: Some(project.path().to_owned()),
        ast: false,
    };
    let output = solc::compile(&solc().binary(), &job).unwrap();
    assert!(!output.has_errors(), "{:#?}", output.diagnostics);
    assert_eq!(output.solc_version, solc().long_version);

    let counter = output.contracts.iter().find(|c| c.name == "Counter").expect("Counter compiled");
    assert_eq!(counter.source, "src/Counter.nml");
    let ids = counter.artifact.method_identifiers.as_ref().unwrap();
    assert_eq!(ids.get("set(uint256)").map(String::as_str), Some("60fe47b1"));
    assert_eq!(ids.get("count()").map(String::as_str), Some("06661abd"));
    let abi = counter.artifact.abi.as_ref().unwrap();
    assert!(abi.functions.contains_key("set") && abi.events.contains_key("Set"));
    let bytecode = counter.artifact.bytecode.as_ref().and_then(|b| b.object.as_bytes()).unwrap();
    assert!(bytecode.len() > 100, "{} bytes", bytecode.len());

    let out = project.path().join("out");
    let written = solc::write_artifacts(&out, &output).unwrap();
    assert!(written.contains(&("src/Counter.nml".to_owned(), "Counter".to_owned())), "{written:?}");
    assert!(written.contains(&("@nml/og/Lib.sol".to_owned(), "Lib".to_owned())), "{written:?}");
    assert!(written.contains(&("lib/Disk.sol".to_owned(), "Disk".to_owned())), "{written:?}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("Counter.sol/Counter.json")).unwrap()).unwrap();
    for key in ["abi", "bytecode", "deployedBytecode", "methodIdentifiers", "metadata", "rawMetadata"] {
        assert!(!json[key].is_null(), "artifact lacks {key}: {json:#}");
    }
    assert!(json["bytecode"]["object"].as_str().unwrap().starts_with("0x6080"));
    assert!(json["deployedBytecode"]["sourceMap"].is_string());
    assert_eq!(json["metadata"]["settings"]["optimizer"]["runs"], 200);
    assert_eq!(json["metadata"]["settings"]["evmVersion"], "cancun");
}

#[test]
fn a_type_error_points_at_its_bytes() {
    // Multi-byte characters before the error: solc's offsets count bytes.
    let text = "// SPDX-License-Identifier: MIT\n// Grüße — ünïcödé\npragma solidity ^0.8.24;\n\
                contract C {\n    function f() external pure returns (uint256) {\n        uint256 x = \"nope\";\n        return x;\n    }\n}\n";
    let job = SolcJob { sources: sources(&[("src/C.nml", text)]), ..SolcJob::default() };
    let output = solc::compile(&solc().binary(), &job).unwrap();
    assert!(output.contracts.is_empty());
    let errors: Vec<_> = output.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = errors[0];
    assert_eq!(e.kind, "TypeError");
    assert_eq!(e.code.as_deref(), Some("9574"));
    assert_eq!(e.source.as_deref(), Some("src/C.nml"));
    let start = text.find("uint256 x = \"nope\"").unwrap();
    let end = start + "uint256 x = \"nope\"".len();
    assert_eq!((e.start, e.end), (Some(start), Some(end)), "{}", e.formatted);
    assert!(e.message.contains("not implicitly convertible"), "{}", e.message);
}

#[test]
fn parse_only_is_solcs_verdict() {
    let verdict = solc::parse_only(
        &solc().binary(),
        &sources(&[
            ("src/Bad.nml", "pragma solidity ^0.8.24;\ncontract B {\n    function f( {}\n}\n"),
            // solang-parser 0.3.5 rejects both of these; solc accepts them.
            ("src/Transient.sol", "pragma solidity ^0.8.28;\ncontract T { uint256 transient t; }\n"),
            ("src/Layout.sol", "pragma solidity ^0.8.29;\ncontract L layout at 10 { uint256 x; }\n"),
        ]),
    )
    .unwrap();
    let errors: Vec<_> = verdict.iter().filter(|d| d.severity == Severity::Error).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].kind, "ParserError");
    assert_eq!(errors[0].source.as_deref(), Some("src/Bad.nml"));
    let at = "pragma solidity ^0.8.24;\ncontract B {\n    function f( ".len();
    assert_eq!(errors[0].start, Some(at), "{}", errors[0].formatted);
}

#[test]
fn a_large_standard_json_output_survives_the_pipe() {
    let functions: String = (0..300)
        .map(|i| format!("    function f{i}(uint256 a, address b) external pure returns (uint256, address) {{ return (a + {i}, b); }}\n"))
        .collect();
    let input = serde_json::json!({
        "language": "Solidity",
        "sources": { "Big.sol": { "content": format!("pragma solidity ^0.8.24;\ncontract Big {{\n{functions}}}\n") } },
        "settings": { "outputSelection": { "*": { "*": ["abi", "evm.bytecode", "evm.methodIdentifiers"], "": ["ast"] } } }
    });
    let mut child = Command::new(&solc().path)
        .arg("--standard-json")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.len() > 1 << 20, "only {} bytes: too small to test truncation", out.stdout.len());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("complete JSON");
    assert_eq!(json["contracts"]["Big.sol"]["Big"]["abi"].as_array().map(Vec::len), Some(300));
}

#[test]
fn two_threads_installing_at_once_share_one_install() {
    let cache = tempfile::tempdir().unwrap();
    let barrier = Barrier::new(2);
    let results: Vec<Result<SolcInstall, ToolchainError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    npm_only(Some(cache.path().to_owned())).resolve(&["^0.8.0".to_owned()], None)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let installs: Vec<SolcInstall> = results.into_iter().map(|r| r.unwrap_or_else(|e| panic!("{e}"))).collect();
    assert_eq!(installs[0].path, installs[1].path);
    let mut origins = [installs[0].origin, installs[1].origin].map(|o| format!("{o:?}"));
    origins.sort();
    assert_eq!(origins, ["Cache", "Installed"], "exactly one thread installs; the other waits for its lock");
    let leftovers: Vec<String> = std::fs::read_dir(cache.path().join("solc"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(version_line(&installs[0].path), format!("Version: {}", installs[0].long_version));
}

#[test]
fn a_bad_nml_solc_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let not_solc = dir.path().join("not-solc");
    std::fs::write(&not_solc, "#!/bin/sh\necho hello\n").unwrap();
    make_executable(&not_solc);
    for (path, why) in [
        (PathBuf::from("/nonexistent/solc"), "cannot read it"),
        (dir.path().to_owned(), "not a file"),
        (not_solc.clone(), "no `Version: x.y.z` line"),
    ] {
        let resolver = Resolver { env_override: Some(path.clone()), ..npm_only(None) };
        let err = resolver.resolve(&[], None).unwrap_err();
        assert!(matches!(err, ToolchainError::BadOverride { .. }), "{err}");
        let message = err.to_string();
        assert!(message.starts_with(&format!("NML_SOLC={} is not a usable solc", path.display())), "{message}");
        assert!(message.contains(why) && message.contains("help: point NML_SOLC at a solc executable"), "{message}");
    }
}

#[test]
fn a_native_solc_on_path_is_used_when_it_fits() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("solc");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'solc, the solidity compiler commandline interface'\necho 'Version: 0.8.30+commit.73712a01.Linux.g++'\n",
    )
    .unwrap();
    make_executable(&fake);
    let resolver = Resolver { search_path: Some(dir.path().as_os_str().to_owned()), ..npm_only(None) };

    let found = resolver.resolve(&["^0.8.24".to_owned()], None).unwrap();
    assert_eq!(
        (found.origin, found.path.as_path(), found.version.to_string()),
        (Origin::Path, fake.as_path(), "0.8.30".to_owned())
    );
    assert_eq!(resolver.resolve(&[], Some("0.8.30")).unwrap().origin, Origin::Path);
    // Neither a pragma it does not satisfy nor a different pin takes it; with
    // no cache to install into, that is an error naming what to do.
    for (reqs, pin) in [(vec!["^0.8.31".to_owned()], None), (vec![], Some("0.8.29"))] {
        let err = resolver.resolve(&reqs, pin).unwrap_err();
        assert!(matches!(err, ToolchainError::NoCacheDir { .. }), "{err}");
        assert!(err.to_string().contains("NML_SOLC=/path/to/solc"), "{err}");
    }
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The version the resolver read is handed to the compiler: one `nml build`
/// starts solc twice (`--version` to check the override, then the
/// standard-JSON build),
/// not a third time for foundry-compilers to ask the version again.
#[test]
fn a_build_starts_solc_once_past_the_version_check() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("starts.log");
    let wrapper = dir.path().join("solc");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\necho \"$1\" >> '{}'\nexec '{}' \"$@\"\n", log.display(), solc().path.display()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let project = dir.path().join("p");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(project.join("nml.toml"), "[project]\nname = \"p\"\n").unwrap();
    std::fs::write(
        project.join("src/C.sol"),
        "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\ncontract C {}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nml"))
        .args(["build"])
        .current_dir(&project)
        .env("NML_SOLC", &wrapper)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let starts = std::fs::read_to_string(&log).unwrap();
    let starts: Vec<&str> = starts.lines().collect();
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert_eq!(starts.iter().filter(|a| **a == "--version").count(), 1, "{starts:?}");
}
