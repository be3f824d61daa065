//! Which `__consumer_offsets` partition owns a group.
//!
//! Clients never compute this, but every broker must agree with Kafka's brokers on it (a mixed or migrated
//! cluster reads the same log), so it reproduces Java exactly: `Utils.abs(groupId.hashCode()) % n`.

/// Java's `String.hashCode()`: `s[0]*31^(n-1) + … + s[n-1]` over UTF-16 code units, wrapping in `i32`.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The partition of a `__consumer_offsets` topic with `num_partitions` partitions that holds `group_id`.
///
/// Kafka's `Utils.abs` maps `i32::MIN` to 0 rather than overflowing. A non-positive partition count is a
/// configuration error upstream; it is treated as one partition so this never divides by zero.
pub fn partition_for(group_id: &str, num_partitions: i32) -> i32 {
    let hash = java_string_hash(group_id);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % num_partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_java() {
        // Values printed by java.lang.String#hashCode.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        // One astral character is two UTF-16 units: 0xD83D * 31 + 0xDE00.
        assert_eq!(java_string_hash("\u{1F600}"), 0xD83D * 31 + 0xDE00);
        // "é" is one UTF-16 unit (0xE9), not its two UTF-8 bytes.
        assert_eq!(java_string_hash("é"), 0xE9);
    }

    #[test]
    fn partition_uses_kafka_abs() {
        assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
        // Integer.MIN_VALUE hashes to partition 0, not a negative number.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        // A negative hash is folded to its absolute value ("my-group" hashes to -1906497762).
        assert_eq!(java_string_hash("my-group"), -1_906_497_762);
        assert_eq!(partition_for("my-group", 50), 12);
        assert_eq!(partition_for("anything", 0), 0);
    }
}
