//! In-memory state: one collection per object type, in creation order, plus the idempotency
//! record. Everything sits behind one mutex, so each request is applied atomically.

use std::collections::HashMap;

use rand::Rng;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::params::Params;

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Collection {
    items: HashMap<String, Value>,
    order: Vec<String>,
}

impl Collection {
    pub fn insert(&mut self, id: String, object: Value) {
        if self.items.insert(id.clone(), object).is_none() {
            self.order.push(id);
        }
    }

    pub fn get(&self, id: &str) -> Option<&Value> {
        self.items.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Value> {
        self.items.get_mut(id)
    }

    pub fn remove(&mut self, id: &str) -> Option<Value> {
        self.order.retain(|o| o != id);
        self.items.remove(id)
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// A copy of the object, or Stripe's `resource_missing` error naming `object` and `param`.
    pub fn fetch(&self, object: &str, id: &str, param: &str) -> Result<Value, ApiError> {
        self.get(id)
            .cloned()
            .ok_or_else(|| ApiError::no_such(object, id, param))
    }

    pub fn contains(&self, id: &str) -> bool {
        self.items.contains_key(id)
    }

    /// Newest first, as Stripe lists.
    pub fn newest_first(&self) -> impl Iterator<Item = &Value> {
        self.order.iter().rev().filter_map(|id| self.items.get(id))
    }
}

/// A stored response to an idempotent request.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Replay {
    pub fingerprint: String,
    pub status: u16,
    pub body: Value,
}

/// Everything the emulator knows. Serialisable, for `--state-file`; deliveries still waiting
/// for an attempt are not persisted.
#[derive(Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct State {
    pub customers: Collection,
    pub products: Collection,
    pub prices: Collection,
    pub checkout_sessions: Collection,
    pub payment_intents: Collection,
    pub subscriptions: Collection,
    /// Customers whose payment method is marked failing (test route).
    pub failing_customers: std::collections::HashSet<String>,
    /// Subscriptions already sent `customer.subscription.trial_will_end`.
    pub trial_will_end_sent: std::collections::HashSet<String>,
    /// subscription id → every `proration_behavior` an update asked for, in order.
    pub proration_behaviors: HashMap<String, Vec<String>>,
    pub invoices: Collection,
    pub charges: Collection,
    pub refunds: Collection,
    pub disputes: Collection,
    /// session id → what the session was created with beyond Stripe's object (line items,
    /// subscription and payment intent data), for completing it.
    pub checkout_extras: HashMap<String, Value>,
    pub webhook_endpoints: Collection,
    /// endpoint id → whsec_ secret (not part of the endpoint object after creation)
    pub webhook_secrets: HashMap<String, String>,
    pub events: Collection,
    /// Deliveries waiting for an attempt.
    #[serde(skip)]
    pub outbox: Vec<crate::engine::outbox::Job>,
    /// Every delivery attempt, for `GET /_emulator/deliveries`.
    pub deliveries: Vec<Value>,
    /// The request being applied (its id and idempotency key), for events' `request` field.
    #[serde(skip)]
    pub current_request: Option<(String, Option<String>)>,
    pub idempotency: HashMap<String, Replay>,
    /// Seconds added to the wall clock (the test clock advances this).
    pub clock_offset: i64,
    /// `POST /_emulator/rate_limit`: requests still to refuse with 429 (not kept in the state
    /// file: a restarted emulator is not rate-limited).
    #[serde(skip)]
    pub rate_limit: RateLimit,
}

/// Requests the emulator answers with Stripe's 429 before applying anything.
#[derive(Default)]
pub struct RateLimit {
    /// How many more authenticated `/v1` requests are refused.
    pub remaining: u64,
    /// Each refused request: `{method, path, idempotency_key}`, oldest first.
    pub refused: Vec<Value>,
}

impl State {
    /// Reads a state file written by [`State::save`]; a missing file is a fresh state.
    pub fn load(path: &std::path::Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    /// Writes the whole state atomically (temporary file, then rename).
    pub fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, path)
    }

    pub fn invoices_count(&self) -> usize {
        self.invoices.len()
    }

    pub fn now(&self) -> i64 {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        wall + self.clock_offset
    }
}

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub fn new_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let tail: String = (0..14)
        .map(|_| ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char)
        .collect();
    format!("{prefix}_{tail}")
}

/// Stripe's list envelope with `limit`, `starting_after` and `ending_before`.
pub fn list<'a>(
    url: &str,
    params: &Params,
    items: impl Iterator<Item = &'a Value>,
) -> Result<Value, ApiError> {
    list_filtered(url, params, items, |_| true)
}

/// [`list`] of the items `keep` admits, with the cursor found among `all` (newest first), as
/// Stripe resolves `starting_after`/`ending_before` by id whatever the filters: an object that
/// stopped matching between two pages (an event delivered meanwhile) is still a cursor.
pub fn list_filtered<'a>(
    url: &str,
    params: &Params,
    all: impl Iterator<Item = &'a Value>,
    keep: impl Fn(&Value) -> bool,
) -> Result<Value, ApiError> {
    list_page(url, &Page::read(params)?, all, keep)
}

/// A page request: `limit` (1 to 100, 10 by default), `starting_after`, `ending_before`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: usize,
    pub starting_after: Option<String>,
    pub ending_before: Option<String>,
}

impl Page {
    /// Reads and checks the paging parameters, refusing them with Stripe's errors.
    pub fn read(params: &Params) -> Result<Self, ApiError> {
        let limit = params.int("limit")?.unwrap_or(10);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::invalid(
                "This value must be greater than or equal to 1 and less than or equal to 100.",
                Some("limit"),
            ));
        }
        let ending_before = params.str("ending_before")?;
        let starting_after = params.str("starting_after")?;
        Ok(Self {
            limit: limit as usize,
            starting_after,
            ending_before,
        })
    }
}

/// [`list_filtered`] for a [`Page`] already read.
pub fn list_page<'a>(
    url: &str,
    page: &Page,
    all: impl Iterator<Item = &'a Value>,
    keep: impl Fn(&Value) -> bool,
) -> Result<Value, ApiError> {
    let limit = page.limit;
    let all: Vec<&Value> = all.collect();
    let position = |id: &str| all.iter().position(|v| v["id"] == id);
    let before = page.ending_before.clone();
    let (start, end) = if let Some(after) = page.starting_after.clone() {
        let at = position(&after).ok_or_else(|| {
            ApiError::invalid(format!("No such object: '{after}'"), Some("starting_after"))
        })?;
        (at + 1, all.len())
    } else if let Some(before) = &before {
        let at = position(before).ok_or_else(|| {
            ApiError::invalid(format!("No such object: '{before}'"), Some("ending_before"))
        })?;
        (0, at)
    } else {
        (0, all.len())
    };
    let window: Vec<&Value> = all[start..end]
        .iter()
        .copied()
        .filter(|v| keep(v))
        .collect();
    // `ending_before`: the `limit` items just before the cursor; otherwise the first `limit`.
    let (page, has_more) = if before.is_some() {
        let skip = window.len().saturating_sub(limit);
        (&window[skip..], skip > 0)
    } else {
        (&window[..window.len().min(limit)], window.len() > limit)
    };
    Ok(json!({
        "object": "list",
        "data": page.iter().map(|v| (*v).clone()).collect::<Vec<_>>(),
        "has_more": has_more,
        "url": url,
    }))
}
