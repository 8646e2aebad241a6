//! The immutable metadata image that records are applied to.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use crate::record::{DelegationTokenInfo, MetadataRecord, QuotaValue, ScramCredentialData};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionImage {
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// The replica set an ongoing reassignment moves to; `replicas` holds
    /// the old and new replicas until every target replica is in the ISR.
    pub target_replicas: Option<Vec<i32>>,
}

impl PartitionImage {
    /// Replicas being added by an ongoing reassignment.
    pub fn adding(&self) -> Vec<i32> {
        let Some(target) = &self.target_replicas else { return Vec::new() };
        target.iter().copied().filter(|r| !self.isr.contains(r)).collect()
    }

    /// Replicas an ongoing reassignment will remove.
    pub fn removing(&self) -> Vec<i32> {
        let Some(target) = &self.target_replicas else { return Vec::new() };
        self.replicas.iter().copied().filter(|r| !target.contains(r)).collect()
    }
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerImage {
    pub id: i32,
    pub incarnation: u64,
    pub host: String,
    pub port: u16,
    /// Fenced brokers lead nothing and are not in any ISR.
    pub fenced: bool,
    /// Replicas in a failed log directory of this incarnation: out of
    /// their ISR, never elected.
    pub offline_replicas: std::collections::BTreeSet<(Uuid, i32)>,
    /// Its listeners by name (`BrokerEndpoints`); empty: `host:port` serves
    /// every listener.
    pub endpoints: Vec<crate::BrokerEndpoint>,
}

impl BrokerImage {
    /// Where a client of `listener` reaches this broker (Kafka advertises
    /// per listener name): `None` if the broker has no such listener.
    pub fn endpoint(&self, listener: &str) -> Option<(&str, u16)> {
        if self.endpoints.is_empty() {
            return Some((&self.host, self.port));
        }
        self.endpoints.iter().find(|e| e.listener == listener).map(|e| (e.host.as_str(), e.port))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: Vec<PartitionImage>,
    pub configs: BTreeMap<String, String>,
}

impl TopicImage {
    /// The partition `index` (partitions are kept sorted by index).
    pub fn partition(&self, index: i32) -> Option<&PartitionImage> {
        self.partitions.binary_search_by_key(&index, |p| p.partition).ok().map(|i| &self.partitions[i])
    }

    pub fn is_internal(&self) -> bool {
        self.name.starts_with("__")
    }
}

/// State after applying every record up to `offset` (exclusive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataImage {
    pub offset: u64,
    topics: BTreeMap<String, Arc<TopicImage>>,
    names_by_id: HashMap<Uuid, String>,
    /// The next producer id no broker has been given yet.
    pub next_producer_id: i64,
    /// The last block of producer ids each broker was given.
    producer_blocks: BTreeMap<i32, (i64, i64)>,
    pub cluster_id: Option<String>,
    brokers: BTreeMap<i32, BrokerImage>,
    /// Dynamic broker configs by resource: a broker id, or "" for the
    /// cluster-wide default.
    broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Finalized feature levels above 0 (KIP-584), by feature name.
    features: BTreeMap<String, i16>,
    /// Client quotas by entity (sorted by entity type), then key.
    client_quotas: BTreeMap<QuotaEntity, BTreeMap<String, QuotaValue>>,
    /// Every ACL, indexed for authorization (shared between images until
    /// an ACL changes).
    acls: Arc<crate::acl::Acls>,
    /// Configs of other resources (client-metrics subscriptions), by
    /// (Kafka's resource type, name), then key.
    resource_configs: BTreeMap<(i8, String), BTreeMap<String, String>>,
    /// Delegation tokens by token id.
    delegation_tokens: BTreeMap<String, Arc<DelegationTokenInfo>>,
    /// SCRAM credentials by user, then mechanism code.
    scram_credentials: BTreeMap<String, BTreeMap<i8, ScramCredentialData>>,
}

/// A client quota entity: `(entity type, name)` pairs sorted by type; a
/// `None` name is the type's default.
pub type QuotaEntity = Vec<(String, Option<String>)>;

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&Arc<TopicImage>> {
        self.names_by_id.get(id).and_then(|n| self.topics.get(n))
    }

    /// The dynamic configs of a broker resource (a broker id, or "" for
    /// the cluster-wide default); empty when none are set.
    pub fn broker_configs(&self, resource: &str) -> &BTreeMap<String, String> {
        static NONE: BTreeMap<String, String> = BTreeMap::new();
        self.broker_configs.get(resource).unwrap_or(&NONE)
    }

    /// Every resource of `resource_type` with configs, and its configs
    /// (e.g. the client-metrics subscriptions, type 16).
    pub fn resource_configs(&self, resource_type: i8) -> impl Iterator<Item = (&str, &BTreeMap<String, String>)> {
        self.resource_configs
            .range((resource_type, String::new())..)
            .take_while(move |((t, _), _)| *t == resource_type)
            .map(|((_, name), configs)| (name.as_str(), configs))
    }

    /// The configs of one resource; `None` when it has none.
    pub fn resource_config(&self, resource_type: i8, name: &str) -> Option<&BTreeMap<String, String>> {
        self.resource_configs.get(&(resource_type, name.to_string()))
    }

    /// The SCRAM credential of `user` for mechanism `mechanism` (Kafka's
    /// code: 1 = SHA-256, 2 = SHA-512).
    pub fn scram_credential(&self, user: &str, mechanism: i8) -> Option<&ScramCredentialData> {
        self.scram_credentials.get(user)?.get(&mechanism)
    }

