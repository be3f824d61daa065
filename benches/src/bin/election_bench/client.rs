//! The Kafka requests the harness sends, over the test harness's blocking wire client, at the highest
//! version both the broker and the `kafka-protocol` crate know (the same requests go to Kraftwerk and Kafka).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, BrokerId, CreateTopicsRequest, DescribeQuorumRequest,
    ElectLeadersRequest, MetadataRequest, MetadataResponse, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};
use kraftwerk_tests::wire::{negotiate_version, Connection};

/// Every topic the harness creates starts with this, so internal topics are left out of the counts.
pub const TOPIC_PREFIX: &str = "eb-";
/// TOPIC_ALREADY_EXISTS: a retried creation that did commit.
const TOPIC_ALREADY_EXISTS: i16 = 36;

/// One connection with the versions its broker advertised.
pub struct Client {
    conn: Connection,
    versions: ApiVersionsResponse,
}

/// Which broker leads each of the harness's partitions, as one broker's Metadata shows it.
#[derive(Debug, Default, Clone)]
pub struct Layout {
    /// Brokers listed (the unfenced ones).
    pub brokers: BTreeSet<i32>,
    /// (topic, partition) → leader id (-1: none).
    pub leaders: HashMap<(String, i32), i32>,
    /// Partitions whose ISR has every replica.
    pub full_isr: usize,
}

impl Layout {
    /// Partitions with a leader.
    pub fn led(&self) -> usize {
        self.leaders.values().filter(|l| **l >= 0).count()
    }

    /// Partitions led by `broker`.
    pub fn led_by(&self, broker: i32) -> usize {
        self.leaders.values().filter(|l| **l == broker).count()
    }

    /// The (topic, partition)s led by `broker`.
    pub fn partitions_led_by(&self, broker: i32) -> HashSet<(String, i32)> {
        self.leaders
            .iter()
            .filter(|(_, l)| **l == broker)
            .map(|(tp, _)| tp.clone())
            .collect()
    }
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Result<Self> {
        Self::connect_with_timeout(addr, Duration::from_secs(60))
    }

    pub fn connect_with_timeout(addr: SocketAddr, timeout: Duration) -> Result<Self> {
        let mut conn = Connection::connect(addr, timeout).map_err(|e| anyhow::anyhow!("{e}"))?;
        let versions = conn
            .request(0, &ApiVersionsRequest::default())
            .map_err(|e| anyhow::anyhow!("ApiVersions: {e}"))?;
        if versions.error_code != 0 {
            bail!("ApiVersions error {}", versions.error_code);
        }
        Ok(Client { conn, versions })
    }

    /// The version of `R` this connection sends (the highest both sides know).
    pub fn negotiated<R: Request>(&self) -> Option<i16> {
        negotiate_version::<R>(&self.versions)
    }

    /// Sends `req` at the highest version both sides know.
    pub fn call<R: Request>(&mut self, req: &R) -> Result<R::Response> {
        let version = negotiate_version::<R>(&self.versions)
            .with_context(|| format!("no common version of API {}", R::KEY))?;
        self.conn
            .request(version, req)
            .map_err(|e| anyhow::anyhow!("API {}: {e}", R::KEY))
    }

    pub fn metadata(&mut self) -> Result<MetadataResponse> {
        self.call(&MetadataRequest::default().with_topics(None))
    }

    pub fn broker_ids(&mut self) -> Result<BTreeSet<i32>> {
        let md = self.call(&MetadataRequest::default().with_topics(Some(Vec::new())))?;
        Ok(md.brokers.iter().map(|b| b.node_id.0).collect())
    }

    /// The leaders of every harness partition.
    pub fn layout(&mut self) -> Result<Layout> {
        let md = self.metadata()?;
        let mut layout = Layout {
            brokers: md.brokers.iter().map(|b| b.node_id.0).collect(),
            ..Layout::default()
        };
        for t in &md.topics {
            let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else {
                continue;
            };
            if !name.starts_with(TOPIC_PREFIX) || t.error_code != 0 {
                continue;
            }
            for p in &t.partitions {
                if p.isr_nodes.len() == p.replica_nodes.len() && !p.replica_nodes.is_empty() {
                    layout.full_isr += 1;
                }
                layout
                    .leaders
                    .insert((name.clone(), p.partition_index), p.leader_id.0);
            }
        }
        Ok(layout)
    }

    /// CreateTopics of `names` with `partitions` partitions each and replication factor 3. Returns the
    /// names that failed with their error (TOPIC_ALREADY_EXISTS counts as success when `exists_ok`).
    pub fn create_topics(
        &mut self,
        names: &[String],
        partitions: i32,
        timeout_ms: i32,
        exists_ok: bool,
    ) -> Result<Vec<(String, i16, String)>> {
        let mut req = CreateTopicsRequest::default();
        req.timeout_ms = timeout_ms;
        req.topics = names
            .iter()
            .map(|n| {
                let mut t = CreatableTopic::default();
                t.name = TopicName(StrBytes::from_string(n.clone()));
                t.num_partitions = partitions;
                t.replication_factor = 3;
                t
            })
            .collect();
        let resp = self.call(&req)?;
        Ok(resp
            .topics
            .iter()
            .filter(|t| t.error_code != 0 && !(exists_ok && t.error_code == TOPIC_ALREADY_EXISTS))
            .map(|t| {
                (
                    t.name.0.to_string(),
                    t.error_code,
                    t.error_message
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                )
            })
            .collect())
    }

