//! What one `nml deploy` run deploys, and in which order.
//!
//! A deployment has a name (what `deployments/<chain id>.json` records it
//! under and what `@Name` arguments refer to), a contract and its
//! constructor arguments. Each `[deploy.contracts.<Name>]` of nml.toml is
//! one; every other deployable contract is one under its own name, with its
//! `[deploy.args]`. A run deploys the ones named on the command line, or
//! with `--all` every one, each after the deployments its `@Name` arguments
//! refer to.

use std::collections::{BTreeMap, BTreeSet};

use nml_compiler::project::DeployConfig;

/// A deployment a run makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Planned {
    /// What it is recorded under.
    pub(super) name: String,
    /// The contract it deploys.
    pub(super) contract: String,
    /// Its constructor arguments, `@Name` references not yet resolved.
    pub(super) args: Vec<String>,
}

impl Planned {
    /// The deployments its arguments refer to (`@Name`).
    pub(super) fn references(&self) -> impl Iterator<Item = &str> {
        self.args.iter().filter_map(|a| reference(a))
    }
}

/// The deployment an argument names, when it is `@Name`.
pub(super) fn reference(arg: &str) -> Option<&str> {
    arg.trim().strip_prefix('@').map(str::trim)
}

/// Why a run's deployments cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum PlanError {
    #[error(
        "[deploy.contracts.{deployment}] deploys `{contract}`, which is not a deployable contract of the project (deployable: {deployable})"
    )]
    UnknownContract { deployment: String, contract: String, deployable: String },
    #[error("`{0}` has arguments both in [deploy.args] and in [deploy.contracts.{0}]: keep one")]
    Twice(String),
    #[error("no deployment or deployable contract `{name}` in the project (deployable: {deployable})")]
    Unknown { name: String, deployable: String },
    #[error("name the contracts to deploy, or pass --all (deployable: {0})")]
    NothingChosen(String),
    #[error("--arg gives the constructor arguments of one contract; {0} are chosen")]
    ArgsForMany(usize),
    #[error("the deployments {0} refer to each other (`@Name` arguments) in a cycle")]
    Cycle(String),
    #[error("`{0}` refers to itself (`@{0}`): a deployment cannot take its own address")]
    SelfReference(String),
}

/// The deployments of the project: `[deploy.contracts]` and every other
/// deployable contract (`deployable`, by contract name) under its own name.
pub(super) fn deployments(deployable: &[String], config: &DeployConfig) -> Result<Vec<Planned>, PlanError> {
    let mut all: BTreeMap<String, Planned> = BTreeMap::new();
    for (name, entry) in &config.contracts {
        let contract = entry.contract.clone().unwrap_or_else(|| name.clone());
        if !deployable.contains(&contract) {
            return Err(PlanError::UnknownContract {
                deployment: name.clone(),
                contract,
                deployable: deployable.join(", "),
            });
        }
        if config.args.contains_key(name) {
            return Err(PlanError::Twice(name.clone()));
        }
        all.insert(name.clone(), Planned { name: name.clone(), contract, args: entry.args.clone() });
    }
    let named: BTreeSet<String> = all.values().map(|p| p.contract.clone()).collect();
    for contract in deployable {
        if !all.contains_key(contract) && !named.contains(contract) {
            let args = config.args.get(contract).cloned().unwrap_or_default();
            all.insert(contract.clone(), Planned { name: contract.clone(), contract: contract.clone(), args });
        }
    }
    Ok(all.into_values().collect())
}

/// What a run deploys: every deployment (`all`), or those `names` name (a
/// deployable contract that no deployment is named after stands for
/// itself), `cli_args` replacing the arguments of the one chosen; in an
/// order where each comes after those of the run its `@Name` arguments
/// refer to, otherwise as chosen.
pub(super) fn plan(
    deployable: &[String],
    config: &DeployConfig,
    names: &[String],
    all: bool,
    cli_args: &[String],
) -> Result<Vec<Planned>, PlanError> {
    let known = deployments(deployable, config)?;
    let listed = || {
        let mut names: Vec<&str> = known.iter().map(|p| p.name.as_str()).collect();
        names.extend(deployable.iter().map(String::as_str).filter(|c| !known.iter().any(|p| p.name == *c)));
        names.join(", ")
    };
    let mut chosen: Vec<Planned> = if all {
        known.clone()
    } else if names.is_empty() {
        return Err(PlanError::NothingChosen(listed()));
    } else {
        names
            .iter()
            .map(|name| match known.iter().find(|p| &p.name == name) {
                Some(planned) => Ok(planned.clone()),
                None if deployable.contains(name) => Ok(Planned {
                    name: name.clone(),
                    contract: name.clone(),
                    args: config.args.get(name).cloned().unwrap_or_default(),
                }),
                None => Err(PlanError::Unknown { name: name.clone(), deployable: listed() }),
            })
            .collect::<Result<_, _>>()?
    };
    if !cli_args.is_empty() {
        match chosen.as_mut_slice() {
            [one] => one.args = cli_args.to_vec(),
            many => return Err(PlanError::ArgsForMany(many.len())),
        }
    }
    if let Some(selfish) = chosen.iter().find(|p| p.references().any(|r| r == p.name)) {
        return Err(PlanError::SelfReference(selfish.name.clone()));
    }
    in_dependency_order(chosen)
}

