//! Typed configuration read once from the environment at cold start, failing fast with a
//! message that names the missing or malformed variable.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {problem}")]
    Invalid { name: &'static str, problem: String },
}

/// How every binary reads its settings: once, from an [`Env`] (the process's, or a test's
/// lookup), failing with an error that names the missing or malformed variable.
pub trait FromEnv: Sized {
    fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError>;
}

/// Reads variables from a lookup function, so tests need not touch the process environment.
pub struct Env<F = fn(&str) -> Option<String>> {
    lookup: F,
}

impl Env {
    pub fn process() -> Self {
        Self {
            lookup: |name| std::env::var(name).ok(),
        }
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn from_fn(lookup: F) -> Self {
        Self { lookup }
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    pub fn optional(&self, name: &'static str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    pub fn parsed<T>(&self, name: &'static str) -> Result<Option<T>, ConfigError>
    where
        T: std::str::FromStr,
        T::Err: fmt::Display,
    {
        self.optional(name)
            .map(|raw| {
                raw.trim()
                    .parse()
                    .map_err(|e: T::Err| ConfigError::Invalid {
                        name,
                        problem: e.to_string(),
                    })
            })
            .transpose()
    }
}

/// The access policy from `PAST_DUE_GRACE_SECONDS` (default 7 days) and `LAPSE_MODE`
/// (`downgrade`, the default, or `disable`).
pub fn access_policy<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<domain::lifecycle::AccessPolicy, ConfigError> {
    use domain::lifecycle::{AccessPolicy, LapseMode};
    let lapse = match env.optional("LAPSE_MODE") {
        None => LapseMode::Downgrade,
        Some(raw) => LapseMode::parse(raw.trim()).ok_or(ConfigError::Invalid {
            name: "LAPSE_MODE",
            problem: "must be `downgrade` or `disable`".into(),
        })?,
    };
    let grace_seconds = env
        .parsed::<i64>("PAST_DUE_GRACE_SECONDS")?
        .unwrap_or(AccessPolicy::default().grace_seconds);
    Ok(AccessPolicy {
        grace_seconds,
        lapse,
    })
}

/// Secrets (Stripe's key) are `secrecy`'s: never in `Debug` output or logs, zeroed on drop.
pub use secrecy::{ExposeSecret, SecretString};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_variable_is_named() {
        let env = Env::from_fn(|_| None);
        assert_eq!(
            env.required("TABLE_NAME").err().map(|e| e.to_string()),
            Some("environment variable TABLE_NAME is not set".into())
        );
    }

    #[test]
    fn a_malformed_number_is_named() {
        let env = Env::from_fn(|_| Some("soon".into()));
        let err = env
            .parsed::<u64>("FREE_PERIOD_SECONDS")
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("FREE_PERIOD_SECONDS")));
    }

    #[test]
    fn the_access_policy_defaults_to_a_week_then_downgrade_and_names_a_bad_mode() {
        let policy = access_policy(&Env::from_fn(|_| None)).ok();
        assert_eq!(policy, Some(domain::lifecycle::AccessPolicy::default()));
        let bad = access_policy(&Env::from_fn(|n| {
            (n == "LAPSE_MODE").then(|| "delete".into())
        }));
        assert!(
            bad.err()
                .is_some_and(|e| e.to_string().contains("LAPSE_MODE"))
        );
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let shown = format!("{:?}", SecretString::from("sk_live_x"));
        assert!(
            !shown.contains("sk_live_x") && shown.contains("REDACTED"),
            "{shown}"
        );
    }
}
