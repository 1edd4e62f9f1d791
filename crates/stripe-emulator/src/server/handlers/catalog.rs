//! Customers, products and prices: `/v1/customers`, `/v1/products`, `/v1/prices`.

use crate::engine::{customers, prices, products};
use crate::server::handlers::Op;

// The parameters each route takes.
pub const CUSTOMER_CREATE: &[&str] = &[
    "email",
    "name",
    "description",
    "metadata",
    "phone",
    "preferred_locales",
    "invoice_prefix",
];
pub const CUSTOMER_UPDATE: &[&str] = &[
    "email",
    "name",
    "description",
    "metadata",
    "phone",
    "preferred_locales",
];
pub const CUSTOMER_LIST: &[&str] = &["email", "limit", "starting_after", "ending_before"];
pub const PRODUCT_CREATE: &[&str] = &[
    "id",
    "name",
    "active",
    "description",
    "metadata",
    "statement_descriptor",
    "unit_label",
    "url",
];
pub const PRODUCT_UPDATE: &[&str] = &[
    "name",
    "active",
    "description",
    "metadata",
    "statement_descriptor",
    "unit_label",
    "url",
];
pub const PRODUCT_LIST: &[&str] = &["active", "ids", "limit", "starting_after", "ending_before"];
pub const PRICE_CREATE: &[&str] = &[
    "currency",
    "product",
    "unit_amount",
    "recurring",
    "lookup_key",
    "transfer_lookup_key",
    "metadata",
    "nickname",
    "active",
    "tax_behavior",
];
pub const PRICE_UPDATE: &[&str] = &[
    "active",
    "lookup_key",
    "transfer_lookup_key",
    "metadata",
    "nickname",
    "tax_behavior",
];
pub const PRICE_LIST: &[&str] = &[
    "active",
    "product",
    "lookup_keys",
    "type",
    "currency",
    "limit",
    "starting_after",
    "ending_before",
];

pub const CREATE_CUSTOMER: Op = Op {
    allowed: CUSTOMER_CREATE,
    apply: |state, _, params| customers::create_customer(state, params),
};
pub const UPDATE_CUSTOMER: Op = Op {
    allowed: CUSTOMER_UPDATE,
    apply: customers::update_customer,
};
pub const LIST_CUSTOMERS: Op = Op {
    allowed: CUSTOMER_LIST,
    apply: |state, _, params| customers::list_customers(state, params),
};
pub const RETRIEVE_CUSTOMER: Op = Op {
    allowed: &[],
    apply: |state, id, _| state.customers.fetch("customer", id, "id"),
};

pub const CREATE_PRODUCT: Op = Op {
    allowed: PRODUCT_CREATE,
    apply: |state, _, params| products::create_product(state, params),
};
pub const UPDATE_PRODUCT: Op = Op {
    allowed: PRODUCT_UPDATE,
    apply: products::update_product,
};
pub const LIST_PRODUCTS: Op = Op {
    allowed: PRODUCT_LIST,
    apply: |state, _, params| products::list_products(state, params),
};
pub const RETRIEVE_PRODUCT: Op = Op {
    allowed: &[],
    apply: |state, id, _| state.products.fetch("product", id, "id"),
};

pub const CREATE_PRICE: Op = Op {
    allowed: PRICE_CREATE,
    apply: |state, _, params| prices::create_price(state, params),
};
pub const UPDATE_PRICE: Op = Op {
    allowed: PRICE_UPDATE,
    apply: prices::update_price,
};
pub const LIST_PRICES: Op = Op {
    allowed: PRICE_LIST,
    apply: |state, _, params| prices::list_prices(state, params),
};
pub const RETRIEVE_PRICE: Op = Op {
    allowed: &[],
    apply: |state, id, _| state.prices.fetch("price", id, "id"),
};
