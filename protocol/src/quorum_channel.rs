//! The opening frame of a Kraftwerk node-to-node channel on the controller listener.
//!
//! The controller listener carries three kinds of connection: raft messages between controllers, requests
//! from brokers to the active controller (registration, heartbeats, forwarded writes, metadata fetches), and
//! — by mistake — ordinary Kafka clients. Every connection is size-prefixed frames (the same framing as
//! Kafka, see [`crate::frame`]). A node-to-node channel opens with a *hello* frame whose body starts with
//! [`MAGIC`]; read as a Kafka request header, those bytes are API key 0x4B57 (19287), which no Kafka API
//! uses, so the listener tells the three apart from the first frame alone.
//!
//! The hello names the cluster and both nodes, so a node from another cluster, or one whose voter list
//! disagrees with ours, is refused with a message naming what differs instead of silently joining.

use thiserror::Error;

/// First bytes of every hello frame body.
pub const MAGIC: [u8; 4] = *b"KWQC";
/// Version of the channel protocol spoken after the hello.
pub const VERSION: u16 = 1;
/// Longest cluster id accepted in a hello (Kafka's are 22 characters).
const MAX_CLUSTER_ID_LEN: usize = 256;

/// What the channel carries after the hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// One raft message per frame, from one controller to another; nothing is sent back.
    Raft,
    /// Requests from a broker (or a controller's own broker half) to the active controller, each answered in
    /// order.
    Controller,
}

impl ChannelKind {
    fn id(self) -> u8 {
        match self {
            Self::Raft => 1,
            Self::Controller => 2,
        }
    }

    fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::Raft),
            2 => Some(Self::Controller),
            _ => None,
        }
    }
}

/// The opening frame of a node-to-node channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// What the channel carries.
    pub kind: ChannelKind,
    /// The sender's cluster id (from its meta.properties).
    pub cluster_id: String,
    /// The sender's node id.
    pub from_node: i32,
    /// The node id the sender believes it is talking to (from its voter list); -1 when it does not know
    /// (a broker bootstrapping from `controller.quorum.bootstrap.servers`).
    pub to_node: i32,
}

/// Why a hello was refused. The connection is closed either way.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HelloError {
    /// The frame does not start with [`MAGIC`]: not a Kraftwerk node.
    #[error("not a Kraftwerk quorum channel")]
    NotAHello,
    /// A newer (or unknown) channel version.
    #[error("unsupported quorum channel version {0}")]
    UnsupportedVersion(u16),
    /// Unknown channel kind.
    #[error("unknown quorum channel kind {0}")]
    UnknownKind(u8),
    /// The frame ended early or has bytes left over.
    #[error("malformed quorum channel hello: {0}")]
    Malformed(&'static str),
}

/// Returns true when a frame body opens a node-to-node channel (as opposed to a Kafka request).
pub fn is_hello(body: &[u8]) -> bool {
    body.starts_with(&MAGIC)
}

/// Encodes a hello frame body (without the size prefix).
pub fn encode_hello(hello: &Hello) -> Vec<u8> {
    let id = hello.cluster_id.as_bytes();
    let id = &id[..id.len().min(MAX_CLUSTER_ID_LEN)];
    let mut out = Vec::with_capacity(MAGIC.len() + 2 + 1 + 2 + id.len() + 8);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.push(hello.kind.id());
    // Bounded by MAX_CLUSTER_ID_LEN above, so the length fits a u16.
    out.extend_from_slice(&(id.len() as u16).to_be_bytes());
    out.extend_from_slice(id);
    out.extend_from_slice(&hello.from_node.to_be_bytes());
    out.extend_from_slice(&hello.to_node.to_be_bytes());
    out
}

/// Encodes a hello with its 4-byte size prefix, ready to write to a socket.
pub fn framed_hello(hello: &Hello) -> Vec<u8> {
    framed(&encode_hello(hello))
}

/// Prefixes a frame body with its 4-byte big-endian size.
pub fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Decodes a hello frame body. Never panics on bad input.
pub fn decode_hello(body: &[u8]) -> Result<Hello, HelloError> {
    let rest = body.strip_prefix(&MAGIC).ok_or(HelloError::NotAHello)?;
    let (version, rest) = take::<2>(rest)?;
    let version = u16::from_be_bytes(version);
    if version != VERSION {
        return Err(HelloError::UnsupportedVersion(version));
    }
    let ([kind], rest) = take::<1>(rest)?;
    let kind = ChannelKind::from_id(kind).ok_or(HelloError::UnknownKind(kind))?;
    let (len, rest) = take::<2>(rest)?;
    let len = usize::from(u16::from_be_bytes(len));
    if len > MAX_CLUSTER_ID_LEN {
        return Err(HelloError::Malformed("cluster id too long"));
    }
    let id = rest
        .get(..len)
        .ok_or(HelloError::Malformed("cluster id runs past the frame"))?;
    let cluster_id = std::str::from_utf8(id)
        .map_err(|_| HelloError::Malformed("cluster id is not UTF-8"))?
        .to_string();
    let rest = &rest[len..];
    let (from, rest) = take::<4>(rest)?;
    let (to, rest) = take::<4>(rest)?;
    if !rest.is_empty() {
        return Err(HelloError::Malformed("trailing bytes"));
    }
    Ok(Hello {
        kind,
        cluster_id,
        from_node: i32::from_be_bytes(from),
        to_node: i32::from_be_bytes(to),
    })
}

