//! Pluggable policies, the counterpart of Kafka's `create.topic.policy.class.name` and
//! `alter.config.policy.class.name`: an operator-supplied check that runs after the built-in
//! validation and turns a rejection into POLICY_VIOLATION.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::records::ConfigResource;

/// What a create-topic policy sees (Kafka's `CreateTopicPolicy.RequestMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopicRequest<'a> {
    /// Topic name.
    pub topic: &'a str,
    /// Requested partition count (defaults applied); `None` with explicit assignments.
    pub num_partitions: Option<i32>,
    /// Requested replication factor (defaults applied); `None` with explicit assignments.
    pub replication_factor: Option<i16>,
    /// Explicit assignments by partition, if any.
    pub assignments: Option<&'a BTreeMap<i32, Vec<i32>>>,
    /// Config overrides.
    pub configs: &'a BTreeMap<String, String>,
}

/// Vets topic creations.
pub trait CreateTopicPolicy: Send + Sync {
    /// `Err(message)` rejects the topic with POLICY_VIOLATION and that message.
    fn validate(&self, request: &CreateTopicRequest<'_>) -> Result<(), String>;
}

/// Vets config changes; sees the resource's complete set of overrides after the change.
pub trait AlterConfigPolicy: Send + Sync {
    /// `Err(message)` rejects the change with POLICY_VIOLATION and that message.
    fn validate(
        &self,
        resource: &ConfigResource,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), String>;
}

/// The policies in force; by default none.
#[derive(Clone, Default)]
pub struct Policies {
    /// Checked for every topic creation.
    pub create_topic: Option<Arc<dyn CreateTopicPolicy>>,
    /// Checked for every config change.
    pub alter_config: Option<Arc<dyn AlterConfigPolicy>>,
}

impl fmt::Debug for Policies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policies")
            .field("create_topic", &self.create_topic.is_some())
            .field("alter_config", &self.alter_config.is_some())
            .finish()
    }
}
