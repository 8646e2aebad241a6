//! The `authorized_operations` bit fields of Metadata, DescribeCluster and
//! DescribeGroups (KIP-430): bit `n` set when the caller may perform
//! Kafka's `AclOperation` with code `n` on the resource. A client that does
//! not ask gets `i32::MIN`, Kafka's "not provided".
//!
//! With no authorizer every operation a resource type supports is allowed,
//! as Kafka answers without `authorizer.class.name`; with it, the bits are
//! the operations the session's principal is authorized for
//! ([`for_session`]).

pub use vltava_metadata::AclOperation;

/// The resource types whose operations clients ask about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    Topic,
    Group,
    Cluster,
}

impl ResourceKind {
    /// The operations Kafka defines on this resource type.
    pub fn supported(self) -> &'static [AclOperation] {
        use AclOperation::*;
        match self {
            ResourceKind::Topic => &[Read, Write, Create, Delete, Alter, Describe, DescribeConfigs, AlterConfigs],
            ResourceKind::Group => &[Read, Delete, Describe],
            ResourceKind::Cluster => {
                &[Create, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite]
            }
        }
    }
}

/// "Not provided": what a response carries when the request did not ask.
pub const NOT_PROVIDED: i32 = i32::MIN;

/// The bit field for `kind` when `asked`, [`NOT_PROVIDED`] otherwise.
pub fn operations(kind: ResourceKind, asked: bool) -> i32 {
    if !asked {
        return NOT_PROVIDED;
    }
    kind.supported().iter().fold(0, |bits, op| bits | 1 << *op as u8)
}

impl ResourceKind {
    fn acl_type(self) -> vltava_metadata::ResourceType {
        match self {
            ResourceKind::Topic => vltava_metadata::ResourceType::Topic,
            ResourceKind::Group => vltava_metadata::ResourceType::Group,
            ResourceKind::Cluster => vltava_metadata::ResourceType::Cluster,
        }
    }
}

/// The bit field of the operations `session` may perform on the resource
/// `name` of `kind` when `asked`, [`NOT_PROVIDED`] otherwise.
pub fn for_session(
    broker: &crate::Broker,
    image: &vltava_metadata::MetadataImage,
    session: &crate::handlers::Session,
    kind: ResourceKind,
    name: &str,
    asked: bool,
) -> i32 {
    if !asked || !broker.authorizer_enabled() {
        return operations(kind, asked);
    }
    kind.supported()
        .iter()
        .filter(|op| broker.authorize_in(image, session, **op, kind.acl_type(), name))
        .fold(0, |bits, op| bits | 1 << *op as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_fields_match_kafkas() {
        // the values Kafka 4.1 answers without an authorizer
        assert_eq!(operations(ResourceKind::Topic, true), 0b1101_1111_1000);
        assert_eq!(operations(ResourceKind::Group, true), (1 << 3) | (1 << 6) | (1 << 8));
        assert_eq!(operations(ResourceKind::Cluster, true), 0b1_1111_1010_0000);
        assert_eq!(operations(ResourceKind::Topic, false), NOT_PROVIDED);
    }
}
