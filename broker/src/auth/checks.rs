//! What each API needs, in one place, as Kafka's `KafkaApis` checks it.
//!
//! [`gate`] runs before a handler. A request the principal may not make at all is answered here
//! (CLUSTER_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED, ...). A request over several topics
//! or groups has the denied ones taken out of it; the handler serves the rest and [`Patch`] adds
//! the denied ones back to its response with their own error, so partial failures stay per
//! topic as Kafka answers them. ApiVersions and the SASL handshake need nothing. ACL APIs check
//! their cluster permission in `handlers/acls.rs` (their answer without an authorizer differs).

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use kraftwerk_protocol::{RequestKind, ResponseKind};

use kraftwerk_controller::acl::{AclOperation as Op, ResourceType as Rt};
use kraftwerk_controller::MetadataImage;

use super::RequestAuth;

/// What the gate decided.
pub enum Gate {
    /// Answer this instead of running the handler.
    Answer(ResponseKind),
    /// Run the handler on this (possibly narrowed) request, then apply the patch to its response.
    Run(RequestKind, Patch),
}

/// Adds the entries the gate took out of a request back to the handler's response.
pub struct Patch(Option<PatchFn>);

type PatchFn = Box<dyn FnOnce(&mut ResponseKind) + Send>;

impl Patch {
    fn none() -> Self {
        Self(None)
    }

    fn new(f: impl FnOnce(&mut ResponseKind) + Send + 'static) -> Self {
        Self(Some(Box::new(f)))
    }

