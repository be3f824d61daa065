//! The one place a partition's next state is worked out, after Kafka's `PartitionChangeBuilder`: an
//! operation sets the targets it wants (ISR, replicas, adding/removing replicas) and [`PartitionChange::build`]
//! completes a reassignment the target ISR allows, elects a leader if the current one cannot stay, bumps the
//! leader epoch when replicas leave, and returns the PartitionChangeRecord (or nothing when nothing changes).
//!
//! Sharing this between AlterPartition and AlterPartitionReassignments is what makes a reassignment finish in
//! the same change that brings its last new replica into the ISR, as in Kafka.

pub(crate) use super::election::Election;
use super::election::{elect_among, leader_recovery_supported, Acceptor};
use crate::image::{MetadataImage, PartitionImage};
use crate::records::{PartitionChangeRecord, LEADER_RECOVERING};

/// A change being planned for one partition.
pub(crate) struct PartitionChange<'a> {
    image: &'a MetadataImage,
    current: &'a PartitionImage,
    topic_id: uuid::Uuid,
    partition: i32,
    target_isr: Vec<i32>,
    target_replicas: Vec<i32>,
    target_removing: Vec<i32>,
    target_adding: Vec<i32>,
    election: Election,
}

impl<'a> PartitionChange<'a> {
    /// Starts from the partition as it is: building without setting anything yields no record unless a
    /// reassignment can complete.
    pub(crate) fn new(
        image: &'a MetadataImage,
        topic_id: uuid::Uuid,
        partition: i32,
        current: &'a PartitionImage,
    ) -> Self {
        Self {
            image,
            current,
            topic_id,
            partition,
            target_isr: current.isr.clone(),
            target_replicas: current.replicas.clone(),
            target_removing: current.removing_replicas.clone(),
            target_adding: current.adding_replicas.clone(),
            election: Election::Online,
        }
    }

    pub(crate) fn target_isr(mut self, isr: Vec<i32>) -> Self {
        self.target_isr = isr;
        self
    }

    pub(crate) fn target_replicas(mut self, replicas: Vec<i32>) -> Self {
        self.target_replicas = replicas;
        self
    }

    pub(crate) fn target_removing(mut self, removing: Vec<i32>) -> Self {
        self.target_removing = removing;
        self
    }

    pub(crate) fn target_adding(mut self, adding: Vec<i32>) -> Self {
        self.target_adding = adding;
        self
    }

    pub(crate) fn election(mut self, election: Election) -> Self {
        self.election = election;
        self
    }

    /// Kafka's `PartitionReassignmentReplicas.maybeCompleteReassignment`: once every replica that stays is in
    /// the ISR, the removed ones leave the replicas and the ISR and the adding/removing lists are cleared.
    fn complete_reassignment_if_needed(&mut self) {
        if self.target_removing.is_empty() && self.target_adding.is_empty() {
            return;
        }
        let mut isr = self.target_isr.clone();
        let mut replicas = self.target_replicas.clone();
        if !self.target_removing.is_empty() {
            isr.retain(|r| !self.target_removing.contains(r));
            replicas.retain(|r| !self.target_removing.contains(r));
            if isr.is_empty() || replicas.is_empty() {
                return;
            }
        }
        if !replicas.iter().all(|r| isr.contains(r)) {
            return;
        }
        self.target_isr = isr;
        self.target_replicas = replicas;
        self.target_removing.clear();
        self.target_adding.clear();
    }

    /// The leader after the change (the election policy of [`super::election`], over the target replicas and
    /// ISR); `(leader, unclean)`.
    fn elect_leader(&self) -> (i32, bool) {
        let elected = elect_among(
            self.current.leader,
            &self.target_replicas,
            &self.target_isr,
            self.election,
            &Acceptor::new(self.image),
        );
        (elected.leader, elected.unclean)
    }

