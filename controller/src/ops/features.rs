//! Finalized features. The first active controller of a new cluster records `metadata.version`, as Kafka's
//! `kafka-storage format` bootstrap does, so Kafka's tools (kafka-metadata-shell, kafka-features) know which
//! record versions the log holds; with it, in the same entry, the rest of the bootstrap records (SCRAM
//! credentials from `kraftwerk format --add-scram`, see `crate::bootstrap`). UpdateFeatures changes finalized
//! levels within what [`SUPPORTED_FEATURES`] says this build can run at.

use super::OpOutput;
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// The feature that names the metadata record versions in use.
pub const METADATA_VERSION: &str = "metadata.version";
/// Kafka's `MetadataVersion.IBP_4_0_IV3` (4.0's release level): the record versions Kraftwerk writes
/// (RegisterBrokerRecord v3, PartitionRecord/PartitionChangeRecord with directories) are the ones it implies.
pub const METADATA_VERSION_LEVEL: i16 = 25;

/// The feature that says whether the controller quorum can change its voters (KIP-853): 0 for a quorum that
/// runs on the static `controller.quorum.voters`, 1 once it has been upgraded (`kafka-features upgrade --feature
/// kraft.version=1`). Kafka keeps it in a KRaftVersionRecord control record of the raft log; Kraftwerk keeps it
/// as a FeatureLevelRecord in the metadata log, so it is in every image (brokers' included), in snapshots and
/// across restarts. Level 0 is the absence of the record, as for every feature.
pub const KRAFT_VERSION: &str = "kraft.version";

/// The kraft.version of `image`: 0 until an upgrade has been recorded.
pub fn kraft_version(image: &MetadataImage) -> i16 {
    image.features().get(KRAFT_VERSION).copied().unwrap_or(0)
}

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

/// The finalized feature levels this build of Kraftwerk can run at, as Kafka's `BrokerFeatures` advertises its
/// own (every node runs the same table): `metadata.version` only at the level whose record versions Kraftwerk
/// writes, `kraft.version` 0 (static voters) and 1 (KIP-853 voter changes), and the features of Kafka 4.x that
/// Kraftwerk does not implement (the KIP-848 consumer protocol, transactions v2, ELR, share groups, streams
/// groups) only at level 0.
pub const SUPPORTED_FEATURES: &[(&str, i16, i16)] = &[
    ("eligible.leader.replicas.version", 0, 0),
    ("group.version", 0, 0),
    (KRAFT_VERSION, 0, 1),
    (
        METADATA_VERSION,
        METADATA_VERSION_LEVEL,
        METADATA_VERSION_LEVEL,
    ),
    ("share.version", 0, 0),
    ("streams.version", 0, 0),
    ("transaction.version", 0, 0),
];

/// UpdateFeatures' upgrade types (`FeatureUpdate.UpgradeType`).
pub const UPGRADE: i8 = 1;
pub const SAFE_DOWNGRADE: i8 = 2;
pub const UNSAFE_DOWNGRADE: i8 = 3;

/// One change asked by UpdateFeatures.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FeatureUpdate {
    pub name: String,
    pub level: i16,
    /// [`UPGRADE`], [`SAFE_DOWNGRADE`] or [`UNSAFE_DOWNGRADE`]; anything else is refused.
    pub upgrade_type: i8,
}

/// UpdateFeatures, as Kafka's `FeatureControlManager.updateFeatures` decides it: every update is checked
/// (the first failure fails the whole request, INVALID_UPDATE_VERSION naming the feature) and, unless
/// `validate_only`, all of them are written together as FeatureLevelRecords.
pub(crate) fn update_features(
    image: &MetadataImage,
    node_id: i32,
    updates: &[FeatureUpdate],
    validate_only: bool,
) -> OpOutput<Result<(), ControllerError>> {
    let mut records = Vec::with_capacity(updates.len());
    for u in updates {
        if let Err(reason) = check_update(image, node_id, u) {
            return OpOutput {
                records: Vec::new(),
                response: Err(ControllerError::InvalidUpdateVersion(format!(
                    "The update failed for all features since the following feature had an error: \
                     Invalid update version {} for feature {}. {reason}",
                    u.level, u.name
                ))),
            };
        }
        if u.name == KRAFT_VERSION && u.level == kraft_version(image) {
            // Kafka's upgrade to the current kraft.version appends nothing (a NoOpRecord); a "downgrade" to it
            // is accepted as is.
            continue;
        }
        records.push(MetadataRecord::FeatureLevel {
            name: u.name.clone(),
            level: u.level,
        });
    }
    OpOutput {
        records: if validate_only { Vec::new() } else { records },
        response: Ok(()),
    }
}

