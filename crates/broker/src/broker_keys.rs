//! Kafka 4.1's broker config keys that vltava does not act on, grouped by
//! what it does with them: accept them because they have no meaning here, or
//! accept only the values that ask for nothing vltava lacks and refuse to
//! start on the others. The keys vltava implements are parsed in
//! `config.rs`; together the two cover every key of Kafka 4.1's broker
//! config list, and README.md's broker config table follows these groups.

/// What a group of keys accepts.
#[derive(Clone, Copy)]
pub enum Rule {
    /// Any value: the setting has no meaning in vltava.
    Any,
    /// Values for which this returns true (Kafka's default among them).
    Only(fn(&str) -> bool),
}

pub struct KeyGroup {
    pub keys: &'static [&'static str],
    pub rule: Rule,
    /// Why vltava accepts the keys, or what it lacks for the values it refuses.
    pub reason: &'static str,
}

/// What vltava makes of one key and value.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A known key whose value changes nothing here.
    Accepted,
    /// A value that asks for something vltava does not have.
    Refused(&'static str),
    /// Not a Kafka 4.1 broker key vltava knows of.
    Unknown,
}

fn unset(v: &str) -> bool {
    v.trim().is_empty()
}
fn is_false(v: &str) -> bool {
    v.trim().eq_ignore_ascii_case("false")
}
fn unlimited_int(v: &str) -> bool {
    v.trim().parse::<i64>().is_ok_and(|n| n >= i32::MAX as i64)
}
fn unlimited_double(v: &str) -> bool {
    v.trim().parse::<f64>().is_ok_and(|n| n >= f64::MAX)
}
fn gzip_default(v: &str) -> bool {
    v.trim() == "-1"
}
fn lz4_default(v: &str) -> bool {
    v.trim() == "9"
}
fn zstd_default(v: &str) -> bool {
    v.trim() == "3"
}

