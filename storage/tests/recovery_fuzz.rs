//! Property test: whatever happens to the last segment after a crash (and to index files), a
//! reopened log is consistent: every offset from log start to log end reads back as valid,
//! contiguous batches, and appends continue at the log end.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use common::{batch, open, record_offsets, small_config};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Damage {
    Cut(usize),
    Flip(usize, u8),
    Garbage(Vec<u8>),
    DropIndexes,
}

fn damage_strategy() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<usize>().prop_map(Damage::Cut),
        (any::<usize>(), 1..=255u8).prop_map(|(i, b)| Damage::Flip(i, b)),
        proptest::collection::vec(any::<u8>(), 1..200).prop_map(Damage::Garbage),
        Just(Damage::DropIndexes),
    ]
}

fn files(dir: &std::path::Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn reopened_log_is_consistent(
        batches in 1usize..40,
        clean in any::<bool>(),
        damage in proptest::collection::vec(damage_strategy(), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = small_config(3000);
        let mut log = open(dir.path(), config.clone());
        for i in 0..batches {
            log.append(&batch(1 + i % 4, 120, i as u8, i as i64), 0).unwrap();
        }
        let leo_before = log.log_end_offset();
        if clean {
            log.close().unwrap();
        } else {
            drop(log);
        }
        let last = files(dir.path(), "log").pop().unwrap();
        for d in &damage {
            let len = fs::metadata(&last).unwrap().len() as usize;
            match d {
                Damage::Cut(n) if len > 0 => {
                    OpenOptions::new().write(true).open(&last).unwrap()
                        .set_len((n % len) as u64).unwrap();
                }
                // After a clean shutdown only the tail past the last index entry is verified
                // (as in Kafka), so bit rot in the middle is not this test's business.
                Damage::Flip(i, b) if len > 0 && !clean => {
                    let mut bytes = fs::read(&last).unwrap();
                    bytes[i % len] ^= b;
                    fs::write(&last, bytes).unwrap();
                }
                Damage::Garbage(g) => {
                    OpenOptions::new().append(true).open(&last).unwrap().write_all(g).unwrap();
                }
                Damage::DropIndexes => {
                    for p in files(dir.path(), "index").into_iter().chain(files(dir.path(), "timeindex")) {
                        fs::remove_file(p).unwrap();
                    }
                }
                _ => {}
            }
        }
        let mut log = open(dir.path(), config);
        let leo = log.log_end_offset();
        prop_assert!(leo <= leo_before);
        let start = log.log_start_offset();
        prop_assert_eq!(record_offsets(&log, start), (start..leo).collect::<Vec<_>>());
        prop_assert_eq!(log.append(&batch(2, 1, 0, 0), 0).unwrap().base_offset, leo);
        prop_assert_eq!(log.log_end_offset(), leo + 2);
    }
}
