//! Feature flags (KIP-584): what ApiVersions v3+ reports as supported and
//! finalized, and what UpdateFeatures may change.
//!
//! vltava runs Kafka 4.1's latest production `metadata.version` (4.1-IV1,
//! level 27) and no other feature above level 0: transactions v2
//! (`transaction.version` 2), the consumer group protocol (`group.version`
//! 1), share groups and eligible leader replicas are not implemented, so
//! they are supported at level 0 only. `kraft.version` 1 names Kafka's KRaft
//! voter records; vltava's voter changes (KIP-853's APIs) ride on raft-rs's
//! membership changes instead and do not depend on it, so it stays 0.
//! Clients then use what a cluster without those features offers (e.g.
//! the Java producer keeps transactions v1). With nothing to raise,
//! UpdateFeatures can only confirm the current levels; every change is
//! refused with INVALID_UPDATE_VERSION, as Kafka refuses an unsupported one.

/// `metadata.version`: its level names a Kafka release.
pub const METADATA_VERSION: &str = "metadata.version";
/// 4.1-IV1, Kafka 4.1's latest production metadata version.
pub const METADATA_VERSION_LEVEL: i16 = 27;
/// 3.3-IV3, the oldest a Kafka 4.x broker accepts.
pub const METADATA_VERSION_MIN: i16 = 7;

/// A feature and the levels this broker supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Supported {
    pub name: &'static str,
    pub min: i16,
    pub max: i16,
}

const fn supported(name: &'static str, min: i16, max: i16) -> Supported {
    Supported { name, min, max }
}

/// Every feature Kafka 4.1 defines, with the levels vltava supports.
pub const SUPPORTED: &[Supported] = &[
    supported(METADATA_VERSION, METADATA_VERSION_MIN, METADATA_VERSION_LEVEL),
    supported("kraft.version", 0, 0),
    supported("transaction.version", 0, 0),
    supported("group.version", 0, 0),
    supported("eligible.leader.replicas.version", 0, 0),
    supported("share.version", 0, 0),
    supported("streams.version", 0, 0),
];

/// The finalized levels (features at level 0 are not listed, as in Kafka).
pub fn finalized() -> Vec<(&'static str, i16)> {
    vec![(METADATA_VERSION, METADATA_VERSION_LEVEL)]
}

fn current(name: &str) -> i16 {
    finalized().into_iter().find(|(n, _)| *n == name).map_or(0, |(_, level)| level)
}

/// UpdateFeatures' `upgrade_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpgradeType {
    Upgrade,
    SafeDowngrade,
    UnsafeDowngrade,
}

impl UpgradeType {
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            1 => Some(Self::Upgrade),
            2 => Some(Self::SafeDowngrade),
            3 => Some(Self::UnsafeDowngrade),
            _ => None,
        }
    }
}

/// Whether `name` may be set to `level`: `Ok` only when that is its level
/// already; otherwise Kafka's reason (INVALID_UPDATE_VERSION).
pub fn check_update(name: &str, level: i16, how: UpgradeType, node_id: i32) -> Result<(), String> {
    let Some(range) = SUPPORTED.iter().find(|s| s.name == name) else {
        return Err(format!(
            "Invalid update version {level} for feature {name}. The controller does not support the given feature."
        ));
    };
    let now = current(name);
    if level == now {
        return Ok(());
    }
    if level > range.max || (level < range.min && level != 0) {
        return Err(format!(
            "Invalid update version {level} for feature {name}. Local controller {node_id} only supports versions {}-{}",
            range.min, range.max
        ));
    }
    if level < now {
        if how == UpgradeType::Upgrade {
            return Err(format!(
                "Invalid update version {level} for feature {name}. Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade."
            ));
        }
        if name == METADATA_VERSION {
            return Err(format!(
                "Invalid metadata.version {level}. Refusing to perform the requested downgrade because it might delete metadata information."
            ));
        }
    }
    Err(format!("Invalid update version {level} for feature {name}: vltava runs it at level {now} only."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_current_levels_are_accepted() {
        assert!(check_update(METADATA_VERSION, 27, UpgradeType::Upgrade, 1).is_ok());
        assert!(check_update("transaction.version", 0, UpgradeType::SafeDowngrade, 1).is_ok());
        let too_high = check_update("transaction.version", 2, UpgradeType::Upgrade, 1).unwrap_err();
        assert!(too_high.contains("only supports versions 0-0"), "{too_high}");
        let down = check_update(METADATA_VERSION, 21, UpgradeType::Upgrade, 1).unwrap_err();
        assert!(down.contains("without setting the upgrade type"), "{down}");
        let down = check_update(METADATA_VERSION, 21, UpgradeType::UnsafeDowngrade, 1).unwrap_err();
        assert!(down.contains("might delete metadata"), "{down}");
        assert!(check_update("no.such.feature", 1, UpgradeType::Upgrade, 1).is_err());
        assert!(check_update(METADATA_VERSION, 28, UpgradeType::Upgrade, 1).is_err());
    }
}
