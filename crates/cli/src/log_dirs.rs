//! `vltava log-dirs describe`: each broker's log directories (path, error,
//! total and usable bytes) and the size and offset lag of the partitions in
//! them; `vltava log-dirs move`: a replica to another log directory of its
//! broker (AlterReplicaLogDirs), waiting until it is there. librdkafka has
//! no call for either, so they are sent through
//! [`crate::connection`], to each broker itself (a broker describes only its
//! own directories). `topic describe` takes its replica sizes from the same
//! query ([`ReplicaSizes`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::anyhow;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::{DescribeLogDirsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde_json::{json, Value};

use crate::client::human_bytes;
use crate::client::{self, ClientArgs, NotFound};
use crate::connection::{self, error_name, BrokerAddress, BrokerConnection, Deadline};

/// How many brokers are asked at the same time (one thread each).
const BROKERS_ASKED_AT_ONCE: usize = 16;

#[derive(clap::Subcommand)]
pub enum LogDirsCommand {
    /// Show each broker's log directories (path, error, total and usable
    /// bytes) and the size and offset lag of every partition in them.
    ///
    /// Sends DescribeLogDirs to every broker of the cluster (or those given
    /// with --broker). A broker that cannot be asked is reported and the
    /// command exits 1 after printing what the others answered.
    ///
    /// Examples:
    ///   vltava log-dirs describe
    ///   vltava log-dirs describe --broker 2 --topic orders
    ///   vltava log-dirs describe --json
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Describe(DescribeArgs),
    /// Move a partition's replica on one broker to another of that broker's
    /// log directories (AlterReplicaLogDirs), then wait until DescribeLogDirs
    /// shows it there (within --timeout). The replica keeps serving while it
    /// is copied.
    ///
    /// Examples:
    ///   vltava log-dirs move --broker 1 --topic orders --partition 0 --dir /disks/b
    ///   vltava log-dirs move --broker 2 -t orders -p 3 --dir /disks/a --json
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Move(MoveArgs),
}

