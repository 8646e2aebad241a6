//! Kafka's StandardAuthorizer: with
//! `authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer`
//! every request is checked against the ACLs of the metadata image (see
//! `vltava_metadata::acl`) for the session's principal and peer address.
//! Without it (the default) everything is allowed and a check is a single
//! branch.
//!
//! The decision, as Kafka's `StandardAuthorizerData` makes it:
//! - a principal listed in `super.users` may do everything;
//! - the bindings considered are those whose pattern covers the resource
//!   (LITERAL of its name, LITERAL `*`, PREFIXED of a prefix of its name)
//!   and whose principal (or `User:*`) and host (or `*`) match;
//! - a matching DENY of the operation (or ALL) denies, whatever allows;
//! - else a matching ALLOW of the operation (or ALL) allows; an ALLOW of
//!   READ, WRITE, DELETE or ALTER also allows DESCRIBE, and ALTER_CONFIGS
//!   allows DESCRIBE_CONFIGS (implications apply to ALLOW only);
//! - else, when no binding at all exists for the resource (any principal),
//!   `allow.everyone.if.no.acl.found` decides (default false); otherwise
//!   it is denied.
//!
//! Brokers reach each other as principals too (replication's Fetch,
//! WriteTxnMarkers, ...): with the authorizer on, the inter-broker
//! principal must be a super user (or hold CLUSTER_ACTION on the cluster),
//! e.g. `super.users=User:ANONYMOUS` on a PLAINTEXT inter-broker listener,
//! as in Kafka.

use std::net::IpAddr;

use vltava_metadata::acl::{WILDCARD, WILDCARD_PRINCIPAL};
use vltava_metadata::{AclBinding, AclOperation, AclPermission, MetadataImage, PatternType, ResourceType};
use vltava_security::KafkaPrincipal;

use crate::handlers::Session;
use crate::Broker;

/// The one authorizer class vltava implements.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
/// The cluster resource's only name.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// `authorizer.class.name`, `super.users`, `allow.everyone.if.no.acl.found`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    pub enabled: bool,
    /// `(type, name)` of each super user.
    pub super_users: Vec<(String, String)>,
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerConfig {
    pub fn is_key(key: &str) -> bool {
        matches!(key, "authorizer.class.name" | "super.users" | "allow.everyone.if.no.acl.found")
    }

    /// Applies one of the keys of [`Self::is_key`]; the error says why the
    /// value is refused.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let value = value.trim();
        match key {
            "authorizer.class.name" => match value {
                "" => self.enabled = false,
                STANDARD_AUTHORIZER => self.enabled = true,
                _ => return Err(format!("only {STANDARD_AUTHORIZER} is supported (or nothing: no authorization)")),
            },
            "super.users" => {
                self.super_users = value
                    .split(';')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| match p.split_once(':') {
                        Some((t, n)) if !t.is_empty() && !n.is_empty() => Ok((t.to_string(), n.to_string())),
                        _ => Err(format!("{p} is not a principal (expected Type:name, e.g. User:admin)")),
                    })
                    .collect::<Result<_, _>>()?
            }
            _ => {
                self.allow_everyone_if_no_acl_found = match value {
                    v if v.eq_ignore_ascii_case("true") => true,
                    v if v.eq_ignore_ascii_case("false") => false,
                    _ => return Err("expected true or false".into()),
                }
            }
        }
        Ok(())
    }

    fn is_super_user(&self, principal: &KafkaPrincipal) -> bool {
        self.super_users.iter().any(|(t, n)| *t == principal.principal_type && *n == principal.name)
    }

    /// Whether `principal` from `host` may do `op` on the resource
    /// (`resource_type`, `name`), given the image's ACLs.
    pub fn authorize(
        &self,
        image: &MetadataImage,
        principal: &KafkaPrincipal,
        host: IpAddr,
        op: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if !self.enabled || self.is_super_user(principal) {
            return true;
        }
        let mut any_binding = false;
        let mut allowed = false;
        let mut denied = false;
        image.acls().for_each_matching(resource_type, name, |acl| {
            any_binding = true;
            match verdict(acl, principal, host, op) {
                Some(AclPermission::Deny) => {
                    denied = true;
                    false
                }
                Some(_) => {
                    allowed = true;
                    true
                }
                None => true,
            }
        });
        if denied {
            false
        } else if allowed {
            true
        } else {
            !any_binding && self.allow_everyone_if_no_acl_found
        }
    }

    /// Whether `principal` may do `op` on at least one resource of the type
    /// (Kafka's `authorizeByResourceType`, used by InitProducerId for an
    /// idempotent producer: "WRITE on some topic"): an ALLOW binding of the
    /// operation whose pattern no DENY binding covers entirely.
    pub fn authorize_any(
        &self,
        image: &MetadataImage,
        principal: &KafkaPrincipal,
        host: IpAddr,
        op: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if !self.enabled || self.is_super_user(principal) {
            return true;
        }
        let acls = image.acls();
        let applies = |acl: &AclBinding| {
            matches_principal(acl, principal)
                && matches_host(acl, host)
                && (acl.operation == op || acl.operation == AclOperation::All)
        };
        let denies: Vec<&AclBinding> =
            acls.of_type(resource_type).filter(|a| a.permission == AclPermission::Deny && applies(a)).collect();
        let covered = |allow: &AclBinding| {
            denies.iter().any(|d| match d.pattern_type {
                PatternType::Literal if d.resource_name == WILDCARD => true,
                PatternType::Literal => {
                    allow.pattern_type == PatternType::Literal && d.resource_name == allow.resource_name
                }
                _ => allow.resource_name.starts_with(&d.resource_name) && allow.resource_name != WILDCARD,
            })
        };
        let mut allows = acls.of_type(resource_type).filter(|a| a.permission == AclPermission::Allow && applies(a));
        if allows.any(|a| !covered(a)) {
            return true;
        }
        // no binding of the type at all: the default decides
        acls.of_type(resource_type).next().is_none() && self.allow_everyone_if_no_acl_found
    }
}

