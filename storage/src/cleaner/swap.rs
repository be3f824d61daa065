//! Swapping cleaned segments in so that a crash at any point leaves either the old segments or the new one,
//! never a mix; and finishing or discarding a swap when a log is opened.
//!
//! For a cleaned segment with base offset `b` replacing the segments in `[b, end)`:
//! 1. `<b>.swap.end` records `end` (written atomically, fsynced), and `<b>.log.cleaned` with its indexes is
//!    fsynced. No lock: a `.swap.end` without a `.swap` is ignored on open.
//! 2. `<b>.log.cleaned` is renamed `<b>.log.swap` under the log's lock, which from then on knows a swap is
//!    pending ([`PartitionLog`] aborts it, durably, before anything truncates or deletes its segments).
//! 3. The directory is fsynced, without the lock: **the commit point**.
//! 4. Without the lock: the replaced segments' files are removed, the cleaned indexes take their final names,
//!    then `<b>.log.swap` becomes `<b>.log`, and the cleaned segments are opened (the old ones stay readable
//!    through their open handles). Then, under the lock, the log's segment list is swapped in memory.
//! 5. Without the lock: the directory is fsynced, then `<b>.swap.end` removed.
//!
//! So the log's lock (which produce and fetch take) is held for a few renames (step 2) and an in-memory swap
//! (step 4); every fsync, unlink and file open is done outside it. Until the in-memory swap, the log settles a
//! pending swap before anything truncates or deletes segments ([`super::pending`]): a swap still staged is
//! aborted (durably), one whose files are installed is swapped in first. On open ([`recover`]): `.cleaned` files are from a cleaning that never committed and are
//! removed; a `<b>.log.swap` committed, so every segment file with a base in `[b, end)` is removed and the swap
//! renamed, its indexes then rebuilt by the normal recovery of a segment without them. Between 2 and 3 the
//! rename may or may not have reached the disk: either way the old segments are intact (nothing changes them
//! while the swap is pending), so completing the swap or discarding it are both correct.
//!
//! [`PartitionLog`]: crate::PartitionLog

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::run::CLEANED_SUFFIX;
use crate::checkpoint::{sync_dir, write_atomically};
use crate::segment::{parse_segment_name, segment_path, INDEX_EXT, LOG_EXT, TIME_INDEX_EXT};
use crate::StorageError;

/// Suffix of a committed cleaned segment not yet renamed into place (Kafka's `.swap`).
pub(crate) const SWAP_SUFFIX: &str = ".swap";
/// Suffix of the file holding the end of the range a swap replaces.
const SWAP_END_SUFFIX: &str = ".swap.end";

fn with_suffix(path: PathBuf, suffix: &str) -> PathBuf {
    let mut os = path.into_os_string();
    os.push(suffix);
    PathBuf::from(os)
}

fn swap_end_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}{SWAP_END_SUFFIX}"))
}

fn rename(from: &Path, to: &Path) -> Result<(), StorageError> {
    fs::rename(from, to).map_err(|e| StorageError::io("rename", from, e))
}

fn remove_if_present(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("remove", path, e)),
    }
}

/// Step 1 (no lock): records the end of the range the cleaned segment at `base` replaces, durably, before the
/// swap can be committed.
pub(crate) fn write_end(dir: &Path, base: i64, end: i64) -> Result<(), StorageError> {
    let name = format!("{base:020}{SWAP_END_SUFFIX}");
    write_atomically(dir, &name, format!("{end}\n").as_bytes())
}

/// Removes the end marker of a swap that will not happen (or is complete and durable).
pub(crate) fn remove_end(dir: &Path, base: i64) -> Result<(), StorageError> {
    remove_if_present(&swap_end_path(dir, base))
}

/// Step 2 (under the lock, no fsync): `<base>.log.cleaned` becomes `<base>.log.swap`. The swap is committed once
/// the directory is fsynced (step 3).
pub(crate) fn stage(dir: &Path, base: i64) -> Result<(), StorageError> {
    let cleaned = with_suffix(segment_path(dir, base, LOG_EXT), CLEANED_SUFFIX);
    let swap = with_suffix(segment_path(dir, base, LOG_EXT), SWAP_SUFFIX);
    rename(&cleaned, &swap)
}

