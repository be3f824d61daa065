//! GetTelemetrySubscriptions (71) and PushTelemetry (72), KIP-714, answered as Kafka's `ClientMetricsManager`
//! answers them when no metrics plugin is configured.
//!
//! Without a plugin Kafka does not advertise these APIs in ApiVersions (its clients then never send them), yet
//! still serves them to a client that sends them anyway. Kraftwerk has no metrics plugin, so it does the same:
//! they are served but not advertised (`SupportedApis::serve_unadvertised`). With no client-metrics resources
//! every client gets the empty subscription: no metrics, the default 5-minute push interval, and a subscription
//! id that is Kafka's CRC32C of the subscription XOR the Java hash of the client instance id, so a client sees
//! the same id from either broker. The per-instance checks are Kafka's: one GetTelemetrySubscriptions per push
//! interval, one push per interval (or right after a get), the subscription id and compression type of the
//! subscription, the size limit, and nothing after a terminating push. Pushed metrics go nowhere: there is no
//! plugin to export them to, as in Kafka. An instance is forgotten when its connection closes, or after
//! max(60 s, 3 push intervals) without requests.

use std::collections::HashMap;
use std::net::SocketAddr;

use kafka_protocol::messages::{
    GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse, PushTelemetryRequest,
    PushTelemetryResponse,
};
use kafka_protocol::ResponseError;
use parking_lot::Mutex;
use uuid::Uuid;

use crate::context::ConnectionInfo;

/// `ClientMetricsConfigs.DEFAULT_INTERVAL_MS`: the push interval when no subscription sets one.
pub const DEFAULT_PUSH_INTERVAL_MS: i32 = 5 * 60 * 1000;
/// Kafka's `telemetry.max.bytes` default: the largest metrics payload a push may carry.
pub const TELEMETRY_MAX_BYTES: i32 = 1024 * 1024;
/// zstd, lz4, gzip, snappy: `ClientMetricsManager.SUPPORTED_COMPRESSION_TYPES`, in its order.
const ACCEPTED_COMPRESSION_TYPES: [i8; 4] = [4, 3, 1, 2];
/// `ClientMetricsManager.DEFAULT_CACHE_EXPIRY_MS`.
const CACHE_EXPIRY_MS: i64 = 60 * 1000;
/// `ClientMetricsManager.CACHE_MAX_SIZE`: at most this many instances are remembered.
const CACHE_MAX_SIZE: usize = 16384;
/// Kafka's `Uuid.METADATA_TOPIC_ID` (…0001); with the zero id, the reserved ids no client may push as.
const METADATA_TOPIC_ID: Uuid = Uuid::from_u128(1);

/// What the broker remembers of one client instance (`ClientMetricsInstance`).
#[derive(Debug, Clone)]
struct Instance {
    subscription_id: i32,
    last_get_ms: i64,
    last_push_ms: i64,
    last_request_ms: i64,
    terminating: bool,
    connection: (String, SocketAddr),
}

/// The client instances of this broker.
#[derive(Debug, Default)]
pub struct ClientTelemetry {
    instances: Mutex<HashMap<Uuid, Instance>>,
}

impl ClientTelemetry {
    pub fn new() -> Self {
        Self::default()
    }

    /// GetTelemetrySubscriptions at `now_ms`.
    pub fn get_subscriptions(
        &self,
        conn: &ConnectionInfo,
        req: &GetTelemetrySubscriptionsRequest,
        now_ms: i64,
    ) -> GetTelemetrySubscriptionsResponse {
        let mut instances = self.instances.lock();
        expire(&mut instances, now_ms);
        let id = if req.client_instance_id.is_nil() {
            loop {
                let id = Uuid::new_v4();
                if !instances.contains_key(&id) {
                    break id;
                }
            }
        } else {
            req.client_instance_id
        };
        let instance = instance(&mut instances, id, conn, now_ms);
        if now_ms - instance.last_get_ms.max(instance.last_push_ms)
            < i64::from(DEFAULT_PUSH_INTERVAL_MS)
        {
            return GetTelemetrySubscriptionsResponse::default()
                .with_error_code(ResponseError::ThrottlingQuotaExceeded.code());
        }
        instance.last_get_ms = now_ms;
        GetTelemetrySubscriptionsResponse::default()
            .with_client_instance_id(id)
            .with_subscription_id(instance.subscription_id)
            .with_accepted_compression_types(ACCEPTED_COMPRESSION_TYPES.to_vec())
            .with_push_interval_ms(DEFAULT_PUSH_INTERVAL_MS)
            .with_telemetry_max_bytes(TELEMETRY_MAX_BYTES)
            .with_delta_temporality(true)
            .with_requested_metrics(Vec::new())
    }