/// Longest refusal text carried in an ack.
const MAX_REFUSAL_LEN: usize = 4096;

/// Why a hello was refused, with a message for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A configuration that cannot work (the cluster ids differ, the sender is not a voter, ...): the refused
    /// side logs it and stops retrying blindly.
    Misconfigured(String),
    /// The sender's principal may not send this traffic (no CLUSTER_ACTION on the cluster with the authorizer
    /// on): fixed at run time by an ACL, so the refused side logs it and keeps retrying.
    Unauthorized(String),
}

impl Refusal {
    pub fn message(&self) -> &str {
        match self {
            Refusal::Misconfigured(m) | Refusal::Unauthorized(m) => m,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// The server's answer to a hello: accepted (`0`), or refused with a message for the operator: a
/// misconfiguration (`1`) or a principal that is not authorized (`2`).
pub fn encode_ack(result: Result<(), &Refusal>) -> Vec<u8> {
    let (code, why) = match result {
        Ok(()) => return framed(&[0]),
        Err(Refusal::Misconfigured(why)) => (1, why),
        Err(Refusal::Unauthorized(why)) => (2, why),
    };
    let why = why.as_bytes();
    let mut body = vec![code];
    // Cut on a character boundary, so the other side logs valid text.
    let mut end = why.len().min(MAX_REFUSAL_LEN);
    while end > 0 && std::str::from_utf8(&why[..end]).is_err() {
        end -= 1;
    }
    body.extend_from_slice(&why[..end]);
    framed(&body)
}

/// Decodes an ack frame body: `Ok(Ok(()))` accepted, `Ok(Err(refusal))` refused.
pub fn decode_ack(body: &[u8]) -> Result<Result<(), Refusal>, HelloError> {
    let text = |why: &[u8]| String::from_utf8_lossy(why).into_owned();
    match body.split_first() {
        Some((0, [])) => Ok(Ok(())),
        Some((1, why)) if why.len() <= MAX_REFUSAL_LEN => {
            Ok(Err(Refusal::Misconfigured(text(why))))
        }
        Some((2, why)) if why.len() <= MAX_REFUSAL_LEN => Ok(Err(Refusal::Unauthorized(text(why)))),
        _ => Err(HelloError::Malformed("bad hello acknowledgement")),
    }
}

fn take<const N: usize>(bytes: &[u8]) -> Result<([u8; N], &[u8]), HelloError> {
    let (head, rest) = bytes
        .split_first_chunk::<N>()
        .ok_or(HelloError::Malformed("frame ends early"))?;
    Ok((*head, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Hello {
        Hello {
            kind: ChannelKind::Raft,
            cluster_id: "MkU3OEVBNTcwNTJENDM2Qk".into(),
            from_node: 1,
            to_node: 3,
        }
    }

    #[test]
    fn round_trip() {
        for kind in [ChannelKind::Raft, ChannelKind::Controller] {
            let hello = Hello { kind, ..sample() };
            let body = encode_hello(&hello);
            assert!(is_hello(&body));
            assert_eq!(decode_hello(&body), Ok(hello));
        }
    }

    #[test]
    fn magic_is_not_a_kafka_api_key() {
        let api_key = i16::from_be_bytes([MAGIC[0], MAGIC[1]]);
        assert!(kafka_protocol::messages::ApiKey::try_from(api_key).is_err());
    }

    #[test]
    fn refuses_bad_input() {
        let body = encode_hello(&sample());
        for cut in 0..body.len() {
            assert!(decode_hello(&body[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = body.clone();
        longer.push(0);
        assert_eq!(
            decode_hello(&longer),
            Err(HelloError::Malformed("trailing bytes"))
        );
        let mut v2 = body.clone();
        v2[5] = 2;
        assert_eq!(decode_hello(&v2), Err(HelloError::UnsupportedVersion(2)));
        let mut kind = body;
        kind[6] = 9;
        assert_eq!(decode_hello(&kind), Err(HelloError::UnknownKind(9)));
        // A Kafka ApiVersions request header is not a hello.
        assert!(!is_hello(&[0, 18, 0, 3, 0, 0, 0, 1]));
    }

    #[test]
    fn ack_round_trip() {
        assert_eq!(decode_ack(&encode_ack(Ok(()))[4..]), Ok(Ok(())));
        let misconfigured = Refusal::Misconfigured("cluster id differs".into());
        assert_eq!(
            decode_ack(&encode_ack(Err(&misconfigured))[4..]),
            Ok(Err(misconfigured))
        );
        let unauthorized = Refusal::Unauthorized("User:b lacks CLUSTER_ACTION".into());
        assert_eq!(
            decode_ack(&encode_ack(Err(&unauthorized))[4..]),
            Ok(Err(unauthorized))
        );
        // A long message is cut to the limit on a character boundary.
        let long = Refusal::Misconfigured("é".repeat(MAX_REFUSAL_LEN));
        match decode_ack(&encode_ack(Err(&long))[4..]) {
            Ok(Err(Refusal::Misconfigured(m))) => {
                assert!(m.len() <= MAX_REFUSAL_LEN && m.chars().all(|c| c == 'é'))
            }
            other => panic!("{other:?}"),
        }
        assert!(decode_ack(&[]).is_err());
        assert!(decode_ack(&[0, 1]).is_err());
        assert!(decode_ack(&[7]).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_hello(&bytes);
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = decode_hello(&with_magic);
        }
    }
}
