//! The controller quorum's membership (KIP-853 dynamic voters) as the raft log carries it.
//!
//! A membership change is a raft-rs `ConfChangeV2` entry whose *context* is the [`Membership`]
//! after the change, encoded as Kafka's VotersRecord (control type 6): the voters with their
//! directory ids, controller endpoints and supported kraft.version range. raft-rs only knows ids;
//! the endpoints travel with the membership so every node (and the transport) can dial a voter
//! that is in no configuration file.
//!
//! raft-rs learners (a controller catching up before it is promoted, KIP-853's observer that is
//! being added) are not voters, so Kafka's VotersRecord has no place for them; they are written in
//! a top-level tagged field Kafka's schema does not define ([`LEARNERS_TAG`]), which Kafka's reader
//! skips, so `kafka-dump-log --cluster-metadata-decoder` shows the voter set and Kraftwerk keeps
//! the learners.
//!
//! Every change Kraftwerk proposes is one voter (or learner) at a time, which raft-rs applies as a
//! simple change; so the membership after a change determines the whole raft `ConfState` (no
//! outgoing voters) and is enough to rebuild it on restart.

use raft::prelude::ConfState;
use uuid::Uuid;

use crate::config::{node_id, raft_id, VoterAddr};
use crate::records::kafka_format::{
    decode_voters, encode_voters, read_voter_entries, write_voter_entries, VoterEndpoint,
    VoterEntry, VotersRecord,
};
use crate::records::wire::{Reader, Writer};
use crate::records::{DecodeError, EncodeError};

/// The VotersRecord tagged field holding Kraftwerk's learners (a `Voters` array). Far above the
/// tags Kafka assigns (which count up from 0), so Kafka never gives it a meaning of its own.
pub const LEARNERS_TAG: u32 = 0x4b57;

/// The kraft.version range a Kraftwerk controller supports (0: static voters, 1: KIP-853).
pub const KRAFT_VERSION_RANGE: (i16, i16) = (0, 1);

/// One controller of the quorum: id, metadata directory id and controller listeners.
pub type Member = VoterEntry;

/// The voters and learners of the quorum.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Membership {
    /// The voters, sorted by id.
    pub voters: Vec<Member>,
    /// Controllers receiving the log without voting (being added), sorted by id.
    pub learners: Vec<Member>,
}

impl Membership {
    /// The membership of a static `controller.quorum.voters`: every voter with one endpoint on
    /// `listener` and an unknown (zero) directory id, as Kafka's kraft.version 0 quorum has.
    pub fn from_static(voters: &[VoterAddr], listener: &str) -> Self {
        let mut m = Self {
            voters: voters
                .iter()
                .map(|v| Member {
                    id: v.id,
                    directory_id: Uuid::nil(),
                    endpoints: vec![VoterEndpoint {
                        name: listener.to_string(),
                        host: v.host.clone(),
                        port: v.port,
                    }],
                    kraft_version: KRAFT_VERSION_RANGE,
                })
                .collect(),
            learners: Vec::new(),
        };
        m.normalize();
        m
    }

    fn normalize(&mut self) {
        self.voters.sort_by_key(|v| v.id);
        self.learners.sort_by_key(|v| v.id);
    }

    /// The voter with this id.
    pub fn voter(&self, id: i32) -> Option<&Member> {
        self.voters.iter().find(|v| v.id == id)
    }

    /// The learner with this id.
    pub fn learner(&self, id: i32) -> Option<&Member> {
        self.learners.iter().find(|v| v.id == id)
    }

