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

    /// Share groups coordinated here with their state name (ListGroups).
    pub fn list(&self) -> Vec<(String, &'static str)> {
        Vec::new()
    }

    /// Forgets an empty share group (DeleteGroups): GROUP_ID_NOT_FOUND when
    /// it is not one, NON_EMPTY_GROUP while it has members.
    pub fn remove(&self, _group: &str) -> Result<(), vltava_protocol::ResponseError> {
        Err(vltava_protocol::ResponseError::GroupIdNotFound)
    }
}