pub const GROUPS: &[KeyGroup] = &[
    KeyGroup {
        keys: &[
            "background.threads",
            "group.coordinator.threads",
            "log.cleaner.threads",
            "num.io.threads",
            "num.network.threads",
            "num.recovery.threads.per.data.dir",
            "num.replica.alter.log.dirs.threads",
            "num.replica.fetchers",
        ],
        rule: Rule::Any,
        reason: "thread pools: vltava runs on tokio's worker threads, one replica fetcher task per leader and one blocking thread for retention and compaction",
    },
    KeyGroup {
        keys: &[
            "delete.records.purgatory.purge.interval.requests",
            "fetch.purgatory.purge.interval.requests",
            "producer.purgatory.purge.interval.requests",
        ],
        rule: Rule::Any,
        reason: "waiting requests are futures that complete or are dropped; there is no purgatory to purge",
    },
    KeyGroup {
        keys: &[
            "connections.max.idle.ms",
            "log.cleaner.dedupe.buffer.size",
            "log.cleaner.io.buffer.load.factor",
            "log.cleaner.io.buffer.size",
            "offsets.load.buffer.size",
            "queued.max.request.bytes",
            "replica.socket.receive.buffer.bytes",
            "socket.receive.buffer.bytes",
            "socket.send.buffer.bytes",
            "transaction.state.log.load.buffer.size",
        ],
        rule: Rule::Any,
        reason: "memory and socket tuning: socket buffers are left to the kernel's autotuning, requests are bounded by socket.request.max.bytes and queued.max.requests, idle connections stay open until the client closes them",
    },
    KeyGroup {
        keys: &[
            "add.partitions.to.txn.retry.backoff.max.ms",
            "add.partitions.to.txn.retry.backoff.ms",
            "controller.socket.timeout.ms",
            "group.coordinator.append.linger.ms",
            "initial.broker.registration.timeout.ms",
            "log.dir.failure.timeout.ms",
            "log.flush.scheduler.interval.ms",
            "log.flush.start.offset.checkpoint.interval.ms",
            "offsets.commit.timeout.ms",
            "replica.fetch.backoff.ms",
            "replica.high.watermark.checkpoint.interval.ms",
            "replica.socket.timeout.ms",
            "request.timeout.ms",
            "socket.connection.setup.timeout.max.ms",
            "socket.connection.setup.timeout.ms",
        ],
        rule: Rule::Any,
        reason: "timers of Kafka's internals: vltava persists the log start offset when it moves, recomputes the high watermark from the replicas, writes coordinator records at once, and retries broker-to-broker requests every 200 ms",
    },
    KeyGroup {
        keys: &[
            "controller.quorum.append.linger.ms",
            "controller.quorum.election.backoff.max.ms",
            "controller.quorum.election.timeout.ms",
            "controller.quorum.fetch.timeout.ms",
            "controller.quorum.request.timeout.ms",
            "controller.quorum.retry.backoff.ms",
            "metadata.log.segment.ms",
            "metadata.max.idle.interval.ms",
            "metadata.max.retention.bytes",
            "metadata.max.retention.ms",
        ],
        rule: Rule::Any,
        reason: "the metadata log is raft-rs's (a 100 ms tick, elections after 1-2 s) in one file without snapshots",
    },
    KeyGroup {
        keys: &[
            "kafka.metrics.polling.interval.secs",
            "kafka.metrics.reporters",
            "metric.reporters",
            "metrics.num.samples",
            "metrics.recording.level",
            "metrics.sample.window.ms",
        ],
        rule: Rule::Any,
        reason: "JMX metrics plumbing; vltava has no metrics reporters (it serves /metrics itself)",
    },
    KeyGroup {
        keys: &[
            "alter.log.dirs.replication.quota.window.num",
            "alter.log.dirs.replication.quota.window.size.seconds",
            "controller.quota.window.num",
            "controller.quota.window.size.seconds",
            "quota.window.num",
            "quota.window.size.seconds",
            "replication.quota.window.num",
            "replication.quota.window.size.seconds",
        ],
        rule: Rule::Any,
        reason: "client quotas use Kafka's default windows (11 samples of 1 s); replication quotas are not enforced",
    },
    KeyGroup {
        keys: &["max.incremental.fetch.session.cache.slots"],
        rule: Rule::Any,
        reason: "every fetch is a full fetch (session id 0), which clients always accept",
    },
    KeyGroup {
        keys: &["offsets.topic.compression.codec"],
        rule: Rule::Any,
        reason: "group coordinator records are written uncompressed",
    },
    KeyGroup {
        keys: &[
            "offsets.retention.check.interval.ms",
            "offsets.retention.minutes",
            "producer.id.expiration.ms",
            "transaction.remove.expired.transaction.cleanup.interval.ms",
            "transactional.id.expiration.ms",
        ],
        rule: Rule::Any,
        reason: "not expired yet: committed offsets, producer ids and transactional ids are kept until their group or topic is deleted",
    },
    KeyGroup {
        keys: &["transaction.partition.verification.enable"],
        rule: Rule::Any,
        reason: "transactional produce is not verified with the transaction coordinator (KIP-890), as with false; the partition checks the producer's epoch and sequence",
    },
    KeyGroup {
        keys: &[
            "share.coordinator.append.linger.ms",
            "share.coordinator.load.buffer.size",
            "share.coordinator.state.topic.compression.codec",
            "share.coordinator.threads",
            "share.fetch.purgatory.purge.interval.requests",
        ],
        rule: Rule::Any,
        reason: "share coordinator tuning: share state is written as it changes, one record per change, by the broker's own tasks",
    },
    KeyGroup {
        keys: &[
            "group.streams.heartbeat.interval.ms",
            "group.streams.max.heartbeat.interval.ms",
            "group.streams.max.session.timeout.ms",
            "group.streams.max.size",
            "group.streams.max.standby.replicas",
            "group.streams.min.heartbeat.interval.ms",
            "group.streams.min.session.timeout.ms",
            "group.streams.num.standby.replicas",
            "group.streams.session.timeout.ms",
        ],
        rule: Rule::Any,
        reason: "streams groups (KIP-1071) are not offered",
    },
    KeyGroup {
        keys: &["remote.log.storage.system.enable"],
        rule: Rule::Only(is_false),
        reason: "tiered storage is not supported",
    },
    KeyGroup {
        keys: &[
            "log.local.retention.bytes",
            "log.local.retention.ms",
            "remote.fetch.max.wait.ms",
            "remote.list.offsets.request.timeout.ms",
            "remote.log.index.file.cache.total.size.bytes",
            "remote.log.manager.copier.thread.pool.size",
            "remote.log.manager.copy.max.bytes.per.second",
            "remote.log.manager.copy.quota.window.num",
            "remote.log.manager.copy.quota.window.size.seconds",
            "remote.log.manager.expiration.thread.pool.size",
            "remote.log.manager.fetch.max.bytes.per.second",
            "remote.log.manager.fetch.quota.window.num",
            "remote.log.manager.fetch.quota.window.size.seconds",
            "remote.log.manager.task.interval.ms",
            "remote.log.manager.thread.pool.size",
            "remote.log.metadata.custom.metadata.max.bytes",
            "remote.log.metadata.manager.class.name",
            "remote.log.metadata.manager.class.path",
            "remote.log.metadata.manager.impl.prefix",
            "remote.log.metadata.manager.listener.name",
            "remote.log.reader.max.pending.tasks",
            "remote.log.reader.threads",
            "remote.log.storage.manager.class.name",
            "remote.log.storage.manager.class.path",
            "remote.log.storage.manager.impl.prefix",
        ],
        rule: Rule::Any,
        reason: "used only with tiered storage, which stays off",
    },
    KeyGroup {
        keys: &[
            "client.quota.callback.class",
            "max.connection.creation.rate",
            "max.connections.per.ip",
            "max.connections.per.ip.overrides",
        ],
        rule: Rule::Only(unlimited_or_unset),
        reason: "per-IP connection limits and broker-wide connection rates are not enforced (max.connections and client quotas are)",
    },
    KeyGroup {
        keys: &["log.cleaner.io.max.bytes.per.second"],
        rule: Rule::Only(unlimited_double),
        reason: "compaction I/O is not throttled",
    },
    KeyGroup {
        keys: &["alter.config.policy.class.name", "create.topic.policy.class.name"],
        rule: Rule::Only(unset),
        reason: "topic create and alter policies are not supported",
    },
    KeyGroup {
        keys: &["broker.rack", "replica.selector.class"],
        rule: Rule::Only(unset),
        reason: "racks are not supported: no rack-aware placement and no fetching from followers (KIP-392)",
    },
    KeyGroup {
        keys: &["transaction.two.phase.commit.enable"],
        rule: Rule::Only(is_false),
        reason: "two-phase commit with an external coordinator (KIP-939) is not supported",
    },
    KeyGroup {
        keys: &["compression.gzip.level"],
        rule: Rule::Only(gzip_default),
        reason: "recompression uses each codec's default level",
    },
    KeyGroup {
        keys: &["compression.lz4.level"],
        rule: Rule::Only(lz4_default),
        reason: "recompression uses each codec's default level",
    },
    KeyGroup {
        keys: &["compression.zstd.level"],
        rule: Rule::Only(zstd_default),
        reason: "recompression uses each codec's default level",
    },
    KeyGroup {
        keys: &[
            "connection.failed.authentication.delay.ms",
            "connections.max.reauth.ms",
            "delegation.token.expiry.check.interval.ms",
            "delegation.token.expiry.time.ms",
            "delegation.token.max.lifetime.ms",
            "delegation.token.secret.key",
            "early.start.listeners",
            "principal.builder.class",
            "sasl.client.callback.handler.class",
            "sasl.enabled.mechanisms",
            "sasl.jaas.config",
            "sasl.kerberos.kinit.cmd",
            "sasl.kerberos.min.time.before.relogin",
            "sasl.kerberos.principal.to.local.rules",
            "sasl.kerberos.service.name",
            "sasl.kerberos.ticket.renew.jitter",
            "sasl.kerberos.ticket.renew.window.factor",
            "sasl.login.callback.handler.class",
            "sasl.login.class",
            "sasl.login.connect.timeout.ms",
            "sasl.login.read.timeout.ms",
            "sasl.login.refresh.buffer.seconds",
            "sasl.login.refresh.min.period.seconds",
            "sasl.login.refresh.window.factor",
            "sasl.login.refresh.window.jitter",
            "sasl.login.retry.backoff.max.ms",
            "sasl.login.retry.backoff.ms",
            "sasl.mechanism.controller.protocol",
            "sasl.mechanism.inter.broker.protocol",
            "sasl.oauthbearer.assertion.algorithm",
            "sasl.oauthbearer.assertion.claim.aud",
            "sasl.oauthbearer.assertion.claim.exp.seconds",
            "sasl.oauthbearer.assertion.claim.iss",
            "sasl.oauthbearer.assertion.claim.jti.include",
            "sasl.oauthbearer.assertion.claim.nbf.seconds",
            "sasl.oauthbearer.assertion.claim.sub",
            "sasl.oauthbearer.assertion.file",
            "sasl.oauthbearer.assertion.private.key.file",
            "sasl.oauthbearer.assertion.private.key.passphrase",
            "sasl.oauthbearer.assertion.template.file",
            "sasl.oauthbearer.client.credentials.client.id",
            "sasl.oauthbearer.client.credentials.client.secret",
            "sasl.oauthbearer.clock.skew.seconds",
            "sasl.oauthbearer.expected.audience",
            "sasl.oauthbearer.expected.issuer",
            "sasl.oauthbearer.jwks.endpoint.refresh.ms",
            "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
            "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
            "sasl.oauthbearer.jwks.endpoint.url",
            "sasl.oauthbearer.jwt.retriever.class",
            "sasl.oauthbearer.jwt.validator.class",
            "sasl.oauthbearer.scope",
            "sasl.oauthbearer.scope.claim.name",
            "sasl.oauthbearer.sub.claim.name",
            "sasl.oauthbearer.token.endpoint.url",
            "sasl.server.callback.handler.class",
            "sasl.server.max.receive.size",
            "security.providers",
            "ssl.allow.dn.changes",
            "ssl.allow.san.changes",
            "ssl.cipher.suites",
            "ssl.engine.factory.class",
            "ssl.keymanager.algorithm",
            "ssl.protocol",
            "ssl.provider",
            "ssl.secure.random.implementation",
            "ssl.trustmanager.algorithm",
        ],
        rule: Rule::Any,
        reason: "SASL settings (read per listener by sasl/), or for Kerberos and pluggable callbacks vltava does not have; \
                 rustls chooses the TLS cipher suites, provider and key managers",
    },
    KeyGroup {
        keys: &[
            "ssl.client.auth",
            "ssl.enabled.protocols",
            "ssl.endpoint.identification.algorithm",
            "ssl.key.password",
            "ssl.keystore.certificate.chain",
            "ssl.keystore.key",
            "ssl.keystore.location",
            "ssl.keystore.password",
            "ssl.keystore.type",
            "ssl.principal.mapping.rules",
            "ssl.truststore.certificates",
            "ssl.truststore.location",
            "ssl.truststore.password",
            "ssl.truststore.type",
        ],
        rule: Rule::Any,
        reason: "TLS settings, read per listener by listeners.rs (listener.name.<l>.ssl.* before ssl.*)",
    },
];

