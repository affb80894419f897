//! `nml new`: a project from one of the templates of `templates/projects/`,
//! embedded in the binary. `nml.toml` and `README.md` are tera templates
//! (`{{ name }}` is the project's name); every other file is copied as is.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use miette::{IntoDiagnostic, WrapErr, miette};

/// Arguments of `nml new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The directory to create; its name is the project's name.
    #[arg(required_unless_present = "list")]
    pub path: Option<PathBuf>,
    /// The template.
    #[arg(long, short, default_value = "dynamic-fee")]
    pub template: String,
    /// List the templates.
    #[arg(long)]
    pub list: bool,
    /// Write into a directory that is not empty (files of the template are overwritten).
    #[arg(long)]
    pub force: bool,
}

/// One file of a template.
struct File {
    path: &'static str,
    bytes: &'static [u8],
}

/// A project template.
struct Template {
    name: &'static str,
    about: &'static str,
    files: &'static [File],
}

macro_rules! files {
    ($template:literal: $($path:literal),* $(,)?) => {
        &[$(File {
            path: $path,
            bytes: include_bytes!(concat!("../../templates/projects/", $template, "/", $path)),
        }),*]
    };
}

const TEMPLATES: &[Template] = &[
    Template {
        name: "dynamic-fee",
        about: "an AMM pool whose swap fee follows a volatility model",
        files: files!("dynamic-fee": "nml.toml", "README.md", "src/DynamicFeePool.nml", "src/Token.sol",
            "models/volatility.onnx", "test/DynamicFeePool.t.sol", "test/fixtures/hours.json"),
    },
    Template {
        name: "credit-risk",
        about: "a lending pool whose borrow limit follows a risk-score model, with liquidation",
        files: files!("credit-risk": "nml.toml", "README.md", "src/LendingPool.nml", "src/Token.sol",
            "models/risk.onnx", "test/LendingPool.t.sol"),
    },
    Template {
        name: "trading-agent",
        about: "a vault that rebalances between two tokens on a price-direction model, with position limits",
        files: files!("trading-agent": "nml.toml", "README.md", "src/TradingVault.nml", "src/Market.sol",
            "src/Token.sol", "models/direction.onnx", "test/TradingVault.t.sol", "test/VaultInvariants.t.sol"),
    },
    Template {
        name: "verified-payout",
        about: "an insurance vault that pays on a model at once, and the rest only once its TEE proof has settled",
        files: files!("verified-payout": "nml.toml", "README.md", "src/PayoutVault.nml", "src/Token.sol",
            "models/damage.onnx", "test/PayoutVault.t.sol"),
    },
];

/// The files rendered with tera; the rest are copied.
fn rendered(path: &str) -> bool {
    matches!(path, "nml.toml" | "README.md")
}

/// Runs `nml new`.
pub fn run(args: NewArgs) -> miette::Result<ExitCode> {
    if args.list {
        let mut out = String::new();
        for t in TEMPLATES {
            out.push_str(&format!("{:<14} {}\n", t.name, t.about));
        }
        print!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    let template = TEMPLATES.iter().find(|t| t.name == args.template).ok_or_else(|| {
        let names: Vec<&str> = TEMPLATES.iter().map(|t| t.name).collect();
        miette!(
            help = "`nml new --list` describes them",
            "unknown template `{}`: the templates are {}",
            args.template,
            names.join(", ")
        )
    })?;
    let path = args.path.ok_or_else(|| miette!("give the directory to create"))?;
    let name = project_name(&path)?;
    if !args.force && path.read_dir().is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(miette!(
            help = "choose another directory, or pass --force to write the template's files into it",
            "{} exists and is not empty",
            path.display()
        ));
    }
    let mut context = tera::Context::new();
    context.insert("name", &name);
    for file in template.files {
        let target = path.join(file.path);
        let bytes = if rendered(file.path) {
            let text = std::str::from_utf8(file.bytes).into_diagnostic()?;
            tera::Tera::one_off(text, &context, false)
                .map_err(|e| miette!("template `{}`, {}: {e}", template.name, file.path))?
                .into_bytes()
        } else {
            file.bytes.to_vec()
        };
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).into_diagnostic().wrap_err_with(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&target, bytes).into_diagnostic().wrap_err_with(|| format!("writing {}", target.display()))?;
    }
    // What nml writes into a project is not its source (one kept already stays).
    let ignore = path.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(&ignore, GITIGNORE)
            .into_diagnostic()
            .wrap_err_with(|| format!("writing {}", ignore.display()))?;
    }
    println!(
        "Created `{name}` from the {} template in {}\n\nNext:\n  cd {}\n  nml test",
        template.name,
        path.display(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The `.gitignore` of a new project: `nml build`'s and `nml coverage`'s
/// outputs and caches.
const GITIGNORE: &str = "out/\ncache/\nlcov.info\n";

/// The last component of `path`, which must make a valid project name.
fn project_name(path: &Path) -> miette::Result<String> {
    // `nml new .` takes the current directory's name.
    let absolute = if path.file_name().is_none() { std::path::absolute(path).ok() } else { None };
    let path = absolute.as_deref().map(normalize).unwrap_or_else(|| path.to_path_buf());
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| miette!("{} does not end in a directory name", path.display()))?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(miette!("`{name}` is not a project name: use letters, digits, `-` and `_`"));
    }
    Ok(name.to_owned())
}

/// `path` without `.` and with `..` applied.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of a template folder is embedded, so `nml new` never
    /// forgets one that the folder (and its example) has.
    #[test]
    fn every_template_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/projects");
        for t in TEMPLATES {
            let mut on_disk = Vec::new();
            let mut stack = vec![root.join(t.name)];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                    let p = entry.path();
                    let rel = p.strip_prefix(root.join(t.name)).unwrap().to_string_lossy().into_owned();
                    if rel == "out" || rel == "cache" {
                        continue;
                    }
                    if p.is_dir() {
                        stack.push(p);
                    } else {
                        on_disk.push(rel);
                    }
                }
            }
            on_disk.sort();
            let mut embedded: Vec<String> = t.files.iter().map(|f| f.path.to_owned()).collect();
            embedded.sort();
            assert_eq!(on_disk, embedded, "template {}", t.name);
        }
    }

    #[test]
    fn names_must_be_plain() {
        assert_eq!(project_name(Path::new("a/my-pool")).unwrap(), "my-pool");
        assert!(project_name(Path::new("a/my pool")).is_err());
        let here = std::env::current_dir().unwrap();
        let expected = here.file_name().unwrap().to_str().unwrap();
        if expected.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            assert_eq!(project_name(Path::new(".")).unwrap(), expected);
        }
    }
}
