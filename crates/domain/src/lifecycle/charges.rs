//! Refunds and disputes: the pack bought with a charge loses its share, never below zero.

use super::*;

/// How many of a pack's `credits` a charge's refunds and disputes take back: all of them for a
/// dispute, else the refunded share, rounded up so a refund never leaves a credit unpaid for.
pub fn revoked_share(credits: Credits, charge: Option<&ChargeFacts>) -> Credits {
    let Some(charge) = charge else {
        return Credits::ZERO;
    };
    if charge.disputed || (charge.amount > 0 && charge.amount_refunded >= charge.amount) {
        return credits;
    }
    if charge.amount == 0 || charge.amount_refunded == 0 {
        return Credits::ZERO;
    }
    let share = (u128::from(credits.get()) * u128::from(charge.amount_refunded))
        .div_ceil(u128::from(charge.amount));
    Credits::new(u64::try_from(share).unwrap_or(u64::MAX).min(credits.get()))
}

impl<St, R, D, S> Lifecycle<St, R, D, S>
where
    St: Accounts + Ledger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
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
                return Ok(Handled::Applied(Applied::PackAlreadyRevoked {
                    session: before.session,
                    revoked: before.revoked,
                }));
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
            return Ok(Handled::Applied(Applied::PackRevoked {
                session: before.session,
                revoked: target,
                removed: take,
            }));
        }
        Err(HandleError::Contention(MAX_ATTEMPTS))
    }
}
