//! The dynamic configs part of the image.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::records::{ConfigRecord, ConfigResource};

/// Dynamic config overrides per resource. Only keys someone set are here: defaults and static
/// broker configs live with their definitions (see `topic_configs`).
pub type ConfigsMap = BTreeMap<ConfigResource, BTreeMap<String, String>>;

#[derive(Debug, Clone, Default)]
pub(crate) struct ConfigsImage {
    pub(crate) map: Arc<ConfigsMap>,
}

impl ConfigsImage {
    pub(crate) fn apply(&mut self, rec: &ConfigRecord) {
        let map = Arc::make_mut(&mut self.map);
        match &rec.value {
            Some(value) => {
                map.entry(rec.resource.clone())
                    .or_default()
                    .insert(rec.name.clone(), value.clone());
            }
            None => {
                if let Some(entries) = map.get_mut(&rec.resource) {
                    entries.remove(&rec.name);
                    if entries.is_empty() {
                        map.remove(&rec.resource);
                    }
                }
            }
        }
    }

    pub(crate) fn remove_resource(&mut self, resource: &ConfigResource) {
        if self.map.contains_key(resource) {
            Arc::make_mut(&mut self.map).remove(resource);
        }
    }
}