    /// Produce, acks=all, of one small record to each of `partitions` of `topic` in one request (to their
    /// leader). Returns the partitions refused, with their error code.
    pub fn produce_one_each(&mut self, topic: &str, partitions: &[i32]) -> Result<Vec<(i32, i16)>> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let batch = bytes::Bytes::from(kraftwerk_storage::batch::build_batch(
            0,
            -1,
            now,
            &[(None, Some(b"election-bench".as_slice()))],
        ));
        let mut topic_data = TopicProduceData::default();
        topic_data.name = TopicName(StrBytes::from_string(topic.to_string()));
        topic_data.partition_data = partitions
            .iter()
            .map(|&index| {
                let mut p = PartitionProduceData::default();
                p.index = index;
                p.records = Some(batch.clone());
                p
            })
            .collect();
        let mut req = ProduceRequest::default();
        req.acks = -1;
        req.timeout_ms = 60_000;
        req.topic_data = vec![topic_data];
        // v13 names topics by id only; v12 and below by name, which both brokers accept.
        let version = negotiate_version::<ProduceRequest>(&self.versions)
            .context("no common Produce version")?
            .min(12);
        let resp = self
            .conn
            .request(version, &req)
            .map_err(|e| anyhow::anyhow!("Produce: {e}"))?;
        Ok(resp
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter())
            .filter(|p| p.error_code != 0)
            .map(|p| (p.index, p.error_code))
            .collect())
    }

    /// CreateTopics of one topic with the replicas of each partition given (partition i gets
    /// `replicas[i]`), as `kafka-topics.sh --replica-assignment` sends it. Returns the error code and
    /// message, (0, "") on success (TOPIC_ALREADY_EXISTS counts as success when `exists_ok`).
    pub fn create_topic_assigned(
        &mut self,
        name: &str,
        replicas: &[Vec<i32>],
        timeout_ms: i32,
        exists_ok: bool,
    ) -> Result<(i16, String)> {
        let mut topic = CreatableTopic::default();
        topic.name = TopicName(StrBytes::from_string(name.to_string()));
        // With explicit assignments both counts must be -1.
        topic.num_partitions = -1;
        topic.replication_factor = -1;
        topic.assignments = replicas
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut a = CreatableReplicaAssignment::default();
                a.partition_index = i32::try_from(i).unwrap_or(i32::MAX);
                a.broker_ids = r.iter().map(|id| BrokerId(*id)).collect();
                a
            })
            .collect();
        let mut req = CreateTopicsRequest::default();
        req.timeout_ms = timeout_ms;
        req.topics = vec![topic];
        let resp = self.call(&req)?;
        let t = resp.topics.first().context("empty CreateTopics answer")?;
        if t.error_code == 0 || (exists_ok && t.error_code == TOPIC_ALREADY_EXISTS) {
            return Ok((0, String::new()));
        }
        Ok((
            t.error_code,
            t.error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default(),
        ))
    }

    /// ElectLeaders PREFERRED for every partition (a null topic list means all, in both brokers).
    pub fn elect_preferred_all(&mut self) -> Result<()> {
        let mut req = ElectLeadersRequest::default();
        req.election_type = 0;
        req.topic_partitions = None;
        req.timeout_ms = 60_000;
        let resp = self.call(&req)?;
        if resp.error_code != 0 {
            bail!("ElectLeaders error {}", resp.error_code);
        }
        Ok(())
    }

    /// The active controller, the metadata high watermark and each voter's log end offset.
    pub fn quorum(&mut self) -> Result<Quorum> {
        let mut partition = PartitionData::default();
        partition.partition_index = 0;
        let mut topic = TopicData::default();
        topic.topic_name = TopicName(StrBytes::from_static_str("__cluster_metadata"));
        topic.partitions = vec![partition];
        let mut req = DescribeQuorumRequest::default();
        req.topics = vec![topic];
        let resp = self.call(&req)?;
        if resp.error_code != 0 {
            bail!("DescribeQuorum error {}", resp.error_code);
        }
        let p = resp
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .context("empty DescribeQuorum answer")?;
        if p.error_code != 0 {
            bail!("DescribeQuorum partition error {}", p.error_code);
        }
        Ok(Quorum {
            leader: p.leader_id.0,
            high_watermark: p.high_watermark,
            voters: p
                .current_voters
                .iter()
                .map(|v| (v.replica_id.0, v.log_end_offset))
                .collect(),
        })
    }
}

/// What DescribeQuorum answered.
#[derive(Debug, Clone)]
pub struct Quorum {
    pub leader: i32,
    pub high_watermark: i64,
    pub voters: Vec<(i32, i64)>,
}
