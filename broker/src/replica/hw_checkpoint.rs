//! The high-watermark checkpoint of a log directory, Kafka's `replication-offset-checkpoint`: a replica
//! restarts with the high watermark it last knew instead of its log end, so a follower (which serves
//! consumers, KIP-392) or a leader waiting for its followers never shows a consumer records that were not
//! committed and may still be truncated away. The high watermark is only ever lower than the truth after a
//! crash (the file is written every `replica.high.watermark.checkpoint.interval.ms` and at shutdown): safe, it
//! advances again as soon as the ISR confirms.
//!
//! Kafka's text format, version 0: the version, the number of entries, then `topic partition offset` lines.
//! Pure parsing and rendering here; the file is replaced atomically (write aside, fsync, rename).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use super::manager::TopicPartition;

/// The file's name in each log directory (Kafka's).
pub const FILE_NAME: &str = "replication-offset-checkpoint";
const VERSION: i32 = 0;

/// Why a checkpoint file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("malformed {path} at line {line}: {reason}")]
    Malformed {
        path: String,
        line: usize,
        reason: &'static str,
    },
}

/// Parses the file's text. `path` is only for messages.
pub fn parse(text: &str, path: &str) -> Result<HashMap<TopicPartition, i64>, CheckpointError> {
    let bad = |line: usize, reason| CheckpointError::Malformed {
        path: path.to_string(),
        line,
        reason,
    };
    let mut lines = text.lines().enumerate();
    let version: i32 = lines
        .next()
        .and_then(|(_, l)| l.trim().parse().ok())
        .ok_or_else(|| bad(1, "no version"))?;
    if version != VERSION {
        return Err(bad(1, "unknown version"));
    }
    let count: usize = lines
        .next()
        .and_then(|(_, l)| l.trim().parse().ok())
        .ok_or_else(|| bad(2, "no entry count"))?;
    let mut out = HashMap::with_capacity(count.min(1 << 20));
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        // A topic name has no spaces: split from the right so the fields are unambiguous.
        let mut fields = line.rsplitn(3, ' ');
        let offset = fields.next().and_then(|f| f.parse::<i64>().ok());
        let partition = fields.next().and_then(|f| f.parse::<i32>().ok());
        let topic = fields.next().filter(|t| !t.is_empty());
        match (topic, partition, offset) {
            (Some(topic), Some(partition), Some(offset)) if offset >= 0 => {
                out.insert(
                    TopicPartition {
                        topic: topic.to_string(),
                        partition,
                    },
                    offset,
                );
            }
            _ => return Err(bad(i + 1, "expected `topic partition offset`")),
        }
    }
    if out.len() != count {
        return Err(bad(2, "entry count does not match the entries"));
    }
    Ok(out)
}

/// Renders entries in Kafka's format (sorted, so the file is stable).
pub fn render(entries: &[(TopicPartition, i64)]) -> String {
    let mut sorted: Vec<&(TopicPartition, i64)> = entries.iter().collect();
    sorted.sort();
    let mut out = format!("{VERSION}\n{}\n", sorted.len());
    for (tp, offset) in sorted {
        out.push_str(&format!("{} {} {offset}\n", tp.topic, tp.partition));
    }
    out
}

/// Reads `dir`'s checkpoint; a missing file is an empty checkpoint.
pub fn read(dir: &Path) -> Result<HashMap<TopicPartition, i64>, CheckpointError> {
    let path = dir.join(FILE_NAME);
    let shown = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text, &shown),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
        Err(source) => Err(CheckpointError::Io {
            path: shown,
            source,
        }),
    }
}

/// Replaces `dir`'s checkpoint with `entries`: a crash leaves the old file or the new one, never a torn one.
pub fn write(dir: &Path, entries: &[(TopicPartition, i64)]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(render(entries).as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(FILE_NAME))?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.to_string(),
            partition,
        }
    }

    #[test]
    fn round_trips_in_kafkas_format() {
        let entries = vec![(tp("orders", 1), 42), (tp("__consumer_offsets", 7), 0)];
        let text = render(&entries);
        assert_eq!(text, "0\n2\n__consumer_offsets 7 0\norders 1 42\n");
        let parsed = parse(&text, "f").expect("parses");
        assert_eq!(parsed.get(&tp("orders", 1)), Some(&42));
        assert_eq!(parsed.get(&tp("__consumer_offsets", 7)), Some(&0));
    }

    #[test]
    fn refuses_malformed_files() {
        for text in [
            "",
            "1\n0\n",
            "0\n2\na 0 1\n",
            "0\n1\na zero 1\n",
            "0\n1\na 0 -5\n",
        ] {
            assert!(parse(text, "f").is_err(), "{text:?}");
        }
    }

    #[test]
    fn write_then_read_and_missing_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read(dir.path()).expect("missing is fine").is_empty());
        write(dir.path(), &[(tp("t", 0), 9)]).expect("write");
        assert_eq!(read(dir.path()).expect("read").get(&tp("t", 0)), Some(&9));
        write(dir.path(), &[]).expect("rewrite");
        assert!(read(dir.path()).expect("read").is_empty());
    }
}
