//! The table of APIs and versions this broker implements, as advertised in
//! ApiVersions and enforced for every request.

use kafka_protocol::messages::ApiKey;

/// One advertised API: key and inclusive version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> ApiRange {
    ApiRange { key, min, max }
}

/// What vltava implements. Produce is advertised from v0 as Kafka 4.x does
/// (librdkafka refuses compressed produce otherwise, KAFKA-18659), but v0-v2
/// are refused when used: see [`Produce_VERSION_DECODABLE_MIN`].
pub const SUPPORTED: &[ApiRange] = &[
    api(ApiKey::Produce, 0, 12),
    api(ApiKey::Fetch, 4, 17),
    api(ApiKey::ListOffsets, 1, 10),
    api(ApiKey::Metadata, 0, 13),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
    api(ApiKey::DescribeCluster, 0, 2),
    api(ApiKey::AlterReplicaLogDirs, 1, 2),
    api(ApiKey::DescribeLogDirs, 1, 4),
    api(ApiKey::DescribeQuorum, 0, 2),
    api(ApiKey::AddRaftVoter, 0, 0),
    api(ApiKey::RemoveRaftVoter, 0, 0),
    api(ApiKey::UpdateRaftVoter, 0, 0),
    api(ApiKey::DescribeTopicPartitions, 0, 0),
    api(ApiKey::UpdateFeatures, 0, 2),
    api(ApiKey::UnregisterBroker, 0, 0),
    api(ApiKey::ListConfigResources, 0, 1),
    api(ApiKey::FindCoordinator, 0, 6),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    api(ApiKey::OffsetCommit, 2, 9),
    api(ApiKey::OffsetFetch, 1, 9),
    api(ApiKey::ListGroups, 0, 5),
    api(ApiKey::DescribeGroups, 0, 6),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::OffsetDelete, 0, 0),
    api(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    api(ApiKey::ConsumerGroupDescribe, 0, 1),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::DescribeClientQuotas, 0, 1),
    api(ApiKey::AlterClientQuotas, 0, 1),
    api(ApiKey::CreateAcls, 1, 3),
    api(ApiKey::DescribeAcls, 1, 3),
    api(ApiKey::DeleteAcls, 1, 3),
    api(ApiKey::GetTelemetrySubscriptions, 0, 0),
    api(ApiKey::PushTelemetry, 0, 0),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::AddPartitionsToTxn, 0, 5),
    api(ApiKey::AddOffsetsToTxn, 0, 4),
    api(ApiKey::TxnOffsetCommit, 0, 5),
    api(ApiKey::EndTxn, 0, 5),
    api(ApiKey::DescribeProducers, 0, 0),
    api(ApiKey::DescribeTransactions, 0, 0),
    api(ApiKey::ListTransactions, 0, 1),
    api(ApiKey::ElectLeaders, 0, 2),
    api(ApiKey::AlterPartitionReassignments, 0, 1),
    api(ApiKey::ListPartitionReassignments, 0, 0),
    api(ApiKey::WriteTxnMarkers, 1, 1),
    api(ApiKey::CreateDelegationToken, 1, 3),
    api(ApiKey::RenewDelegationToken, 1, 2),
    api(ApiKey::ExpireDelegationToken, 1, 2),
    api(ApiKey::DescribeDelegationToken, 1, 3),
    api(ApiKey::SaslHandshake, 0, 1),
    api(ApiKey::SaslAuthenticate, 0, 2),
    api(ApiKey::DescribeUserScramCredentials, 0, 0),
    api(ApiKey::AlterUserScramCredentials, 0, 0),
    api(ApiKey::ShareGroupHeartbeat, 1, 1),
    api(ApiKey::ShareGroupDescribe, 1, 1),
    api(ApiKey::ShareFetch, 1, 1),
    api(ApiKey::ShareAcknowledge, 1, 1),
    api(ApiKey::InitializeShareGroupState, 0, 0),
    api(ApiKey::ReadShareGroupState, 0, 0),
    api(ApiKey::WriteShareGroupState, 0, 0),
    api(ApiKey::DeleteShareGroupState, 0, 0),
    api(ApiKey::ReadShareGroupStateSummary, 0, 0),
    api(ApiKey::DescribeShareGroupOffsets, 0, 0),
    api(ApiKey::AlterShareGroupOffsets, 0, 0),
    api(ApiKey::DeleteShareGroupOffsets, 0, 0),
];

/// Produce v0-v2 carry magic 0/1 message sets; the codec starts at v3.
#[allow(non_upper_case_globals)]
pub const Produce_VERSION_DECODABLE_MIN: i16 = 3;

/// The advertised range for `key`, if vltava implements it.
pub fn supported_range(key: ApiKey) -> Option<ApiRange> {
    SUPPORTED.iter().copied().find(|r| r.key == key)
}

/// Whether a request at `version` of `key` can be decoded and answered.
pub fn is_supported(key: ApiKey, version: i16) -> bool {
    match supported_range(key) {
        Some(r) if key == ApiKey::Produce => version >= Produce_VERSION_DECODABLE_MIN && version <= r.max,
        Some(r) => version >= r.min && version <= r.max,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_within_codec_ranges() {
        for r in SUPPORTED {
            let codec = r.key.valid_versions();
            assert!(r.max <= codec.max, "{:?} max {} beyond codec {}", r.key, r.max, codec.max);
            let decodable_min = if r.key == ApiKey::Produce { Produce_VERSION_DECODABLE_MIN } else { r.min };
            assert!(decodable_min >= codec.min, "{:?} min beyond codec", r.key);
        }
    }

    #[test]
    fn produce_advertised_from_zero_but_decoded_from_three() {
        assert_eq!(supported_range(ApiKey::Produce).unwrap().min, 0);
        assert!(!is_supported(ApiKey::Produce, 2));
        assert!(is_supported(ApiKey::Produce, 3));
        assert!(is_supported(ApiKey::Produce, 12));
        assert!(!is_supported(ApiKey::Produce, 13));
    }
}
