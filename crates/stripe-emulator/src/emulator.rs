//! The emulator: its state behind one lock, how it delivers webhooks, and where it keeps state.

use std::sync::{Arc, Mutex};

use crate::engine::store::State;

/// How webhook deliveries are retried.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// Stripe's retry delays are divided by this (3600: an hour becomes a second).
    pub retry_compression: f64,
    /// How long an endpoint may take to answer.
    pub timeout: std::time::Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            retry_compression: 3600.0,
            timeout: std::time::Duration::from_secs(10),
        }
    }
}

#[derive(Clone)]
pub struct Emulator {
    pub(crate) api_key: Arc<str>,
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) delivery: Delivery,
    pub(crate) wake: Arc<tokio::sync::Notify>,
    pub(crate) state_file: Option<Arc<std::path::Path>>,
}

impl Emulator {
    pub fn new(api_key: impl Into<Arc<str>>) -> Self {
        Self::with_delivery(api_key, Delivery::default())
    }

    pub fn with_delivery(api_key: impl Into<Arc<str>>, delivery: Delivery) -> Self {
        Self {
            api_key: api_key.into(),
            state: Arc::new(Mutex::new(State::default())),
            delivery,
            wake: Arc::new(tokio::sync::Notify::new()),
            state_file: None,
        }
    }

    /// Keeps state in `path`: loaded now (if the file exists), rewritten after every change.
    pub fn with_state_file(mut self, path: impl Into<std::path::PathBuf>) -> std::io::Result<Self> {
        let path: std::path::PathBuf = path.into();
        let loaded = State::load(&path)?;
        *self.lock() = loaded;
        self.state_file = Some(Arc::from(path.as_path()));
        Ok(self)
    }

    pub(crate) fn persist(&self, state: &State) {
        if let Some(path) = &self.state_file
            && let Err(e) = state.save(path)
        {
            tracing::error!(path = %path.display(), error = %e, "could not write the state file");
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
