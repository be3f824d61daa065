//! kraftwerk-bare-io: the bytes of a produce or a fetch moved by the simplest program, for a reference point
//! beside the brokers' CPU per GB.
//!
//! The data-path harness reports broker CPU per GB, and most of Kraftwerk's is system time: the kernel's TCP
//! and page-cache work. This binary moves the same bytes with no broker at all, in one thread making blocking
//! calls, and reports that thread's CPU (`getrusage(RUSAGE_THREAD)`) per GB:
//!
//! - `consume`: `sendfile(2)` of a file already in the page cache to a loopback socket, `--chunk` bytes per
//!   call (one partition's fetch); a client thread reads and discards. On loopback the sender's CPU also
//!   carries much of the receiving side's TCP processing (softirqs run on the sending CPU), as a broker's does.
//! - `produce`: a client thread writes `--chunk`-byte pieces to a loopback socket; the server thread reads
//!   each piece, computes its CRC32C (as a broker checks each batch) and appends it to a file with
//!   `write(2)`, with blocks allocated ahead by `fallocate(KEEP_SIZE)` as the segments do, unless
//!   `--no-reserve`.
//!
//! It is a reference, not a lower bound: how the kernel's work is woken and batched moves these figures (on
//! this machine the blocking `sendfile` loop costs more per GB than Kraftwerk's non-blocking sends driven by
//! epoll). What it shows is the order of the kernel's share, which no change to a broker's own code removes.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use kraftwerk_storage::Reservation;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    Consume,
    Produce,
}

#[derive(Parser, Debug)]
#[command(
    about = "The CPU per GB of moving a produce's or a fetch's bytes on loopback with no broker"
)]
struct Args {
    #[arg(value_enum)]
    mode: Mode,
    /// Bytes to move.
    #[arg(long, default_value_t = 1 << 30)]
    bytes: u64,
    /// Bytes per sendfile(2) call (consume) or per piece written, read, checked and appended (produce).
    #[arg(long, default_value_t = 1 << 20)]
    chunk: usize,
    /// The client socket's SO_RCVBUF in bytes (0: the kernel's autotuning). The Java client asks for 64 KiB
    /// (`receive.buffer.bytes`), librdkafka leaves it to the kernel.
    #[arg(long, default_value_t = 0)]
    client_rcvbuf: usize,
    /// The server socket's SO_SNDBUF in bytes (0: the kernel's autotuning).
    #[arg(long, default_value_t = 0)]
    server_sndbuf: usize,
    /// Produce: append without allocating blocks ahead (ext4's per-page delayed allocation).
    #[arg(long)]
    no_reserve: bool,
    /// Directory of the data file (the page cache of its filesystem is what is measured).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Runs; each prints its RESULT line.
    #[arg(long, default_value_t = 3)]
    runs: u32,
}

/// CPU time (user, system) of the calling thread.
fn thread_cpu() -> (Duration, Duration) {
    // SAFETY: getrusage writes the struct we pass and nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_THREAD is the calling thread.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

/// Runs `work` and returns its thread's (user, system) CPU.
fn measured(work: impl FnOnce() -> Result<()>) -> Result<(Duration, Duration)> {
    let (u0, s0) = thread_cpu();
    work()?;
    let (u1, s1) = thread_cpu();
    Ok((u1 - u0, s1 - s0))
}

fn set_buf(stream: &TcpStream, option: libc::c_int, bytes: usize) -> Result<()> {
    if bytes == 0 {
        return Ok(());
    }
    let value = libc::c_int::try_from(bytes).context("buffer size too large")?;
    // SAFETY: setsockopt reads `value` for the length given; the descriptor is open.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error()).context("setsockopt");
    }
    Ok(())
}

/// A connected loopback pair: (server side, client side).
fn loopback_pair(args: &Args) -> Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    set_buf(&client, libc::SO_RCVBUF, args.client_rcvbuf)?;
    let (server, _) = listener.accept()?;
    set_buf(&server, libc::SO_SNDBUF, args.server_sndbuf)?;
    server.set_nodelay(true)?;
    client.set_nodelay(true)?;
    Ok((server, client))
}

fn sendfile_all(socket: &TcpStream, file: &File, bytes: u64, chunk: usize) -> Result<()> {
    let mut offset: libc::off_t = 0;
    let end = libc::off_t::try_from(bytes)?;
    while offset < end {
        let want = chunk.min((end - offset) as usize);
        // SAFETY: sendfile reads the file at `offset` (which it advances) and writes to the socket.
        let n = unsafe { libc::sendfile(socket.as_raw_fd(), file.as_raw_fd(), &mut offset, want) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e).context("sendfile");
        }
        if n == 0 {
            bail!("sendfile wrote nothing at {offset}");
        }
    }
    Ok(())
}

