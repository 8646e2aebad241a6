//! Enrich orders: joins a stream of orders with a table of customers.
//! `--customers` holds customers keyed by customer id (UTF-8), values JSON
//! `{"name": .., "tier": ..}` (a null value deletes the customer);
//! `--orders` holds orders keyed by order id, values JSON `{"order_id": ..,
//! "customer_id": .., "amount": ..}`. Orders are re-keyed by customer id
//! (through a repartition topic) and joined with the customer table (a left
//! join: an order of an unknown customer is written with `customer: null`);
//! `--output` gets, keyed by order id, the order with its customer.
//!
//! Topics read by a stream-table join must be partitioned alike: produce the
//! customers with Java's default partitioner (murmur2, `partitioner=murmur2_random`
//! in librdkafka) and the same partition count as the orders' repartition topic
//! (the orders topic's).
//!
//! cargo run --release -p vltava-streams --example enrich-orders -- \
//!     --brokers 127.0.0.1:9092 --application-id enrich --orders orders --customers customers --output orders-enriched

mod common;

use clap::Parser;
use serde::{Deserialize, Serialize};
use vltava_streams::{Consumed, Joined, Materialized, Produced, Serdes, StreamsBuilder};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    common: common::Common,
    #[arg(long, default_value = "orders")]
    orders: String,
    #[arg(long, default_value = "customers")]
    customers: String,
    #[arg(long, default_value = "orders-enriched")]
    output: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order {
    order_id: String,
    customer_id: String,
    amount: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Customer {
    name: String,
    tier: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct EnrichedOrder {
    order_id: String,
    customer_id: String,
    amount: f64,
    customer: Option<Customer>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let builder = StreamsBuilder::new();
    let customers = builder.table(
        &cli.customers,
        Consumed::with(Serdes::string(), Serdes::json::<Customer>()),
        Materialized::as_store("customers"),
    )?;
    builder
        .stream(&cli.orders, Consumed::with(Serdes::string(), Serdes::json::<Order>()))?
        .select_key(|_, order: &Order| order.customer_id.clone())?
        .left_join_table(
            &customers,
            |order: &Order, customer: Option<&Customer>| EnrichedOrder {
                order_id: order.order_id.clone(),
                customer_id: order.customer_id.clone(),
                amount: order.amount,
                customer: customer.cloned(),
            },
            Joined::with(Serdes::string(), Serdes::json::<Order>(), Serdes::json::<Customer>()),
        )?
        .select_key(|_, e: &EnrichedOrder| e.order_id.clone())?
        .to(&cli.output, Produced::with(Serdes::string(), Serdes::json::<EnrichedOrder>()))?;
    common::run(builder.build()?, &cli.common)
}