    /// Applies the patch.
    pub fn apply(self, resp: &mut ResponseKind) {
        if let Some(f) = self.0 {
            f(resp);
        }
    }
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

const TOPIC_DENIED: ResponseError = ResponseError::TopicAuthorizationFailed;
const GROUP_DENIED: ResponseError = ResponseError::GroupAuthorizationFailed;
const CLUSTER_DENIED: ResponseError = ResponseError::ClusterAuthorizationFailed;

/// Takes the items whose name is not allowed out of `items`; returns them.
fn split<T>(items: &mut Vec<T>, mut allowed: impl FnMut(&T) -> bool) -> Vec<T> {
    let (keep, denied): (Vec<T>, Vec<T>) =
        std::mem::take(items).into_iter().partition(|t| allowed(t));
    *items = keep;
    denied
}

/// Decides what a request may do. `image` resolves topic ids and existence.
pub fn gate(auth: &RequestAuth, image: &MetadataImage, body: RequestKind, version: i16) -> Gate {
    if !auth.enabled() {
        return Gate::Run(body, Patch::none());
    }
    let topic = |op: Op, name: &str| auth.allows(op, Rt::Topic, name);
    let group = |op: Op, name: &str| auth.allows(op, Rt::Group, name);
    let cluster = |op: Op| auth.allows_cluster(op);
    macro_rules! whole {
        ($variant:ident, $resp:ty, $op:expr) => {
            if !cluster($op) {
                let mut r = <$resp>::default();
                r.error_code = code(CLUSTER_DENIED);
                return Gate::Answer(ResponseKind::$variant(r));
            }
        };
    }
    macro_rules! group_whole {
        ($variant:ident, $resp:ty, $req:expr, $op:expr) => {
            if !group($op, &$req.group_id) {
                let mut r = <$resp>::default();
                r.error_code = code(GROUP_DENIED);
                return Gate::Answer(ResponseKind::$variant(r));
            }
        };
    }
    match body {
        RequestKind::Produce(mut r) => {
            if let Some(tid) = &r.transactional_id {
                if !auth.allows(Op::Write, Rt::TransactionalId, tid) {
                    let denied = std::mem::take(&mut r.topic_data);
                    let mut resp = ProduceResponse::default();
                    resp.responses =
                        produce_denied(denied, ResponseError::TransactionalIdAuthorizationFailed);
                    return answer_unless_acks0(r.acks, ResponseKind::Produce(resp));
                }
            }
            // From v13 topics are named by id only; an unknown id is the handler's to answer (UNKNOWN_TOPIC_ID).
            let denied = split(&mut r.topic_data, |t| {
                if version >= 13 {
                    match image.topic_by_id(&t.topic_id) {
                        Some(known) => topic(Op::Write, &known.name),
                        None => true,
                    }
                } else {
                    topic(Op::Write, &t.name)
                }
            });
            if denied.is_empty() {
                return Gate::Run(RequestKind::Produce(r), Patch::none());
            }
            let entries = produce_denied(denied, TOPIC_DENIED);
            if r.topic_data.is_empty() {
                let mut resp = ProduceResponse::default();
                resp.responses = entries;
                return answer_unless_acks0(r.acks, ResponseKind::Produce(resp));
            }
            Gate::Run(
                RequestKind::Produce(r),
                Patch::new(move |resp| {
                    if let ResponseKind::Produce(p) = resp {
                        p.responses.extend(entries);
                    }
                }),
            )
        }
        RequestKind::Fetch(mut r) => {
            let replica = if version >= 15 {
                r.replica_state.replica_id.0
            } else {
                r.replica_id.0
            };
            let name_of = |t: &fetch_request::FetchTopic| -> String {
                if version >= 13 {
                    image
                        .topic_by_id(&t.topic_id)
                        .map(|t| t.name.clone())
                        .unwrap_or_default()
                } else {
                    t.topic.to_string()
                }
            };
            let denied = if replica >= 0 {
                if cluster(Op::ClusterAction) {
                    Vec::new()
                } else {
                    std::mem::take(&mut r.topics)
                }
            } else {
                // An unknown topic id is the handler's to answer (UNKNOWN_TOPIC_ID).
                split(&mut r.topics, |t| {
                    let name = name_of(t);
                    name.is_empty() || topic(Op::Read, &name)
                })
            };
            if denied.is_empty() {
                return Gate::Run(RequestKind::Fetch(r), Patch::none());
            }
            let entries: Vec<fetch_response::FetchableTopicResponse> = denied
                .into_iter()
                .map(|t| {
                    let mut out = fetch_response::FetchableTopicResponse::default();
                    out.topic = t.topic;
                    out.topic_id = t.topic_id;
                    out.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut d = fetch_response::PartitionData::default();
                            d.partition_index = p.partition;
                            d.error_code = code(TOPIC_DENIED);
                            d.high_watermark = -1;
                            d.last_stable_offset = -1;
                            d.log_start_offset = -1;
                            d
                        })
                        .collect();
                    out
                })
                .collect();
            if r.topics.is_empty() {
                let mut resp = FetchResponse::default();
                resp.responses = entries;
                return Gate::Answer(ResponseKind::Fetch(resp));
            }
            Gate::Run(
                RequestKind::Fetch(r),
                Patch::new(move |resp| {
                    if let ResponseKind::Fetch(f) = resp {
                        f.responses.extend(entries);
                    }
                }),
            )
        }
        RequestKind::ListOffsets(mut r) => {
            let denied = split(&mut r.topics, |t| topic(Op::Describe, &t.name));
            let entries: Vec<_> = denied
                .into_iter()
                .map(|t| {
                    let mut out = list_offsets_response::ListOffsetsTopicResponse::default();
                    out.name = t.name;
                    out.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut d =
                                list_offsets_response::ListOffsetsPartitionResponse::default();
                            d.partition_index = p.partition_index;
                            d.error_code = code(TOPIC_DENIED);
                            d
                        })
                        .collect();
                    out
                })
                .collect();
            run_with(RequestKind::ListOffsets(r), entries, |resp, e| {
                if let ResponseKind::ListOffsets(x) = resp {
                    x.topics.extend(e);
                }
            })
        }
        RequestKind::OffsetForLeaderEpoch(mut r) => {
            let denied = if r.replica_id.0 >= 0 {
                if cluster(Op::ClusterAction) {
                    Vec::new()
                } else {
                    std::mem::take(&mut r.topics)
                }
            } else {
                split(&mut r.topics, |t| topic(Op::Describe, &t.topic))
            };
            let entries: Vec<_> = denied
                .into_iter()
                .map(|t| {
                    let mut out =
                        offset_for_leader_epoch_response::OffsetForLeaderTopicResult::default();
                    out.topic = t.topic;
                    out.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut d = offset_for_leader_epoch_response::EpochEndOffset::default();
                            d.partition = p.partition;
                            d.error_code = code(TOPIC_DENIED);
                            d
                        })
                        .collect();
                    out
                })
                .collect();
            run_with(RequestKind::OffsetForLeaderEpoch(r), entries, |resp, e| {
                if let ResponseKind::OffsetForLeaderEpoch(x) = resp {
                    x.topics.extend(e);
                }
            })
        }
        RequestKind::Metadata(mut r) => {
            let Some(topics) = r.topics.as_mut() else {
                // All topics: those not allowed DESCRIBE are left out of the answer.
                let visible: Vec<String> = image
                    .topics()
                    .filter(|t| topic(Op::Describe, &t.name))
                    .map(|t| t.name.clone())
                    .collect();
                return Gate::Run(
                    RequestKind::Metadata(r),
                    Patch::new(move |resp| {
                        if let ResponseKind::Metadata(m) = resp {
                            m.topics.retain(|t| {
                                t.name
                                    .as_ref()
                                    .is_some_and(|n| visible.iter().any(|v| v == n.as_str()))
                            });
                        }
                    }),
                );
            };
            let may_create_any = cluster(Op::Create);
            let mut entries = Vec::new();
            let denied = split(topics, |t| {
                let name = match &t.name {
                    Some(n) => n.to_string(),
                    None => match image.topic_by_id(&t.topic_id) {
                        Some(topic) => topic.name.clone(),
                        None => return true,
                    },
                };
                if !topic(Op::Describe, &name) {
                    return false;
                }
                // A topic Metadata would auto-create needs CREATE on the cluster or the topic.
                image.topic(&name).is_some()
                    || !r.allow_auto_topic_creation
                    || may_create_any
                    || topic(Op::Create, &name)
            });
            for t in denied {
                let mut out = metadata_response::MetadataResponseTopic::default();
                out.error_code = code(TOPIC_DENIED);
                out.name = t.name.clone();
                out.topic_id = if t.name.is_none() {
                    t.topic_id
                } else {
                    Default::default()
                };
                entries.push(out);
            }
            run_with(RequestKind::Metadata(r), entries, |resp, e| {
                if let ResponseKind::Metadata(m) = resp {
                    m.topics.extend(e);
                }
            })
        }
        RequestKind::CreateTopics(mut r) => {
            let any = cluster(Op::Create);
            let denied = split(&mut r.topics, |t| any || topic(Op::Create, &t.name));
            let entries: Vec<_> = denied
                .into_iter()
                .map(|t| {
                    let mut out = create_topics_response::CreatableTopicResult::default();
                    out.name = t.name;
                    out.error_code = code(TOPIC_DENIED);
                    out.error_message = Some(StrBytes::from_static_str("Authorization failed."));
                    out.num_partitions = -1;
                    out.replication_factor = -1;
                    out.topic_config_error_code = code(TOPIC_DENIED);
                    out
                })
                .collect();
            run_with(RequestKind::CreateTopics(r), entries, |resp, e| {
                if let ResponseKind::CreateTopics(x) = resp {
                    x.topics.extend(e);
                }
            })
        }
        RequestKind::DeleteTopics(mut r) => {
            let name_of = |name: Option<&TopicName>, id: &uuid::Uuid| -> Option<String> {
                name.map(|n| n.to_string())
                    .or_else(|| image.topic_by_id(id).map(|t| t.name.clone()))
            };
            let mut entries = Vec::new();
            for n in split(&mut r.topic_names, |n| topic(Op::Delete, n)) {
                let mut out = delete_topics_response::DeletableTopicResult::default();
                out.name = Some(n);
                out.error_code = code(TOPIC_DENIED);
                entries.push(out);
            }
            for t in split(&mut r.topics, |t| {
                match name_of(t.name.as_ref(), &t.topic_id) {
                    None => true,
                    Some(n) => topic(Op::Delete, &n),
                }
            }) {
                let mut out = delete_topics_response::DeletableTopicResult::default();
                out.name = t.name;
                out.topic_id = t.topic_id;
                out.error_code = code(TOPIC_DENIED);
                entries.push(out);
            }
            run_with(RequestKind::DeleteTopics(r), entries, |resp, e| {
                if let ResponseKind::DeleteTopics(x) = resp {
                    x.responses.extend(e);
                }
            })
        }
        RequestKind::CreatePartitions(mut r) => {
            let entries: Vec<_> = split(&mut r.topics, |t| topic(Op::Alter, &t.name))
                .into_iter()
                .map(|t| {
                    let mut out =
                        create_partitions_response::CreatePartitionsTopicResult::default();
                    out.name = t.name;
                    out.error_code = code(TOPIC_DENIED);
                    out.error_message = Some(StrBytes::from_static_str(
                        "The topic authorization is failed.",
                    ));
                    out
                })
                .collect();
            run_with(RequestKind::CreatePartitions(r), entries, |resp, e| {
                if let ResponseKind::CreatePartitions(x) = resp {
                    x.results.extend(e);
                }
            })
        }
        RequestKind::DeleteRecords(mut r) => {
            let entries: Vec<_> = split(&mut r.topics, |t| topic(Op::Delete, &t.name))
                .into_iter()
                .map(|t| {
                    let mut out = delete_records_response::DeleteRecordsTopicResult::default();
                    out.name = t.name;
                    out.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut d =
                                delete_records_response::DeleteRecordsPartitionResult::default();
                            d.partition_index = p.partition_index;
                            d.low_watermark = -1;
                            d.error_code = code(TOPIC_DENIED);
                            d
                        })
                        .collect();
                    out
                })
                .collect();
            run_with(RequestKind::DeleteRecords(r), entries, |resp, e| {
                if let ResponseKind::DeleteRecords(x) = resp {
                    x.topics.extend(e);
                }
            })
        }
        RequestKind::DescribeProducers(mut r) => {
            let entries: Vec<_> = split(&mut r.topics, |t| topic(Op::Read, &t.name))
                .into_iter()
                .map(|t| {
                    let mut out = describe_producers_response::TopicResponse::default();
                    out.name = t.name;
                    out.partitions = t
                        .partition_indexes
                        .iter()
                        .map(|p| {
                            let mut d = describe_producers_response::PartitionResponse::default();
                            d.partition_index = *p;
                            d.error_code = code(TOPIC_DENIED);
                            d
                        })
                        .collect();
                    out
                })
                .collect();
            run_with(RequestKind::DescribeProducers(r), entries, |resp, e| {
                if let ResponseKind::DescribeProducers(x) = resp {
                    x.topics.extend(e);
                }
            })
        }
        RequestKind::DescribeConfigs(mut r) => {
            let entries: Vec<_> = split(&mut r.resources, |c| {
                config_allowed(auth, c.resource_type, &c.resource_name, false)
            })
            .into_iter()
            .map(|c| {
                let mut out = describe_configs_response::DescribeConfigsResult::default();
                out.error_code = code(config_denied(c.resource_type));
                out.resource_type = c.resource_type;
                out.resource_name = c.resource_name;
                out
            })
            .collect();
            run_with(RequestKind::DescribeConfigs(r), entries, |resp, e| {
                if let ResponseKind::DescribeConfigs(x) = resp {
                    x.results.extend(e);
                }
            })
        }
        RequestKind::AlterConfigs(mut r) => {
            let entries: Vec<_> = split(&mut r.resources, |c| {
                config_allowed(auth, c.resource_type, &c.resource_name, true)
            })
            .into_iter()
            .map(|c| {
                let mut out = alter_configs_response::AlterConfigsResourceResponse::default();
                out.error_code = code(config_denied(c.resource_type));
                out.resource_type = c.resource_type;
                out.resource_name = c.resource_name;
                out
            })
            .collect();
            run_with(RequestKind::AlterConfigs(r), entries, |resp, e| {
                if let ResponseKind::AlterConfigs(x) = resp {
                    x.responses.extend(e);
                }
            })
        }
        RequestKind::IncrementalAlterConfigs(mut r) => {
            let entries: Vec<_> = split(&mut r.resources, |c| {
                config_allowed(auth, c.resource_type, &c.resource_name, true)
            })
            .into_iter()
            .map(|c| {
                let mut out =
                    incremental_alter_configs_response::AlterConfigsResourceResponse::default();
                out.error_code = code(config_denied(c.resource_type));
                out.resource_type = c.resource_type;
                out.resource_name = c.resource_name;
                out
            })
            .collect();
            run_with(
                RequestKind::IncrementalAlterConfigs(r),
                entries,
                |resp, e| {
                    if let ResponseKind::IncrementalAlterConfigs(x) = resp {
                        x.responses.extend(e);
                    }
                },
            )
        }
        RequestKind::InitProducerId(r) => {
            let (allowed, denied) = match &r.transactional_id {
                Some(tid) => (
                    auth.allows(Op::Write, Rt::TransactionalId, tid),
                    ResponseError::TransactionalIdAuthorizationFailed,
                ),
                None => (
                    cluster(Op::IdempotentWrite) || auth.allows_some(Op::Write, Rt::Topic),
                    CLUSTER_DENIED,
                ),
            };
            if !allowed {
                let mut resp = InitProducerIdResponse::default();
                resp.error_code = code(denied);
                resp.producer_id = (-1).into();
                resp.producer_epoch = -1;
                return Gate::Answer(ResponseKind::InitProducerId(resp));
            }
            Gate::Run(RequestKind::InitProducerId(r), Patch::none())
        }
        RequestKind::FindCoordinator(mut r) => {
            // Key type 0 is a group; 1 a transactional id.
            let rt = if r.key_type == 1 {
                Rt::TransactionalId
            } else {
                Rt::Group
            };
            let denied_error = if r.key_type == 1 {
                ResponseError::TransactionalIdAuthorizationFailed
            } else {
                GROUP_DENIED
            };
            if version < 4 {
                if !auth.allows(Op::Describe, rt, &r.key) {
                    let mut resp = FindCoordinatorResponse::default();
                    resp.error_code = code(denied_error);
                    resp.node_id = (-1).into();
                    resp.port = -1;
                    return Gate::Answer(ResponseKind::FindCoordinator(resp));
                }
                return Gate::Run(RequestKind::FindCoordinator(r), Patch::none());
            }
            let entries: Vec<_> = split(&mut r.coordinator_keys, |k| {
                auth.allows(Op::Describe, rt, k)
            })
            .into_iter()
            .map(|k| {
                let mut c = find_coordinator_response::Coordinator::default();
                c.key = k;
                c.node_id = (-1).into();
                c.port = -1;
                c.error_code = code(denied_error);
                c
            })
            .collect();
            run_with(RequestKind::FindCoordinator(r), entries, |resp, e| {
                if let ResponseKind::FindCoordinator(x) = resp {
                    x.coordinators.extend(e);
                }
            })
        }
        RequestKind::JoinGroup(r) => {
            group_whole!(JoinGroup, JoinGroupResponse, r, Op::Read);
            Gate::Run(RequestKind::JoinGroup(r), Patch::none())
        }
        RequestKind::SyncGroup(r) => {
            group_whole!(SyncGroup, SyncGroupResponse, r, Op::Read);
            Gate::Run(RequestKind::SyncGroup(r), Patch::none())
        }
        RequestKind::Heartbeat(r) => {
            group_whole!(Heartbeat, HeartbeatResponse, r, Op::Read);
            Gate::Run(RequestKind::Heartbeat(r), Patch::none())
        }
        RequestKind::LeaveGroup(r) => {
            group_whole!(LeaveGroup, LeaveGroupResponse, r, Op::Read);
            Gate::Run(RequestKind::LeaveGroup(r), Patch::none())
        }
        RequestKind::OffsetDelete(mut r) => {
            group_whole!(OffsetDelete, OffsetDeleteResponse, r, Op::Delete);
            let entries: Vec<_> = split(&mut r.topics, |t| topic(Op::Read, &t.name))
                .into_iter()
                .map(|t| {
                    let mut out = offset_delete_response::OffsetDeleteResponseTopic::default();
                    out.name = t.name;
                    out.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut d =
                                offset_delete_response::OffsetDeleteResponsePartition::default();
                            d.partition_index = p.partition_index;
                            d.error_code = code(TOPIC_DENIED);
                            d
                        })
                        .collect();
                    out
                })
                .collect();
            run_with(RequestKind::OffsetDelete(r), entries, |resp, e| {
                if let ResponseKind::OffsetDelete(x) = resp {
                    x.topics.extend(e);
                }
            })
        }
        RequestKind::OffsetCommit(mut r) => {
            // From v10 topics come by id: check the names they have (an unknown id is the handler's
            // UNKNOWN_TOPIC_ID, not an ACL matter).
            let unknown_id = |t: &offset_commit_request::OffsetCommitRequestTopic| {
                t.name.is_empty() && !t.topic_id.is_nil()
            };
            if version >= crate::handlers::offset_topic_ids::TOPIC_ID_VERSION {
                crate::handlers::offset_topic_ids::commit_names_from_ids(&mut r, |id| {
                    image.topic_by_id(id).map(|t| t.name.clone())
                });
            }
            let partitions_with = |t: &offset_commit_request::OffsetCommitRequestTopic,
                                   e: ResponseError| {
                let mut out = offset_commit_response::OffsetCommitResponseTopic::default();
                out.name = t.name.clone();
                out.topic_id = t.topic_id;
                out.partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let mut d =
                            offset_commit_response::OffsetCommitResponsePartition::default();
                        d.partition_index = p.partition_index;
                        d.error_code = code(e);
                        d
                    })
                    .collect();
                out
            };
            if !group(Op::Read, &r.group_id) {
                let mut resp = OffsetCommitResponse::default();
                resp.topics = r
                    .topics
                    .iter()
                    .map(|t| partitions_with(t, GROUP_DENIED))
                    .collect();
                return Gate::Answer(ResponseKind::OffsetCommit(resp));
            }
            let entries: Vec<_> =
                split(&mut r.topics, |t| unknown_id(t) || topic(Op::Read, &t.name))
                    .iter()
                    .map(|t| partitions_with(t, TOPIC_DENIED))
                    .collect();
            run_with(RequestKind::OffsetCommit(r), entries, |resp, e| {
                if let ResponseKind::OffsetCommit(x) = resp {
                    x.topics.extend(e);
                }
            })
        }
        RequestKind::OffsetFetch(mut r) => {
            if version < 8 {
                if !group(Op::Describe, &r.group_id) {
                    let mut resp = OffsetFetchResponse::default();
                    resp.error_code = code(GROUP_DENIED);
                    return Gate::Answer(ResponseKind::OffsetFetch(resp));
                }
                // Offsets of topics the principal may not describe are not shown.
                return Gate::Run(
                    RequestKind::OffsetFetch(r),
                    hide_offset_fetch_topics(auth, image),
                );
            }
            let denied: Vec<_> = split(&mut r.groups, |g| group(Op::Describe, &g.group_id))
                .into_iter()
                .map(|g| {
                    let mut out = offset_fetch_response::OffsetFetchResponseGroup::default();
                    out.group_id = g.group_id;
                    out.error_code = code(GROUP_DENIED);
                    out
                })
                .collect();
            let mut patch = hide_offset_fetch_topics(auth, image);
            if !denied.is_empty() {
                let hide = patch;
                patch = Patch::new(move |resp| {
                    hide.apply(resp);
                    if let ResponseKind::OffsetFetch(x) = resp {
                        x.groups.extend(denied);
                    }
                });
            }
            Gate::Run(RequestKind::OffsetFetch(r), patch)
        }
        RequestKind::DescribeGroups(mut r) => {
            let entries: Vec<_> = split(&mut r.groups, |g| group(Op::Describe, g))
                .into_iter()
                .map(|g| {
                    let mut out = describe_groups_response::DescribedGroup::default();
                    out.group_id = g;
                    out.error_code = code(GROUP_DENIED);
                    out
                })
                .collect();
            run_with(RequestKind::DescribeGroups(r), entries, |resp, e| {
                if let ResponseKind::DescribeGroups(x) = resp {
                    x.groups.extend(e);
                }
            })
        }
        RequestKind::DeleteGroups(mut r) => {
            let entries: Vec<_> = split(&mut r.groups_names, |g| group(Op::Delete, g))
                .into_iter()
                .map(|g| {
                    let mut out = delete_groups_response::DeletableGroupResult::default();
                    out.group_id = g;
                    out.error_code = code(GROUP_DENIED);
                    out
                })
                .collect();
            run_with(RequestKind::DeleteGroups(r), entries, |resp, e| {
                if let ResponseKind::DeleteGroups(x) = resp {
                    x.results.extend(e);
                }
            })
        }
        RequestKind::ListGroups(r) => {
            if cluster(Op::Describe) {
                return Gate::Run(RequestKind::ListGroups(r), Patch::none());
            }
            // Without DESCRIBE on the cluster, only the groups the principal may describe.
            let auth = auth.clone();
            Gate::Run(
                RequestKind::ListGroups(r),
                Patch::new(move |resp| {
                    if let ResponseKind::ListGroups(x) = resp {
                        x.groups
                            .retain(|g| auth.allows(Op::Describe, Rt::Group, &g.group_id));
                    }
                }),
            )
        }
        RequestKind::ElectLeaders(r) => {
            whole!(ElectLeaders, ElectLeadersResponse, Op::Alter);
            Gate::Run(RequestKind::ElectLeaders(r), Patch::none())
        }
        RequestKind::AlterPartitionReassignments(r) => {
            whole!(
                AlterPartitionReassignments,
                AlterPartitionReassignmentsResponse,
                Op::Alter
            );
            Gate::Run(RequestKind::AlterPartitionReassignments(r), Patch::none())
        }
        RequestKind::ListPartitionReassignments(r) => {
            whole!(
                ListPartitionReassignments,
                ListPartitionReassignmentsResponse,
                Op::Describe
            );
            Gate::Run(RequestKind::ListPartitionReassignments(r), Patch::none())
        }
        RequestKind::DescribeLogDirs(r) => {
            whole!(DescribeLogDirs, DescribeLogDirsResponse, Op::Describe);
            Gate::Run(RequestKind::DescribeLogDirs(r), Patch::none())
        }
        RequestKind::DescribeQuorum(r) => {
            whole!(DescribeQuorum, DescribeQuorumResponse, Op::Describe);
            Gate::Run(RequestKind::DescribeQuorum(r), Patch::none())
        }
        RequestKind::AddRaftVoter(r) => {
            whole!(AddRaftVoter, AddRaftVoterResponse, Op::Alter);
            Gate::Run(RequestKind::AddRaftVoter(r), Patch::none())
        }
        RequestKind::RemoveRaftVoter(r) => {
            whole!(RemoveRaftVoter, RemoveRaftVoterResponse, Op::Alter);
            Gate::Run(RequestKind::RemoveRaftVoter(r), Patch::none())
        }
        RequestKind::UpdateRaftVoter(r) => {
            whole!(UpdateRaftVoter, UpdateRaftVoterResponse, Op::ClusterAction);
            Gate::Run(RequestKind::UpdateRaftVoter(r), Patch::none())
        }
        RequestKind::AlterUserScramCredentials(r) => {
            if !cluster(Op::Alter) {
                let users: std::collections::BTreeSet<StrBytes> = r
                    .deletions
                    .iter()
                    .map(|d| d.name.clone())
                    .chain(r.upsertions.iter().map(|u| u.name.clone()))
                    .collect();
                let mut resp = AlterUserScramCredentialsResponse::default();
                resp.results = users
                    .into_iter()
                    .map(|user| {
                        let mut out =
                            alter_user_scram_credentials_response::AlterUserScramCredentialsResult::default();
                        out.user = user;
                        out.error_code = code(CLUSTER_DENIED);
                        out
                    })
                    .collect();
                return Gate::Answer(ResponseKind::AlterUserScramCredentials(resp));
            }
            Gate::Run(RequestKind::AlterUserScramCredentials(r), Patch::none())
        }
        RequestKind::DescribeUserScramCredentials(r) => {
            whole!(
                DescribeUserScramCredentials,
                DescribeUserScramCredentialsResponse,
                Op::Describe
            );
            Gate::Run(RequestKind::DescribeUserScramCredentials(r), Patch::none())
        }
        RequestKind::DescribeClientQuotas(r) => {
            whole!(
                DescribeClientQuotas,
                DescribeClientQuotasResponse,
                Op::DescribeConfigs
            );
            Gate::Run(RequestKind::DescribeClientQuotas(r), Patch::none())
        }
        RequestKind::UpdateFeatures(r) => {
            whole!(UpdateFeatures, UpdateFeaturesResponse, Op::Alter);
            Gate::Run(RequestKind::UpdateFeatures(r), Patch::none())
        }
        RequestKind::ListConfigResources(r) => {
            whole!(
                ListConfigResources,
                ListConfigResourcesResponse,
                Op::DescribeConfigs
            );
            Gate::Run(RequestKind::ListConfigResources(r), Patch::none())
        }
        // DESCRIBE on each topic, checked by the handler before it pages (as Kafka's
        // DescribeTopicPartitionsRequestHandler does), so hidden topics take no room in a page.
        RequestKind::DescribeTopicPartitions(r) => {
            Gate::Run(RequestKind::DescribeTopicPartitions(r), Patch::none())
        }
        // GetTelemetrySubscriptions and PushTelemetry need nothing either (Kafka checks no ACL for them).
        // ApiVersions, SaslHandshake, SaslAuthenticate and DescribeCluster need nothing (Kafka
        // answers DescribeCluster to anyone; only its authorized operations need DESCRIBE); the
        // ACL APIs check in their handlers.
        other => Gate::Run(other, Patch::none()),
    }
}

