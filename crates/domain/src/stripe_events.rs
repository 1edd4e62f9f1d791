//! What each Stripe event means, as a use case over the ports: find the user, read the object
//! from Stripe, reconcile, write conditionally, then make Cognito and the credit manager agree.
//!
//! Every path is safe to run again (a retry, a replay, a duplicate delivery) and converges to
//! Stripe's current truth whatever order the events come in.

use serde_json::Value;

use crate::catalogue::{Catalogue, SaleMode, parse_lookup_key};
use crate::facts::SubStatus;
use crate::ids::{
    ChargeId, CheckoutSessionId, Credits, Email, InvalidId, PaymentIntentId, PlanId,
    StripeCustomerId, SubscriptionId, UserSub,
};
use crate::lifecycle::{
    self, AccessPolicy, LifecycleError, SubscriptionOutcome, free_manager, reconcile_subscription,
    revoked_share,
};
use crate::ports::{
    Accounts, Created, Directory, HeldPurchase, Ledger, NewUser, Payments, PortError, Saved,
    Scheduler, SessionFacts, SessionMode, StripeReads,
};
use crate::profile::Profile;
use crate::writes::PackGrant;

/// The parts of an event the handler needs; the rest is read from Stripe.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRef {
    pub id: String,
    pub kind: String,
    pub created: i64,
    pub object: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the payload is not a Stripe event: {0}")]
pub struct MalformedEvent(&'static str);

impl EventRef {
    pub fn parse(payload: &[u8]) -> Result<Self, MalformedEvent> {
        let value: Value =
            serde_json::from_slice(payload).map_err(|_| MalformedEvent("not JSON"))?;
        let id = value["id"]
            .as_str()
            .filter(|id| id.starts_with("evt_"))
            .ok_or(MalformedEvent("no evt_ id"))?;
        let kind = value["type"].as_str().ok_or(MalformedEvent("no type"))?;
        let created = value["created"]
            .as_i64()
            .ok_or(MalformedEvent("no created time"))?;
        let object = value["data"]["object"].clone();
        if !object.is_object() {
            return Err(MalformedEvent("no data.object"));
        }
        Ok(Self {
            id: id.to_owned(),
            kind: kind.to_owned(),
            created,
            object,
        })
    }

    fn object_str(&self, path: &[&str]) -> Option<String> {
        let mut v = &self.object;
        for p in path {
            v = &v[*p];
        }
        // An expanded reference is an object with an id.
        v.as_str().or_else(|| v["id"].as_str()).map(str::to_owned)
    }

    /// The invoice's subscription: `parent.subscription_details.subscription` in the current
    /// API, `subscription` in older versions.
    fn invoice_subscription(&self) -> Option<String> {
        self.object_str(&["parent", "subscription_details", "subscription"])
            .or_else(|| self.object_str(&["subscription"]))
    }
}

/// The event types the webhook acts on: what its Stripe endpoint must be registered for
/// (README, Deploying; `scripts/dev` registers the same list with the emulator).
pub const HANDLED_TYPES: &[&str] = &[
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "charge.refunded",
    "charge.dispute.created",
];

/// What an event asks of creditgate, decided once from its type and the ids in its object
/// (everything else is read from Stripe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A Checkout Session completed or its delayed payment succeeded.
    CheckoutCompleted { session: CheckoutSessionId },
    /// A subscription changed, or one of its invoices was paid: reconcile with it.
    SyncSubscription { subscription: SubscriptionId },
    TrialWillEnd {
        subscription: String,
        trial_end: i64,
    },
    /// An invoice payment failed: logged, then its subscription (if any) reconciled.
    InvoicePaymentFailed {
        invoice: String,
        attempt_count: u64,
        subscription: Option<SubscriptionId>,
    },
    /// A refund or a dispute of a charge.
    ChargeChanged { charge: ChargeId },
    /// Verified but nothing to do, and why (type not handled, an id missing).
    Ignore(String),
}