/// Reads and discards `bytes` from `stream`, `buf_len` at a time.
fn drain(mut stream: TcpStream, bytes: u64, buf_len: usize) -> Result<()> {
    let mut buf = vec![0u8; buf_len];
    let mut left = bytes;
    while left > 0 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            bail!("peer closed with {left} bytes to go");
        }
        left -= n as u64;
    }
    Ok(())
}

fn consume(args: &Args) -> Result<()> {
    let path = args.dir.join("bare-io.consume");
    {
        let mut file = File::create(&path)?;
        let piece = vec![0x5au8; 1 << 20];
        let mut left = args.bytes;
        while left > 0 {
            let n = piece.len().min(left as usize);
            file.write_all(&piece[..n])?;
            left -= n as u64;
        }
    }
    let file = File::open(&path)?;
    // Read once so every page is cached, as a fetch of recent data finds it.
    drain_file(&file)?;
    let (server, client) = loopback_pair(args)?;
    let bytes = args.bytes;
    let chunk = args.chunk;
    let reader = thread::spawn(move || measured(|| drain(client, bytes, chunk)));
    let start = Instant::now();
    let (user, sys) = measured(|| sendfile_all(&server, &file, bytes, chunk))?;
    let client_cpu = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))??;
    let wall = start.elapsed();
    drop(server);
    std::fs::remove_file(&path)?;
    report(args, "consume", user, sys, client_cpu, wall);
    Ok(())
}

fn drain_file(mut file: &File) -> Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    while file.read(&mut buf)? > 0 {}
    Ok(())
}

fn produce(args: &Args) -> Result<()> {
    let path = args.dir.join("bare-io.produce");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    let (mut server, mut client) = loopback_pair(args)?;
    let bytes = args.bytes;
    let chunk = args.chunk;
    let writer = thread::spawn(move || {
        measured(|| {
            let piece = vec![0xa5u8; chunk];
            let mut left = bytes;
            while left > 0 {
                let n = piece.len().min(left as usize);
                client.write_all(&piece[..n])?;
                left -= n as u64;
            }
            Ok(())
        })
    });
    let reserve = !args.no_reserve;
    let start = Instant::now();
    let mut checksum = 0u32;
    let (user, sys) = measured(|| {
        let mut buf = vec![0u8; chunk];
        let mut written = 0u64;
        // The segments' own rule: blocks reserved ahead of the appends.
        let mut reservation = Reservation::default();
        while written < bytes {
            let n = chunk.min((bytes - written) as usize);
            server.read_exact(&mut buf[..n])?;
            checksum ^= crc32c::crc32c(&buf[..n]);
            if reserve {
                reservation.before_write(&file, written, n as u64);
            }
            file.write_all(&buf[..n])?;
            written += n as u64;
        }
        Ok(())
    })?;
    let client_cpu = writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    let wall = start.elapsed();
    std::hint::black_box(checksum);
    drop(file);
    std::fs::remove_file(&path)?;
    report(args, "produce", user, sys, client_cpu, wall);
    Ok(())
}

fn per_gb(cpu: Duration, bytes: u64) -> f64 {
    cpu.as_secs_f64() / (bytes as f64 / 1e9)
}

fn report(
    args: &Args,
    mode: &str,
    user: Duration,
    sys: Duration,
    (client_user, client_sys): (Duration, Duration),
    wall: Duration,
) {
    println!(
        "RESULT mode={mode} bytes={} chunk={} client_rcvbuf={} reserve={} server_cpu_s_per_gb={:.3} \
         server_user_s_per_gb={:.3} server_sys_s_per_gb={:.3} client_cpu_s_per_gb={:.3} mib_s={:.0}",
        args.bytes,
        args.chunk,
        args.client_rcvbuf,
        matches!(args.mode, Mode::Produce) && !args.no_reserve,
        per_gb(user + sys, args.bytes),
        per_gb(user, args.bytes),
        per_gb(sys, args.bytes),
        per_gb(client_user + client_sys, args.bytes),
        args.bytes as f64 / (1 << 20) as f64 / wall.as_secs_f64(),
    );
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.chunk == 0 || args.bytes == 0 {
        bail!("--bytes and --chunk must be positive");
    }
    for _ in 0..args.runs {
        match args.mode {
            Mode::Consume => consume(&args)?,
            Mode::Produce => produce(&args)?,
        }
    }
    Ok(())
}
