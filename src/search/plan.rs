//! The first phase of a search, before any trial runs: every override, every value of the
//! space and every budget applied to the base document and checked by the objective, then the
//! rung budgets and the candidate configs.

use super::error::{Result, SearchError};
use super::space::{self, flatten_space, Dim};
use super::{rung_budgets, Method, SearchConfig};
use crate::run::dotted::{get_dotted, set_dotted};
use crate::run::Objective;
use std::collections::{BTreeMap, HashSet};
use toml::Value;

/// One candidate: a value for every searched key.
pub type Point = BTreeMap<String, Value>;

/// What a search will run: the checked base document, the searched keys, the rung budgets and
/// the candidates.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The base document with `[fixed]` applied.
    pub fixed_doc: Value,
    /// The searched keys, sorted.
    pub keys: Vec<String>,
    /// The key a budget sets.
    pub budget_key: String,
    /// One budget per rung (`None`: the base's own).
    pub budgets: Vec<Option<usize>>,
    /// The candidate configs.
    pub candidates: Vec<Point>,
}

impl Plan {
    /// Validates `cfg` against `base` with `objective` (the error names the key at fault) and
    /// lays out the rungs and candidates. Nothing runs.
    pub fn new(cfg: &SearchConfig, base: &Value, objective: &dyn Objective) -> Result<Plan> {
        cfg.validate()?;
        objective
            .check(base)
            .map_err(|e| SearchError::value("base", format!("does not load: {e}")))?;
        let fixed_doc = apply_fixed(cfg, base, objective)?;
        let dims = parse_space(cfg, &fixed_doc, objective)?;
        let keys: Vec<String> = dims.keys().cloned().collect();
        let budget_key = cfg
            .budget_key
            .clone()
            .unwrap_or_else(|| objective.budget_key().to_string());
        let budgets = rung_plan(cfg, &fixed_doc, &budget_key)?;
        for b in budgets.iter().flatten() {
            let mut doc = fixed_doc.clone();
            set_dotted(&mut doc, &budget_key, Value::Integer(*b as i64))?;
            objective.check(&doc).map_err(|e| SearchError::Space {
                key: budget_key.clone(),
                reason: format!("(the budget) = {b} is rejected: {e}"),
            })?;
        }
        let candidates = candidates(cfg, &keys, &dims)?;
        Ok(Plan {
            fixed_doc,
            keys,
            budget_key,
            budgets,
            candidates,
        })
    }

    /// The config document of a trial: the candidate `point` at `budget` with run `seed`.
    pub fn doc_for(
        &self,
        objective: &dyn Objective,
        point: &Point,
        budget: Option<usize>,
        seed: Option<u64>,
    ) -> Result<Value> {
        let mut doc = self.fixed_doc.clone();
        for (k, v) in point {
            set_dotted(&mut doc, k, v.clone())?;
        }
        if let Some(b) = budget {
            set_dotted(&mut doc, &self.budget_key, Value::Integer(b as i64))?;
        }
        if let Some(s) = seed {
            objective.set_seed(&mut doc, s);
        }
        Ok(doc)
    }
}

/// The base with every `[fixed]` override applied, each checked as it is applied.
fn apply_fixed(cfg: &SearchConfig, base: &Value, objective: &dyn Objective) -> Result<Value> {
    let mut fixed_doc = base.clone();
    for (k, v) in flatten_space(&cfg.fixed) {
        set_dotted(&mut fixed_doc, &k, v.clone())?;
        objective
            .check(&fixed_doc)
            .map_err(|e| SearchError::Space {
                key: format!("fixed.{k}"),
                reason: format!("= {} is rejected: {e}", space::show(&v)),
            })?;
    }
    Ok(fixed_doc)
}

