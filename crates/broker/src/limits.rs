//! Every bound and timeout of the broker that is not a Kafka setting, in
//! one place, with its unit in its name (settings with Kafka's names are in
//! `config.rs`; the quorum's own are in the quorum crate's `driver`,
//! `node` and `transport` modules).

use std::time::Duration;

// ---- requests ------------------------------------------------------------

/// Longest a Fetch may wait for `min_bytes` (a larger `max_wait_ms` is cut).
pub const FETCH_WAIT_MS_MAX: u64 = 5 * 60 * 1000;
/// Longest topic name (Kafka's).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// Most partitions a topic may have.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;

// ---- metadata --------------------------------------------------------------

/// Longest a metadata change waits for the quorum and for this node to act
/// on it.
pub const PROPOSE_TIMEOUT: Duration = Duration::from_secs(15);
/// A broker not yet registered asks again this often.
pub const REGISTER_RETRY: Duration = Duration::from_millis(500);
/// Heartbeat interval while not registered (fast, to be registered soon).
pub const UNREGISTERED_HEARTBEAT: Duration = Duration::from_millis(100);
/// A broker starts serving after this long even if not registered yet.
pub const SERVE_UNREGISTERED_AFTER: Duration = Duration::from_secs(30);

// ---- groups -----------------------------------------------------------------

/// Most consumer groups one broker coordinates (a client creating groups
/// without end cannot exhaust its memory).
pub const GROUPS_MAX: usize = 100_000;

// ---- replication -------------------------------------------------------------

/// A leader proposes an ISR change again after this long without seeing
/// its effect.
pub const ISR_CHANGE_RESEND_AFTER: Duration = Duration::from_millis(500);
/// Shortest pause between checks for lagging followers.
pub const ISR_SHRINK_CHECK_MIN: Duration = Duration::from_millis(100);
/// Pause before retrying a request to another broker.
pub const INTER_BROKER_RETRY: Duration = Duration::from_millis(200);
/// Longest connect to another broker.
pub const INTER_BROKER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest response accepted from another broker.
pub const INTER_BROKER_RESPONSE_BYTES_MAX: usize = 256 << 20;
/// Longest OffsetForLeaderEpoch or WriteTxnMarkers request.
pub const INTER_BROKER_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A fetcher with nothing to follow looks again this often.
pub const FETCHER_IDLE_WAIT: Duration = Duration::from_secs(1);
/// Longest wait for a coordinator's write (offsets, transaction state) to
/// be committed like acks=all.
pub const COORDINATOR_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a share partition's state operation keeps retrying while the
/// share coordinator moves (NOT_COORDINATOR, loading, unreachable).
pub const SHARE_PERSISTER_RETRY_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections the share persister keeps to each share coordinator
/// broker (one per operation in flight is opened as needed).
pub const SHARE_PERSISTER_IDLE_CONNECTIONS_MAX: usize = 8;

// ---- transactions --------------------------------------------------------------

/// Producer ids a broker takes from the controller at a time.
pub const PRODUCER_ID_BLOCK: i64 = 1000;
/// How long EndTxn waits for its markers before answering (the decision is
/// durable by then; the markers go on in the background).
pub const END_TXN_WAIT: Duration = Duration::from_secs(15);

// ---- storage ----------------------------------------------------------------
/// `log.dir.min.free.bytes` when unset, if a tenth of the file system is more.
pub const LOG_DIR_MIN_FREE_BYTES_DEFAULT: u64 = 64 << 20;

/// How often segments rolled since the last flush are fsynced (a roll does
/// not wait for the disk; acks=all flushes them sooner).
pub const ROLLED_SEGMENT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

// ---- shutdown ----------------------------------------------------------------

/// Longest a controlled shutdown waits for its leaderships to move.
pub const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a controlled shutdown looks whether they moved.
pub const CONTROLLED_SHUTDOWN_POLL: Duration = Duration::from_millis(100);
/// Longest a stopping controller waits to hand its leadership over.
pub const RESIGN_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest open connections get to finish at shutdown.
pub const CONNECTION_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed accept (out of file descriptors, ...).
pub const ACCEPT_RETRY: Duration = Duration::from_millis(10);
/// A TLS client must finish its handshake within this after connecting,
/// or the connection is closed (one that says nothing holds no slot for
/// longer).
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes read from a TLS connection's socket at once (rustls alone reads
/// 4 KiB at a time).
pub const TLS_SOCKET_READ_BUFFER_BYTES: usize = 64 * 1024;
