//! Search spaces: dotted keys into a TOML document, each with a list of values, a range or a
//! log-uniform interval.

use super::error::{Result, SearchError};
use rand::Rng;
use std::collections::BTreeMap;
use toml::Value;

/// The values one key may take.
#[derive(Clone, Debug, PartialEq)]
pub enum Dim {
    /// `{ values = [a, b, ...] }`: these values, with their TOML types.
    Values(Vec<Value>),
    /// `{ range = [lo, hi, step] }`: `lo, lo + step, ...` up to `hi` (integers when all three
    /// are integers).
    Range(Vec<Value>),
    /// `{ log_uniform = [lo, hi] }`: `exp(U(ln lo, ln hi))`, rounded when `integer` (the base
    /// config holds an integer at that key). Random and successive-halving search only.
    LogUniform {
        /// Lower end (> 0).
        lo: f64,
        /// Upper end (>= lo).
        hi: f64,
        /// Round to an integer.
        integer: bool,
    },
}

impl Dim {
    /// Parses one entry of `[space]`; `base` is the base config's current value at the key.
    pub fn parse(key: &str, spec: &Value, base: Option<&Value>) -> Result<Dim> {
        let bad = |reason: String| SearchError::Space {
            key: key.to_string(),
            reason,
        };
        let t = spec.as_table().ok_or_else(|| {
            bad(format!(
                "must be a table: {{ values = [...] }}, {{ range = [lo, hi, step] }} or {{ log_uniform = [lo, hi] }}, got `{spec}`"
            ))
        })?;
        if t.len() != 1 {
            return Err(bad(format!(
                "needs exactly one of `values`, `range`, `log_uniform`; got [{}]",
                t.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        let (kind, v) = t.iter().next().expect("one entry");
        let arr = v
            .as_array()
            .ok_or_else(|| bad(format!("`{kind}` must be an array, got `{v}`")))?;
        match kind.as_str() {
            "values" => {
                if arr.is_empty() {
                    return Err(bad("`values` is empty: give at least one value".into()));
                }
                Ok(Dim::Values(arr.clone()))
            }
            "range" => Dim::range(arr).map_err(bad),
            "log_uniform" => Dim::log_uniform(arr, base).map_err(bad),
            other => Err(bad(format!(
                "unknown space kind `{other}` (expected values, range or log_uniform)"
            ))),
        }
    }

    /// `{ range = [lo, hi, step] }`: every value from `lo` to `hi` (at most 100000); the
    /// error says what is wrong.
    fn range(arr: &[Value]) -> std::result::Result<Dim, String> {
        if arr.len() != 3 {
            return Err(format!(
                "`range` must be [lo, hi, step], got {} numbers",
                arr.len()
            ));
        }
        let (lo, hi, step) = (
            number("range", &arr[0])?,
            number("range", &arr[1])?,
            number("range", &arr[2])?,
        );
        if step <= 0.0 {
            return Err(format!("`range` step must be > 0, got {step}"));
        }
        if hi < lo {
            return Err(format!("`range` is empty: hi = {hi} is below lo = {lo}"));
        }
        let ints = arr.iter().all(|x| x.is_integer());
        let n = ((hi - lo) / step + 1e-9).floor() as usize + 1;
        if n > 100_000 {
            return Err(format!("`range` has {n} values; at most 100000"));
        }
        let vals = (0..n)
            .map(|i| {
                let x = lo + step * i as f64;
                if ints {
                    Value::Integer(x.round() as i64)
                } else {
                    Value::Float((x * 1e12).round() / 1e12)
                }
            })
            .collect();
        Ok(Dim::Range(vals))
    }

    /// `{ log_uniform = [lo, hi] }`, integer when the base holds an integer at the key; the
    /// error says what is wrong.
    fn log_uniform(arr: &[Value], base: Option<&Value>) -> std::result::Result<Dim, String> {
        if arr.len() != 2 {
            return Err(format!(
                "`log_uniform` must be [lo, hi], got {} numbers",
                arr.len()
            ));
        }
        let (lo, hi) = (
            number("log_uniform", &arr[0])?,
            number("log_uniform", &arr[1])?,
        );
        if lo <= 0.0 {
            return Err(format!("`log_uniform` needs lo > 0, got {lo}"));
        }
        if hi < lo {
            return Err(format!(
                "`log_uniform` is empty: hi = {hi} is below lo = {lo}"
            ));
        }
        Ok(Dim::LogUniform {
            lo,
            hi,
            integer: base.is_some_and(Value::is_integer),
        })
    }

    /// Every value, when finite.
    pub fn grid(&self) -> Option<&[Value]> {
        match self {
            Dim::Values(v) | Dim::Range(v) => Some(v),
            Dim::LogUniform { .. } => None,
        }
    }

    /// A random value.
    pub fn sample(&self, rng: &mut impl Rng) -> Value {
        match self {
            Dim::Values(v) | Dim::Range(v) => v[rng.gen_range(0..v.len())].clone(),
            Dim::LogUniform { lo, hi, integer } => {
                self.log_value(rng.gen_range(lo.ln()..=hi.ln()), *integer)
            }
        }
    }

    fn log_value(&self, ln: f64, integer: bool) -> Value {
        let x = ln.exp();
        if integer {
            Value::Integer(x.round() as i64)
        } else {
            Value::Float(x)
        }
    }

    /// The values checked against the base config before any trial: all of a finite set, the
    /// ends of an interval.
    pub fn probes(&self) -> Vec<Value> {
        match self {
            Dim::Values(v) | Dim::Range(v) => v.clone(),
            Dim::LogUniform { lo, hi, integer } => vec![
                self.log_value(lo.ln(), *integer),
                self.log_value(hi.ln(), *integer),
            ],
        }
    }
}

/// A finite number of a `kind` entry (integers as floats).
fn number(kind: &str, x: &Value) -> std::result::Result<f64, String> {
    match x {
        Value::Integer(i) => Ok(*i as f64),
        Value::Float(f) if f.is_finite() => Ok(*f),
        other => Err(format!("`{kind}` needs numbers, got `{other}`")),
    }
}

/// The `[space]` table, flattened to dotted keys (`"algorithm.inner_lr" = {...}` and
/// `algorithm.inner_lr = {...}` are the same key).
pub fn flatten_space(t: &toml::Table) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, t: &toml::Table, out: &mut BTreeMap<String, Value>) {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v.as_table() {
                Some(sub) if !sub.is_empty() && sub.values().all(Value::is_table) => {
                    walk(&key, sub, out)
                }
                _ => {
                    out.insert(key, v.clone());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", t, &mut out);
    out
}

/// A value as compact text (`0.01`, `"adam"`, `[1, 2]`).
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}
