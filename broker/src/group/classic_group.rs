//! One classic group: its members, generation, timers and committed offsets, with the bookkeeping that
//! keeps them consistent. The state transitions driven by requests live in `rebalance.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bytes::Bytes;
use indexmap::IndexMap;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::{Decodable, Message};
use kafka_protocol::ResponseError;

use super::member::{Member, Protocol};
use super::records::{
    GroupMetadataValue, GroupRecord, MemberMetadataValue, OffsetCommitValue, TopicPartition,
};
use super::state::GroupState;

/// Protocol type of Kafka consumers; only their metadata is understood (to know subscribed topics).
pub(super) const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// When the JoinGroup phase of a rebalance ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum JoinTimer {
    /// First rebalance of an empty group. It never ends early: it waits `initial_rebalance_delay_ms`,
    /// and again each time a new member arrived meanwhile, until `remaining_ms` of the rebalance
    /// timeout is used up. This gathers a fleet that starts together into one generation.
    Initial { deadline_ms: i64, remaining_ms: i64 },
    /// Any other rebalance: ends when every known member rejoined, or at the deadline.
    Rebalance { deadline_ms: i64 },
}

impl JoinTimer {
    pub(super) fn deadline_ms(self) -> i64 {
        match self {
            JoinTimer::Initial { deadline_ms, .. } | JoinTimer::Rebalance { deadline_ms } => {
                deadline_ms
            }
        }
    }
}

#[derive(Debug)]
pub(super) struct Group {
    pub(super) id: String,
    pub(super) state: GroupState,
    /// When the current generation (or emptiness) began; drives offset retention of empty groups.
    pub(super) state_timestamp_ms: Option<i64>,
    pub(super) generation: i32,
    pub(super) protocol_type: Option<String>,
    /// Protocol chosen for the current generation; `None` while empty.
    pub(super) protocol_name: Option<String>,
    pub(super) leader: Option<String>,
    /// Members in join order; the order picks a successor leader and lists members to the leader.
    pub(super) members: IndexMap<String, Member>,
    /// `group.instance.id` → member id of static members.
    pub(super) static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED (KIP-394) and not yet used, with their expiry. A
    /// rebalance waits for them, since the client is about to rejoin with the id.
    pub(super) pending_members: HashMap<String, i64>,
    /// Members of the new generation that have not sent SyncGroup yet.
    pub(super) pending_sync_members: HashSet<String>,
    pub(super) join_timer: Option<JoinTimer>,
    /// When members still in `pending_sync_members` are dropped.
    pub(super) sync_deadline_ms: Option<i64>,
    /// A member arrived during the initial rebalance delay, so the delay is extended once more.
    pub(super) new_member_added: bool,
    /// Topics the members of a "consumer" group subscribe to; `None` when unknown (other protocol
    /// types, or metadata that does not parse), in which case every topic counts as subscribed.
    pub(super) subscribed_topics: Option<BTreeSet<String>>,
    pub(super) offsets: BTreeMap<TopicPartition, OffsetCommitValue>,
    /// A simple commit (no group management) created the group, or it was rebuilt from committed
    /// offsets. As Kafka's simple groups, it then stays, empty, until the retention check removes it,
    /// also after OffsetDelete took its last offset; only a group that a failed join brought into being
    /// goes at once.
    pub(super) keep_until_retention_check: bool,
}

impl Group {
    pub(super) fn new(id: String) -> Self {
        Self {
            id,
            state: GroupState::Empty,
            state_timestamp_ms: None,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: IndexMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            pending_sync_members: HashSet::new(),
            join_timer: None,
            sync_deadline_ms: None,
            new_member_added: false,
            subscribed_topics: None,
            offsets: BTreeMap::new(),
            keep_until_retention_check: false,
        }
    }