impl EventRef {
    /// What this event asks for: a typed action, or why it is ignored.
    pub fn action(&self) -> Action {
        /// The id at `path` as an `I`, or why the event is ignored (absent, or not such an id).
        fn typed<I>(
            event: &EventRef,
            what: &str,
            path: &[&str],
            parse: fn(&str) -> Result<I, InvalidId>,
        ) -> Result<I, Action> {
            let raw = event
                .object_str(path)
                .ok_or_else(|| Action::Ignore(format!("{what} without id")))?;
            parse(&raw).map_err(|e| Action::Ignore(format!("{what} with an {e}")))
        }
        let done = |result: Result<Action, Action>| result.unwrap_or_else(|ignore| ignore);
        match self.kind.as_str() {
            "checkout.session.completed" | "checkout.session.async_payment_succeeded" => done(
                typed(self, "session", &["id"], CheckoutSessionId::parse)
                    .map(|session| Action::CheckoutCompleted { session }),
            ),
            "customer.subscription.created"
            | "customer.subscription.updated"
            | "customer.subscription.deleted"
            | "customer.subscription.paused"
            | "customer.subscription.resumed" => done(
                typed(self, "subscription", &["id"], SubscriptionId::parse)
                    .map(|subscription| Action::SyncSubscription { subscription }),
            ),
            "customer.subscription.trial_will_end" => Action::TrialWillEnd {
                subscription: self.object_str(&["id"]).unwrap_or_default(),
                trial_end: self.object["trial_end"].as_i64().unwrap_or_default(),
            },
            "invoice.payment_failed" => Action::InvoicePaymentFailed {
                invoice: self.object_str(&["id"]).unwrap_or_default(),
                attempt_count: self.object["attempt_count"].as_u64().unwrap_or_default(),
                subscription: self
                    .invoice_subscription()
                    .and_then(|s| SubscriptionId::parse(&s).ok()),
            },
            "invoice.paid" | "invoice.payment_succeeded" => match self.invoice_subscription() {
                Some(raw) => match SubscriptionId::parse(&raw) {
                    Ok(subscription) => Action::SyncSubscription { subscription },
                    Err(e) => Action::Ignore(format!("invoice with an {e}")),
                },
                None => Action::Ignore("invoice without a subscription".into()),
            },
            "charge.refunded" => done(
                typed(self, "charge", &["id"], ChargeId::parse)
                    .map(|charge| Action::ChargeChanged { charge }),
            ),
            "charge.dispute.created" => match self.object_str(&["charge"]) {
                Some(_) => done(
                    typed(self, "dispute", &["charge"], ChargeId::parse)
                        .map(|charge| Action::ChargeChanged { charge }),
                ),
                None => Action::Ignore("dispute without a charge".into()),
            },
            other => Action::Ignore(format!("{other} is not handled")),
        }
    }
}

/// What handling an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Applied(String),
    /// Verified but nothing to do (type not handled, object not ours): answer 200.
    Ignored(String),
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error("{0}")]
    NotReady(String),
    #[error("gave up after {0} conflicting writes")]
    Contention(u32),
}

/// Why a held purchase could not be claimed (each a 4xx for the caller).
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("no purchase {0} is held for your verified email")]
    NothingHeld(String),
    #[error("purchase {0} was claimed by another account")]
    ClaimedByAnother(String),
    #[error(
        "you have a live subscription ({current}); claiming purchase {session} ({claimed}) replaces it: the current one is cancelled now, prorated, and the claimed one bills the card its buyer gave. Send {{\"session\": \"{session}\", \"replace_subscription\": true}} to confirm"
    )]
    WouldReplace {
        session: String,
        current: String,
        claimed: String,
    },
    #[error(
        "purchase {session} is a subscription that is {status}, not paying: its buyer's payments fail, so it cannot be claimed"
    )]
    NotPaying { session: String, status: String },
    #[error(transparent)]
    Handle(#[from] HandleError),
}

impl From<PortError> for ClaimError {
    fn from(e: PortError) -> Self {
        Self::Handle(HandleError::Port(e))
    }
}

