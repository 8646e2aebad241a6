//! `vltava cluster ...`: `info` (the brokers from Metadata, the controller
//! and the cluster id, through librdkafka), `describe-quorum` (the metadata
//! quorum from DescribeQuorum), `features` (the feature flags of
//! ApiVersions v3+), and `add-controller` / `remove-controller` (KIP-853's
//! AddRaftVoter / RemoveRaftVoter, like Kafka's `kafka-metadata-quorum`);
//! librdkafka has no call for the last four, so they are sent through
//! [`crate::connection`].

use kafka_protocol::messages::add_raft_voter_request::Listener;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::describe_quorum_response::ReplicaState;
use kafka_protocol::messages::{AddRaftVoterRequest, DescribeQuorumRequest, RemoveRaftVoterRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde_json::{json, Value};

use rdkafka::consumer::Consumer;

use crate::client::{self, ClientArgs};
use crate::connection::{self, error_name, BrokerConnection};

/// The metadata log's topic; its partition 0 is the quorum's log.
const METADATA_TOPIC: &str = "__cluster_metadata";

#[derive(clap::Subcommand)]
pub enum ClusterCommand {
    /// Show the brokers, the controller and the cluster id.
    ///
    /// Examples:
    ///   vltava cluster info
    ///   vltava cluster info --json
    ///   vltava --brokers kafka1:9092 cluster info
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Info(JsonArgs),
    /// Show the metadata quorum (KRaft): leader, epoch, high watermark, and
    /// each voter's and observer's log end offset, lag behind the leader and
    /// the age of its last fetch and of the last time it was caught up.
    ///
    /// Asks DescribeQuorum of a bootstrap broker, then of the quorum leader
    /// when it is a broker (only the leader knows every voter's progress).
    /// Ages are in milliseconds; "-" when unknown.
    ///
    /// Examples:
    ///   vltava cluster describe-quorum
    ///   vltava cluster describe-quorum --json
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    DescribeQuorum(JsonArgs),
    /// Show the feature flags (KIP-584) a broker reports in ApiVersions:
    /// the supported range of each feature and the finalized levels.
    ///
    /// Examples:
    ///   vltava cluster features
    ///   vltava cluster features --json
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Features(JsonArgs),
    /// Make a running controller a voter of the metadata quorum (KIP-853's
    /// AddRaftVoter), like Kafka's `kafka-metadata-quorum add-controller`.
    ///
    /// Start the new controller first with controller.quorum.bootstrap.servers
    /// naming the quorum (and no controller.quorum.voters): it joins as an
    /// observer and copies the metadata log. The quorum leader makes it a
    /// voter once it has caught up; give --timeout enough for that. Its node
    /// id and controller endpoint come from its server.properties (--config)
    /// or from --controller-id and --controller-endpoint.
    ///
    /// Examples:
    ///   vltava --timeout 60 cluster add-controller --config node4/server.properties
    ///   vltava cluster add-controller --controller-id 4 --controller-endpoint kafka4:9093
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    AddController(AddControllerArgs),
    /// Remove a voter from the metadata quorum (KIP-853's RemoveRaftVoter),
    /// like Kafka's `kafka-metadata-quorum remove-controller`. Removing the
    /// leader works: it hands the leadership to another voter.
    ///
    /// Examples:
    ///   vltava cluster remove-controller --controller-id 1
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    RemoveController(RemoveControllerArgs),
}

#[derive(clap::Args)]
pub struct AddControllerArgs {
    /// The new controller's server.properties: node.id and its controller
    /// listener (advertised.listeners, else listeners, named by
    /// controller.listener.names).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["controller_id", "controller_endpoint"])]
    config: Option<std::path::PathBuf>,
    /// The new controller's node id.
    #[arg(long, value_name = "ID", requires = "controller_endpoint")]
    controller_id: Option<i32>,
    /// The new controller's controller listener, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", requires = "controller_id")]
    controller_endpoint: Option<String>,
}

#[derive(clap::Args)]
pub struct RemoveControllerArgs {
    /// The node id of the voter to remove.
    #[arg(long, value_name = "ID")]
    controller_id: i32,
    /// Its metadata directory id (a UUID); vltava's voters are known by node
    /// id alone, so this is accepted for Kafka's syntax and not checked.
    #[arg(long, value_name = "UUID")]
    controller_directory_id: Option<String>,
}

#[derive(clap::Args)]
pub struct JsonArgs {
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &ClientArgs, cmd: &ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Info(a) => info(args, a),
        ClusterCommand::DescribeQuorum(a) => describe_quorum(args, a),
        ClusterCommand::Features(a) => features(args, a),
        ClusterCommand::AddController(a) => add_controller(args, a),
        ClusterCommand::RemoveController(a) => remove_controller(args, a),
    }
}

