//! Membership in the worker group (`group.id`): a Kafka classic group with
//! protocol type `connect` and the eager protocol `default`, spoken with
//! FindCoordinator / JoinGroup / SyncGroup / Heartbeat / LeaveGroup over a
//! plain Kafka connection. Member metadata and assignments are JSON
//! ([`MemberMetadata`], [`Assignment`]).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use serde::{Deserialize, Serialize};
use vltava_broker::replication::KafkaConn;

use crate::config::WorkerConfig;
use crate::status::TaskId;

pub const PROTOCOL_TYPE: &str = "connect";
pub const PROTOCOL_NAME: &str = "default";
/// The longest one request other than JoinGroup/SyncGroup may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

pub const NONE: i16 = 0;
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub const NOT_COORDINATOR: i16 = 16;
pub const ILLEGAL_GENERATION: i16 = 22;
pub const UNKNOWN_MEMBER_ID: i16 = 25;
pub const REBALANCE_IN_PROGRESS: i16 = 27;
pub const MEMBER_ID_REQUIRED: i16 = 79;

/// What a member tells the leader when it joins.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberMetadata {
    pub url: String,
    pub config_offset: i64,
}

/// One member's share.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Share {
    pub url: String,
    pub connectors: Vec<String>,
    pub tasks: Vec<(String, u32)>,
}

/// What SyncGroup gives each member: its share, the leader, and every
/// member's share (to find where a task runs).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Assignment {
    pub connectors: Vec<String>,
    pub tasks: Vec<(String, u32)>,
    pub leader: String,
    pub leader_url: String,
    pub config_offset: i64,
    /// member id -> share.
    pub all: BTreeMap<String, Share>,
}

impl Assignment {
    pub fn task_ids(&self) -> Vec<TaskId> {
        self.tasks.iter().map(|(c, t)| TaskId::new(c, *t)).collect()
    }
    /// The URL of the worker running a task.
    pub fn owner_of_task(&self, connector: &str, task: u32) -> Option<&str> {
        self.all.values().find(|s| s.tasks.iter().any(|(c, t)| c == connector && *t == task)).map(|s| s.url.as_str())
    }
}

/// The leader's round-robin: connectors, then tasks, over the members in
/// member id order, one cursor through both.
pub fn assign(
    members: &BTreeMap<String, MemberMetadata>,
    view: &BTreeMap<String, usize>,
    leader: &str,
    config_offset: i64,
) -> BTreeMap<String, Assignment> {
    let ids: Vec<&String> = members.keys().collect();
    let mut shares: BTreeMap<String, Share> =
        members.iter().map(|(id, m)| (id.clone(), Share { url: m.url.clone(), ..Share::default() })).collect();
    if !ids.is_empty() {
        let mut cursor = 0usize;
        for name in view.keys() {
            if let Some(s) = shares.get_mut(ids[cursor % ids.len()]) {
                s.connectors.push(name.clone());
            }
            cursor += 1;
        }
        for (name, count) in view {
            for t in 0..*count as u32 {
                if let Some(s) = shares.get_mut(ids[cursor % ids.len()]) {
                    s.tasks.push((name.clone(), t));
                }
                cursor += 1;
            }
        }
    }
    let leader_url = members.get(leader).map(|m| m.url.clone()).unwrap_or_default();
    shares
        .iter()
        .map(|(id, s)| {
            (
                id.clone(),
                Assignment {
                    connectors: s.connectors.clone(),
                    tasks: s.tasks.clone(),
                    leader: leader.to_string(),
                    leader_url: leader_url.clone(),
                    config_offset,
                    all: shares.clone(),
                },
            )
        })
        .collect()
}

/// A JoinGroup's outcome.
pub struct Joined {
    pub generation: i32,
    pub member_id: String,
    pub leader: String,
    /// Filled for the leader only.
    pub members: BTreeMap<String, MemberMetadata>,
}

/// A protocol-level failure: a Kafka error code, or the connection's.
#[derive(Debug)]
pub enum GroupError {
    Code(i16),
    Io(std::io::Error),
}

