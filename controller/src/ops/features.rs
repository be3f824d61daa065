//! Finalized features. The first active controller of a new cluster records `metadata.version`, as Kafka's
//! `kafka-storage format` bootstrap does, so Kafka's tools (kafka-metadata-shell, kafka-features) know which
//! record versions the log holds.

use super::OpOutput;
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// The feature that names the metadata record versions in use.
pub const METADATA_VERSION: &str = "metadata.version";
/// Kafka's `MetadataVersion.IBP_4_0_IV3` (4.0's release level): the record versions Kraftwerk writes
/// (RegisterBrokerRecord v3, PartitionRecord/PartitionChangeRecord with directories) are the ones it implies.
pub const METADATA_VERSION_LEVEL: i16 = 25;

/// Records `metadata.version` if the cluster has none yet; nothing otherwise.
pub(crate) fn bootstrap_metadata_version(
    image: &MetadataImage,
) -> OpOutput<Result<(), ControllerError>> {
    let records = if image.features().contains_key(METADATA_VERSION) {
        Vec::new()
    } else {
        vec![MetadataRecord::FeatureLevel {
            name: METADATA_VERSION.to_string(),
            level: METADATA_VERSION_LEVEL,
        }]
    };
    OpOutput {
        records,
        response: Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_once() {
        let image = MetadataImage::empty("c");
        let first = bootstrap_metadata_version(&image);
        assert_eq!(first.records.len(), 1);
        let image = image.apply(0, &first.records);
        assert_eq!(
            image.features().get(METADATA_VERSION),
            Some(&METADATA_VERSION_LEVEL)
        );
        assert!(bootstrap_metadata_version(&image).records.is_empty());
    }
}
