//! AddRaftVoter, RemoveRaftVoter and UpdateRaftVoter (KIP-853): changes of
//! the metadata quorum's voter set, carried out by the quorum leader
//! ([`vltava_quorum::Quorum::change_voters`]: raft-rs membership changes,
//! one at a time). Another node forwards the request to the leader
//! ([`super::quorum_leader`]). Kafka's error codes: DUPLICATE_VOTER,
//! VOTER_NOT_FOUND, REQUEST_TIMED_OUT (another change in flight, or the new
//! voter did not catch up in time), NOT_LEADER_OR_FOLLOWER (no leader to
//! reach), INVALID_REQUEST, INCONSISTENT_CLUSTER_ID.
//!
//! The voter directory id of Kafka's requests is accepted and not checked:
//! a voter here is its node id (raft-rs has no directory ids).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::update_raft_voter_response::CurrentLeader;
use kafka_protocol::messages::{
    AddRaftVoterRequest, AddRaftVoterResponse, ApiKey, BrokerId, RemoveRaftVoterRequest, RemoveRaftVoterResponse,
    ResponseKind, UpdateRaftVoterRequest, UpdateRaftVoterResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use vltava_protocol::{ResponseError, StrBytes};
use vltava_quorum::{VoterError, VoterOp};

use super::{quorum_leader, ResponseFuture, Session};
use crate::Broker;

/// AddRaftVoter's wait when the request gives none (or a bad one).
const ADD_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// The longest wait a request may ask for.
const ADD_TIMEOUT_MAX: Duration = Duration::from_secs(300);
/// Remove and update commit without waiting for anyone to catch up.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(15);
/// The time a forwarded request may take beyond the leader's own wait.
const FORWARD_MARGIN: Duration = Duration::from_secs(5);

/// An error code and its message.
type Failure = (ResponseError, Option<String>);

pub fn add(broker: &Arc<Broker>, session: &Session, request: AddRaftVoterRequest, version: i16) -> ResponseFuture {
    let timeout = u64::try_from(request.timeout_ms)
        .ok()
        .filter(|ms| *ms > 0)
        .map_or(ADD_TIMEOUT_DEFAULT, Duration::from_millis)
        .min(ADD_TIMEOUT_MAX);
    let listeners: Vec<(String, u16)> =
        request.listeners.iter().map(|l| (l.host.as_str().to_string(), l.port)).collect();
    let op = endpoint_of(&listeners).map(|endpoint| VoterOp::Add { id: request.voter_id, endpoint });
    let checked = check(broker, request.cluster_id.as_ref(), request.voter_id).and(op);
    let change = Change::new(broker, session, version, ApiKey::AddRaftVoter, timeout);
    change.run(request, checked, ResponseKind::AddRaftVoter, |_, code, message| {
        AddRaftVoterResponse::default().with_error_code(code).with_error_message(message)
    })
}

pub fn remove(
    broker: &Arc<Broker>,
    session: &Session,
    request: RemoveRaftVoterRequest,
    version: i16,
) -> ResponseFuture {
    let checked =
        check(broker, request.cluster_id.as_ref(), request.voter_id).map(|()| VoterOp::Remove { id: request.voter_id });
    let change = Change::new(broker, session, version, ApiKey::RemoveRaftVoter, CHANGE_TIMEOUT);
    change.run(request, checked, ResponseKind::RemoveRaftVoter, |_, code, message| {
        RemoveRaftVoterResponse::default().with_error_code(code).with_error_message(message)
    })
}

/// A voter telling the quorum its new controller endpoint.
pub fn update(
    broker: &Arc<Broker>,
    session: &Session,
    request: UpdateRaftVoterRequest,
    version: i16,
) -> ResponseFuture {
    let listeners: Vec<(String, u16)> =
        request.listeners.iter().map(|l| (l.host.as_str().to_string(), l.port)).collect();
    let op = endpoint_of(&listeners).map(|endpoint| VoterOp::Update { id: request.voter_id, endpoint });
    let checked = check(broker, request.cluster_id.as_ref(), request.voter_id).and(op);
    let change = Change::new(broker, session, version, ApiKey::UpdateRaftVoter, CHANGE_TIMEOUT);
    change.run(request, checked, ResponseKind::UpdateRaftVoter, |broker, code, _| {
        // the answer names the leader, for a voter to find it
        let status = broker.controller.quorum().status();
        let mut current =
            CurrentLeader::default().with_leader_id(BrokerId(status.leader)).with_leader_epoch(status.epoch);
        if let Some(b) = broker.controller.image().broker(status.leader) {
            current = current.with_host(StrBytes::from_string(b.host.clone())).with_port(i32::from(b.port));
        }
        UpdateRaftVoterResponse::default().with_error_code(code).with_current_leader(current)
    })
}

/// What every voter request is checked for before it goes anywhere.
fn check(broker: &Broker, cluster_id: Option<&StrBytes>, voter_id: i32) -> Result<(), Failure> {
    // null or empty: not given
    if let Some(theirs) = cluster_id.filter(|c| !c.is_empty()) {
        let ours = broker.cluster_id();
        if theirs.as_str() != ours {
            return Err((
                ResponseError::InconsistentClusterId,
                Some(format!("the cluster id {} is not this cluster's ({ours})", theirs.as_str())),
            ));
        }
    }
    if voter_id < 0 {
        return Err((ResponseError::InvalidRequest, Some(format!("voter id {voter_id} is negative"))));
    }
    Ok(())
}

/// The controller endpoint of a request's listeners: the first with a host
/// and a port (vltava's controllers have one controller listener).
fn endpoint_of(listeners: &[(String, u16)]) -> Result<String, Failure> {
    listeners
        .iter()
        .find(|(host, port)| !host.is_empty() && *port > 0)
        .map(|(host, port)| if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") })
        .ok_or_else(|| (ResponseError::InvalidRequest, Some("no listener with a host and a port".into())))
}

/// Where and how a voter change runs.
struct Change {
    broker: Arc<Broker>,
    /// The leader's client address when another node leads.
    forward: Option<String>,
    version: i16,
    key: ApiKey,
    timeout: Duration,
}

impl Change {
    fn new(broker: &Arc<Broker>, session: &Session, version: i16, key: ApiKey, timeout: Duration) -> Self {
        let forward = quorum_leader::forward_address(broker, session);
        Self { broker: broker.clone(), forward, version, key, timeout }
    }

    /// The response: the leader's (forwarded), or this node's, built by
    /// `answer` from the error code and message (0 and none: done).
    fn run<Req, Resp>(
        self,
        request: Req,
        checked: Result<VoterOp, Failure>,
        kind: fn(Resp) -> ResponseKind,
        answer: impl FnOnce(&Broker, i16, Option<StrBytes>) -> Resp + Send + 'static,
    ) -> ResponseFuture
    where
        Req: Encodable + HeaderVersion + Send + Sync + 'static,
        Resp: Decodable + HeaderVersion + Send + 'static,
    {
        Box::pin(async move {
            let response = match self.apply(&request, checked).await {
                Ok(Some(forwarded)) => forwarded,
                outcome => {
                    let (code, message) = failure_of(outcome.map(|_| ()));
                    answer(&self.broker, code, message)
                }
            };
            Some(kind(response))
        })
    }

    /// Carries out the checked operation here (this node leads) or
    /// forwards the request; `Ok(Some)` is the leader's answer.
    async fn apply<Req, Resp>(&self, request: &Req, checked: Result<VoterOp, Failure>) -> Result<Option<Resp>, Failure>
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        let (key, timeout) = (self.key, self.timeout);
        let op = checked?;
        if let Some(addr) = &self.forward {
            return quorum_leader::forward(&self.broker, addr, key, self.version, request, timeout + FORWARD_MARGIN)
                .await
                .map(Some)
                .map_err(|e| {
                    let message = format!("cannot reach the quorum leader at {addr}: {e}");
                    (ResponseError::NotLeaderOrFollower, Some(message))
                });
        }
        let quorum = self.broker.controller.quorum().clone();
        if !quorum.is_leader() {
            return Err((
                ResponseError::NotLeaderOrFollower,
                Some("this node does not lead the metadata quorum, and the leader has no client listener".into()),
            ));
        }
        let changed = tokio::task::spawn_blocking(move || quorum.change_voters(op, timeout)).await;
        match changed {
            Ok(Ok(())) => Ok(None),
            Ok(Err(e)) => Err(match e {
                VoterError::NotLeader => {
                    (ResponseError::NotLeaderOrFollower, Some("leadership of the metadata quorum moved".into()))
                }
                VoterError::Duplicate => (ResponseError::DuplicateVoter, None),
                VoterError::NotFound => (ResponseError::VoterNotFound, None),
                VoterError::TimedOut(why) => (ResponseError::RequestTimedOut, Some(why)),
                VoterError::Invalid(why) => (ResponseError::InvalidRequest, Some(why)),
            }),
            Err(_) => Err((ResponseError::UnknownServerError, None)),
        }
    }
}

/// The error code and message of an outcome (0 and none for success).
fn failure_of(outcome: Result<(), Failure>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        Err((error, message)) => {
            (error.code(), Some(StrBytes::from_string(message.unwrap_or_else(|| error.to_string()))))
        }
    }
}