impl std::fmt::Display for GroupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupError::Code(c) => write!(f, "error code {c}"),
            GroupError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl GroupError {
    fn context(self, what: &str) -> GroupError {
        match self {
            GroupError::Io(e) => GroupError::Io(std::io::Error::new(e.kind(), format!("{what}: {e}"))),
            e => e,
        }
    }
}

impl From<std::io::Error> for GroupError {
    fn from(e: std::io::Error) -> Self {
        GroupError::Io(e)
    }
}

/// How the worker reaches the brokers for its membership: TLS and/or a
/// SASL login (PLAIN, SCRAM), from the worker's client keys, librdkafka's
/// (`ssl.ca.location`, `sasl.username`/`sasl.password`) or Java's
/// (`ssl.truststore.location`, `sasl.jaas.config`).
pub struct Security {
    tls: Option<std::sync::Arc<vltava_security::TlsConnectorSource>>,
    sasl: Option<(String, String, String)>,
}

impl Security {
    pub fn from_config(config: &WorkerConfig) -> anyhow::Result<Security> {
        let props = &config.props;
        let get = |k: &str| props.get(k).cloned();
        let protocol = get("security.protocol").unwrap_or_default().to_ascii_uppercase();
        let (tls, sasl) = match protocol.as_str() {
            "" | "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            other => anyhow::bail!("security.protocol={other} is not one of Kafka's"),
        };
        let tls = if tls {
            let read = |key: &str| -> anyhow::Result<Option<String>> {
                get(key)
                    .map(|path| std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{key}={path}: {e}")))
                    .transpose()
            };
            let (cert, key) = (read("ssl.certificate.location")?, read("ssl.key.location")?);
            let settings = vltava_security::SslSettings::from_keys(|k| match k {
                "ssl.truststore.location" => get(k).or_else(|| get("ssl.ca.location")),
                "ssl.keystore.certificate.chain" => get(k).or_else(|| cert.clone()),
                "ssl.keystore.key" => get(k).or_else(|| key.clone()),
                "ssl.endpoint.identification.algorithm" => {
                    get(k).map(|v| if v.eq_ignore_ascii_case("none") { String::new() } else { v })
                }
                _ => get(k),
            })
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            Some(std::sync::Arc::new(
                vltava_security::TlsConnectorSource::new(settings).map_err(|e| anyhow::anyhow!("{e}"))?,
            ))
        } else {
            None
        };
        let sasl = if sasl {
            let mechanism = get("sasl.mechanism").or_else(|| get("sasl.mechanisms")).unwrap_or_else(|| "GSSAPI".into());
            let (mut user, mut password) = (get("sasl.username"), get("sasl.password"));
            if let Some(jaas) = get("sasl.jaas.config") {
                let module = vltava_security::sasl::jaas::parse_one(&jaas)
                    .map_err(|e| anyhow::anyhow!("sasl.jaas.config: {e}"))?;
                if let Some((u, p)) = module.login() {
                    user = user.or(Some(u));
                    password = password.or(Some(p));
                }
            }
            match (user, password) {
                (Some(u), Some(p)) => Some((mechanism.to_ascii_uppercase(), u, p)),
                _ => anyhow::bail!(
                    "security.protocol={protocol} needs sasl.username and sasl.password (or sasl.jaas.config)"
                ),
            }
        } else {
            None
        };
        Ok(Security { tls, sasl })
    }

    async fn connect(&self, addr: &str, client_id: String) -> Result<KafkaConn, GroupError> {
        let mut conn = KafkaConn::connect(addr, self.tls.as_deref(), client_id).await?;
        if let Some((mechanism, user, password)) = &self.sasl {
            login(&mut conn, mechanism, user, password).await?;
        }
        Ok(conn)
    }
}

/// The broker crate's client SASL login (SaslHandshake, then SaslAuthenticate until done).
async fn login(conn: &mut KafkaConn, mechanism: &str, user: &str, password: &str) -> Result<(), GroupError> {
    Ok(conn.sasl_login(mechanism, user, password).await?)
}

/// This worker's membership.
pub struct Membership {
    group: String,
    bootstrap: Vec<String>,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    client_id: String,
    security: Security,
    conn: Option<KafkaConn>,
    pub member_id: String,
    pub generation: i32,
}

impl Membership {
    pub fn new(config: &WorkerConfig) -> anyhow::Result<Membership> {
        Ok(Membership {
            group: config.group_id.clone(),
            bootstrap: config
                .bootstrap_servers
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            session_timeout_ms: config.session_timeout_ms,
            rebalance_timeout_ms: config.rebalance_timeout_ms,
            client_id: format!("connect-{}", config.worker_id()),
            security: Security::from_config(config)?,
            conn: None,
            member_id: String::new(),
            generation: -1,
        })
    }

