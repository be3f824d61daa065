//! Group membership, SASL, producer state and voter changes at wire level: JoinGroup, SyncGroup,
//! Heartbeat and LeaveGroup through a group's life (new, unknown and stale members, wrong generations,
//! a rebalance in progress, an inconsistent protocol type, fenced static members), ListGroups with its
//! filters, OffsetDelete, DescribeProducers, InitProducerId's edge cases, SaslHandshake and
//! SaslAuthenticate (on a second pair of brokers with a SASL_PLAINTEXT listener), and the error paths of
//! AddRaftVoter and RemoveRaftVoter. Every API at the lowest and the highest version both brokers
//! advertise; group names carry the version, so the two runs never share a group.
//!
//! A JoinGroup that waits for other members (the second member of a rebalance) is sent on a connection
//! of its own, on a thread, so the first member can go on heartbeating meanwhile.

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::describe_producers_request::TopicRequest as ProducersTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DescribeProducersRequest, GroupId, HeartbeatRequest, InitProducerIdRequest, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, ListGroupsRequest, ListGroupsResponse,
    OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest, ProducerId, SyncGroupRequest,
    TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};
use kraftwerk_tests::conformance::compare::{Normalise, Rule};
use kraftwerk_tests::conformance::Pair;
use kraftwerk_tests::wire::Connection;
use kraftwerk_tests::HarnessError;

/// The topic group members subscribe to (created by scenarios.rs's setup on both brokers).
const TOPIC: &str = "conf-topic";

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn topic_name(text: &str) -> TopicName {
    TopicName(s(text))
}

fn check<T>(what: &str, result: Result<T, HarnessError>) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

pub fn run_all(pair: &mut Pair) {
    let sasl_brokers = start_sasl_brokers();
    let runs = group_runs(pair);
    for run in &runs {
        group_lifecycle(pair, run);
        static_members(pair, run);
    }
    list_groups(pair);
    offset_delete(pair);
    describe_producers(pair);
    init_producer_id_edges(pair);
    sasl_on_plaintext(pair);
    raft_voters(pair);
    match sasl_brokers.join() {
        Ok(Ok(mut brokers)) => {
            sasl(pair, &brokers);
            leader_epochs_after_restart(pair, &mut brokers);
        }
        Ok(Err(e)) => panic!("the SASL brokers do not start: {e}"),
        Err(_) => panic!("the SASL brokers' start-up thread panicked"),
    }
}

// --- requests ---------------------------------------------------------------------------------------

/// A consumer's JoinGroup metadata (ConsumerProtocolSubscription v0): subscribed to `topic`, no user data.
fn subscription(topic: &str) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(1);
    b.put_i16(i16::try_from(topic.len()).unwrap_or(i16::MAX));
    b.put_slice(topic.as_bytes());
    b.put_i32(-1);
    b.freeze()
}

/// A consumer's SyncGroup assignment (ConsumerProtocolAssignment v0): `partitions` of `topic`.
fn assignment(topic: &str, partitions: &[i32]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(1);
    b.put_i16(i16::try_from(topic.len()).unwrap_or(i16::MAX));
    b.put_slice(topic.as_bytes());
    b.put_i32(i32::try_from(partitions.len()).unwrap_or(0));
    for p in partitions {
        b.put_i32(*p);
    }
    b.put_i32(-1);
    b.freeze()
}

struct Join<'a> {
    group: &'a str,
    member: &'a str,
    instance: Option<&'a str>,
    protocol_type: &'a str,
    /// The assignor offered (one).
    protocol: &'a str,
    session_timeout_ms: i32,
}

impl<'a> Join<'a> {
    fn new(group: &'a str, member: &'a str) -> Self {
        Join {
            group,
            member,
            instance: None,
            protocol_type: "consumer",
            protocol: "range",
            session_timeout_ms: 30_000,
        }
    }

    fn request(&self, v: i16) -> JoinGroupRequest {
        let mut req = JoinGroupRequest::default()
            .with_group_id(GroupId(s(self.group)))
            .with_session_timeout_ms(self.session_timeout_ms)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(s(self.member))
            .with_protocol_type(s(self.protocol_type))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(s(self.protocol))
                .with_metadata(subscription(TOPIC))]);
        if v >= 5 {
            req.group_instance_id = self.instance.map(s);
        }
        if v >= 8 {
            req.reason = Some(s("conformance"));
        }
        req
    }
}

fn sync_request(
    v: i16,
    group: &str,
    generation: i32,
    member: &str,
    instance: Option<&str>,
    assignments: &[(&str, &[i32])],
) -> SyncGroupRequest {
    let mut req = SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(member))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, parts)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(m))
                        .with_assignment(assignment(TOPIC, parts))
                })
                .collect(),
        );
    if v >= 3 {
        req.group_instance_id = instance.map(s);
    }
    if v >= 5 {
        req.protocol_type = Some(s("consumer"));
        req.protocol_name = Some(s("range"));
    }
    req
}

fn heartbeat_request(
    v: i16,
    group: &str,
    generation: i32,
    member: &str,
    instance: Option<&str>,
) -> HeartbeatRequest {
    let mut req = HeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(member));
    if v >= 3 {
        req.group_instance_id = instance.map(s);
    }
    req
}

fn leave_request(v: i16, group: &str, member: &str, instance: Option<&str>) -> LeaveGroupRequest {
    let req = LeaveGroupRequest::default().with_group_id(GroupId(s(group)));
    if v >= 3 {
        let mut identity = MemberIdentity::default()
            .with_member_id(s(member))
            .with_group_instance_id(instance.map(s));
        if v >= 5 {
            identity.reason = Some(s("conformance"));
        }
        req.with_members(vec![identity])
    } else {
        req.with_member_id(s(member))
    }
}

// --- the versions of one run ------------------------------------------------------------------------

/// The versions of the four membership APIs for one run: all at their lowest common version, or all at
/// their highest.
struct Run {
    join: i16,
    sync: i16,
    heartbeat: i16,
    leave: i16,
}

fn group_runs(pair: &Pair) -> Vec<Run> {
    let j = pair.versions::<JoinGroupRequest>();
    let sy = pair.versions::<SyncGroupRequest>();
    let h = pair.versions::<HeartbeatRequest>();
    let l = pair.versions::<LeaveGroupRequest>();
    let pick = |v: &[i16], high: bool| {
        if high {
            v.last().copied()
        } else {
            v.first().copied()
        }
    };
    [false, true]
        .into_iter()
        .filter_map(|high| {
            Some(Run {
                join: pick(&j, high)?,
                sync: pick(&sy, high)?,
                heartbeat: pick(&h, high)?,
                leave: pick(&l, high)?,
            })
        })
        .collect()
}

/// One member as each broker knows it: its member id and generation there.
#[derive(Clone, Debug)]
struct Member {
    kafka: (String, i32),
    kraftwerk: (String, i32),
}

impl Member {
    fn of(a: &JoinGroupResponse, b: &JoinGroupResponse) -> Self {
        Member {
            kafka: (a.member_id.to_string(), a.generation_id),
            kraftwerk: (b.member_id.to_string(), b.generation_id),
        }
    }
}

