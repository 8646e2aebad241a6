//! Feature flags (KIP-584): what ApiVersions v3+ reports as supported and
//! finalized, and what UpdateFeatures may change.
//!
//! vltava runs Kafka 4.1's latest production `metadata.version` (4.1-IV1,
//! level 27). `transaction.version` is supported up to 2 (KIP-890 part 2:
//! an epoch bump per transaction, partitions added by the brokers); its
//! finalized level lives in the metadata log (`FeatureLevel` records), a
//! new cluster starts at 2 as Kafka 4.x does, and UpdateFeatures moves it.
//! The Java producer (4.0+) uses transactions v2 only when the finalized
//! level is 2; the broker answers each request by its version either way.
//! The consumer group protocol (`group.version` 1, KIP-848) and share
//! groups (`share.version` 1, KIP-932) are supported up to 1, and a new
//! cluster starts at 1 for both, as Kafka 4.2's (the protocols themselves
//! are switched by `group.coordinator.rebalance.protocols`). Eligible
//! leader replicas and streams groups are not implemented and stay at
//! level 0, so clients use what a cluster without them offers. `kraft.version` 1 names
//! Kafka's KRaft voter records; vltava's voter changes (KIP-853's APIs)
//! ride on raft-rs's membership changes instead and do not depend on it,
//! so it stays 0.

use vltava_metadata::MetadataImage;

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
    supported(TRANSACTION_VERSION, 0, 2),
    supported(GROUP_VERSION, 0, 1),
    supported("eligible.leader.replicas.version", 0, 0),
    supported(SHARE_VERSION, 0, 1),
    supported("streams.version", 0, 0),
];

/// `transaction.version`: 2 is transactions v2 (KIP-890 part 2).
pub const TRANSACTION_VERSION: &str = "transaction.version";

/// The levels a new cluster is created with (besides `metadata.version`,
/// which is not in the log: vltava runs one).
pub const BOOTSTRAP: &[(&str, i16)] = &[(GROUP_VERSION, 1), (SHARE_VERSION, 1), (TRANSACTION_VERSION, 2)];

/// `group.version`: 1 is the consumer group protocol (KIP-848).
pub const GROUP_VERSION: &str = "group.version";
/// `share.version`: 1 is share groups (KIP-932).
pub const SHARE_VERSION: &str = "share.version";

/// The finalized levels (features at level 0 are not listed, as in Kafka).
/// A cluster not bootstrapped yet (its first controller writes the cluster
/// id and these levels together, moments after its election) reports the
/// levels it is about to have.
pub fn finalized(image: &MetadataImage) -> Vec<(String, i16)> {
    let levels: Vec<(String, i16)> = if image.cluster_id.is_none() {
        BOOTSTRAP.iter().map(|(name, level)| (name.to_string(), *level)).collect()
    } else {
        image.features().map(|(name, level)| (name.to_string(), level)).collect()
    };
    std::iter::once((METADATA_VERSION.to_string(), METADATA_VERSION_LEVEL))
        .chain(
            levels.into_iter().filter(|(name, level)| {
                *level > 0 && name != METADATA_VERSION && SUPPORTED.iter().any(|s| s.name == name)
            }),
        )
        .collect()
}

fn current(image: &MetadataImage, name: &str) -> i16 {
    finalized(image).into_iter().find(|(n, _)| n == name).map_or(0, |(_, level)| level)
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

/// Whether `name` may be set to `level`: `Ok(true)` when that is a change
/// to make, `Ok(false)` when it is the level already; otherwise Kafka's
/// reason (INVALID_UPDATE_VERSION). `metadata.version` stays where it is.
pub fn check_update(
    image: &MetadataImage,
    name: &str,
    level: i16,
    how: UpgradeType,
    node_id: i32,
) -> Result<bool, String> {
    let Some(range) = SUPPORTED.iter().find(|s| s.name == name) else {
        return Err(format!(
            "Invalid update version {level} for feature {name}. The controller does not support the given feature."
        ));
    };
    let now = current(image, name);
    if level == now {
        return Ok(false);
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
    if name == METADATA_VERSION {
        return Err(format!("Invalid update version {level} for feature {name}: vltava runs it at level {now} only."));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vltava_metadata::MetadataRecord;

    fn at(level: i16) -> MetadataImage {
        MetadataImage::default().apply(&[
            MetadataRecord::ClusterId { cluster_id: "c".into() },
            MetadataRecord::FeatureLevel { name: GROUP_VERSION.into(), level: 1 },
            MetadataRecord::FeatureLevel { name: SHARE_VERSION.into(), level: 1 },
            MetadataRecord::FeatureLevel { name: TRANSACTION_VERSION.into(), level },
        ])
    }

    #[test]
    fn levels_within_the_supported_range_change_and_others_are_refused() {
        let img = at(2);
        let levels = |l: &[(&str, i16)]| l.iter().map(|(n, v)| (n.to_string(), *v)).collect::<Vec<_>>();
        assert_eq!(
            finalized(&img),
            levels(&[(METADATA_VERSION, 27), (GROUP_VERSION, 1), (SHARE_VERSION, 1), (TRANSACTION_VERSION, 2)])
        );
        assert_eq!(
            finalized(&at(0)),
            levels(&[(METADATA_VERSION, 27), (GROUP_VERSION, 1), (SHARE_VERSION, 1)]),
            "level 0 is not listed"
        );
        assert_eq!(finalized(&MetadataImage::default()), finalized(&img), "before the bootstrap: its levels");
        assert_eq!(check_update(&img, METADATA_VERSION, 27, UpgradeType::Upgrade, 1), Ok(false));
        assert_eq!(check_update(&img, TRANSACTION_VERSION, 2, UpgradeType::Upgrade, 1), Ok(false));
        assert_eq!(check_update(&img, TRANSACTION_VERSION, 0, UpgradeType::SafeDowngrade, 1), Ok(true));
        assert_eq!(check_update(&at(0), TRANSACTION_VERSION, 2, UpgradeType::Upgrade, 1), Ok(true));
        let down = check_update(&img, TRANSACTION_VERSION, 1, UpgradeType::Upgrade, 1).unwrap_err();
        assert!(down.contains("without setting the upgrade type"), "{down}");
        let too_high = check_update(&img, TRANSACTION_VERSION, 3, UpgradeType::Upgrade, 1).unwrap_err();
        assert!(too_high.contains("only supports versions 0-2"), "{too_high}");
        let unsupported = check_update(&img, "streams.version", 1, UpgradeType::Upgrade, 1).unwrap_err();
        assert!(unsupported.contains("only supports versions 0-0"), "{unsupported}");
        let down = check_update(&img, METADATA_VERSION, 21, UpgradeType::Upgrade, 1).unwrap_err();
        assert!(down.contains("without setting the upgrade type"), "{down}");
        let down = check_update(&img, METADATA_VERSION, 21, UpgradeType::UnsafeDowngrade, 1).unwrap_err();
        assert!(down.contains("might delete metadata"), "{down}");
        assert!(check_update(&img, "no.such.feature", 1, UpgradeType::Upgrade, 1).is_err());
        assert!(check_update(&img, METADATA_VERSION, 28, UpgradeType::Upgrade, 1).is_err());
    }
}
