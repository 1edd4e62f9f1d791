//! Completed Checkout Sessions: whom a payment belongs to (a linked customer, a pay-first buyer,
//! a purchase held for its email's owner), claims of held purchases, and pack grants.

use super::*;

impl<St, R, D, S> Lifecycle<St, R, D, S>
where
    St: Accounts + Ledger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
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
                Ok(Binding::Held(session.id.clone()))
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
                session: held.session.clone(),
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
                session: held.session.clone(),
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
        session: &CheckoutSessionId,
        replace_subscription: bool,
        now: i64,
    ) -> Result<Handled, ClaimError> {
        let email = verified_email.normalized();
        let held = self
            .store
            .held_purchases(&email)
            .await?
            .into_iter()
            .find(|h| h.session == *session)
            .ok_or_else(|| ClaimError::NothingHeld(session.clone()))?;
        if held.claimed_by.as_ref().is_some_and(|by| by != sub) {
            return Err(ClaimError::ClaimedByAnother(session.clone()));
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
                .find(|h| h.session == *session);
            match now_held.and_then(|h| h.claimed_by) {
                Some(by) if &by == sub => {
                    bound = true;
                    break;
                }
                Some(_) => return Err(ClaimError::ClaimedByAnother(session.clone())),
                None => {}
            }
            if self
                .store
                .customer_owner(&held.customer)
                .await?
                .is_some_and(|o| &o != sub)
            {
                return Err(ClaimError::ClaimedByAnother(session.clone()));
            }
        }
        if !bound {
            return Err(HandleError::Contention(MAX_ATTEMPTS).into());
        }
        tracing::info!(user_sub = %sub, session = %session, customer = %held.customer, "held purchase claimed");
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
            Binding::Held(session) => return Ok(Handled::Applied(Applied::Held { session })),
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
        Ok(Handled::Applied(Applied::Pack {
            session: session.clone(),
            credits,
        }))
    }
}
