//! A broker-only node's metadata: fetch committed entries from the controllers and replay them, forever.

use std::time::Duration;

use tracing::{debug, warn};

use kraftwerk_controller::follower::MetadataFollower;
use kraftwerk_controller::rpc::{ControllerReply, ControllerRequest, ReplyFrame};

use super::channel::MAX_FETCH_BYTES;
use super::controller_client::{ClientError, ControllerClient};

/// Long-poll time of one fetch.
const FETCH_WAIT_MS: u32 = 500;

/// Fetches and applies until the process stops. `fetch_timeout` is `controller.quorum.fetch.timeout.ms`:
/// a controller that does not answer a fetch in that time is given up for another voter.
pub async fn follow(
    client: ControllerClient,
    mut follower: MetadataFollower,
    fetch_timeout: Duration,
) -> ClientError {
    let reply_timeout = fetch_timeout.max(Duration::from_millis(u64::from(FETCH_WAIT_MS) * 2));
    loop {
        let request = ControllerRequest::FetchMetadata {
            from_index: follower.next_index(),
            max_bytes: MAX_FETCH_BYTES,
            max_wait_ms: FETCH_WAIT_MS,
        };
        match client
            .call(&request, Duration::from_secs(3600), reply_timeout)
            .await
        {
            Ok(ReplyFrame {
                reply: ControllerReply::Metadata(Ok(chunk)),
                ..
            }) => {
                if let Some(snapshot) = &chunk.snapshot {
                    tracing::info!(
                        index = snapshot.index,
                        end_offset = snapshot.end_offset,
                        "loading a metadata snapshot from the controller (the log before it was trimmed)"
                    );
                }
                let started = std::time::Instant::now();
                let entries = chunk.entries.len();
                let applied = follower.apply(&chunk);
                if entries > 0 {
                    debug!(
                        entries,
                        apply_us = started.elapsed().as_micros() as u64,
                        "metadata chunk applied"
                    );
                }
                if let Err(e) = applied {
                    warn!(error = %e, "metadata fetch answer does not continue the log; fetching again");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Ok(other) => {
                debug!(reply = ?other.reply, "metadata fetch refused; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e @ ClientError::Refused { .. }) => return e,
            Err(e) => {
                debug!(error = %e, "metadata fetch failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
