//! BROKER_LOGGER resources: this process's log levels, described and
//! changed at runtime (DescribeConfigs and IncrementalAlterConfigs with
//! resource type 8, `kafka-configs.sh --entity-type broker-loggers`), as
//! Kafka changes its log4j loggers. A logger is a tracing target: a crate or
//! module path such as `vltava_broker::replica_manager`; `root` is the
//! level of everything else. Changes live in this process only, as in Kafka.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// The root logger's name, as Kafka calls it.
pub const ROOT: &str = "root";

/// The loggers that exist: vltava's crates and their main modules.
pub const LOGGERS: &[&str] = &[
    "vltava_broker",
    "vltava_broker::connection",
    "vltava_broker::controller",
    "vltava_broker::group",
    "vltava_broker::handlers",
    "vltava_broker::log_manager",
    "vltava_broker::partition",
    "vltava_broker::replica_manager",
    "vltava_broker::replication",
    "vltava_broker::server",
    "vltava_broker::txn",
    "vltava_metadata",
    "vltava_protocol",
    "vltava_quorum",
    "vltava_storage",
    "vltava_storage::cleaner",
    "vltava_storage::log",
    "vltava_storage::log_dir",
];

/// Kafka's log4j levels and the tracing level each one sets.
const LEVELS: &[(&str, &str)] = &[
    ("TRACE", "trace"),
    ("DEBUG", "debug"),
    ("INFO", "info"),
    ("WARN", "warn"),
    ("ERROR", "error"),
    ("FATAL", "error"),
    ("OFF", "off"),
];

struct Levels {
    root: String,
    /// Logger -> Kafka level name, from `RUST_LOG` or set since.
    set: BTreeMap<String, String>,
    /// `RUST_LOG` directives that name no logger of ours (other crates,
    /// span filters): kept as given underneath.
    other: Vec<String>,
    handle: reload::Handle<EnvFilter, Registry>,
}

impl Levels {
    /// The filter these levels make.
    fn filter(&self) -> (EnvFilter, Vec<String>) {
        let tracing_level = |kafka: &str| LEVELS.iter().find(|(k, _)| *k == kafka).map_or("info", |(_, t)| t);
        let mut directives = vec![tracing_level(&self.root).to_string()];
        directives.extend(self.other.iter().cloned());
        directives.extend(self.set.iter().map(|(logger, l)| format!("{logger}={}", tracing_level(l))));
        // every part is a known level or came from a RUST_LOG that parsed
        let filter = EnvFilter::try_new(directives.join(",")).unwrap_or_else(|_| EnvFilter::new("info"));
        (filter, directives)
    }
}

static STATE: OnceLock<Mutex<Levels>> = OnceLock::new();

/// The Kafka name of a plain tracing level (`debug` -> DEBUG).
fn kafka_level(tracing: &str) -> Option<&'static str> {
    let tracing = tracing.trim().to_ascii_lowercase();
    LEVELS.iter().find(|(kafka, t)| *t == tracing && *kafka != "FATAL").map(|(kafka, _)| *kafka)
}

/// Installs the process's logger: to stderr, filtered by `RUST_LOG` (`info`
/// when unset or unparsable). Its plain level is the root level, its
/// `logger=level` directives for vltava's loggers are those loggers' levels
/// (shown and changeable), and the rest stays as given.
pub fn init() {
    let from_env = std::env::var("RUST_LOG").ok().filter(|v| EnvFilter::try_new(v).is_ok());
    let mut root = "INFO".to_string();
    let mut set = BTreeMap::new();
    let mut other = Vec::new();
    for directive in from_env.iter().flat_map(|v| v.split(',')).map(str::trim).filter(|d| !d.is_empty()) {
        match directive.split_once('=') {
            None if kafka_level(directive).is_some() => root = kafka_level(directive).unwrap_or("INFO").to_string(),
            Some((logger, level)) if LOGGERS.contains(&logger) && kafka_level(level).is_some() => {
                set.insert(logger.to_string(), kafka_level(level).unwrap_or("INFO").to_string());
            }
            _ => other.push(directive.to_string()),
        }
    }
    let (layer, handle) = reload::Layer::new(EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(layer)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    let levels = Levels { root, set, other, handle };
    let _ = levels.handle.reload(levels.filter().0);
    let _ = STATE.set(Mutex::new(levels));
}

/// Every logger and its level (Kafka's names), `root` first.
pub fn levels() -> Vec<(String, String)> {
    let Some(state) = STATE.get() else {
        return vec![(ROOT.to_string(), "INFO".to_string())];
    };
    let state = state.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = vec![(ROOT.to_string(), state.root.clone())];
    for logger in LOGGERS {
        let level = state.set.get(*logger).cloned().unwrap_or_else(|| state.root.clone());
        out.push((logger.to_string(), level));
    }
    out
}

/// Checks a change the way Kafka does: the logger must exist and the level
/// be a log4j level; `None` (DELETE) puts a logger back to the root level
/// and is refused for `root` itself.
pub fn check(logger: &str, level: Option<&str>) -> Result<(), String> {
    if logger != ROOT && !LOGGERS.contains(&logger) {
        return Err(format!("Logger {logger} does not exist!"));
    }
    match level {
        None if logger == ROOT => Err(format!("Removing the log level of the {ROOT} logger is not allowed")),
        None => Ok(()),
        Some(l) if LEVELS.iter().any(|(kafka, _)| *kafka == l.trim().to_ascii_uppercase()) => Ok(()),
        Some(l) => Err(format!(
            "Cannot set the log level of {logger} to {l} as it is not a supported log level. Valid log4j levels are TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF"
        )),
    }
}

/// Applies checked changes; an error if this process has no reloadable
/// logger (it was not started by `init`).
pub fn apply(changes: &[(String, Option<String>)]) -> Result<(), String> {
    let state = STATE.get().ok_or("this process's log levels cannot change")?;
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    for (logger, level) in changes {
        let level = level.as_ref().map(|l| l.trim().to_ascii_uppercase());
        match (logger.as_str(), level) {
            (ROOT, Some(l)) => state.root = l,
            (_, Some(l)) => {
                state.set.insert(logger.clone(), l);
            }
            (_, None) => {
                state.set.remove(logger);
            }
        }
    }
    let (filter, directives) = state.filter();
    state.handle.reload(filter).map_err(|e| e.to_string())?;
    tracing::info!(levels = ?directives, "log levels changed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_levels_and_known_loggers_only() {
        assert!(check("vltava_broker::replica_manager", Some("DEBUG")).is_ok());
        assert!(check("vltava_broker::replica_manager", Some("debug")).is_ok());
        assert!(check(ROOT, Some("FATAL")).is_ok());
        assert!(check("vltava_storage", None).is_ok());
        assert!(check(ROOT, None).is_err());
        assert!(check("vltava_broker", Some("LOUD")).unwrap_err().contains("Valid log4j levels"));
        assert!(check("kafka.server", Some("INFO")).unwrap_err().contains("does not exist"));
        assert_eq!(levels()[0].0, ROOT);
        assert_eq!(
            (kafka_level("debug"), kafka_level(" WARN "), kafka_level("loud")),
            (Some("DEBUG"), Some("WARN"), None)
        );
    }
}