/// Refuses raising kraft.version to a level some voter does not support (the range each voter declared, from
/// the static configuration or its UpdateRaftVoter), as Kafka's leader refuses the upgrade. The voters are the
/// quorum's membership, which is not part of the image, so the caller passes them in.
pub fn check_voters_support(
    voters: &[crate::membership::Member],
    updates: &[FeatureUpdate],
) -> Result<(), ControllerError> {
    for u in updates
        .iter()
        .filter(|u| u.name == KRAFT_VERSION && u.upgrade_type == UPGRADE && u.level > 0)
    {
        let unsupported: Vec<i32> = voters
            .iter()
            .filter(|v| !(v.kraft_version.0..=v.kraft_version.1).contains(&u.level))
            .map(|v| v.id)
            .collect();
        if !unsupported.is_empty() {
            return Err(ControllerError::InvalidUpdateVersion(format!(
                "The update failed for all features since the following feature had an error: Invalid \
                 upgrade of {KRAFT_VERSION} to {} because not all of the voters support it (voters {unsupported:?} \
                 do not)",
                u.level
            )));
        }
    }
    Ok(())
}

/// Why `u` cannot be applied, in Kafka's words.
fn check_update(image: &MetadataImage, node_id: i32, u: &FeatureUpdate) -> Result<(), String> {
    if !matches!(u.upgrade_type, UPGRADE | SAFE_DOWNGRADE | UNSAFE_DOWNGRADE) {
        return Err("The controller does not support the given upgrade type.".into());
    }
    if u.level < 0 {
        return Err("A feature version cannot be less than 0.".into());
    }
    // An unknown feature is supported at level 0 only (Kafka's DISABLED range).
    let (min, max) = SUPPORTED_FEATURES
        .iter()
        .find(|(name, _, _)| *name == u.name)
        .map_or((0, 0), |&(_, min, max)| (min, max));
    if !(min..=max).contains(&u.level) {
        return Err(if max == 0 {
            format!("Local controller {node_id} does not support this feature.")
        } else {
            format!("Local controller {node_id} only supports versions {min}-{max}")
        });
    }
    let current = image.features().get(&u.name).copied().unwrap_or(0);
    if u.level < current && u.upgrade_type == UPGRADE {
        return Err(
            "Can't downgrade the version of this feature without setting the upgrade type \
                    to either safe or unsafe downgrade."
                .into(),
        );
    }
    if u.level > current && u.upgrade_type != UPGRADE {
        return Err("Can't downgrade to a newer version.".into());
    }
    if u.name == KRAFT_VERSION && u.upgrade_type != UPGRADE && u.level != current {
        // As Kafka's FeatureControlManager: kraft.version only goes up (a quorum that has changed its voters
        // cannot go back to the static list).
        return Err("Can't downgrade the version of this feature.".into());
    }
    if !SUPPORTED_FEATURES
        .iter()
        .any(|(name, _, _)| *name == u.name)
    {
        return Err(format!("Feature {} not found.", u.name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(name: &str, level: i16, upgrade_type: i8) -> FeatureUpdate {
        FeatureUpdate {
            name: name.into(),
            level,
            upgrade_type,
        }
    }

    fn bootstrapped() -> MetadataImage {
        let image = MetadataImage::empty("c");
        let out = bootstrap_metadata(&image, &[]);
        image.apply(0, &out.records)
    }

    fn refused(updates: &[FeatureUpdate]) -> String {
        match update_features(&bootstrapped(), 1, updates, false) {
            OpOutput {
                records,
                response: Err(ControllerError::InvalidUpdateVersion(m)),
            } if records.is_empty() => m,
            other => panic!("expected INVALID_UPDATE_VERSION, got {other:?}"),
        }
    }

    #[test]
    fn levels_kraftwerk_supports_are_written_together() {
        let out = update_features(
            &bootstrapped(),
            1,
            &[
                update(METADATA_VERSION, METADATA_VERSION_LEVEL, UPGRADE),
                update("group.version", 0, UPGRADE),
            ],
            false,
        );
        assert_eq!(out.response, Ok(()));
        assert_eq!(out.records.len(), 2);
        let validate = update_features(
            &bootstrapped(),
            1,
            &[update("group.version", 0, UPGRADE)],
            true,
        );
        assert_eq!(validate.response, Ok(()));
        assert!(validate.records.is_empty());
    }

    #[test]
    fn unsupported_levels_unknown_features_and_bad_upgrade_types_fail_the_whole_request() {
        let m = refused(&[
            update("group.version", 0, UPGRADE),
            update("group.version", 1, UPGRADE),
        ]);
        assert!(m.contains("does not support this feature"), "{m}");
        let m = refused(&[update(METADATA_VERSION, 20, SAFE_DOWNGRADE)]);
        assert!(m.contains("only supports versions 25-25"), "{m}");
        let m = refused(&[update("no.such.feature", 0, UPGRADE)]);
        assert!(m.contains("Feature no.such.feature not found."), "{m}");
        let m = refused(&[update("no.such.feature", 1, UPGRADE)]);
        assert!(m.contains("does not support this feature"), "{m}");
        let m = refused(&[update("group.version", -1, UPGRADE)]);
        assert!(m.contains("cannot be less than 0"), "{m}");
        let m = refused(&[update("group.version", 0, 0)]);
        assert!(m.contains("upgrade type"), "{m}");
    }

    #[test]
    fn kraft_version_goes_up_once_and_never_down() {
        let image = bootstrapped();
        assert_eq!(kraft_version(&image), 0);
        // Upgrading to the current level writes nothing; validate_only writes nothing.
        let same = update_features(&image, 1, &[update(KRAFT_VERSION, 0, UPGRADE)], false);
        assert_eq!(same.response, Ok(()));
        assert!(same.records.is_empty());
        let validate = update_features(&image, 1, &[update(KRAFT_VERSION, 1, UPGRADE)], true);
        assert_eq!(validate.response, Ok(()));
        assert!(validate.records.is_empty());
        let m = refused(&[update(KRAFT_VERSION, 2, UPGRADE)]);
        assert!(m.contains("only supports versions 0-1"), "{m}");
        let up = update_features(&image, 1, &[update(KRAFT_VERSION, 1, UPGRADE)], false);
        assert_eq!(up.response, Ok(()));
        let image = image.apply(image.next_offset(), &up.records);
        assert_eq!(kraft_version(&image), 1);
        for (level, upgrade_type, reason) in [
            (0, UPGRADE, "without setting the upgrade type"),
            (
                0,
                SAFE_DOWNGRADE,
                "Can't downgrade the version of this feature.",
            ),
            (
                0,
                UNSAFE_DOWNGRADE,
                "Can't downgrade the version of this feature.",
            ),
        ] {
            match update_features(
                &image,
                1,
                &[update(KRAFT_VERSION, level, upgrade_type)],
                false,
            ) {
                OpOutput {
                    records,
                    response: Err(ControllerError::InvalidUpdateVersion(m)),
                } if records.is_empty() => assert!(m.contains(reason), "{m}"),
                other => panic!("downgrade of kraft.version accepted: {other:?}"),
            }
        }
        // A "downgrade" to the level it is at is no change, as in Kafka.
        let same = update_features(
            &image,
            1,
            &[update(KRAFT_VERSION, 1, SAFE_DOWNGRADE)],
            false,
        );
        assert_eq!(same.response, Ok(()));
        assert!(same.records.is_empty());
    }

    #[test]
    fn kraft_version_needs_every_voter_to_support_it() {
        let voter = |id: i32, range: (i16, i16)| crate::membership::Member {
            id,
            directory_id: uuid::Uuid::nil(),
            endpoints: Vec::new(),
            kraft_version: range,
        };
        let up = [update(KRAFT_VERSION, 1, UPGRADE)];
        assert_eq!(
            check_voters_support(&[voter(1, (0, 1)), voter(2, (0, 1))], &up),
            Ok(())
        );
        match check_voters_support(&[voter(1, (0, 1)), voter(2, (0, 0))], &up) {
            Err(ControllerError::InvalidUpdateVersion(m)) => {
                assert!(m.contains("not all of the voters support it"), "{m}");
                assert!(m.contains("[2]"), "{m}");
            }
            other => panic!("upgrade past a voter's range accepted: {other:?}"),
        }
        // Other features are not the voters' business.
        let other = [update("group.version", 0, UPGRADE)];
        assert_eq!(check_voters_support(&[voter(2, (0, 0))], &other), Ok(()));
    }

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
