//! Per-topic answer lists built in two halves, as Kafka's OffsetCommit and OffsetDelete handlers build them:
//! first the partitions the broker answers itself (unknown topics and partitions), then the group
//! coordinator's, each appended to the entry of its topic if there is one.

/// `first`, then every topic of `then` merged into the entry `same_topic` matches (its partitions appended
/// by `extend`) or added after the others.
pub fn merge_by_topic<T>(
    first: Vec<T>,
    then: Vec<T>,
    same_topic: impl Fn(&T, &T) -> bool,
    extend: impl Fn(&mut T, T),
) -> Vec<T> {
    let mut topics = first;
    for topic in then {
        match topics.iter_mut().find(|t| same_topic(t, &topic)) {
            Some(existing) => extend(existing, topic),
            None => topics.push(topic),
        }
    }
    topics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_topics_join_their_entry_or_follow() {
        let merged = merge_by_topic(
            vec![("a", vec![1]), ("b", vec![2])],
            vec![("b", vec![3]), ("c", vec![4])],
            |x, y| x.0 == y.0,
            |x, y| x.1.extend(y.1),
        );
        assert_eq!(
            merged,
            vec![("a", vec![1]), ("b", vec![2, 3]), ("c", vec![4])]
        );
    }
}
