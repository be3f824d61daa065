//! How raft messages reach the other voters.
//!
//! The controller only produces and consumes [`RaftMessage`]s; moving them between processes is
//! the broker's job (a controller listener). A one-voter quorum never sends anything.

use protobuf::Message as _;

pub use raft::eraftpb::Message as RaftMessage;

/// Carries raft messages to other voters.
pub trait Transport: Send + Sync + 'static {
    /// Sends `message` to voter `to` (a Kafka node id). Must not block: queue it or drop it;
    /// raft retransmits whatever is lost.
    fn send(&self, to: i32, message: RaftMessage);
}

/// The transport of a single-voter quorum, which has nobody to talk to.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPeers;

impl Transport for NoPeers {
    fn send(&self, to: i32, _message: RaftMessage) {
        tracing::warn!(to, "dropping a raft message: this controller has no peers");
    }
}

/// Serializes a raft message for the wire (protobuf).
pub fn encode_raft_message(message: &RaftMessage) -> Result<Vec<u8>, protobuf::ProtobufError> {
    message.write_to_bytes()
}

/// Parses a raft message received from a peer; malformed input is an error, never a panic.
pub fn decode_raft_message(bytes: &[u8]) -> Result<RaftMessage, protobuf::ProtobufError> {
    RaftMessage::parse_from_bytes(bytes)
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
        let bytes = encode_raft_message(&m).unwrap();
        assert_eq!(decode_raft_message(&bytes).unwrap(), m);
        assert!(decode_raft_message(&[0xff, 0xff, 0xff]).is_err());
    }
}
