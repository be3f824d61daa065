//! Starts the page-cache writeback of an active segment's bytes soon after they are appended, one chunk at a
//! time, on a background thread.
//!
//! Why: on ext4 (delayed allocation) the kernel's flusher allocates disk blocks for dirty pages when it
//! writes them back, holding the inode's `i_data_sem` for write while it does. Left to itself it writes a
//! segment's pages only once they are 30 s old or the dirty limit is reached, so each pass maps hundreds of
//! MB; an append extending the same file needs that lock (`ext4_da_get_block_prep`) and waited up to 154 ms
//! behind it in `scripts/profile-produce-latency.sh`, on an async worker, holding the partition's lock.
//! Asking for writeback of every chunk right after it is written (`sync_file_range(SYNC_FILE_RANGE_WRITE)`,
//! which queues the I/O and does not wait for it) keeps each allocation small, so the lock is held briefly
//! and often instead of long and rarely, and few dirty pages pile up for the flusher. RocksDB's
//! `bytes_per_sync` does the same for the same reason.
//!
//! This is not durability: nothing waits for the writes, and `flush.messages` / `flush.ms` still decide when
//! a log is fsynced. A request that cannot be queued (the thread is behind) is dropped: the kernel writes the
//! pages back anyway.

use std::fs::File;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, OnceLock};

/// Bytes appended to a segment between two writeback requests.
pub(crate) const CHUNK: u64 = 1 << 20;

/// Requests waiting for the thread; beyond this the newest are dropped.
const QUEUE_DEPTH: usize = 1024;

struct Request {
    file: Arc<File>,
    offset: u64,
    len: u64,
}

/// Asks for the writeback of `len` bytes of `file` from `offset`, without waiting.
pub(crate) fn start(file: &Arc<File>, offset: u64, len: u64) {
    if let Some(queue) = queue() {
        let _ = queue.try_send(Request {
            file: Arc::clone(file),
            offset,
            len,
        });
    }
}

fn queue() -> Option<&'static SyncSender<Request>> {
    static QUEUE: OnceLock<Option<SyncSender<Request>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = sync_channel::<Request>(QUEUE_DEPTH);
            let spawned = std::thread::Builder::new()
                .name("kraftwerk-wback".into())
                .spawn(move || {
                    for request in rx {
                        if let Err(e) = write_back(&request) {
                            tracing::debug!(error = %e, "sync_file_range failed (the kernel writes back anyway)");
                        }
                    }
                });
            match spawned {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::warn!(error = %e, "no segment writeback thread; leaving writeback to the kernel");
                    None
                }
            }
        })
        .as_ref()
}

#[cfg(target_os = "linux")]
fn write_back(request: &Request) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(request.offset),
        libc::off64_t::try_from(request.len),
    ) else {
        return Ok(());
    };
    // SAFETY: the descriptor is open for as long as `request.file` lives, which outlasts the call; the
    // call only reads its integer arguments.
    let rc = unsafe {
        libc::sync_file_range(
            request.file.as_raw_fd(),
            offset,
            len,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn write_back(_request: &Request) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_requested_range_is_written_back_without_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = File::create(dir.path().join("segment")).unwrap();
        file.write_all(&vec![7u8; 2 * CHUNK as usize]).unwrap();
        let file = Arc::new(file);
        write_back(&Request {
            file: Arc::clone(&file),
            offset: 0,
            len: CHUNK,
        })
        .unwrap();
        // Through the queue as appends do; dropping the last handle meanwhile must be harmless.
        start(&file, CHUNK, CHUNK);
        drop(file);
    }
}