#[derive(clap::Args)]
pub struct MoveArgs {
    /// The broker holding the replica (its node id).
    #[arg(long = "broker", value_name = "ID")]
    broker_id: i32,
    /// The partition's topic.
    #[arg(short = 't', long = "topic", value_name = "NAME")]
    topic: String,
    /// The partition.
    #[arg(short = 'p', long = "partition", value_name = "N")]
    partition: i32,
    /// The destination: one of the broker's log directories, as it names them.
    #[arg(long = "dir", value_name = "PATH")]
    dir: String,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct DescribeArgs {
    /// Only this broker (its node id). Repeatable.
    #[arg(long = "broker", value_name = "ID")]
    broker_ids: Vec<i32>,
    /// Only the partitions of this topic. Repeatable.
    #[arg(short = 't', long = "topic", value_name = "NAME")]
    topics: Vec<String>,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &ClientArgs, cmd: &LogDirsCommand) -> anyhow::Result<()> {
    match cmd {
        LogDirsCommand::Describe(a) => describe(args, a),
        LogDirsCommand::Move(a) => move_replica(args, a),
    }
}

fn move_replica(args: &ClientArgs, a: &MoveArgs) -> anyhow::Result<()> {
    use kafka_protocol::messages::alter_replica_log_dirs_request::{AlterReplicaLogDir, AlterReplicaLogDirTopic};
    use kafka_protocol::messages::AlterReplicaLogDirsRequest;

    let mut conn = connection::connect_bootstrap(args)?;
    let topics = connection::topic_partitions(&mut conn, std::slice::from_ref(&a.topic))?;
    let all = connection::brokers(&mut conn)?;
    drop(conn);
    if !topics.missing.is_empty() || !topics.partitions.iter().any(|(_, ps)| ps.contains(&a.partition)) {
        return Err(NotFound(format!("partition {}-{} does not exist", a.topic, a.partition)).into());
    }
    let broker = chosen_brokers(&all, &[a.broker_id])?.remove(0);
    let deadline = Deadline::after(args.timeout());
    let address = broker.address();
    let failure = |e| anyhow!(connection::failure_line(&address, &e, args.timeout()));
    let security = connection::Security::of(args)?;
    let mut conn = BrokerConnection::open_secured(&address, deadline, &security).map_err(failure)?;
    let request = AlterReplicaLogDirsRequest::default().with_dirs(vec![AlterReplicaLogDir::default()
        .with_path(StrBytes::from_string(a.dir.clone()))
        .with_topics(vec![AlterReplicaLogDirTopic::default()
            .with_name(TopicName(StrBytes::from_string(a.topic.clone())))
            .with_partitions(vec![a.partition])])]);
    let (answer, _) = conn.send(&request).map_err(failure)?;
    let code = answer.results.iter().flat_map(|t| t.partitions.iter()).map(|p| p.error_code).next().unwrap_or(0);
    if code != 0 {
        return Err(anyhow!("{}-{} on broker {}: {}", a.topic, a.partition, broker.id, error_name(code)));
    }
    // wait until the broker shows the replica in the destination
    let wanted = [(a.topic.clone(), vec![a.partition])];
    let there = loop {
        let left = deadline.at.saturating_duration_since(std::time::Instant::now());
        let answers =
            query(std::slice::from_ref(&broker), Some(&wanted), left.max(Duration::from_millis(100)), &security);
        let dirs = answers.into_iter().next().and_then(|b| b.dirs.ok()).unwrap_or_default();
        let holder = dirs
            .iter()
            .find(|d| d.partitions.iter().any(|p| p.topic == a.topic && p.partition == a.partition && !p.is_future));
        match holder {
            Some(d) if same_dir(&d.path, &a.dir) => break d.path.clone(),
            _ if left.is_zero() => {
                let now = holder.map_or("nowhere".to_string(), |d| d.path.clone());
                return Err(anyhow!(
                    "{}-{} on broker {} is still in {now} after {:?}",
                    a.topic,
                    a.partition,
                    broker.id,
                    args.timeout()
                ));
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    if a.json {
        println!("{}", json!({"broker": broker.id, "topic": a.topic, "partition": a.partition, "dir": there}));
    } else {
        println!("moved {}-{} on broker {} to {there}", a.topic, a.partition, broker.id);
    }
    Ok(())
}

/// Whether a broker's directory name and the one given are the same place.
fn same_dir(reported: &str, given: &str) -> bool {
    let canonical = |p: &str| std::fs::canonicalize(p).unwrap_or_else(|_| std::path::PathBuf::from(p));
    reported == given || canonical(reported) == canonical(given)
}

/// One partition in a log directory.
#[derive(Debug, Clone)]
pub struct PartitionOnDisk {
    pub topic: String,
    pub partition: i32,
    pub size_bytes: i64,
    /// How far the replica's log end is behind the high watermark.
    pub offset_lag: i64,
    /// A replica being moved into this directory (AlterReplicaLogDirs).
    pub is_future: bool,
}

/// One log directory of a broker.
#[derive(Debug, Clone)]
pub struct LogDir {
    pub path: String,
    /// Kafka's error name, e.g. `KAFKA_STORAGE_ERROR` for a failed directory.
    pub error: Option<String>,
    /// The file system's size and free space (DescribeLogDirs v4), when known.
    pub total_bytes: Option<i64>,
    pub usable_bytes: Option<i64>,
    pub partitions: Vec<PartitionOnDisk>,
}

/// A broker's answer, or why there is none (one line).
pub struct BrokerLogDirs {
    pub broker: BrokerAddress,
    pub dirs: Result<Vec<LogDir>, String>,
}

/// The partitions to ask about: `None` for every partition of the broker.
pub type Wanted<'a> = Option<&'a [(String, Vec<i32>)]>;

/// Sends DescribeLogDirs to each of `brokers`, several at a time, each within `timeout`.
pub fn query(
    brokers: &[BrokerAddress],
    wanted: Wanted<'_>,
    timeout: Duration,
    security: &connection::Security,
) -> Vec<BrokerLogDirs> {
    let request = DescribeLogDirsRequest::default().with_topics(wanted.map(|topics| {
        topics
            .iter()
            .map(|(name, partitions)| {
                DescribableLogDirTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(name.clone())))
                    .with_partitions(partitions.clone())
            })
            .collect()
    }));
    let mut out = Vec::with_capacity(brokers.len());
    for chunk in brokers.chunks(BROKERS_ASKED_AT_ONCE) {
        std::thread::scope(|scope| {
            let asked: Vec<_> =
                chunk.iter().map(|b| (b, scope.spawn(|| ask(&b.address(), &request, timeout, security)))).collect();
            for (broker, handle) in asked {
                let dirs = handle.join().unwrap_or_else(|_| Err("the request thread panicked".to_string()));
                out.push(BrokerLogDirs { broker: broker.clone(), dirs });
            }
        });
    }
    out
}

/// DescribeLogDirs to the broker at `address`.
fn ask(
    address: &str,
    request: &DescribeLogDirsRequest,
    timeout: Duration,
    security: &connection::Security,
) -> Result<Vec<LogDir>, String> {
    let deadline = Deadline::after(timeout);
    let failure = |e| connection::failure_line(address, &e, timeout);
    let mut conn = BrokerConnection::open_secured(address, deadline, security).map_err(failure)?;
    let (answer, version) = conn.send(request).map_err(failure)?;
    if answer.error_code != 0 {
        return Err(format!("{address}: DescribeLogDirs: {}", error_name(answer.error_code)));
    }
    // -1: unknown; before v4: not sent
    let known = |bytes: i64| (version >= 4 && bytes >= 0).then_some(bytes);
    Ok(answer
        .results
        .into_iter()
        .map(|dir| LogDir {
            path: dir.log_dir.as_str().to_string(),
            error: (dir.error_code != 0).then(|| error_name(dir.error_code)),
            total_bytes: known(dir.total_bytes),
            usable_bytes: known(dir.usable_bytes),
            partitions: dir
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| PartitionOnDisk {
                        topic: t.name.0.as_str().to_string(),
                        partition: p.partition_index,
                        size_bytes: p.partition_size,
                        offset_lag: p.offset_lag,
                        is_future: p.is_future_key,
                    })
                })
                .collect(),
        })
        .collect())
}