    pub(super) fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    /// Whether a joining member's protocols fit the group: the first member defines the protocol type
    /// and must offer at least one protocol; later members must use that type and share at least one
    /// protocol with every current member.
    pub(super) fn supports_protocols(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|p| self.members.values().all(|m| m.supports(&p.name)))
    }

    /// Whether `group.max.size` leaves room for this join. Outside a rebalance, members already in the
    /// group (or a static member replacing its old id) always fit. During the JoinGroup phase only
    /// members that already rejoined count and keep their place: first come, first served, as in Kafka.
    pub(super) fn accepts_joining_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        max_size: usize,
    ) -> bool {
        let replaced = instance_id
            .and_then(|id| self.static_members.get(id))
            .map(String::as_str);
        match self.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                let rejoined =
                    |id: &str| self.members.get(id).is_some_and(Member::is_awaiting_join);
                rejoined(member_id)
                    || replaced.is_some_and(rejoined)
                    || self.awaiting_join_count() < max_size
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.members.contains_key(member_id)
                    || replaced.is_some()
                    || self.members.len() < max_size
            }
        }
    }

    /// A request naming `instance_id` but not the member id currently holding it comes from a zombie
    /// instance that a newer one replaced.
    pub(super) fn is_static_member_fenced(
        &self,
        instance_id: Option<&str>,
        member_id: &str,
    ) -> bool {
        instance_id
            .and_then(|id| self.static_members.get(id))
            .is_some_and(|current| current != member_id)
    }

    /// Kafka's `ClassicGroup.validateMember` for heartbeats, syncs, commits and leaves: a request naming
    /// an instance id must name the member holding it (FENCED_INSTANCE_ID for another member id, and
    /// UNKNOWN_MEMBER_ID when no member holds that instance id), and the member must exist.
    pub(super) fn validate_member(
        &self,
        instance_id: Option<&str>,
        member_id: &str,
    ) -> Result<(), ResponseError> {
        if let Some(instance_id) = instance_id {
            match self.static_members.get(instance_id) {
                None => return Err(ResponseError::UnknownMemberId),
                Some(current) if current != member_id => {
                    return Err(ResponseError::FencedInstanceId)
                }
                Some(_) => {}
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(ResponseError::UnknownMemberId)
        }
    }

    pub(super) fn awaiting_join_count(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.is_awaiting_join())
            .count()
    }

    /// Every member rejoined and no member-id-required joiner is still on its way.
    pub(super) fn all_members_joined(&self) -> bool {
        self.members.values().all(Member::is_awaiting_join) && self.pending_members.is_empty()
    }

    /// Longest rebalance timeout among members: the JoinGroup phase waits that long for stragglers.
    pub(super) fn rebalance_timeout_ms(&self) -> i32 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
            .max(0)
    }

    pub(super) fn add_member(&mut self, member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member.id.clone());
        }
        if let Some(instance_id) = &member.instance_id {
            self.static_members
                .insert(instance_id.clone(), member.id.clone());
        }
        self.pending_members.remove(&member.id);
        self.members.insert(member.id.clone(), member);
    }

    /// Removes a member and everything that refers to it; a removed leader is succeeded by the
    /// earliest-joined remaining member. Replies the member had parked are the caller's to answer.
    pub(super) fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let member = self.members.shift_remove(member_id)?;
        if let Some(instance_id) = &member.instance_id {
            if self.static_members.get(instance_id) == Some(&member.id) {
                self.static_members.remove(instance_id);
            }
        }
        self.pending_members.remove(member_id);
        self.pending_sync_members.remove(member_id);
        if self.is_leader(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
        Some(member)
    }

    /// Gives the leadership to a rejoined member if the leader did not rejoin: the leader must be part
    /// of the next generation to compute its assignment. False if no member rejoined at all.
    pub(super) fn elect_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader.as_deref() else {
            return false;
        };
        if self
            .members
            .get(leader)
            .is_some_and(Member::is_awaiting_join)
        {
            return true;
        }
        match self.members.values().find(|m| m.is_awaiting_join()) {
            Some(joined) => {
                self.leader = Some(joined.id.clone());
                true
            }
            None => false,
        }
    }

    /// The protocol for the next generation: among protocols every member supports, the one most
    /// members prefer. Ties go to the protocol whose first vote came from the earliest member, so the
    /// choice is deterministic.
    pub(super) fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| self.members.values().all(|m| m.supports(name)))
            .collect();
        let mut votes: Vec<(&str, usize)> = Vec::new();
        for member in self.members.values() {
            let Some(choice) = member.vote(&candidates) else {
                continue;
            };
            match votes.iter_mut().find(|(name, _)| *name == choice) {
                Some((_, count)) => *count += 1,
                None => votes.push((choice, 1)),
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (name, count) in votes {
            if best.is_none_or(|(_, best_count)| count > best_count) {
                best = Some((name, count));
            }
        }
        best.map(|(name, _)| name.to_owned())
    }

    /// Topics subscribed by the members of a "consumer" group, read from their metadata for the chosen
    /// protocol. `None` when not a consumer group or when any member's metadata does not parse.
    pub(super) fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            topics.extend(subscription_topics(member.metadata_for(protocol)?)?);
        }
        Some(topics)
    }

    pub(super) fn is_subscribed_to(&self, topic: &str) -> bool {
        self.subscribed_topics
            .as_ref()
            .is_none_or(|topics| topics.contains(topic))
    }

    /// The group's membership as its `__consumer_offsets` record.
    pub(super) fn metadata_record(&self) -> GroupRecord {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        let members = self
            .members
            .values()
            .map(|m| MemberMetadataValue {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                subscription: m.metadata_for(protocol).cloned().unwrap_or_default(),
                assignment: m.assignment.clone(),
            })
            .collect();
        GroupRecord::Group {
            group_id: self.id.clone(),
            value: Some(GroupMetadataValue {
                protocol_type: self.protocol_type.clone().unwrap_or_default(),
                generation: self.generation,
                protocol: self.protocol_name.clone(),
                leader: self.leader.clone(),
                current_state_timestamp_ms: self.state_timestamp_ms,
                members,
            }),
        }
    }

    /// Nothing worth keeping: no members, no one about to join, no offsets.
    pub(super) fn is_unused(&self) -> bool {
        self.state == GroupState::Empty
            && self.members.is_empty()
            && self.pending_members.is_empty()
            && self.offsets.is_empty()
    }

    /// Earliest of the group's timers; [`super::GroupCoordinator::tick`] must run by then.
    pub(super) fn next_deadline_ms(&self) -> Option<i64> {
        let members = self.members.values().filter_map(|m| m.session_deadline_ms);
        let pending = self.pending_members.values().copied();
        let join = self.join_timer.map(JoinTimer::deadline_ms);
        members
            .chain(pending)
            .chain(join)
            .chain(self.sync_deadline_ms)
            .min()
    }
}

/// Topics of a serialized `ConsumerProtocolSubscription` (an `i16` version, then the struct). Versions
/// newer than the codec knows are read as its newest, as Kafka does: they only append fields.
fn subscription_topics(metadata: &Bytes) -> Option<Vec<String>> {
    let (version, _) = metadata.split_first_chunk::<2>()?;
    let version = i16::from_be_bytes(*version);
    if version < 0 {
        return None;
    }
    let mut body = metadata.slice(2..);
    let version = version.min(ConsumerProtocolSubscription::VERSIONS.max);
    let subscription = ConsumerProtocolSubscription::decode(&mut body, version).ok()?;
    Some(
        subscription
            .topics
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect(),
    )
}
