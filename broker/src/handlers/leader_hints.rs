//! KIP-951 leader discovery: a Produce (v10+) or Fetch (v12+ leader, v16+ endpoints) answered
//! NOT_LEADER_OR_FOLLOWER names the partition's current leader and epoch, and the response lists that
//! leader's endpoint on the client's listener, so the client moves at once instead of waiting for a
//! metadata refresh.

use std::collections::BTreeSet;

use kraftwerk_controller::MetadataImage;

/// The leader and leader epoch the image gives a partition; `None` for an unknown partition.
pub fn current_leader(image: &MetadataImage, topic: &str, partition: i32) -> Option<(i32, i32)> {
    let p = image.topic(topic)?.partitions.get(&partition)?;
    Some((p.leader, p.leader_epoch))
}

/// An endpoint as the responses' `NodeEndpoint`s carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderEndpoint {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// The endpoints on `listener` of the live brokers among `leaders`, in id order. A leader that is fenced or
/// has no endpoint on that listener is left out (the client then falls back to a metadata refresh).
pub fn endpoints(
    image: &MetadataImage,
    listener: &str,
    leaders: &BTreeSet<i32>,
) -> Vec<LeaderEndpoint> {
    leaders
        .iter()
        .filter_map(|&id| {
            let broker = image.broker(id).filter(|b| !b.fenced)?;
            let ep = broker.listener(listener)?;
            Some(LeaderEndpoint {
                node_id: id,
                host: ep.host.clone(),
                port: i32::from(ep.port),
                rack: broker.rack.clone(),
            })
        })
        .collect()
}
