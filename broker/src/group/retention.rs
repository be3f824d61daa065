//! Offset retention (KIP-211) and removal of groups left with nothing.
//!
//! An empty group's offsets expire `offsets_retention_ms` after it became empty; a group that never
//! used group management (no protocol type) loses each offset that long after its commit; an active
//! consumer group loses only offsets of topics it no longer subscribes to. A commit with an explicit
//! expiry (OffsetCommit v2-v4) expires then instead. An empty group without offsets is then deleted.

use tracing::info;

use super::admin::deletion_records;
use super::classic_group::{Group, CONSUMER_PROTOCOL_TYPE};
use super::coordinator::GroupCoordinator;
use super::output::Outbox;
use super::records::{GroupRecord, OffsetCommitValue, TopicPartition};
use super::state::GroupState;

impl GroupCoordinator {
    pub(super) fn expire_offsets(&mut self, now_ms: i64, out: &mut Outbox) {
        let retention_ms = self.config.offsets_retention_ms;
        let mut ids: Vec<String> = self.groups.keys().cloned().collect();
        ids.sort();
        for id in ids {
            let Some(group) = self.groups.get_mut(&id) else {
                continue;
            };
            let expired = expired_offsets(group, now_ms, retention_ms);
            let mut records: Vec<GroupRecord> = expired
                .into_iter()
                .filter(|tp| group.offsets.remove(tp).is_some())
                .map(|tp| GroupRecord::Offset {
                    group_id: id.clone(),
                    topic_partition: tp,
                    value: None,
                })
                .collect();
            if !records.is_empty() {
                info!(group = %id, offsets = records.len(), "committed offsets expired");
            }
            if group.is_unused() {
                if let Some(group) = self.groups.remove(&id) {
                    info!(group = %id, "removing empty group without offsets");
                    records.extend(
                        deletion_records(&group)
                            .into_iter()
                            .filter(|r| matches!(r, GroupRecord::Group { .. })),
                    );
                }
            }
            out.persist(records);
        }
    }
}

fn expired_offsets(group: &Group, now_ms: i64, retention_ms: i64) -> Vec<TopicPartition> {
    let expired_since = |value: &OffsetCommitValue, base_ms: i64| match value.expire_timestamp_ms {
        Some(expire_ms) => now_ms >= expire_ms,
        None => now_ms.saturating_sub(base_ms) >= retention_ms,
    };
    let select = |keep_topic: &dyn Fn(&str) -> bool, base: &dyn Fn(&OffsetCommitValue) -> i64| {
        group
            .offsets
            .iter()
            .filter(|(tp, value)| !keep_topic(&tp.topic) && expired_since(value, base(value)))
            .map(|(tp, _)| tp.clone())
            .collect()
    };
    match (group.protocol_type.as_deref(), group.state) {
        (None, _) => select(&|_| false, &|v| v.commit_timestamp_ms),
        (Some(_), GroupState::Empty) => select(&|_| false, &|v| {
            group.state_timestamp_ms.unwrap_or(v.commit_timestamp_ms)
        }),
        (Some(CONSUMER_PROTOCOL_TYPE), GroupState::Stable) => match &group.subscribed_topics {
            Some(topics) => select(&|t| topics.contains(t), &|v| v.commit_timestamp_ms),
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}
