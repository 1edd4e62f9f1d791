//! Held purchases (held once, found in any case, claimed once) and packs (recorded once,
//! revoked conditioned on what was revoked before).

use super::*;

pub(super) async fn held_purchase_contract<S: Accounts + Ledger>(
    store: &S,
    ids: &Ids,
) -> anyhow::Result<()> {
    let lower = format!("pay-{}@example.com", ids.tag);
    let mixed = Email::parse(&format!("Pay-{}@Example.COM", ids.tag))?;
    let later = HeldPurchase {
        session: ids.session()?,
        customer: ids.customer()?,
        email: mixed.clone(),
        mode: SessionMode::Payment,
        plan: Some(plan("power")?),
        held_at: 200,
        claimed_by: None,
    };
    let earlier = HeldPurchase {
        session: ids.session()?,
        customer: ids.customer()?,
        email: Email::parse(&lower)?,
        mode: SessionMode::Subscription,
        plan: Some(plan("basic")?),
        held_at: 100,
        claimed_by: None,
    };
    assert_eq!(store.hold_purchase(&later).await?, Created::New);
    assert_eq!(
        store.hold_purchase(&later).await?,
        Created::AlreadyExisted,
        "a redelivery"
    );
    let shouted = HeldPurchase {
        email: Email::parse(&lower.to_uppercase())?,
        held_at: 999,
        ..later.clone()
    };
    assert_eq!(
        store.hold_purchase(&shouted).await?,
        Created::AlreadyExisted,
        "the same session under the email in another case"
    );
    assert_eq!(store.hold_purchase(&earlier).await?, Created::New);

    let normalized = |h: &HeldPurchase| HeldPurchase {
        email: h.email.normalized(),
        ..h.clone()
    };
    let expected = vec![normalized(&earlier), normalized(&later)];
    for asked in [
        Email::parse(&lower)?,
        mixed.clone(),
        Email::parse(&lower.to_uppercase())?,
    ] {
        assert_eq!(
            store.held_purchases(&asked).await?,
            expected,
            "held for {asked}: oldest first, the email lowercased"
        );
    }
    assert_eq!(
        store
            .held_purchases(&Email::parse(&format!("other-{}@example.com", ids.tag))?)
            .await?,
        Vec::new()
    );

    let claimant = signed_up(store, ids, 0, 0).await?;
    let other = signed_up(store, ids, 0, 0).await?;
    assert_eq!(
        store.claim_purchase(&later, &claimant.sub).await?,
        Saved::Written
    );
    let claimed = HeldPurchase {
        claimed_by: Some(claimant.sub.clone()),
        ..normalized(&later)
    };
    assert_eq!(
        store.held_purchases(&mixed).await?,
        vec![normalized(&earlier), claimed.clone()]
    );
    assert_eq!(
        store.customer_owner(&later.customer).await?,
        Some(claimant.sub.clone())
    );
    let bound = Profile {
        linked_customers: vec![later.customer.clone()],
        ..claimant.clone()
    };
    assert_eq!(current(store, &claimant.sub).await?, bound);

    assert_eq!(
        store.claim_purchase(&later, &claimant.sub).await?,
        Saved::Written,
        "the same user claiming again: idempotent"
    );
    assert_eq!(current(store, &claimant.sub).await?, bound, "linked once");

    assert_eq!(
        store.claim_purchase(&later, &other.sub).await?,
        Saved::Conflict,
        "another user claiming a claimed purchase"
    );
    assert_eq!(
        store.held_purchases(&mixed).await?,
        vec![normalized(&earlier), claimed.clone()]
    );
    assert_eq!(
        store.customer_owner(&later.customer).await?,
        Some(claimant.sub.clone())
    );
    assert_eq!(current(store, &other.sub).await?, other);

    // A hold whose customer is someone's sign-up customer cannot be claimed by another user.
    let taken = HeldPurchase {
        session: ids.session()?,
        customer: other.customer.clone(),
        held_at: 300,
        ..earlier.clone()
    };
    assert_eq!(store.hold_purchase(&taken).await?, Created::New);
    assert_eq!(
        store.claim_purchase(&taken, &claimant.sub).await?,
        Saved::Conflict,
        "a customer linked to another user"
    );
    assert_eq!(current(store, &claimant.sub).await?, bound);

    let nobody = ids.sub()?;
    assert_eq!(
        store.claim_purchase(&earlier, &nobody).await?,
        Saved::Conflict,
        "a claim by a user with no profile"
    );
    let never = HeldPurchase {
        session: ids.session()?,
        ..earlier.clone()
    };
    assert_eq!(
        store.claim_purchase(&never, &claimant.sub).await?,
        Saved::Conflict,
        "a claim of a purchase never held"
    );
    assert_eq!(store.customer_owner(&earlier.customer).await?, None);
    // Held at one instant: in session id order, whatever the order they were held in.
    let tie_email = Email::parse(&format!("tie-{}@example.com", ids.tag))?;
    let first = ids.session()?;
    let second = ids.session()?;
    let mut tied = Vec::new();
    for session in [second, first] {
        let hold = HeldPurchase {
            session,
            customer: ids.customer()?,
            email: tie_email.clone(),
            held_at: 150,
            ..earlier.clone()
        };
        assert_eq!(store.hold_purchase(&hold).await?, Created::New);
        tied.push(hold);
    }
    tied.sort_by(|a, b| a.session.cmp(&b.session));
    assert_eq!(store.held_purchases(&tie_email).await?, tied);

    let all_held = vec![normalized(&earlier), claimed, normalized(&taken)];
    assert_eq!(store.held_purchases(&mixed).await?, all_held);
    let mine = |held: Vec<HeldPurchase>| -> Vec<HeldPurchase> {
        held.into_iter()
            .filter(|h| h.email == mixed.normalized())
            .collect()
    };
    assert_eq!(
        mine(store.all_held_purchases().await?),
        all_held,
        "every held purchase, listed for operators: oldest first, claimed ones included"
    );
    Ok(())
}

