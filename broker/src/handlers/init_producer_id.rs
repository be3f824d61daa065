//! InitProducerId for idempotent producers: a fresh producer id with epoch 0, as Kafka gives a producer without
//! a transactional id (also on the KIP-360 epoch-bump retry, where Kafka too hands out a new id).
//!
//! Transactions are not implemented yet: a request with a transactional id gets COORDINATOR_NOT_AVAILABLE,
//! the answer Kafka gives while its transaction coordinator cannot serve, so clients fail their
//! `initTransactions()` after `max.block.ms` instead of hanging.

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use crate::context::BrokerContext;

use super::errors::code;

/// Kafka's `transaction.max.timeout.ms` default. Kraftwerk does not accept the key (transactions are not
/// built), so a transactional request is checked against Kafka's default bound.
const MAX_TRANSACTION_TIMEOUT_MS: i32 = 900_000;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    req: InitProducerIdRequest,
    _version: i16,
) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    if let Some(error) = refusal(&req) {
        resp.error_code = code(error);
        return resp;
    }
    match ctx.producer_ids.next(&ctx.controller).await {
        Ok(id) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot allocate a producer id");
            resp.error_code = code(ResponseError::CoordinatorNotAvailable);
        }
    }
    resp
}

/// What Kafka refuses before allocating, in its order (KafkaApis, then TransactionCoordinator): a producer
/// id without an epoch or an epoch without an id (v3+; both default to -1 before), an empty transactional
/// id, a transactional timeout outside (0, transaction.max.timeout.ms]. Any other transactional id gets
/// COORDINATOR_NOT_AVAILABLE: no transaction coordinator runs here.
fn refusal(req: &InitProducerIdRequest) -> Option<ResponseError> {
    if (req.producer_id.0 == -1) != (req.producer_epoch == -1) {
        return Some(ResponseError::InvalidRequest);
    }
    match req.transactional_id.as_ref().map(|t| t.0.as_str()) {
        None => None,
        Some("") => Some(ResponseError::InvalidRequest),
        Some(_)
            if req.transaction_timeout_ms <= 0
                || req.transaction_timeout_ms > MAX_TRANSACTION_TIMEOUT_MS =>
        {
            Some(ResponseError::InvalidTransactionTimeout)
        }
        Some(_) => Some(ResponseError::CoordinatorNotAvailable),
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::TransactionalId;
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    fn request(txn: Option<&str>, timeout_ms: i32, id: i64, epoch: i16) -> InitProducerIdRequest {
        InitProducerIdRequest::default()
            .with_transactional_id(txn.map(|t| TransactionalId(StrBytes::from_string(t.into()))))
            .with_transaction_timeout_ms(timeout_ms)
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch)
    }

    #[test]
    fn refusals_follow_kafkas_checks() {
        // An idempotent producer is always served, whatever its timeout; so is a KIP-360 epoch bump.
        assert_eq!(refusal(&request(None, 0, -1, -1)), None);
        assert_eq!(refusal(&request(None, 60_000, 42, 3)), None);
        // Half a producer identity.
        assert_eq!(
            refusal(&request(None, 60_000, 42, -1)),
            Some(ResponseError::InvalidRequest)
        );
        assert_eq!(
            refusal(&request(None, 60_000, -1, 0)),
            Some(ResponseError::InvalidRequest)
        );
        assert_eq!(
            refusal(&request(Some(""), 60_000, -1, -1)),
            Some(ResponseError::InvalidRequest)
        );
        for timeout in [0, -5, MAX_TRANSACTION_TIMEOUT_MS + 1, i32::MAX] {
            assert_eq!(
                refusal(&request(Some("t"), timeout, -1, -1)),
                Some(ResponseError::InvalidTransactionTimeout),
                "{timeout}"
            );
        }
        assert_eq!(
            refusal(&request(Some("t"), MAX_TRANSACTION_TIMEOUT_MS, -1, -1)),
            Some(ResponseError::CoordinatorNotAvailable)
        );
    }
}
