//! Stripe webhook signatures: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`, the v1 being
//! HMAC-SHA256 of `"<t>.<raw body>"` under the endpoint's `whsec_` secret. Several secrets may be
//! configured while one is rotated; any of them may match any v1. Comparison is constant-time; the
//! clock is injected so verification is deterministic in tests.

use std::fmt;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Stripe's default tolerance between the signature's timestamp and now.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;

/// A webhook endpoint secret. Never printed.
#[derive(Clone)]
pub struct WebhookSecret(SecretString);

impl WebhookSecret {
    pub fn parse(raw: &str) -> Result<Self, SignatureError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(SignatureError::NoSecret);
        }
        Ok(Self(SecretString::from(raw)))
    }
}

/// Compared in constant time (whether a rotation changed the secrets).
impl PartialEq for WebhookSecret {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.0.expose_secret(), other.0.expose_secret());
        a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
    }
}

impl Eq for WebhookSecret {}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

/// Why a delivery was refused. Safe to log: carries no secret, signature or payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    MissingHeader,
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    #[error("the Stripe-Signature header has no v1 signature")]
    NoV1,
    #[error("the signature's timestamp is {age} s away from now (tolerance {tolerance} s)")]
    Stale { age: i64, tolerance: i64 },
    #[error("no v1 signature matches any configured secret")]
    Mismatch,
    #[error("no webhook secret is configured")]
    NoSecret,
}

/// A parsed `Stripe-Signature` header: its timestamp and `v1` signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub timestamp: i64,
    v1: Vec<[u8; 32]>,
}

fn parse_header(header: &str) -> Result<Header, SignatureError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key {
            "t" => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                )
            }
            "v1" => {
                let mut digest = [0u8; 32];
                // A v1 that is not 64 hex digits can never match; skip it rather than fail, as
                // Stripe's libraries do.
                if hex::decode_to_slice(value, &mut digest).is_ok() {
                    v1.push(digest);
                }
            }
            // v0 and future schemes are ignored.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if v1.is_empty() {
        return Err(SignatureError::NoV1);
    }
    Ok(Header { timestamp, v1 })
}

/// What can be checked of a `Stripe-Signature` header without a secret: present, well formed
/// (a `t=` and at least one `v1=`) and within `tolerance` of `now`. The webhook refuses a
/// header that fails this before it reads any secret.
pub fn check_header(
    header: Option<&str>,
    now: i64,
    tolerance: i64,
) -> Result<Header, SignatureError> {
    let header = parse_header(
        header
            .filter(|h| !h.trim().is_empty())
            .ok_or(SignatureError::MissingHeader)?,
    )?;
    // Saturating: a hostile `t=` (i64::MIN, i64::MAX) is stale, never an overflow.
    let age = now.saturating_sub(header.timestamp);
    if age.saturating_abs() > tolerance {
        return Err(SignatureError::Stale { age, tolerance });
    }
    Ok(header)
}

/// Checks `header` against the raw `payload` (exactly the bytes received) with every secret.
/// Returns the signature's timestamp.
pub fn verify(
    payload: &[u8],
    header: Option<&str>,
    secrets: &[WebhookSecret],
    now: i64,
    tolerance: i64,
) -> Result<i64, SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    verify_checked(payload, &check_header(header, now, tolerance)?, secrets)
}

