//! Blocks reserved ahead of the active segment's appends (`fallocate` with `KEEP_SIZE`): lengths never show
//! them, a sealed or closed segment gives them back, and a segment left with them by a killed process is
//! trimmed when it is opened.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{batch, open, record_offsets, small_config};

/// (path, length, allocated bytes) of every segment data file, in offset order.
fn segments(dir: &Path) -> Vec<(PathBuf, u64, u64)> {
    let mut files: Vec<(PathBuf, u64, u64)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| {
            let meta = fs::metadata(&p).unwrap();
            (p, meta.len(), meta.blocks() * 512)
        })
        .collect();
    files.sort();
    files
}

/// Whether `allocated` is no more than `len` needs (whole 4 KiB blocks, and a few for the extent tree).
fn no_surplus(len: u64, allocated: u64) -> bool {
    allocated <= len.div_ceil(4096) * 4096 + (64 << 10)
}

const VALUE: usize = 16 << 10;

#[test]
fn the_active_segment_reserves_ahead_and_sealed_ones_hold_only_their_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config(3 << 20));
    for i in 0..64u8 {
        log.append(&batch(8, VALUE, i, 1_000), 0).unwrap();
    }
    let files = segments(dir.path());
    assert!(files.len() >= 3, "{files:?}");
    let (active, sealed) = files.split_last().unwrap();
    for (path, len, allocated) in sealed {
        assert!(
            no_surplus(*len, *allocated),
            "{path:?}: {len} long, {allocated} allocated"
        );
    }
    let (path, len, allocated) = active;
    assert!(
        *allocated > len + (64 << 10),
        "{path:?}: {len} long, {allocated} allocated"
    );

    log.close().unwrap();
    let (path, len, allocated) = segments(dir.path()).pop().unwrap();
    assert!(
        no_surplus(len, allocated),
        "{path:?} after close: {len} long, {allocated} allocated"
    );
}

#[test]
fn a_segment_killed_with_blocks_reserved_is_trimmed_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(1 << 30);
    let mut log = open(dir.path(), config.clone());
    for i in 0..16u8 {
        log.append(&batch(8, VALUE, i, 1_000), 0).unwrap();
    }
    let (path, len, allocated) = segments(dir.path()).pop().unwrap();
    assert!(
        allocated > len + (64 << 10),
        "{path:?}: {len} long, {allocated} allocated"
    );
    drop(log); // no close: as after kill -9

    let mut log = open(dir.path(), config);
    let (path, len_after, allocated) = segments(dir.path()).pop().unwrap();
    assert_eq!(len_after, len);
    assert!(
        no_surplus(len, allocated),
        "{path:?} reopened: {len} long, {allocated} allocated"
    );
    assert_eq!(record_offsets(&log, 0), (0..128).collect::<Vec<_>>());
    assert_eq!(log.append(&batch(1, 10, 0, 0), 0).unwrap().base_offset, 128);
}

#[test]
fn truncation_gives_the_reservation_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config(1 << 30));
    for i in 0..16u8 {
        log.append(&batch(8, VALUE, i, 1_000), 0).unwrap();
    }
    log.truncate_to(40).unwrap();
    let (path, len, allocated) = segments(dir.path()).pop().unwrap();
    assert!(
        no_surplus(len, allocated),
        "{path:?} truncated: {len} long, {allocated} allocated"
    );
    assert_eq!(record_offsets(&log, 0), (0..40).collect::<Vec<_>>());
    // Appends after it reserve again and land where the data ends.
    assert_eq!(
        log.append(&batch(8, VALUE, 1, 0), 0).unwrap().base_offset,
        40
    );
    let (_, len_after, _) = segments(dir.path()).pop().unwrap();
    assert!(len_after > len);
}
