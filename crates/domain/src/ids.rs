//! Identifiers and amounts. Fields are private: a value exists only if it parsed.

use std::fmt;

use sha2::{Digest, Sha256};

/// Why an identifier did not parse. Carries the kind of id and what was wrong, never the value
/// itself (it may be a secret or personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {problem}")]
pub struct InvalidId {
    pub kind: &'static str,
    pub problem: &'static str,
}

fn invalid(kind: &'static str, problem: &'static str) -> InvalidId {
    InvalidId { kind, problem }
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// Read-only: the text of a value that parsed (it can only be built by `parse`).
        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A Cognito user's `sub`: the identity of a user everywhere in creditgate.
    UserSub
);
string_id!(
    /// A Stripe customer id (`cus_...`).
    StripeCustomerId
);
string_id!(
    /// A plan's id in `plans.json` (`free`, `basic`, ...): lowercase letters, digits and `-`.
    PlanId
);
string_id!(
    /// An email address as Cognito verified it. Personal data: never logged.
    Email
);

/// A Stripe object id: one of `prefixes` then letters, digits and `_`, at most 255 bytes.
/// Ids come from Stripe (its API, a signed event) or from creditgate's own records; a value
/// that does not look like one is refused before it reaches a request path or a key.
macro_rules! stripe_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, [$($prefix:literal),+]) => {
        string_id!($(#[$meta])* $name);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, InvalidId> {
                const PREFIXES: &[&str] = &[$($prefix),+];
                let Some(rest) = PREFIXES.iter().find_map(|p| raw.strip_prefix(p)) else {
                    return Err(invalid($kind, concat!("does not start with ", $($prefix, " "),+)));
                };
                if rest.is_empty()
                    || raw.len() > 255
                    || !rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(invalid(
                        $kind,
                        "is not a prefix followed by letters, digits and '_' (at most 255 bytes)",
                    ));
                }
                Ok(Self(raw.to_owned()))
            }
        }
    };
}

stripe_id!(
    /// A Stripe subscription id (`sub_...`).
    SubscriptionId, "Stripe subscription id", ["sub_"]
);
stripe_id!(
    /// A Stripe invoice id (`in_...`).
    InvoiceId, "Stripe invoice id", ["in_"]
);
stripe_id!(
    /// A Stripe Checkout Session id (`cs_test_...`, `cs_live_...`).
    CheckoutSessionId, "Checkout Session id", ["cs_"]
);
stripe_id!(
    /// A Stripe payment intent id (`pi_...`).
    PaymentIntentId, "Stripe payment intent id", ["pi_"]
);
stripe_id!(
    /// A Stripe charge id (`ch_...`, or `py_...` for some payment methods).
    ChargeId, "Stripe charge id", ["ch_", "py_"]
);