fn describe(args: &ClientArgs, a: &DescribeArgs) -> anyhow::Result<()> {
    let mut conn = connection::connect_bootstrap(args)?;
    let topics = connection::topic_partitions(&mut conn, &a.topics)?;
    let all = connection::brokers(&mut conn)?;
    drop(conn);
    if let Some(topic) = topics.missing.first() {
        return Err(NotFound(format!("topic {topic:?} does not exist")).into());
    }
    let brokers = chosen_brokers(&all, &a.broker_ids)?;
    let wanted = (!a.topics.is_empty()).then_some(topics.partitions.as_slice());
    let answers = query(&brokers, wanted, args.timeout(), &connection::Security::of(args)?);
    if a.json {
        let list: Vec<Value> = answers.iter().map(broker_json).collect();
        println!("{}", json!({ "brokers": list }));
    } else {
        print_table(&answers);
    }
    let failed: Vec<String> = answers
        .iter()
        .filter_map(|b| b.dirs.as_ref().err().map(|why| format!("broker {}: {why}", b.broker.id)))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("no log dirs from {} of {} brokers: {}", failed.len(), answers.len(), failed.join("; ")))
    }
}

/// The brokers named by `--broker` (all when none), or `NotFound`.
fn chosen_brokers(all: &[BrokerAddress], ids: &[i32]) -> anyhow::Result<Vec<BrokerAddress>> {
    if ids.is_empty() {
        return Ok(all.to_vec());
    }
    let ids: BTreeSet<i32> = ids.iter().copied().collect();
    let known: Vec<String> = all.iter().map(|b| b.id.to_string()).collect();
    ids.iter()
        .map(|id| {
            all.iter().find(|b| b.id == *id).cloned().ok_or_else(|| {
                NotFound(format!("broker {id} is not in the cluster (brokers: {})", known.join(", "))).into()
            })
        })
        .collect()
}

fn broker_json(b: &BrokerLogDirs) -> Value {
    let (dirs, error) = match &b.dirs {
        Ok(dirs) => (dirs.iter().map(dir_json).collect(), Value::Null),
        Err(why) => (Vec::new(), json!(why)),
    };
    json!({"broker": b.broker.id, "address": b.broker.address(), "fenced": b.broker.fenced, "error": error,
           "log_dirs": dirs})
}

fn dir_json(d: &LogDir) -> Value {
    let partitions: Vec<Value> = d
        .partitions
        .iter()
        .map(|p| {
            json!({"topic": p.topic, "partition": p.partition, "size_bytes": p.size_bytes,
                   "offset_lag": p.offset_lag, "is_future": p.is_future})
        })
        .collect();
    json!({"path": d.path, "error": d.error, "total_bytes": d.total_bytes, "usable_bytes": d.usable_bytes,
           "partitions": partitions})
}

