//! One fetch session: the partitions it reads, in the order they are read, with what the fetcher asked of each
//! and what it was last told.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::fetch_request::FetchPartition;
use uuid::Uuid;

/// A topic as the fetcher names it: by id from Fetch v13, by name before. A session uses one or the other.
/// The name is shared: every partition of a topic holds the same one, so a key is cloned without allocating.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TopicRef {
    Id(Uuid),
    Name(Arc<str>),
}

/// A partition of a session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartitionKey {
    pub topic: TopicRef,
    pub partition: i32,
}

/// What decides whether an incremental answer must carry a partition (Kafka's
/// `CachedPartition.maybeUpdateResponseData`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// Records were read for it.
    pub has_records: bool,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// The partition was answered with an error.
    pub error: bool,
    /// The answer names a preferred read replica (KIP-392).
    pub preferred_replica: bool,
}

/// A partition's cached request and the offsets last sent for it.
#[derive(Debug)]
struct Cached {
    req: FetchPartition,
    high_watermark: i64,
    log_start_offset: i64,
}

impl Cached {
    /// Whether the answer must go to the fetcher; remembers the offsets it carries.
    fn must_respond(&mut self, answer: &Answer) -> bool {
        let mut must = answer.has_records || answer.preferred_replica;
        if self.high_watermark != answer.high_watermark {
            self.high_watermark = answer.high_watermark;
            must = true;
        }
        if self.log_start_offset != answer.log_start_offset {
            self.log_start_offset = answer.log_start_offset;
            must = true;
        }
        if answer.error {
            // Forget the high watermark, so the partition is sent again once the error is gone.
            self.high_watermark = -1;
            must = true;
        }
        must
    }
}

#[derive(Debug)]
pub(super) struct Session {
    pub id: i32,
    /// A follower's session: it may evict consumers' sessions.
    pub privileged: bool,
    pub uses_topic_ids: bool,
    /// The epoch the next incremental request must carry.
    pub epoch: i32,
    pub created_ms: u64,
    pub last_used_ms: u64,
    /// The read order. Partitions answered with records move to the end, so a response limited by
    /// `fetch.max.bytes` starts with the others next time.
    order: Vec<PartitionKey>,
    parts: HashMap<PartitionKey, Cached>,
}

impl Session {
    /// A session of the partitions a full fetch was answered with.
    pub fn new(
        id: i32,
        privileged: bool,
        uses_topic_ids: bool,
        now_ms: u64,
        answered: Vec<(PartitionKey, FetchPartition, Answer)>,
    ) -> Self {
        let mut session = Self {
            id,
            privileged,
            uses_topic_ids,
            epoch: super::next_epoch(super::INITIAL_EPOCH),
            created_ms: now_ms,
            last_used_ms: now_ms,
            order: Vec::with_capacity(answered.len()),
            parts: HashMap::with_capacity(answered.len()),
        };
        for (key, req, answer) in answered {
            let cached = Cached {
                req,
                high_watermark: if answer.error {
                    -1
                } else {
                    answer.high_watermark
                },
                log_start_offset: answer.log_start_offset,
            };
            if session.parts.insert(key.clone(), cached).is_none() {
                session.order.push(key);
            }
        }
        session
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Applies an incremental request: partitions it names are added or get its new parameters, then the
    /// forgotten ones are removed.
    pub fn update(&mut self, named: &[(PartitionKey, FetchPartition)], forgotten: &[PartitionKey]) {
        for (key, req) in named {
            match self.parts.get_mut(key) {
                Some(cached) => cached.req = req.clone(),
                None => {
                    self.parts.insert(
                        key.clone(),
                        Cached {
                            req: req.clone(),
                            high_watermark: -1,
                            log_start_offset: -1,
                        },
                    );
                    self.order.push(key.clone());
                }
            }
        }
        if forgotten.iter().any(|k| self.parts.contains_key(k)) {
            for key in forgotten {
                self.parts.remove(key);
            }
            let parts = &self.parts;
            self.order.retain(|k| parts.contains_key(k));
        }
    }

    /// The partitions to read and what was asked of each, in the session's order.
    pub fn partitions(&self) -> Vec<(PartitionKey, FetchPartition)> {
        self.order
            .iter()
            .filter_map(|k| self.parts.get(k).map(|c| (k.clone(), c.req.clone())))
            .collect()
    }

    /// Which of `answers` the incremental response carries (one flag each, in order), remembering the offsets
    /// sent; partitions answered with records move to the end of the read order.
    pub fn select(&mut self, answers: &[(PartitionKey, Answer)]) -> Vec<bool> {
        let mut moved = Vec::new();
        let keep = answers
            .iter()
            .map(|(key, answer)| match self.parts.get_mut(key) {
                Some(cached) => {
                    let must = cached.must_respond(answer);
                    if must && answer.has_records {
                        moved.push(key.clone());
                    }
                    must
                }
                None => false,
            })
            .collect();
        if !moved.is_empty() {
            let to_end: HashSet<&PartitionKey> = moved.iter().collect();
            let mut order: Vec<PartitionKey> = self
                .order
                .iter()
                .filter(|k| !to_end.contains(k))
                .cloned()
                .collect();
            order.extend(moved);
            self.order = order;
        }
        keep
    }
}