/// [`verify`] of a header [`check_header`] already admitted: the signatures against `payload`
/// with every secret, in constant time. Returns the signature's timestamp.
pub fn verify_checked(
    payload: &[u8],
    header: &Header,
    secrets: &[WebhookSecret],
) -> Result<i64, SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let signed_prefix = format!("{}.", header.timestamp);
    let mut matched = subtle::Choice::from(0u8);
    for secret in secrets {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.0.expose_secret().as_bytes())
        else {
            continue;
        };
        mac.update(signed_prefix.as_bytes());
        mac.update(payload);
        let expected = mac.finalize().into_bytes();
        for candidate in &header.v1 {
            matched |= expected.as_slice().ct_eq(candidate);
        }
    }
    if bool::from(matched) {
        Ok(header.timestamp)
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The header Stripe would send for `payload` at `timestamp`, for tests and local tools.
pub fn sign(payload: &[u8], secret: &WebhookSecret, timestamp: i64) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.0.expose_secret().as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return format!("t={timestamp}"),
    };
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(payload);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","object":"event","type":"invoice.paid"}"#;
    const NOW: i64 = 1_800_000_000;

    fn secret(s: &str) -> WebhookSecret {
        match WebhookSecret::parse(s) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_header_stripe_would_send_verifies() {
        let s = secret("whsec_test");
        let header = sign(BODY, &s, NOW - 10);
        assert_eq!(verify(BODY, Some(&header), &[s], NOW, 300), Ok(NOW - 10));
    }

    #[test]
    fn a_known_vector_from_stripes_python_library_verifies() {
        // stripe==16.1.0: WebhookSignature.generate_signature_header(BODY, "whsec_test", 1800000000)
        let header =
            "t=1800000000,v1=12dfcf953ea4ea46101aab55637376625badd13715da5bddca70756cfafc98e7";
        assert_eq!(
            verify(BODY, Some(header), &[secret("whsec_test")], NOW, 300),
            Ok(NOW)
        );
        assert_eq!(sign(BODY, &secret("whsec_test"), NOW), header);
    }

    #[test]
    fn any_configured_secret_may_match_any_v1_during_rotation() {
        let old = secret("whsec_old");
        let new = secret("whsec_new");
        let by_old = sign(BODY, &old, NOW);
        let both = format!(
            "{},v1={}",
            sign(BODY, &new, NOW),
            &by_old[by_old.len() - 64..]
        );
        assert!(verify(BODY, Some(&by_old), &[new.clone(), old.clone()], NOW, 300).is_ok());
        assert!(verify(BODY, Some(&both), &[old], NOW, 300).is_ok());
        assert!(verify(BODY, Some(&by_old), &[new], NOW, 300).is_err());
    }

    #[test]
    fn an_extreme_timestamp_is_stale_not_an_overflow() {
        let s = secret("whsec_test");
        for t in [i64::MIN, i64::MIN + 1, i64::MAX, -1] {
            let header = format!("t={t},v1={}", "0".repeat(64));
            assert!(
                matches!(
                    verify(BODY, Some(&header), std::slice::from_ref(&s), NOW, 300),
                    Err(SignatureError::Stale { .. })
                ),
                "t={t}"
            );
            for now in [i64::MIN, i64::MAX] {
                assert!(verify(BODY, Some(&header), std::slice::from_ref(&s), now, 300).is_err());
            }
        }
    }

    #[test]
    fn tampered_stale_missing_and_malformed_headers_are_refused() {
        let s = secret("whsec_test");
        let header = sign(BODY, &s, NOW);
        let tampered = br#"{"id":"evt_1","object":"event","type":"invoice.paid "}"#;
        assert_eq!(
            verify(tampered, Some(&header), std::slice::from_ref(&s), NOW, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                BODY,
                Some(&sign(BODY, &s, NOW - 301)),
                std::slice::from_ref(&s),
                NOW,
                300
            ),
            Err(SignatureError::Stale {
                age: 301,
                tolerance: 300
            })
        );
        assert!(matches!(
            verify(
                BODY,
                Some(&sign(BODY, &s, NOW + 400)),
                std::slice::from_ref(&s),
                NOW,
                300
            ),
            Err(SignatureError::Stale { .. })
        ));
        assert_eq!(
            verify(BODY, None, std::slice::from_ref(&s), NOW, 300),
            Err(SignatureError::MissingHeader)
        );
        assert_eq!(
            verify(BODY, Some(""), std::slice::from_ref(&s), NOW, 300),
            Err(SignatureError::MissingHeader)
        );
        assert_eq!(
            verify(BODY, Some("garbage"), std::slice::from_ref(&s), NOW, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(
                BODY,
                Some("t=abc,v1=00"),
                std::slice::from_ref(&s),
                NOW,
                300
            ),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(
                BODY,
                Some(&format!("t={NOW},v0=abc")),
                std::slice::from_ref(&s),
                NOW,
                300
            ),
            Err(SignatureError::NoV1)
        );
        assert_eq!(
            verify(BODY, Some(&header), &[], NOW, 300),
            Err(SignatureError::NoSecret)
        );
    }

    #[test]
    fn errors_and_secrets_never_print_secret_material() {
        assert_eq!(
            format!("{:?}", secret("whsec_supersecret")),
            "WebhookSecret([redacted])"
        );
        let e = SignatureError::Mismatch.to_string();
        assert!(!e.contains("whsec"));
    }
}

/// What the event record says when a delivery tries to claim it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This delivery owns the event until its lease ends: apply it, then mark it done or failed.
    Owned { attempt: u32 },
    /// Already applied: answer 200 and do nothing.
    AlreadyDone,
    /// Another delivery is applying it right now (its lease is live): answer an error so Stripe
    /// retries; by then it is done, or its lease has ended and the retry takes over.
    InProgress,
}

