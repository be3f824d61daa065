//! FindCoordinator and the classic group APIs. Each group call is handed to the coordinator task
//! ([`crate::group_service::GroupService`]); the coordinator answers with the typed response, which may take a
//! whole rebalance for JoinGroup and SyncGroup.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, OffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use kraftwerk_protocol::{RequestKind, ResponseKind};

use crate::context::{BrokerContext, ConnectionInfo};
use crate::group::records::partition_for;
use crate::group::{ClientInfo, Response};
use crate::group_service::OFFSETS_TOPIC;

use super::errors::code;
use super::offset_commit;
use super::offset_delete;
use super::offset_topic_ids;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;
/// READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS: the operations a group resource has in Kafka 4.x
/// (group configs, KIP-848, added the last two).
pub(crate) const GROUP_ALL_OPS: i32 = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);
/// FindCoordinator v4 batches keys.
const BATCHED_VERSION: i16 = 4;

pub fn find_coordinator(
    ctx: &Arc<BrokerContext>,
    conn: &ConnectionInfo,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let keys: Vec<StrBytes> = if version >= BATCHED_VERSION {
        req.coordinator_keys.clone()
    } else {
        vec![req.key.clone()]
    };
    let image = ctx.controller.image();
    if req.key_type == KEY_TYPE_GROUP && image.topic(OFFSETS_TOPIC).is_none() {
        // Kafka creates the topic on the first FindCoordinator; until it exists (and it needs
        // `offsets.topic.replication.factor` live brokers) the answer is COORDINATOR_NOT_AVAILABLE.
        let readiness = ctx.groups.offsets_topic();
        tracing::debug!(?readiness, "{OFFSETS_TOPIC} does not exist yet");
    }
    let answers: Vec<Coordinator> = keys
        .into_iter()
        .map(|key| {
            let mut c = Coordinator::default();
            c.node_id = BrokerId(-1);
            c.port = -1;
            let group = key.as_str().to_string();
            c.key = key;
            match req.key_type {
                KEY_TYPE_GROUP => match group_coordinator(&image, &conn.listener_name, &group) {
                    Some((node_id, host, port)) => {
                        c.node_id = BrokerId(node_id);
                        c.host = StrBytes::from_string(host);
                        c.port = i32::from(port);
                    }
                    None => c.error_code = code(ResponseError::CoordinatorNotAvailable),
                },
                KEY_TYPE_TRANSACTION => {
                    c.error_code = code(ResponseError::CoordinatorNotAvailable);
                    c.error_message = Some(StrBytes::from_static_str(
                        "transactions are not supported yet",
                    ));
                }
                _ => {
                    c.error_code = code(ResponseError::InvalidRequest);
                    c.error_message =
                        Some(StrBytes::from_static_str("unknown coordinator key type"));
                }
            }
            c
        })
        .collect();
    let mut resp = FindCoordinatorResponse::default();
    if version >= BATCHED_VERSION {
        resp.coordinators = answers;
    } else if let Some(c) = answers.into_iter().next() {
        resp.error_code = c.error_code;
        if version >= 1 {
            resp.error_message = c.error_message;
        }
        resp.node_id = c.node_id;
        resp.host = c.host;
        resp.port = c.port;
    }
    resp
}

/// The coordinator of `group`: the leader of its `__consumer_offsets` partition, with its endpoint on the
/// listener the client came in on. `None` while that partition has no live leader (or no endpoint there).
fn group_coordinator(
    image: &kraftwerk_controller::MetadataImage,
    listener: &str,
    group: &str,
) -> Option<(i32, String, u16)> {
    let topic = image.topic(OFFSETS_TOPIC)?;
    let partition = partition_for(group, topic.partition_count());
    let leader = topic.partitions.get(&partition)?.leader;
    let broker = image.broker(leader).filter(|b| !b.fenced)?;
    let ep = broker.listener(listener)?;
    Some((leader, ep.host.clone(), ep.port))
}

