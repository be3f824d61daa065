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
    /// A dynamic broker config: `node_id`'s own value, else the cluster default (`--entity-default`).
    fn dynamic_broker_config(&self, node_id: i32, key: &str) -> Option<&str>;
    /// A topic's `key`, else the dynamic broker value of `broker_key`: what is in force before the static config.
    fn topic_or_dynamic(
        &self,
        topic: &str,
        key: &str,
        node_id: i32,
        broker_key: &str,
    ) -> Option<&str> {
        self.topic_configs(topic)
            .get(key)
            .map(String::as_str)
            .or_else(|| self.dynamic_broker_config(node_id, broker_key))
    }
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

    fn dynamic_broker_config(&self, node_id: i32, key: &str) -> Option<&str> {
        self.resource_configs(&ConfigResource::broker(node_id.to_string()))
            .and_then(|c| c.get(key))
            .or_else(|| {
                self.resource_configs(&ConfigResource::broker(""))
                    .and_then(|c| c.get(key))
            })
            .map(String::as_str)
    }
}
