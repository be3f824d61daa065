//! Idempotent-producer state of one partition: per producer id, its epoch and the metadata of its last five
//! batches, which is what Kafka keeps (a producer has at most five requests in flight) to answer a retried batch
//! with its original offsets instead of writing it twice, and to refuse a gap in the sequence.
//!
//! Pure data, no I/O: the partition checks a batch here before appending it and records it after, under the
//! same lock as the append, and rebuilds the table from the tail of its log on start.

use std::collections::{HashMap, VecDeque};

/// How many batches per producer are remembered for duplicate detection (Kafka's constant).
pub const BATCHES_RETAINED: usize = 5;

/// What Kafka calls `RecordBatch.NO_PRODUCER_ID`: a batch from a non-idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchMeta {
    first_seq: i32,
    last_seq: i32,
    first_offset: i64,
    last_offset: i64,
    /// The batch's max timestamp (Kafka's `BatchMetadata.timestamp`), answered for a retry of it.
    timestamp: i64,
}

#[derive(Debug, Clone, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
    /// The max timestamp of its newest batch (Kafka's `lastTimestamp`), for `producer.id.expiration.ms`.
    last_timestamp: i64,
}

/// A batch's producer fields, as read from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub producer_id: i64,
    pub epoch: i16,
    pub first_seq: i32,
    /// `first_seq + last_offset_delta`, wrapping at i32::MAX as Kafka's sequences do.
    pub last_seq: i32,
}

impl ProducerBatch {
    pub fn new(producer_id: i64, epoch: i16, first_seq: i32, last_offset_delta: i32) -> Self {
        let last_seq = if first_seq < 0 {
            first_seq
        } else {
            ((first_seq as i64 + last_offset_delta as i64) % (i32::MAX as i64 + 1)) as i32
        };
        ProducerBatch {
            producer_id,
            epoch,
            first_seq,
            last_seq,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Write it.
    Append,
    /// Already written at these offsets: acknowledge without writing.
    /// A retry of a batch already written at these offsets, with that batch's max timestamp.
    Duplicate {
        first_offset: i64,
        last_offset: i64,
        timestamp: i64,
    },
    /// An epoch older than the producer's current one (a zombie producer).
    InvalidProducerEpoch,
    /// A gap or reordering in the sequence.
    OutOfOrderSequence { expected: i32, got: i32 },
}

#[derive(Debug, Default, Clone)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
}

fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    next_seq == last_seq.wrapping_add(1) || (next_seq == 0 && last_seq == i32::MAX)
}

impl ProducerStateTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Decides what to do with a batch from an idempotent producer (Kafka's ProducerAppendInfo rules).
    pub fn check(&self, b: &ProducerBatch) -> SequenceCheck {
        let Some(entry) = self.producers.get(&b.producer_id) else {
            // Unknown producer (new, or its state aged out with the log): any sequence starts it.
            return SequenceCheck::Append;
        };
        if b.epoch < entry.epoch {
            return SequenceCheck::InvalidProducerEpoch;
        }
        if b.epoch > entry.epoch {
            return if b.first_seq == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::OutOfOrderSequence {
                    expected: 0,
                    got: b.first_seq,
                }
            };
        }
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|m| m.first_seq == b.first_seq && m.last_seq == b.last_seq)
        {
            return SequenceCheck::Duplicate {
                first_offset: dup.first_offset,
                last_offset: dup.last_offset,
                timestamp: dup.timestamp,
            };
        }
        match entry.batches.back() {
            Some(last) if !in_sequence(last.last_seq, b.first_seq) => {
                SequenceCheck::OutOfOrderSequence {
                    expected: last.last_seq.wrapping_add(1),
                    got: b.first_seq,
                }
            }
            _ => SequenceCheck::Append,
        }
    }

    /// Records a batch without a timestamp (tests): the producer never expires.
    #[cfg(test)]
    pub fn record(&mut self, b: &ProducerBatch, first_offset: i64, last_offset: i64) {
        self.record_at(b, first_offset, last_offset, i64::MAX);
    }

    /// Records a batch that was written at `[first_offset, last_offset]` with max timestamp `timestamp_ms`.
    pub fn record_at(
        &mut self,
        b: &ProducerBatch,
        first_offset: i64,
        last_offset: i64,
        timestamp_ms: i64,
    ) {
        let entry = self.producers.entry(b.producer_id).or_default();
        // The newest batch's, as Kafka's ProducerStateEntry keeps it (not the largest ever seen).
        entry.last_timestamp = timestamp_ms;
        if b.epoch != entry.epoch {
            entry.epoch = b.epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == BATCHES_RETAINED {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMeta {
            first_seq: b.first_seq,
            last_seq: b.last_seq,
            first_offset,
            last_offset,
            timestamp: timestamp_ms,
        });
    }

    /// Kafka's `producer.id.expiration.ms`: forgets the producers whose newest batch is at least `expiration_ms`
    /// older than `now_ms` (their next batch is then taken as from a new producer). Returns how many went.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_timestamp) < expiration_ms);
        before - self.producers.len()
    }

    /// The producers with their epoch, last sequence, offset and timestamp, for DescribeProducers.
    pub fn producers(&self) -> impl Iterator<Item = ActiveProducer> + '_ {
        self.producers.iter().filter_map(|(id, e)| {
            let last = e.batches.back()?;
            Some(ActiveProducer {
                producer_id: *id,
                epoch: e.epoch,
                last_sequence: last.last_seq,
                last_offset: last.last_offset,
                last_timestamp: e.last_timestamp,
            })
        })
    }
}

