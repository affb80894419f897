//! Front-end speed: `Project::open` + `Frontend::run` (parse, checks,
//! lowering, codegen, solang validation; no solc) on a generated 10,000-line
//! `.nml` file with 200 model declarations and contracts that call them.
//!
//! Run with `cargo bench -p nml-compiler --bench frontend`; the goal is
//! ≥ 100,000 lines/s (see docs/benchmarks.md). `NML_BENCH_ITERS` sets the
//! number of timed runs (default 30); `NML_BENCH_KEEP=path` writes the
//! generated file there for profiling.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use nml_compiler::Frontend;
use nml_compiler::diagnostics::FileId;
use nml_compiler::project::Project;
use nml_compiler::sema;
use nml_compiler::{emit, lower, syntax};
use nml_protocol::ModelId;

const LINES: usize = 10_000;
const MODELS: usize = 200;

fn main() {
    let iters: usize = std::env::var("NML_BENCH_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let src = generate(LINES, MODELS);
    assert_eq!(src.lines().count(), LINES, "the generator must produce exactly {LINES} lines");
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("Bench.nml");
    std::fs::write(&path, &src).expect("write the generated file");
    if let Some(keep) = std::env::var_os("NML_BENCH_KEEP") {
        std::fs::write(&keep, &src).expect("write NML_BENCH_KEEP");
    }

    // A front end that stops at the first error would be fast for the wrong
    // reason: the generated file must compile cleanly.
    let fe = frontend(&path);
    let errors: Vec<_> = fe.diagnostics.iter().chain(&fe.solang_rejections).filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "the generated file does not compile: {errors:#?}");
    let generated: usize = fe.units.iter().map(|u| u.text.lines().count()).sum();
    println!(
        "input: {LINES} lines, {} bytes, {MODELS} models; output: {generated} lines of Solidity, {} manifests",
        src.len(),
        fe.manifests.len()
    );

    let parse = measure(iters, || {
        syntax::parse(FileId(0), &src).expect("the generated file parses");
    });
    report("parse only (syntax::parse)", &parse);
    let full = measure(iters, || {
        frontend(&path);
    });
    report("front end (Project::open + Frontend::run)", &full);

    // Where the time goes: the stages of `Frontend::run`, each alone. What
    // the front end spends beyond them is solang-parser validating the
    // generated Solidity (and diagnostics bookkeeping).
    let project = Project::open(&path).expect("open the generated file");
    let open = measure(iters, || {
        Project::open(&path).expect("open the generated file");
    });
    report("  Project::open (reads and parses)", &open);
    let analyze = measure(iters, || {
        sema::analyze(&project);
    });
    report("  sema::analyze", &analyze);
    let analysis = sema::analyze(&project);
    let lower = measure(iters, || {
        for (i, f) in project.files.iter().enumerate() {
            if let Some(unit) = &f.ast {
                lower::lower_file(&project, &analysis, i, unit);
            }
        }
    });
    report("  lower::lower_file (codegen)", &lower);
    let manifests = measure(iters, || {
        emit::manifests(&project, &analysis);
    });
    report("  emit::manifests", &manifests);
    let rest = median(&full).saturating_sub(median(&open) + median(&analyze) + median(&lower) + median(&manifests));
    println!("  the rest (solang-parser on the generated Solidity): {:.2} ms", ms(rest));
}

fn frontend(path: &Path) -> Frontend {
    Frontend::run(Project::open(path).expect("open the generated file"))
}

