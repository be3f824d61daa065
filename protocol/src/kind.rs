//! Which api a typed message belongs to.
//!
//! `kafka-protocol`'s `RequestKind` / `ResponseKind` don't say which `ApiKey` they carry. The encoder needs
//! that to refuse a body that doesn't match the api it is told to frame (that would produce bytes the
//! client misparses), and the broker can use it to sanity-check its handlers.

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

/// Generates the kind-to-key mapping from one list of names, since each api's `ApiKey`, `RequestKind` and
/// `ResponseKind` variants share a name.
macro_rules! kind_to_api_key {
    ($($name:ident),* $(,)?) => {
        /// The api a request body belongs to; `None` for a variant added to `kafka-protocol` after this list.
        pub fn request_api_key(kind: &RequestKind) -> Option<ApiKey> {
            match kind {
                $(RequestKind::$name(_) => Some(ApiKey::$name),)*
                #[allow(unreachable_patterns)]
                _ => None,
            }
        }

        /// The api a response body belongs to; `None` for a variant added to `kafka-protocol` after this list.
        pub fn response_api_key(kind: &ResponseKind) -> Option<ApiKey> {
            match kind {
                $(ResponseKind::$name(_) => Some(ApiKey::$name),)*
                #[allow(unreachable_patterns)]
                _ => None,
            }
        }
    };
}

/// Calls `$callback!(Produce, Fetch, ...)` with every api `kafka-protocol` knows, by the name its `ApiKey`,
/// `RequestKind` and `ResponseKind` variants share, so every per-api mapping (here and in tests) is generated
/// from this one list.
#[macro_export]
#[doc(hidden)]
macro_rules! with_api_names {
    ($callback:ident) => {
        $callback!(
            Produce,
            Fetch,
            ListOffsets,
            Metadata,
            OffsetCommit,
            OffsetFetch,
            FindCoordinator,
            JoinGroup,
            Heartbeat,
            LeaveGroup,
            SyncGroup,
            DescribeGroups,
            ListGroups,
            SaslHandshake,
            ApiVersions,
            CreateTopics,
            DeleteTopics,
            DeleteRecords,
            InitProducerId,
            OffsetForLeaderEpoch,
            AddPartitionsToTxn,
            AddOffsetsToTxn,
            EndTxn,
            WriteTxnMarkers,
            TxnOffsetCommit,
            DescribeAcls,
            CreateAcls,
            DeleteAcls,
            DescribeConfigs,
            AlterConfigs,
            AlterReplicaLogDirs,
            DescribeLogDirs,
            SaslAuthenticate,
            CreatePartitions,
            CreateDelegationToken,
            RenewDelegationToken,
            ExpireDelegationToken,
            DescribeDelegationToken,
            DeleteGroups,
            ElectLeaders,
            IncrementalAlterConfigs,
            AlterPartitionReassignments,
            ListPartitionReassignments,
            OffsetDelete,
            DescribeClientQuotas,
            AlterClientQuotas,
            DescribeUserScramCredentials,
            AlterUserScramCredentials,
            Vote,
            BeginQuorumEpoch,
            EndQuorumEpoch,
            DescribeQuorum,
            AlterPartition,
            UpdateFeatures,
            Envelope,
            FetchSnapshot,
            DescribeCluster,
            DescribeProducers,
            BrokerRegistration,
            BrokerHeartbeat,
            UnregisterBroker,
            DescribeTransactions,
            ListTransactions,
            AllocateProducerIds,
            ConsumerGroupHeartbeat,
            ConsumerGroupDescribe,
            ControllerRegistration,
            GetTelemetrySubscriptions,
            PushTelemetry,
            AssignReplicasToDirs,
            ListConfigResources,
            DescribeTopicPartitions,
            ShareGroupHeartbeat,
            ShareGroupDescribe,
            ShareFetch,
            ShareAcknowledge,
            AddRaftVoter,
            RemoveRaftVoter,
            UpdateRaftVoter,
            InitializeShareGroupState,
            ReadShareGroupState,
            WriteShareGroupState,
            DeleteShareGroupState,
            ReadShareGroupStateSummary,
            DescribeShareGroupOffsets,
            AlterShareGroupOffsets,
            DeleteShareGroupOffsets,
        );
    };
}

with_api_names!(kind_to_api_key);