    /// PushTelemetry at `now_ms`.
    pub fn push(
        &self,
        conn: &ConnectionInfo,
        req: &PushTelemetryRequest,
        now_ms: i64,
    ) -> PushTelemetryResponse {
        let error = |e: ResponseError| PushTelemetryResponse::default().with_error_code(e.code());
        let id = req.client_instance_id;
        if id.is_nil() || id == METADATA_TOPIC_ID {
            return error(ResponseError::InvalidRequest);
        }
        let mut instances = self.instances.lock();
        expire(&mut instances, now_ms);
        let instance = instance(&mut instances, id, conn, now_ms);
        let outcome = check_push(instance, req, now_ms);
        // Kafka records the terminating flag whatever the outcome.
        instance.terminating = req.terminating;
        match outcome {
            Ok(()) => PushTelemetryResponse::default(),
            Err(e) => error(e),
        }
    }

    /// Forgets the instances of a closed connection, as Kafka's disconnect listener does.
    pub fn forget_connection(&self, conn: &ConnectionInfo) {
        let key = (conn.listener_name.clone(), conn.peer);
        self.instances.lock().retain(|_, i| i.connection != key);
    }
}

/// Kafka's `validatePushRequest`, in its order.
fn check_push(
    instance: &mut Instance,
    req: &PushTelemetryRequest,
    now_ms: i64,
) -> Result<(), ResponseError> {
    if instance.terminating {
        return Err(ResponseError::InvalidRequest);
    }
    // A push right after a get is accepted whatever the interval (clients jitter their pushes).
    let accepted = instance.last_get_ms > instance.last_push_ms
        || now_ms - instance.last_push_ms >= i64::from(DEFAULT_PUSH_INTERVAL_MS);
    if accepted {
        instance.last_push_ms = now_ms;
    } else if !req.terminating {
        return Err(ResponseError::ThrottlingQuotaExceeded);
    }
    if req.subscription_id != instance.subscription_id {
        return Err(ResponseError::UnknownSubscriptionId);
    }
    // Kafka accepts any compression type it knows (`CompressionType.forId`): none, gzip, snappy, lz4, zstd.
    if !(0..=4).contains(&req.compression_type) {
        return Err(ResponseError::UnsupportedCompressionType);
    }
    if req.metrics.len() > TELEMETRY_MAX_BYTES as usize {
        return Err(ResponseError::TelemetryTooLarge);
    }
    Ok(())
}

/// The instance `id`, created (with the empty subscription) if this broker does not know it.
fn instance<'a>(
    instances: &'a mut HashMap<Uuid, Instance>,
    id: Uuid,
    conn: &ConnectionInfo,
    now_ms: i64,
) -> &'a mut Instance {
    if !instances.contains_key(&id) && instances.len() >= CACHE_MAX_SIZE {
        // Kafka's LRU cache drops its least recently used instance.
        if let Some(oldest) = instances
            .iter()
            .min_by_key(|(_, i)| i.last_request_ms)
            .map(|(k, _)| *k)
        {
            instances.remove(&oldest);
        }
    }
    let instance = instances.entry(id).or_insert_with(|| Instance {
        subscription_id: subscription_id(id),
        last_get_ms: 0,
        last_push_ms: 0,
        last_request_ms: now_ms,
        terminating: false,
        connection: (conn.listener_name.clone(), conn.peer),
    });
    instance.last_request_ms = now_ms;
    instance
}

/// Drops instances without a request for max(60 s, 3 push intervals) (Kafka's expiration timer).
fn expire(instances: &mut HashMap<Uuid, Instance>, now_ms: i64) {
    let ttl = CACHE_EXPIRY_MS.max(3 * i64::from(DEFAULT_PUSH_INTERVAL_MS));
    instances.retain(|_, i| now_ms - i.last_request_ms < ttl);
}

/// Kafka's `computeSubscriptionId` for the empty subscription: CRC32C of the metric names as Java prints the
/// set (`[]`) followed by the push interval, XOR the client instance id's Java `hashCode`.
pub fn subscription_id(client_instance_id: Uuid) -> i32 {
    let text = format!("[]{DEFAULT_PUSH_INTERVAL_MS}");
    let crc = crc32c::crc32c(text.as_bytes()) as i32;
    crc ^ java_uuid_hash(client_instance_id)
}

