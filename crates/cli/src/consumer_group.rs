//! `vltava group describe` for KIP-848 consumer groups: ConsumerGroupDescribe
//! at the group's coordinator (FindCoordinator first), with each member's
//! epoch and its current and target assignments.

use std::collections::BTreeMap;

use kafka_protocol::messages::consumer_group_describe_response::Assignment;
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, FindCoordinatorRequest, GroupId, ListGroupsRequest};
use kafka_protocol::protocol::StrBytes;

use crate::client::ClientArgs;
use crate::connection::{self, BrokerConnection, Deadline, Security};

/// GROUP_ID_NOT_FOUND: not a consumer group (a classic one, or none).
const GROUP_ID_NOT_FOUND: i16 = 69;

pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub member_epoch: i32,
    pub assignment: BTreeMap<String, Vec<i32>>,
    pub target: BTreeMap<String, Vec<i32>>,
}

pub struct ConsumerGroup {
    pub state: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: Vec<ConsumerMember>,
}

fn partitions(a: &Assignment) -> BTreeMap<String, Vec<i32>> {
    a.topic_partitions.iter().map(|t| (t.topic_name.0.to_string(), t.partitions.clone())).collect()
}

/// The coordinator's connection for `group`.
fn coordinator(args: &ClientArgs, group: &str) -> anyhow::Result<BrokerConnection> {
    let mut conn = connection::connect_bootstrap(args)?;
    let batched = conn.version_of::<FindCoordinatorRequest>().map_err(|e| conn.error(e))? >= 4;
    let name = StrBytes::from_string(group.to_string());
    let request = if batched {
        FindCoordinatorRequest::default().with_coordinator_keys(vec![name])
    } else {
        FindCoordinatorRequest::default().with_key(name)
    };
    let (response, version) = conn.send(&request).map_err(|e| conn.error(e))?;
    let (code, host, port) = if version >= 4 {
        let c = response.coordinators.first().ok_or_else(|| anyhow::anyhow!("FindCoordinator: no answer"))?;
        (c.error_code, c.host.to_string(), c.port)
    } else {
        (response.error_code, response.host.to_string(), response.port)
    };
    if code != 0 {
        return Err(connection::refused(conn.address(), code, None));
    }
    let address = format!("{host}:{port}");
    if address == conn.address() {
        return Ok(conn);
    }
    let security = Security::of(args)?;
    BrokerConnection::open_secured(&address, Deadline::after(args.timeout()), &security)
        .map_err(|e| anyhow::anyhow!("{}", connection::failure_line(&address, &e, args.timeout())))
}

/// The group if it is a KIP-848 consumer group, `None` if it is not one.
pub fn describe(args: &ClientArgs, group: &str) -> anyhow::Result<Option<ConsumerGroup>> {
    let mut conn = coordinator(args, group)?;
    if conn.version_of::<ConsumerGroupDescribeRequest>().is_err() {
        return Ok(None); // a broker without KIP-848
    }
    let request =
        ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(StrBytes::from_string(group.to_string()))]);
    let (response, _) = conn.send(&request).map_err(|e| conn.error(e))?;
    let Some(g) = response.groups.into_iter().next() else { return Ok(None) };
    if g.error_code == GROUP_ID_NOT_FOUND {
        return Ok(None);
    }
    if g.error_code != 0 {
        return Err(connection::refused(conn.address(), g.error_code, g.error_message.as_deref()));
    }
    Ok(Some(ConsumerGroup {
        state: g.group_state.to_string(),
        group_epoch: g.group_epoch,
        assignment_epoch: g.assignment_epoch,
        assignor: g.assignor_name.to_string(),
        members: g
            .members
            .iter()
            .map(|m| ConsumerMember {
                member_id: m.member_id.to_string(),
                instance_id: m.instance_id.as_ref().map(|s| s.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                member_epoch: m.member_epoch,
                assignment: partitions(&m.assignment),
                target: partitions(&m.target_assignment),
            })
            .collect(),
    }))
}

/// Every broker's groups from ListGroups (v5 names the type): group id ->
/// (type, state). Brokers that cannot be reached are skipped.
pub fn group_types(args: &ClientArgs) -> anyhow::Result<BTreeMap<String, (String, String)>> {
    let mut conn = connection::connect_bootstrap(args)?;
    let security = Security::of(args)?;
    let mut out = BTreeMap::new();
    for b in connection::brokers(&mut conn)?.iter().filter(|b| !b.fenced) {
        let address = b.address();
        let mut c = if address == conn.address() {
            None
        } else {
            match BrokerConnection::open_secured(&address, Deadline::after(args.timeout()), &security) {
                Ok(c) => Some(c),
                Err(_) => continue,
            }
        };
        let c = c.as_mut().unwrap_or(&mut conn);
        let Ok((response, _)) = c.send(&ListGroupsRequest::default()) else { continue };
        for g in response.groups {
            let kind = if g.group_type.is_empty() { "classic".to_string() } else { g.group_type.to_string() };
            out.insert(g.group_id.0.to_string(), (kind, g.group_state.to_string()));
        }
    }
    Ok(out)
}
