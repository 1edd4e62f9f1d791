//! Customers, products and prices: `/v1/customers`, `/v1/products`, `/v1/prices`.

use crate::engine::{customers, prices, products};
use crate::server::handlers::Op;

pub const CREATE_CUSTOMER: Op = Op {
    allowed: customers::CUSTOMER_CREATE,
    apply: |state, _, params| customers::create_customer(state, params),
};
pub const UPDATE_CUSTOMER: Op = Op {
    allowed: customers::CUSTOMER_UPDATE,
    apply: customers::update_customer,
};
pub const LIST_CUSTOMERS: Op = Op {
    allowed: customers::CUSTOMER_LIST,
    apply: |state, _, params| customers::list_customers(state, params),
};
pub const RETRIEVE_CUSTOMER: Op = Op {
    allowed: &[],
    apply: |state, id, _| state.customers.fetch("customer", id, "id"),
};

pub const CREATE_PRODUCT: Op = Op {
    allowed: products::PRODUCT_CREATE,
    apply: |state, _, params| products::create_product(state, params),
};
pub const UPDATE_PRODUCT: Op = Op {
    allowed: products::PRODUCT_UPDATE,
    apply: products::update_product,
};
pub const LIST_PRODUCTS: Op = Op {
    allowed: products::PRODUCT_LIST,
    apply: |state, _, params| products::list_products(state, params),
};
pub const RETRIEVE_PRODUCT: Op = Op {
    allowed: &[],
    apply: |state, id, _| state.products.fetch("product", id, "id"),
};

pub const CREATE_PRICE: Op = Op {
    allowed: prices::PRICE_CREATE,
    apply: |state, _, params| prices::create_price(state, params),
};
pub const UPDATE_PRICE: Op = Op {
    allowed: prices::PRICE_UPDATE,
    apply: prices::update_price,
};
pub const LIST_PRICES: Op = Op {
    allowed: prices::PRICE_LIST,
    apply: |state, _, params| prices::list_prices(state, params),
};
pub const RETRIEVE_PRICE: Op = Op {
    allowed: &[],
    apply: |state, id, _| state.prices.fetch("price", id, "id"),
};