    /// Voters and learners.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.voters.iter().chain(&self.learners)
    }

    /// The voters' ids.
    pub fn voter_ids(&self) -> Vec<i32> {
        self.voters.iter().map(|v| v.id).collect()
    }

    /// Whether `id` may exchange raft messages with the quorum (a voter or a learner).
    pub fn is_member(&self, id: i32) -> bool {
        self.members().any(|m| m.id == id)
    }

    /// The raft configuration this membership stands for.
    pub fn conf_state(&self) -> ConfState {
        ConfState {
            voters: self.voters.iter().map(|v| raft_id(v.id)).collect(),
            learners: self.learners.iter().map(|v| raft_id(v.id)).collect(),
            ..ConfState::default()
        }
    }

    /// Whether the ids match raft's configuration (voters and learners, nothing joint).
    pub fn matches(&self, cs: &ConfState) -> bool {
        let ids = |raft_ids: &[u64]| {
            let mut ids: Vec<i32> = raft_ids.iter().filter_map(|&r| node_id(r)).collect();
            ids.sort_unstable();
            ids
        };
        cs.voters_outgoing.is_empty()
            && ids(&cs.voters) == self.voter_ids()
            && ids(&cs.learners) == self.learners.iter().map(|l| l.id).collect::<Vec<_>>()
    }

    /// With `member` added as a learner (replacing any learner with its id).
    pub fn with_learner(&self, member: Member) -> Self {
        let mut m = self.clone();
        m.learners.retain(|l| l.id != member.id);
        m.learners.push(member);
        m.normalize();
        m
    }

    /// With learner (or voter) `member.id` as a voter, described by `member`.
    pub fn with_voter(&self, member: Member) -> Self {
        let mut m = self.clone();
        m.learners.retain(|l| l.id != member.id);
        m.voters.retain(|v| v.id != member.id);
        m.voters.push(member);
        m.normalize();
        m
    }

    /// Without `id`, voter or learner.
    pub fn without(&self, id: i32) -> Self {
        let mut m = self.clone();
        m.learners.retain(|l| l.id != id);
        m.voters.retain(|v| v.id != id);
        m
    }

    /// Encoded as a VotersRecord value (learners in [`LEARNERS_TAG`]).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut extra_tags = Vec::new();
        if !self.learners.is_empty() {
            let mut w = Writer::new();
            write_voter_entries(&mut w, &self.learners, "Kraftwerk learners")?;
            extra_tags.push((LEARNERS_TAG, w.into_bytes()));
        }
        encode_voters(&VotersRecord {
            version: 0,
            voters: self.voters.clone(),
            extra_tags,
        })
    }

    /// Decodes what [`Membership::encode`] wrote (or any VotersRecord: no learners then).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let record = decode_voters(bytes)?;
        let mut learners = Vec::new();
        for (tag, value) in &record.extra_tags {
            if *tag == LEARNERS_TAG {
                let mut r = Reader::new(value);
                learners = read_voter_entries(&mut r, "Kraftwerk learners")?;
                r.finish()?;
            }
        }
        let mut m = Self {
            voters: record.voters,
            learners,
        };
        m.normalize();
        let mut ids: Vec<i32> = m.members().map(|v| v.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) || ids.iter().any(|&id| id < 0) {
            return Err(DecodeError::Invalid {
                field: "VotersRecord voter id (negative or listed twice)",
                value: i64::from(ids.first().copied().unwrap_or(-1)),
            });
        }
        Ok(m)
    }
}

/// The endpoint a peer is dialled on: the one on `listener`, else its first.
pub fn endpoint_on<'a>(member: &'a Member, listener: &str) -> Option<&'a VoterEndpoint> {
    member
        .endpoints
        .iter()
        .find(|e| e.name == listener)
        .or_else(|| member.endpoints.first())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: i32, port: u16) -> Member {
        Member {
            id,
            directory_id: Uuid::from_u128(0x1234_0000 + id as u128),
            endpoints: vec![VoterEndpoint {
                name: "CONTROLLER".into(),
                host: "localhost".into(),
                port,
            }],
            kraft_version: KRAFT_VERSION_RANGE,
        }
    }

    #[test]
    fn round_trip_with_learners_and_conf_state() {
        let m = Membership {
            voters: vec![member(1, 9001), member(2, 9002)],
            learners: vec![member(4, 9004)],
        };
        let bytes = m.encode().unwrap();
        let back = Membership::decode(&bytes).unwrap();
        assert_eq!(back, m);
        let cs = back.conf_state();
        assert_eq!(cs.voters, vec![2, 3]);
        assert_eq!(cs.learners, vec![5]);
        assert!(back.matches(&cs));
        assert!(!back.without(4).matches(&cs));
        // Without learners there is no tagged field at all: a plain Kafka VotersRecord.
        let plain = m.without(4).encode().unwrap();
        assert_eq!(plain.last(), Some(&0));
        assert!(Membership::decode(&plain).unwrap().learners.is_empty());
    }

    #[test]
    fn promote_and_remove() {
        let m = Membership {
            voters: vec![member(1, 9001)],
            learners: vec![member(4, 9004)],
        };
        let promoted = m.with_voter(member(4, 9004));
        assert_eq!(promoted.voter_ids(), vec![1, 4]);
        assert!(promoted.learners.is_empty());
        assert_eq!(promoted.without(1).voter_ids(), vec![4]);
    }

    #[test]
    fn duplicate_ids_and_garbage_are_refused() {
        let m = Membership {
            voters: vec![member(1, 9001)],
            learners: vec![member(1, 9004)],
        };
        assert!(Membership::decode(&m.encode().unwrap()).is_err());
        let good = Membership {
            voters: vec![member(1, 9001)],
            learners: vec![],
        }
        .encode()
        .unwrap();
        for cut in 0..good.len() {
            assert!(Membership::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
    }
}