fn matches_principal(acl: &AclBinding, principal: &KafkaPrincipal) -> bool {
    acl.principal == WILDCARD_PRINCIPAL
        || acl.principal.split_once(':').is_some_and(|(t, n)| t == principal.principal_type && n == principal.name)
}

fn matches_host(acl: &AclBinding, host: IpAddr) -> bool {
    acl.host == WILDCARD || acl.host.parse::<IpAddr>().is_ok_and(|h| h == host)
}

/// What a binding (whose pattern covers the resource) says about `op` for
/// this principal and host; `None` when it does not apply.
fn verdict(acl: &AclBinding, principal: &KafkaPrincipal, host: IpAddr, op: AclOperation) -> Option<AclPermission> {
    use AclOperation::*;
    if !matches_principal(acl, principal) || !matches_host(acl, host) {
        return None;
    }
    let applies = acl.operation == All
        || acl.operation == op
        || (acl.permission == AclPermission::Allow
            && match op {
                Describe => matches!(acl.operation, Read | Write | Delete | Alter),
                DescribeConfigs => acl.operation == AlterConfigs,
                _ => false,
            });
    applies.then_some(acl.permission)
}

impl Broker {
    /// Whether the authorizer is on (`authorizer.class.name`).
    pub fn authorizer_enabled(&self) -> bool {
        self.config.authorizer.enabled
    }

    /// Whether the session may do `op` on the resource, in `image`.
    pub fn authorize_in(
        &self,
        image: &MetadataImage,
        session: &Session,
        op: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let config = &self.config.authorizer;
        !config.enabled || config.authorize(image, &session.principal, session.peer.ip(), op, resource_type, name)
    }

    /// [`Self::authorize_in`] on the current image.
    pub fn authorize(&self, session: &Session, op: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        !self.config.authorizer.enabled || self.authorize_in(&self.controller.image(), session, op, resource_type, name)
    }

