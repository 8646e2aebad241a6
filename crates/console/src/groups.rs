//! The groups section of the console (stub: filled in by its owner).

use crate::Routes;

pub fn routes() -> Routes {
    Routes::new()
}

/// Records this section's chart samples (lag per group) at `now` (unix seconds).
pub async fn sample(_broker: &vltava_broker::Broker, _history: &crate::history::History, _now: i64) {}
