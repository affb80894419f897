//! Build speed through the real `nml` binary, per example project:
//!
//! - a no-op rebuild (`nml build` on unchanged sources) must not start solc:
//!   it runs with `NML_SOLC` pointing at a script that leaves a mark and
//!   fails, so a solc start fails the bench;
//! - a full build (`nml build --force`) next to solc alone on the same input:
//!   the standard JSON nml sends is captured once through a wrapper script,
//!   then piped into the same solc, with the same arguments and working
//!   directory. nml's own share is `(build - solc alone) / build`.
//!
//! Run with `cargo bench --bench build`; figures and goals are in
//! docs/benchmarks.md. `NML_BENCH_NOOP_ITERS` (default 30) and
//! `NML_BENCH_FULL_ITERS` (default 5) set the number of timed runs.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nml::commands::common::{frontend, solc_for};

const NML: &str = env!("CARGO_BIN_EXE_nml");

fn main() {
    let noop_iters = iters("NML_BENCH_NOOP_ITERS", 30);
    let full_iters = iters("NML_BENCH_FULL_ITERS", 5);
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut projects: Vec<PathBuf> =
        std::fs::read_dir(&examples).expect("examples/").flatten().map(|e| e.path()).collect();
    projects.retain(|p| p.join("nml.toml").is_file());
    projects.sort();
    println!("nml: {NML}");
    for project in projects {
        bench_project(&project, noop_iters, full_iters);
    }
}

fn bench_project(example: &Path, noop_iters: usize, full_iters: usize) {
    let name = example.file_name().unwrap_or_default().to_string_lossy().into_owned();
    // A copy, so that the example's own out/ and cache/ stay as they are.
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path().join(&name);
    copy_dir(example, &dir);
    let fe = frontend(Some(&dir)).expect("the example opens");
    let solc = std::fs::canonicalize(solc_for(&fe).expect("a solc for the example").path).expect("solc path");
    println!("\n== {name} (solc: {})", solc.display());

    // Full build, as a user runs it (the solc nml resolves by itself).
    let full = time(full_iters, || nml(&dir, &["build", "--force"], &[]));

    // What nml sends to solc: one build through a capturing wrapper.
    let capture = tmp.path().join("capture");
    std::fs::create_dir_all(&capture).expect("capture dir");
    let wrapper = script(
        tmp.path(),
        "solc-capture",
        &format!(
            "#!/bin/sh\n\
             n=$(ls '{c}' | grep -c '\\.args$')\n\
             printf '%s\\n' \"$@\" > '{c}/'$n.args\n\
             pwd > '{c}/'$n.cwd\n\
             tee '{c}/'$n.stdin | exec '{solc}' \"$@\"\n",
            c = capture.display(),
            solc = solc.display()
        ),
    );
    let _ = std::fs::remove_file(dir.join(nml_compiler::build::CACHE_FILE));
    nml(&dir, &["build"], &[("NML_SOLC", wrapper.as_os_str())]);
    let mut calls: Vec<(Vec<String>, PathBuf, PathBuf)> = Vec::new();
    for n in 0.. {
        let args = capture.join(format!("{n}.args"));
        let Ok(text) = std::fs::read_to_string(&args) else { break };
        let cwd = std::fs::read_to_string(capture.join(format!("{n}.cwd"))).expect("cwd");
        calls.push((text.lines().map(str::to_owned).collect(), cwd.trim().into(), capture.join(format!("{n}.stdin"))));
    }
    let starts: Vec<String> = calls.iter().map(|(args, ..)| args.join(" ")).collect();
    println!("solc processes one build starts (with NML_SOLC set): {}: {starts:?}", calls.len());
    let (args, cwd, stdin) =
        calls.iter().find(|(args, ..)| args.iter().any(|a| a == "--standard-json")).expect("a --standard-json call");
    let input_len = std::fs::metadata(stdin).map_or(0, |m| m.len());
    let alone = time(full_iters, || {
        let status = Command::new(&solc)
            .args(args)
            .current_dir(cwd)
            .stdin(std::fs::File::open(stdin).expect("captured input"))
            .stdout(Stdio::null())
            .status()
            .expect("run solc");
        assert!(status.success(), "solc alone failed");
    });
    let version = time(full_iters, || {
        let status = Command::new(&solc).arg("--version").stdout(Stdio::null()).status().expect("run solc --version");
        assert!(status.success(), "solc --version failed");
    });

    // No-op rebuild: the cache is warm after one build; a solc start leaves
    // `solc-started` and fails the build.
    nml(&dir, &["build"], &[]);
    let mark = tmp.path().join("solc-started");
    let trap = script(tmp.path(), "solc-trap", &format!("#!/bin/sh\ntouch '{}'\nexit 1\n", mark.display()));
    let noop = time(noop_iters, || nml(&dir, &["build"], &[("NML_SOLC", trap.as_os_str())]));
    assert!(!mark.exists(), "a no-op rebuild started solc");

    let (full_m, alone_m) = (median(&full), median(&alone));
    let share = (full_m.as_secs_f64() - alone_m.as_secs_f64()) / full_m.as_secs_f64();
    println!("{:<40}{}", "no-op rebuild (solc not started)", summary(&noop));
    println!("{:<40}{}", "full build (nml build --force)", summary(&full));
    println!("{:<40}{} ({input_len} bytes of standard JSON)", "solc alone, same input", summary(&alone));
    println!("{:<40}{}", "solc --version alone", summary(&version));
    println!("nml's own share of the full build: {:.1}% ({:.1} ms)", share * 100.0, ms(full_m) - ms(alone_m));
}

/// Runs the nml binary in `dir` with extra environment; panics on failure.
fn nml(dir: &Path, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) {
    let out = Command::new(NML)
        .args(args)
        .arg(dir)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run nml");
    assert!(out.status.success(), "nml {args:?} {} failed:\n{}", dir.display(), String::from_utf8_lossy(&out.stderr));
}

fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod script");
    path
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let name = entry.file_name();
        if name == "out" || name == "cache" {
            continue;
        }
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy file");
        }
    }
}

/// One warm-up run, then `n` timed runs, sorted.
fn time(n: usize, mut f: impl FnMut()) -> Vec<Duration> {
    f();
    let mut times: Vec<Duration> = (0..n.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn median(sorted: &[Duration]) -> Duration {
    sorted[sorted.len() / 2]
}

fn summary(sorted: &[Duration]) -> String {
    format!(
        "median {:8.1} ms  (min {:.1}, max {:.1}, n={})",
        ms(median(sorted)),
        ms(sorted[0]),
        ms(sorted[sorted.len() - 1]),
        sorted.len()
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn iters(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
