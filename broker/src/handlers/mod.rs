//! One module per Kafka API. [`supported_apis`] and [`dispatch`] sit side by side so that ApiVersions can only
//! advertise an API that has a handler here.

use std::sync::Arc;

use kraftwerk_protocol::request::Request;
use kraftwerk_protocol::versions::SupportedApis;
use kraftwerk_protocol::{ApiKey, RequestKind, ResponseKind};

use crate::context::{BrokerContext, ConnectionInfo};

pub mod acls;
pub mod alter_configs;
pub mod api_versions;
pub mod client_quotas;
pub mod client_telemetry;
pub mod cluster_admin;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod errors;
pub mod fetch;
pub mod groups;
pub mod init_producer_id;
pub mod leader_hints;
pub mod list_config_resources;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_for_leader_epoch;
pub mod offset_topic_ids;
pub mod produce;
pub mod raft_voters;
pub mod reassignments;
pub mod sasl;
pub mod scram_credentials;
pub mod topic_answers;
pub mod update_features;

/// Topic names that appear more than once in one admin request; Kafka answers INVALID_REQUEST for every copy.
pub(crate) fn repeated_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> std::collections::HashSet<String> {
    let mut seen = std::collections::HashSet::new();
    names
        .into_iter()
        .filter(|n| !seen.insert(*n))
        .map(str::to_string)
        .collect()
}

/// The versions each handler implements (clamped by the protocol crate to what it can decode).
pub fn supported_apis() -> SupportedApis {
    let mut apis = SupportedApis::new();
    apis.register(ApiKey::ApiVersions, 0, 5);
    apis.register(ApiKey::Metadata, 0, 13);
    apis.register(ApiKey::Produce, 3, 13);
    // Listed from v0 as Kafka 4 lists it, or librdkafka < 2.8 would not compress (see `advertise_from`).
    apis.advertise_from(ApiKey::Produce, 0);
    apis.register(ApiKey::Fetch, 4, 18);
    apis.register(ApiKey::ListOffsets, 1, 11);
    apis.register(ApiKey::CreateTopics, 2, 7);
    apis.register(ApiKey::DeleteTopics, 1, 6);
    apis.register(ApiKey::CreatePartitions, 0, 3);
    apis.register(ApiKey::DescribeConfigs, 1, 4);
    apis.register(ApiKey::DescribeCluster, 0, 2);
    apis.register(ApiKey::SaslHandshake, 0, 1);
    apis.register(ApiKey::SaslAuthenticate, 0, 2);
    apis.register(ApiKey::InitProducerId, 0, 5);
    apis.register(ApiKey::FindCoordinator, 0, 6);
    apis.register(ApiKey::JoinGroup, 0, 9);
    apis.register(ApiKey::SyncGroup, 0, 5);
    apis.register(ApiKey::Heartbeat, 0, 4);
    apis.register(ApiKey::LeaveGroup, 0, 5);
    apis.register(ApiKey::OffsetCommit, 2, 10);
    apis.register(ApiKey::OffsetFetch, 1, 10);
    apis.register(ApiKey::OffsetDelete, 0, 0);
    apis.register(ApiKey::ListGroups, 0, 5);
    apis.register(ApiKey::DescribeGroups, 0, 6);
    apis.register(ApiKey::DeleteGroups, 0, 3);
    apis.register(ApiKey::IncrementalAlterConfigs, 0, 1);
    apis.register(ApiKey::AlterConfigs, 0, 2);
    apis.register(ApiKey::DeleteRecords, 0, 2);
    apis.register(ApiKey::DescribeLogDirs, 1, 5);
    apis.register(ApiKey::DescribeProducers, 0, 0);
    apis.register(ApiKey::AlterPartitionReassignments, 0, 1);
    apis.register(ApiKey::ListPartitionReassignments, 0, 0);
    apis.register(ApiKey::ElectLeaders, 0, 2);
    apis.register(ApiKey::DescribeAcls, 1, 3);
    apis.register(ApiKey::CreateAcls, 1, 3);
    apis.register(ApiKey::DeleteAcls, 1, 3);
    apis.register(ApiKey::DescribeQuorum, 0, 2);
    apis.register(ApiKey::AddRaftVoter, 0, 1);
    apis.register(ApiKey::RemoveRaftVoter, 0, 0);
    // No UpdateRaftVoter on the broker listener, as in Kafka: controllers send it to each other on the
    // controller listener, which serves it.
    apis.register(ApiKey::OffsetForLeaderEpoch, 2, 4);
    apis.register(ApiKey::DescribeUserScramCredentials, 0, 0);
    apis.register(ApiKey::DescribeClientQuotas, 0, 1);
    apis.register(ApiKey::AlterUserScramCredentials, 0, 0);
    apis.register(ApiKey::DescribeTopicPartitions, 0, 0);
    apis.register(ApiKey::ListConfigResources, 0, 1);
    apis.register(ApiKey::UpdateFeatures, 0, 2);
    // Kafka without a metrics plugin answers these but leaves them out of ApiVersions; so does Kraftwerk.
    apis.serve_unadvertised(ApiKey::GetTelemetrySubscriptions, 0, 0);
    apis.serve_unadvertised(ApiKey::PushTelemetry, 0, 0);
    apis
}