    /// Every user with SCRAM credentials, and them by mechanism code.
    pub fn scram_users(&self) -> impl Iterator<Item = (&String, &BTreeMap<i8, ScramCredentialData>)> {
        self.scram_credentials.iter()
    }

    /// Every entity with client quotas, and its quotas.
    pub fn client_quotas(&self) -> impl Iterator<Item = (&QuotaEntity, &BTreeMap<String, QuotaValue>)> {
        self.client_quotas.iter()
    }

    /// Every delegation token, by token id.
    pub fn delegation_tokens(&self) -> impl Iterator<Item = &Arc<DelegationTokenInfo>> {
        self.delegation_tokens.values()
    }

    pub fn delegation_token(&self, token_id: &str) -> Option<&Arc<DelegationTokenInfo>> {
        self.delegation_tokens.get(token_id)
    }

    /// The quotas of exactly this entity (its pairs sorted by type).
    pub fn client_quota(&self, entity: &QuotaEntity) -> Option<&BTreeMap<String, QuotaValue>> {
        self.client_quotas.get(entity)
    }

    /// Every ACL (the authorizer's bindings).
    pub fn acls(&self) -> &crate::acl::Acls {
        &self.acls
    }

    /// A feature's finalized level (0 when it was never raised).
    pub fn feature_level(&self, name: &str) -> i16 {
        self.features.get(name).copied().unwrap_or(0)
    }

    /// The finalized features above level 0, by name.
    pub fn features(&self) -> impl Iterator<Item = (&str, i16)> {
        self.features.iter().map(|(name, level)| (name.as_str(), *level))
    }

    pub fn topics(&self) -> impl Iterator<Item = &Arc<TopicImage>> {
        self.topics.values()
    }

    pub fn topic_count(&self) -> usize {
        self.topics.len()
    }

    pub fn brokers(&self) -> impl Iterator<Item = &BrokerImage> {
        self.brokers.values()
    }

    pub fn broker(&self, id: i32) -> Option<&BrokerImage> {
        self.brokers.get(&id)
    }

    /// Registered, unfenced brokers in id order.
    pub fn live_brokers(&self) -> Vec<i32> {
        self.brokers.values().filter(|b| !b.fenced).map(|b| b.id).collect()
    }

    fn is_live(&self, id: i32) -> bool {
        self.brokers.get(&id).is_some_and(|b| !b.fenced)
    }

    /// The block of producer ids last given to `broker_id`.
    pub fn producer_block(&self, broker_id: i32) -> Option<(i64, i64)> {
        self.producer_blocks.get(&broker_id).copied()
    }