/// `org.apache.kafka.common.Uuid.hashCode`.
fn java_uuid_hash(id: Uuid) -> i32 {
    let (hi, lo) = id.as_u64_pair();
    let h = hi ^ lo;
    ((h >> 32) as i32) ^ (h as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const MIN: i64 = 60 * 1000;

    fn conn(port: u16) -> ConnectionInfo {
        ConnectionInfo {
            peer: SocketAddr::from(([127, 0, 0, 1], port)),
            listener_name: "PLAINTEXT".into(),
            principal: "User:ANONYMOUS".into(),
            queued_input: Default::default(),
        }
    }

    fn get(t: &ClientTelemetry, id: Uuid, now: i64) -> GetTelemetrySubscriptionsResponse {
        t.get_subscriptions(
            &conn(1),
            &GetTelemetrySubscriptionsRequest::default().with_client_instance_id(id),
            now,
        )
    }

    fn push(t: &ClientTelemetry, id: Uuid, subscription: i32, now: i64) -> i16 {
        t.push(
            &conn(1),
            &PushTelemetryRequest::default()
                .with_client_instance_id(id)
                .with_subscription_id(subscription)
                .with_compression_type(0)
                .with_metrics(Bytes::from_static(b"m")),
            now,
        )
        .error_code
    }

    #[test]
    fn the_subscription_id_is_kafkas() {
        // Java: (int) Crc32C.compute("[]300000") ^ Uuid.hashCode(); hashCode(0x…0002) is 2.
        let id = Uuid::from_u128(2);
        let crc = crc32c::crc32c(b"[]300000") as i32;
        assert_eq!(subscription_id(id), crc ^ 2);
        let id = Uuid::from_u64_pair(1 << 32, 0);
        assert_eq!(java_uuid_hash(id), 1);
    }

    #[test]
    fn one_get_and_one_push_per_interval() {
        let t = ClientTelemetry::new();
        let id = Uuid::from_u128(42);
        let first = get(&t, id, 10 * MIN);
        assert_eq!(first.error_code, 0);
        assert_eq!(first.client_instance_id, id);
        assert_eq!(first.push_interval_ms, DEFAULT_PUSH_INTERVAL_MS);
        assert!(first.requested_metrics.is_empty());
        let throttled = ResponseError::ThrottlingQuotaExceeded.code();
        assert_eq!(get(&t, id, 10 * MIN + 1).error_code, throttled);
        let sub = first.subscription_id;
        // Right after the get, then not again within the interval.
        assert_eq!(push(&t, id, sub, 10 * MIN + 2), 0);
        assert_eq!(push(&t, id, sub, 10 * MIN + 3), throttled);
        assert_eq!(push(&t, id, sub, 16 * MIN), 0);
        assert_eq!(
            push(&t, id, sub + 1, 22 * MIN),
            ResponseError::UnknownSubscriptionId.code()
        );
    }

    #[test]
    fn terminating_pushes_bypass_the_interval_and_end_the_instance() {
        let t = ClientTelemetry::new();
        let id = Uuid::from_u128(7);
        let sub = get(&t, id, 10 * MIN).subscription_id;
        assert_eq!(push(&t, id, sub, 10 * MIN + 1), 0);
        let last = PushTelemetryRequest::default()
            .with_client_instance_id(id)
            .with_subscription_id(sub)
            .with_terminating(true);
        assert_eq!(t.push(&conn(1), &last, 10 * MIN + 2).error_code, 0);
        assert_eq!(
            push(&t, id, sub, 16 * MIN),
            ResponseError::InvalidRequest.code()
        );
        // After 15 minutes (3 push intervals) without requests the instance is forgotten.
        assert_eq!(push(&t, id, sub, 32 * MIN), 0);
    }

    #[test]
    fn reserved_ids_bad_compression_and_oversized_metrics_are_refused() {
        let t = ClientTelemetry::new();
        assert_eq!(
            push(&t, Uuid::nil(), 0, MIN),
            ResponseError::InvalidRequest.code()
        );
        let id = Uuid::from_u128(9);
        let sub = get(&t, id, 10 * MIN).subscription_id;
        let bad = PushTelemetryRequest::default()
            .with_client_instance_id(id)
            .with_subscription_id(sub)
            .with_compression_type(9);
        assert_eq!(
            t.push(&conn(1), &bad, 10 * MIN + 1).error_code,
            ResponseError::UnsupportedCompressionType.code()
        );
        let sub = get(&t, id, 20 * MIN).subscription_id;
        let big = PushTelemetryRequest::default()
            .with_client_instance_id(id)
            .with_subscription_id(sub)
            .with_metrics(Bytes::from(vec![0u8; TELEMETRY_MAX_BYTES as usize + 1]));
        assert_eq!(
            t.push(&conn(1), &big, 20 * MIN + 1).error_code,
            ResponseError::TelemetryTooLarge.code()
        );
    }

    #[test]
    fn a_new_id_is_given_and_forgotten_with_its_connection() {
        let t = ClientTelemetry::new();
        let first = get(&t, Uuid::nil(), 10 * MIN);
        assert!(!first.client_instance_id.is_nil());
        t.forget_connection(&conn(1));
        // Forgotten: a get within the interval is a first get again.
        assert_eq!(
            get(&t, first.client_instance_id, 10 * MIN + 1).error_code,
            0
        );
    }
}
