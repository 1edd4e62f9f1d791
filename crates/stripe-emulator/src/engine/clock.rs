//! The billing clock: `POST /_emulator/clock/advance` moves the emulator's time forward and, on
//! the way, does what Stripe does at each moment passed (trial warnings, renewals and
//! cancellations at period ends, Smart Retries of past-due invoices).

use serde_json::{Value, json};

use crate::engine::dunning::retry_invoice;
use crate::engine::events::{emit, previous_attributes};
use crate::engine::invoices::{invoice_line, issue_invoice};
use crate::engine::store::{State, new_id};
use crate::error::ApiError;

/// `ts` moved on by `count` calendar `interval`s (day, week, month, year), as Stripe bills:
/// a month from 31 January is the last day of February.
pub fn advance(ts: i64, interval: &str, count: i64) -> i64 {
    match interval {
        "day" => ts + 86_400 * count,
        "week" => ts + 7 * 86_400 * count,
        "month" | "year" => {
            let months = if interval == "year" {
                12 * count
            } else {
                count
            };
            let Ok(at) = time::OffsetDateTime::from_unix_timestamp(ts) else {
                return ts + 30 * 86_400 * months;
            };
            let total = i64::from(at.year()) * 12 + i64::from(u8::from(at.month())) - 1 + months;
            let (year, month0) = (total.div_euclid(12), total.rem_euclid(12));
            let Ok(month) = time::Month::try_from((month0 + 1) as u8) else {
                return ts + 30 * 86_400 * months;
            };
            let year = year as i32;
            let day = at.day().min(time::util::days_in_month(month, year));
            match time::Date::from_calendar_date(year, month, day) {
                Ok(date) => at.replace_date(date).unix_timestamp(),
                Err(_) => ts + 30 * 86_400 * months,
            }
        }
        _ => ts,
    }
}

fn set_now(state: &mut State, at: i64) {
    let now = state.now();
    if at > now {
        state.clock_offset += at - now;
    }
}

fn period_end(sub: &Value) -> i64 {
    sub["items"]["data"][0]["current_period_end"]
        .as_i64()
        .unwrap_or(i64::MAX)
}

/// Test route: moves the emulator's clock forward by `seconds`, and on the way does what Stripe
/// does at each moment passed, in time order: `customer.subscription.trial_will_end` three days
/// before a trial ends; at a period end, cancellation (`cancel_at_period_end`) or renewal (a
/// `subscription_cycle` invoice, paid, or failed when the customer's payment method is marked
/// failing, which makes the subscription `past_due`); and a retry of past-due invoices.
pub fn advance_clock(state: &mut State, seconds: i64) -> Result<Value, ApiError> {
    if !(1..=5 * 366 * 86_400).contains(&seconds) {
        return Err(ApiError::invalid(
            "`seconds` must be between 1 and five years.",
            Some("seconds"),
        ));
    }
    let target = state.now() + seconds;
    loop {
        // The next moment something happens, if it falls inside the advance.
        let mut next: Option<(i64, String, Moment)> = None;
        for sub in state.subscriptions.newest_first() {
            let status = sub["status"].as_str().unwrap_or_default();
            if !matches!(status, "active" | "trialing" | "past_due") {
                continue;
            }
            let id = sub["id"].as_str().unwrap_or_default().to_owned();
            let mut consider = |at: i64, moment: Moment| {
                if at <= target && next.as_ref().is_none_or(|(t, _, _)| at < *t) {
                    next = Some((at, id.clone(), moment));
                }
            };
            if status == "past_due"
                && let Some(invoice) = sub["latest_invoice"]
                    .as_str()
                    .and_then(|i| state.invoices.get(i))
                && invoice["status"] == "open"
                && let Some(at) = invoice["next_payment_attempt"].as_i64()
            {
                consider(at, Moment::Retry);
            }
            if status == "trialing"
                && let Some(trial_end) = sub["trial_end"].as_i64()
                && !state.trial_will_end_sent.contains(&id)
            {
                consider(trial_end - 3 * 86_400, Moment::TrialWarning);
            }
            consider(period_end(sub), Moment::PeriodEnd);
        }
        let Some((at, id, moment)) = next else { break };
        set_now(state, at);
        match moment {
            Moment::TrialWarning => {
                state.trial_will_end_sent.insert(id.clone());
                if let Some(sub) = state.subscriptions.get(&id).cloned() {
                    emit(state, "customer.subscription.trial_will_end", &sub, None);
                }
            }
            Moment::PeriodEnd => roll_period(state, &id)?,
            Moment::Retry => retry_invoice(state, &id),
        }
    }
    set_now(state, target);
    Ok(json!({ "object": "test_clock_advance", "frozen_time": state.now() }))
}