    /// `op` on the cluster resource.
    pub fn authorize_cluster(&self, session: &Session, op: AclOperation) -> bool {
        self.authorize(session, op, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// `op` on at least one resource of the type.
    pub fn authorize_any(&self, session: &Session, op: AclOperation, resource_type: ResourceType) -> bool {
        let config = &self.config.authorizer;
        !config.enabled
            || config.authorize_any(&self.controller.image(), &session.principal, session.peer.ip(), op, resource_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;
    use vltava_metadata::MetadataRecord;
    use AclOperation::*;
    use ResourceType::{Cluster, Group, Topic};

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 9));

    struct Acl<'a>(ResourceType, &'a str, PatternType, &'a str, &'a str, AclOperation, AclPermission);

    fn image(acls: &[Acl]) -> MetadataImage {
        let records: Vec<MetadataRecord> = acls
            .iter()
            .enumerate()
            .map(|(i, Acl(rt, name, pt, principal, host, op, perm))| MetadataRecord::Acl {
                id: Uuid::from_u128(i as u128 + 1),
                acl: AclBinding {
                    resource_type: *rt,
                    resource_name: name.to_string(),
                    pattern_type: *pt,
                    principal: principal.to_string(),
                    host: host.to_string(),
                    operation: *op,
                    permission: *perm,
                },
            })
            .collect();
        MetadataImage::default().apply(&records)
    }

    fn on() -> AuthorizerConfig {
        AuthorizerConfig { enabled: true, ..Default::default() }
    }

    fn user(name: &str) -> KafkaPrincipal {
        KafkaPrincipal::user(name)
    }

    const L: PatternType = PatternType::Literal;
    const P: PatternType = PatternType::Prefixed;
    const ALLOW: AclPermission = AclPermission::Allow;
    const DENY: AclPermission = AclPermission::Deny;

    #[test]
    fn off_allows_everything_and_on_denies_without_acls() {
        let img = image(&[]);
        let off = AuthorizerConfig::default();
        assert!(off.authorize(&img, &user("x"), LOCAL, Write, Topic, "t"));
        assert!(!on().authorize(&img, &user("x"), LOCAL, Write, Topic, "t"));
        let everyone = AuthorizerConfig { allow_everyone_if_no_acl_found: true, ..on() };
        assert!(everyone.authorize(&img, &user("x"), LOCAL, Write, Topic, "t"));
        // a binding for someone else on the resource: no longer "no ACL"
        let img = image(&[Acl(Topic, "t", L, "User:bob", "*", Read, ALLOW)]);
        assert!(!everyone.authorize(&img, &user("x"), LOCAL, Write, Topic, "t"));
        assert!(everyone.authorize(&img, &user("x"), LOCAL, Write, Topic, "u"));
    }

    #[test]
    fn literal_wildcard_and_prefixed_patterns() {
        let img = image(&[
            Acl(Topic, "orders", L, "User:alice", "*", Read, ALLOW),
            Acl(Topic, "logs-", P, "User:alice", "*", Write, ALLOW),
            Acl(Topic, "*", L, "User:carol", "*", Read, ALLOW),
        ]);
        let a = on();
        assert!(a.authorize(&img, &user("alice"), LOCAL, Read, Topic, "orders"));
        assert!(!a.authorize(&img, &user("alice"), LOCAL, Read, Topic, "orders2"));
        assert!(a.authorize(&img, &user("alice"), LOCAL, Write, Topic, "logs-app"));
        assert!(!a.authorize(&img, &user("alice"), LOCAL, Write, Topic, "logs"));
        assert!(!a.authorize(&img, &user("alice"), LOCAL, Write, Topic, "orders"));
        assert!(a.authorize(&img, &user("carol"), LOCAL, Read, Topic, "anything"));
        assert!(!a.authorize(&img, &user("carol"), LOCAL, Read, Group, "anything"));
    }

    #[test]
    fn deny_beats_allow_and_all_covers_every_operation() {
        let img = image(&[
            Acl(Topic, "t", L, "User:*", "*", All, ALLOW),
            Acl(Topic, "t", L, "User:bob", "*", Write, DENY),
            Acl(Topic, "secret", P, "User:alice", "*", All, DENY),
            Acl(Topic, "*", L, "User:alice", "*", Read, ALLOW),
        ]);
        let a = on();
        assert!(a.authorize(&img, &user("alice"), LOCAL, Write, Topic, "t"));
        assert!(a.authorize(&img, &user("bob"), LOCAL, Read, Topic, "t"));
        assert!(!a.authorize(&img, &user("bob"), LOCAL, Write, Topic, "t"));
        assert!(!a.authorize(&img, &user("alice"), LOCAL, Read, Topic, "secret-1"));
        assert!(!a.authorize(&img, &user("alice"), LOCAL, Describe, Topic, "secret-1"));
        assert!(a.authorize(&img, &user("alice"), LOCAL, Read, Topic, "public"));
    }

    #[test]
    fn implied_operations_apply_to_allow_only() {
        let img = image(&[
            Acl(Topic, "t", L, "User:alice", "*", Write, ALLOW),
            Acl(Topic, "t", L, "User:alice", "*", AlterConfigs, ALLOW),
            Acl(Topic, "u", L, "User:alice", "*", Describe, ALLOW),
            Acl(Topic, "u", L, "User:alice", "*", Read, DENY),
        ]);
        let a = on();
        assert!(a.authorize(&img, &user("alice"), LOCAL, Describe, Topic, "t"));
        assert!(a.authorize(&img, &user("alice"), LOCAL, DescribeConfigs, Topic, "t"));
        assert!(!a.authorize(&img, &user("alice"), LOCAL, Read, Topic, "t"));
        // DESCRIBE implies nothing; a DENY of READ does not deny DESCRIBE
        assert!(a.authorize(&img, &user("alice"), LOCAL, Describe, Topic, "u"));
        assert!(!a.authorize(&img, &user("alice"), LOCAL, Read, Topic, "u"));
        for implied in [Read, Delete, Alter] {
            let img = image(&[Acl(Group, "g", L, "User:alice", "*", implied, ALLOW)]);
            assert!(a.authorize(&img, &user("alice"), LOCAL, Describe, Group, "g"), "{implied:?}");
        }
        let img = image(&[Acl(Group, "g", L, "User:alice", "*", Create, ALLOW)]);
        assert!(!a.authorize(&img, &user("alice"), LOCAL, Describe, Group, "g"));
    }

    #[test]
    fn hosts_principals_and_super_users() {
        let img = image(&[
            Acl(Topic, "t", L, "User:alice", "127.0.0.1", Read, ALLOW),
            Acl(Topic, "t", L, "User:alice", "10.0.0.9", Write, DENY),
            Acl(Topic, "t", L, "User:bob", "*", Write, ALLOW),
        ]);
        let a = AuthorizerConfig { super_users: vec![("User".into(), "admin".into())], ..on() };
        assert!(a.authorize(&img, &user("alice"), LOCAL, Read, Topic, "t"));
        assert!(!a.authorize(&img, &user("alice"), OTHER, Read, Topic, "t"));
        assert!(!a.authorize(&img, &user("bobby"), LOCAL, Write, Topic, "t"));
        assert!(!a.authorize(&img, &KafkaPrincipal::parse("Group:bob").unwrap(), LOCAL, Write, Topic, "t"));
        assert!(a.authorize(&img, &user("admin"), OTHER, ClusterAction, Cluster, CLUSTER_NAME));
        assert!(!a.authorize(&img, &user("ANONYMOUS"), LOCAL, ClusterAction, Cluster, CLUSTER_NAME));
    }

    #[test]
    fn by_resource_type() {
        let a = on();
        let img = image(&[Acl(Topic, "t", L, "User:alice", "*", Write, ALLOW)]);
        assert!(a.authorize_any(&img, &user("alice"), LOCAL, Write, Topic));
        assert!(!a.authorize_any(&img, &user("bob"), LOCAL, Write, Topic));
        let img = image(&[
            Acl(Topic, "app-", P, "User:alice", "*", Write, ALLOW),
            Acl(Topic, "app", P, "User:alice", "*", Write, DENY),
        ]);
        assert!(!a.authorize_any(&img, &user("alice"), LOCAL, Write, Topic));
        let img = image(&[
            Acl(Topic, "app-", P, "User:alice", "*", Write, ALLOW),
            Acl(Topic, "app-x", L, "User:alice", "*", Write, DENY),
        ]);
        assert!(a.authorize_any(&img, &user("alice"), LOCAL, Write, Topic));
        let img =
            image(&[Acl(Topic, "t", L, "User:alice", "*", Write, ALLOW), Acl(Topic, "*", L, "User:*", "*", All, DENY)]);
        assert!(!a.authorize_any(&img, &user("alice"), LOCAL, Write, Topic));
    }

    #[test]
    fn config_keys() {
        let mut c = AuthorizerConfig::default();
        c.set("authorizer.class.name", STANDARD_AUTHORIZER).unwrap();
        c.set("super.users", "User:admin; User:CN=broker,O=acme").unwrap();
        c.set("allow.everyone.if.no.acl.found", "TRUE").unwrap();
        assert!(c.enabled && c.allow_everyone_if_no_acl_found);
        assert_eq!(c.super_users[1], ("User".to_string(), "CN=broker,O=acme".to_string()));
        assert!(c.set("authorizer.class.name", "kafka.security.authorizer.AclAuthorizer").is_err());
        assert!(c.set("super.users", "admin").is_err());
        c.set("authorizer.class.name", "").unwrap();
        assert!(!c.enabled);
    }
}