/// The wait asked of the quorum leader: the --timeout less what the
/// connection and the answer need, so the answer arrives within it.
fn leader_wait_ms(args: &ClientArgs) -> i32 {
    let budget = args.timeout().saturating_sub(std::time::Duration::from_secs(1));
    i32::try_from(budget.as_millis()).unwrap_or(i32::MAX).max(100)
}

fn add_controller(args: &ClientArgs, a: &AddControllerArgs) -> anyhow::Result<()> {
    let (id, endpoint) = match (&a.config, a.controller_id, &a.controller_endpoint) {
        (Some(path), _, _) => controller_of_config(path)?,
        (None, Some(id), Some(endpoint)) => (id, endpoint.clone()),
        _ => anyhow::bail!("give the new controller's --config, or --controller-id and --controller-endpoint"),
    };
    let (host, port) = split_endpoint(&endpoint)?;
    let request = AddRaftVoterRequest::default()
        .with_cluster_id(None)
        .with_timeout_ms(leader_wait_ms(args))
        .with_voter_id(id)
        .with_listeners(vec![Listener::default()
            .with_name(StrBytes::from_static_str("CONTROLLER"))
            .with_host(StrBytes::from_string(host))
            .with_port(port)]);
    let mut conn = connection::connect_bootstrap(args)?;
    let (answer, _) = conn.send(&request).map_err(|e| conn.error(e))?;
    refused(&conn, "AddRaftVoter", answer.error_code, answer.error_message.as_ref())?;
    println!("controller {id} ({endpoint}) is a voter of the metadata quorum");
    Ok(())
}

fn remove_controller(args: &ClientArgs, a: &RemoveControllerArgs) -> anyhow::Result<()> {
    let directory_id = match &a.controller_directory_id {
        Some(text) => uuid::Uuid::parse_str(text)
            .map_err(|e| anyhow::anyhow!("--controller-directory-id {text}: not a UUID ({e})"))?,
        None => uuid::Uuid::nil(),
    };
    let request =
        RemoveRaftVoterRequest::default().with_voter_id(a.controller_id).with_voter_directory_id(directory_id);
    let mut conn = connection::connect_bootstrap(args)?;
    let (answer, _) = conn.send(&request).map_err(|e| conn.error(e))?;
    refused(&conn, "RemoveRaftVoter", answer.error_code, answer.error_message.as_ref())?;
    println!("controller {} is no longer a voter of the metadata quorum", a.controller_id);
    Ok(())
}

/// A request's error code as the one-line error of this tool.
fn refused(conn: &BrokerConnection, api: &str, code: i16, message: Option<&StrBytes>) -> anyhow::Result<()> {
    if code == 0 {
        return Ok(());
    }
    let detail = message.map(|m| format!(" ({})", m.as_str())).unwrap_or_default();
    Err(anyhow::anyhow!("{}: {api}: {}{detail}", conn.address(), error_name(code)))
}

