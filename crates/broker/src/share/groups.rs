//! Share group membership at the group coordinator (the node leading the
//! group's `__consumer_offsets` partition).

/// The share groups this node coordinates.
#[derive(Default)]
pub struct ShareGroups {}

impl ShareGroups {
    /// Whether `group` is a share group known here.
    pub fn exists(&self, _group: &str) -> bool {
        false
    }

    /// Members of share group `group`, `None` when it is not one.
    pub fn member_count(&self, _group: &str) -> Option<usize> {
        None
    }

    /// Topics the members of `group` subscribe to.
    pub fn subscribed_topics(&self, _group: &str) -> Vec<String> {
        Vec::new()
    }
}
