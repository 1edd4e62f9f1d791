//! Reconciling a profile with one subscription as Stripe has it now, and keeping one bill per
//! user.

use super::*;

/// Of one user's live subscriptions, the one kept: the best standing, then the newest, then
/// the greatest id, so every delivery (and every concurrent one) chooses the same.
pub fn keep_one(
    live: &[crate::ports::LiveSubscription],
) -> Option<&crate::ports::LiveSubscription> {
    live.iter().filter(|s| s.status.is_live()).max_by(|a, b| {
        (a.status.rank(), a.created, &a.id).cmp(&(b.status.rank(), b.created, &b.id))
    })
}

/// The live subscriptions a user must lose so that one bill remains: every billing one but
/// the kept one.
pub fn duplicates(live: &[crate::ports::LiveSubscription]) -> Vec<&crate::ports::LiveSubscription> {
    let Some(keep) = keep_one(live) else {
        return Vec::new();
    };
    live.iter()
        .filter(|s| s.id != keep.id && s.status.bills())
        .collect()
}

/// What reconciling a subscription decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionOutcome {
    /// The subscription is not one the profile follows (an older one, or not our price).
    NotFollowed(&'static str),
    Write(Box<ProfileWrite>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("subscription {0}'s price has lookup key {1:?}, which is no plan in plans.json")]
    UnknownPlan(SubscriptionId, Option<String>),
}

/// The grant key of an invoice for a plan: an upgrade within a period is a second grant for
/// the same invoice, and each (invoice, plan) grants at most once.
pub fn invoice_grant_source(invoice: &InvoiceId, plan: &PlanId) -> String {
    GrantSource {
        invoice: invoice.clone(),
        plan: plan.clone(),
    }
    .to_string()
}

/// Whether the profile should follow `facts` rather than the subscription it follows now.
fn follows(profile: &Profile, facts: &SubscriptionFacts) -> bool {
    match &profile.subscription {
        None => true,
        Some(_) if facts.chosen => true,
        Some(current) if current.id == facts.id => true,
        // A newer live subscription takes over; an old one ending changes nothing.
        Some(current) => {
            facts.status.is_live()
                && (!current.status.is_live() || facts.created >= current.created)
        }
    }
}

/// The grant (if any) the latest invoice implies for `plan`: only a paid invoice of a paying
/// (or grace) subscription grants. Returns the source key.
pub fn candidate_grant(facts: &SubscriptionFacts, plan: &PlanId) -> Option<String> {
    facts
        .latest_invoice
        .as_ref()
        .filter(|i| i.paid)
        .map(|i| invoice_grant_source(&i.id, plan))
}

/// Reconciles `profile` with a subscription as Stripe has it now. `granted` says whether the
/// candidate grant's ledger entry already exists. `now` is Stripe's clock
/// (`max(event.created, profile.stripe_clock)`).
pub fn reconcile_subscription(
    profile: &Profile,
    facts: &SubscriptionFacts,
    granted: bool,
    catalogue: &Catalogue,
    policy: &AccessPolicy,
    now: i64,
) -> Result<SubscriptionOutcome, LifecycleError> {
    let plan = facts
        .lookup_key
        .as_deref()
        .and_then(|key| crate::catalogue::parse_lookup_key(catalogue, key))
        .filter(|(plan, mode)| *mode == crate::catalogue::SaleMode::Subscription && !plan.is_free())
        .map(|(plan, _)| plan)
        .ok_or_else(|| LifecycleError::UnknownPlan(facts.id.clone(), facts.lookup_key.clone()))?;
    if !follows(profile, facts) {
        return Ok(SubscriptionOutcome::NotFollowed(
            "the profile follows a newer live subscription",
        ));
    }
    let past_due_since = (facts.status == SubStatus::PastDue)
        .then(|| {
            facts
                .latest_invoice
                .as_ref()
                .filter(|i| !i.paid)
                .map(|i| i.created)
        })
        .flatten();
    let free = catalogue.free_plan();
    let now = now.max(profile.stripe_clock);
    let standing = standing(facts.status, past_due_since, now, policy);
    let (new_plan, access) = entitlement(standing, plan.id(), free.id(), policy);

    let mut after = profile.clone();
    after.plan = new_plan.clone();
    after.access = access;
    after.stripe_clock = now;
    after.subscription = Some(SubscriptionState {
        id: facts.id.clone(),
        status: facts.status,
        plan: plan.id().clone(),
        price: facts.price.clone(),
        created: facts.created,
        current_period_end: facts.current_period_end,
        cancel_at_period_end: facts.cancel_at_period_end,
        past_due_since,
    });
    let was_free = &profile.plan == free.id();
    let is_free = &new_plan == free.id();
    let generation_bumped = was_free != is_free;
    if generation_bumped {
        after.manager_generation += 1;
    }

    // Credits: the latest paid invoice resets the allowance once per (invoice, plan).
    let mut allowance = AllowanceWrite::Keep;
    let mut grant = None;
    if !is_free
        && access == Access::Active
        && let Some(source) = candidate_grant(facts, plan.id())
        && profile.allowance_source.as_deref() != Some(source.as_str())
        && !granted
    {
        let previous = profile
            .allowance_source
            .as_deref()
            .and_then(GrantSource::parse);
        let same_invoice = previous.as_ref().map(|p| &p.invoice)
            == GrantSource::parse(&source).as_ref().map(|s| &s.invoice)
            && previous.is_some();
        let previous_credits = previous
            .as_ref()
            .and_then(|p| catalogue.get(&p.plan).map(|p| p.credits()));
        allowance = match previous_credits {
            // A downgrade within the period keeps no more than the new plan's credits.
            Some(prev) if same_invoice && plan.credits() < prev => AllowanceWrite::Cap {
                to: plan.credits().min(profile.allowance),
                seen: profile.allowance,
            },
            _ => AllowanceWrite::Reset(plan.credits()),
        };
        after.allowance_source = Some(source.clone());
        grant = Some(GrantRecord {
            source,
            credits: plan.credits(),
            cause: "invoice",
        });
    }
    Ok(SubscriptionOutcome::Write(Box::new(ProfileWrite {
        before: profile.clone(),
        after,
        allowance,
        generation_bumped,
        grant,
    })))
}

/// The free credit manager a profile needs, if it is on the free plan.
pub fn free_manager(
    profile: &Profile,
    catalogue: &Catalogue,
    period_override_seconds: Option<u64>,
) -> Option<ManagerRun> {
    let free = catalogue.free_plan();
    (&profile.plan == free.id()).then(|| {
        let mut run = ManagerRun::for_plan(
            profile.sub.clone(),
            profile.manager_generation,
            free.id().clone(),
            free.credits(),
            free.period(),
        );
        if let Some(seconds) = period_override_seconds {
            run.period_seconds = seconds;
        }
        run
    })
}

impl<St, R, D, S> Lifecycle<St, R, D, S>
where
    St: Accounts + Ledger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
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
            return Ok(Handled::Applied(Applied::Subscription {
                id,
                status: facts.status,
                plan: after.plan.clone(),
                access: after.access,
                grant: write.grant.map(|g| (g.credits, g.source)),
            }));
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
}
