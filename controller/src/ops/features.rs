//! Finalized features. The first active controller of a new cluster records `metadata.version`, as Kafka's
//! `kafka-storage format` bootstrap does, so Kafka's tools (kafka-metadata-shell, kafka-features) know which
//! record versions the log holds; with it, in the same entry, the rest of the bootstrap records (SCRAM
//! credentials from `kraftwerk format --add-scram`, see `crate::bootstrap`).

use super::OpOutput;
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// The feature that names the metadata record versions in use.
pub const METADATA_VERSION: &str = "metadata.version";
/// Kafka's `MetadataVersion.IBP_4_0_IV3` (4.0's release level): the record versions Kraftwerk writes
/// (RegisterBrokerRecord v3, PartitionRecord/PartitionChangeRecord with directories) are the ones it implies.
pub const METADATA_VERSION_LEVEL: i16 = 25;

/// Records `metadata.version` and the other `bootstrap` records (those of `bootstrap.checkpoint`) if the
/// cluster has no `metadata.version` yet; nothing otherwise. `metadata.version` is what marks the bootstrap as
/// written, so it is always part of the entry (the file's level, else Kraftwerk's).
pub(crate) fn bootstrap_metadata(
    image: &MetadataImage,
    bootstrap: &[MetadataRecord],
) -> OpOutput<Result<(), ControllerError>> {
    let records = if image.features().contains_key(METADATA_VERSION) {
        Vec::new()
    } else {
        let has_version = bootstrap.iter().any(
            |r| matches!(r, MetadataRecord::FeatureLevel { name, .. } if name == METADATA_VERSION),
        );
        let mut records = Vec::with_capacity(bootstrap.len() + 1);
        if !has_version {
            records.push(MetadataRecord::FeatureLevel {
                name: METADATA_VERSION.to_string(),
                level: METADATA_VERSION_LEVEL,
            });
        }
        records.extend(bootstrap.iter().cloned());
        records
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
        let first = bootstrap_metadata(&image, &[]);
        assert_eq!(first.records.len(), 1);
        let image = image.apply(0, &first.records);
        assert_eq!(
            image.features().get(METADATA_VERSION),
            Some(&METADATA_VERSION_LEVEL)
        );
        assert!(bootstrap_metadata(&image, &[]).records.is_empty());
    }

    #[test]
    fn bootstrap_credentials_are_written_with_the_version() {
        use crate::records::ScramMechanism;
        let c = crate::bootstrap::credential_from_password(
            "admin",
            ScramMechanism::Sha256,
            b"pw",
            b"salt",
            4096,
        );
        let image = MetadataImage::empty("c");
        let out = bootstrap_metadata(&image, &crate::bootstrap::records(std::slice::from_ref(&c)));
        assert_eq!(out.records.len(), 2, "{:?}", out.records);
        let image = image.apply(0, &out.records);
        assert_eq!(
            image.scram_credential("admin", ScramMechanism::Sha256),
            Some(&c)
        );
        // Only once: a later leader with another bootstrap file changes nothing.
        let other = crate::bootstrap::credential_from_password(
            "admin",
            ScramMechanism::Sha256,
            b"other",
            b"salt",
            4096,
        );
        assert!(
            bootstrap_metadata(&image, &crate::bootstrap::records(&[other]))
                .records
                .is_empty()
        );
    }
}
