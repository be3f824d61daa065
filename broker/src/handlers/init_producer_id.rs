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

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    req: InitProducerIdRequest,
    _version: i16,
) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    match req.transactional_id.as_ref().map(|t| t.0.as_str()) {
        None => {}
        // Kafka refuses an empty transactional id outright.
        Some("") => {
            resp.error_code = code(ResponseError::InvalidRequest);
            return resp;
        }
        Some(_) => {
            resp.error_code = code(ResponseError::CoordinatorNotAvailable);
            return resp;
        }
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