    /// Records that rebuild this image exactly when applied to an empty one
    /// (a snapshot's content, KIP-630): the cluster id, brokers (fenced ones
    /// fenced again), producer id state, then every topic with its
    /// partitions and configs.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut out = Vec::new();
        if let Some(cluster_id) = &self.cluster_id {
            out.push(MetadataRecord::ClusterId { cluster_id: cluster_id.clone() });
        }
        for (name, level) in &self.features {
            out.push(MetadataRecord::FeatureLevel { name: name.clone(), level: *level });
        }
        for (entity, quotas) in &self.client_quotas {
            for (key, value) in quotas {
                out.push(MetadataRecord::ClientQuota { entity: entity.clone(), key: key.clone(), value: Some(*value) });
            }
        }
        for acl in self.acls.iter() {
            out.push(MetadataRecord::Acl { id: acl.id, acl: acl.binding.clone() });
        }
        for ((resource_type, name), configs) in &self.resource_configs {
            for (key, value) in configs {
                out.push(MetadataRecord::ResourceConfig {
                    resource_type: *resource_type,
                    name: name.clone(),
                    key: key.clone(),
                    value: Some(value.clone()),
                });
            }
        }
        for token in self.delegation_tokens.values() {
            out.push(MetadataRecord::DelegationToken(token.as_ref().clone()));
        }
        for (name, credentials) in &self.scram_credentials {
            for (mechanism, credential) in credentials {
                out.push(MetadataRecord::UserScramCredential {
                    name: name.clone(),
                    mechanism: *mechanism,
                    credential: credential.clone(),
                });
            }
        }
        for b in self.brokers.values() {
            out.push(MetadataRecord::RegisterBroker {
                broker_id: b.id,
                incarnation: b.incarnation,
                host: b.host.clone(),
                port: b.port,
            });
            if !b.endpoints.is_empty() {
                out.push(MetadataRecord::BrokerEndpoints {
                    broker_id: b.id,
                    incarnation: b.incarnation,
                    endpoints: b.endpoints.clone(),
                });
            }
            if !b.offline_replicas.is_empty() {
                out.push(MetadataRecord::OfflineReplicas {
                    broker_id: b.id,
                    incarnation: b.incarnation,
                    replicas: b.offline_replicas.iter().copied().collect(),
                });
            }
            if b.fenced {
                out.push(MetadataRecord::FenceBroker {
                    broker_id: b.id,
                    incarnation: b.incarnation,
                    controlled: false,
                });
            }
        }
        out.push(MetadataRecord::ProducerIds { broker_id: -1, next_producer_id: self.next_producer_id });
        for (broker_id, (start, end)) in &self.producer_blocks {
            out.push(MetadataRecord::ProducerIdBlock { broker_id: *broker_id, start: *start, end: *end });
        }
        for (resource, configs) in &self.broker_configs {
            for (key, value) in configs {
                out.push(MetadataRecord::BrokerConfig {
                    resource: resource.clone(),
                    key: key.clone(),
                    value: Some(value.clone()),
                });
            }
        }
        for t in self.topics.values() {
            out.push(MetadataRecord::Topic { name: t.name.clone(), topic_id: t.topic_id });
            for p in &t.partitions {
                out.push(MetadataRecord::Partition {
                    topic_id: t.topic_id,
                    partition: p.partition,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                    target_replicas: p.target_replicas.clone(),
                });
            }
            for (key, value) in &t.configs {
                out.push(MetadataRecord::TopicConfig {
                    topic_id: t.topic_id,
                    key: key.clone(),
                    value: Some(value.clone()),
                });
            }
        }
        out
    }

    /// The image a snapshot's records rebuild, at `offset`.
    pub fn from_records(records: &[MetadataRecord], offset: u64) -> Self {
        let mut image = Self::default().apply(records);
        image.offset = offset;
        image
    }

    /// Applies `records` and returns the next image. Records that refer to
    /// unknown topics are ignored with a warning: the controller validates
    /// before appending, so this only happens on a damaged log.
    pub fn apply(&self, records: &[MetadataRecord]) -> MetadataImage {
        let mut next = self.clone();
        next.apply_mut(records);
        next
    }

    /// [`Self::apply`] in place: for a caller that owns the image (a replay
    /// at start, a batch of entries) and publishes it afterwards.
    pub fn apply_mut(&mut self, records: &[MetadataRecord]) {
        for record in records {
            self.apply_one(record);
        }
        self.offset += records.len() as u64;
    }

    fn topic_mut(&mut self, id: &Uuid) -> Option<&mut TopicImage> {
        let name = self.names_by_id.get(id)?;
        self.topics.get_mut(name).map(Arc::make_mut)
    }

    fn apply_one(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::Topic { name, topic_id } => {
                if self.topics.contains_key(name) {
                    // two nodes created the same topic at once: the first wins,
                    // the loser's partition records find no topic and are ignored
                    return;
                }
                self.names_by_id.insert(*topic_id, name.clone());
                self.topics.insert(
                    name.clone(),
                    Arc::new(TopicImage {
                        name: name.clone(),
                        topic_id: *topic_id,
                        partitions: Vec::new(),
                        configs: BTreeMap::new(),
                    }),
                );
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
                target_replicas,
            } => {
                let Some(topic) = self.topic_mut(topic_id) else {
                    tracing::warn!(%topic_id, partition, "partition record for unknown topic ignored");
                    return;
                };
                let image = PartitionImage {
                    partition: *partition,
                    replicas: replicas.clone(),
                    isr: isr.clone(),
                    leader: *leader,
                    leader_epoch: *leader_epoch,
                    partition_epoch: *partition_epoch,
                    target_replicas: target_replicas.clone(),
                };
                match topic.partitions.iter_mut().find(|p| p.partition == *partition) {
                    Some(existing) => *existing = image,
                    None => {
                        topic.partitions.push(image);
                        topic.partitions.sort_by_key(|p| p.partition);
                    }
                }
            }
            MetadataRecord::TopicConfig { topic_id, key, value } => {
                let Some(topic) = self.topic_mut(topic_id) else {
                    return;
                };
                match value {
                    Some(v) => topic.configs.insert(key.clone(), v.clone()),
                    None => topic.configs.remove(key),
                };
            }
            MetadataRecord::ResourceConfig { resource_type, name, key, value } => {
                let resource = (*resource_type, name.clone());
                match value {
                    Some(v) => {
                        self.resource_configs.entry(resource).or_default().insert(key.clone(), v.clone());
                    }
                    None => {
                        if let Some(configs) = self.resource_configs.get_mut(&resource) {
                            configs.remove(key);
                            if configs.is_empty() {
                                self.resource_configs.remove(&resource);
                            }
                        }
                    }
                }
            }
            MetadataRecord::BrokerConfig { resource, key, value } => match value {
                Some(v) => {
                    self.broker_configs.entry(resource.clone()).or_default().insert(key.clone(), v.clone());
                }
                None => {
                    if let Some(configs) = self.broker_configs.get_mut(resource) {
                        configs.remove(key);
                        if configs.is_empty() {
                            self.broker_configs.remove(resource);
                        }
                    }
                }
            },
            MetadataRecord::ProducerIds { next_producer_id, .. } => {
                self.next_producer_id = self.next_producer_id.max(*next_producer_id);
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(name) = self.names_by_id.remove(topic_id) {
                    self.topics.remove(&name);
                }
            }
            MetadataRecord::UserScramCredential { name, mechanism, credential } => {
                self.scram_credentials.entry(name.clone()).or_default().insert(*mechanism, credential.clone());
            }
            MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                if let Some(credentials) = self.scram_credentials.get_mut(name) {
                    credentials.remove(mechanism);
                    if credentials.is_empty() {
                        self.scram_credentials.remove(name);
                    }
                }
            }
            MetadataRecord::ClientQuota { entity, key, value } => {
                let mut entity = entity.clone();
                entity.sort();
                match value {
                    Some(v) => {
                        self.client_quotas.entry(entity).or_default().insert(key.clone(), *v);
                    }
                    None => {
                        if let Some(quotas) = self.client_quotas.get_mut(&entity) {
                            quotas.remove(key);
                            if quotas.is_empty() {
                                self.client_quotas.remove(&entity);
                            }
                        }
                    }
                }
            }
            MetadataRecord::Acl { id, acl } => Arc::make_mut(&mut self.acls).insert(*id, acl.clone()),
            MetadataRecord::RemoveAcl { id } => {
                if self.acls.by_id_contains(id) {
                    Arc::make_mut(&mut self.acls).remove(id);
                }
            }
            MetadataRecord::DelegationToken(token) => {
                self.delegation_tokens.insert(token.token_id.clone(), Arc::new(token.clone()));
            }
            MetadataRecord::RemoveDelegationToken { token_id } => {
                self.delegation_tokens.remove(token_id);
            }
            MetadataRecord::FeatureLevel { name, level } => {
                if *level > 0 {
                    self.features.insert(name.clone(), *level);
                } else {
                    self.features.remove(name);
                }
            }
            MetadataRecord::ClusterId { cluster_id } => {
                if self.cluster_id.is_none() {
                    self.cluster_id = Some(cluster_id.clone());
                }
            }
            MetadataRecord::AllocateProducerIds { broker_id, count } => {
                let start = self.next_producer_id;
                self.next_producer_id = start + (*count).max(1);
                self.producer_blocks.insert(*broker_id, (start, self.next_producer_id));
            }
            MetadataRecord::ProducerIdBlock { broker_id, start, end } => {
                self.producer_blocks.insert(*broker_id, (*start, *end));
            }
            MetadataRecord::RegisterBroker { broker_id, incarnation, host, port } => {
                if self.brokers.get(broker_id).is_some_and(|b| b.incarnation != *incarnation && !b.fenced) {
                    // the old process is gone: its leaderships get new epochs
                    self.fence(*broker_id);
                }
                self.brokers.insert(
                    *broker_id,
                    BrokerImage {
                        id: *broker_id,
                        incarnation: *incarnation,
                        host: host.clone(),
                        port: *port,
                        fenced: false,
                        offline_replicas: Default::default(),
                        endpoints: Vec::new(),
                    },
                );
                self.unfence(*broker_id);
            }
            MetadataRecord::FenceBroker { broker_id, incarnation, .. } => {
                if self.brokers.get(broker_id).is_some_and(|b| !b.fenced && b.incarnation == *incarnation) {
                    self.fence(*broker_id);
                }
            }
            MetadataRecord::BrokerEndpoints { broker_id, incarnation, endpoints } => {
                if let Some(b) = self.brokers.get_mut(broker_id).filter(|b| b.incarnation == *incarnation) {
                    b.endpoints = endpoints.clone();
                }
            }
            MetadataRecord::OfflineReplicas { broker_id, incarnation, replicas } => {
                let Some(b) = self.brokers.get_mut(broker_id).filter(|b| b.incarnation == *incarnation) else {
                    return;
                };
                let new: Vec<(Uuid, i32)> =
                    replicas.iter().copied().filter(|r| b.offline_replicas.insert(*r)).collect();
                for (topic_id, partition) in new {
                    self.change_partition(&topic_id, partition, |p, live| {
                        let before = (p.leader, p.isr.clone());
                        if p.isr.len() > 1 {
                            p.isr.retain(|r| r != broker_id);
                        }
                        if p.leader == *broker_id || p.leader == -1 {
                            elect(p, live);
                        }
                        before != (p.leader, p.isr.clone())
                    });
                }
            }
            MetadataRecord::UnregisterBroker { broker_id } => {
                if self.brokers.contains_key(broker_id) {
                    self.fence(*broker_id);
                    self.brokers.remove(broker_id);
                }
            }
            MetadataRecord::UnfenceBroker { broker_id, incarnation } => {
                if self.brokers.get(broker_id).is_some_and(|b| b.fenced && b.incarnation == *incarnation) {
                    self.unfence(*broker_id);
                }
            }
            MetadataRecord::AlterIsr { topic_id, partition, leader_epoch, partition_epoch, isr } => {
                let live: Vec<i32> = isr.iter().copied().filter(|r| self.is_live(*r)).collect();
                self.change_partition(topic_id, *partition, |p, _| {
                    if p.leader_epoch != *leader_epoch || p.partition_epoch != *partition_epoch {
                        return false; // stale: made for an older state
                    }
                    let mut new_isr: Vec<i32> = live.iter().copied().filter(|r| p.replicas.contains(r)).collect();
                    new_isr.dedup();
                    if new_isr.is_empty() || !new_isr.contains(&p.leader) || new_isr == p.isr {
                        return false;
                    }
                    p.isr = new_isr;
                    true
                });
            }
            MetadataRecord::ElectPreferred { topic_id, partition } => {
                self.change_partition(topic_id, *partition, |p, live| {
                    let Some(&preferred) = p.replicas.first() else { return false };
                    if p.leader == preferred || !p.isr.contains(&preferred) || !live(preferred) {
                        return false;
                    }
                    p.leader = preferred;
                    p.leader_epoch += 1;
                    true
                });
            }
            MetadataRecord::Reassign { topic_id, partition, replicas } => {
                let replicas = replicas.clone();
                self.change_partition(topic_id, *partition, |p, _| {
                    if replicas.is_empty() {
                        return false;
                    }
                    let mut all = replicas.clone();
                    for r in &p.replicas {
                        if !all.contains(r) {
                            all.push(*r);
                        }
                    }
                    p.replicas = all;
                    p.target_replicas = Some(replicas.clone());
                    true
                });
            }
        }
    }

    /// Applies `change` to one partition; when it changes something, the
    /// partition epoch advances and a finished reassignment completes.
    fn change_partition(
        &mut self,
        topic_id: &Uuid,
        partition: i32,
        change: impl FnOnce(&mut PartitionImage, &dyn Fn(i32) -> bool) -> bool,
    ) {
        // live, and this replica not in a failed log directory
        let live: std::collections::HashSet<i32> = self
            .brokers
            .values()
            .filter(|b| !b.fenced && !b.offline_replicas.contains(&(*topic_id, partition)))
            .map(|b| b.id)
            .collect();
        let is_live = |id: i32| live.contains(&id);
        let Some(topic) = self.topic_mut(topic_id) else { return };
        let Some(p) = topic.partitions.iter_mut().find(|p| p.partition == partition) else { return };
        if change(p, &is_live) {
            finish_reassignment(p, &is_live);
            p.partition_epoch += 1;
        }
    }

    /// Every partition touching `broker_id`, for fencing and unfencing.
    fn partitions_of(&self, broker_id: i32) -> Vec<(Uuid, i32)> {
        self.topics
            .values()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .filter(|p| p.replicas.contains(&broker_id) || p.isr.contains(&broker_id))
                    .map(|p| (t.topic_id, p.partition))
            })
            .collect()
    }

    /// Fences a broker: out of every ISR (an ISR never becomes empty: a
    /// last member stays, as in Kafka), and its leaderships move to the
    /// first live replica in the ISR, or to no one (leader -1).
    fn fence(&mut self, broker_id: i32) {
        if let Some(b) = self.brokers.get_mut(&broker_id) {
            b.fenced = true;
        }
        for (topic_id, partition) in self.partitions_of(broker_id) {
            self.change_partition(&topic_id, partition, |p, live| {
                let before = (p.leader, p.isr.clone());
                if p.isr.len() > 1 {
                    p.isr.retain(|r| *r != broker_id);
                }
                if p.leader == broker_id || p.leader == -1 {
                    elect(p, live);
                }
                before != (p.leader, p.isr.clone())
            });
        }
    }

    /// Unfences a broker: partitions without a leader whose ISR holds it
    /// get it as leader.
    fn unfence(&mut self, broker_id: i32) {
        if let Some(b) = self.brokers.get_mut(&broker_id) {
            b.fenced = false;
        }
        for (topic_id, partition) in self.partitions_of(broker_id) {
            self.change_partition(&topic_id, partition, |p, live| p.leader == -1 && elect(p, live));
        }
    }
}

