//! The registered brokers part of the image.

use uuid::Uuid;

use crate::records::{BrokerFeature, BrokerRecord, Endpoint};

/// A registered broker as the cluster sees it: everything its RegisterBrokerRecord said, with
/// the fencing state kept current by Fence/UnfenceBrokerRecords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerImage {
    /// The broker's `node.id`.
    pub id: i32,
    /// The broker epoch of the registration: the offset of the batch that registered it, so a
    /// stale incarnation can be told apart from the current one.
    pub epoch: i64,
    /// Identifies the registering process.
    pub incarnation_id: Uuid,
    /// Endpoints clients reach it on.
    pub listeners: Vec<Endpoint>,
    /// Feature ranges the broker supports.
    pub features: Vec<BrokerFeature>,
    /// Rack, if configured.
    pub rack: Option<String>,
    /// A fenced broker leads nothing and is skipped by replica placement.
    pub fenced: bool,
    /// Whether the broker is in controlled shutdown.
    pub in_controlled_shutdown: bool,
    /// Only for ZooKeeper brokers in migration.
    pub is_migrating_zk_broker: bool,
    /// Online log directories the broker reported (empty: none reported).
    pub log_dirs: Vec<Uuid>,
    /// Cordoned log directories, `None` until reported.
    pub cordoned_log_dirs: Option<Vec<Uuid>>,
}

impl BrokerImage {
    pub(crate) fn registered(rec: &BrokerRecord) -> Self {
        Self {
            id: rec.broker_id,
            epoch: rec.broker_epoch,
            incarnation_id: rec.incarnation_id,
            listeners: rec.listeners.clone(),
            features: rec.features.clone(),
            rack: rec.rack.clone(),
            fenced: rec.fenced,
            in_controlled_shutdown: rec.in_controlled_shutdown,
            is_migrating_zk_broker: rec.is_migrating_zk_broker,
            log_dirs: rec.log_dirs.clone(),
            cordoned_log_dirs: rec.cordoned_log_dirs.clone(),
        }
    }

    /// The RegisterBrokerRecord that recreates this broker, fencing state included.
    pub fn to_record(&self) -> BrokerRecord {
        BrokerRecord {
            broker_id: self.id,
            is_migrating_zk_broker: self.is_migrating_zk_broker,
            incarnation_id: self.incarnation_id,
            broker_epoch: self.epoch,
            listeners: self.listeners.clone(),
            features: self.features.clone(),
            rack: self.rack.clone(),
            fenced: self.fenced,
            in_controlled_shutdown: self.in_controlled_shutdown,
            log_dirs: self.log_dirs.clone(),
            cordoned_log_dirs: self.cordoned_log_dirs.clone(),
        }
    }

    /// The endpoint of the named listener, if the broker has one.
    pub fn listener(&self, name: &str) -> Option<&Endpoint> {
        self.listeners.iter().find(|l| l.name == name)
    }

    /// The directory Kafka's controller assigns a new replica on this broker: MIGRATING when
    /// the broker reported no log directories, its only directory when it has one, otherwise
    /// UNASSIGNED (the broker reports the choice later).
    pub fn default_directory(&self) -> Uuid {
        match self.log_dirs.as_slice() {
            [] => crate::records::DIRECTORY_MIGRATING,
            [only] => *only,
            _ => crate::records::DIRECTORY_UNASSIGNED,
        }
    }
}
