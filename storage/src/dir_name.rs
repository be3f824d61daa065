//! Naming of partition directories: `<topic>-<partition>`, as Kafka lays out `log.dirs`.

/// The directory name of `topic`'s `partition`.
pub fn partition_dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// Splits a partition directory name back into (topic, partition).
///
/// Topic names may themselves contain '-', so the partition is what follows the last one.
/// Names that are not partition directories (Kafka's `*-delete`/`*-future` dirs, stray
/// files) give `None`.
pub fn parse_partition_dir_name(name: &str) -> Option<(&str, i32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    if topic.is_empty() || partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let partition: i32 = partition.parse().ok()?;
    Some((topic, partition))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_topics_with_dashes() {
        let name = partition_dir_name("my-topic.v2", 17);
        assert_eq!(name, "my-topic.v2-17");
        assert_eq!(parse_partition_dir_name(&name), Some(("my-topic.v2", 17)));
    }

    #[test]
    fn rejects_non_partition_names() {
        for bad in [
            "topic",
            "-3",
            "topic-",
            "topic-x",
            "topic-0.abc-delete",
            "topic-99999999999",
            "topic-+1",
        ] {
            assert_eq!(parse_partition_dir_name(bad), None, "{bad}");
        }
    }
}
