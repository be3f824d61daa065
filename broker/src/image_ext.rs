//! Small read helpers over the controller's [`MetadataImage`] that several handlers share.

use std::collections::BTreeMap;

use kraftwerk_controller::image::PartitionImage;
use kraftwerk_controller::records::ConfigResource;
use kraftwerk_controller::MetadataImage;

pub trait ImageExt {
    /// A topic's dynamic configs (empty when it has none), borrowed: the produce path reads it per request.
    fn topic_configs(&self, topic: &str) -> &BTreeMap<String, String>;
    fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionImage>;
    /// A registered, unfenced broker.
    fn is_broker_alive(&self, id: i32) -> bool;
}

impl ImageExt for MetadataImage {
    fn topic_configs(&self, topic: &str) -> &BTreeMap<String, String> {
        static NONE: BTreeMap<String, String> = BTreeMap::new();
        self.resource_configs(&ConfigResource::topic(topic))
            .unwrap_or(&NONE)
    }

    fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionImage> {
        self.topic(topic).and_then(|t| t.partitions.get(&partition))
    }

    fn is_broker_alive(&self, id: i32) -> bool {
        self.is_broker_active(id)
    }
}