    fn group_id(&self) -> GroupId {
        GroupId(StrBytes::from_string(self.group.clone()))
    }

    /// Connects to the group's coordinator (FindCoordinator through a bootstrap server).
    async fn coordinator(&mut self) -> Result<&mut KafkaConn, GroupError> {
        if self.conn.is_none() {
            let mut last = GroupError::Io(std::io::Error::other("no bootstrap.servers"));
            for addr in self.bootstrap.clone() {
                match self.find_coordinator(&addr).await {
                    Ok(coord) => match self.security.connect(&coord, self.client_id.clone()).await {
                        Ok(c) => {
                            tracing::info!(
                                coordinator = coord,
                                group = self.group,
                                "connected to the group coordinator"
                            );
                            self.conn = Some(c);
                            break;
                        }
                        Err(e) => last = e.context(&format!("the coordinator {coord}")),
                    },
                    Err(e) => last = e.context(&format!("FindCoordinator at {addr}")),
                }
            }
            if self.conn.is_none() {
                return Err(last);
            }
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    async fn find_coordinator(&self, addr: &str) -> Result<String, GroupError> {
        let mut conn = self.security.connect(addr, self.client_id.clone()).await?;
        let req =
            FindCoordinatorRequest::default().with_key(StrBytes::from_string(self.group.clone())).with_key_type(0);
        let resp: FindCoordinatorResponse = conn.call(ApiKey::FindCoordinator, 3, &req, REQUEST_TIMEOUT).await?;
        if resp.error_code != NONE {
            return Err(GroupError::Code(resp.error_code));
        }
        Ok(format!("{}:{}", resp.host, resp.port))
    }

    /// Forgets the coordinator after an error that says it moved or the connection broke.
    pub fn on_error(&mut self, e: &GroupError) {
        match e {
            GroupError::Io(_) | GroupError::Code(NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE) => self.conn = None,
            GroupError::Code(UNKNOWN_MEMBER_ID) => self.member_id.clear(),
            _ => {}
        }
    }

    /// JoinGroup (with the member id the coordinator asks for when it does).
    pub async fn join(&mut self, metadata: &MemberMetadata) -> Result<Joined, GroupError> {
        let meta = Bytes::from(serde_json::to_vec(metadata).unwrap_or_default());
        let timeout = Duration::from_millis(self.rebalance_timeout_ms.max(0) as u64) + REQUEST_TIMEOUT;
        for _ in 0..3 {
            let req = JoinGroupRequest::default()
                .with_group_id(self.group_id())
                .with_session_timeout_ms(self.session_timeout_ms)
                .with_rebalance_timeout_ms(self.rebalance_timeout_ms)
                .with_member_id(StrBytes::from_string(self.member_id.clone()))
                .with_protocol_type(StrBytes::from_static_str(PROTOCOL_TYPE))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str(PROTOCOL_NAME))
                    .with_metadata(meta.clone())]);
            let conn = self.coordinator().await?;
            let resp: JoinGroupResponse = conn.call(ApiKey::JoinGroup, 5, &req, timeout).await?;
            if resp.error_code == MEMBER_ID_REQUIRED {
                self.member_id = resp.member_id.to_string();
                continue;
            }
            if resp.error_code != NONE {
                return Err(GroupError::Code(resp.error_code));
            }
            self.member_id = resp.member_id.to_string();
            self.generation = resp.generation_id;
            let members = resp
                .members
                .iter()
                .filter_map(|m| {
                    let meta = serde_json::from_slice::<MemberMetadata>(&m.metadata);
                    if meta.is_err() {
                        tracing::warn!(member = %m.member_id, "a member's metadata is not ours, ignored");
                    }
                    Some((m.member_id.to_string(), meta.ok()?))
                })
                .collect();
            return Ok(Joined {
                generation: resp.generation_id,
                member_id: self.member_id.clone(),
                leader: resp.leader.to_string(),
                members,
            });
        }
        Err(GroupError::Code(MEMBER_ID_REQUIRED))
    }

