//! Successive halving's bookkeeping on a synthetic objective with a known optimum, resume,
//! random sampling, and the errors raised before any trial runs.

use metalearn::search::{self, keep_count, rung_budgets, Objective, SearchConfig, SearchError};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use toml::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Synthetic {
    x: f64,
    budget: usize,
    #[serde(default)]
    seed: u64,
}

/// score = -(x - 0.37)^2, plus a perturbation that shrinks with the budget. Maximised.
struct Quadratic {
    calls: AtomicUsize,
}

impl Objective for Quadratic {
    fn check(&self, doc: &Value) -> Result<(), String> {
        let s: Synthetic = doc
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string())?;
        if s.budget == 0 {
            return Err("budget must be >= 1".into());
        }
        Ok(())
    }
    fn run(&self, doc: &Value, _run_dir: &Path) -> Result<f64, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let s: Synthetic = doc
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string())?;
        let wiggle = ((s.x * 97.0).sin() * 0.01) / s.budget as f64;
        Ok(-(s.x - 0.37).powi(2) + wiggle)
    }
    fn maximize(&self) -> bool {
        true
    }
    fn metric(&self) -> String {
        "score".into()
    }
    fn budget_key(&self) -> &str {
        "budget"
    }
    fn set_seed(&self, doc: &mut Value, seed: u64) {
        search::set_dotted(doc, "seed", Value::Integer(seed as i64)).unwrap();
    }
    fn out_dir_key(&self) -> Option<&str> {
        None
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn base() -> Value {
    toml::from_str("x = 0.5\nbudget = 1\n").unwrap()
}

fn cfg(text: &str) -> SearchConfig {
    SearchConfig::from_toml_str(text, Path::new("<test>")).unwrap()
}

#[test]
fn rung_arithmetic() {
    assert_eq!(rung_budgets(1, 9, 3), vec![1, 3, 9]);
    assert_eq!(rung_budgets(1, 10, 3), vec![1, 3, 9]);
    assert_eq!(rung_budgets(100, 900, 3), vec![100, 300, 900]);
    assert_eq!(rung_budgets(5, 5, 2), vec![5]);
    assert_eq!(keep_count(21, 3), 7);
    assert_eq!(keep_count(7, 3), 2);
    assert_eq!(keep_count(2, 3), 1);
}

#[test]
fn halving_bookkeeping_finds_the_optimum_and_resumes() {
    let out = tmp("halving");
    let c = cfg(r#"
        base = "unused"
        method = "halving"
        min_budget = 1
        max_budget = 9
        eta = 3
        workers = 2
        [space]
        x = { range = [0.0, 1.0, 0.05] }
    "#);
    let obj = Quadratic {
        calls: AtomicUsize::new(0),
    };
    let r = search::search(&c, &base(), &obj, &out, false).unwrap();
    assert_eq!(r.candidates.len(), 21);
    let budgets: Vec<Option<usize>> = r.rungs.iter().map(|g| g.budget).collect();
    assert_eq!(budgets, vec![Some(1), Some(3), Some(9)]);
    let sizes: Vec<usize> = r.rungs.iter().map(|g| g.scores.len()).collect();
    assert_eq!(sizes, vec![21, 7, 2]);
    let kept: Vec<usize> = r.rungs.iter().map(|g| g.kept.len()).collect();
    assert_eq!(kept, vec![7, 2, 1]);
    for w in r.rungs.windows(2) {
        // the next rung holds exactly the kept candidates, and they were the top scores
        let mut next: Vec<usize> = w[1].scores.iter().map(|s| s.0).collect();
        let mut k = w[0].kept.clone();
        next.sort();
        k.sort();
        assert_eq!(next, k);
        let top: Vec<usize> = w[0]
            .scores
            .iter()
            .take(w[0].kept.len())
            .map(|s| s.0)
            .collect();
        assert_eq!(top, w[0].kept);
        let worst_kept = w[0].scores[w[0].kept.len() - 1].1.unwrap();
        assert!(w[0].scores[w[0].kept.len()..]
            .iter()
            .all(|s| s.1.unwrap() <= worst_kept));
    }
    for g in &r.rungs {
        assert!(g
            .scores
            .windows(2)
            .all(|p| p[0].1.unwrap() >= p[1].1.unwrap()));
    }
    let best_x = r.candidates[r.best]["x"].as_float().unwrap();
    assert!((best_x - 0.35).abs() < 1e-9, "best x = {best_x}");
    assert_eq!(r.best_budget, Some(9));
    assert_eq!(r.ran, 30);
    assert_eq!(obj.calls.load(Ordering::SeqCst), 30);
    let csv = std::fs::read_to_string(out.join("trials.csv")).unwrap();
    assert_eq!(csv.lines().count(), 31);
    let best: Value =
        toml::from_str(&std::fs::read_to_string(out.join("best.toml")).unwrap()).unwrap();
    assert_eq!(best["budget"].as_integer(), Some(9));
    assert!((best["x"].as_float().unwrap() - 0.35).abs() < 1e-9);

    // Restart: nothing is redone.
    let r2 = search::search(&c, &base(), &obj, &out, false).unwrap();
    assert_eq!((r2.ran, r2.reused), (0, 30));
    assert_eq!(obj.calls.load(Ordering::SeqCst), 30);
    assert_eq!(r2.best, r.best);

    // Interrupted after the first rung (simulated by removing later trial files): only those rerun.
    let later: Vec<_> = r
        .trials
        .iter()
        .filter(|t| t.rung > 0)
        .map(|t| t.key.clone())
        .collect();
    for k in &later {
        std::fs::remove_file(out.join("trials").join(format!("{k}.json"))).unwrap();
    }
    let r3 = search::search(&c, &base(), &obj, &out, false).unwrap();
    assert_eq!((r3.ran, r3.reused), (later.len(), 30 - later.len()));
    assert_eq!(r3.best, r.best);
}

#[test]
fn grid_with_seeds_and_random_sampling() {
    let obj = Quadratic {
        calls: AtomicUsize::new(0),
    };
    let c = cfg(r#"
        base = "unused"
        method = "grid"
        seeds = [1, 2]
        max_budget = 4
        workers = 1
        [space]
        x = { values = [0.1, 0.4, 0.9] }
    "#);
    let r = search::search(&c, &base(), &obj, &tmp("grid"), false).unwrap();
    assert_eq!(r.ran, 6);
    assert!((r.candidates[r.best]["x"].as_float().unwrap() - 0.4).abs() < 1e-12);

    let c = cfg(r#"
        base = "unused"
        method = "random"
        trials = 6
        seed = 3
        [space]
        x = { log_uniform = [0.01, 1.0] }
    "#);
    let a = search::search(&c, &base(), &obj, &tmp("random_a"), false).unwrap();
    let b = search::search(&c, &base(), &obj, &tmp("random_b"), false).unwrap();
    assert_eq!(a.candidates, b.candidates);
    assert_eq!(a.candidates.len(), 6);
    for p in &a.candidates {
        let x = p["x"].as_float().unwrap();
        assert!((0.01..=1.0).contains(&x));
    }
}

fn expect_err(space: &str, method: &str, needle: &str) {
    let obj = Quadratic {
        calls: AtomicUsize::new(0),
    };
    let c = cfg(&format!(
        "base = \"unused\"\nmethod = \"{method}\"\ntrials = 3\n[space]\n{space}\n"
    ));
    let e = search::search(&c, &base(), &obj, &tmp("errors"), false).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(needle), "`{msg}` lacks `{needle}`");
    assert_eq!(
        obj.calls.load(Ordering::SeqCst),
        0,
        "a trial ran before the error"
    );
    let _: &SearchError = &e;
}

#[test]
fn bad_spaces_fail_before_any_trial() {
    // (space, method, a part of the error)
    let cases = [
        ("y = { values = [1, 2] }", "grid", "`y`"),
        ("y = { values = [1, 2] }", "grid", "unknown field"),
        ("x = { values = [] }", "grid", "empty"),
        ("x = { range = [1.0, 0.0, 0.1] }", "grid", "empty"),
        ("x = { range = [0.0, 1.0, 0.0] }", "grid", "step"),
        ("x = { values = [\"a\", 0.5] }", "grid", "invalid type"),
        ("budget = { values = [1.5] }", "grid", "`budget`"),
        ("x = { log_uniform = [0.0, 1.0] }", "random", "lo > 0"),
        ("x = { log_uniform = [0.1, 1.0] }", "grid", "log_uniform"),
        ("x = { between = [0, 1] }", "grid", "unknown space kind"),
        ("x = 0.5", "grid", "must be a table"),
        ("x.y = { values = [1] }", "grid", "`x.y`"),
        ("", "grid", "empty"),
    ];
    for (space, method, needle) in cases {
        expect_err(space, method, needle);
    }
}
