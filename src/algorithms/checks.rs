//! The ranges a config's hyper-parameters must lie in, and [`ParamCheck`], which tests a
//! value against them and names the method, field and range in its error.

use super::error::AlgorithmError;

/// The largest scale, ridge penalty and similar multiplier a config may give.
pub const MAX_SCALE: f64 = 1e6;
/// The largest learning rate or step size (inner, outer, fine-tuning) a config may give.
pub const MAX_STEP_SIZE: f64 = 100.0;
/// The most inner (or evaluation) steps a config may give.
pub const MAX_INNER_STEPS: usize = 10_000;
/// The most fine-tuning steps (Baseline) a config may give.
pub const MAX_FINETUNE_STEPS: usize = 100_000;
/// The widest layer (hidden widths, MLP sizes, filters) a config may give.
pub const MAX_WIDTH: usize = 65_536;
/// The most classes (Baseline's `base_classes`) a config may give.
pub const MAX_CLASSES: usize = 1_000_000;

/// Range checks of one method's hyper-parameters; errors are
/// [`AlgorithmError::InvalidParameter`] naming the method, the field, its value and the range.
#[derive(Clone, Copy, Debug)]
pub struct ParamCheck {
    /// The method, as configs spell it.
    pub algorithm: &'static str,
}

impl ParamCheck {
    /// Checks for the method `algorithm`.
    pub fn new(algorithm: &'static str) -> Self {
        ParamCheck { algorithm }
    }

    /// The error for `field` = `value`, with what is allowed.
    pub fn invalid(
        &self,
        field: &'static str,
        value: String,
        reason: &'static str,
    ) -> AlgorithmError {
        AlgorithmError::InvalidParameter {
            algorithm: self.algorithm,
            field,
            value,
            reason,
        }
    }

    /// `value` must be finite and in `(0, MAX_STEP_SIZE]` (learning rates and step sizes).
    pub fn step_size(&self, field: &'static str, value: f64) -> Result<(), AlgorithmError> {
        let reason = "must be a finite number in (0, 100]";
        self.positive(field, value, MAX_STEP_SIZE, reason)
    }

    /// `value` must be finite and in `(0, MAX_SCALE]` (scales, ridge penalties).
    pub fn scale(&self, field: &'static str, value: f64) -> Result<(), AlgorithmError> {
        let reason = "must be a finite number in (0, 1e6]";
        self.positive(field, value, MAX_SCALE, reason)
    }

    /// `value` must be finite and in `(0, max]`; `reason` says so in the error.
    pub fn positive(
        &self,
        field: &'static str,
        value: f64,
        max: f64,
        reason: &'static str,
    ) -> Result<(), AlgorithmError> {
        if value.is_finite() && value > 0.0 && value <= max {
            Ok(())
        } else {
            Err(self.invalid(field, value.to_string(), reason))
        }
    }

    /// `value` must be in `[1, MAX_INNER_STEPS]` (inner and evaluation steps).
    pub fn steps(&self, field: &'static str, value: usize) -> Result<(), AlgorithmError> {
        self.count(
            field,
            value,
            MAX_INNER_STEPS,
            "must be at least 1 and at most 10000",
        )
    }

    /// `value` must be in `[1, max]`; `reason` says so in the error.
    pub fn count(
        &self,
        field: &'static str,
        value: usize,
        max: usize,
        reason: &'static str,
    ) -> Result<(), AlgorithmError> {
        if (1..=max).contains(&value) {
            Ok(())
        } else {
            Err(self.invalid(field, value.to_string(), reason))
        }
    }

    /// An inner loop's settings: `lr_field` = `lr` a step size, `inner_steps` and
    /// `eval_inner_steps` step counts, checked in that order.
    pub fn inner_loop(
        &self,
        lr_field: &'static str,
        lr: f64,
        inner_steps: usize,
        eval_inner_steps: usize,
    ) -> Result<(), AlgorithmError> {
        self.step_size(lr_field, lr)?;
        self.steps("inner_steps", inner_steps)?;
        self.steps("eval_inner_steps", eval_inner_steps)
    }
}