pub(super) async fn pack_contract<S: Accounts + Ledger>(
    store: &S,
    ids: &Ids,
) -> anyhow::Result<()> {
    let user = signed_up(store, ids, 0, 10).await?;
    let sub = &user.sub;
    let grant = PackGrant {
        session: ids.session()?,
        plan: plan("power")?,
        credits: Credits::new(100),
        payment_intent: Some(ids.payment()?),
        revoked: Credits::ZERO,
        removed: Credits::ZERO,
    };
    let pi = grant
        .payment_intent
        .clone()
        .context("the grant has a payment intent")?;
    assert_eq!(store.pack_grant(sub, &grant.session).await?, None);
    assert_eq!(store.pack_for_payment(sub, &pi).await?, None);

    assert_eq!(store.record_pack(sub, &grant).await?, Saved::Written);
    assert_eq!(held_balances(store, sub).await?, balances(0, 110));
    assert_eq!(
        store.record_pack(sub, &grant).await?,
        Saved::Conflict,
        "the same pack again"
    );
    assert_eq!(
        held_balances(store, sub).await?,
        balances(0, 110),
        "purchased added once"
    );
    assert_eq!(
        store.pack_grant(sub, &grant.session).await?,
        Some(grant.clone())
    );
    assert_eq!(store.pack_for_payment(sub, &pi).await?, Some(grant.clone()));
    assert_eq!(store.pack_for_payment(sub, &ids.payment()?).await?, None);
    let stranger = signed_up(store, ids, 0, 0).await?;
    assert_eq!(store.pack_grant(&stranger.sub, &grant.session).await?, None);
    assert_eq!(store.pack_for_payment(&stranger.sub, &pi).await?, None);
    assert!(
        store.grant_exists(sub, grant.session.as_str()).await?,
        "a pack is a grant in the ledger, under its session"
    );

    let refunded = PackGrant {
        revoked: Credits::new(30),
        removed: Credits::new(30),
        ..grant.clone()
    };
    assert_eq!(
        store.revoke_pack(sub, &grant, &refunded).await?,
        Saved::Written
    );
    assert_eq!(held_balances(store, sub).await?, balances(0, 80));
    assert_eq!(
        store.pack_grant(sub, &grant.session).await?,
        Some(refunded.clone())
    );
    assert_eq!(
        store.pack_for_payment(sub, &pi).await?,
        Some(refunded.clone())
    );

    // Conditioned on what was revoked before: a stale `before` changes nothing.
    let stale = PackGrant {
        revoked: Credits::new(50),
        removed: Credits::new(50),
        ..grant.clone()
    };
    assert_eq!(
        store.revoke_pack(sub, &grant, &stale).await?,
        Saved::Conflict
    );
    assert_eq!(held_balances(store, sub).await?, balances(0, 80));
    assert_eq!(
        store.pack_grant(sub, &grant.session).await?,
        Some(refunded.clone())
    );

    // Revoked more than was removed (credits already spent): `removed` says what was taken.
    let disputed = PackGrant {
        revoked: Credits::new(100),
        removed: Credits::new(60),
        ..grant.clone()
    };
    assert_eq!(
        store.revoke_pack(sub, &refunded, &disputed).await?,
        Saved::Written
    );
    assert_eq!(held_balances(store, sub).await?, balances(0, 50));
    assert_eq!(
        store.pack_grant(sub, &grant.session).await?,
        Some(disputed.clone())
    );

    // A revocation writes what was revoked and removed; the pack stays as it was recorded.
    let rewritten = PackGrant {
        credits: Credits::new(5),
        plan: plan("basic")?,
        payment_intent: None,
        ..disputed.clone()
    };
    assert_eq!(
        store.revoke_pack(sub, &disputed, &rewritten).await?,
        Saved::Written
    );
    assert_eq!(
        store.pack_grant(sub, &grant.session).await?,
        Some(disputed.clone())
    );
    assert_eq!(held_balances(store, sub).await?, balances(0, 50));

    // A pack is a grant under its session: no invoice grant can take that key.
    let before = current(store, sub).await?;
    let collide = ProfileWrite {
        before: before.clone(),
        after: Profile {
            allowance_source: Some(grant.session.to_string()),
            ..before.clone()
        },
        allowance: AllowanceWrite::Reset(Credits::new(1_000)),
        generation_bumped: false,
        grant: Some(GrantRecord {
            source: grant.session.to_string(),
            credits: Credits::new(1_000),
            cause: "invoice",
        }),
    };
    assert_eq!(store.write_profile(&collide).await?, Saved::Conflict);
    assert_eq!(current(store, sub).await?, before, "nothing of it written");

    // No such pack, no such user.
    let unknown = PackGrant {
        session: ids.session()?,
        ..grant.clone()
    };
    assert_eq!(
        store.revoke_pack(sub, &unknown, &refunded).await?,
        Saved::Conflict,
        "revoking a pack never recorded"
    );
    assert_eq!(held_balances(store, sub).await?, balances(0, 50));
    let nobody = ids.sub()?;
    assert_eq!(
        store.record_pack(&nobody, &unknown).await?,
        Saved::Conflict,
        "a pack for a user with no profile"
    );
    assert_eq!(store.pack_grant(&nobody, &unknown.session).await?, None);
    Ok(())
}