    /// The record that takes the partition to the targets, or `None` when it would change nothing.
    pub(crate) fn build(mut self) -> Option<PartitionChangeRecord> {
        let mut record = PartitionChangeRecord {
            topic_id: self.topic_id,
            partition: self.partition,
            ..PartitionChangeRecord::default()
        };
        self.complete_reassignment_if_needed();

        let (leader, unclean) = self.elect_leader();
        if leader != self.current.leader {
            record.leader = Some(leader);
            if unclean {
                // The new leader is not in sync: it alone is the ISR, and it must recover first.
                record.isr = Some(vec![leader]);
                if self.current.leader_recovery_state != LEADER_RECOVERING
                    && leader_recovery_supported(self.image)
                {
                    record.leader_recovery_state = Some(LEADER_RECOVERING);
                }
            }
        }
        // Replicas leaving must see the leader epoch move even when the leader stays, so anything they still
        // send in the old epoch is fenced.
        if record.leader.is_none()
            && !self
                .current
                .replicas
                .iter()
                .all(|r| self.target_replicas.contains(r))
        {
            record.leader = Some(self.current.leader);
        }
        if record.isr.is_none()
            && !self.target_isr.is_empty()
            && self.target_isr != self.current.isr
        {
            record.isr = Some(self.target_isr.clone());
        }
        if !self.target_replicas.is_empty() && self.target_replicas != self.current.replicas {
            record.replicas = Some(self.target_replicas);
        }
        if self.target_removing != self.current.removing_replicas {
            record.removing_replicas = Some(self.target_removing);
        }
        if self.target_adding != self.current.adding_replicas {
            record.adding_replicas = Some(self.target_adding);
        }
        let unchanged = record.isr.is_none()
            && record.leader.is_none()
            && record.replicas.is_none()
            && record.removing_replicas.is_none()
            && record.adding_replicas.is_none()
            && record.leader_recovery_state.is_none();
        (!unchanged).then_some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::NO_LEADER;
    use crate::ops::test_support::*;

    fn partition(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionImage {
        PartitionImage {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: 3,
            partition_epoch: 7,
            ..PartitionImage::default()
        }
    }

    #[test]
    fn nothing_set_builds_nothing() {
        let image = image_with_brokers(&[1, 2, 3]);
        let p = partition(&[1, 2], &[1, 2], 1);
        assert_eq!(
            PartitionChange::new(&image, uuid::Uuid::nil(), 0, &p).build(),
            None
        );
    }

    #[test]
    fn a_reassignment_completes_when_the_isr_holds_every_staying_replica() {
        let image = image_with_brokers(&[1, 2, 3]);
        // {1,2} -> {2,3}: replicas [2,3,1], adding [3], removing [1].
        let mut p = partition(&[2, 3, 1], &[1, 2], 1);
        p.adding_replicas = vec![3];
        p.removing_replicas = vec![1];
        // 3 not yet in sync: only the ISR itself may change.
        assert_eq!(
            PartitionChange::new(&image, uuid::Uuid::nil(), 0, &p).build(),
            None
        );
        let record = PartitionChange::new(&image, uuid::Uuid::nil(), 0, &p)
            .target_isr(vec![1, 2, 3])
            .build()
            .unwrap();
        assert_eq!(record.replicas, Some(vec![2, 3]));
        assert_eq!(record.isr, Some(vec![2, 3]));
        assert_eq!(record.adding_replicas, Some(vec![]));
        assert_eq!(record.removing_replicas, Some(vec![]));
        // The leader was removed: the first target replica in sync leads.
        assert_eq!(record.leader, Some(2));
        let mut after = p.clone();
        after.merge(&record);
        assert_eq!((after.leader_epoch, after.partition_epoch), (4, 8));
    }

    #[test]
    fn removing_a_follower_keeps_the_leader_but_bumps_its_epoch() {
        let image = image_with_brokers(&[1, 2, 3]);
        let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
        let record = PartitionChange::new(&image, uuid::Uuid::nil(), 0, &p)
            .target_replicas(vec![1, 2, 3])
            .target_removing(vec![3])
            .build()
            .unwrap();
        assert_eq!(record.leader, Some(1), "named again: epoch bump");
        assert_eq!(record.replicas, Some(vec![1, 2]));
        assert_eq!(record.isr, Some(vec![1, 2]));
        assert_eq!(record.removing_replicas, None, "was empty and stays empty");
    }

    #[test]
    fn unclean_election_only_when_asked() {
        let image = image_with_brokers(&[1, 2]);
        // The ISR holds only broker 3, which is no longer registered.
        let p = partition(&[1, 2, 3], &[3], 3);
        let online = PartitionChange::new(&image, uuid::Uuid::nil(), 0, &p)
            .build()
            .unwrap();
        assert_eq!(online.leader, Some(NO_LEADER));
        let unclean = PartitionChange::new(&image, uuid::Uuid::nil(), 0, &p)
            .election(Election::Unclean)
            .build()
            .unwrap();
        assert_eq!(unclean.leader, Some(1));
        assert_eq!(unclean.isr, Some(vec![1]));
        assert_eq!(unclean.leader_recovery_state, Some(LEADER_RECOVERING));
    }
}
