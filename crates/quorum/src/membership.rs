//! The quorum's membership (KIP-853's voter set) as the replicated log
//! holds it: raft-rs's `ConfState` (voters and learners) plus each
//! member's controller endpoint.
//!
//! Kafka keeps the voter set in a `VotersRecord` of the metadata log; here
//! raft-rs's own membership change machinery does that job: a change is a
//! one-step `ConfChangeV2` entry whose `context` carries the member's
//! endpoint (`host:port` of its controller listener), applied by raft-rs
//! when committed, and snapshots record the result ([`crate::snapshot`]).
//! A node that joins starts as a learner (Kafka's observer: it receives
//! the log, does not vote), and is promoted to voter once caught up.

use std::collections::BTreeMap;

use protobuf::Message as _;
use raft::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType};

use crate::node::{node_id, raft_id};

/// Voters, learners and the endpoints known for them (Kafka node ids).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    pub voters: Vec<i32>,
    /// Members that receive the log without voting (observers).
    pub learners: Vec<i32>,
    /// `host:port` of each member's controller listener, where known.
    pub endpoints: BTreeMap<i32, String>,
}

impl Membership {
    pub fn new(conf: &ConfState, endpoints: &BTreeMap<u64, String>) -> Self {
        let ids = |v: &[u64]| {
            let mut ids: Vec<i32> = v.iter().map(|id| node_id(*id)).collect();
            ids.sort_unstable();
            ids
        };
        Self {
            voters: ids(conf.get_voters()),
            learners: ids(conf.get_learners()),
            endpoints: endpoints.iter().map(|(id, e)| (node_id(*id), e.clone())).collect(),
        }
    }

    pub fn is_voter(&self, id: i32) -> bool {
        self.voters.contains(&id)
    }

    pub fn is_member(&self, id: i32) -> bool {
        self.voters.contains(&id) || self.learners.contains(&id)
    }
}

/// One change of the membership, proposed by the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoterChange {
    /// A joining node starts receiving the log (a raft-rs learner).
    AddLearner { id: i32, endpoint: String },
    /// A caught-up learner becomes a voter (AddRaftVoter); also records a
    /// voter's new endpoint (UpdateRaftVoter: raft-rs applies adding an
    /// existing voter as no change).
    AddVoter { id: i32, endpoint: String },
    /// RemoveRaftVoter (or an observer dropped).
    Remove { id: i32 },
}

impl VoterChange {
    pub fn id(&self) -> i32 {
        match self {
            VoterChange::AddLearner { id, .. } | VoterChange::AddVoter { id, .. } | VoterChange::Remove { id } => *id,
        }
    }

    /// The raft-rs change, the endpoint in its context.
    pub fn conf_change(&self) -> ConfChangeV2 {
        let (change_type, endpoint) = match self {
            VoterChange::AddLearner { endpoint, .. } => (ConfChangeType::AddLearnerNode, endpoint.as_str()),
            VoterChange::AddVoter { endpoint, .. } => (ConfChangeType::AddNode, endpoint.as_str()),
            VoterChange::Remove { .. } => (ConfChangeType::RemoveNode, ""),
        };
        let single = ConfChangeSingle { change_type, node_id: raft_id(self.id()), ..Default::default() };
        ConfChangeV2 {
            changes: vec![single].into(),
            context: endpoint.as_bytes().to_vec().into(),
            ..Default::default()
        }
    }
}

/// The membership change an entry carries (`None`: a normal entry). An
/// unreadable one is `Err`: every node skips it alike.
pub fn conf_change_of(entry: &Entry) -> Option<Result<ConfChangeV2, String>> {
    let parsed = match entry.get_entry_type() {
        EntryType::EntryNormal => return None,
        EntryType::EntryConfChange => raft::eraftpb::ConfChange::parse_from_bytes(entry.get_data())
            .map(|v1| {
                let single =
                    ConfChangeSingle { change_type: v1.get_change_type(), node_id: v1.node_id, ..Default::default() };
                ConfChangeV2 { changes: vec![single].into(), context: v1.context, ..Default::default() }
            })
            .map_err(|e| e.to_string()),
        EntryType::EntryConfChangeV2 => ConfChangeV2::parse_from_bytes(entry.get_data()).map_err(|e| e.to_string()),
    };
    Some(parsed)
}

/// Records the endpoint a change carries (an addition with a context) and
/// forgets the endpoints of removed members.
pub fn note_endpoints(cc: &ConfChangeV2, conf: &ConfState, endpoints: &mut BTreeMap<u64, String>) {
    let endpoint = std::str::from_utf8(cc.get_context()).unwrap_or_default();
    for change in cc.get_changes() {
        if change.get_change_type() != ConfChangeType::RemoveNode && !endpoint.is_empty() {
            endpoints.insert(change.node_id, endpoint.to_string());
        }
    }
    endpoints.retain(|id, _| conf.get_voters().contains(id) || conf.get_learners().contains(id));
}
