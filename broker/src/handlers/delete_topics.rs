//! DeleteTopics by name (v0-v5) or by name or id (v6+). The controller removes the topic from the metadata;
//! the replica manager then deletes the partition directories.

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use kraftwerk_controller::TopicRef;

use crate::context::BrokerContext;

use super::errors::code;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    req: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let refs: Vec<TopicRef> = if version >= 6 {
        req.topics
            .iter()
            .map(|t| match &t.name {
                Some(n) => TopicRef::Name(n.0.to_string()),
                None => TopicRef::Id(t.topic_id),
            })
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| TopicRef::Name(n.0.to_string()))
            .collect()
    };
    let mut resp = DeleteTopicsResponse::default();
    if !ctx.config.delete_topic_enable {
        for r in refs {
            let mut out = ref_result(&r, version);
            out.error_code = code(ResponseError::TopicDeletionDisabled);
            resp.responses.push(out);
        }
        return resp;
    }
    let results = ctx.controller.delete_topics(refs.clone()).await;
    if results.iter().any(|r| r.result.is_ok()) {
        ctx.reconcile_now().await;
    }
    for (r, asked) in results.into_iter().zip(refs.iter()) {
        let mut out = ref_result(asked, version);
        if let Some(n) = r.name {
            out.name = Some(TopicName(StrBytes::from_string(n)));
        }
        match r.result {
            Ok(id) if version >= 6 => out.topic_id = id,
            Ok(_) => {}
            Err(e) => {
                out.error_code = e.error_code();
                if version >= 5 {
                    out.error_message = Some(StrBytes::from_string(e.message()));
                }
            }
        }
        resp.responses.push(out);
    }
    resp
}

fn ref_result(r: &TopicRef, version: i16) -> DeletableTopicResult {
    let mut out = DeletableTopicResult::default();
    match r {
        TopicRef::Name(n) => {
            out.name = Some(TopicName(StrBytes::from_string(n.clone())));
            out.topic_id = Uuid::nil();
        }
        TopicRef::Id(id) if version >= 6 => out.topic_id = *id,
        TopicRef::Id(_) => {}
    }
    out
}
