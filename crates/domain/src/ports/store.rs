//! The table: profiles, customer links, API keys, grants, packs and held purchases.

use std::future::Future;

use super::{Created, PortError, Saved, stripe::SessionMode};
use crate::ids::{CheckoutSessionId, Email, PaymentIntentId, PlanId, StripeCustomerId, UserSub};
use crate::profile::Profile;

/// User profiles and the items that must change with them.
pub trait Accounts {
    /// A consistent read of the user's profile.
    fn profile(
        &self,
        sub: &UserSub,
    ) -> impl Future<Output = Result<Option<Profile>, PortError>> + Send;

    /// Writes the profile and its customer link in one transaction, only if the user has no
    /// profile yet: a retry can never overwrite what an earlier attempt or a webhook wrote.
    fn create_profile(
        &self,
        profile: &Profile,
    ) -> impl Future<Output = Result<Created, PortError>> + Send;

    /// One page of the users that have a profile, from `after` (a cursor a previous page
    /// returned; `None`: the first page), and the cursor of the next page if there is one.
    /// For reconciliation: a Scan, run rarely.
    fn users_page(
        &self,
        after: Option<&str>,
    ) -> impl Future<Output = Result<(Vec<UserSub>, Option<String>), PortError>> + Send;
}

/// API keys: hash-only storage, one current key per user.
pub trait ApiKeys {
    /// Makes `new` the user's only key in one transaction: its `APIKEY#` item is written, the
    /// profile points at it, and the previous key's item (if any) is deleted, so the old key
    /// stops working at once. Fails if the profile does not exist.
    fn rotate_api_key(
        &self,
        sub: &UserSub,
        new: &crate::ids::ApiKeyHash,
        prefix: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// A pay-first purchase whose email belongs to an existing user: paid and settled, bound to
/// nobody until that user, signed in with the email verified, claims it (`HOLD#<email>` /
/// `SESSION#<id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldPurchase {
    pub session: CheckoutSessionId,
    pub customer: StripeCustomerId,
    /// Lowercased.
    pub email: Email,
    pub mode: SessionMode,
    /// The plan the session sold (its line items' lookup key), shown to the claimant.
    pub plan: Option<PlanId>,
    /// Stripe's time of the event that held it.
    pub held_at: i64,
    pub claimed_by: Option<UserSub>,
}

impl HeldPurchase {
    /// The order held purchases are listed in: oldest first, one instant's by session id (the
    /// table's sort key).
    pub fn sort_oldest_first(held: &mut [HeldPurchase]) {
        held.sort_by(|a, b| (a.held_at, &a.session).cmp(&(b.held_at, &b.session)));
    }
}

/// The webhook's writes: customer links, the grant ledger, and conditional profile writes.
pub trait Ledger {
    fn customer_owner(
        &self,
        customer: &StripeCustomerId,
    ) -> impl Future<Output = Result<Option<UserSub>, PortError>> + Send;

    /// Records a held purchase (only if new: a redelivery changes nothing).
    fn hold_purchase(
        &self,
        held: &HeldPurchase,
    ) -> impl Future<Output = Result<Created, PortError>> + Send;

    /// The purchases held for `email` (claimed ones included), oldest first (one
    /// instant's in session id order).
    fn held_purchases(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Vec<HeldPurchase>, PortError>> + Send;

    /// Every held purchase, claimed ones included, oldest first (one instant's in session id
    /// order): a scan of the table, for operators.
    fn all_held_purchases(
        &self,
    ) -> impl Future<Output = Result<Vec<HeldPurchase>, PortError>> + Send;

    /// Binds a held purchase to `sub` in one transaction: the hold marked claimed by `sub`
    /// (unless another user claimed it), the customer linked to `sub` (unless linked to
    /// another) and added to the profile's customers. `Conflict` if either belongs to another.
    fn claim_purchase(
        &self,
        held: &HeldPurchase,
        sub: &UserSub,
    ) -> impl Future<Output = Result<Saved, PortError>> + Send;

    /// Records what Cognito (`directory`) and the credit manager (`manager_started`) were
    /// brought to; `None` leaves that marker as it is.
    fn mark_followed(
        &self,
        sub: &UserSub,
        directory: Option<(&PlanId, crate::profile::Access)>,
        manager_started: Option<u64>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    fn grant_exists(
        &self,
        sub: &UserSub,
        source: &str,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;

    /// Writes a reconciled profile (and its grant's ledger entry) in one transaction,
    /// conditioned on the version read and on the grant being new.
    fn write_profile(
        &self,
        write: &crate::writes::ProfileWrite,
    ) -> impl Future<Output = Result<Saved, PortError>> + Send;

    fn pack_grant(
        &self,
        sub: &UserSub,
        session: &CheckoutSessionId,
    ) -> impl Future<Output = Result<Option<crate::writes::PackGrant>, PortError>> + Send;

    fn pack_for_payment(
        &self,
        sub: &UserSub,
        payment_intent: &PaymentIntentId,
    ) -> impl Future<Output = Result<Option<crate::writes::PackGrant>, PortError>> + Send;

    /// Writes the pack's ledger entry (only if new) and adds `credits - revoked` to `purchased`,
    /// capped at u64::MAX (the most a balance holds; the domain's sums saturate the same way).
    fn record_pack(
        &self,
        sub: &UserSub,
        grant: &crate::writes::PackGrant,
    ) -> impl Future<Output = Result<Saved, PortError>> + Send;

    /// Moves the entry from `before` to `after` (conditioned on `before.revoked`) and takes
    /// `after.removed - before.removed` from `purchased` (conditioned on enough being there).
    fn revoke_pack(
        &self,
        sub: &UserSub,
        before: &crate::writes::PackGrant,
        after: &crate::writes::PackGrant,
    ) -> impl Future<Output = Result<Saved, PortError>> + Send;
}