/// `chosen` reordered so that each comes after the ones it refers to
/// (otherwise keeping its order); a cycle is an error.
fn in_dependency_order(chosen: Vec<Planned>) -> Result<Vec<Planned>, PlanError> {
    let names: BTreeSet<String> = chosen.iter().map(|p| p.name.clone()).collect();
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut waiting = chosen;
    let mut ordered = Vec::with_capacity(waiting.len());
    while !waiting.is_empty() {
        let ready = waiting.iter().position(|p| p.references().all(|r| !names.contains(r) || placed.contains(r)));
        let Some(at) = ready else {
            let cycle: Vec<&str> = waiting.iter().map(|p| p.name.as_str()).collect();
            return Err(PlanError::Cycle(cycle.join(", ")));
        };
        let next = waiting.remove(at);
        placed.insert(next.name.clone());
        ordered.push(next);
    }
    Ok(ordered)
}

#[cfg(test)]
mod tests {
    use nml_compiler::project::DeploymentConfig;

    use super::*;

    fn config(entries: &[(&str, Option<&str>, &[&str])]) -> DeployConfig {
        let contracts = entries
            .iter()
            .map(|(name, contract, args)| {
                let entry = DeploymentConfig {
                    contract: contract.map(str::to_owned),
                    args: args.iter().map(|a| (*a).to_owned()).collect(),
                };
                ((*name).to_owned(), entry)
            })
            .collect();
        DeployConfig { contracts, ..DeployConfig::default() }
    }

    fn deployable() -> Vec<String> {
        vec!["Pool".to_owned(), "Token".to_owned(), "Oracle".to_owned()]
    }

    fn names(plan: &[Planned]) -> Vec<&str> {
        plan.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn all_deploys_each_after_what_it_refers_to() {
        let config = config(&[
            ("Pool", None, &["@TokenB", "@TokenA"]),
            ("TokenB", Some("Token"), &["B", "B"]),
            ("TokenA", Some("Token"), &["A", "A"]),
        ]);
        let plan = plan(&deployable(), &config, &[], true, &[]).unwrap();
        // Token is deployed as TokenA and TokenB only; Oracle under its own name.
        assert_eq!(names(&plan), ["Oracle", "TokenA", "TokenB", "Pool"]);
        assert_eq!(plan[3].references().collect::<Vec<_>>(), ["TokenB", "TokenA"]);
        assert_eq!(plan[1].contract, "Token");
    }

    #[test]
    fn named_deployments_keep_their_order_unless_one_refers_to_a_later_one() {
        let config = config(&[("Pool", None, &["@TokenA"]), ("TokenA", Some("Token"), &["A", "A"])]);
        let chosen = ["Pool".to_owned(), "Oracle".to_owned(), "TokenA".to_owned()];
        let plan = plan(&deployable(), &config, &chosen, false, &[]).unwrap();
        assert_eq!(names(&plan), ["Oracle", "TokenA", "Pool"]);
        // A reference outside the run is resolved from the deployments file.
        let plan = super::plan(&deployable(), &config, &["Pool".to_owned()], false, &[]).unwrap();
        assert_eq!(names(&plan), ["Pool"]);
        // A contract deployed under other names can still be named itself.
        let token = super::plan(&deployable(), &config, &["Token".to_owned()], false, &["X".to_owned()]).unwrap();
        assert_eq!(token, [Planned { name: "Token".into(), contract: "Token".into(), args: vec!["X".into()] }]);
    }

    #[test]
    fn what_cannot_be_planned_says_why() {
        let unknown = config(&[("TokenA", Some("Tokn"), &[])]);
        assert!(matches!(plan(&deployable(), &unknown, &[], true, &[]), Err(PlanError::UnknownContract { .. })));
        let cycle = config(&[("A", Some("Pool"), &["@B"]), ("B", Some("Pool"), &["@A"])]);
        assert_eq!(plan(&deployable(), &cycle, &[], true, &[]), Err(PlanError::Cycle("A, B".into())));
        let mut twice = config(&[("Pool", None, &[])]);
        twice.args.insert("Pool".into(), vec![]);
        assert_eq!(plan(&deployable(), &twice, &[], true, &[]), Err(PlanError::Twice("Pool".into())));
        let selfish = config(&[("Pool", None, &["@Pool"])]);
        assert_eq!(plan(&deployable(), &selfish, &[], true, &[]), Err(PlanError::SelfReference("Pool".into())));
        let none = DeployConfig::default();
        assert!(matches!(plan(&deployable(), &none, &["Nope".into()], false, &[]), Err(PlanError::Unknown { .. })));
        assert!(matches!(plan(&deployable(), &none, &[], false, &[]), Err(PlanError::NothingChosen(_))));
        assert_eq!(plan(&deployable(), &none, &[], true, &["1".into()]), Err(PlanError::ArgsForMany(3)));
    }
}
