//! Disk blocks reserved ahead of a segment's appends.
//!
//! A buffered write that extends a file on ext4 goes through delayed allocation: for every page it reserves
//! space, charges quota and records a delayed extent, and the blocks themselves are allocated at writeback.
//! That bookkeeping was ~15% of the broker's CPU when producing into one partition (a `perf` profile of the
//! loadgen's 1 GB, stop 20). Blocks allocated beforehand with `fallocate(FALLOC_FL_KEEP_SIZE)` skip it: the
//! page only finds the extent. Measured on this machine with 64 KiB writes of 1 GiB, the writer's system
//! time went from 0.23–0.26 s to 0.17 s, and the CPU of the whole machine across the writes and a `sync`
//! from 33–35 to 26–28 ticks, so the work is saved, not moved to the writeback threads.
//!
//! `KEEP_SIZE` leaves the file's length at the data's end, so readers, recovery and retention see exactly
//! what they saw before; only the blocks past the end are extra. They are bounded: the reservation grows
//! with the segment (at most as much again as it holds, and never more than [`MAX_AHEAD`] past its end), a
//! segment gives its surplus back when it is sealed, any truncation frees it, and a segment opened with
//! surplus (its process was killed) trims it. Where `fallocate` fails (a full disk, a filesystem without
//! it) the segment stops reserving and writes as before.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// The most a segment reserves past its data: the step that got nearly all of the saving in the
/// measurement above (1 MiB steps got most of it, 256 KiB steps little).
pub(crate) const MAX_AHEAD: u64 = 4 << 20;

/// Surplus that [`trim_found_surplus`] leaves alone: allocation granularity and a fragmented file's
/// extent-tree blocks (counted in its allocated blocks too) are not a reservation.
const SURPLUS_SLACK: u64 = 64 << 10;

/// Block size the reservation rounds to.
const BLOCK: u64 = 4096;

/// The reserved range of one segment's data file: from its data's end to `end`. Public so that a benchmark
/// appending outside a segment (`kraftwerk-bare-io`) reserves by the same rule.
#[derive(Debug, Default)]
pub struct Reservation {
    /// Where the reserved blocks end (0: none known).
    end: u64,
    /// `fallocate` failed once: this segment stops reserving.
    off: bool,
}

impl Reservation {
    /// Makes sure the blocks of `[start, start + len)` are reserved before they are written, reserving more
    /// ahead while at it. A failure only turns reservation off for this segment: the write allocates as
    /// it would have without it.
    pub fn before_write(&mut self, file: &File, start: u64, len: u64) {
        let needed = start.saturating_add(len);
        if self.off || needed <= self.end {
            return;
        }
        let target = round_up(needed.saturating_add(needed.min(MAX_AHEAD)));
        match fallocate_keep_size(file, start, target - start) {
            Ok(()) => self.end = target,
            Err(e) => {
                tracing::debug!(error = %e, "not reserving blocks ahead of this segment's appends");
                self.off = true;
            }
        }
    }

    /// The file was cut to `size` (a truncation frees every block past it): nothing is reserved any more.
    pub(crate) fn truncated(&mut self) {
        self.end = 0;
    }

    /// Frees what this reservation holds past `size`, the data's end: the segment will take no more
    /// appends (it was sealed). Cutting a file to its own length frees the blocks past it.
    pub(crate) fn trim_surplus(&mut self, file: &File, size: u64) -> io::Result<()> {
        let surplus = self.end > round_up(size);
        self.end = 0;
        if surplus {
            file.set_len(size)?;
        }
        Ok(())
    }
}

/// Frees the blocks a segment's data file holds past its data's `size` when there are more than allocation
/// granularity explains (`allocated`, from a `stat` the caller made): the file was the active segment of a
/// process that was killed with blocks reserved.
pub(crate) fn trim_found_surplus(file: &File, size: u64, allocated: u64) -> io::Result<()> {
    if allocated > round_up(size) + SURPLUS_SLACK {
        file.set_len(size)?;
    }
    Ok(())
}

/// `n` rounded up to a whole block.
fn round_up(n: u64) -> u64 {
    n.div_ceil(BLOCK).saturating_mul(BLOCK)
}

/// Bytes allocated on disk by the file `meta` describes.
pub(crate) fn allocated_in(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.blocks().saturating_mul(512)
}

