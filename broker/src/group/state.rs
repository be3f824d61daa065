//! The five states of a classic group and their wire names.

use std::fmt;

/// Where a classic group is in its rebalance cycle.
///
/// The names are part of the protocol (DescribeGroups, ListGroups and its state filter), so they are
/// spelled exactly as Kafka spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members; the group may still hold committed offsets.
    Empty,
    /// A rebalance started; waiting for members to (re)send JoinGroup.
    PreparingRebalance,
    /// Joins are answered; waiting for the leader's SyncGroup with the assignment.
    CompletingRebalance,
    /// Every member has its assignment for the current generation.
    Stable,
    /// The group is gone. Only reported for groups this coordinator does not hold.
    Dead,
}

impl GroupState {
    /// Every state, for filters and tests.
    pub const ALL: [GroupState; 5] = [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ];

    /// The protocol name of this state.
    pub const fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// Parses a state name case-insensitively, as ListGroups' filter is matched.
    pub fn parse(name: &str) -> Option<GroupState> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