fn split_endpoint(endpoint: &str) -> anyhow::Result<(String, u16)> {
    let bad = || anyhow::anyhow!("controller endpoint {endpoint}: expected HOST:PORT");
    let (host, port) = endpoint.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// The node id and controller endpoint in a controller's server.properties,
/// as Kafka's `add-controller` reads them from its `--command-config`.
fn controller_of_config(path: &std::path::Path) -> anyhow::Result<(i32, String)> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    controller_of_properties(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn controller_of_properties(text: &str) -> anyhow::Result<(i32, String)> {
    let get = |key: &str| {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#') && !l.starts_with('!'))
            .filter_map(|l| l.split_once('='))
            .rfind(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_string())
    };
    let id = get("node.id").ok_or_else(|| anyhow::anyhow!("no node.id"))?;
    let id: i32 = id.parse().map_err(|_| anyhow::anyhow!("node.id {id} is not a number"))?;
    let names = get("controller.listener.names").unwrap_or_else(|| "CONTROLLER".to_string());
    let names: Vec<String> = names.split(',').map(|n| n.trim().to_ascii_uppercase()).collect();
    let controller_of = |listeners: Option<String>| {
        listeners?.split(',').find_map(|entry| {
            let (name, addr) = entry.trim().split_once("://")?;
            names.contains(&name.trim().to_ascii_uppercase()).then(|| addr.to_string())
        })
    };
    let endpoint = controller_of(get("advertised.listeners"))
        .or_else(|| controller_of(get("listeners")))
        .ok_or_else(|| anyhow::anyhow!("no controller listener ({}) in listeners", names.join(",")))?;
    let (host, port) = endpoint
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("controller listener {endpoint}: expected HOST:PORT"))?;
    // a listener on every interface: the host others reach is the node's name
    let host = if host.is_empty() || host == "0.0.0.0" { "localhost" } else { host };
    Ok((id, format!("{host}:{port}")))
}

fn info(args: &ClientArgs, a: &JsonArgs) -> anyhow::Result<()> {
    let consumer = args.metadata_consumer()?;
    let client = consumer.client();
    let md = client::fetch_metadata(client, &client.context().sink, args, None)?;
    let cluster_id = client.fetch_cluster_id(args.timeout());
    let timeout_ms = i32::try_from(args.timeout().as_millis()).unwrap_or(i32::MAX);
    // SAFETY: a valid client handle; librdkafka returns -1 when unknown.
    let controller = unsafe { rdkafka::bindings::rd_kafka_controllerid(client.native_ptr(), timeout_ms) };
    let controller = (controller >= 0).then_some(controller);
    let mut brokers: Vec<_> = md.brokers().iter().map(|b| (b.id(), b.host().to_string(), b.port())).collect();
    brokers.sort();
    let topics = md.topics().iter().filter(|t| t.error().is_none()).count();
    if a.json {
        let list: Vec<_> = brokers
            .iter()
            .map(
                |(id, host, port)| json!({"id": id, "host": host, "port": port, "controller": Some(*id) == controller}),
            )
            .collect();
        println!(
            "{}",
            json!({"cluster_id": cluster_id, "controller_id": controller, "brokers": list, "topics": topics})
        );
        return Ok(());
    }
    println!("cluster id:  {}", cluster_id.as_deref().unwrap_or("n/a"));
    println!("controller:  {}", controller.map_or_else(|| "n/a".to_string(), |c| c.to_string()));
    println!("topics:      {topics}");
    println!("brokers:     {}", brokers.len());
    println!();
    println!("{:>4}  {:<30}  CONTROLLER", "ID", "ADDRESS");
    for (id, host, port) in &brokers {
        let mark = if Some(*id) == controller { "yes" } else { "" };
        println!("{id:>4}  {:<30}  {mark}", format!("{host}:{port}"));
    }
    Ok(())
}

/// The quorum as one node described it.
struct QuorumView {
    /// The broker that answered (HOST:PORT).
    answered_by: String,
    leader_id: i32,
    leader_epoch: i32,
    high_watermark: i64,
    voters: Vec<ReplicaState>,
    observers: Vec<ReplicaState>,
}

/// DescribeQuorum for `__cluster_metadata` partition 0 on `conn`.
fn ask_quorum(conn: &mut BrokerConnection) -> anyhow::Result<QuorumView> {
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let (answer, _) = conn.send(&request).map_err(|e| conn.error(e))?;
    let refused = |code: i16, message: Option<&StrBytes>| {
        let detail = message.map(|m| format!(" ({})", m.as_str())).unwrap_or_default();
        anyhow::anyhow!("{}: DescribeQuorum: {}{detail}", conn.address(), error_name(code))
    };
    if answer.error_code != 0 {
        return Err(refused(answer.error_code, answer.error_message.as_ref()));
    }
    let partition = answer
        .topics
        .into_iter()
        .filter(|t| t.topic_name.0.as_str() == METADATA_TOPIC)
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == 0)
        .ok_or_else(|| anyhow::anyhow!("{}: DescribeQuorum: no answer for {METADATA_TOPIC}-0", conn.address()))?;
    if partition.error_code != 0 {
        return Err(refused(partition.error_code, partition.error_message.as_ref()));
    }
    Ok(QuorumView {
        answered_by: conn.address().to_string(),
        leader_id: partition.leader_id.0,
        leader_epoch: partition.leader_epoch,
        high_watermark: partition.high_watermark,
        voters: partition.current_voters,
        observers: partition.observers,
    })
}

