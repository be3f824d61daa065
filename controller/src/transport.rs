//! How raft messages reach the other voters.
//!
//! The controller only produces and consumes [`RaftMessage`]s; moving them between processes is
//! the broker's job (a controller listener). A one-voter quorum never sends anything.

use prost::Message as _;

pub use raft::eraftpb::Message as RaftMessage;
use raft::eraftpb::{
    ConfChange, ConfChangeTransition, ConfChangeType, ConfChangeV2, EntryType, MessageType,
};

/// Carries raft messages to other voters.
pub trait Transport: Send + Sync + 'static {
    /// Sends `message` to voter `to` (a Kafka node id). Must not block: queue it or drop it;
    /// raft retransmits whatever is lost.
    fn send(&self, to: i32, message: RaftMessage);

    /// The quorum's members changed (at start, and whenever a membership change is applied or a snapshot
    /// installed): from now on messages go to these voters and learners, dialled on their endpoints. Called
    /// on the node's task before it sends anything to a new member; must not block.
    fn set_members(&self, _members: &crate::membership::Membership) {}
}

/// The transport of a single-voter quorum, which has nobody to talk to.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPeers;

impl Transport for NoPeers {
    fn send(&self, to: i32, _message: RaftMessage) {
        tracing::warn!(to, "dropping a raft message: this controller has no peers");
    }
}

/// Serializes a raft message for the wire (protobuf, through prost).
pub fn encode_raft_message(message: &RaftMessage) -> Vec<u8> {
    message.encode_to_vec()
}

/// Why raft bytes from a peer were refused.
#[derive(Debug, thiserror::Error)]
pub enum RaftDecodeError {
    /// Not a protobuf encoding of the message.
    #[error(transparent)]
    Decode(#[from] prost::DecodeError),
    /// An enum field holds a value raft does not define. prost keeps such values as plain integers, and
    /// raft-rs's getters panic on them, so they are refused here, where the bytes come in.
    #[error("unknown {field} value {value}")]
    UnknownEnum {
        /// Which field.
        field: &'static str,
        /// The value sent.
        value: i32,
    },
}

/// Parses a raft message received from a peer; malformed input is an error, never a panic.
/// prost bounds nesting depth and checks every length against the bytes present, so a
/// hostile peer can neither recurse the decoder to a stack overflow nor make it allocate more
/// than it sent; every enum value, including those of the entries and conf changes it carries, is
/// checked before raft-rs sees it.
pub fn decode_raft_message(bytes: &[u8]) -> Result<RaftMessage, RaftDecodeError> {
    let message = RaftMessage::decode(bytes)?;
    if MessageType::from_i32(message.msg_type).is_none() {
        return Err(RaftDecodeError::UnknownEnum {
            field: "msg_type",
            value: message.msg_type,
        });
    }
    for entry in &message.entries {
        check_entry(entry.entry_type, &entry.data)?;
    }
    Ok(message)
}

/// Checks an entry's type, and for a conf change the enums inside its payload.
pub fn check_entry(entry_type: i32, data: &[u8]) -> Result<(), RaftDecodeError> {
    match EntryType::from_i32(entry_type) {
        None => Err(RaftDecodeError::UnknownEnum {
            field: "entry_type",
            value: entry_type,
        }),
        Some(EntryType::EntryNormal) => Ok(()),
        Some(EntryType::EntryConfChange) => {
            let cc = ConfChange::decode(data)?;
            check_change_type(cc.change_type)
        }
        Some(EntryType::EntryConfChangeV2) => decode_conf_change_v2(data).map(|_| ()),
    }
}

/// Decodes a ConfChangeV2 payload with every enum value checked, so raft-rs can apply it without panicking.
pub fn decode_conf_change_v2(data: &[u8]) -> Result<ConfChangeV2, RaftDecodeError> {
    let cc = ConfChangeV2::decode(data)?;
    if ConfChangeTransition::from_i32(cc.transition).is_none() {
        return Err(RaftDecodeError::UnknownEnum {
            field: "transition",
            value: cc.transition,
        });
    }
    for change in &cc.changes {
        check_change_type(change.change_type)?;
    }
    Ok(cc)
}

fn check_change_type(value: i32) -> Result<(), RaftDecodeError> {
    match ConfChangeType::from_i32(value) {
        Some(_) => Ok(()),
        None => Err(RaftDecodeError::UnknownEnum {
            field: "change_type",
            value,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_round_trip() {
        let m = RaftMessage {
            to: 2,
            from: 1,
            term: 9,
            commit: 4,
            ..RaftMessage::default()
        };
        let bytes = encode_raft_message(&m);
        assert_eq!(decode_raft_message(&bytes).unwrap(), m);
        assert!(decode_raft_message(&[0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn unknown_enum_values_are_refused_not_panicked_on() {
        let bad_type = RaftMessage {
            msg_type: 99,
            ..RaftMessage::default()
        };
        assert!(matches!(
            decode_raft_message(&encode_raft_message(&bad_type)),
            Err(RaftDecodeError::UnknownEnum {
                field: "msg_type",
                value: 99
            })
        ));
        let bad_entry = RaftMessage {
            entries: vec![raft::eraftpb::Entry {
                entry_type: 7,
                ..Default::default()
            }],
            ..RaftMessage::default()
        };
        assert!(decode_raft_message(&encode_raft_message(&bad_entry)).is_err());
        let cc = ConfChangeV2 {
            changes: vec![raft::eraftpb::ConfChangeSingle {
                change_type: 42,
                node_id: 3,
            }],
            ..Default::default()
        };
        let bad_cc = RaftMessage {
            entries: vec![raft::eraftpb::Entry {
                entry_type: EntryType::EntryConfChangeV2 as i32,
                data: cc.encode_to_vec(),
                ..Default::default()
            }],
            ..RaftMessage::default()
        };
        assert!(matches!(
            decode_raft_message(&encode_raft_message(&bad_cc)),
            Err(RaftDecodeError::UnknownEnum {
                field: "change_type",
                value: 42
            })
        ));
    }
}
