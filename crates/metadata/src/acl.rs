//! Access control lists as the metadata log keeps them (Kafka's
//! AccessControlEntryRecord): each binding has an id and says that a
//! principal from a host may (ALLOW) or may not (DENY) perform an
//! operation on the resources a pattern names (a LITERAL name, `*` for
//! every resource of the type, or a PREFIXED name).
//!
//! [`Acls`] holds every binding of an image, indexed by resource type and
//! name so that an authorization check looks up only the bindings that can
//! match, without allocating. The decision rules themselves (super users,
//! DENY over ALLOW, implied operations) are the broker's authorizer's.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The literal resource name (and host) that matches every one.
pub const WILDCARD: &str = "*";
/// The principal every principal matches.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

macro_rules! kafka_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:literal => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[repr(i8)]
        pub enum $name { $($variant = $code),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            /// Kafka's code for it on the wire.
            pub fn code(self) -> i8 {
                self as i8
            }
            pub fn from_code(code: i8) -> Option<Self> {
                match code {
                    $($code => Some($name::$variant),)*
                    _ => None,
                }
            }
            /// Kafka's name for it (`TOPIC`, `PREFIXED`, `READ`, ...).
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
            /// Parses Kafka's name, in any case (`read`, `Prefixed`, ...).
            pub fn parse(text: &str) -> Option<Self> {
                let t = text.replace('-', "_");
                Self::ALL.iter().copied().find(|v| v.name().eq_ignore_ascii_case(&t))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

kafka_enum!(
    /// Kafka's `ResourceType` (ANY only in filters).
    ResourceType {
        Any = 1 => "ANY",
        Topic = 2 => "TOPIC",
        Group = 3 => "GROUP",
        Cluster = 4 => "CLUSTER",
        TransactionalId = 5 => "TRANSACTIONAL_ID",
        DelegationToken = 6 => "DELEGATION_TOKEN",
        User = 7 => "USER",
    }
);

kafka_enum!(
    /// Kafka's `PatternType` (ANY and MATCH only in filters).
    PatternType {
        Any = 1 => "ANY",
        Match = 2 => "MATCH",
        Literal = 3 => "LITERAL",
        Prefixed = 4 => "PREFIXED",
    }
);

kafka_enum!(
    /// Kafka's `AclOperation` (ANY only in filters).
    AclOperation {
        Any = 1 => "ANY",
        All = 2 => "ALL",
        Read = 3 => "READ",
        Write = 4 => "WRITE",
        Create = 5 => "CREATE",
        Delete = 6 => "DELETE",
        Alter = 7 => "ALTER",
        Describe = 8 => "DESCRIBE",
        ClusterAction = 9 => "CLUSTER_ACTION",
        DescribeConfigs = 10 => "DESCRIBE_CONFIGS",
        AlterConfigs = 11 => "ALTER_CONFIGS",
        IdempotentWrite = 12 => "IDEMPOTENT_WRITE",
        CreateTokens = 13 => "CREATE_TOKENS",
        DescribeTokens = 14 => "DESCRIBE_TOKENS",
        TwoPhaseCommit = 15 => "TWO_PHASE_COMMIT",
    }
);

kafka_enum!(
    /// Kafka's `AclPermissionType` (ANY only in filters).
    AclPermission {
        Any = 1 => "ANY",
        Deny = 2 => "DENY",
        Allow = 3 => "ALLOW",
    }
);

/// One ACL: who (`principal` as `Type:name`, `host` or `*`) may or may not
/// do `operation` on the resources `resource_type` / `resource_name` /
/// `pattern_type` names. Stored bindings never hold the filter-only ANY /
/// MATCH values.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

/// A binding with its id, as the index holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAcl {
    pub id: Uuid,
    pub binding: AclBinding,
}

/// The bindings of one resource type.
#[derive(Debug, Clone, Default)]
struct TypeIndex {
    /// LITERAL bindings by name (`*` included).
    literal: HashMap<String, Vec<Arc<StoredAcl>>>,
    /// PREFIXED bindings by prefix.
    prefixed: HashMap<String, Vec<Arc<StoredAcl>>>,
    /// The longest prefix, to bound the prefix lookups.
    prefix_bytes_max: usize,
}

/// Every ACL of an image: by id (ordered, for listing and snapshots) and
/// indexed for checks.
#[derive(Debug, Clone, Default)]
pub struct Acls {
    by_id: BTreeMap<Uuid, Arc<StoredAcl>>,
    by_type: HashMap<ResourceType, TypeIndex>,
}

impl PartialEq for Acls {
    fn eq(&self, other: &Self) -> bool {
        self.by_id == other.by_id
    }
}
impl Eq for Acls {}

impl Acls {
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn by_id_contains(&self, id: &Uuid) -> bool {
        self.by_id.contains_key(id)
    }

    /// Every binding, by id.
    pub fn iter(&self) -> impl Iterator<Item = &StoredAcl> {
        self.by_id.values().map(|a| a.as_ref())
    }

    /// Whether a binding equal to this one exists (its id).
    pub fn find(&self, binding: &AclBinding) -> Option<Uuid> {
        let index = self.by_type.get(&binding.resource_type)?;
        let map = match binding.pattern_type {
            PatternType::Prefixed => &index.prefixed,
            _ => &index.literal,
        };
        map.get(&binding.resource_name)?.iter().find(|a| a.binding == *binding).map(|a| a.id)
    }

    /// Adds a binding (an id already present is replaced).
    pub fn insert(&mut self, id: Uuid, binding: AclBinding) {
        self.remove(&id);
        let acl = Arc::new(StoredAcl { id, binding });
        let b = &acl.binding;
        let index = self.by_type.entry(b.resource_type).or_default();
        match b.pattern_type {
            PatternType::Prefixed => {
                index.prefix_bytes_max = index.prefix_bytes_max.max(b.resource_name.len());
                index.prefixed.entry(b.resource_name.clone()).or_default().push(acl.clone());
            }
            _ => index.literal.entry(b.resource_name.clone()).or_default().push(acl.clone()),
        }
        self.by_id.insert(id, acl);
    }

    /// Removes the binding with this id, if any.
    pub fn remove(&mut self, id: &Uuid) -> Option<AclBinding> {
        let acl = self.by_id.remove(id)?;
        let b = &acl.binding;
        if let Some(index) = self.by_type.get_mut(&b.resource_type) {
            let map = match b.pattern_type {
                PatternType::Prefixed => &mut index.prefixed,
                _ => &mut index.literal,
            };
            if let Some(list) = map.get_mut(&b.resource_name) {
                list.retain(|a| a.id != *id);
                if list.is_empty() {
                    map.remove(&b.resource_name);
                }
            }
            if index.literal.is_empty() && index.prefixed.is_empty() {
                self.by_type.remove(&b.resource_type);
            }
        }
        Some(acl.binding.clone())
    }

    /// Calls `visit` with every binding whose pattern covers the resource
    /// `name` of `resource_type`: LITERAL bindings of that name and of `*`,
    /// and PREFIXED bindings whose prefix starts `name`. `visit` returns
    /// false to stop early. Allocates nothing.
    pub fn for_each_matching(
        &self,
        resource_type: ResourceType,
        name: &str,
        mut visit: impl FnMut(&AclBinding) -> bool,
    ) {
        let Some(index) = self.by_type.get(&resource_type) else { return };
        let lists = index.literal.get(name).into_iter().chain(if name == WILDCARD {
            None
        } else {
            index.literal.get(WILDCARD)
        });
        for list in lists {
            for acl in list {
                if !visit(&acl.binding) {
                    return;
                }
            }
        }
        if index.prefixed.is_empty() {
            return;
        }
        let longest = index.prefix_bytes_max.min(name.len());
        for end in 1..=longest {
            if !name.is_char_boundary(end) {
                continue;
            }
            if let Some(list) = index.prefixed.get(&name[..end]) {
                for acl in list {
                    if !visit(&acl.binding) {
                        return;
                    }
                }
            }
        }
    }

    /// Every binding of a resource type (authorization by resource type:
    /// "may WRITE some topic").
    pub fn of_type(&self, resource_type: ResourceType) -> impl Iterator<Item = &AclBinding> {
        self.by_type
            .get(&resource_type)
            .into_iter()
            .flat_map(|i| i.literal.values().chain(i.prefixed.values()))
            .flatten()
            .map(|a| &a.binding)
    }
}

/// What DescribeAcls and DeleteAcls select (Kafka's `AclBindingFilter`):
/// `None` fields match anything; a filter's ANY values match anything,
/// MATCH selects every pattern that covers the named resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

impl AclFilter {
    pub fn matches(&self, b: &AclBinding) -> bool {
        let type_ok = self.resource_type == ResourceType::Any || self.resource_type == b.resource_type;
        let pattern_ok = match (self.pattern_type, &self.resource_name) {
            (PatternType::Any, None) => true,
            (PatternType::Any, Some(name)) => *name == b.resource_name,
            (PatternType::Match, None) => true,
            (PatternType::Match, Some(name)) => match b.pattern_type {
                PatternType::Literal => b.resource_name == *name || b.resource_name == WILDCARD,
                PatternType::Prefixed => name.starts_with(&b.resource_name),
                _ => false,
            },
            (wanted, name) => wanted == b.pattern_type && name.as_ref().is_none_or(|n| *n == b.resource_name),
        };
        type_ok
            && pattern_ok
            && self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && (self.operation == AclOperation::Any || self.operation == b.operation)
            && (self.permission == AclPermission::Any || self.permission == b.permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn binding(rt: ResourceType, name: &str, pt: PatternType, op: AclOperation) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: op,
            permission: AclPermission::Allow,
        }
    }

    fn matching(acls: &Acls, rt: ResourceType, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        acls.for_each_matching(rt, name, |b| {
            out.push(format!("{}:{}", b.pattern_type, b.resource_name));
            true
        });
        out.sort();
        out
    }

    #[test]
    fn lookups_find_literal_wildcard_and_prefixed_patterns() {
        let mut acls = Acls::default();
        let t = ResourceType::Topic;
        acls.insert(Uuid::from_u128(1), binding(t, "orders", PatternType::Literal, AclOperation::Read));
        acls.insert(Uuid::from_u128(2), binding(t, "*", PatternType::Literal, AclOperation::Read));
        acls.insert(Uuid::from_u128(3), binding(t, "ord", PatternType::Prefixed, AclOperation::Read));
        acls.insert(Uuid::from_u128(4), binding(t, "orders-eu", PatternType::Prefixed, AclOperation::Read));
        acls.insert(
            Uuid::from_u128(5),
            binding(ResourceType::Group, "orders", PatternType::Literal, AclOperation::Read),
        );
        assert_eq!(matching(&acls, t, "orders"), ["LITERAL:*", "LITERAL:orders", "PREFIXED:ord"]);
        assert_eq!(matching(&acls, t, "orders-eu-1"), ["LITERAL:*", "PREFIXED:ord", "PREFIXED:orders-eu"]);
        assert_eq!(matching(&acls, t, "or"), ["LITERAL:*"]);
        assert_eq!(matching(&acls, t, "ordé"), ["LITERAL:*", "PREFIXED:ord"]);
        assert!(matching(&acls, ResourceType::Cluster, "kafka-cluster").is_empty());
        assert_eq!(acls.len(), 5);
        assert!(acls.find(&binding(t, "ord", PatternType::Prefixed, AclOperation::Read)).is_some());
        assert!(acls.find(&binding(t, "ord", PatternType::Literal, AclOperation::Read)).is_none());
        acls.remove(&Uuid::from_u128(3));
        acls.remove(&Uuid::from_u128(4));
        assert_eq!(matching(&acls, t, "orders-eu-1"), ["LITERAL:*"]);
        assert_eq!(acls.len(), 3);
    }

    #[test]
    fn filters_select_like_kafkas() {
        let t = ResourceType::Topic;
        let lit = binding(t, "orders", PatternType::Literal, AclOperation::Read);
        let wild = binding(t, "*", PatternType::Literal, AclOperation::Read);
        let pre = binding(t, "ord", PatternType::Prefixed, AclOperation::Write);
        let any = AclFilter {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        };
        assert!(any.matches(&lit) && any.matches(&wild) && any.matches(&pre));
        let matching =
            AclFilter { resource_name: Some("orders".into()), pattern_type: PatternType::Match, ..any.clone() };
        assert!(matching.matches(&lit) && matching.matches(&wild) && matching.matches(&pre));
        let exact =
            AclFilter { resource_name: Some("orders".into()), pattern_type: PatternType::Literal, ..any.clone() };
        assert!(exact.matches(&lit) && !exact.matches(&wild) && !exact.matches(&pre));
        let named_any = AclFilter { resource_name: Some("ord".into()), ..any.clone() };
        assert!(named_any.matches(&pre) && !named_any.matches(&lit));
        let write = AclFilter { operation: AclOperation::Write, ..any.clone() };
        assert!(write.matches(&pre) && !write.matches(&lit));
        assert_eq!(AclOperation::parse("idempotent-write"), Some(AclOperation::IdempotentWrite));
        assert_eq!(PatternType::parse("prefixed"), Some(PatternType::Prefixed));
        assert_eq!(ResourceType::from_code(5), Some(ResourceType::TransactionalId));
        assert_eq!(ResourceType::from_code(0), None);
    }
}