/// Every key of `[space]` parsed, and each of its probe values checked on the fixed document.
fn parse_space(
    cfg: &SearchConfig,
    fixed_doc: &Value,
    objective: &dyn Objective,
) -> Result<BTreeMap<String, Dim>> {
    let flat = flatten_space(&cfg.space);
    if flat.is_empty() {
        return Err(SearchError::value(
            "space",
            "is empty: give at least one key to search",
        ));
    }
    let mut dims = BTreeMap::new();
    for (k, spec) in &flat {
        let d = Dim::parse(k, spec, get_dotted(fixed_doc, k))?;
        for probe in d.probes() {
            let mut doc = fixed_doc.clone();
            set_dotted(&mut doc, k, probe.clone())?;
            objective.check(&doc).map_err(|e| SearchError::Space {
                key: k.clone(),
                reason: format!(
                    "= {} is rejected by the base config: {e}",
                    space::show(&probe)
                ),
            })?;
        }
        dims.insert(k.clone(), d);
    }
    Ok(dims)
}

/// The budget of each rung: successive halving's `min_budget * eta^r` up to `max_budget` (by
/// default the base's value at `budget_key`); one rung at `max_budget` otherwise.
fn rung_plan(
    cfg: &SearchConfig,
    fixed_doc: &Value,
    budget_key: &str,
) -> Result<Vec<Option<usize>>> {
    if cfg.method != Method::Halving {
        if cfg.min_budget.is_some() {
            return Err(SearchError::value(
                "min_budget",
                "only applies to method = \"halving\"",
            ));
        }
        return Ok(vec![cfg.max_budget]);
    }
    let min = cfg
        .min_budget
        .ok_or_else(|| SearchError::value("min_budget", "is required by method = \"halving\""))?;
    let max = match cfg.max_budget {
        Some(m) => m,
        None => get_dotted(fixed_doc, budget_key)
            .and_then(Value::as_integer)
            .map(|i| i as usize)
            .ok_or_else(|| {
                SearchError::value(
                    "max_budget",
                    format!("is required: the base has no integer `{budget_key}`"),
                )
            })?,
    };
    if min == 0 || max < min {
        return Err(SearchError::value(
            "min_budget",
            format!("= {min} must be >= 1 and at most max_budget = {max}"),
        ));
    }
    Ok(rung_budgets(min, max, cfg.eta)
        .into_iter()
        .map(Some)
        .collect())
}

/// The candidates: the grid (grid search, or halving with `trials = 0`), else `trials`
/// distinct random points drawn from `seed`.
fn candidates(
    cfg: &SearchConfig,
    keys: &[String],
    dims: &BTreeMap<String, Dim>,
) -> Result<Vec<Point>> {
    match (cfg.method, cfg.trials, cartesian(keys, dims)) {
        (Method::Grid, _, Some(g)) => Ok(g),
        (Method::Grid, _, None) => Err(SearchError::value(
            "method",
            "= \"grid\" cannot enumerate a `log_uniform` key; use values or range, or method = \"random\" / \"halving\" with `trials`",
        )),
        (Method::Halving, 0, Some(g)) => Ok(g),
        (_, 0, _) => Err(SearchError::value(
            "trials",
            "must be at least 1 for random sampling",
        )),
        (_, n, _) => Ok(sample(keys, dims, n, cfg.seed)),
    }
}

/// Up to `n` distinct random points (at most `100 n` draws) from the generator of `seed`.
fn sample(keys: &[String], dims: &BTreeMap<String, Dim>, n: usize, seed: u64) -> Vec<Point> {
    let mut rng = crate::data::seeded_rng(seed);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut tries = 0;
    while out.len() < n && tries < 100 * n {
        tries += 1;
        let p: Point = keys
            .iter()
            .map(|k| (k.clone(), dims[k].sample(&mut rng)))
            .collect();
        if seen.insert(serde_json::to_string(&p).expect("serialisable")) {
            out.push(p);
        }
    }
    out
}

/// Every combination of the keys' values (`None` when a key has no finite list).
fn cartesian(keys: &[String], dims: &BTreeMap<String, Dim>) -> Option<Vec<Point>> {
    let mut out = vec![BTreeMap::new()];
    for k in keys {
        let vals = dims[k].grid()?;
        out = out
            .into_iter()
            .flat_map(|p| {
                vals.iter().map(move |v| {
                    let mut q = p.clone();
                    q.insert(k.clone(), v.clone());
                    q
                })
            })
            .collect();
    }
    Some(out)
}