/// One producer with state on a partition, as DescribeProducers lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    pub producer_id: i64,
    pub epoch: i16,
    pub last_sequence: i32,
    pub last_offset: i64,
    /// The max timestamp of the producer's newest batch.
    pub last_timestamp: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, epoch: i16, seq: i32, n: i32) -> ProducerBatch {
        ProducerBatch::new(pid, epoch, seq, n - 1)
    }

    #[test]
    fn in_order_batches_append_and_retry_is_duplicate() {
        let mut t = ProducerStateTable::new();
        let b0 = batch(7, 0, 0, 10);
        assert_eq!(t.check(&b0), SequenceCheck::Append);
        t.record(&b0, 100, 109);
        let b1 = batch(7, 0, 10, 5);
        assert_eq!(t.check(&b1), SequenceCheck::Append);
        t.record(&b1, 110, 114);
        assert_eq!(
            t.check(&b0),
            SequenceCheck::Duplicate {
                first_offset: 100,
                last_offset: 109,
                timestamp: i64::MAX,
            }
        );
    }

    #[test]
    fn gap_is_out_of_order() {
        let mut t = ProducerStateTable::new();
        let b0 = batch(1, 0, 0, 1);
        t.record(&b0, 0, 0);
        assert_eq!(
            t.check(&batch(1, 0, 5, 1)),
            SequenceCheck::OutOfOrderSequence {
                expected: 1,
                got: 5
            }
        );
    }

    #[test]
    fn old_epoch_is_fenced_and_new_epoch_restarts_at_zero() {
        let mut t = ProducerStateTable::new();
        t.record(&batch(1, 3, 0, 1), 0, 0);
        assert_eq!(
            t.check(&batch(1, 2, 1, 1)),
            SequenceCheck::InvalidProducerEpoch
        );
        assert_eq!(t.check(&batch(1, 4, 0, 1)), SequenceCheck::Append);
        assert!(matches!(
            t.check(&batch(1, 4, 3, 1)),
            SequenceCheck::OutOfOrderSequence { .. }
        ));
    }

    #[test]
    fn only_five_batches_are_remembered() {
        let mut t = ProducerStateTable::new();
        for i in 0..6 {
            t.record(&batch(1, 0, i, 1), i as i64, i as i64);
        }
        // Batch 0 fell out of the window: it is no longer a duplicate but a sequence error.
        assert!(matches!(
            t.check(&batch(1, 0, 0, 1)),
            SequenceCheck::OutOfOrderSequence { .. }
        ));
        assert!(matches!(
            t.check(&batch(1, 0, 1, 1)),
            SequenceCheck::Duplicate { .. }
        ));
    }

    #[test]
    fn sequence_wraps_at_i32_max() {
        let mut t = ProducerStateTable::new();
        let b = ProducerBatch::new(1, 0, i32::MAX - 1, 1);
        assert_eq!(b.last_seq, i32::MAX);
        t.record(&b, 0, 1);
        assert_eq!(t.check(&batch(1, 0, 0, 1)), SequenceCheck::Append);
    }

    #[test]
    fn described_producers_carry_their_newest_batch() {
        let mut t = ProducerStateTable::new();
        t.record_at(&batch(3, 1, 0, 2), 10, 11, 6_000);
        // A newer batch with an older timestamp: Kafka reports the newest batch's, not the largest.
        t.record_at(&batch(3, 1, 2, 2), 12, 13, 5_500);
        let described: Vec<ActiveProducer> = t.producers().collect();
        assert_eq!(
            described,
            vec![ActiveProducer {
                producer_id: 3,
                epoch: 1,
                last_sequence: 3,
                last_offset: 13,
                last_timestamp: 5_500,
            }]
        );
    }

    #[test]
    fn unknown_producer_accepts_any_sequence() {
        let t = ProducerStateTable::new();
        assert_eq!(t.check(&batch(9, 0, 42, 1)), SequenceCheck::Append);
    }

    #[test]
    fn producers_expire_after_producer_id_expiration_ms() {
        let mut t = ProducerStateTable::new();
        t.record_at(&batch(1, 0, 0, 1), 0, 0, 1_000);
        t.record_at(&batch(2, 0, 0, 1), 1, 1, 5_000);
        assert_eq!(t.expire(10_000, 9_500), 0, "1 is 9000 ms old");
        assert_eq!(t.expire(10_500, 9_500), 1, "1 is 9500 ms old");
        assert_eq!(t.len(), 1);
        // Forgotten: any sequence starts it afresh, where before only 1 would have been accepted.
        assert_eq!(t.check(&batch(1, 0, 7, 1)), SequenceCheck::Append);
        assert_eq!(
            t.check(&batch(2, 0, 7, 1)),
            SequenceCheck::OutOfOrderSequence {
                expected: 1,
                got: 7
            }
        );
    }
}