fn describe_quorum(args: &ClientArgs, a: &JsonArgs) -> anyhow::Result<()> {
    // any broker answers with the leader's view (it forwards the request
    // to the quorum leader, as Kafka's brokers forward it to the controller)
    let mut conn = connection::connect_bootstrap(args)?;
    let view = ask_quorum(&mut conn)?;
    let now = now_ms();
    let leader_end = view.voters.iter().find(|v| v.replica_id.0 == view.leader_id).map(|v| v.log_end_offset);
    let rows: Vec<(&str, ReplicaRow)> = view
        .voters
        .iter()
        .map(|r| ("voter", ReplicaRow::new(r, leader_end, now)))
        .chain(view.observers.iter().map(|r| ("observer", ReplicaRow::new(r, leader_end, now))))
        .collect();
    if a.json {
        let list =
            |role: &str| -> Vec<Value> { rows.iter().filter(|(r, _)| *r == role).map(|(_, row)| row.json()).collect() };
        let out = json!({
            "leader_id": (view.leader_id >= 0).then_some(view.leader_id),
            "leader_epoch": view.leader_epoch,
            "high_watermark": view.high_watermark,
            "answered_by": view.answered_by,
            "voters": list("voter"),
            "observers": list("observer"),
        });
        println!("{out}");
        return Ok(());
    }
    let leader = if view.leader_id >= 0 { view.leader_id.to_string() } else { "none".to_string() };
    println!("leader:          {leader}");
    println!("leader epoch:    {}", view.leader_epoch);
    println!("high watermark:  {}", view.high_watermark);
    println!("answered by:     {}", view.answered_by);
    println!();
    println!(
        "{:<8}  {:>6}  {:>14}  {:>8}  {:>17}  {:>21}",
        "ROLE", "ID", "LOG-END-OFFSET", "LAG", "LAST-FETCH-AGE-MS", "LAST-CAUGHT-UP-AGE-MS"
    );
    let dash = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    for (role, row) in &rows {
        println!(
            "{role:<8}  {:>6}  {:>14}  {:>8}  {:>17}  {:>21}",
            row.id,
            dash(row.log_end_offset),
            dash(row.lag),
            dash(row.last_fetch_age_ms),
            dash(row.last_caught_up_age_ms)
        );
    }
    Ok(())
}

/// Milliseconds since the Unix epoch, as brokers stamp times.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One voter or observer, with unknown values (-1 on the wire) as `None`.
struct ReplicaRow {
    id: i32,
    log_end_offset: Option<i64>,
    lag: Option<i64>,
    last_fetch_age_ms: Option<i64>,
    last_caught_up_age_ms: Option<i64>,
}

impl ReplicaRow {
    fn new(r: &ReplicaState, leader_end: Option<i64>, now_ms: i64) -> Self {
        let known = |v: i64| (v >= 0).then_some(v);
        // A clock behind the broker's would make an age negative: say 0.
        let age = |t: i64| known(t).map(|t| (now_ms - t).max(0));
        let log_end_offset = known(r.log_end_offset);
        let lag = match (leader_end.and_then(known), log_end_offset) {
            (Some(leader), Some(own)) => Some((leader - own).max(0)),
            _ => None,
        };
        ReplicaRow {
            id: r.replica_id.0,
            log_end_offset,
            lag,
            last_fetch_age_ms: age(r.last_fetch_timestamp),
            last_caught_up_age_ms: age(r.last_caught_up_timestamp),
        }
    }

    fn json(&self) -> Value {
        json!({"id": self.id, "log_end_offset": self.log_end_offset, "lag": self.lag,
               "last_fetch_age_ms": self.last_fetch_age_ms, "last_caught_up_age_ms": self.last_caught_up_age_ms})
    }
}

/// The lowest ApiVersions version that carries feature flags.
const FEATURES_API_VERSIONS_MIN: i16 = 3;

