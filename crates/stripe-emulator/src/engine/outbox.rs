//! The outbox: deliveries of recorded events waiting for an attempt, and Stripe's retry schedule.

/// Stripe's retry schedule after a failed attempt, in seconds, before compression.
pub const RETRY_SCHEDULE: &[u64] = &[300, 1_800, 7_200, 18_000, 36_000, 36_000];

/// A delivery waiting for its next attempt.
#[derive(Debug, Clone)]
pub struct Job {
    pub event: String,
    pub endpoint: String,
    pub attempt: u32,
    pub due: tokio::time::Instant,
}
