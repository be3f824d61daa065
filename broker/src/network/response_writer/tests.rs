use kraftwerk_storage::batch::{build_batch, HEADER_SIZE};
use kraftwerk_storage::{LogConfig, PartitionLog};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// A log holding `batches` one-record batches of 3000-byte values, a slice covering all of it, and its bytes.
fn log_with_data(dir: &std::path::Path, batches: usize) -> (PartitionLog, FileSlice, Vec<u8>) {
    let mut log = PartitionLog::open(dir, LogConfig::default()).unwrap();
    for i in 0..batches {
        let value = vec![i as u8; 3000];
        let batch = build_batch(0, 0, 1_000, &[(None, Some(&value))]);
        log.append(&batch, 1_000).unwrap();
    }
    let plan = log.plan_read(0, usize::MAX, None).unwrap();
    let slice = plan.resolve().unwrap().records.unwrap();
    let whole = log.read(0, usize::MAX, None).unwrap().records.to_vec();
    assert!(whole.len() > HEADER_SIZE);
    (log, slice, whole)
}

/// A connected pair: the server side split (as a PLAINTEXT connection is) and the client.
async fn pair() -> (OwnedWriteHalf, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (_rd, wr) = accepted.unwrap().0.into_split();
    (wr, client.unwrap())
}

#[tokio::test]
async fn sendfile_sends_the_slice_between_the_bytes_around_it_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, slice, whole) = log_with_data(dir.path(), 400); // ~1.2 MB: more than a socket buffer holds
    let (wr, mut client) = pair().await;
    assert!(wr.tcp().is_some());
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        got
    });
    let mut out = ResponseWriter::new(wr);
    out.write_bytes(b"head").await.unwrap();
    out.write_file(&slice).await.unwrap();
    out.write_bytes(b"tail").await.unwrap();
    out.write_file(&slice).await.unwrap();
    out.flush().await.unwrap();
    drop(out);
    let got = reader.await.unwrap();
    let mut expected = b"head".to_vec();
    expected.extend_from_slice(&whole);
    expected.extend_from_slice(b"tail");
    expected.extend_from_slice(&whole);
    assert_eq!(got.len(), expected.len());
    assert!(got == expected);
}

#[tokio::test]
async fn small_slices_are_copied_between_the_bytes_on_a_raw_socket_too() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, slice, whole) = log_with_data(dir.path(), 2);
    assert!(slice.len() < SENDFILE_MIN);
    let (wr, mut client) = pair().await;
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        got
    });
    let mut out = ResponseWriter::new(wr);
    for _ in 0..3 {
        out.write_bytes(b"h").await.unwrap();
        out.write_file(&slice).await.unwrap();
    }
    assert_eq!(
        out.buf.len(),
        3 * (1 + whole.len()),
        "all queued for one write"
    );
    out.flush().await.unwrap();
    drop(out);
    let got = reader.await.unwrap();
    let mut expected = Vec::new();
    for _ in 0..3 {
        expected.push(b'h');
        expected.extend_from_slice(&whole);
    }
    assert!(got == expected);
}

#[tokio::test]
async fn a_stream_without_a_raw_socket_gets_the_bytes_read_into_the_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, slice, whole) = log_with_data(dir.path(), 200);
    let (client, server) = tokio::io::duplex(16 * 1024);
    let (rd, wr) = tokio::io::split(server);
    assert!(wr.tcp().is_none());
    let reader = tokio::spawn(async move {
        let mut client = client;
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        got
    });
    let mut out = ResponseWriter::new(wr);
    out.write_bytes(b"x").await.unwrap();
    out.write_file(&slice).await.unwrap();
    out.flush().await.unwrap();
    assert!(out.buf.capacity() <= KEEP_CAPACITY);
    drop(out);
    drop(rd);
    let got = reader.await.unwrap();
    let mut expected = b"x".to_vec();
    expected.extend_from_slice(&whole);
    assert!(got == expected);
}

#[tokio::test]
async fn a_slice_whose_file_shrank_is_an_error_not_short_data() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, slice, _) = log_with_data(dir.path(), 10);
    slice.file().set_len(slice.position() + 100).unwrap();
    let (wr, _client) = pair().await;
    let mut out = ResponseWriter::new(wr);
    let err = out.write_file(&slice).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    let (_c, server) = tokio::io::duplex(1 << 20);
    let (_rd, wr) = tokio::io::split(server);
    let mut out = ResponseWriter::new(wr);
    let err = out.write_file(&slice).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
}
