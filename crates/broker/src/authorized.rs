//! The `authorized_operations` bit fields of Metadata, DescribeCluster and
//! DescribeGroups (KIP-430): bit `n` set when the caller may perform
//! Kafka's `AclOperation` with code `n` on the resource. A client that does
//! not ask gets `i32::MIN`, Kafka's "not provided".
//!
//! With no authorizer (today: no listener authenticates), every operation
//! a resource type supports is allowed, as Kafka answers without
//! `authorizer.class.name`. An authorizer narrows these per principal.

/// Kafka's `AclOperation` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum AclOperation {
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
}

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