/// Runs the handler for one decoded request. `None` means no response is sent (Produce with acks=0).
/// The authorizer's gate (`auth::checks`) runs first: it may answer alone, or narrow the request
/// and add the denied topics or groups back to the handler's response.
/// A handler's answer: a typed response, or a Fetch answer whose records are still in segment files (the
/// connection sends them after the encoded fields, see `fetch::FetchReply`).
#[derive(Debug)]
pub enum Reply {
    Body(ResponseKind),
    Fetch(fetch::FetchReply),
}

impl Reply {
    /// Applies an authorization patch (entries for denied topics) to the typed response.
    fn patch(&mut self, patch: crate::auth::checks::Patch) {
        match self {
            Reply::Body(body) => patch.apply(body),
            Reply::Fetch(reply) => {
                let mut body = ResponseKind::Fetch(std::mem::take(&mut reply.response));
                patch.apply(&mut body);
                if let ResponseKind::Fetch(response) = body {
                    reply.response = response;
                }
            }
        }
    }
}

pub async fn dispatch(
    ctx: &Arc<BrokerContext>,
    conn: &ConnectionInfo,
    mut req: Request,
) -> Option<Reply> {
    let mut patch = None;
    if ctx.authorizer.is_some() {
        let auth = ctx.auth(conn);
        let image = ctx.controller.image();
        let body = std::mem::replace(&mut req.body, RequestKind::ApiVersions(Default::default()));
        match crate::auth::checks::gate(&auth, &image, body, req.api_version) {
            crate::auth::checks::Gate::Answer(resp) => return Some(Reply::Body(resp)),
            crate::auth::checks::Gate::Run(body, p) => {
                req.body = body;
                patch = Some(p);
            }
        }
    }
    let mut resp = run(ctx, conn, req).await;
    if let (Some(patch), Some(resp)) = (patch, resp.as_mut()) {
        resp.patch(patch);
    }
    resp
}