/// Runs `f` once to warm up, then `iters` times; returns sorted durations.
fn measure(iters: usize, mut f: impl FnMut()) -> Vec<Duration> {
    f();
    let mut times: Vec<Duration> = (0..iters.max(1))
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

fn report(what: &str, sorted: &[Duration]) {
    let median = median(sorted);
    let lines_per_s = LINES as f64 / median.as_secs_f64();
    println!(
        "{what}: median {:.2} ms (min {:.2}, max {:.2}, n={}) = {:.0} lines/s",
        ms(median),
        ms(sorted[0]),
        ms(sorted[sorted.len() - 1]),
        sorted.len(),
        lines_per_s
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A realistic file of exactly `lines` lines: `models` model declarations
/// (ids only, so no ONNX file is needed) with a mix of tensor types, two llms,
/// then contracts whose functions call the models by name and by position,
/// ask the llms and do ordinary Solidity work around the calls, padded with
/// plain Solidity functions to the line count.
fn generate(lines: usize, models: usize) -> String {
    let mut out = String::from("pragma nml 0.1;\npragma solidity ^0.8.24;\n\n");
    for m in 0..models {
        let id = ModelId::derive(format!("bench model {m}").as_bytes());
        let mode = ["vanilla", "tee", "zk"][m % 3];
        let n = 2 + m % 30;
        let _ = write!(
            out,
            "/// Bench model {m}: {n} features in, a score out.\n\
             model M{m} {{\n    cid    \"{id}\";\n    mode   {mode};\n    input  features: fixed<18>[1, {n}];\n    \
             input  bias: int[1];\n    output score: fixed<18>[1];\n    output logits: fixed<6>[1, 4];\n}}\n\n"
        );
    }
    out.push_str(
        "llm Analyst {\n    model       \"meta-llama/Llama-3.1-8B-Instruct\";\n    mode        tee;\n    \
         max_tokens  64;\n    temperature 0;\n    stop        [\"\\n\"];\n}\n\n\
         llm Writer {\n    model       \"meta-llama/Llama-3.1-8B-Instruct\";\n    max_tokens  256;\n}\n\n",
    );

    // Each contract calls four models; contracts go round the models until
    // every one is called, then plain Solidity fills the remaining lines.
    let mut body = String::new();
    let mut c = 0;
    let contract_lines = |c: usize| {
        let mut s = String::new();
        let _ = write!(
            s,
            "/// Bench contract {c}.\ncontract C{c} {{\n    int256 public last;\n    uint256 public calls;\n    \
             event Scored(uint256 indexed model, int256 score);\n    error Simulated(uint256 model);\n\n"
        );
        for k in 0..4 {
            let m = (c * 4 + k) % models;
            let n = 2 + m % 30;
            if k % 2 == 0 {
                let _ = write!(
                    s,
                    "    function score{k}(int256[{n}] memory xs, int256 b) external returns (int256) {{\n        \
                     int256[1] memory bias;\n        bias[0] = b;\n        \
                     M{m}.Output memory o = infer M{m} {{ features: xs, bias: bias }};\n        \
                     if (o.simulated) revert Simulated({m});\n        calls += 1;\n        last = o.score[0];\n        \
                     emit Scored({m}, o.score[0]);\n        return o.score[0] + o.logits[3];\n    }}\n\n"
                );
            } else {
                let _ = write!(
                    s,
                    "    function score{k}(int256[{n}] memory xs) external view returns (int256 total) {{\n        \
                     int256[1] memory bias;\n        for (uint256 i = 0; i < xs.length; i++) {{\n            \
                     total += xs[i] / 2;\n        }}\n        bias[0] = total;\n        \
                     total = infer M{m}(xs, bias).score[0];\n    }}\n\n"
                );
            }
        }
        s.push_str(
            "    function mood(string memory topic) external returns (string memory) {\n        \
             return ask Analyst(string.concat(\"One word for \", topic));\n    }\n}\n\n",
        );
        s
    };
    let fixed = out.lines().count();
    while c * 4 < models || fixed + body.lines().count() + contract_lines(c).lines().count() + 8 <= lines {
        body.push_str(&contract_lines(c));
        c += 1;
    }
    out.push_str(&body);
    // Pad with a plain Solidity contract to exactly `lines` lines.
    let used = out.lines().count();
    assert!(used + 3 <= lines, "{models} models need more than {lines} lines");
    out.push_str("contract Padding {\n");
    for i in 0..lines - used - 2 {
        let _ = writeln!(out, "    uint256 public p{i};");
    }
    out.push_str("}\n");
    out
}