#[derive(Debug, Clone, Copy)]
enum Moment {
    TrialWarning,
    PeriodEnd,
    Retry,
}

/// A subscription reaching its period end: cancelled if it asked to be, else renewed.
fn roll_period(state: &mut State, id: &str) -> Result<(), ApiError> {
    let old = state.subscriptions.fetch("subscription", id, "id")?;
    let now = state.now();
    let mut sub = old.clone();
    if old["cancel_at_period_end"] == true {
        sub["status"] = json!("canceled");
        sub["canceled_at"] = json!(now);
        sub["ended_at"] = json!(now);
        state.subscriptions.insert(id.to_owned(), sub.clone());
        emit(state, "customer.subscription.deleted", &sub, None);
        return Ok(());
    }
    let customer = old["customer"].as_str().unwrap_or_default().to_owned();
    let currency = old["currency"].clone();
    let invoice_id = new_id("in");
    let start = period_end(&old);
    let mut lines = Vec::new();
    let mut total = 0;
    let mut end = start;
    let items = old["items"]["data"].as_array().cloned().unwrap_or_default();
    for (index, item) in items.iter().enumerate() {
        let interval = item["price"]["recurring"]["interval"]
            .as_str()
            .unwrap_or("month");
        let count = item["price"]["recurring"]["interval_count"]
            .as_i64()
            .unwrap_or(1);
        end = advance(start, interval, count);
        let quantity = item["quantity"].as_i64().unwrap_or(1);
        let amount = item["price"]["unit_amount"].as_i64().unwrap_or(0) * quantity;
        total += amount;
        sub["items"]["data"][index]["current_period_start"] = json!(start);
        sub["items"]["data"][index]["current_period_end"] = json!(end);
        lines.push(invoice_line(
            &invoice_id,
            id,
            &item["id"],
            &item["price"],
            quantity,
            amount,
            &currency,
            (start, end),
        ));
    }
    let metadata = old["metadata"].clone();
    // The period rolls first (as Stripe's subscription.updated precedes the invoice's events).
    sub["status"] = json!("active");
    sub["latest_invoice"] = json!(invoice_id);
    state.subscriptions.insert(id.to_owned(), sub.clone());
    let invoice = issue_invoice(
        state,
        &customer,
        id,
        &invoice_id,
        &metadata,
        &currency,
        lines,
        total,
        "subscription_cycle",
        (start, end),
    );
    if invoice["status"] != "paid" {
        sub["status"] = json!("past_due");
        state.subscriptions.insert(id.to_owned(), sub.clone());
    }
    emit(
        state,
        "customer.subscription.updated",
        &sub,
        Some(previous_attributes(&old, &sub)),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::advance;

    #[test]
    fn a_month_from_the_31st_of_january_is_the_end_of_february() {
        // 2027-01-31T10:00:00Z → 2027-02-28T10:00:00Z
        assert_eq!(advance(1_801_389_600, "month", 1), 1_803_808_800);
        // and a year from a leap day is the 28th
        let leap = 1_709_200_800; // 2024-02-29T10:00:00Z
        assert_eq!(advance(leap, "year", 1), 1_740_736_800); // 2025-02-28T10:00:00Z
        assert_eq!(advance(0, "week", 2), 14 * 86_400);
    }
}
