//! Dotted keys (`train.meta_lr`, `algorithm.inner_steps`) into a config document held as a
//! `toml::Value`: how a search sets its overrides, and an objective its seed.

use toml::Value;

/// Why a dotted key cannot be set: an empty part, or a prefix that is not a table.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{key}` {reason}")]
pub struct DottedKeyError {
    /// The dotted key.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// The value at a dotted key.
pub fn get_dotted<'a>(doc: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(doc, |v, k| v.as_table()?.get(k))
}

/// Sets a dotted key, creating missing tables; fails when a prefix is not a table.
pub fn set_dotted(doc: &mut Value, key: &str, value: Value) -> Result<(), DottedKeyError> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(DottedKeyError {
            key: key.to_string(),
            reason: "is not a valid dotted key".into(),
        });
    }
    let mut cur = doc;
    for (i, p) in parts.iter().enumerate() {
        let t = cur.as_table_mut().ok_or_else(|| DottedKeyError {
            key: key.to_string(),
            reason: format!(
                "`{}` is not a table in the base config",
                parts[..i].join(".")
            ),
        })?;
        if i + 1 == parts.len() {
            t.insert(p.to_string(), value);
            return Ok(());
        }
        cur = t
            .entry(p.to_string())
            .or_insert_with(|| Value::Table(toml::Table::new()));
    }
    unreachable!("non-empty key")
}