/// Whom a completed Checkout Session's payment belongs to.
enum Binding {
    User(UserSub),
    /// Held for the owner of its email to claim: settled, bound to nobody.
    Held(String),
    /// Names no user creditgate can know: settled with the reason.
    Unbound(String),
}

/// Everything that keeps a profile in step with Stripe, built once per cold start: the webhook,
/// cancel-subscriptions and `creditgate events replay` share it. `store` is the one table
/// (profiles, links, grants; `Accounts` + `Ledger`).
pub struct Lifecycle<St, R, D, S> {
    pub store: St,
    pub stripe: R,
    pub directory: D,
    pub scheduler: S,
    pub catalogue: Catalogue,
    pub policy: AccessPolicy,
    /// Replaces the free plan's period in the credit manager (local runs only).
    pub free_period_override: Option<u64>,
}

const MAX_ATTEMPTS: u32 = 8;

/// The longest username (here: the email) Cognito's AdminCreateUser takes.
const MAX_USERNAME: usize = 128;

impl<St, R, D, S> Lifecycle<St, R, D, S>
where
    St: Accounts + Ledger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    pub async fn handle(&self, event: &EventRef) -> Result<Handled, HandleError> {
        match event.action() {
            Action::CheckoutCompleted { session } => {
                self.checkout_completed(&session, event.created).await
            }
            Action::SyncSubscription { subscription } => {
                self.sync_subscription(&subscription, event.created).await
            }
            Action::TrialWillEnd {
                subscription,
                trial_end,
            } => {
                tracing::info!(subscription = %subscription, trial_end, "trial ends soon: notify the user");
                Ok(Handled::Applied("trial end noted for notification".into()))
            }
            Action::InvoicePaymentFailed {
                invoice,
                attempt_count,
                subscription,
            } => {
                tracing::warn!(invoice = %invoice, attempt_count, "invoice payment failed");
                match subscription {
                    Some(id) => self.sync_subscription(&id, event.created).await,
                    None => Ok(Handled::Ignored("invoice without a subscription".into())),
                }
            }
            Action::ChargeChanged { charge } => self.charge_changed(&charge, event.created).await,
            Action::Ignore(why) => Ok(Handled::Ignored(why)),
        }
    }

    async fn profile(&self, sub: &UserSub) -> Result<Profile, HandleError> {
        self.store
            .profile(sub)
            .await?
            .ok_or_else(|| HandleError::NotReady(format!("user {sub} has no profile yet")))
    }

    /// Cognito and the credit manager follow the profile. Each is called only when the
    /// profile's marker says it has not yet seen this state; the marker is written after the
    /// call succeeds, so a failure here is completed by the retry, and a steady event costs
    /// neither call.
    async fn follow_up(&self, profile: &Profile) -> Result<(), HandleError> {
        let want = (profile.plan.clone(), profile.access);
        let directory = (profile.directory_synced.as_ref() != Some(&want)).then_some(want);
        let manager = free_manager(profile, &self.catalogue, self.free_period_override)
            .filter(|run| profile.manager_started != Some(run.generation));
        if let Some((plan, access)) = &directory {
            self.directory
                .sync_user(&profile.sub, plan, *access)
                .await?;
        }
        if let Some(run) = &manager {
            self.scheduler.start_credit_manager(run).await?;
        }
        if directory.is_some() || manager.is_some() {
            self.store
                .mark_followed(
                    &profile.sub,
                    directory.as_ref().map(|(p, a)| (p, *a)),
                    manager.map(|run| run.generation),
                )
                .await?;
        }
        Ok(())
    }

    /// Reads the subscription from Stripe and reconciles its user's profile with it.
    pub async fn sync_subscription(
        &self,
        id: &SubscriptionId,
        event_time: i64,
    ) -> Result<Handled, HandleError> {
        let Some(mut facts) = self.stripe.subscription(id).await? else {
            return Ok(Handled::Ignored(format!("Stripe has no subscription {id}")));
        };
        // Only a link creditgate wrote (sign-up, a pay-first user it created, a verified claim)
        // binds a subscription to a user; nothing in the subscription does.
        let Some(sub) = self.store.customer_owner(&facts.customer).await? else {
            // A pay-first buyer's user is made by checkout.session.completed (or a claim),
            // which then syncs this subscription itself.
            return Ok(Handled::Ignored(format!(
                "customer {} is not linked to a user (yet)",
                facts.customer
            )));
        };
        let profile = self.profile(&sub).await?;
        let followed = profile.subscription.as_ref().map(|s| &s.id);
        if followed != Some(id) || !facts.status.is_live() {
            // A subscription the profile does not follow yet, or the followed one ended: the
            // user's standing comes from every subscription bound to them, and one bill stays.
            if let Some(keep) = self.one_subscription(&profile).await? {
                if keep != facts.id
                    && let Some(kept) = self.stripe.subscription(&keep).await?
                {
                    facts = kept;
                }
                facts.chosen = facts.id == keep;
            }
        }
        let id = facts.id.clone();
        for _ in 0..MAX_ATTEMPTS {
            let profile = self.profile(&sub).await?;
            let plan = facts
                .lookup_key
                .as_deref()
                .and_then(|k| parse_lookup_key(&self.catalogue, k))
                .map(|(p, _)| p.id().clone());
            let granted = match plan
                .as_ref()
                .and_then(|p| lifecycle::candidate_grant(&facts, p))
            {
                Some(source) if profile.allowance_source.as_deref() != Some(source.as_str()) => {
                    self.store.grant_exists(&sub, &source).await?
                }
                _ => false,
            };
            let write = match reconcile_subscription(
                &profile,
                &facts,
                granted,
                &self.catalogue,
                &self.policy,
                event_time,
            )? {
                SubscriptionOutcome::NotFollowed(why) => {
                    return Ok(Handled::Ignored(format!("subscription {id}: {why}")));
                }
                SubscriptionOutcome::Write(w) => w,
            };
            let changed = write.after != write.before || write.grant.is_some();
            if changed && self.store.write_profile(&write).await? == Saved::Conflict {
                continue;
            }
            self.follow_up(&write.after).await?;
            let after = &write.after;
            tracing::info!(
                user_sub = %sub,
                subscription = %id,
                status = facts.status.as_str(),
                plan = %after.plan,
                access = after.access.as_str(),
                grant = write.grant.as_ref().map(|g| g.source.as_str()).unwrap_or("none"),
                "subscription reconciled"
            );
            return Ok(Handled::Applied(format!(
                "subscription {id} {}: plan {}, access {}{}",
                facts.status.as_str(),
                after.plan,
                after.access.as_str(),
                write
                    .grant
                    .as_ref()
                    .map(|g| format!(", granted {} for {}", g.credits, g.source))
                    .unwrap_or_default()
            )));
        }
        Err(HandleError::Contention(MAX_ATTEMPTS))
    }

    /// Every live subscription bound to the user (all their customers): the one kept is
    /// returned, and every other one that bills is cancelled now with proration, logged and
    /// counted. Deterministic, so concurrent deliveries cancel the same ones.
    pub(crate) async fn one_subscription(
        &self,
        profile: &Profile,
    ) -> Result<Option<SubscriptionId>, HandleError> {
        let live = self.stripe.live_subscriptions(&profile.customers()).await?;
        let Some(keep) = lifecycle::keep_one(&live) else {
            return Ok(None);
        };
        for other in lifecycle::duplicates(&live) {
            self.stripe.cancel_duplicate(&other.id).await?;
            tracing::warn!(
                metric = "duplicate_subscription_cancelled",
                user_sub = %profile.sub,
                kept = %keep.id,
                cancelled = %other.id,
                "a second live subscription was bound to one user: it was cancelled with proration"
            );
        }
        Ok(Some(keep.id.clone()))
    }

    /// Whom a completed session's payment belongs to. Only what creditgate wrote with its
    /// secret key identifies a user: the session's customer, if creditgate linked it (the
    /// customer sign-up created, which create-session puts on every session it makes).
    /// `client_reference_id` and the email are what the buyer typed: a customer unknown to
    /// creditgate is a pay-first buyer, who gets a new user when the email is nobody's, and
    /// whose purchase is held for the email's owner to claim otherwise.
    async fn bind(
        &self,
        session: &SessionFacts,
        customer: &StripeCustomerId,
        plan: Option<PlanId>,
        event_time: i64,
    ) -> Result<Binding, HandleError> {
        if let Some(sub) = self.store.customer_owner(customer).await? {
            if session
                .client_reference_id
                .as_deref()
                .is_some_and(|r| r != sub.as_str())
            {
                tracing::warn!(security = true, session = %session.id, user_sub = %sub,
                    "client_reference_id differs from the customer's user: ignored (buyer input)");
            }
            return Ok(Binding::User(sub));
        }
        if session.client_reference_id.is_some() {
            tracing::info!(security = true, session = %session.id,
                "pay-first session carries a client_reference_id: buyer input, not used to find a user");
        }
        let Some(email) = session.email.clone() else {
            return Ok(Binding::Unbound(format!(
                "session {} names no customer of ours and no email",
                session.id
            )));
        };
        // Cognito takes a username (the email) of at most 128 characters: a longer one can name
        // nobody, and must settle rather than fail on every delivery.
        if email.as_str().chars().count() > MAX_USERNAME {
            return Ok(self.unbound(
                session,
                customer,
                "the buyer's email is longer than a Cognito username may be",
            ));
        }
        // As typed and lowercased (Cognito's email filter is exact; the pool's usernames are
        // case-insensitive, so creating a user for another case of a taken email is refused).
        let mut existing = self.directory.find_by_email(&email).await?;
        let email = email.normalized();
        if existing.is_none() && session.email.as_ref() != Some(&email) {
            existing = self.directory.find_by_email(&email).await?;
        }
        let created = match existing {
            Some(_) => NewUser::EmailTaken,
            None => self.directory.create_user(&email).await?,
        };
        match created {
            NewUser::Created(sub) => {
                tracing::info!(user_sub = %sub, "pay-first buyer: Cognito user created");
                let profile = Profile::new_signup(
                    sub.clone(),
                    email,
                    customer.clone(),
                    self.catalogue.free_plan().id().clone(),
                    rfc3339(event_time),
                );
                self.store.create_profile(&profile).await?;
                Ok(Binding::User(sub))
            }
            NewUser::EmailTaken => {
                let held = HeldPurchase {
                    session: session.id.clone(),
                    customer: customer.clone(),
                    email,
                    mode: session.mode,
                    plan,
                    held_at: event_time,
                    claimed_by: None,
                };
                if self.store.hold_purchase(&held).await? == Created::New {
                    tracing::warn!(
                        metric = "purchase_held",
                        session = %session.id,
                        customer = %customer,
                        existing_user = %existing.as_ref().map(UserSub::as_str).unwrap_or("unknown"),
                        "pay-first purchase held: its email belongs to an existing user, who can claim it signed in with that email verified"
                    );
                }
                Ok(Binding::Held(format!(
                    "session {} held for the owner of its email to claim",
                    session.id
                )))
            }
            NewUser::Refused(reason) => Ok(self.unbound(session, customer, &reason)),
        }
    }

    /// A paid session that can bind to nobody: settled with the reason, and a WARN line for the
    /// operators (the buyer paid and has no account: refund or create one by hand).
    fn unbound(&self, session: &SessionFacts, customer: &StripeCustomerId, why: &str) -> Binding {
        tracing::warn!(
            metric = "purchase_unbound",
            session = %session.id,
            customer = %customer,
            reason = why,
            "paid session binds to no user: refund it or create the buyer's account by hand"
        );
        Binding::Unbound(format!("session {}: {why}", session.id))
    }

    /// Before a held subscription is bound: it must be paying (a held subscription whose
    /// buyer's card fails is nobody's to take over), and it replaces the user's own live
    /// subscriptions only when she said so; then hers are cancelled (prorated) first, so the
    /// one-subscription rule cannot keep hers over the one she chose.
    async fn make_room_for(
        &self,
        held: &HeldPurchase,
        profile: Option<&Profile>,
        replace: bool,
    ) -> Result<(), ClaimError> {
        let claimed = self
            .stripe
            .checkout_session(&held.session)
            .await?
            .and_then(|s| s.subscription);
        let status = match &claimed {
            Some(id) => self.stripe.subscription(id).await?.map(|f| f.status),
            None => None,
        };
        if !matches!(status, Some(SubStatus::Active | SubStatus::Trialing)) {
            return Err(ClaimError::NotPaying {
                session: held.session.to_string(),
                status: status
                    .map(SubStatus::as_str)
                    .unwrap_or("missing")
                    .to_owned(),
            });
        }
        let Some(profile) = profile else {
            return Ok(());
        };
        // Hers: every billing subscription of her customers but the claimed one's own.
        let current: Vec<_> = self
            .stripe
            .live_subscriptions(&profile.customers())
            .await?
            .into_iter()
            .filter(|s| s.status.bills() && s.customer != held.customer)
            .collect();
        if current.is_empty() {
            return Ok(());
        }
        if !replace {
            let plans: Vec<String> = current
                .iter()
                .map(|s| {
                    s.lookup_key
                        .as_deref()
                        .and_then(|k| parse_lookup_key(&self.catalogue, k))
                        .map(|(p, _)| format!("`{}`", p.id()))
                        .unwrap_or_else(|| s.id.to_string())
                })
                .collect();
            return Err(ClaimError::WouldReplace {
                session: held.session.to_string(),
                current: plans.join(", "),
                claimed: held
                    .plan
                    .as_ref()
                    .map(|p| format!("`{p}`"))
                    .unwrap_or_else(|| "a subscription".into()),
            });
        }
        for own in &current {
            self.stripe.cancel_duplicate(&own.id).await?;
            tracing::warn!(
                metric = "duplicate_subscription_cancelled",
                user_sub = %profile.sub,
                cancelled = %own.id,
                session = %held.session,
                "replaced by a claimed subscription at the user's request: cancelled with proration"
            );
        }
        Ok(())
    }

    /// `POST /purchases/claim`: the user `sub`, whose token carries `verified_email` (verified
    /// by Cognito), takes a purchase held for that email. The purchase's customer is bound to
    /// the user and the session applied as if it had been theirs from the start; a second
    /// live subscription is then resolved as any other. Claiming again changes nothing.
    pub async fn claim_purchase(
        &self,
        sub: &UserSub,
        verified_email: &Email,
        session: &str,
        replace_subscription: bool,
        now: i64,
    ) -> Result<Handled, ClaimError> {
        let email = verified_email.normalized();
        let held = self
            .store
            .held_purchases(&email)
            .await?
            .into_iter()
            .find(|h| h.session.as_str() == session)
            .ok_or_else(|| ClaimError::NothingHeld(session.to_owned()))?;
        if held.claimed_by.as_ref().is_some_and(|by| by != sub) {
            return Err(ClaimError::ClaimedByAnother(session.to_owned()));
        }
        let existing = self.store.profile(sub).await?;
        if held.mode == SessionMode::Subscription && held.claimed_by.is_none() {
            self.make_room_for(&held, existing.as_ref(), replace_subscription)
                .await?;
        }
        if existing.is_none() {
            // An invited pay-first user whose profile write failed: the held customer is hers
            // (she is its buyer: nobody else had her email).
            let profile = Profile::new_signup(
                sub.clone(),
                email.clone(),
                held.customer.clone(),
                self.catalogue.free_plan().id().clone(),
                rfc3339(now),
            );
            self.store.create_profile(&profile).await?;
        }
        // A cancelled transaction may be a real condition (another user claimed it) or a
        // concurrent write to her profile (the webhook applying her cancellation): re-read.
        let mut bound = false;
        for _ in 0..MAX_ATTEMPTS {
            if self.store.claim_purchase(&held, sub).await? == Saved::Written {
                bound = true;
                break;
            }
            let now_held = self
                .store
                .held_purchases(&email)
                .await?
                .into_iter()
                .find(|h| h.session.as_str() == session);
            match now_held.and_then(|h| h.claimed_by) {
                Some(by) if &by == sub => {
                    bound = true;
                    break;
                }
                Some(_) => return Err(ClaimError::ClaimedByAnother(session.to_owned())),
                None => {}
            }
            if self
                .store
                .customer_owner(&held.customer)
                .await?
                .is_some_and(|o| &o != sub)
            {
                return Err(ClaimError::ClaimedByAnother(session.to_owned()));
            }
        }
        if !bound {
            return Err(HandleError::Contention(MAX_ATTEMPTS).into());
        }
        tracing::info!(user_sub = %sub, session, customer = %held.customer, "held purchase claimed");
        Ok(self.checkout_completed(&held.session, now).await?)
    }

    pub async fn checkout_completed(
        &self,
        id: &CheckoutSessionId,
        event_time: i64,
    ) -> Result<Handled, HandleError> {
        let Some(facts) = self.stripe.checkout_session(id).await? else {
            return Ok(Handled::Ignored(format!(
                "Stripe has no checkout session {id}"
            )));
        };
        if !facts.paid {
            return Ok(Handled::Ignored(format!(
                "checkout session {id} is not paid"
            )));
        }
        let Some(customer) = facts.customer.clone() else {
            return Ok(Handled::Ignored(format!(
                "checkout session {id} has no customer"
            )));
        };
        // What was bought comes first: a session that sells nothing of ours binds nobody.
        let pack = match facts.mode {
            SessionMode::Subscription => None,
            SessionMode::Payment => {
                let mut credits = 0u64;
                let mut pack_plan = None;
                for (key, quantity) in &facts.items {
                    if let Some((plan, SaleMode::Pack)) = key
                        .as_deref()
                        .and_then(|k| parse_lookup_key(&self.catalogue, k))
                    {
                        credits =
                            credits.saturating_add(plan.credits().get().saturating_mul(*quantity));
                        pack_plan = Some(plan.id().clone());
                    }
                }
                let Some(plan) = pack_plan else {
                    return Ok(Handled::Ignored(format!(
                        "session {id} sold no credit pack"
                    )));
                };
                Some((plan, Credits::new(credits)))
            }
            SessionMode::Other => {
                return Ok(Handled::Ignored(format!("session {id} is not a purchase")));
            }
        };
        let subscription = match (&pack, &facts.subscription) {
            (None, None) => {
                return Ok(Handled::Ignored(format!(
                    "session {id} has no subscription"
                )));
            }
            (_, subscription) => subscription.clone(),
        };
        let plan = facts
            .items
            .iter()
            .filter_map(|(key, _)| key.as_deref())
            .find_map(|k| parse_lookup_key(&self.catalogue, k))
            .map(|(p, _)| p.id().clone());
        let bound = match self.bind(&facts, &customer, plan, event_time).await? {
            Binding::User(sub) => sub,
            Binding::Held(why) => return Ok(Handled::Applied(why)),
            Binding::Unbound(why) => return Ok(Handled::Ignored(why)),
        };
        match (pack, subscription) {
            (Some((plan, credits)), _) => {
                self.grant_pack(&bound, id, plan, credits, facts.payment_intent)
                    .await
            }
            (None, Some(subscription)) => self.sync_subscription(&subscription, event_time).await,
            (None, None) => Ok(Handled::Ignored(format!(
                "session {id} has no subscription"
            ))),
        }
    }

    async fn grant_pack(
        &self,
        sub: &UserSub,
        session: &CheckoutSessionId,
        plan: crate::ids::PlanId,
        credits: Credits,
        payment_intent: Option<PaymentIntentId>,
    ) -> Result<Handled, HandleError> {
        if self.store.pack_grant(sub, session).await?.is_none() {
            // A refund or dispute that came first is counted now, so order does not matter.
            let charge = match &payment_intent {
                Some(pi) => self.stripe.payment_charge(pi).await?,
                None => None,
            };
            let revoked = revoked_share(credits, charge.as_ref());
            let grant = PackGrant {
                session: session.clone(),
                plan,
                credits,
                payment_intent,
                revoked,
                removed: revoked,
            };
            if self.store.record_pack(sub, &grant).await? == Saved::Written {
                tracing::info!(user_sub = %sub, session = %session, credits = credits.get(), revoked = revoked.get(), "pack credits granted");
            }
        }
        let profile = self.profile(sub).await?;
        self.follow_up(&profile).await?;
        Ok(Handled::Applied(format!(
            "pack of {credits} credits for session {session} recorded"
        )))
    }

    /// A refund or dispute: the pack bought with the charge loses its share, never below zero.
    pub async fn charge_changed(
        &self,
        charge_id: &ChargeId,
        event_time: i64,
    ) -> Result<Handled, HandleError> {
        let Some(charge) = self.stripe.charge(charge_id).await? else {
            return Ok(Handled::Ignored(format!(
                "Stripe has no charge {charge_id}"
            )));
        };
        let Some(pi) = charge.payment_intent.clone() else {
            return Ok(Handled::Ignored(format!(
                "charge {charge_id} has no payment intent"
            )));
        };
        let Some(customer) = charge.customer.clone() else {
            return Ok(Handled::Ignored(format!(
                "charge {charge_id} has no customer"
            )));
        };
        let Some(sub) = self.store.customer_owner(&customer).await? else {
            return Ok(Handled::Ignored(format!(
                "customer {customer} is not linked to a user"
            )));
        };
        let mut granted_here = false;
        for _ in 0..MAX_ATTEMPTS {
            let Some(before) = self.store.pack_for_payment(&sub, &pi).await? else {
                // The grant is not recorded yet: record it now (it counts this charge's refunds),
                // so a refund racing its pack's checkout.session.completed is never lost.
                match self.stripe.session_for_payment(&pi).await? {
                    Some(session) if !granted_here => {
                        granted_here = true;
                        self.checkout_completed(&session, event_time).await?;
                        continue;
                    }
                    _ => {
                        return Ok(Handled::Ignored(format!(
                            "payment {pi} bought no credit pack"
                        )));
                    }
                }
            };
            let target = revoked_share(before.credits, Some(&charge));
            if target <= before.revoked {
                return Ok(Handled::Applied(format!(
                    "pack {} already revoked {}",
                    before.session, before.revoked
                )));
            }
            let profile = self.profile(&sub).await?;
            let owed = target.get() - before.revoked.get();
            let take = owed.min(profile.purchased.get());
            let after = PackGrant {
                revoked: target,
                removed: Credits::new(before.removed.get() + take),
                ..before.clone()
            };
            if self.store.revoke_pack(&sub, &before, &after).await? == Saved::Conflict {
                continue;
            }
            tracing::info!(user_sub = %sub, session = %before.session, revoked = target.get(), removed = take, "pack credits revoked");
            return Ok(Handled::Applied(format!(
                "pack {} revoked {} credits ({} removed)",
                before.session, target, take
            )));
        }
        Err(HandleError::Contention(MAX_ATTEMPTS))
    }
}

/// Seconds since the epoch as RFC 3339 (UTC); the epoch itself for a time out of range.
pub fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_parses_to_its_reference() {
        let e = EventRef::parse(
            br#"{"id":"evt_1","type":"invoice.paid","created":5,"data":{"object":{"id":"in_1","parent":{"subscription_details":{"subscription":"sub_1"}}}}}"#,
        );
        let e = e.unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(e.invoice_subscription().as_deref(), Some("sub_1"));
    }

    #[test]
    fn garbage_is_a_malformed_event_not_a_panic() {
        assert!(EventRef::parse(b"nope").is_err());
        assert!(EventRef::parse(br#"{"id":"x","type":"a","created":1,"data":{}}"#).is_err());
        assert!(EventRef::parse(br#"{"id":"evt_1","type":"a","created":1,"data":{}}"#).is_err());
    }

    #[test]
    fn epoch_seconds_format_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }
}
