//! Tunables of the classic group coordinator, named after the Kafka broker settings they mirror.

/// Settings of [`super::GroupCoordinator`].
///
/// Defaults are Kafka's, so a client tuned for Kafka sees the same limits here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`: a shorter session would let a GC pause evict a member.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`: a longer session would hide dead members for too long.
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group waits for more
    /// members, so a fleet starting together gets one rebalance instead of one per member.
    pub initial_rebalance_delay_ms: i32,
    /// `group.max.size`: members a group may hold; joins beyond it get GROUP_MAX_SIZE_REACHED.
    pub max_group_size: usize,
    /// Largest total of protocol metadata one JoinGroup may carry, and of the assignments one SyncGroup
    /// may carry. Both end up in the group's `__consumer_offsets` record, which must stay writable.
    pub max_member_metadata_bytes: usize,
    /// `offset.metadata.max.bytes`: larger commit metadata gets OFFSET_METADATA_TOO_LARGE.
    pub offset_metadata_max_bytes: usize,
    /// How long a member that joined without a member id may wait in a rebalance before it is dropped.
    /// Such a member cannot heartbeat, so only this bounds the defunct members a retrying client leaves.
    pub new_member_join_timeout_ms: i64,
    /// `offsets.retention.minutes` in ms: how long committed offsets of an idle group are kept.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`: how often [`super::GroupCoordinator::tick`] looks for
    /// expired offsets and empty groups (the scan touches every offset, so not on every tick).
    pub offsets_retention_check_interval_ms: i64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_group_size: i32::MAX as usize,
            max_member_metadata_bytes: 1024 * 1024,
            offset_metadata_max_bytes: 4096,
            new_member_join_timeout_ms: 5 * 60 * 1000,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offsets_retention_check_interval_ms: 600_000,
        }
    }
}