/// `fallocate(2)` with `FALLOC_FL_KEEP_SIZE`: allocates `[offset, offset + len)` without changing the
/// file's length.
fn fallocate_keep_size(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let offset = libc::off_t::try_from(offset).map_err(io::Error::other)?;
    let len = libc::off_t::try_from(len).map_err(io::Error::other)?;
    loop {
        // SAFETY: fallocate reads no memory of ours; the descriptor is open for the borrow of `file`.
        let rc =
            unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, offset, len) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn allocated_bytes(file: &File) -> io::Result<u64> {
        Ok(allocated_in(&file.metadata()?))
    }

    fn write_at_end(file: &mut File, reservation: &mut Reservation, len: usize) {
        let start = file.metadata().unwrap().len();
        reservation.before_write(file, start, len as u64);
        file.write_all(&vec![7u8; len]).unwrap();
    }

    #[test]
    fn reserves_ahead_without_changing_the_length() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = File::create(dir.path().join("s.log")).unwrap();
        let mut r = Reservation::default();
        write_at_end(&mut file, &mut r, 10_000);
        assert_eq!(file.metadata().unwrap().len(), 10_000);
        // As much again as the segment holds, rounded to blocks.
        assert_eq!(r.end, 20_480);
        assert!(allocated_bytes(&file).unwrap() >= 20_480);
    }

    #[test]
    fn the_reservation_grows_with_the_segment_up_to_max_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = File::create(dir.path().join("s.log")).unwrap();
        let mut r = Reservation::default();
        for _ in 0..40 {
            write_at_end(&mut file, &mut r, 1 << 20);
            let len = file.metadata().unwrap().len();
            assert!(
                r.end >= len && r.end - len <= MAX_AHEAD,
                "{} past {len}",
                r.end
            );
        }
        let len = file.metadata().unwrap().len();
        assert_eq!(len, 40 << 20);
        assert!(allocated_bytes(&file).unwrap() <= len + MAX_AHEAD + SURPLUS_SLACK);
    }

    #[test]
    fn trimming_frees_the_blocks_past_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = File::create(dir.path().join("s.log")).unwrap();
        let mut r = Reservation::default();
        write_at_end(&mut file, &mut r, 3 << 20);
        assert!(allocated_bytes(&file).unwrap() >= 6 << 20);
        r.trim_surplus(&file, 3 << 20).unwrap();
        assert_eq!(file.metadata().unwrap().len(), 3 << 20);
        assert!(allocated_bytes(&file).unwrap() <= (3 << 20) + SURPLUS_SLACK);
        // A trimmed reservation starts again at the next write.
        write_at_end(&mut file, &mut r, 1 << 20);
        assert_eq!(r.end, 8 << 20);
    }

    #[test]
    fn surplus_found_in_a_file_is_trimmed_and_none_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = File::create(dir.path().join("s.log")).unwrap();
        let mut r = Reservation::default();
        write_at_end(&mut file, &mut r, 2 << 20);
        // As a killed process left it: nothing in memory knows of the reservation.
        let found = allocated_bytes(&file).unwrap();
        assert!(found >= 4 << 20);
        trim_found_surplus(&file, 2 << 20, found).unwrap();
        assert_eq!(file.metadata().unwrap().len(), 2 << 20);
        let after = allocated_bytes(&file).unwrap();
        assert!(after <= (2 << 20) + SURPLUS_SLACK, "{after}");
        // A file without surplus is not cut.
        let plain = File::create(dir.path().join("p.log")).unwrap();
        (&plain).write_all(&[1u8; 5000]).unwrap();
        trim_found_surplus(&plain, 5000, allocated_bytes(&plain).unwrap()).unwrap();
        assert_eq!(plain.metadata().unwrap().len(), 5000);
    }

    #[test]
    fn a_failing_fallocate_turns_reservation_off() {
        // /dev/null takes writes but not fallocate.
        let file = File::options().write(true).open("/dev/null").unwrap();
        let mut r = Reservation::default();
        r.before_write(&file, 0, 100);
        assert!(r.off);
        assert_eq!(r.end, 0);
        r.before_write(&file, 100, 100);
        assert_eq!(r.end, 0);
    }
}