/// Picks the first live ISR member in replica order as leader (a new
/// leader epoch), or -1 when there is none (unclean election is off).
/// Returns whether the leader changed.
fn elect(p: &mut PartitionImage, live: &dyn Fn(i32) -> bool) -> bool {
    let leader = p.replicas.iter().copied().find(|r| p.isr.contains(r) && live(*r)).unwrap_or(-1);
    if leader == p.leader {
        return false;
    }
    p.leader = leader;
    p.leader_epoch += 1;
    true
}

/// Completes a reassignment once every target replica is in the ISR.
fn finish_reassignment(p: &mut PartitionImage, live: &dyn Fn(i32) -> bool) {
    let Some(target) = p.target_replicas.clone() else { return };
    if !target.iter().all(|r| p.isr.contains(r)) {
        return;
    }
    p.replicas = target.clone();
    p.isr.retain(|r| target.contains(r));
    p.target_replicas = None;
    if !p.isr.contains(&p.leader) {
        elect(p, live);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_configs_are_set_removed_and_kept_in_snapshots() {
        let set = |resource: &str, key: &str, value: Option<&str>| MetadataRecord::BrokerConfig {
            resource: resource.into(),
            key: key.into(),
            value: value.map(Into::into),
        };
        let img = MetadataImage::default().apply(&[
            set("", "log.retention.ms", Some("1000")),
            set("1", "message.max.bytes", Some("2000")),
            set("1", "log.retention.ms", Some("5")),
            set("", "log.retention.ms", Some("2000")),
            set("1", "log.retention.ms", None),
            set("2", "nothing.set", None),
        ]);
        assert_eq!(img.broker_configs("").get("log.retention.ms").map(String::as_str), Some("2000"));
        assert_eq!(img.broker_configs("1").len(), 1);
        assert!(img.broker_configs("2").is_empty() && img.broker_configs("7").is_empty());
        let rebuilt = MetadataImage::from_records(&img.to_records(), img.offset);
        assert_eq!(rebuilt, img);
    }

    #[test]
    fn scram_credentials_are_set_removed_and_kept_in_snapshots() {
        let credential = |i: i32| crate::ScramCredentialData {
            salt: vec![1; 32],
            stored_key: vec![2; 32],
            server_key: vec![3; 32],
            iterations: i,
        };
        let img = MetadataImage::default().apply(&[
            MetadataRecord::UserScramCredential { name: "alice".into(), mechanism: 1, credential: credential(4096) },
            MetadataRecord::UserScramCredential { name: "alice".into(), mechanism: 2, credential: credential(8192) },
            MetadataRecord::UserScramCredential { name: "bob".into(), mechanism: 2, credential: credential(4096) },
            MetadataRecord::UserScramCredential { name: "alice".into(), mechanism: 1, credential: credential(5000) },
            MetadataRecord::RemoveUserScramCredential { name: "bob".into(), mechanism: 2 },
            MetadataRecord::RemoveUserScramCredential { name: "carol".into(), mechanism: 2 },
        ]);
        assert_eq!(img.scram_credential("alice", 1).unwrap().iterations, 5000);
        assert_eq!(img.scram_credential("alice", 2).unwrap().iterations, 8192);
        assert!(img.scram_credential("bob", 2).is_none());
        assert_eq!(img.scram_users().count(), 1, "a user without credentials is gone");
        let rebuilt = MetadataImage::default().apply(&img.to_records());
        assert_eq!(rebuilt.scram_credential("alice", 1), img.scram_credential("alice", 1));
        assert_eq!(rebuilt.scram_users().count(), 1);
    }

    #[test]
    fn client_quotas_are_set_removed_and_kept_in_snapshots() {
        let quota = |entity: &[(&str, Option<&str>)], key: &str, value: Option<f64>| MetadataRecord::ClientQuota {
            entity: entity.iter().map(|(t, n)| (t.to_string(), n.map(str::to_string))).collect(),
            key: key.into(),
            value: value.map(QuotaValue::new),
        };
        let img = MetadataImage::default().apply(&[
            quota(&[("user", Some("u")), ("client-id", Some("c"))], "producer_byte_rate", Some(1024.0)),
            quota(&[("client-id", Some("c")), ("user", Some("u"))], "consumer_byte_rate", Some(2048.0)),
            quota(&[("client-id", None)], "producer_byte_rate", Some(10.0)),
            quota(&[("client-id", None)], "producer_byte_rate", None),
        ]);
        let both: QuotaEntity = vec![("client-id".into(), Some("c".into())), ("user".into(), Some("u".into()))];
        let q = img.client_quota(&both).expect("one entity whatever the order of its pairs");
        assert_eq!(q.get("producer_byte_rate").map(|v| v.get()), Some(1024.0));
        assert_eq!(q.get("consumer_byte_rate").map(|v| v.get()), Some(2048.0));
        assert_eq!(img.client_quotas().count(), 1, "a removed last key removes the entity");
        let rebuilt = MetadataImage::from_records(&img.to_records(), img.offset);
        assert_eq!(rebuilt, img);
    }

    #[test]
    fn acls_are_added_removed_and_kept_in_snapshots() {
        use crate::acl::{AclBinding, AclOperation, AclPermission, PatternType, ResourceType};
        let acl = |name: &str| AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        };
        let img = MetadataImage::default().apply(&[
            MetadataRecord::Acl { id: Uuid::from_u128(1), acl: acl("a") },
            MetadataRecord::Acl { id: Uuid::from_u128(2), acl: acl("b") },
            MetadataRecord::RemoveAcl { id: Uuid::from_u128(1) },
            MetadataRecord::RemoveAcl { id: Uuid::from_u128(9) },
        ]);
        assert_eq!(img.acls().len(), 1);
        assert_eq!(img.acls().find(&acl("b")), Some(Uuid::from_u128(2)));
        let rebuilt = MetadataImage::from_records(&img.to_records(), img.offset);
        assert_eq!(rebuilt, img);
        assert_eq!(rebuilt.acls().find(&acl("b")), Some(Uuid::from_u128(2)));
    }

    #[test]
    fn resource_configs_are_set_removed_and_kept_in_snapshots() {
        let set = |kind: i8, name: &str, key: &str, value: Option<&str>| MetadataRecord::ResourceConfig {
            resource_type: kind,
            name: name.into(),
            key: key.into(),
            value: value.map(Into::into),
        };
        let img = MetadataImage::default().apply(&[
            set(16, "all", "metrics", Some("*")),
            set(16, "all", "interval.ms", Some("1000")),
            set(16, "gone", "metrics", Some("org.apache.kafka.")),
            set(16, "gone", "metrics", None),
            set(32, "g", "consumer.session.timeout.ms", Some("45000")),
        ]);
        let subs: Vec<_> = img.resource_configs(16).map(|(name, c)| (name, c.len())).collect();
        assert_eq!(subs, vec![("all", 2)], "a resource whose last key is removed is gone");
        assert_eq!(img.resource_config(32, "g").map(|c| c.len()), Some(1));
        assert!(img.resource_config(16, "gone").is_none());
        let rebuilt = MetadataImage::from_records(&img.to_records(), img.offset);
        assert_eq!(rebuilt, img);
    }

    #[test]
    fn delegation_tokens_are_created_renewed_removed_and_kept_in_snapshots() {
        let token = |id: &str, expiry: i64| {
            MetadataRecord::DelegationToken(DelegationTokenInfo {
                token_id: id.into(),
                owner: "User:alice".into(),
                requester: "User:alice".into(),
                renewers: vec!["User:bob".into()],
                issue_timestamp_ms: 1000,
                max_timestamp_ms: 9000,
                expiry_timestamp_ms: expiry,
            })
        };
        let img = MetadataImage::default().apply(&[
            token("a", 2000),
            token("b", 3000),
            token("a", 5000),
            token("c", 4000),
            MetadataRecord::RemoveDelegationToken { token_id: "c".into() },
            MetadataRecord::RemoveDelegationToken { token_id: "unknown".into() },
        ]);
        assert_eq!(img.delegation_token("a").map(|t| t.expiry_timestamp_ms), Some(5000), "a renewal replaces");
        assert!(img.delegation_token("c").is_none());
        assert_eq!(img.delegation_tokens().count(), 2);
        let rebuilt = MetadataImage::from_records(&img.to_records(), img.offset);
        assert_eq!(rebuilt, img);
    }

    #[test]
    fn feature_levels_are_finalized_lowered_and_kept_in_snapshots() {
        let level = |name: &str, level: i16| MetadataRecord::FeatureLevel { name: name.into(), level };
        let img = MetadataImage::default().apply(&[
            level("transaction.version", 2),
            level("group.version", 1),
            level("group.version", 0),
        ]);
        assert_eq!(img.feature_level("transaction.version"), 2);
        assert_eq!(img.feature_level("group.version"), 0, "level 0 is not finalized");
        assert_eq!(img.features().collect::<Vec<_>>(), vec![("transaction.version", 2)]);
        let rebuilt = MetadataImage::from_records(&img.to_records(), img.offset);
        assert_eq!(rebuilt, img);
    }

    #[test]
    fn broker_endpoints_by_listener_name_follow_the_incarnation() {
        let register = |incarnation| MetadataRecord::RegisterBroker {
            broker_id: 1,
            incarnation,
            host: "internal-1".into(),
            port: 9093,
        };
        let endpoint = |listener: &str, host: &str, port| crate::BrokerEndpoint {
            listener: listener.into(),
            host: host.into(),
            port,
        };
        let img = MetadataImage::default().apply(&[register(1)]);
        assert_eq!(img.broker(1).unwrap().endpoint("ANY"), Some(("internal-1", 9093)), "no endpoints: one for all");
        let endpoints = vec![endpoint("INTERNAL", "internal-1", 9093), endpoint("EXTERNAL", "kafka.example", 443)];
        let img = img.apply(&[
            MetadataRecord::BrokerEndpoints { broker_id: 1, incarnation: 1, endpoints: endpoints.clone() },
            // a late record of another incarnation changes nothing
            MetadataRecord::BrokerEndpoints { broker_id: 1, incarnation: 0, endpoints: vec![] },
        ]);
        let b = img.broker(1).unwrap();
        assert_eq!(b.endpoint("EXTERNAL"), Some(("kafka.example", 443)));
        assert_eq!(b.endpoint("INTERNAL"), Some(("internal-1", 9093)));
        assert_eq!(b.endpoint("OTHER"), None);
        assert_eq!(MetadataImage::from_records(&img.to_records(), img.offset), img);
        // a new incarnation registers anew: its endpoints come with it
        let img = img.apply(&[register(2)]);
        assert!(img.broker(1).unwrap().endpoints.is_empty());
    }

    #[test]
    fn apply_create_config_remove() {
        let id = Uuid::new_v4();
        let img = MetadataImage::default().apply(&[
            MetadataRecord::Topic { name: "t".into(), topic_id: id },
            MetadataRecord::Partition {
                topic_id: id,
                partition: 1,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
                target_replicas: None,
            },
            MetadataRecord::Partition {
                topic_id: id,
                partition: 0,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
                target_replicas: None,
            },
            MetadataRecord::TopicConfig { topic_id: id, key: "retention.ms".into(), value: Some("1000".into()) },
        ]);
        let t = img.topic("t").unwrap();
        assert_eq!(t.partitions.iter().map(|p| p.partition).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(t.configs.get("retention.ms").map(String::as_str), Some("1000"));
        assert_eq!(img.topic_by_id(&id).unwrap().name, "t");
        // the same name created again (a race between nodes) does not replace it
        let twin = img.apply(&[
            MetadataRecord::Topic { name: "t".into(), topic_id: Uuid::new_v4() },
            MetadataRecord::TopicConfig { topic_id: id, key: "retention.ms".into(), value: Some("5".into()) },
        ]);
        assert_eq!(twin.topic("t").unwrap().topic_id, id);
        assert_eq!(twin.topic("t").unwrap().partitions.len(), 2);
        let img2 = img.apply(&[MetadataRecord::RemoveTopic { topic_id: id }]);
        assert!(img2.topic("t").is_none());
        assert!(img.topic("t").is_some(), "old images are immutable");
    }

    fn cluster(replicas: Vec<i32>) -> (MetadataImage, Uuid) {
        let id = Uuid::new_v4();
        let mut records: Vec<MetadataRecord> = (1..=3)
            .map(|b| MetadataRecord::RegisterBroker { broker_id: b, incarnation: 1, host: "h".into(), port: 9000 })
            .collect();
        records.push(MetadataRecord::Topic { name: "t".into(), topic_id: id });
        records.push(MetadataRecord::Partition {
            topic_id: id,
            partition: 0,
            isr: replicas.clone(),
            leader: replicas[0],
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
            target_replicas: None,
        });
        (MetadataImage::default().apply(&records), id)
    }

    fn p0(img: &MetadataImage) -> PartitionImage {
        img.topic("t").unwrap().partitions[0].clone()
    }

    #[test]
    fn fencing_moves_leadership_within_the_isr() {
        let (img, _) = cluster(vec![1, 2, 3]);
        let img = img.apply(&[MetadataRecord::FenceBroker { broker_id: 1, incarnation: 1, controlled: false }]);
        let p = p0(&img);
        assert_eq!((p.leader, p.leader_epoch, p.isr.clone()), (2, 1, vec![2, 3]));
        assert_eq!(img.live_brokers(), vec![2, 3]);
        // the last ISR member stays in the ISR; with it fenced there is no leader
        let img = img.apply(&[
            MetadataRecord::FenceBroker { broker_id: 2, incarnation: 1, controlled: false },
            MetadataRecord::FenceBroker { broker_id: 3, incarnation: 1, controlled: false },
        ]);
        let p = p0(&img);
        assert_eq!((p.leader, p.isr.clone()), (-1, vec![3]));
        // unclean election is off: broker 1 returning does not lead
        let img = img.apply(&[MetadataRecord::UnfenceBroker { broker_id: 1, incarnation: 1 }]);
        assert_eq!(p0(&img).leader, -1);
        let img = img.apply(&[MetadataRecord::UnfenceBroker { broker_id: 3, incarnation: 1 }]);
        let p = p0(&img);
        assert_eq!((p.leader, p.leader_epoch), (3, 4));
    }

    #[test]
    fn offline_replicas_lose_isr_and_leadership_until_the_broker_registers_again() {
        let (img, id) = cluster(vec![1, 2, 3]);
        let offline =
            |incarnation| MetadataRecord::OfflineReplicas { broker_id: 1, incarnation, replicas: vec![(id, 0)] };
        // another incarnation's report changes nothing
        assert_eq!(img.apply(&[offline(7)]), MetadataImage { offset: img.offset + 1, ..img.clone() });
        let img = img.apply(&[offline(1)]);
        let p = p0(&img);
        assert_eq!((p.leader, p.isr.clone(), p.leader_epoch), (2, vec![2, 3], 1));
        assert_eq!(img.live_brokers(), vec![1, 2, 3], "the broker itself stays");
        let rebuilt = MetadataImage::from_records(&img.to_records(), img.offset);
        assert_eq!(rebuilt.broker(1).unwrap().offline_replicas.len(), 1, "kept in snapshots");
        // a new incarnation (the restart recovered the directory) starts clean
        let img =
            img.apply(&[MetadataRecord::RegisterBroker { broker_id: 1, incarnation: 2, host: "h".into(), port: 1 }]);
        assert!(img.broker(1).unwrap().offline_replicas.is_empty());

        // one replica (a single node): it keeps its ISR place but leads no more,
        // even when its broker is fenced and unfenced
        let (img, id) = cluster(vec![1]);
        let img =
            img.apply(&[MetadataRecord::OfflineReplicas { broker_id: 1, incarnation: 1, replicas: vec![(id, 0)] }]);
        assert_eq!((p0(&img).leader, p0(&img).isr.clone()), (-1, vec![1]));
        let img = img.apply(&[
            MetadataRecord::FenceBroker { broker_id: 1, incarnation: 1, controlled: false },
            MetadataRecord::UnfenceBroker { broker_id: 1, incarnation: 1 },
        ]);
        assert_eq!(p0(&img).leader, -1);
    }

    #[test]
    fn unregistering_fences_then_forgets_the_broker() {
        let (img, _) = cluster(vec![1, 2, 3]);
        let img = img.apply(&[MetadataRecord::UnregisterBroker { broker_id: 1 }]);
        let p = p0(&img);
        assert_eq!((p.leader, p.isr.clone()), (2, vec![2, 3]));
        assert!(img.broker(1).is_none() && img.live_brokers() == vec![2, 3]);
        assert_eq!(p.replicas, vec![1, 2, 3], "the replica assignment stays");
        let again = img.apply(&[MetadataRecord::UnregisterBroker { broker_id: 1 }]);
        assert_eq!(again.broker(1), None, "unknown: nothing changes");
        // the process, still running, registers again
        let img =
            img.apply(&[MetadataRecord::RegisterBroker { broker_id: 1, incarnation: 2, host: "h".into(), port: 1 }]);
        assert_eq!(img.live_brokers(), vec![1, 2, 3]);
    }

    #[test]
    fn re_registration_fences_the_old_incarnation() {
        let (img, _) = cluster(vec![1, 2, 3]);
        let img =
            img.apply(&[MetadataRecord::RegisterBroker { broker_id: 1, incarnation: 2, host: "h".into(), port: 9000 }]);
        let p = p0(&img);
        assert_eq!((p.leader, p.isr.clone()), (2, vec![2, 3]), "the restarted broker must catch up first");
        assert!(!img.broker(1).unwrap().fenced);
        // a late fence of the old process leaves the new one alone
        let img = img.apply(&[MetadataRecord::FenceBroker { broker_id: 1, incarnation: 1, controlled: true }]);
        assert!(!img.broker(1).unwrap().fenced);
    }

    #[test]
    fn alter_isr_applies_only_at_its_epochs() {
        let (img, id) = cluster(vec![1, 2, 3]);
        let shrink = MetadataRecord::AlterIsr {
            topic_id: id,
            partition: 0,
            leader_epoch: 0,
            partition_epoch: 0,
            isr: vec![1, 2],
        };
        let img = img.apply(std::slice::from_ref(&shrink));
        assert_eq!((p0(&img).isr, p0(&img).partition_epoch), (vec![1, 2], 1));
        let again = img.apply(&[shrink]);
        assert_eq!(p0(&again).partition_epoch, 1, "a stale change is ignored");
        // the leader cannot leave the ISR through AlterIsr
        let img = img.apply(&[MetadataRecord::AlterIsr {
            topic_id: id,
            partition: 0,
            leader_epoch: 0,
            partition_epoch: 1,
            isr: vec![2],
        }]);
        assert_eq!(p0(&img).isr, vec![1, 2]);
    }

    #[test]
    fn reassignment_completes_when_targets_join_the_isr() {
        let (img, id) = cluster(vec![1, 2]);
        let img = img.apply(&[MetadataRecord::Reassign { topic_id: id, partition: 0, replicas: vec![3, 2] }]);
        let p = p0(&img);
        assert_eq!((p.replicas.clone(), p.adding(), p.removing()), (vec![3, 2, 1], vec![3], vec![1]));
        let img = img.apply(&[MetadataRecord::AlterIsr {
            topic_id: id,
            partition: 0,
            leader_epoch: 0,
            partition_epoch: p.partition_epoch,
            isr: vec![1, 2, 3],
        }]);
        let p = p0(&img);
        assert_eq!(
            (p.replicas.clone(), p.isr.clone(), p.leader, p.target_replicas.clone()),
            (vec![3, 2], vec![2, 3], 3, None)
        );
        let img = img.apply(&[MetadataRecord::ElectPreferred { topic_id: id, partition: 0 }]);
        assert_eq!(p0(&img).leader, 3);
    }
}
