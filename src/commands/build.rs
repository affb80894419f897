//! `nml build` and `nml check`.

use std::path::PathBuf;
use std::process::ExitCode;

use miette::{IntoDiagnostic, miette};
use nml_compiler::build;
use nml_compiler::diagnostics::{Diagnostic, MessageFormat, Severity};

use super::common::{frontend_or_report, ms, print_diagnostics, solc_for};

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

/// Runs `nml build`.
pub fn run_build(args: BuildArgs) -> miette::Result<ExitCode> {
    let Some(fe) = frontend_or_report(args.path.as_deref(), args.message_format.into())? else {
        eprintln!("error: build failed with 1 error");
        return Ok(ExitCode::FAILURE);
    };
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
    let Some(fe) = frontend_or_report(args.path.as_deref(), args.message_format.into())? else {
        return Ok(ExitCode::FAILURE);
    };
    let mut diags = fe.diagnostics.clone();
    if !fe.solang_rejections.is_empty() {
        match solc_for(&fe) {
            Ok(solc) => {
                let verdict = nml_compiler::solc::parse_only(&solc, &fe.solc_sources()).into_diagnostic()?;
                for d in verdict.iter().filter(|d| d.severity == Severity::Error) {
                    let span = d.start.zip(d.end);
                    let code = d.diagnostic_code();
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