fn print_table(answers: &[BrokerLogDirs]) {
    let or_dash = |bytes: Option<i64>| bytes.map_or_else(|| "-".to_string(), human_bytes);
    for b in answers {
        let fenced = if b.broker.fenced { " (fenced)" } else { "" };
        let dirs = match &b.dirs {
            Ok(dirs) => dirs,
            Err(why) => {
                println!("broker {} at {}{fenced}: no answer: {why}", b.broker.id, b.broker.address());
                continue;
            }
        };
        println!("broker {} at {}{fenced}", b.broker.id, b.broker.address());
        for d in dirs {
            let error = d.error.as_ref().map(|e| format!("  error {e}")).unwrap_or_default();
            println!("  {}  total {}  usable {}{error}", d.path, or_dash(d.total_bytes), or_dash(d.usable_bytes));
            if d.partitions.is_empty() {
                println!("    (no partitions)");
                continue;
            }
            let width = d.partitions.iter().map(|p| p.topic.len()).max().unwrap_or(0).max(5);
            println!("    {:<width$}  {:>9}  {:>10}  {:>10}", "TOPIC", "PARTITION", "SIZE", "OFFSET-LAG");
            for p in &d.partitions {
                let future = if p.is_future { "  (future)" } else { "" };
                println!(
                    "    {:<width$}  {:>9}  {:>10}  {:>10}{future}",
                    p.topic,
                    p.partition,
                    human_bytes(p.size_bytes),
                    p.offset_lag
                );
            }
        }
    }
}

/// The size of one replica, or why it is not known (one line).
pub type ReplicaSize = Result<i64, String>;

/// What one broker said about a topic's replicas.
struct BrokerSizes {
    /// Partition -> bytes, summed over the broker's log dirs.
    sizes: BTreeMap<i32, i64>,
    /// `path: ERROR` of each directory that reported an error.
    failed_dirs: Vec<String>,
}

/// The sizes of one topic's replicas, per broker and partition, for
/// `topic describe`.
pub struct ReplicaSizes {
    by_broker: BTreeMap<i32, Result<BrokerSizes, String>>,
}

impl ReplicaSizes {
    /// Asks each broker in `replica_brokers` about `partitions` of `topic`;
    /// `brokers` are the addresses of the cluster's brokers.
    pub fn of_topic(
        brokers: &[BrokerAddress],
        replica_brokers: &BTreeSet<i32>,
        topic: &str,
        partitions: Vec<i32>,
        timeout: Duration,
        security: &connection::Security,
    ) -> Self {
        let asked: Vec<BrokerAddress> = brokers.iter().filter(|b| replica_brokers.contains(&b.id)).cloned().collect();
        let wanted = [(topic.to_string(), partitions)];
        let mut sizes = ReplicaSizes::unknown(replica_brokers, "not among the cluster's brokers");
        for answer in query(&asked, Some(&wanted), timeout, security) {
            let found = answer.dirs.map(|dirs| {
                let mut found = BrokerSizes { sizes: BTreeMap::new(), failed_dirs: Vec::new() };
                for d in &dirs {
                    if let Some(error) = &d.error {
                        found.failed_dirs.push(format!("{}: {error}", d.path));
                    }
                    for p in d.partitions.iter().filter(|p| p.topic == topic && !p.is_future) {
                        *found.sizes.entry(p.partition).or_insert(0) += p.size_bytes;
                    }
                }
                found
            });
            sizes.by_broker.insert(answer.broker.id, found);
        }
        sizes
    }

    /// Sizes that cannot be asked for at all (`why`, one line).
    pub fn unknown(replica_brokers: &BTreeSet<i32>, why: &str) -> Self {
        ReplicaSizes { by_broker: replica_brokers.iter().map(|id| (*id, Err(why.to_string()))).collect() }
    }

    /// The size of `partition`'s replica on `broker`.
    pub fn replica(&self, broker: i32, partition: i32) -> ReplicaSize {
        match self.by_broker.get(&broker) {
            None => Err("not asked".to_string()),
            Some(Err(why)) => Err(why.clone()),
            Some(Ok(found)) => found.sizes.get(&partition).copied().ok_or_else(|| {
                if found.failed_dirs.is_empty() {
                    "not in the broker's log dirs".to_string()
                } else {
                    format!("not in the broker's log dirs; failed: {}", found.failed_dirs.join(", "))
                }
            }),
        }
    }

    /// Why the brokers that gave no sizes gave none, and the directories
    /// that failed, one entry each.
    pub fn failures(&self) -> Vec<String> {
        self.by_broker
            .iter()
            .flat_map(|(id, r)| match r {
                Err(why) => vec![format!("broker {id}: {why}")],
                Ok(found) => found.failed_dirs.iter().map(|d| format!("broker {id}: log dir {d}")).collect(),
            })
            .collect()
    }
}
