//! A broker's copy of the metadata image, built by following the committed metadata log.
//!
//! A broker that is not a controller has no raft node. It fetches committed entries from the active
//! controller (as Kafka's brokers are observers of `__cluster_metadata`) and replays them, in order, into
//! its own `MetadataImage` with the same function the voters use, so every broker that has caught up to an
//! offset sees exactly the image every controller had at that offset. One path for every change.

use std::sync::Arc;

use raft::prelude::Entry;
use tokio::sync::watch;

use crate::image::MetadataImage;
use crate::node::apply_entry;
use crate::raft_log::snapshot_file::decode_snapshot;
use crate::rpc::MetadataChunk;

/// Why a fetched chunk could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FollowError {
    /// The chunk does not continue the applied log (a controller answered from another index).
    #[error("metadata entry {got} does not follow the applied entry {applied}")]
    Gap {
        /// Raft index of the last applied entry.
        applied: u64,
        /// Raft index of the entry offered.
        got: u64,
    },
    /// An entry sent by a controller has a type or payload raft does not define.
    #[error("metadata entry {0} from the controller is invalid: {1}")]
    BadEntry(u64, String),
    /// A snapshot sent by a controller does not decode (bad CRC, truncated, ...).
    #[error("metadata snapshot from the controller is invalid: {0}")]
    BadSnapshot(String),
}

/// The image a broker serves from, advanced by fetched chunks.
pub struct MetadataFollower {
    image: MetadataImage,
    /// Raft index of the last applied entry.
    applied_index: u64,
    tx: watch::Sender<Arc<MetadataImage>>,
}

impl MetadataFollower {
    /// A follower with an empty image of `cluster_id`.
    pub fn new(cluster_id: &str) -> (Self, watch::Receiver<Arc<MetadataImage>>) {
        let image = MetadataImage::empty(cluster_id);
        let (tx, rx) = watch::channel(Arc::new(image.clone()));
        (
            Self {
                image,
                applied_index: 0,
                tx,
            },
            rx,
        )
    }

    /// The raft index of the next entry to fetch.
    pub fn next_index(&self) -> u64 {
        self.applied_index + 1
    }

    /// The image after everything applied so far.
    pub fn image(&self) -> &MetadataImage {
        &self.image
    }

    /// Applies a chunk (a snapshot, then committed entries) and publishes the new image once.
    pub fn apply(&mut self, chunk: &MetadataChunk) -> Result<(), FollowError> {
        let (mut image, mut applied) = match &chunk.snapshot {
            Some(s) => {
                let (_, records) = decode_snapshot(&s.bytes).map_err(FollowError::BadSnapshot)?;
                let image = MetadataImage::from_snapshot(
                    self.image.cluster_id().to_string(),
                    s.end_offset - 1,
                    &records,
                );
                (image, s.index)
            }
            None if chunk.entries.is_empty() => return Ok(()),
            None => (self.image.clone(), self.applied_index),
        };
        for e in &chunk.entries {
            if e.index != applied + 1 {
                return Err(FollowError::Gap {
                    applied,
                    got: e.index,
                });
            }
            crate::transport::check_entry(e.entry_type, &e.data)
                .map_err(|err| FollowError::BadEntry(e.index, err.to_string()))?;
            applied = e.index;
            let entry = Entry {
                index: e.index,
                term: e.term,
                entry_type: e.entry_type,
                data: e.data.clone(),
                ..Entry::default()
            };
            image = apply_entry(&image, &entry);
        }
        self.image = image;
        self.applied_index = applied;
        self.tx.send_replace(Arc::new(self.image.clone()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{encode_batch, MetadataRecord};
    use crate::rpc::CommittedEntry;

    fn entry(index: u64, records: &[MetadataRecord]) -> CommittedEntry {
        CommittedEntry {
            index,
            term: 1,
            entry_type: 0,
            data: encode_batch(records).unwrap(),
        }
    }

    #[test]
    fn applies_in_order_and_refuses_gaps() {
        let (mut follower, rx) = MetadataFollower::new("c");
        let topic = MetadataRecord::Topic {
            name: "t".into(),
            id: uuid::Uuid::from_u128(1),
        };
        follower
            .apply(&MetadataChunk {
                entries: vec![entry(1, &[]), entry(2, &[topic])],
                commit_index: 2,
                snapshot: None,
            })
            .unwrap();
        assert_eq!(follower.next_index(), 3);
        assert!(rx.borrow().topic("t").is_some());
        let gap = follower.apply(&MetadataChunk {
            entries: vec![entry(5, &[])],
            commit_index: 5,
            snapshot: None,
        });
        assert_eq!(gap, Err(FollowError::Gap { applied: 2, got: 5 }));
        assert_eq!(follower.next_index(), 3, "nothing applied from a bad chunk");
    }
}