impl UserSub {
    /// Cognito subs are UUIDs; anything printable without separators up to 128 bytes is accepted
    /// so that other identity providers' subs work too. The sub becomes part of a DynamoDB key and a
    /// Step Functions execution name, so `#`, whitespace and control characters are refused.
    pub fn parse(raw: &str) -> Result<Self, InvalidId> {
        const KIND: &str = "user sub";
        if raw.is_empty() {
            return Err(invalid(KIND, "is empty"));
        }
        if raw.len() > 64 {
            return Err(invalid(KIND, "is longer than 64 bytes"));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                KIND,
                "has characters other than ASCII letters, digits, '-' and '_'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

impl StripeCustomerId {
    pub fn parse(raw: &str) -> Result<Self, InvalidId> {
        const KIND: &str = "Stripe customer id";
        let Some(rest) = raw.strip_prefix("cus_") else {
            return Err(invalid(KIND, "does not start with cus_"));
        };
        if rest.is_empty() || rest.len() > 250 || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(invalid(KIND, "is not cus_ followed by letters and digits"));
        }
        Ok(Self(raw.to_owned()))
    }
}

impl PlanId {
    pub fn parse(raw: &str) -> Result<Self, InvalidId> {
        const KIND: &str = "plan id";
        if raw.is_empty() || raw.len() > 32 {
            return Err(invalid(KIND, "must be 1 to 32 characters"));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || !raw.as_bytes()[0].is_ascii_lowercase()
        {
            return Err(invalid(
                KIND,
                "must start with a lowercase letter and hold only lowercase letters, digits and '-'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

/// The key of an allowance grant: the paid invoice and the plan it paid for, written
/// `<invoice>:<plan>` (an upgrade within a period is a second grant for the same invoice; each
/// pair grants at most once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantSource {
    pub invoice: InvoiceId,
    pub plan: PlanId,
}

impl GrantSource {
    /// Reads `<invoice>:<plan>`; `None` for anything else (a pack's session id, say).
    pub fn parse(raw: &str) -> Option<Self> {
        let (invoice, plan) = raw.rsplit_once(':')?;
        Some(Self {
            invoice: InvoiceId::parse(invoice).ok()?,
            plan: PlanId::parse(plan).ok()?,
        })
    }
}

impl std::fmt::Display for GrantSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.invoice, self.plan)
    }
}

impl Email {
    /// A deliberately small check: one `@` with something either side and no whitespace.
    /// Cognito has already verified the address; this only keeps garbage out of Stripe.
    pub fn parse(raw: &str) -> Result<Self, InvalidId> {
        const KIND: &str = "email";
        let raw = raw.trim();
        if raw.len() > 254 {
            return Err(invalid(KIND, "is longer than 254 characters"));
        }
        let mut parts = raw.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid(KIND, "must contain exactly one '@'"));
        };
        if local.is_empty() || domain.is_empty() || !domain.contains('.') {
            return Err(invalid(KIND, "must look like name@domain.tld"));
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(KIND, "must not contain whitespace"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The address lowercased: what a held purchase is filed under and compared with.
    pub fn normalized(&self) -> Self {
        Self(self.0.to_lowercase())
    }
}

/// A count of credits. Never negative by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Credits(u64);

impl Credits {
    pub const ZERO: Credits = Credits(0);

    pub const fn new(n: u64) -> Self {
        Self(n)
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Credits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The SHA-256 of an API key, hex encoded: what is stored instead of the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiKeyHash(String);

impl ApiKeyHash {
    pub fn of(key: &str) -> Self {
        Self(hex::encode(Sha256::digest(key.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A freshly issued API key: shown to its owner once, then only its hash and prefix are kept.
/// Held as a `SecretString` (zeroed when dropped); its `Debug` shows the prefix only.
#[derive(Clone)]
pub struct ApiKey(secrecy::SecretString);

impl ApiKey {
    pub const SCHEME: &'static str = "cgk_";

    /// A key from 32 bytes of entropy the caller draws from a CSPRNG (the domain does no I/O).
    pub fn from_entropy(bytes: [u8; 32]) -> Self {
        Self(format!("{}{}", Self::SCHEME, hex::encode(bytes)).into())
    }

    pub fn expose(&self) -> &str {
        secrecy::ExposeSecret::expose_secret(&self.0)
    }

    pub fn hash(&self) -> ApiKeyHash {
        ApiKeyHash::of(self.expose())
    }

    /// What may be shown later to tell keys apart: the scheme and 8 hex digits.
    pub fn prefix(&self) -> String {
        self.expose().chars().take(Self::SCHEME.len() + 8).collect()
    }
}

impl PartialEq for ApiKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash() == other.hash()
    }
}

impl Eq for ApiKey {}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}…)", self.prefix())
    }
}

impl ApiKeyHash {
    /// A stored hash, as read back from the table.
    pub fn from_stored(hex_digest: &str) -> Result<Self, InvalidId> {
        if hex_digest.len() == 64
            && hex_digest
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            Ok(Self(hex_digest.to_owned()))
        } else {
            Err(invalid("API key hash", "is not 64 lowercase hex digits"))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_new_api_key_shows_only_its_prefix_when_debug_printed() {
        let key = ApiKey::from_entropy([7; 32]);
        assert!(key.expose().starts_with("cgk_0707"));
        assert_eq!(key.expose().len(), 4 + 64);
        assert_eq!(key.prefix(), "cgk_07070707");
        assert_eq!(format!("{key:?}"), "ApiKey(cgk_07070707…)");
        assert_eq!(ApiKeyHash::from_stored(key.hash().as_str()), Ok(key.hash()));
        assert!(ApiKeyHash::from_stored("xyz").is_err());
    }

    use super::*;

    #[test]
    fn a_cognito_sub_parses_and_a_key_breaking_one_does_not() {
        assert!(UserSub::parse("5b6f2c1e-8a3d-4c1b-9e2f-1a2b3c4d5e6f").is_ok());
        assert!(UserSub::parse("").is_err());
        assert!(UserSub::parse("a#b").is_err());
        assert!(UserSub::parse("a b").is_err());
        assert!(UserSub::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn a_customer_id_must_be_cus_and_alphanumerics() {
        assert!(StripeCustomerId::parse("cus_QXg1o8vcGmoR32").is_ok());
        assert!(StripeCustomerId::parse("cus_").is_err());
        assert!(StripeCustomerId::parse("acct_123").is_err());
        assert!(StripeCustomerId::parse("cus_12 3").is_err());
    }

    #[test]
    fn plan_ids_are_lowercase_slugs() {
        assert!(PlanId::parse("basic").is_ok());
        assert!(PlanId::parse("pro-2").is_ok());
        assert!(PlanId::parse("Basic").is_err());
        assert!(PlanId::parse("2pro").is_err());
        assert!(PlanId::parse("").is_err());
    }

    #[test]
    fn emails_need_one_at_and_a_dotted_domain() {
        assert_eq!(
            Email::parse(" ada@example.com ").map(|e| e.to_string()),
            Ok("ada@example.com".to_owned())
        );
        assert!(Email::parse("ada").is_err());
        assert!(Email::parse("a@b@c.com").is_err());
        assert!(Email::parse("ada@localhost").is_err());
        assert!(Email::parse("a da@example.com").is_err());
    }

    #[test]
    fn an_invalid_id_error_never_echoes_the_value() {
        let err = Email::parse("secret-person@").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref().map(|e| e.contains("secret-person")),
            Some(false)
        );
    }

    #[test]
    fn a_grant_source_reads_back_what_it_writes_and_nothing_else() {
        let source = GrantSource {
            invoice: InvoiceId::parse("in_1Abc").unwrap_or_else(|_| unreachable!()),
            plan: PlanId::parse("basic").unwrap_or_else(|_| unreachable!()),
        };
        assert_eq!(source.to_string(), "in_1Abc:basic");
        assert_eq!(GrantSource::parse("in_1Abc:basic"), Some(source));
        assert_eq!(GrantSource::parse("cs_test_pack"), None);
        assert_eq!(GrantSource::parse("in_1:Not A Plan"), None);
    }

    #[test]
    fn an_api_key_hash_is_hex_sha256() {
        assert_eq!(
            ApiKeyHash::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
