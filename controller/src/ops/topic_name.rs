//! Kafka's topic name rules (`org.apache.kafka.common.internals.Topic`).

use crate::error::ControllerError;
use crate::image::MetadataImage;

/// Longest legal topic name.
pub const MAX_NAME_LENGTH: usize = 249;

/// Checks a name is legal: non-empty, not "." or "..", at most 249 characters of
/// `[a-zA-Z0-9._-]`. Fails with INVALID_TOPIC_EXCEPTION and Kafka's message.
pub fn validate(name: &str) -> Result<(), ControllerError> {
    if name.is_empty() {
        return Err(ControllerError::InvalidTopic(
            "Topic name is illegal, it can't be empty".into(),
        ));
    }
    if name == "." || name == ".." {
        return Err(ControllerError::InvalidTopic(
            "Topic name cannot be \".\" or \"..\"".into(),
        ));
    }
    if name.len() > MAX_NAME_LENGTH {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic name is illegal, it can't be longer than {MAX_NAME_LENGTH} characters, topic name: {name}"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// Metric names replace '.' with '_', so "a.b" and "a_b" cannot coexist. Returns the existing
/// topic `name` would collide with.
pub fn colliding_topic<'a>(image: &'a MetadataImage, name: &str) -> Option<&'a str> {
    let normalized = normalize(name);
    image
        .topics_by_name()
        .keys()
        .find(|existing| existing.as_str() != name && normalize(existing) == normalized)
        .map(String::as_str)
}

fn normalize(name: &str) -> String {
    name.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::MetadataRecord;
    use uuid::Uuid;

    #[test]
    fn legal_names() {
        for name in ["a", "a.b", "A_b-9", "...", &"x".repeat(249)] {
            validate(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn illegal_names() {
        let long = "x".repeat(250);
        for name in ["", ".", "..", "a b", "a/b", "ä", "a:b", long.as_str()] {
            let err = validate(name).unwrap_err();
            assert_eq!(err.error_code(), 17, "{name}");
        }
        assert_eq!(
            validate("").unwrap_err().message(),
            "Topic name is illegal, it can't be empty"
        );
    }

    #[test]
    fn collisions() {
        let image = MetadataImage::empty("c").apply(
            0,
            &[MetadataRecord::Topic {
                name: "a_b".into(),
                id: Uuid::from_u128(1),
            }],
        );
        assert_eq!(colliding_topic(&image, "a.b"), Some("a_b"));
        assert_eq!(colliding_topic(&image, "a_b"), None);
        assert_eq!(colliding_topic(&image, "ab"), None);
    }
}