fn features(args: &ClientArgs, a: &JsonArgs) -> anyhow::Result<()> {
    let conn = connection::connect_bootstrap(args)?;
    if conn.api_versions_version() < FEATURES_API_VERSIONS_MIN {
        return Err(anyhow::anyhow!(
            "{}: the broker answers ApiVersions up to v{}, which carries no feature flags (v{FEATURES_API_VERSIONS_MIN}+)",
            conn.address(),
            conn.api_versions_version()
        ));
    }
    let versions = conn.api_versions();
    let mut supported: Vec<(String, i16, i16)> = versions
        .supported_features
        .iter()
        .map(|f| (f.name.as_str().to_string(), f.min_version, f.max_version))
        .collect();
    supported.sort();
    // Since KIP-584's v3 the finalized range's max is the level; its min is unused.
    let mut finalized: Vec<(String, i16)> =
        versions.finalized_features.iter().map(|f| (f.name.as_str().to_string(), f.max_version_level)).collect();
    finalized.sort();
    let epoch = versions.finalized_features_epoch;
    if a.json {
        let out = json!({
            "answered_by": conn.address(),
            "finalized_epoch": (epoch >= 0).then_some(epoch),
            "finalized": finalized.iter().map(|(name, level)| json!({"name": name, "level": level})).collect::<Vec<_>>(),
            "supported": supported.iter().map(|(name, min, max)| json!({"name": name, "min": min, "max": max})).collect::<Vec<_>>(),
        });
        println!("{out}");
        return Ok(());
    }
    let width =
        supported.iter().map(|f| f.0.len()).chain(finalized.iter().map(|f| f.0.len())).max().unwrap_or(0).max(9);
    println!("answered by:      {}", conn.address());
    println!("finalized epoch:  {}", if epoch >= 0 { epoch.to_string() } else { "-".to_string() });
    println!();
    println!("{:<width$}  {:>5}", "FINALIZED", "LEVEL");
    for (name, level) in &finalized {
        println!("{name:<width$}  {level:>5}");
    }
    println!();
    println!("{:<width$}  {:>5}  {:>5}", "SUPPORTED", "MIN", "MAX");
    for (name, min, max) in &supported {
        println!("{name:<width$}  {min:>5}  {max:>5}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::BrokerId;

    use super::*;

    fn replica(id: i32, log_end_offset: i64, last_fetch: i64, last_caught_up: i64) -> ReplicaState {
        ReplicaState::default()
            .with_replica_id(BrokerId(id))
            .with_log_end_offset(log_end_offset)
            .with_last_fetch_timestamp(last_fetch)
            .with_last_caught_up_timestamp(last_caught_up)
    }

    #[test]
    fn lag_is_the_leaders_log_end_minus_the_replicas() {
        let row = ReplicaRow::new(&replica(2, 90, 9_000, 8_000), Some(100), 10_000);
        assert_eq!((row.log_end_offset, row.lag), (Some(90), Some(10)));
        assert_eq!((row.last_fetch_age_ms, row.last_caught_up_age_ms), (Some(1_000), Some(2_000)));
    }

    #[test]
    fn unknown_values_stay_unknown() {
        // A follower's view: another voter's progress is -1, and so is the leader's.
        let row = ReplicaRow::new(&replica(3, -1, -1, -1), Some(100), 10_000);
        assert_eq!(
            (row.log_end_offset, row.lag, row.last_fetch_age_ms, row.last_caught_up_age_ms),
            (None, None, None, None)
        );
        let row = ReplicaRow::new(&replica(3, 50, 9_000, 9_000), Some(-1), 10_000);
        assert_eq!(row.lag, None);
        let row = ReplicaRow::new(&replica(3, 50, 9_000, 9_000), None, 10_000);
        assert_eq!(row.lag, None);
    }

    #[test]
    fn a_controllers_id_and_endpoint_come_from_its_config() {
        let props = "node.id=4\nprocess.roles=broker,controller\n\
                     listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n";
        assert_eq!(controller_of_properties(props).unwrap(), (4, "127.0.0.1:9093".to_string()));
        let advertised = "node.id=5\ncontroller.listener.names=CTL\nlisteners=CTL://:9095\n\
                          advertised.listeners=CTL://kafka5:9095\n";
        assert_eq!(controller_of_properties(advertised).unwrap(), (5, "kafka5:9095".to_string()));
        assert!(controller_of_properties("node.id=5\nlisteners=PLAINTEXT://:9092\n")
            .unwrap_err()
            .to_string()
            .contains("no controller listener"));
        assert!(controller_of_properties("listeners=CONTROLLER://:9093\n")
            .unwrap_err()
            .to_string()
            .contains("node.id"));
        assert!(split_endpoint("kafka4").is_err() && split_endpoint("kafka4:0").is_err());
        assert_eq!(split_endpoint("[::1]:9093").unwrap(), ("::1".to_string(), 9093));
    }

    #[test]
    fn a_broker_clock_ahead_of_ours_gives_age_zero() {
        let row = ReplicaRow::new(&replica(1, 5, 10_500, 10_500), Some(5), 10_000);
        assert_eq!((row.last_fetch_age_ms, row.last_caught_up_age_ms, row.lag), (Some(0), Some(0), Some(0)));
        let json = row.json();
        assert_eq!(json["id"], 1);
        assert_eq!(json["lag"], 0);
    }
}
