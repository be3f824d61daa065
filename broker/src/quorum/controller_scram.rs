//! The SCRAM credentials the controller listener checks logins against. Controllers of a new cluster must log in
//! to each other before anything is committed, so until the committed image holds the bootstrap entry (its
//! `metadata.version`) they come from `bootstrap.checkpoint` (`kraftwerk format --add-scram`); from then on from
//! the image, where AlterUserScramCredentials changes them.

use kraftwerk_controller::records::{ScramCredentialRecord, ScramMechanism};
use kraftwerk_controller::{ControllerHandle, MetadataImage};

use crate::sasl::mechanism::{ScramCredential, ScramStore};
use crate::sasl::Mechanism;

/// The SCRAM credentials a controller listener checks logins against: those of the committed image once the
/// bootstrap entry is in it (its `metadata.version`), before that those of `bootstrap.checkpoint` — controllers
/// of a new cluster must log in to each other before anything is committed.
pub struct ControllerScramStore {
    pub handle: ControllerHandle,
    pub bootstrap: Vec<ScramCredentialRecord>,
}

impl ScramStore for ControllerScramStore {
    fn scram_credential(&self, user: &str, mechanism: Mechanism) -> Option<ScramCredential> {
        let mechanism = match mechanism {
            Mechanism::ScramSha256 => ScramMechanism::Sha256,
            Mechanism::ScramSha512 => ScramMechanism::Sha512,
            Mechanism::Plain => return None,
        };
        let image = self.handle.image();
        let found = lookup(&image, &self.bootstrap, user, mechanism)?;
        Some(ScramCredential {
            salt: found.salt.clone(),
            stored_key: found.stored_key.clone(),
            server_key: found.server_key.clone(),
            iterations: u32::try_from(found.iterations).ok()?,
        })
    }
}

/// The image's credential once the bootstrap entry is committed, the bootstrap file's before.
fn lookup<'a>(
    image: &'a MetadataImage,
    bootstrap: &'a [ScramCredentialRecord],
    user: &str,
    mechanism: ScramMechanism,
) -> Option<&'a ScramCredentialRecord> {
    if image.features().contains_key("metadata.version") {
        image.scram_credential(user, mechanism)
    } else {
        bootstrap
            .iter()
            .find(|c| c.name == user && c.mechanism == mechanism)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kraftwerk_controller::bootstrap::{credential_from_password, records};
    use kraftwerk_controller::records::MetadataRecord;

    #[test]
    fn the_bootstrap_file_until_the_log_holds_the_bootstrap_then_the_image() {
        let m = ScramMechanism::Sha512;
        let boot = vec![credential_from_password("admin", m, b"pw", b"salt", 4096)];
        let empty = MetadataImage::empty("c");
        assert_eq!(lookup(&empty, &boot, "admin", m), boot.first());
        assert_eq!(lookup(&empty, &boot, "admin", ScramMechanism::Sha256), None);
        assert_eq!(lookup(&empty, &boot, "other", m), None);
        // The bootstrap entry committed: the image decides, so a credential changed or removed later counts.
        let committed = empty.apply(0, &records(&boot));
        assert_eq!(lookup(&committed, &[], "admin", m), boot.first());
        let removed = committed.apply(
            1,
            &[MetadataRecord::RemoveUserScramCredential {
                name: "admin".into(),
                mechanism: m,
            }],
        );
        assert_eq!(lookup(&removed, &boot, "admin", m), None);
    }
}