/// The event record port: the conditional write that makes each event's effect happen once.
pub trait EventLedger {
    /// Creates the record as `processing` with a lease until `lease_until`, or takes over a
    /// `failed` record or one whose lease has ended — atomically, so of two concurrent claims
    /// exactly one is `Owned`.
    fn claim(
        &self,
        event: &str,
        event_type: &str,
        now: i64,
        lease_until: i64,
    ) -> impl std::future::Future<Output = Result<Claim, crate::ports::PortError>> + Send;

    /// Marks the record `done` (or `ignored` for verified but unhandled types), only if it is
    /// still held by `attempt`: a delivery whose lease lapsed and whose event another took over
    /// changes nothing (`Ok(false)`); the one that took over settles it.
    fn finish(
        &self,
        event: &str,
        attempt: u32,
        status: Finished,
    ) -> impl std::future::Future<Output = Result<bool, crate::ports::PortError>> + Send;

    /// Marks the record `failed` with a short error, so a retry (Stripe's or a replay) may
    /// take it over; only if it is still held by `attempt` (as [`EventLedger::finish`]).
    fn fail(
        &self,
        event: &str,
        attempt: u32,
        error: &str,
    ) -> impl std::future::Future<Output = Result<bool, crate::ports::PortError>> + Send;

    /// Every record a replay should take, ordered by event id: `failed` ones, and `processing`
    /// ones whose lease ended at or before `now` (the delivery holding it died, or could not
    /// mark it done or failed).
    fn unsettled_events(
        &self,
        now: i64,
    ) -> impl std::future::Future<Output = Result<Vec<UnsettledEvent>, crate::ports::PortError>> + Send;

    /// Only the `failed` records.
    fn failed_events(
        &self,
    ) -> impl std::future::Future<Output = Result<Vec<UnsettledEvent>, crate::ports::PortError>> + Send
    where
        Self: Sync,
    {
        async {
            let all = self.unsettled_events(i64::MIN).await?;
            Ok(all
                .into_iter()
                .filter(|e| e.lease_ended.is_none())
                .collect())
        }
    }

    /// The event's record says it is done or ignored (a delivery or replay applied it).
    fn is_settled(
        &self,
        event: &str,
    ) -> impl std::future::Future<Output = Result<bool, crate::ports::PortError>> + Send;
}

/// An event record that is not settled, as `creditgate events replay` lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsettledEvent {
    pub id: String,
    pub event_type: String,
    pub attempts: i64,
    /// The error a `failed` record holds (empty for a stuck one).
    pub last_error: String,
    /// Set for a record left `processing`: when its lease ended.
    pub lease_ended: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Done,
    Ignored,
}

impl Finished {
    pub fn as_str(self) -> &'static str {
        match self {
            Finished::Done => "done",
            Finished::Ignored => "ignored",
        }
    }
}

/// How long a claim may run before another delivery may take the event over.
pub const LEASE_SECONDS: i64 = 60;

/// The decision a stored record implies for a new claim at `now` (what the adapters' condition
/// expressions encode, written once here so fakes and tests share it).
pub fn claim_decision(stored: Option<(&str, i64, u32)>, now: i64) -> Claim {
    match stored {
        None => Claim::Owned { attempt: 1 },
        Some(("done" | "ignored", _, _)) => Claim::AlreadyDone,
        Some(("processing", lease_until, _)) if lease_until > now => Claim::InProgress,
        Some((_, _, attempts)) => Claim::Owned {
            attempt: attempts + 1,
        },
    }
}

#[cfg(test)]
mod ledger_tests {
    use super::*;

    #[test]
    fn a_new_event_is_owned_a_done_one_is_skipped_and_a_live_claim_blocks() {
        assert_eq!(claim_decision(None, 100), Claim::Owned { attempt: 1 });
        assert_eq!(
            claim_decision(Some(("done", 0, 1)), 100),
            Claim::AlreadyDone
        );
        assert_eq!(
            claim_decision(Some(("ignored", 0, 1)), 100),
            Claim::AlreadyDone
        );
        assert_eq!(
            claim_decision(Some(("processing", 160, 1)), 100),
            Claim::InProgress
        );
    }

    #[test]
    fn a_failed_event_or_an_expired_lease_is_taken_over_with_the_attempt_counted() {
        assert_eq!(
            claim_decision(Some(("failed", 0, 2)), 100),
            Claim::Owned { attempt: 3 }
        );
        assert_eq!(
            claim_decision(Some(("processing", 99, 1)), 100),
            Claim::Owned { attempt: 2 }
        );
    }
}