/// Waits until both brokers' coordinators serve `group` (Kafka loads each __consumer_offsets partition
/// asynchronously; meanwhile it answers NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS).
fn wait_group_ready(pair: &mut Pair, group: &str) {
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(None);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (a, b) = check("OffsetFetch (setup)", pair.both(7, &req));
        if a.error_code == 0 && b.error_code == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "group {group} not served after 60 s: {a:?} / {b:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Joins `join` on both (compared as `scenario`); from v4 a new member is first told its id
/// (MEMBER_ID_REQUIRED, compared as `scenario` + " (member id required)") and joins again with it.
fn join_new(pair: &mut Pair, scenario: &str, v: i16, join: &Join) -> Member {
    let (a, b) = check(scenario, pair.exchange(scenario, v, &join.request(v)));
    if a.error_code == 79 && b.error_code == 79 {
        let again = format!("{scenario} with the required member id");
        let ja = Join {
            member: a.member_id.as_str(),
            ..*join
        };
        let jb = Join {
            member: b.member_id.as_str(),
            ..*join
        };
        let (a, b) = check(
            &again,
            pair.exchange_each(&again, v, &ja.request(v), &jb.request(v)),
        );
        return Member::of(&a, &b);
    }
    Member::of(&a, &b)
}

/// A JoinGroup that the coordinator holds until the rebalance completes, on its own connection.
struct PendingJoin {
    version: i16,
    kafka: JoinHandle<Result<JoinGroupResponse, HarnessError>>,
    kraftwerk: JoinHandle<Result<JoinGroupResponse, HarnessError>>,
}

fn send_join(
    addr: SocketAddr,
    v: i16,
    req: JoinGroupRequest,
) -> JoinHandle<Result<JoinGroupResponse, HarnessError>> {
    std::thread::spawn(move || {
        let mut conn = Connection::connect(addr, Duration::from_secs(60))?;
        conn.request(v, &req)
    })
}

impl PendingJoin {
    fn start(
        pair: &Pair,
        v: i16,
        to_kafka: JoinGroupRequest,
        to_kraftwerk: JoinGroupRequest,
    ) -> Self {
        PendingJoin {
            version: v,
            kafka: send_join(pair.kafka.addr, v, to_kafka),
            kraftwerk: send_join(pair.kraftwerk.addr, v, to_kraftwerk),
        }
    }

    /// Waits for both answers and compares them as `scenario`.
    fn finish(self, pair: &mut Pair, scenario: &str) -> Member {
        let wait = |h: JoinHandle<Result<JoinGroupResponse, HarnessError>>| match h.join() {
            Ok(r) => check(scenario, r),
            Err(_) => panic!("{scenario}: the joining thread panicked"),
        };
        let a = wait(self.kafka);
        let b = wait(self.kraftwerk);
        check(
            scenario,
            pair.compare(scenario, JoinGroupRequest::KEY, self.version, &a, &b, &[]),
        );
        Member::of(&a, &b)
    }
}

/// Heartbeats `member` on both (not compared) until both answer `code` (or 30 s pass).
fn heartbeat_until(pair: &mut Pair, v: i16, group: &str, member: &Member, code: i16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = heartbeat_request(v, group, member.kafka.1, &member.kafka.0, None);
        let b = heartbeat_request(v, group, member.kraftwerk.1, &member.kraftwerk.0, None);
        let (ra, rb) = check("Heartbeat (setup)", pair.both_each(v, &a, &b));
        if (ra.error_code == code && rb.error_code == code) || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// --- JoinGroup, SyncGroup, Heartbeat, LeaveGroup ----------------------------------------------------

fn group_lifecycle(pair: &mut Pair, run: &Run) {
    let Run {
        join: jv,
        sync: sv,
        heartbeat: hv,
        leave: lv,
    } = *run;
    let group = format!("conf-wire-v{jv}");
    let group = group.as_str();
    wait_group_ready(pair, group);

    // A new group's first member leads it.
    let first = join_new(pair, "join group new member", jv, &Join::new(group, ""));

    // SyncGroup's error paths while the group awaits its leader's assignment.
    let each_sync =
        |pair: &mut Pair, scenario: &str, build: &dyn Fn(&str, i32) -> SyncGroupRequest| {
            let a = build(&first.kafka.0, first.kafka.1);
            let b = build(&first.kraftwerk.0, first.kraftwerk.1);
            check(scenario, pair.exchange_each(scenario, sv, &a, &b));
        };
    each_sync(pair, "sync group wrong generation", &|m, g| {
        sync_request(sv, group, g + 1, m, None, &[])
    });
    each_sync(pair, "sync group unknown member", &|_, g| {
        sync_request(sv, group, g, "conf-nobody", None, &[])
    });
    if sv >= 5 {
        each_sync(pair, "sync group inconsistent protocol type", &|m, g| {
            let mut req = sync_request(sv, group, g, m, None, &[]);
            req.protocol_type = Some(s("connect"));
            req
        });
    }
    each_sync(pair, "sync group leader", &|m, g| {
        sync_request(sv, group, g, m, None, &[(m, &[0])])
    });

    // Heartbeats of a stable group.
    let each_heartbeat =
        |pair: &mut Pair, scenario: &str, build: &dyn Fn(&str, i32) -> HeartbeatRequest| {
            let a = build(&first.kafka.0, first.kafka.1);
            let b = build(&first.kraftwerk.0, first.kraftwerk.1);
            check(scenario, pair.exchange_each(scenario, hv, &a, &b));
        };
    each_heartbeat(pair, "heartbeat stable", &|m, g| {
        heartbeat_request(hv, group, g, m, None)
    });
    each_heartbeat(pair, "heartbeat wrong generation", &|m, g| {
        heartbeat_request(hv, group, g + 1, m, None)
    });
    each_heartbeat(pair, "heartbeat unknown member", &|_, g| {
        heartbeat_request(hv, group, g, "conf-nobody", None)
    });
    wait_group_ready(pair, "conf-wire-nobody");
    check(
        "heartbeat unknown group",
        pair.exchange(
            "heartbeat unknown group",
            hv,
            &heartbeat_request(hv, "conf-wire-nobody", 1, "conf-nobody", None),
        ),
    );

    // JoinGroup's error paths against the stable group.
    let bad_join = |pair: &mut Pair, scenario: &str, join: Join| {
        check(scenario, pair.exchange(scenario, jv, &join.request(jv)));
    };
    bad_join(
        pair,
        "join group session timeout too small",
        Join {
            session_timeout_ms: 1,
            ..Join::new(group, "")
        },
    );
    bad_join(
        pair,
        "join group session timeout too large",
        Join {
            session_timeout_ms: i32::MAX,
            ..Join::new(group, "")
        },
    );
    bad_join(
        pair,
        "join group unknown member id",
        Join::new(group, "conf-nobody"),
    );
    bad_join(
        pair,
        "join group inconsistent protocol type",
        Join {
            protocol_type: "connect",
            ..Join::new(group, "")
        },
    );
    bad_join(
        pair,
        "join group unknown member id in another group",
        Join::new("conf-wire-nobody", "conf-nobody"),
    );
    bad_join(
        pair,
        "join group no common protocol",
        Join {
            protocol: "roundrobin",
            ..Join::new(group, "")
        },
    );
    bad_join(pair, "join group empty group id", Join::new("", ""));
    check(
        "heartbeat empty group id",
        pair.exchange(
            "heartbeat empty group id",
            hv,
            &heartbeat_request(hv, "", 1, "conf-nobody", None),
        ),
    );
    check(
        "sync group empty group id",
        pair.exchange(
            "sync group empty group id",
            sv,
            &sync_request(sv, "", 1, "conf-nobody", None, &[]),
        ),
    );
    check(
        "leave group empty group id",
        pair.exchange(
            "leave group empty group id",
            lv,
            &leave_request(lv, "", "conf-nobody", None),
        ),
    );

    // A second member joins: the group rebalances, and the first member learns it from its heartbeat.
    let second_join = Join::new(group, "");
    let pending = if jv >= 4 {
        let (a, b) = check(
            "join group second member",
            pair.exchange("join group second member", jv, &second_join.request(jv)),
        );
        let ja = Join {
            member: a.member_id.as_str(),
            ..Join::new(group, "")
        };
        let jb = Join {
            member: b.member_id.as_str(),
            ..Join::new(group, "")
        };
        PendingJoin::start(pair, jv, ja.request(jv), jb.request(jv))
    } else {
        PendingJoin::start(pair, jv, second_join.request(jv), second_join.request(jv))
    };
    heartbeat_until(pair, hv, group, &first, 27);
    each_heartbeat(pair, "heartbeat rebalance in progress", &|m, g| {
        heartbeat_request(hv, group, g, m, None)
    });
    let each_sync =
        |pair: &mut Pair, scenario: &str, build: &dyn Fn(&str, i32) -> SyncGroupRequest| {
            let a = build(&first.kafka.0, first.kafka.1);
            let b = build(&first.kraftwerk.0, first.kraftwerk.1);
            check(scenario, pair.exchange_each(scenario, sv, &a, &b));
        };
    each_sync(pair, "sync group rebalance in progress", &|m, g| {
        sync_request(sv, group, g, m, None, &[(m, &[0])])
    });
    // The first member rejoins: the rebalance completes, it stays the leader.
    let rejoin_a = Join::new(group, &first.kafka.0).request(jv);
    let rejoin_b = Join::new(group, &first.kraftwerk.0).request(jv);
    let (ra, rb) = check(
        "join group rejoin completes the rebalance",
        pair.exchange_each(
            "join group rejoin completes the rebalance",
            jv,
            &rejoin_a,
            &rejoin_b,
        ),
    );
    let leader = Member::of(&ra, &rb);
    let second = pending.finish(pair, "join group second member admitted");
    // The new generation awaits its assignment: a commit is refused until the leader's SyncGroup.
    check(
        "offset commit while awaiting the assignment",
        pair.exchange_each(
            "offset commit while awaiting the assignment",
            8,
            &commit(group, leader.kafka.1, &leader.kafka.0, TOPIC),
            &commit(group, leader.kraftwerk.1, &leader.kraftwerk.0, TOPIC),
        ),
    );
    check(
        "heartbeat while awaiting the assignment",
        pair.exchange_each(
            "heartbeat while awaiting the assignment",
            hv,
            &heartbeat_request(hv, group, second.kafka.1, &second.kafka.0, None),
            &heartbeat_request(hv, group, second.kraftwerk.1, &second.kraftwerk.0, None),
        ),
    );
    // The leader's assignment first (a follower's SyncGroup waits for it), then the follower's.
    let (la, lb) = (
        sync_request(
            sv,
            group,
            leader.kafka.1,
            &leader.kafka.0,
            None,
            &[(&leader.kafka.0, &[0]), (&second.kafka.0, &[])],
        ),
        sync_request(
            sv,
            group,
            leader.kraftwerk.1,
            &leader.kraftwerk.0,
            None,
            &[(&leader.kraftwerk.0, &[0]), (&second.kraftwerk.0, &[])],
        ),
    );
    check(
        "sync group leader after a rebalance",
        pair.exchange_each("sync group leader after a rebalance", sv, &la, &lb),
    );
    let (fa, fb) = (
        sync_request(sv, group, second.kafka.1, &second.kafka.0, None, &[]),
        sync_request(
            sv,
            group,
            second.kraftwerk.1,
            &second.kraftwerk.0,
            None,
            &[],
        ),
    );
    check(
        "sync group follower",
        pair.exchange_each("sync group follower", sv, &fa, &fb),
    );
    check(
        "heartbeat previous generation",
        pair.exchange_each(
            "heartbeat previous generation",
            hv,
            &heartbeat_request(hv, group, first.kafka.1, &first.kafka.0, None),
            &heartbeat_request(hv, group, first.kraftwerk.1, &first.kraftwerk.0, None),
        ),
    );

    // Leaving: an unknown member, then the follower, then the leader (the group ends empty).
    check(
        "leave group unknown member",
        pair.exchange(
            "leave group unknown member",
            lv,
            &leave_request(lv, group, "conf-nobody", None),
        ),
    );
    check(
        "leave group unknown group",
        pair.exchange(
            "leave group unknown group",
            lv,
            &leave_request(lv, "conf-wire-nobody", "conf-nobody", None),
        ),
    );
    // From v3 one request may name several members: the follower and one the group never had.
    let leave_follower = |member: &str| {
        let mut req = leave_request(lv, group, member, None);
        if lv >= 3 {
            req.members
                .push(MemberIdentity::default().with_member_id(s("conf-nobody")));
        }
        req
    };
    check(
        "leave group follower",
        pair.exchange_each(
            "leave group follower",
            lv,
            &leave_follower(&second.kafka.0),
            &leave_follower(&second.kraftwerk.0),
        ),
    );
    check(
        "heartbeat after a member left",
        pair.exchange_each(
            "heartbeat after a member left",
            hv,
            &heartbeat_request(hv, group, leader.kafka.1, &leader.kafka.0, None),
            &heartbeat_request(hv, group, leader.kraftwerk.1, &leader.kraftwerk.0, None),
        ),
    );
    check(
        "leave group last member",
        pair.exchange_each(
            "leave group last member",
            lv,
            &leave_request(lv, group, &leader.kafka.0, None),
            &leave_request(lv, group, &leader.kraftwerk.0, None),
        ),
    );
    check(
        "heartbeat after leaving",
        pair.exchange_each(
            "heartbeat after leaving",
            hv,
            &heartbeat_request(hv, group, leader.kafka.1, &leader.kafka.0, None),
            &heartbeat_request(hv, group, leader.kraftwerk.1, &leader.kraftwerk.0, None),
        ),
    );
}

/// Static membership (KIP-345): a second consumer with the same `group.instance.id` takes the member's
/// place, and the old member id is fenced in every API. Needs JoinGroup v5, SyncGroup and Heartbeat v3,
/// LeaveGroup v3, so only the highest run has it.
fn static_members(pair: &mut Pair, run: &Run) {
    let Run {
        join: jv,
        sync: sv,
        heartbeat: hv,
        leave: lv,
    } = *run;
    if jv < 5 || sv < 3 || hv < 3 || lv < 3 {
        return;
    }
    let group = format!("conf-static-v{jv}");
    let group = group.as_str();
    let instance = Some("conf-instance");
    wait_group_ready(pair, group);
    let old = join_new(
        pair,
        "join group static member",
        jv,
        &Join {
            instance,
            ..Join::new(group, "")
        },
    );
    check(
        "sync group static member",
        pair.exchange_each(
            "sync group static member",
            sv,
            &sync_request(
                sv,
                group,
                old.kafka.1,
                &old.kafka.0,
                instance,
                &[(&old.kafka.0, &[0])],
            ),
            &sync_request(
                sv,
                group,
                old.kraftwerk.1,
                &old.kraftwerk.0,
                instance,
                &[(&old.kraftwerk.0, &[0])],
            ),
        ),
    );
    // The same instance joins again as a new member (a restarted consumer): it takes the old one's place.
    let new = join_new(
        pair,
        "join group static member replaced",
        jv,
        &Join {
            instance,
            ..Join::new(group, "")
        },
    );
    check(
        "heartbeat fenced static member",
        pair.exchange_each(
            "heartbeat fenced static member",
            hv,
            &heartbeat_request(hv, group, old.kafka.1, &old.kafka.0, instance),
            &heartbeat_request(hv, group, old.kraftwerk.1, &old.kraftwerk.0, instance),
        ),
    );
    check(
        "sync group fenced static member",
        pair.exchange_each(
            "sync group fenced static member",
            sv,
            &sync_request(sv, group, old.kafka.1, &old.kafka.0, instance, &[]),
            &sync_request(sv, group, old.kraftwerk.1, &old.kraftwerk.0, instance, &[]),
        ),
    );
    let fenced_join = |m: &Member, kafka: bool| {
        let id = if kafka { &m.kafka.0 } else { &m.kraftwerk.0 };
        Join {
            instance,
            ..Join::new(group, id)
        }
        .request(jv)
    };
    check(
        "join group fenced static member",
        pair.exchange_each(
            "join group fenced static member",
            jv,
            &fenced_join(&old, true),
            &fenced_join(&old, false),
        ),
    );
    let fenced_commit = |id: &str, generation: i32| {
        let mut req = commit(group, generation, id, TOPIC);
        req.group_instance_id = instance.map(s);
        req
    };
    check(
        "offset commit fenced static member",
        pair.exchange_each(
            "offset commit fenced static member",
            8,
            &fenced_commit(&old.kafka.0, old.kafka.1),
            &fenced_commit(&old.kraftwerk.0, old.kraftwerk.1),
        ),
    );
    check(
        "leave group fenced static member",
        pair.exchange_each(
            "leave group fenced static member",
            lv,
            &leave_request(lv, group, &old.kafka.0, instance),
            &leave_request(lv, group, &old.kraftwerk.0, instance),
        ),
    );
    check(
        "heartbeat replacing static member",
        pair.exchange_each(
            "heartbeat replacing static member",
            hv,
            &heartbeat_request(hv, group, new.kafka.1, &new.kafka.0, instance),
            &heartbeat_request(hv, group, new.kraftwerk.1, &new.kraftwerk.0, instance),
        ),
    );
    describe_static_group(pair, group);
    let other_instance =
        |m: &(String, i32)| heartbeat_request(hv, group, m.1, &m.0, Some("conf-other-instance"));
    check(
        "heartbeat another instance id",
        pair.exchange_each(
            "heartbeat another instance id",
            hv,
            &other_instance(&new.kafka),
            &other_instance(&new.kraftwerk),
        ),
    );
    // Leaving by instance id alone (the member id unknown to the caller), as a consumer's close does.
    check(
        "leave group static member by instance id",
        pair.exchange(
            "leave group static member by instance id",
            lv,
            &leave_request(lv, group, "", instance),
        ),
    );
}

// --- ListGroups ---------------------------------------------------------------------------------------

fn stable_alone(pair: &mut Pair, group: &str, session_timeout_ms: i32) -> Member {
    let jv = check("JoinGroup version", pair.max_version::<JoinGroupRequest>());
    let sv = check("SyncGroup version", pair.max_version::<SyncGroupRequest>());
    let join = |member: &str| {
        Join {
            session_timeout_ms,
            ..Join::new(group, member)
        }
        .request(jv)
    };
    let (a, b) = check("JoinGroup (setup)", pair.both(jv, &join("")));
    let (a, b) = if a.error_code == 79 && b.error_code == 79 {
        check(
            "JoinGroup (setup)",
            pair.both_each(jv, &join(a.member_id.as_str()), &join(b.member_id.as_str())),
        )
    } else {
        (a, b)
    };
    assert_eq!((a.error_code, b.error_code), (0, 0), "join {group}");
    let m = Member::of(&a, &b);
    let (sa, sb) = check(
        "SyncGroup (setup)",
        pair.both_each(
            sv,
            &sync_request(
                sv,
                group,
                m.kafka.1,
                &m.kafka.0,
                None,
                &[(&m.kafka.0, &[0])],
            ),
            &sync_request(
                sv,
                group,
                m.kraftwerk.1,
                &m.kraftwerk.0,
                None,
                &[(&m.kraftwerk.0, &[0])],
            ),
        ),
    );
    assert_eq!((sa.error_code, sb.error_code), (0, 0), "sync {group}");
    m
}

/// Groups of this scenario only, sorted by id (both brokers list them in a hash map's order). Other
/// scenarios' groups are left out: their members stop heartbeating, so their state depends on how long
/// ago they joined.
fn own_groups(a: &mut ListGroupsResponse, b: &mut ListGroupsResponse) {
    for r in [a, b] {
        r.groups.retain(|g| g.group_id.0.starts_with("conf-list-"));
        r.groups.sort_by(|x, y| x.group_id.cmp(&y.group_id));
    }
}

/// ListGroups over a stable group (a member with a long session) and an empty one (offsets only).
fn list_groups(pair: &mut Pair) {
    let stable = "conf-list-stable";
    let empty = "conf-list-empty";
    wait_group_ready(pair, stable);
    wait_group_ready(pair, empty);
    stable_alone(pair, stable, 300_000);
    let (ca, cb) = check(
        "OffsetCommit (setup)",
        pair.both(8, &commit(empty, -1, "", TOPIC)),
    );
    for r in [&ca, &cb] {
        assert_eq!(
            r.topics[0].partitions[0].error_code, 0,
            "commit {empty}: {r:?}"
        );
    }
    for v in pair.versions::<ListGroupsRequest>() {
        let mut cases: Vec<(&str, Vec<&str>, Vec<&str>)> =
            vec![("list groups all", vec![], vec![])];
        if v >= 4 {
            cases.push(("list groups stable", vec!["Stable"], vec![]));
            cases.push(("list groups empty", vec!["Empty"], vec![]));
            cases.push((
                "list groups states in any case",
                vec!["stable", "EMPTY"],
                vec![],
            ));
            cases.push(("list groups unknown state", vec!["NoSuchState"], vec![]));
        }
        if v >= 5 {
            cases.push(("list groups classic", vec![], vec!["classic"]));
            cases.push(("list groups consumer", vec![], vec!["consumer"]));
            cases.push(("list groups share", vec![], vec!["Share"]));
            cases.push(("list groups unknown type", vec![], vec!["no-such-type"]));
            cases.push((
                "list groups stable classic",
                vec!["Stable"],
                vec!["Classic"],
            ));
        }
        for (scenario, states, types) in cases {
            let mut req = ListGroupsRequest::default();
            if v >= 4 {
                req.states_filter = states.into_iter().map(s).collect();
            }
            if v >= 5 {
                req.types_filter = types.into_iter().map(s).collect();
            }
            check(
                scenario,
                pair.exchange_with(scenario, v, &req, &[], own_groups),
            );
        }
    }
}

// --- OffsetDelete -------------------------------------------------------------------------------------

/// OffsetCommit v8 (topics by name) for `topic` partition 0 of `group`, as `member` of `generation`.
fn commit(group: &str, generation: i32, member: &str, topic: &str) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(3)
                .with_committed_leader_epoch(-1)])])
}