/// A response that is never sent (Produce with acks=0) cannot carry the errors.
fn answer_unless_acks0(acks: i16, resp: ResponseKind) -> Gate {
    if acks == 0 {
        let mut empty = ProduceRequest::default();
        empty.acks = 0;
        return Gate::Run(RequestKind::Produce(empty), Patch::none());
    }
    Gate::Answer(resp)
}

fn produce_denied(
    denied: Vec<produce_request::TopicProduceData>,
    error: ResponseError,
) -> Vec<produce_response::TopicProduceResponse> {
    denied
        .into_iter()
        .map(|t| {
            let mut out = produce_response::TopicProduceResponse::default();
            out.name = t.name;
            out.topic_id = t.topic_id;
            out.partition_responses = t
                .partition_data
                .iter()
                .map(|p| {
                    let mut d = produce_response::PartitionProduceResponse::default();
                    d.index = p.index;
                    d.error_code = code(error);
                    d.base_offset = -1;
                    d.log_append_time_ms = -1;
                    d.log_start_offset = -1;
                    d
                })
                .collect();
            out
        })
        .collect()
}

/// Runs the narrowed request and appends `entries` to its response (nothing when empty).
fn run_with<E: Send + 'static>(
    req: RequestKind,
    entries: Vec<E>,
    extend: impl FnOnce(&mut ResponseKind, Vec<E>) + Send + 'static,
) -> Gate {
    if entries.is_empty() {
        return Gate::Run(req, Patch::none());
    }
    Gate::Run(req, Patch::new(move |resp| extend(resp, entries)))
}

