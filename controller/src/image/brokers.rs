//! The registered brokers part of the image.

use crate::records::{BrokerRecord, Endpoint};

/// A registered broker as the cluster sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerImage {
    /// The broker's `node.id`.
    pub id: i32,
    /// Offset of the registration record; changes on every re-registration, so a stale
    /// incarnation can be told apart from the current one.
    pub epoch: i64,
    /// Endpoints clients reach it on.
    pub listeners: Vec<Endpoint>,
    /// Rack, if configured.
    pub rack: Option<String>,
    /// A fenced broker leads nothing and is skipped by replica placement.
    pub fenced: bool,
}

impl BrokerImage {
    pub(crate) fn registered(rec: &BrokerRecord, offset: i64) -> Self {
        Self {
            id: rec.broker_id,
            epoch: offset,
            listeners: rec.listeners.clone(),
            rack: rec.rack.clone(),
            fenced: false,
        }
    }

    /// The endpoint of the named listener, if the broker has one.
    pub fn listener(&self, name: &str) -> Option<&Endpoint> {
        self.listeners.iter().find(|l| l.name == name)
    }
}
