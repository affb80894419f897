//! `nml build` and `nml check`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use miette::{IntoDiagnostic, miette};
use nml_compiler::diagnostics::{self, Diagnostic, MessageFormat, Severity, SourceDb};
use nml_compiler::project::Project;
use nml_compiler::solc::SolcBinary;
use nml_compiler::{Frontend, build};

use crate::toolchain;

/// How diagnostics are printed.
#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub enum MessageFormatArg {
    /// Reports like rustc's.
    #[default]
    Human,
    /// One JSON object per line (for editors and CI).
    Json,
}

impl From<MessageFormatArg> for MessageFormat {
    fn from(a: MessageFormatArg) -> Self {
        match a {
            MessageFormatArg::Human => Self::Human,
            MessageFormatArg::Json => Self::Json,
        }
    }
}

/// Arguments of `nml build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// A project directory (with nml.toml) or a single .nml/.sol file [default: .]
    pub path: Option<PathBuf>,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t)]
    pub message_format: MessageFormatArg,
    /// Rebuild even when nothing changed.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `nml check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A project directory (with nml.toml) or a single .nml/.sol file [default: .]
    pub path: Option<PathBuf>,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t)]
    pub message_format: MessageFormatArg,
}

/// Opens a project and runs the front end.
pub fn frontend(path: Option<&Path>) -> miette::Result<Frontend> {
    let path = path.unwrap_or(Path::new("."));
    let project = Project::open(path).map_err(|e| miette!("{e}"))?;
    Ok(Frontend::run(project))
}

/// Resolves solc for a project: `nml.toml`'s pin, else the sources' pragmas.
pub fn solc_for(fe: &Frontend) -> Result<SolcBinary, String> {
    let pragmas = fe.project.solidity_pragmas();
    let pinned = fe.project.config.project.solc.as_deref();
    toolchain::solc::resolve(&pragmas, pinned, std::io::stderr().is_terminal())
        .map(|s| s.binary())
        .map_err(|e| e.to_string())
}

/// Runs `nml build`.
pub fn run_build(args: BuildArgs) -> miette::Result<ExitCode> {
    let fe = frontend(args.path.as_deref())?;
    if args.force {
        let _ = std::fs::remove_file(fe.project.root.join(build::CACHE_FILE));
    }
    let out = build::build(&fe, &|| solc_for(&fe)).map_err(|e| miette!("{e}"))?;
    print_diagnostics(&fe.project.db, &out.diagnostics, args.message_format.into());
    if out.has_errors() {
        let n = out.diagnostics.iter().filter(|d| d.is_error()).count();
        eprintln!("error: build failed with {n} error{}", if n == 1 { "" } else { "s" });
        return Ok(ExitCode::FAILURE);
    }
    let n = out.contracts.len();
    let contracts = format!("{n} contract{}", if n == 1 { "" } else { "s" });
    if out.up_to_date {
        eprintln!(
            "No changes: {contracts} up to date in {}/ ({:.1} ms)",
            fe.project.config.project.out,
            ms(out.total_time)
        );
    } else {
        eprintln!(
            "Compiled {contracts} into {}/ in {:.0} ms (solc {:.0} ms)",
            fe.project.config.project.out,
            ms(out.total_time),
            ms(out.solc_time)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `nml check`: the front end, plus solc's parser when solang-parser
/// rejects something (solc is the authority on Solidity).
pub fn run_check(args: CheckArgs) -> miette::Result<ExitCode> {
    let fe = frontend(args.path.as_deref())?;
    let mut diags = fe.diagnostics.clone();
    if !fe.solang_rejections.is_empty() {
        match solc_for(&fe) {
            Ok(solc) => {
                let verdict = nml_compiler::solc::parse_only(&solc, &fe.solc_sources()).into_diagnostic()?;
                for d in verdict.iter().filter(|d| d.severity == Severity::Error) {
                    let span = d.start.zip(d.end);
                    let code = d.code.as_deref().map_or_else(|| "solc".to_owned(), |c| format!("solc::{c}"));
                    diags.push(fe.map_diagnostic(
                        d.source.as_deref().unwrap_or(""),
                        span,
                        d.severity,
                        &code,
                        d.message.clone(),
                    ));
                }
            }
            Err(why) => {
                for mut d in fe.solang_rejections.clone() {
                    d.help = Some(format!(
                        "solang-parser rejected this and solc, the final authority, is not available: {why}"
                    ));
                    diags.push(d);
                }
            }
        }
    }
    print_diagnostics(&fe.project.db, &diags, args.message_format.into());
    if diags.iter().any(Diagnostic::is_error) {
        return Ok(ExitCode::FAILURE);
    }
    eprintln!(
        "Checked {} file{}: no errors",
        fe.project.files.len(),
        if fe.project.files.len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints diagnostics to stderr (human) or stdout (JSON lines).
pub fn print_diagnostics(db: &SourceDb, diags: &[Diagnostic], format: MessageFormat) {
    if diags.is_empty() {
        return;
    }
    match format {
        MessageFormat::Human => {
            let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            eprint!("{}", diagnostics::render_human(db, diags, color, 100));
        }
        MessageFormat::Json => print!("{}", diagnostics::render_json(db, diags)),
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
