//! Small read helpers over the controller's [`MetadataImage`] that several handlers share.

use std::collections::BTreeMap;

use kraftwerk_controller::image::PartitionImage;
use kraftwerk_controller::records::ConfigResource;
use kraftwerk_controller::MetadataImage;

pub trait ImageExt {
    /// A topic's dynamic configs (empty when it has none).
    fn topic_configs(&self, topic: &str) -> BTreeMap<String, String>;
    fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionImage>;
    /// A registered, unfenced broker.
    fn is_broker_alive(&self, id: i32) -> bool;
}

impl ImageExt for MetadataImage {
    fn topic_configs(&self, topic: &str) -> BTreeMap<String, String> {
        self.resource_configs(&ConfigResource::topic(topic))
            .cloned()
            .unwrap_or_default()
    }

    fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionImage> {
        self.topic(topic).and_then(|t| t.partitions.get(&partition))
    }

    fn is_broker_alive(&self, id: i32) -> bool {
        self.is_broker_active(id)
    }
}