/// Runs a group request through the coordinator. `None` for non-group requests.
pub async fn dispatch_group(
    ctx: &Arc<BrokerContext>,
    conn: &ConnectionInfo,
    client_id: String,
    body: RequestKind,
    v: i16,
) -> Result<Option<ResponseKind>, RequestKind> {
    let groups = &ctx.groups;
    let response = match body {
        RequestKind::JoinGroup(r) => {
            let client = ClientInfo {
                client_id,
                client_host: format!("/{}", conn.peer.ip()),
            };
            groups
                .call(move |c, id, now| c.join_group(id, v, &client, r, now))
                .await
        }
        RequestKind::SyncGroup(r) => {
            groups
                .call(move |c, id, now| c.sync_group(id, v, r, now))
                .await
        }
        RequestKind::Heartbeat(r) => {
            groups
                .call(move |c, id, now| c.heartbeat(id, v, r, now))
                .await
        }
        RequestKind::LeaveGroup(r) => {
            groups
                .call(move |c, id, now| c.leave_group(id, v, r, now))
                .await
        }
        RequestKind::OffsetCommit(mut r) => {
            let image = ctx.controller.image();
            let by_id = v >= offset_topic_ids::TOPIC_ID_VERSION;
            if by_id {
                offset_topic_ids::commit_names_from_ids(&mut r, |id| {
                    image.topic_by_id(id).map(|t| t.name.clone())
                });
            }
            let unknown = offset_commit::take_unknown_partitions(&mut r, |name| {
                image.topic(name).map(|t| t.partition_count())
            });
            if !unknown.is_empty() && r.topics.is_empty() {
                // Nothing left for the coordinator (Kafka does not call it either).
                Some(Response::OffsetCommit(offset_commit::merge(
                    unknown,
                    OffsetCommitResponse::default(),
                )))
            } else {
                let resp = groups
                    .call(move |c, id, now| c.offset_commit(id, v, r, now))
                    .await;
                resp.map(|resp| match resp {
                    Response::OffsetCommit(mut o) => {
                        if by_id {
                            for t in &mut o.topics {
                                t.topic_id = image
                                    .topic(t.name.0.as_str())
                                    .map(|t| t.id)
                                    .unwrap_or_default();
                            }
                        }
                        Response::OffsetCommit(offset_commit::merge(unknown, o))
                    }
                    other => other,
                })
            }
        }
        RequestKind::OffsetFetch(mut r) => {
            let image = ctx.controller.image();
            let by_id = v >= offset_topic_ids::TOPIC_ID_VERSION;
            let unknown = if by_id {
                offset_topic_ids::fetch_names_from_ids(&mut r, |id| {
                    image.topic_by_id(id).map(|t| t.name.clone())
                })
            } else {
                Vec::new()
            };
            let resp = groups
                .call(move |c, id, now| c.offset_fetch(id, v, r, now))
                .await;
            resp.map(|resp| match resp {
                Response::OffsetFetch(mut o) if by_id => {
                    offset_topic_ids::fetch_ids_from_names(&mut o, unknown, |name| {
                        image.topic(name).map(|t| t.id)
                    });
                    Response::OffsetFetch(o)
                }
                other => other,
            })
        }
        RequestKind::OffsetDelete(mut r) => {
            let image = ctx.controller.image();
            let unknown = offset_delete::take_unknown_partitions(&mut r, |name| {
                image.topic(name).map(|t| t.partition_count())
            });
            let resp = groups
                .call(move |c, id, now| c.offset_delete(id, v, r, now))
                .await;
            resp.map(|resp| match resp {
                Response::OffsetDelete(o) => {
                    Response::OffsetDelete(offset_delete::merge(unknown, o))
                }
                other => other,
            })
        }
        RequestKind::ListGroups(r) => {
            groups
                .call(move |c, id, now| c.list_groups(id, v, r, now))
                .await
        }
        RequestKind::DescribeGroups(r) => {
            let include_ops = r.include_authorized_operations;
            let mut resp = groups
                .call(move |c, id, now| c.describe_groups(id, v, r, now))
                .await;
            // No authorizer: a client asking what it may do to a group may do everything. As in Kafka, a group
            // answered with an error (v6's GROUP_ID_NOT_FOUND, NOT_COORDINATOR) keeps "not requested".
            if let (true, Some(Response::DescribeGroups(d))) =
                (include_ops && v >= 3, resp.as_mut())
            {
                set_authorized_operations(d);
            }
            resp
        }
        RequestKind::DeleteGroups(r) => {
            groups
                .call(move |c, id, now| c.delete_groups(id, v, r, now))
                .await
        }
        other => return Err(other),
    };
    Ok(response.map(|r| match r {
        Response::JoinGroup(x) => ResponseKind::JoinGroup(x),
        Response::SyncGroup(x) => ResponseKind::SyncGroup(x),
        Response::Heartbeat(x) => ResponseKind::Heartbeat(x),
        Response::LeaveGroup(x) => ResponseKind::LeaveGroup(x),
        Response::OffsetCommit(x) => ResponseKind::OffsetCommit(x),
        Response::OffsetFetch(x) => ResponseKind::OffsetFetch(x),
        Response::OffsetDelete(x) => ResponseKind::OffsetDelete(x),
        Response::ListGroups(x) => ResponseKind::ListGroups(x),
        Response::DescribeGroups(x) => ResponseKind::DescribeGroups(x),
        Response::DeleteGroups(x) => ResponseKind::DeleteGroups(x),
    }))
}

/// Fills in the operations of every group described without an error.
fn set_authorized_operations(d: &mut kafka_protocol::messages::DescribeGroupsResponse) {
    for g in d.groups.iter_mut().filter(|g| g.error_code == 0) {
        g.authorized_operations = GROUP_ALL_OPS;
    }
}

#[cfg(test)]
mod authorized_operations_tests {
    use super::*;
    use kafka_protocol::messages::describe_groups_response::DescribedGroup;
    use kafka_protocol::messages::DescribeGroupsResponse;

    #[test]
    fn only_groups_without_an_error_carry_operations() {
        let mut d = DescribeGroupsResponse::default().with_groups(vec![
            DescribedGroup::default().with_authorized_operations(i32::MIN),
            DescribedGroup::default()
                .with_error_code(ResponseError::GroupIdNotFound.code())
                .with_authorized_operations(i32::MIN),
        ]);
        set_authorized_operations(&mut d);
        // Kafka 4.4 answers 3400 for a group: READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
        assert_eq!(d.groups[0].authorized_operations, 3400);
        assert_eq!(d.groups[1].authorized_operations, i32::MIN);
    }
}