    /// SyncGroup; the leader gives every member's assignment.
    pub async fn sync(&mut self, assignments: &BTreeMap<String, Assignment>) -> Result<Assignment, GroupError> {
        let req = SyncGroupRequest::default()
            .with_group_id(self.group_id())
            .with_generation_id(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_protocol_type(Some(StrBytes::from_static_str(PROTOCOL_TYPE)))
            .with_protocol_name(Some(StrBytes::from_static_str(PROTOCOL_NAME)))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(id, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(StrBytes::from_string(id.clone()))
                            .with_assignment(Bytes::from(serde_json::to_vec(a).unwrap_or_default()))
                    })
                    .collect(),
            );
        let timeout = Duration::from_millis(self.rebalance_timeout_ms.max(0) as u64) + REQUEST_TIMEOUT;
        let conn = self.coordinator().await?;
        let resp: SyncGroupResponse = conn.call(ApiKey::SyncGroup, 5, &req, timeout).await?;
        if resp.error_code != NONE {
            return Err(GroupError::Code(resp.error_code));
        }
        serde_json::from_slice(&resp.assignment)
            .map_err(|e| GroupError::Io(std::io::Error::other(format!("the leader's assignment: {e}"))))
    }

    pub async fn heartbeat(&mut self) -> Result<(), GroupError> {
        let req = HeartbeatRequest::default()
            .with_group_id(self.group_id())
            .with_generation_id(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()));
        let conn = self.coordinator().await?;
        let resp: HeartbeatResponse = conn.call(ApiKey::Heartbeat, 3, &req, REQUEST_TIMEOUT).await?;
        if resp.error_code != NONE {
            return Err(GroupError::Code(resp.error_code));
        }
        Ok(())
    }

    /// LeaveGroup (best effort: the worker is stopping).
    pub async fn leave(&mut self) {
        if self.member_id.is_empty() {
            return;
        }
        let req = LeaveGroupRequest::default()
            .with_group_id(self.group_id())
            .with_member_id(StrBytes::from_string(self.member_id.clone()));
        if let Ok(conn) = self.coordinator().await {
            match conn.call::<_, LeaveGroupResponse>(ApiKey::LeaveGroup, 2, &req, REQUEST_TIMEOUT).await {
                Ok(r) if r.error_code == NONE => tracing::info!(member = self.member_id, "left the group"),
                Ok(r) => tracing::warn!("LeaveGroup: error code {}", r.error_code),
                Err(e) => tracing::warn!("LeaveGroup: {e}"),
            }
        }
        self.member_id.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_spreads_connectors_then_tasks() {
        let members: BTreeMap<String, MemberMetadata> = [("a", "http://a"), ("b", "http://b")]
            .iter()
            .map(|(id, url)| (id.to_string(), MemberMetadata { url: url.to_string(), config_offset: 0 }))
            .collect();
        let view: BTreeMap<String, usize> = [("sink".to_string(), 2)].into_iter().collect();
        let a = assign(&members, &view, "a", 5);
        assert_eq!(a["a"].connectors, vec!["sink".to_string()]);
        assert_eq!(a["b"].tasks, vec![("sink".to_string(), 0)]);
        assert_eq!(a["a"].tasks, vec![("sink".to_string(), 1)]);
        assert_eq!(a["b"].leader_url, "http://a");
        assert_eq!(a["b"].owner_of_task("sink", 1), Some("http://a"));
    }
}
