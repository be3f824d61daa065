//! How raft messages reach the other voters.
//!
//! The controller only produces and consumes [`RaftMessage`]s; moving them between processes is
//! the broker's job (a controller listener). A one-voter quorum never sends anything.

use prost::Message as _;

pub use raft::eraftpb::Message as RaftMessage;

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

/// Parses a raft message received from a peer; malformed input is an error, never a panic.
/// prost bounds nesting depth and checks every length against the bytes present, so a
/// hostile peer can neither recurse the decoder to a stack overflow nor make it allocate more
/// than it sent.
pub fn decode_raft_message(bytes: &[u8]) -> Result<RaftMessage, prost::DecodeError> {
    RaftMessage::decode(bytes)
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
}
