//! Invoices: one line per subscription item, issued as Stripe does (`invoice.created` draft,
//! `invoice.finalized` open) and then settled by [`crate::engine::dunning::settle`].

use serde_json::{Value, json};

use crate::engine::dunning::settle;
use crate::engine::events::{emit, previous_attributes};
use crate::engine::store::{State, new_id};

/// One invoice line for a subscription item's price over `period`.
#[allow(clippy::too_many_arguments)]
pub fn invoice_line(
    invoice_id: &str,
    sub_id: &str,
    item_id: &Value,
    price: &Value,
    quantity: i64,
    amount: i64,
    currency: &Value,
    period: (i64, i64),
) -> Value {
    json!({
        "id": new_id("il"),
        "object": "line_item",
        "amount": amount,
        "currency": currency,
        "description": format!("{quantity} × {}", price["product"].as_str().unwrap_or_default()),
        "discount_amounts": [],
        "discountable": true,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": false,
        "metadata": {},
        "parent": {
            "type": "subscription_item_details",
            "invoice_item_details": null,
            "subscription_item_details": {
                "invoice_item": null,
                "proration": false,
                "proration_details": { "credited_items": null },
                "subscription": sub_id,
                "subscription_item": item_id
            }
        },
        "period": { "start": period.0, "end": period.1 },
        "pretax_credit_amounts": [],
        "pricing": {
            "type": "price_details",
            "price_details": { "price": price["id"], "product": price["product"] },
            "unit_amount_decimal": price["unit_amount_decimal"]
        },
        "quantity": quantity,
        "subtotal": amount,
        "taxes": []
    })
}

/// Issues an invoice for `lines` and emits what Stripe does: `invoice.created` (draft),
/// `invoice.finalized` (open), then [`settle`]. Returns the invoice as it ends.
#[allow(clippy::too_many_arguments)]
pub fn issue_invoice(
    state: &mut State,
    customer: &str,
    sub_id: &str,
    invoice_id: &str,
    metadata: &Value,
    currency: &Value,
    lines: Vec<Value>,
    total: i64,
    billing_reason: &str,
    period: (i64, i64),
) -> Value {
    let now = state.now();
    let email = state
        .customers
        .get(customer)
        .and_then(|c| c["email"].as_str().map(str::to_owned));
    let number = format!(
        "{}-{:04}",
        &customer[4..customer.len().min(12)].to_uppercase(),
        state.invoices_count() + 1
    );
    let mut invoice = json!({
        "id": invoice_id,
        "object": "invoice",
        "account_country": "GB",
        "account_name": "creditgate (emulated)",
        "account_tax_ids": null,
        "amount_due": total,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": total,
        "amount_shipping": 0,
        "application": null,
        "attempt_count": 0,
        "attempted": false,
        "auto_advance": false,
        "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null, "provider": null, "status": null },
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "created": now,
        "currency": currency,
        "custom_fields": null,
        "customer": customer,
        "customer_address": null,
        "customer_email": email,
        "customer_name": null,
        "customer_phone": null,
        "customer_shipping": null,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": null,
        "default_source": null,
        "default_tax_rates": [],
        "description": null,
        "discounts": [],
        "due_date": null,
        "effective_at": null,
        "ending_balance": null,
        "footer": null,
        "from_invoice": null,
        "hosted_invoice_url": null,
        "invoice_pdf": null,
        "issuer": { "type": "self" },
        "last_finalization_error": null,
        "latest_revision": null,
        "lines": { "object": "list", "data": lines, "has_more": false, "url": format!("/v1/invoices/{invoice_id}/lines") },
        "livemode": false,
        "metadata": {},
        "next_payment_attempt": null,
        "number": null,
        "on_behalf_of": null,
        "parent": {
            "type": "subscription_details",
            "quote_details": null,
            "subscription_details": { "metadata": metadata, "subscription": sub_id, "subscription_proration_date": null }
        },
        "payment_settings": { "default_mandate": null, "payment_method_options": null, "payment_method_types": null },
        "period_end": period.1,
        "period_start": period.0,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": null,
        "rendering": null,
        "shipping_cost": null,
        "shipping_details": null,
        "starting_balance": 0,
        "statement_descriptor": null,
        "status": "draft",
        "status_transitions": { "finalized_at": null, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null },
        "subtotal": total,
        "subtotal_excluding_tax": total,
        "test_clock": null,
        "total": total,
        "total_discount_amounts": [],
        "total_excluding_tax": total,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": null
    });
    state
        .invoices
        .insert(invoice_id.to_owned(), invoice.clone());
    emit(state, "invoice.created", &invoice, None);

    let draft = invoice.clone();
    invoice["status"] = json!("open");
    invoice["number"] = json!(number);
    invoice["effective_at"] = json!(now);
    invoice["status_transitions"]["finalized_at"] = json!(now);
    invoice["hosted_invoice_url"] = json!(format!("https://invoice.stripe.com/i/{invoice_id}"));
    emit(
        state,
        "invoice.finalized",
        &invoice,
        Some(previous_attributes(&draft, &invoice)),
    );

    settle(state, invoice)
}