async fn run(ctx: &Arc<BrokerContext>, conn: &ConnectionInfo, req: Request) -> Option<Reply> {
    let v = req.api_version;
    let client_id = req
        .header
        .client_id
        .as_ref()
        .map(|c| c.as_str().to_string())
        .unwrap_or_default();
    let body = match groups::dispatch_group(ctx, conn, client_id, req.body, v).await {
        Ok(resp) => return resp.map(Reply::Body),
        Err(body) => body,
    };
    let resp = match body {
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(groups::find_coordinator(ctx, conn, r, v))
        }
        RequestKind::ApiVersions(r) => ResponseKind::ApiVersions(api_versions::handle(ctx, r, v)),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::handle(ctx, conn, r, v).await),
        RequestKind::Produce(r) => {
            return produce::handle(ctx, &conn.listener_name, r, v)
                .await
                .map(|r| Reply::Body(ResponseKind::Produce(r)))
        }
        RequestKind::Fetch(r) => {
            return Some(Reply::Fetch(
                fetch::handle(ctx, &conn.listener_name, &conn.queued_input, r, v).await,
            ))
        }
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(list_offsets::handle(ctx, r, v)),
        RequestKind::OffsetForLeaderEpoch(r) => {
            ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(ctx, r, v))
        }
        RequestKind::CreateTopics(r) => {
            ResponseKind::CreateTopics(create_topics::handle(ctx, r, v).await)
        }
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(delete_topics::handle(ctx, r, v).await)
        }
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(create_partitions::handle(ctx, r, v).await)
        }
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(describe_configs::handle(ctx, r, v))
        }
        RequestKind::SaslHandshake(r) => ResponseKind::SaslHandshake(sasl::handshake(conn, r, v)),
        RequestKind::SaslAuthenticate(r) => {
            ResponseKind::SaslAuthenticate(sasl::authenticate(conn, r, v))
        }
        RequestKind::InitProducerId(r) => {
            ResponseKind::InitProducerId(init_producer_id::handle(ctx, r, v).await)
        }
        RequestKind::IncrementalAlterConfigs(r) => ResponseKind::IncrementalAlterConfigs(
            alter_configs::handle_incremental(ctx, r, v).await,
        ),
        RequestKind::AlterConfigs(r) => {
            ResponseKind::AlterConfigs(alter_configs::handle_legacy(ctx, r, v).await)
        }
        RequestKind::DeleteRecords(r) => {
            ResponseKind::DeleteRecords(delete_records::handle(ctx, r, v))
        }
        RequestKind::DescribeLogDirs(r) => {
            ResponseKind::DescribeLogDirs(describe_log_dirs::handle(ctx, r, v))
        }
        RequestKind::DescribeProducers(r) => {
            ResponseKind::DescribeProducers(describe_producers::handle(ctx, r, v))
        }
        RequestKind::AlterPartitionReassignments(r) => {
            ResponseKind::AlterPartitionReassignments(reassignments::alter(ctx, r, v).await)
        }
        RequestKind::ListPartitionReassignments(r) => {
            ResponseKind::ListPartitionReassignments(reassignments::list(ctx, r, v).await)
        }
        RequestKind::ElectLeaders(r) => {
            ResponseKind::ElectLeaders(cluster_admin::elect_leaders(ctx, r, v).await)
        }
        RequestKind::DescribeAcls(r) => {
            ResponseKind::DescribeAcls(acls::describe_acls(ctx, conn, r, v))
        }
        RequestKind::CreateAcls(r) => {
            ResponseKind::CreateAcls(acls::create_acls(ctx, conn, r, v).await)
        }
        RequestKind::DeleteAcls(r) => {
            ResponseKind::DeleteAcls(acls::delete_acls(ctx, conn, r, v).await)
        }
        RequestKind::DescribeQuorum(r) => {
            ResponseKind::DescribeQuorum(describe_quorum::handle(ctx, r, v).await)
        }
        RequestKind::AddRaftVoter(r) => ResponseKind::AddRaftVoter(raft_voters::add(ctx, r).await),
        RequestKind::RemoveRaftVoter(r) => {
            ResponseKind::RemoveRaftVoter(raft_voters::remove(ctx, r).await)
        }
        RequestKind::AlterUserScramCredentials(r) => {
            ResponseKind::AlterUserScramCredentials(scram_credentials::alter(ctx, r, v).await)
        }
        RequestKind::DescribeUserScramCredentials(r) => {
            ResponseKind::DescribeUserScramCredentials(scram_credentials::describe(ctx, r, v))
        }
        RequestKind::DescribeCluster(r) => {
            ResponseKind::DescribeCluster(describe_cluster::handle(ctx, conn, r, v))
        }
        RequestKind::DescribeTopicPartitions(r) => {
            ResponseKind::DescribeTopicPartitions(describe_topic_partitions::handle(ctx, conn, r))
        }
        RequestKind::GetTelemetrySubscriptions(r) => ResponseKind::GetTelemetrySubscriptions(
            ctx.telemetry
                .get_subscriptions(conn, &r, crate::context::now_ms()),
        ),
        RequestKind::PushTelemetry(r) => {
            ResponseKind::PushTelemetry(ctx.telemetry.push(conn, &r, crate::context::now_ms()))
        }
        RequestKind::UpdateFeatures(r) => {
            ResponseKind::UpdateFeatures(update_features::handle(ctx, r, v).await)
        }
        RequestKind::ListConfigResources(r) => {
            ResponseKind::ListConfigResources(list_config_resources::handle(ctx, conn, r, v))
        }
        RequestKind::DescribeClientQuotas(r) => {
            ResponseKind::DescribeClientQuotas(client_quotas::handle(r, v))
        }
        other => {
            // Unreachable while supported_apis() and this match agree; the connection layer refuses
            // unregistered APIs before dispatch.
            tracing::error!(request = ?kraftwerk_protocol::kind::request_api_key(&other), "no handler for request");
            return None;
        }
    };
    Some(Reply::Body(resp))
}