fn offset_delete_request(group: &str, topics: &[(&str, &[i32])]) -> OffsetDeleteRequest {
    OffsetDeleteRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(
            topics
                .iter()
                .map(|(t, parts)| {
                    OffsetDeleteRequestTopic::default()
                        .with_name(topic_name(t))
                        .with_partitions(
                            parts
                                .iter()
                                .map(|p| {
                                    OffsetDeleteRequestPartition::default().with_partition_index(*p)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

fn offset_delete(pair: &mut Pair) {
    let versions = pair.versions::<OffsetDeleteRequest>();
    if versions.is_empty() {
        return;
    }
    for v in versions {
        // A group whose member subscribes to conf-topic, with an offset committed for it.
        let subscribed = format!("conf-od-subscribed-v{v}");
        let subscribed = subscribed.as_str();
        let simple = format!("conf-od-simple-v{v}");
        let simple = simple.as_str();
        wait_group_ready(pair, subscribed);
        wait_group_ready(pair, simple);
        wait_group_ready(pair, "conf-od-nobody");
        let m = stable_alone(pair, subscribed, 300_000);
        let (ca, cb) = check(
            "OffsetCommit (setup)",
            pair.both_each(
                8,
                &commit(subscribed, m.kafka.1, &m.kafka.0, TOPIC),
                &commit(subscribed, m.kraftwerk.1, &m.kraftwerk.0, TOPIC),
            ),
        );
        for r in [&ca, &cb] {
            assert_eq!(
                r.topics[0].partitions[0].error_code, 0,
                "commit {subscribed}: {r:?}"
            );
        }
        // A group with offsets only (no members).
        let (ca, cb) = check(
            "OffsetCommit (setup)",
            pair.both(8, &commit(simple, -1, "", TOPIC)),
        );
        for r in [&ca, &cb] {
            assert_eq!(
                r.topics[0].partitions[0].error_code, 0,
                "commit {simple}: {r:?}"
            );
        }
        for (scenario, group, topics) in [
            (
                "offset delete group subscribed to the topic",
                subscribed,
                vec![(TOPIC, &[0][..])],
            ),
            (
                "offset delete unknown group",
                "conf-od-nobody",
                vec![(TOPIC, &[0][..])],
            ),
            (
                "offset delete simple group",
                simple,
                vec![(TOPIC, &[0][..])],
            ),
            (
                "offset delete nothing committed",
                simple,
                vec![(TOPIC, &[0][..])],
            ),
            (
                "offset delete unknown topic and partition",
                simple,
                vec![("conf-missing", &[0][..]), (TOPIC, &[9][..])],
            ),
        ] {
            check(
                scenario,
                pair.exchange(scenario, v, &offset_delete_request(group, &topics)),
            );
        }
        // The offset is gone for the simple group, kept for the subscribed one.
        for (scenario, group) in [
            ("offset fetch after offset delete", simple),
            ("offset fetch after refused offset delete", subscribed),
        ] {
            let req = OffsetFetchRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_topics(Some(vec![
                    kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(topic_name(TOPIC))
                        .with_partition_indexes(vec![0]),
                ]));
            check(scenario, pair.exchange(scenario, 7, &req));
        }
    }
}

// --- DescribeProducers, InitProducerId ------------------------------------------------------------------

/// Producer ids are allocated: each broker handed out a different number before this scenario.
const ALLOCATED: &[Rule] = &[
    Rule {
        path: "producer_id",
        how: Normalise::Generated,
    },
    Rule {
        path: "topics[].partitions[].active_producers[].producer_id",
        how: Normalise::Generated,
    },
];

fn init_producer_id(
    v: i16,
    txn: Option<&str>,
    timeout_ms: i32,
    id: i64,
    epoch: i16,
) -> InitProducerIdRequest {
    let mut req = InitProducerIdRequest::default()
        .with_transactional_id(txn.map(|t| kafka_protocol::messages::TransactionalId(s(t))))
        .with_transaction_timeout_ms(timeout_ms);
    if v >= 3 {
        req.producer_id = ProducerId(id);
        req.producer_epoch = epoch;
    }
    req
}

fn describe_producers(pair: &mut Pair) {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::ProduceRequest;
    use kraftwerk_storage::batch::BatchBuilder;

    let versions = pair.versions::<DescribeProducersRequest>();
    if versions.is_empty() {
        return;
    }
    // An idempotent producer writes two batches to conf-producers on each broker.
    let topic = "conf-producers";
    let mv = check(
        "Metadata version",
        pair.max_version::<kafka_protocol::messages::MetadataRequest>(),
    );
    let cv = check(
        "CreateTopics version",
        pair.max_version::<kafka_protocol::messages::CreateTopicsRequest>(),
    );
    let create = kafka_protocol::messages::CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![
            kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                .with_name(topic_name(topic))
                .with_num_partitions(2)
                .with_replication_factor(1),
        ]);
    let (a, b) = check("CreateTopics (setup)", pair.both(cv, &create));
    assert_eq!(
        (a.topics[0].error_code, b.topics[0].error_code),
        (0, 0),
        "create {topic}"
    );
    let probe = kafka_protocol::messages::MetadataRequest::default().with_topics(Some(vec![
        kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
            .with_name(Some(topic_name(topic))),
    ]));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (a, b) = check("Metadata (setup)", pair.both(mv, &probe));
        let ready = |r: &kafka_protocol::messages::MetadataResponse| {
            r.topics.first().is_some_and(|t| {
                t.error_code == 0
                    && t.partitions.len() == 2
                    && t.partitions.iter().all(|p| p.leader_id.0 >= 0)
            })
        };
        if (ready(&a) && ready(&b)) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let iv = check(
        "InitProducerId version",
        pair.max_version::<InitProducerIdRequest>(),
    );
    let (pa, pb) = check(
        "InitProducerId (setup)",
        pair.both(iv, &init_producer_id(iv, None, 60_000, -1, -1)),
    );
    assert_eq!((pa.error_code, pb.error_code), (0, 0), "init producer id");
    let pv = check("Produce version", pair.max_version::<ProduceRequest>());
    for sequence in [0, 2] {
        let produce = |id: i64, epoch: i16| {
            let mut b = BatchBuilder::new(0, -1).producer(id, epoch, sequence);
            for ts in [5000_i64, 6000] {
                b.push(ts + i64::from(sequence), Some(b"k"), Some(b"v"), &[])
                    .expect("record fits a batch");
            }
            let mut data = TopicProduceData::default().with_partition_data(vec![
                PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from(b.build()))),
            ]);
            data.name = topic_name(topic);
            ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(30_000)
                .with_topic_data(vec![data])
        };
        let mut ra = produce(pa.producer_id.0, pa.producer_epoch);
        let mut rb = produce(pb.producer_id.0, pb.producer_epoch);
        if pv >= 13 {
            let ids = topic_ids(pair, mv, topic);
            ra.topic_data[0].topic_id = ids.0;
            rb.topic_data[0].topic_id = ids.1;
            ra.topic_data[0].name = TopicName::default();
            rb.topic_data[0].name = TopicName::default();
        }
        // The same batch again after a retriable answer (the partition not served yet on a loaded machine):
        // the producer's sequence makes a retry safe, as a client's.
        let mut attempt = 0;
        loop {
            let (a, b) = check("Produce (setup)", pair.both_each(pv, &ra, &rb));
            let codes: Vec<i16> = a
                .responses
                .iter()
                .chain(&b.responses)
                .map(|r| r.partition_responses[0].error_code)
                .collect();
            if codes.iter().all(|c| *c == 0) {
                break;
            }
            attempt += 1;
            let retriable = codes.iter().all(|c| matches!(c, 0 | 3 | 6 | 7));
            assert!(
                retriable && attempt < 20,
                "idempotent produce (Kafka, Kraftwerk) answered {codes:?} after {attempt} attempts"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    for v in versions {
        for (scenario, topic, partitions) in [
            ("describe producers active", topic, vec![0, 1]),
            ("describe producers unknown partition", topic, vec![7]),
            ("describe producers unknown topic", "conf-missing", vec![0]),
            (
                "describe producers invalid topic name",
                "bad name!",
                vec![0],
            ),
        ] {
            let req =
                DescribeProducersRequest::default().with_topics(vec![ProducersTopic::default()
                    .with_name(topic_name(topic))
                    .with_partition_indexes(partitions)]);
            check(
                scenario,
                pair.exchange_with(scenario, v, &req, ALLOCATED, |_, _| {}),
            );
        }
    }
}

fn topic_ids(pair: &mut Pair, mv: i16, topic: &str) -> (uuid::Uuid, uuid::Uuid) {
    let req = kafka_protocol::messages::MetadataRequest::default().with_topics(Some(vec![
        kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
            .with_name(Some(topic_name(topic))),
    ]));
    let (a, b) = check("Metadata (topic ids)", pair.both(mv, &req));
    (a.topics[0].topic_id, b.topics[0].topic_id)
}

/// InitProducerId beyond a new idempotent producer: a producer id without an epoch (and the reverse), a
/// known idempotent producer asking again, and a transactional id (with a valid and an invalid timeout).
fn init_producer_id_edges(pair: &mut Pair) {
    for v in pair.versions::<InitProducerIdRequest>() {
        let mut cases: Vec<(&str, InitProducerIdRequest)> = vec![
            (
                "init producer id zero transaction timeout",
                init_producer_id(v, None, 0, -1, -1),
            ),
            (
                "init producer id transactional",
                init_producer_id(v, Some(&format!("conf-txn-v{v}")), 60_000, -1, -1),
            ),
            (
                "init producer id transactional timeout too large",
                init_producer_id(v, Some(&format!("conf-txn-big-v{v}")), i32::MAX, -1, -1),
            ),
            (
                "init producer id invalid transactional id",
                init_producer_id(v, Some(""), 60_000, -1, -1),
            ),
        ];
        if v >= 3 {
            cases.push((
                "init producer id id without epoch",
                init_producer_id(v, None, 60_000, 5, -1),
            ));
            cases.push((
                "init producer id epoch without id",
                init_producer_id(v, None, 60_000, -1, 0),
            ));
        }
        for (scenario, req) in cases {
            check(
                scenario,
                pair.exchange_with(scenario, v, &req, ALLOCATED, |_, _| {}),
            );
        }
    }
}

// --- SASL ---------------------------------------------------------------------------------------------

/// SaslHandshake and SaslAuthenticate on a PLAINTEXT listener, where no SASL exchange is expected.
fn sasl_on_plaintext(pair: &mut Pair) {
    use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
    for v in pair.versions::<SaslHandshakeRequest>() {
        let req = SaslHandshakeRequest::default().with_mechanism(s("PLAIN"));
        check(
            "sasl handshake on a plaintext listener",
            pair.exchange("sasl handshake on a plaintext listener", v, &req),
        );
    }
    for v in pair.versions::<SaslAuthenticateRequest>() {
        let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"\0u\0p"));
        check(
            "sasl authenticate on a plaintext listener",
            pair.exchange("sasl authenticate on a plaintext listener", v, &req),
        );
    }
}

// --- AddRaftVoter, RemoveRaftVoter ------------------------------------------------------------------

/// Voter changes' error paths that change nothing: another cluster's id, a new voter without an endpoint on
/// the controller listener, a voter that does not exist. (Adding a real node would wait for it to catch up
/// and leave it a learner; removing the only voter would leave no quorum.)
fn raft_voters(pair: &mut Pair) {
    use kafka_protocol::messages::add_raft_voter_request::Listener;
    use kafka_protocol::messages::{AddRaftVoterRequest, RemoveRaftVoterRequest};
    let directory = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    for v in pair.versions::<AddRaftVoterRequest>() {
        for (scenario, cluster, listener) in [
            (
                "add raft voter another cluster",
                Some("AAAAAAAAAAAAAAAAAAAAAA"),
                "CONTROLLER",
            ),
            ("add raft voter no controller endpoint", None, "PLAINTEXT"),
        ] {
            let req = AddRaftVoterRequest::default()
                .with_cluster_id(cluster.map(s))
                .with_timeout_ms(5_000)
                .with_voter_id(7)
                .with_voter_directory_id(directory)
                .with_listeners(vec![Listener::default()
                    .with_name(s(listener))
                    .with_host(s("127.0.0.1"))
                    .with_port(1)]);
            check(scenario, pair.exchange(scenario, v, &req));
        }
    }
    for v in pair.versions::<RemoveRaftVoterRequest>() {
        for (scenario, cluster, voter) in [
            (
                "remove raft voter another cluster",
                Some("AAAAAAAAAAAAAAAAAAAAAA"),
                1,
            ),
            ("remove raft voter not a voter", None, 7),
        ] {
            let req = RemoveRaftVoterRequest::default()
                .with_cluster_id(cluster.map(s))
                .with_voter_id(voter)
                .with_voter_directory_id(directory);
            check(scenario, pair.exchange(scenario, v, &req));
        }
    }
}

// --- SaslHandshake and SaslAuthenticate on a SASL_PLAINTEXT listener ------------------------------------

const SASL_CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qk";
const PLAIN_JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
                          user_alice=\"alice-secret\";";
const SCRAM_JAAS: &str = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
const SCRAM_USER: &str = "carol";
const SCRAM_PASSWORD: &str = "carol-secret";

/// A second Apache Kafka and Kraftwerk, configured alike with a SASL_PLAINTEXT listener beside PLAINTEXT
/// (PLAIN users from the JAAS text, SCRAM-SHA-512 users from the metadata log). Started on a thread while
/// the other scenarios run.
pub struct SaslBrokers {
    kafka: kraftwerk_tests::apache_kafka::ApacheKafka,
    kraftwerk: kraftwerk_tests::Broker,
    /// (Kafka, Kraftwerk) PLAINTEXT listeners, for setup.
    plain: (SocketAddr, SocketAddr),
    /// (Kafka, Kraftwerk) SASL_PLAINTEXT listeners.
    sasl: (SocketAddr, SocketAddr),
}

/// The SASL listener on `{extra_port}`, the port each harness picks with the other two.
const SASL_SETTINGS: &[(&str, &str)] = &[
    (
        "listeners",
        "PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port},\
         SASL_PLAINTEXT://127.0.0.1:{extra_port}",
    ),
    (
        "advertised.listeners",
        "PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{extra_port}",
    ),
    (
        "listener.security.protocol.map",
        "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
    ),
    (
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms",
        "PLAIN,SCRAM-SHA-512",
    ),
    (
        "listener.name.sasl_plaintext.plain.sasl.jaas.config",
        PLAIN_JAAS,
    ),
    (
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config",
        SCRAM_JAAS,
    ),
    ("group.initial.rebalance.delay.ms", "0"),
];

/// Starts both brokers (on a thread: the JVM's start-up is slow, the other scenarios run meanwhile).
pub fn start_sasl_brokers() -> JoinHandle<Result<SaslBrokers, HarnessError>> {
    std::thread::spawn(|| {
        let kafka =
            kraftwerk_tests::apache_kafka::ApacheKafka::start(SASL_CLUSTER_ID, SASL_SETTINGS)?;
        let mut builder = kraftwerk_tests::Broker::builder()
            .cluster_id(SASL_CLUSTER_ID)
            .rust_log("warn");
        for (k, v) in SASL_SETTINGS {
            builder = builder.prop(*k, *v);
        }
        let kraftwerk = builder.start()?;
        let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
        Ok(SaslBrokers {
            plain: (kafka.addr(), kraftwerk.addr()),
            sasl: (local(kafka.extra_port()), local(kraftwerk.extra_port())),
            kafka,
            kraftwerk,
        })
    })
}

/// A fresh connection to each broker's SASL listener.
fn sasl_connections(brokers: &SaslBrokers) -> (Connection, Connection) {
    let timeout = Duration::from_secs(60);
    (
        check(
            "connect (SASL)",
            Connection::connect(brokers.sasl.0, timeout),
        ),
        check(
            "connect (SASL)",
            Connection::connect(brokers.sasl.1, timeout),
        ),
    )
}

/// Sends `a` on `ka` and `b` on `kw` and compares the answers as `scenario` in `pair`'s report.
fn exchange_on<R: Request>(
    pair: &mut Pair,
    scenario: &str,
    v: i16,
    conns: &mut (Connection, Connection),
    a: &R,
    b: &R,
    extra: &[Rule],
) -> (R::Response, R::Response)
where
    R::Response: std::fmt::Debug,
{
    let ra = check(scenario, conns.0.request(v, a));
    let rb = check(scenario, conns.1.request(v, b));
    check(scenario, pair.compare(scenario, R::KEY, v, &ra, &rb, extra));
    (ra, rb)
}

/// SCRAM's nonces, salt and proofs are random or derived from them: only whether a challenge or the server's
/// signature is there is compared.
const SCRAM_BYTES: &[Rule] = &[Rule {
    path: "auth_bytes",
    how: Normalise::Generated,
}];

mod scram {
    //! The client side of SCRAM-SHA-512 (RFC 5802), enough to log in and to send a wrong proof.
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use pbkdf2::hmac::{Hmac, Mac};
    use sha2::{Digest, Sha512};

    fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut mac =
            <Hmac<Sha512> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    pub fn client_first(user: &str, nonce: &str) -> String {
        format!("n,,n={user},r={nonce}")
    }

    /// The client-final message for `server_first`, or `None` if the server's message does not parse.
    pub fn client_final(
        user: &str,
        password: &str,
        nonce: &str,
        server_first: &str,
    ) -> Option<String> {
        let field = |name: &str| {
            server_first
                .split(',')
                .find_map(|f| f.strip_prefix(&format!("{name}=")))
        };
        let combined = field("r")?;
        let salt = STANDARD.decode(field("s")?).ok()?;
        let iterations: u32 = field("i")?.parse().ok()?;
        let mut salted = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha512::digest(&client_key);
        let without_proof = format!("c=biws,r={combined}");
        let auth_message = format!("n={user},r={nonce},{server_first},{without_proof}");
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        Some(format!("{without_proof},p={}", STANDARD.encode(proof)))
    }
}

fn handshake(mechanism: &str) -> kafka_protocol::messages::SaslHandshakeRequest {
    kafka_protocol::messages::SaslHandshakeRequest::default().with_mechanism(s(mechanism))
}

fn authenticate(token: impl Into<Vec<u8>>) -> kafka_protocol::messages::SaslAuthenticateRequest {
    kafka_protocol::messages::SaslAuthenticateRequest::default()
        .with_auth_bytes(Bytes::from(token.into()))
}

/// Registers the SCRAM user on both (not compared) and waits until each broker's SASL listener accepts it
/// (Kafka's brokers learn credentials from the metadata log a moment after the controller commits them).
fn scram_setup(brokers: &SaslBrokers) {
    for addr in [brokers.plain.0, brokers.plain.1] {
        let mut conn = check(
            "connect (setup)",
            Connection::connect(addr, Duration::from_secs(60)),
        );
        check(
            "AlterUserScramCredentials (setup)",
            kraftwerk_tests::security_admin::upsert_scram_sha512(
                &mut conn,
                SCRAM_USER,
                SCRAM_PASSWORD,
                b"conformance-salt",
                4096,
            ),
        );
    }
    for addr in [brokers.sasl.0, brokers.sasl.1] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut conn = check(
                "connect (setup)",
                Connection::connect(addr, Duration::from_secs(60)),
            );
            check(
                "SaslHandshake (setup)",
                conn.request(1, &handshake("SCRAM-SHA-512")),
            );
            let first = check(
                "SaslAuthenticate (setup)",
                conn.request(2, &authenticate(scram::client_first(SCRAM_USER, "setup"))),
            );
            if first.error_code == 0 {
                return_if_ok(&mut conn, &first.auth_bytes);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{addr} does not know SCRAM user {SCRAM_USER} after 30 s: {first:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Completes a SCRAM login begun with nonce "setup" (so the broker does not log a failure).
fn return_if_ok(conn: &mut Connection, server_first: &[u8]) {
    let server_first = String::from_utf8_lossy(server_first);
    if let Some(last) = scram::client_final(SCRAM_USER, SCRAM_PASSWORD, "setup", &server_first) {
        let _ = conn.request(2, &authenticate(last));
    }
}

/// SaslHandshake (unsupported, PLAIN, after logging in) and SaslAuthenticate (PLAIN and SCRAM-SHA-512: a
/// login, a wrong password, an unknown user, a malformed token) at each common version.
pub fn sasl(pair: &mut Pair, brokers: &SaslBrokers) {
    use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
    for hv in pair.versions::<SaslHandshakeRequest>() {
        for (scenario, mechanism) in [
            ("sasl handshake unsupported mechanism", "GSSAPI"),
            ("sasl handshake unknown mechanism", "NO-SUCH-MECHANISM"),
            ("sasl handshake plain", "PLAIN"),
            ("sasl handshake scram", "SCRAM-SHA-512"),
        ] {
            let mut conns = sasl_connections(brokers);
            let req = handshake(mechanism);
            exchange_on(pair, scenario, hv, &mut conns, &req, &req, &[]);
        }
    }
    scram_setup(brokers);
    for av in pair.versions::<SaslAuthenticateRequest>() {
        let plain_cases: [(&str, &[u8]); 4] = [
            ("sasl authenticate plain", b"\0alice\0alice-secret"),
            ("sasl authenticate plain wrong password", b"\0alice\0wrong"),
            (
                "sasl authenticate plain unknown user",
                b"\0mallory\0alice-secret",
            ),
            ("sasl authenticate plain malformed token", b"alice-secret"),
        ];
        for (scenario, token) in plain_cases {
            let mut conns = sasl_connections(brokers);
            let hs = handshake("PLAIN");
            exchange_on(
                pair,
                &format!("{scenario} (handshake)"),
                1,
                &mut conns,
                &hs,
                &hs,
                &[],
            );
            let req = authenticate(token.to_vec());
            let (a, b) = exchange_on(pair, scenario, av, &mut conns, &req, &req, &[]);
            if a.error_code == 0 && b.error_code == 0 {
                exchange_on(
                    pair,
                    "sasl handshake after authentication",
                    1,
                    &mut conns,
                    &hs,
                    &hs,
                    &[],
                );
            }
        }
        for (scenario, user, password) in [
            ("sasl authenticate scram", SCRAM_USER, SCRAM_PASSWORD),
            (
                "sasl authenticate scram wrong password",
                SCRAM_USER,
                "wrong",
            ),
            (
                "sasl authenticate scram unknown user",
                "mallory",
                SCRAM_PASSWORD,
            ),
        ] {
            let mut conns = sasl_connections(brokers);
            let hs = handshake("SCRAM-SHA-512");
            exchange_on(
                pair,
                &format!("{scenario} (handshake)"),
                1,
                &mut conns,
                &hs,
                &hs,
                &[],
            );
            let nonce = format!("conformance{av}");
            let first = authenticate(scram::client_first(user, &nonce));
            let (a, b) = exchange_on(
                pair,
                &format!("{scenario} (client first)"),
                av,
                &mut conns,
                &first,
                &first,
                SCRAM_BYTES,
            );
            if a.error_code != 0 || b.error_code != 0 {
                continue;
            }
            let last = |server_first: &Bytes| {
                let text = String::from_utf8_lossy(server_first);
                let msg = scram::client_final(user, password, &nonce, &text)
                    .unwrap_or_else(|| panic!("{scenario}: server-first {text:?} does not parse"));
                authenticate(msg)
            };
            exchange_on(
                pair,
                &format!("{scenario} (client final)"),
                av,
                &mut conns,
                &last(&a.auth_bytes),
                &last(&b.auth_bytes),
                SCRAM_BYTES,
            );
        }
    }
}

// --- Leader epochs after a restart (OffsetForLeaderEpoch, Metadata) ---------------------------------------

const EPOCH_TOPIC: &str = "conf-epoch";

/// (current leader epoch, requested epoch) of a case, from a broker's own current epoch.
type EpochsFrom = fn(i32) -> (i32, i32);

fn plain_connections(brokers: &SaslBrokers) -> (Connection, Connection) {
    let timeout = Duration::from_secs(60);
    (
        check("connect", Connection::connect(brokers.plain.0, timeout)),
        check("connect", Connection::connect(brokers.plain.1, timeout)),
    )
}

fn epoch_metadata() -> kafka_protocol::messages::MetadataRequest {
    kafka_protocol::messages::MetadataRequest::default().with_topics(Some(vec![
        kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
            .with_name(Some(topic_name(EPOCH_TOPIC))),
    ]))
}

/// Each broker's leader epoch of conf-epoch-0, once both have a leader for it (not compared).
fn wait_epoch_leader(pair: &Pair, conns: &mut (Connection, Connection)) -> (i32, i32) {
    let mv = check(
        "Metadata version",
        pair.max_version::<kafka_protocol::messages::MetadataRequest>(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let a = check("Metadata (setup)", conns.0.request(mv, &epoch_metadata()));
        let b = check("Metadata (setup)", conns.1.request(mv, &epoch_metadata()));
        let led = |r: &kafka_protocol::messages::MetadataResponse| {
            r.topics
                .first()
                .and_then(|t| t.partitions.first())
                .filter(|p| p.error_code == 0 && p.leader_id.0 >= 0)
                .map(|p| p.leader_epoch)
        };
        if let (Some(ea), Some(eb)) = (led(&a), led(&b)) {
            return (ea, eb);
        }
        assert!(
            Instant::now() < deadline,
            "no leader for {EPOCH_TOPIC} after 60 s: {a:?} / {b:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Produces `count` records timestamped from `first_ms` to conf-epoch-0 on both (Produce v11: topics by
/// name; not compared), as each broker's idempotent producer `(id, epoch)` from sequence 0 when given.
fn produce_epoch_records(
    conns: &mut (Connection, Connection),
    count: usize,
    first_ms: i64,
    producers: Option<((i64, i16), (i64, i16))>,
) {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::ProduceRequest;
    use kraftwerk_storage::batch::BatchBuilder;
    let request = |producer: Option<(i64, i16)>| {
        let mut b = BatchBuilder::new(0, -1);
        if let Some((id, epoch)) = producer {
            b = b.producer(id, epoch, 0);
        }
        for i in 0..count {
            b.push(
                first_ms + i64::try_from(i).unwrap_or(0),
                Some(b"k"),
                Some(b"v"),
                &[],
            )
            .expect("record fits a batch");
        }
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(EPOCH_TOPIC))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from(b.build())))])])
    };
    let (pa, pb) = match producers {
        Some((a, b)) => (Some(a), Some(b)),
        None => (None, None),
    };
    for (conn, req) in [(&mut conns.0, request(pa)), (&mut conns.1, request(pb))] {
        let r = check("Produce (setup)", conn.request(11, &req));
        assert_eq!(
            r.responses[0].partition_responses[0].error_code, 0,
            "produce to {EPOCH_TOPIC}: {r:?}"
        );
    }
}

/// A single-node log has one leader epoch until its node restarts: Kafka's controller then fences the
/// restarted broker and unfences it (each a new leader epoch). After restarting both brokers, the leader
/// epoch Metadata reports is compared, the idempotent producer DescribeProducers finds again (rebuilt from
/// the log), and OffsetForLeaderEpoch's answers for the current epoch, the epoch before the restart, a
/// client whose epoch is older than the leader's (FENCED_LEADER_EPOCH) and one ahead of it
/// (UNKNOWN_LEADER_EPOCH).
fn leader_epochs_after_restart(pair: &mut Pair, brokers: &mut SaslBrokers) {
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    use kafka_protocol::messages::{
        CreateTopicsRequest, MetadataRequest, OffsetForLeaderEpochRequest,
    };
    let versions = pair.versions::<OffsetForLeaderEpochRequest>();
    if versions.is_empty() {
        return;
    }
    let mut conns = plain_connections(brokers);
    let cv = check(
        "CreateTopics version",
        pair.max_version::<CreateTopicsRequest>(),
    );
    let create = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![
            kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                .with_name(topic_name(EPOCH_TOPIC))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ]);
    for conn in [&mut conns.0, &mut conns.1] {
        let r = check("CreateTopics (setup)", conn.request(cv, &create));
        assert_eq!(r.topics[0].error_code, 0, "create {EPOCH_TOPIC}: {r:?}");
    }
    wait_epoch_leader(pair, &mut conns);
    produce_epoch_records(&mut conns, 3, 1_000, None);
    // Two idempotent producers: one whose records are from 1970 (long past producer.id.expiration.ms, so
    // not loaded again after the restart) and one writing now (its state comes back from the log).
    let iv = check(
        "InitProducerId version",
        pair.max_version::<InitProducerIdRequest>(),
    );
    let init = init_producer_id(iv, None, 60_000, -1, -1);
    // Kafka answers COORDINATOR_LOAD_IN_PROGRESS until its first block of producer ids arrives.
    let init_on = |conn: &mut Connection| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = check("InitProducerId (setup)", conn.request(iv, &init));
            if r.error_code == 0 {
                return r;
            }
            assert!(Instant::now() < deadline, "InitProducerId: {r:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    for first_ms in [2_000, now_ms] {
        let ia = init_on(&mut conns.0);
        let ib = init_on(&mut conns.1);
        produce_epoch_records(
            &mut conns,
            2,
            first_ms,
            Some((
                (ia.producer_id.0, ia.producer_epoch),
                (ib.producer_id.0, ib.producer_epoch),
            )),
        );
    }
    drop(conns);

    check("restarting Apache Kafka", brokers.kafka.restart());
    check("restarting Kraftwerk", brokers.kraftwerk.restart());
    let mut conns = plain_connections(brokers);
    let (ea, eb) = wait_epoch_leader(pair, &mut conns);
    let mv = check("Metadata version", pair.max_version::<MetadataRequest>());
    exchange_on(
        pair,
        "metadata after a restart",
        mv,
        &mut conns,
        &epoch_metadata(),
        &epoch_metadata(),
        &[],
    );
    for v in pair.versions::<DescribeProducersRequest>() {
        let req = DescribeProducersRequest::default().with_topics(vec![ProducersTopic::default()
            .with_name(topic_name(EPOCH_TOPIC))
            .with_partition_indexes(vec![0])]);
        exchange_on(
            pair,
            "describe producers after a restart",
            v,
            &mut conns,
            &req,
            &req,
            ALLOCATED,
        );
    }
    produce_epoch_records(&mut conns, 2, 3_000, None);

    let request = |v: i16, current: i32, epoch: i32| {
        let mut req = OffsetForLeaderEpochRequest::default().with_topics(vec![
            OffsetForLeaderTopic::default()
                .with_topic(topic_name(EPOCH_TOPIC))
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(current)
                    .with_leader_epoch(epoch)]),
        ]);
        if v >= 3 {
            req.replica_id = kafka_protocol::messages::BrokerId(-1);
        }
        req
    };
    for v in versions {
        // (scenario, current leader epoch, requested epoch), from each broker's own current epoch.
        let cases: [(&str, EpochsFrom); 5] = [
            ("offset for leader epoch after a restart current", |e| {
                (e, e)
            }),
            ("offset for leader epoch after a restart first epoch", |e| {
                (e, 0)
            }),
            (
                "offset for leader epoch after a restart previous epoch",
                |e| (e, e - 1),
            ),
            ("offset for leader epoch after a restart fenced", |_| (0, 0)),
            (
                "offset for leader epoch after a restart unknown current epoch",
                |e| (e + 1, e),
            ),
        ];
        for (scenario, epochs) in cases {
            let (ca, qa) = epochs(ea);
            let (cb, qb) = epochs(eb);
            exchange_on(
                pair,
                scenario,
                v,
                &mut conns,
                &request(v, ca, qa),
                &request(v, cb, qb),
                &[],
            );
        }
    }
}

/// DescribeGroups of a group whose static member was replaced: the member now holding the instance id,
/// with its `group_instance_id` from v4.
fn describe_static_group(pair: &mut Pair, group: &str) {
    use kafka_protocol::messages::DescribeGroupsRequest;
    for v in pair.versions::<DescribeGroupsRequest>() {
        let mut req = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
        if v >= 3 {
            req.include_authorized_operations = true;
        }
        let member = [Rule {
            path: "groups[].members[].member_id",
            how: Normalise::Generated,
        }];
        check(
            "describe groups static member",
            pair.exchange_with("describe groups static member", v, &req, &member, |_, _| {}),
        );
    }
}