/// Undoes [`stage`] for a swap whose old segments are about to change: removes `<base>.log.swap`, the cleaned
/// indexes and the end marker. The caller fsyncs the directory before changing the old segments, so a crash
/// cannot complete a swap over segments that were truncated or deleted meanwhile.
pub(crate) fn abort(dir: &Path, base: i64) -> Result<(), StorageError> {
    remove_if_present(&with_suffix(segment_path(dir, base, LOG_EXT), SWAP_SUFFIX))?;
    for ext in [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT] {
        remove_if_present(&with_suffix(segment_path(dir, base, ext), CLEANED_SUFFIX))?;
    }
    remove_end(dir, base)
}

/// Step 4 (no lock, no fsync): removes `replaced` (base offsets) and puts the cleaned segment at `base` in place.
/// Order matters: the old segments go before the swap takes its final name, so a crash in between still finds
/// the `.swap` and completes the swap. Idempotent: once `<base>.log.swap` is gone the swap is in place (its
/// rename is the last step), and a retry does nothing.
pub(crate) fn install(dir: &Path, base: i64, replaced: &[i64]) -> Result<(), StorageError> {
    let log = segment_path(dir, base, LOG_EXT);
    let swap = with_suffix(log.clone(), SWAP_SUFFIX);
    if !swap.exists() {
        return Ok(());
    }
    for &old in replaced {
        for ext in [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT] {
            remove_if_present(&segment_path(dir, old, ext))?;
        }
    }
    for ext in [INDEX_EXT, TIME_INDEX_EXT] {
        let final_path = segment_path(dir, base, ext);
        let cleaned = with_suffix(final_path.clone(), CLEANED_SUFFIX);
        if cleaned.exists() {
            rename(&cleaned, &final_path)?;
        }
    }
    rename(&swap, &log)
}

/// Step 5 (no lock): makes the installed swaps at `bases` durable, then drops their end markers (which a
/// `.swap` still on disk would need).
pub(crate) fn finish(dir: &Path, bases: &[i64]) -> Result<(), StorageError> {
    sync_dir(dir)?;
    for &base in bases {
        remove_end(dir, base)?;
    }
    Ok(())
}

/// Completes committed swaps and removes uncommitted cleaner output in `dir`; run before the segments are
/// listed. Returns how many swaps were completed.
pub(crate) fn recover(dir: &Path) -> Result<usize, StorageError> {
    let mut cleaned = Vec::new();
    let mut swaps = Vec::new();
    let mut ends = Vec::new();
    let mut segment_files = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| StorageError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(CLEANED_SUFFIX) || name.ends_with(".swap.end.tmp") {
            cleaned.push(entry.path());
        } else if let Some(base) = name
            .strip_suffix(SWAP_SUFFIX)
            .and_then(|n| parse_segment_name(n, LOG_EXT))
        {
            swaps.push(base);
        } else if let Some(base) = name
            .strip_suffix(SWAP_END_SUFFIX)
            .filter(|n| n.len() == 20)
            .and_then(|n| n.parse::<i64>().ok())
        {
            ends.push(base);
        } else if let Some(base) = [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT]
            .into_iter()
            .find_map(|ext| parse_segment_name(name, ext))
        {
            segment_files.push((base, entry.path()));
        }
    }
    for path in cleaned {
        tracing::info!(path = %path.display(), "removing uncommitted cleaner output");
        remove_if_present(&path)?;
    }
    for &base in &swaps {
        let end = read_swap_end(dir, base).unwrap_or_else(|| {
            tracing::warn!(dir = %dir.display(), base, "swap without its range; replacing one segment");
            base + 1
        });
        for (b, path) in &segment_files {
            if (base..end).contains(b) {
                remove_if_present(path)?;
            }
        }
        let log = segment_path(dir, base, LOG_EXT);
        rename(&with_suffix(log.clone(), SWAP_SUFFIX), &log)?;
        tracing::info!(dir = %dir.display(), base, end, "completed an interrupted segment swap");
    }
    // The completed swaps' renames are made durable before the end markers they would need are removed. With
    // neither (the usual open) there is nothing to make durable: removed uncommitted output that comes back
    // after a crash is removed again. An fsync here at every open cost one per partition at each start and at
    // each partition creation.
    if !swaps.is_empty() || !ends.is_empty() {
        sync_dir(dir)?;
    }
    for base in ends {
        remove_if_present(&swap_end_path(dir, base))?;
    }
    Ok(swaps.len())
}

fn read_swap_end(dir: &Path, base: i64) -> Option<i64> {
    let text = fs::read_to_string(swap_end_path(dir, base)).ok()?;
    text.trim().parse().ok().filter(|&end| end > base)
}
