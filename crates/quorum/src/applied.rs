//! Ids of recently applied entries. A proposer that cannot tell whether its
//! entry was lost (forwarded to a controller that then died) proposes the
//! same entry again; the copy is skipped when applied. Every node applies
//! the same log from its start (or from a snapshot, which carries these
//! ids), so every node skips the same copies.

use std::collections::{HashSet, VecDeque};

/// How many entry ids are remembered (a retry comes within seconds).
pub const APPLIED_IDS_KEPT: usize = 100_000;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AppliedIds {
    order: VecDeque<u64>,
    seen: HashSet<u64>,
}

impl AppliedIds {
    /// Whether the entry `id` is applied for the first time (id 0: always).
    pub fn first_time(&mut self, id: u64) -> bool {
        if id == 0 {
            return true;
        }
        if !self.seen.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > APPLIED_IDS_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }

    /// The remembered ids, oldest first (for snapshots).
    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.order.iter().copied()
    }

    pub fn from_ids(ids: impl IntoIterator<Item = u64>) -> Self {
        let mut applied = Self::default();
        for id in ids {
            applied.first_time(id);
        }
        applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retried_entries_apply_once() {
        let mut ids = AppliedIds::default();
        assert!(ids.first_time(7));
        assert!(!ids.first_time(7));
        assert!(ids.first_time(0) && ids.first_time(0), "id 0 is never deduplicated");
        for i in 100..100 + APPLIED_IDS_KEPT as u64 {
            assert!(ids.first_time(i));
        }
        assert!(ids.first_time(7), "forgotten after APPLIED_IDS_KEPT newer ids");
        let copy = AppliedIds::from_ids(ids.ids());
        assert_eq!(copy, ids);
    }
}
