//! Why a learner could not be configured or built.

/// Why a learner could not be configured or built.
#[derive(Debug, thiserror::Error)]
pub enum AlgorithmError {
    /// The method only classifies.
    #[error(
        "algorithm `{name}` cannot do regression (sinusoid): {why}{}",
        methods_that_can(capable)
    )]
    NoRegression {
        /// The method.
        name: &'static str,
        /// Why not.
        why: &'static str,
        /// The methods of the table that can (listed in the message).
        capable: &'static [&'static str],
    },
    /// A name that is not a known algorithm.
    #[error("unknown algorithm `{name}`; known algorithms: {}", known.join(", "))]
    UnknownAlgorithm {
        /// The name given.
        name: String,
        /// Every known name.
        known: &'static [&'static str],
    },
    /// A hyper-parameter is out of range.
    #[error("algorithm `{algorithm}`: `{field}` = {value} is invalid: {reason}")]
    InvalidParameter {
        /// The method.
        algorithm: &'static str,
        /// The field.
        field: &'static str,
        /// Its value, printed.
        value: String,
        /// What is allowed.
        reason: &'static str,
    },
    /// The backbone cannot be built.
    #[error("backbone {backbone}: {reason}")]
    InvalidBackbone {
        /// The backbone kind.
        backbone: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The task's output size is unusable.
    #[error("algorithm `{algorithm}`: {what} must be at least {min}, got {got}")]
    InvalidOutputs {
        /// The method.
        algorithm: &'static str,
        /// `n_way` or `outputs`.
        what: &'static str,
        /// The least allowed.
        min: usize,
        /// The value given.
        got: usize,
    },
    /// The config text does not parse (unknown name or field, wrong type...).
    #[error("invalid algorithm config: {0}")]
    Parse(String),
}

/// `; the methods that can are a, b` (nothing for an empty list).
fn methods_that_can(capable: &[&str]) -> String {
    if capable.is_empty() {
        String::new()
    } else {
        format!("; the methods that can are {}", capable.join(", "))
    }
}