/// Config resource types (ConfigResource ids): topics need the topic permission, brokers and
/// broker loggers the cluster's; other types are the handler's to refuse.
fn config_allowed(auth: &RequestAuth, resource_type: i8, name: &str, alter: bool) -> bool {
    let op = if alter {
        Op::AlterConfigs
    } else {
        Op::DescribeConfigs
    };
    match resource_type {
        2 => auth.allows(op, Rt::Topic, name),
        4 | 8 => auth.allows_cluster(op),
        32 => auth.allows(op, Rt::Group, name),
        _ => true,
    }
}

fn config_denied(resource_type: i8) -> ResponseError {
    match resource_type {
        2 => TOPIC_DENIED,
        32 => GROUP_DENIED,
        _ => CLUSTER_DENIED,
    }
}

/// OffsetFetch: partitions of topics the principal may not DESCRIBE are left out of the answer.
fn hide_offset_fetch_topics(auth: &RequestAuth, image: &MetadataImage) -> Patch {
    let visible: Vec<String> = image
        .topics()
        .filter(|t| auth.allows(Op::Describe, Rt::Topic, &t.name))
        .map(|t| t.name.clone())
        .collect();
    // An empty name is an OffsetFetch v10 topic id the metadata does not know (answered UNKNOWN_TOPIC_ID).
    let shown = move |name: &str| name.is_empty() || visible.iter().any(|v| v == name);
    Patch::new(move |resp| {
        if let ResponseKind::OffsetFetch(x) = resp {
            x.topics.retain(|t| shown(&t.name));
            for g in &mut x.groups {
                g.topics.retain(|t| shown(&t.name));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Authorizer, AuthorizerConfig};
    use kraftwerk_controller::acl::{AclBinding, AclPermission, PatternType};
    use kraftwerk_controller::records::MetadataRecord;

    fn image() -> MetadataImage {
        let acl = AclBinding {
            resource_type: Rt::Topic,
            resource_name: "a-".into(),
            pattern_type: PatternType::Prefixed,
            principal: "User:a".into(),
            host: "*".into(),
            operation: Op::Write,
            permission: AclPermission::Allow,
        };
        MetadataImage::empty("c").apply(
            0,
            &[
                MetadataRecord::Topic {
                    name: "a-t".into(),
                    id: uuid::Uuid::from_u128(1),
                },
                MetadataRecord::Topic {
                    name: "b-t".into(),
                    id: uuid::Uuid::from_u128(2),
                },
                MetadataRecord::AccessControlEntry {
                    id: uuid::Uuid::from_u128(9),
                    acl,
                },
            ],
        )
    }

    fn auth(image: &MetadataImage, authorizer: &Authorizer, principal: &str) -> RequestAuth {
        RequestAuth::new(
            Some(authorizer),
            image,
            principal,
            "127.0.0.1".parse().unwrap(),
        )
    }

    fn produce(topics: &[&str]) -> RequestKind {
        let mut r = ProduceRequest::default();
        r.acks = -1;
        for t in topics {
            let mut d = produce_request::TopicProduceData::default();
            d.name = TopicName(StrBytes::from_string(t.to_string()));
            d.partition_data
                .push(produce_request::PartitionProduceData::default());
            r.topic_data.push(d);
        }
        RequestKind::Produce(r)
    }

    #[test]
    fn scram_credentials_and_client_quotas_need_the_cluster() {
        let image = image();
        let authz =
            Authorizer::new(&AuthorizerConfig::from_properties(Some("x"), None, false).unwrap());
        let mut alter = AlterUserScramCredentialsRequest::default();
        let mut u = alter_user_scram_credentials_request::ScramCredentialUpsertion::default();
        u.name = StrBytes::from_static_str("alice");
        alter.upsertions.push(u);
        let Gate::Answer(ResponseKind::AlterUserScramCredentials(resp)) = gate(
            &auth(&image, &authz, "User:a"),
            &image,
            RequestKind::AlterUserScramCredentials(alter),
            0,
        ) else {
            panic!("a user without ALTER on the cluster must not change credentials");
        };
        assert_eq!(resp.results[0].user.as_str(), "alice");
        assert_eq!(resp.results[0].error_code, code(CLUSTER_DENIED));
        for req in [
            RequestKind::DescribeUserScramCredentials(
                DescribeUserScramCredentialsRequest::default(),
            ),
            RequestKind::DescribeClientQuotas(DescribeClientQuotasRequest::default()),
            // Kafka's handleListConfigResources: DESCRIBE_CONFIGS on the cluster.
            RequestKind::ListConfigResources(ListConfigResourcesRequest::default()),
            // ControllerApis.handleUpdateFeatures: ALTER on the cluster.
            RequestKind::UpdateFeatures(UpdateFeaturesRequest::default()),
        ] {
            assert!(matches!(
                gate(&auth(&image, &authz, "User:a"), &image, req, 0),
                Gate::Answer(_)
            ));
        }
    }

    #[test]
    fn offset_commit_v10_checks_the_names_of_the_topic_ids() {
        let image = image();
        // No ACL on the group or on b-t: allowed; a-t has one (WRITE only), so READ is denied.
        let authz =
            Authorizer::new(&AuthorizerConfig::from_properties(Some("x"), None, true).unwrap());
        let mut r = OffsetCommitRequest::default();
        r.group_id = GroupId(StrBytes::from_static_str("g"));
        for id in [1, 2, 99] {
            let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
            t.topic_id = uuid::Uuid::from_u128(id);
            t.partitions
                .push(offset_commit_request::OffsetCommitRequestPartition::default());
            r.topics.push(t);
        }
        let Gate::Run(RequestKind::OffsetCommit(r), patch) = gate(
            &auth(&image, &authz, "User:a"),
            &image,
            RequestKind::OffsetCommit(r),
            10,
        ) else {
            panic!("expected the allowed topics to run");
        };
        let names: Vec<&str> = r.topics.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["b-t", ""],
            "the unknown id is left to the handler"
        );
        let mut resp = ResponseKind::OffsetCommit(OffsetCommitResponse::default());
        patch.apply(&mut resp);
        let ResponseKind::OffsetCommit(c) = resp else {
            unreachable!()
        };
        assert_eq!(c.topics.len(), 1);
        assert_eq!(c.topics[0].topic_id, uuid::Uuid::from_u128(1));
        assert_eq!(c.topics[0].partitions[0].error_code, code(TOPIC_DENIED));
    }

    #[test]
    fn produce_is_narrowed_and_the_denied_topic_answered_per_topic() {
        let image = image();
        let authz =
            Authorizer::new(&AuthorizerConfig::from_properties(Some("x"), None, false).unwrap());
        let Gate::Run(RequestKind::Produce(r), patch) = gate(
            &auth(&image, &authz, "User:a"),
            &image,
            produce(&["a-t", "b-t"]),
            9,
        ) else {
            panic!("expected the allowed topic to run");
        };
        assert_eq!(r.topic_data.len(), 1);
        assert_eq!(r.topic_data[0].name.as_str(), "a-t");
        let mut resp = ResponseKind::Produce(ProduceResponse::default());
        patch.apply(&mut resp);
        let ResponseKind::Produce(p) = resp else {
            unreachable!()
        };
        assert_eq!(p.responses.len(), 1);
        assert_eq!(p.responses[0].name.as_str(), "b-t");
        assert_eq!(
            p.responses[0].partition_responses[0].error_code,
            code(TOPIC_DENIED)
        );
        // Nothing allowed: answered without the handler.
        assert!(matches!(
            gate(
                &auth(&image, &authz, "User:b"),
                &image,
                produce(&["a-t"]),
                9
            ),
            Gate::Answer(_)
        ));
    }

    #[test]
    fn broker_loggers_need_the_cluster_configs_permissions() {
        // Kafka: DESCRIBE_CONFIGS (DescribeConfigs) and ALTER_CONFIGS (IncrementalAlterConfigs) on the cluster
        // for BROKER_LOGGER, refused with CLUSTER_AUTHORIZATION_FAILED; a super user passes.
        let image = image();
        let authz = Authorizer::new(
            &AuthorizerConfig::from_properties(Some("x"), Some("User:admin"), false).unwrap(),
        );
        let logger = StrBytes::from_static_str("1");
        let mut alter = IncrementalAlterConfigsRequest::default();
        let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
        res.resource_type = 8;
        res.resource_name = logger.clone();
        alter.resources.push(res);
        let mut describe = DescribeConfigsRequest::default();
        let mut res = describe_configs_request::DescribeConfigsResource::default();
        res.resource_type = 8;
        res.resource_name = logger;
        describe.resources.push(res);
        let Gate::Run(RequestKind::IncrementalAlterConfigs(left), patch) = gate(
            &auth(&image, &authz, "User:a"),
            &image,
            RequestKind::IncrementalAlterConfigs(alter.clone()),
            1,
        ) else {
            panic!("the request runs without the refused resource");
        };
        assert!(left.resources.is_empty());
        let mut resp = ResponseKind::IncrementalAlterConfigs(Default::default());
        patch.apply(&mut resp);
        let ResponseKind::IncrementalAlterConfigs(r) = resp else {
            unreachable!()
        };
        assert_eq!(r.responses[0].error_code, code(CLUSTER_DENIED));
        assert_eq!(r.responses[0].resource_type, 8);
        let Gate::Run(RequestKind::DescribeConfigs(left), patch) = gate(
            &auth(&image, &authz, "User:a"),
            &image,
            RequestKind::DescribeConfigs(describe.clone()),
            4,
        ) else {
            panic!("the request runs without the refused resource");
        };
        assert!(left.resources.is_empty());
        let mut resp = ResponseKind::DescribeConfigs(Default::default());
        patch.apply(&mut resp);
        let ResponseKind::DescribeConfigs(r) = resp else {
            unreachable!()
        };
        assert_eq!(r.results[0].error_code, code(CLUSTER_DENIED));
        let Gate::Run(RequestKind::IncrementalAlterConfigs(kept), _) = gate(
            &auth(&image, &authz, "User:admin"),
            &image,
            RequestKind::IncrementalAlterConfigs(alter),
            1,
        ) else {
            panic!("a super user's request runs");
        };
        assert_eq!(kept.resources.len(), 1);
    }

    #[test]
    fn metadata_for_all_topics_hides_what_is_not_described() {
        let image = image();
        let authz =
            Authorizer::new(&AuthorizerConfig::from_properties(Some("x"), None, false).unwrap());
        let Gate::Run(_, patch) = gate(
            &auth(&image, &authz, "User:a"),
            &image,
            RequestKind::Metadata(MetadataRequest::default().with_topics(None)),
            12,
        ) else {
            panic!("metadata runs");
        };
        let mut m = MetadataResponse::default();
        for name in ["a-t", "b-t"] {
            let mut t = metadata_response::MetadataResponseTopic::default();
            t.name = Some(TopicName(StrBytes::from_string(name.into())));
            m.topics.push(t);
        }
        let mut resp = ResponseKind::Metadata(m);
        patch.apply(&mut resp);
        let ResponseKind::Metadata(m) = resp else {
            unreachable!()
        };
        let names: Vec<_> = m
            .topics
            .iter()
            .map(|t| t.name.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(names, vec!["a-t"]);
    }

    #[test]
    fn cluster_apis_and_groups_are_refused_as_a_whole() {
        let image = image();
        let authz =
            Authorizer::new(&AuthorizerConfig::from_properties(Some("x"), None, false).unwrap());
        let a = auth(&image, &authz, "User:a");
        let Gate::Answer(ResponseKind::ElectLeaders(r)) =
            gate(&a, &image, RequestKind::ElectLeaders(Default::default()), 2)
        else {
            panic!("denied");
        };
        assert_eq!(r.error_code, code(CLUSTER_DENIED));
        let Gate::Answer(ResponseKind::JoinGroup(r)) =
            gate(&a, &image, RequestKind::JoinGroup(Default::default()), 5)
        else {
            panic!("denied");
        };
        assert_eq!(r.error_code, code(GROUP_DENIED));
        // Follower fetches need CLUSTER_ACTION.
        let mut f = FetchRequest::default();
        f.replica_id = BrokerId(2);
        f.topics.push(fetch_request::FetchTopic::default());
        assert!(matches!(
            gate(&a, &image, RequestKind::Fetch(f), 12),
            Gate::Answer(_)
        ));
    }
}