fn unlimited_or_unset(v: &str) -> bool {
    unset(v) || unlimited_int(v)
}

/// The group `key` belongs to.
pub fn group_of(key: &str) -> Option<&'static KeyGroup> {
    GROUPS.iter().find(|g| g.keys.contains(&key))
}

/// What vltava makes of a key it does not implement.
pub fn check(key: &str, value: &str) -> Verdict {
    if let Some(group) = group_of(key) {
        return match group.rule {
            Rule::Any => Verdict::Accepted,
            Rule::Only(ok) if ok(value) => Verdict::Accepted,
            Rule::Only(_) => Verdict::Refused(group.reason),
        };
    }
    if let Some(rest) = key.strip_prefix("listener.name.") {
        // listener.name.<listener>.<key>, or .<listener>.<mechanism>.sasl.<...>:
        // per-listener SSL settings (read by listeners.rs) and SASL ones
        // (read by sasl/ for SASL listeners)
        let Some((_, setting)) = rest.split_once('.') else { return Verdict::Unknown };
        if setting.starts_with("ssl.") || setting.contains("sasl.") || setting.ends_with("connections.max.reauth.ms") {
            return Verdict::Accepted;
        }
    }
    Verdict::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_in_one_group() {
        let mut seen = std::collections::HashSet::new();
        for g in GROUPS {
            for k in g.keys {
                assert!(seen.insert(*k), "{k} is in two groups");
            }
        }
    }

    #[test]
    fn values_that_ask_for_nothing_missing_are_accepted() {
        assert_eq!(check("num.io.threads", "16"), Verdict::Accepted);
        assert_eq!(check("remote.log.storage.system.enable", "false"), Verdict::Accepted);
        assert_eq!(check("remote.log.storage.system.enable", "FALSE"), Verdict::Accepted);
        assert!(
            matches!(check("remote.log.storage.system.enable", "true"), Verdict::Refused(r) if r.contains("tiered"))
        );
        assert_eq!(check("max.connections.per.ip", "2147483647"), Verdict::Accepted);
        assert!(matches!(check("max.connections.per.ip", "100"), Verdict::Refused(_)));
        assert_eq!(check("max.connections.per.ip.overrides", ""), Verdict::Accepted);
        assert!(matches!(check("max.connections.per.ip.overrides", "10.0.0.1:5"), Verdict::Refused(_)));
        assert_eq!(check("log.cleaner.io.max.bytes.per.second", "1.7976931348623157E308"), Verdict::Accepted);
        assert!(matches!(check("log.cleaner.io.max.bytes.per.second", "1048576"), Verdict::Refused(_)));
        assert_eq!(check("broker.rack", ""), Verdict::Accepted);
        assert!(matches!(check("broker.rack", "eu-1a"), Verdict::Refused(r) if r.contains("rack")));
        assert_eq!(check("compression.zstd.level", "3"), Verdict::Accepted);
        assert!(matches!(check("compression.zstd.level", "19"), Verdict::Refused(_)));
        assert_eq!(check("transaction.two.phase.commit.enable", "false"), Verdict::Accepted);
        assert!(matches!(check("transaction.two.phase.commit.enable", "true"), Verdict::Refused(_)));
        assert_eq!(check("ssl.keystore.location", "/etc/kafka/ks.jks"), Verdict::Accepted);
    }

    #[test]
    fn listener_overrides_of_security_settings_are_accepted_and_others_unknown() {
        assert_eq!(check("listener.name.sasl_ssl.plain.sasl.jaas.config", "x required;"), Verdict::Accepted);
        assert_eq!(check("listener.name.internal.ssl.keystore.location", "/ks"), Verdict::Accepted);
        assert_eq!(check("listener.name.internal.max.connections", "10"), Verdict::Unknown);
        assert_eq!(check("no.such.key", "1"), Verdict::Unknown);
        assert_eq!(check("zookeeper.connect", "localhost:2181"), Verdict::Unknown, "not a Kafka 4.1 key");
    }
}
