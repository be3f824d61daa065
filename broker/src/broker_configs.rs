//! The broker-level settings DescribeConfigs reports for a BROKER resource: the keys this broker reads, with
//! Kafka's defaults and types, so `kafka-configs --describe --entity-type brokers --all` shows real values.

/// DescribeConfigs `config_type` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
}

pub struct BrokerConfigDef {
    pub name: &'static str,
    pub config_type: ConfigType,
    /// `None` for keys without a default (they are required or derived).
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

const fn def(
    name: &'static str,
    config_type: ConfigType,
    default: Option<&'static str>,
    doc: &'static str,
) -> BrokerConfigDef {
    BrokerConfigDef {
        name,
        config_type,
        default,
        doc,
    }
}

use ConfigType::*;

pub const BROKER_CONFIGS: &[BrokerConfigDef] = &[
    def(
        "process.roles",
        List,
        None,
        "The roles this node plays: broker, controller or both.",
    ),
    def(
        "node.id",
        Int,
        None,
        "The node id of this broker and controller.",
    ),
    def(
        "controller.quorum.voters",
        List,
        Some(""),
        "The controller quorum: id@host:port, comma separated.",
    ),
    def(
        "controller.listener.names",
        List,
        None,
        "Listeners used by the controller quorum.",
    ),
    def(
        "listeners",
        List,
        Some("PLAINTEXT://:9092"),
        "Listener URIs the broker binds.",
    ),
    def(
        "advertised.listeners",
        List,
        None,
        "Listener URIs given to clients, when different from listeners.",
    ),
    def(
        "listener.security.protocol.map",
        String,
        Some("SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"),
        "Listener name to security protocol.",
    ),
    def(
        "log.dirs",
        List,
        None,
        "Directories holding the partition logs.",
    ),
    def(
        "log.dir",
        List,
        Some("/tmp/kafka-logs"),
        "A single log directory, used when log.dirs is not set.",
    ),
    def(
        "metadata.log.dir",
        String,
        None,
        "Directory of the __cluster_metadata log; defaults to the first log dir.",
    ),
    def(
        "num.partitions",
        Int,
        Some("1"),
        "Default number of partitions of a new topic.",
    ),
    def(
        "default.replication.factor",
        Int,
        Some("1"),
        "Default replication factor of a new topic.",
    ),
    def(
        "auto.create.topics.enable",
        Boolean,
        Some("true"),
        "Create a topic when a client asks for its metadata.",
    ),
    def(
        "delete.topic.enable",
        Boolean,
        Some("true"),
        "Allow topic deletion.",
    ),
    def(
        "log.segment.bytes",
        Int,
        Some("1073741824"),
        "Maximum size of one log segment file.",
    ),
    def(
        "log.roll.ms",
        Long,
        None,
        "Maximum age of the active segment before a new one is rolled.",
    ),
    def("log.roll.hours", Int, Some("168"), "log.roll.ms in hours."),
    def(
        "log.retention.ms",
        Long,
        None,
        "How long a segment is kept after its newest record.",
    ),
    def(
        "log.retention.minutes",
        Int,
        None,
        "log.retention.ms in minutes.",
    ),
    def(
        "log.retention.hours",
        Int,
        Some("168"),
        "log.retention.ms in hours.",
    ),
    def(
        "log.retention.bytes",
        Long,
        Some("-1"),
        "Maximum size of a partition's log before old segments go.",
    ),
    def(
        "log.retention.check.interval.ms",
        Long,
        Some("300000"),
        "How often retention runs.",
    ),
    def(
        "log.index.interval.bytes",
        Int,
        Some("4096"),
        "Bytes of log between offset index entries.",
    ),
    def(
        "log.message.timestamp.type",
        String,
        Some("CreateTime"),
        "CreateTime or LogAppendTime.",
    ),
    def(
        "log.cleanup.policy",
        List,
        Some("delete"),
        "delete and/or compact.",
    ),
    def(
        "log.cleaner.enable",
        Boolean,
        Some("true"),
        "Run the log cleaner, which compacts topics with cleanup.policy compact.",
    ),
    def(
        "log.cleaner.threads",
        Int,
        Some("1"),
        "Threads cleaning logs.",
    ),
    def(
        "log.cleaner.io.max.bytes.per.second",
        Double,
        Some("1.7976931348623157E308"),
        "Bytes per second the cleaner threads may read and write together.",
    ),
    def(
        "log.cleaner.backoff.ms",
        Long,
        Some("15000"),
        "Pause of a cleaner thread when no log needs cleaning.",
    ),
    def(
        "log.cleaner.dedupe.buffer.size",
        Long,
        Some("134217728"),
        "Memory for the cleaner threads' key maps together.",
    ),
    def(
        "log.cleaner.min.cleanable.ratio",
        Double,
        Some("0.5"),
        "Default min.cleanable.dirty.ratio of topics.",
    ),
    def(
        "log.cleaner.min.compaction.lag.ms",
        Long,
        Some("0"),
        "Default min.compaction.lag.ms of topics.",
    ),
    def(
        "log.cleaner.max.compaction.lag.ms",
        Long,
        Some("9223372036854775807"),
        "Default max.compaction.lag.ms of topics.",
    ),
    def(
        "log.cleaner.delete.retention.ms",
        Long,
        Some("86400000"),
        "Default delete.retention.ms of topics.",
    ),
    def(
        "message.max.bytes",
        Int,
        Some("1048588"),
        "Largest record batch the broker accepts.",
    ),
    def(
        "socket.request.max.bytes",
        Int,
        Some("104857600"),
        "Largest request frame the broker accepts.",
    ),
    def(
        "unclean.leader.election.enable",
        Boolean,
        Some("false"),
        "Whether a replica outside the ISR may become leader when no in-sync replica is live.",
    ),
    def(
        "auto.leader.rebalance.enable",
        Boolean,
        Some("true"),
        "The active controller moves leadership back to preferred replicas.",
    ),
    def(
        "leader.imbalance.check.interval.seconds",
        Long,
        Some("300"),
        "How often the active controller checks for leader imbalance.",
    ),
    def(
        "leader.imbalance.per.broker.percentage",
        Int,
        Some("10"),
        "Share of a broker's preferred partitions led elsewhere above which they move back.",
    ),
    def(
        "min.insync.replicas",
        Int,
        Some("1"),
        "Replicas that must acknowledge an acks=all write.",
    ),
    def(
        "compression.type",
        String,
        Some("producer"),
        "Final compression of topic data; producer keeps it as sent.",
    ),
    def(
        "offsets.topic.num.partitions",
        Int,
        Some("50"),
        "Partitions of __consumer_offsets.",
    ),
    def(
        "offsets.topic.replication.factor",
        Short,
        Some("3"),
        "Replication factor of __consumer_offsets.",
    ),
    def(
        "group.initial.rebalance.delay.ms",
        Int,
        Some("3000"),
        "Wait for more members before the first rebalance.",
    ),
    def(
        "group.min.session.timeout.ms",
        Int,
        Some("6000"),
        "Smallest session timeout a member may ask for.",
    ),
    def(
        "group.max.session.timeout.ms",
        Int,
        Some("1800000"),
        "Largest session timeout a member may ask for.",
    ),
    def(
        "log.flush.interval.messages",
        Long,
        Some("9223372036854775807"),
        "Records a partition takes before it is fsynced.",
    ),
    def(
        "log.flush.interval.ms",
        Long,
        None,
        "Age of unflushed data at which a partition is fsynced; log.flush.scheduler.interval.ms when unset.",
    ),
    def(
        "log.flush.scheduler.interval.ms",
        Long,
        Some("9223372036854775807"),
        "How often partitions are checked against flush.ms (every second while unset).",
    ),
    def(
        "log.roll.jitter.ms",
        Long,
        None,
        "Largest random share of segment.ms a segment rolls early.",
    ),
    def(
        "log.roll.jitter.hours",
        Int,
        Some("0"),
        "log.roll.jitter.ms in hours.",
    ),
    def(
        "log.message.timestamp.before.max.ms",
        Long,
        Some("9223372036854775807"),
        "How far a CreateTime timestamp may be behind the broker's clock.",
    ),
    def(
        "log.message.timestamp.after.max.ms",
        Long,
        Some("3600000"),
        "How far a CreateTime timestamp may be ahead of the broker's clock.",
    ),
    def(
        "compression.gzip.level",
        Int,
        Some("-1"),
        "Level of recompression to gzip.",
    ),
    def(
        "compression.lz4.level",
        Int,
        Some("9"),
        "Level of recompression to lz4.",
    ),
    def(
        "compression.zstd.level",
        Int,
        Some("3"),
        "Level of recompression to zstd.",
    ),
    def(
        "producer.id.expiration.ms",
        Int,
        Some("86400000"),
        "How long an idle idempotent producer's state is kept.",
    ),
    def(
        "producer.id.expiration.check.interval.ms",
        Int,
        Some("600000"),
        "How often idle producers are expired.",
    ),
    def(
        "num.recovery.threads.per.data.dir",
        Int,
        Some("2"),
        "Threads per log directory that open (and recover) partitions.",
    ),
    def(
        "replica.lag.time.max.ms",
        Long,
        Some("30000"),
        "A follower this far behind leaves the ISR.",
    ),
    def(
        "replica.high.watermark.checkpoint.interval.ms",
        Long,
        Some("5000"),
        "How often high watermarks are checkpointed.",
    ),
    def(
        "connections.max.idle.ms",
        Long,
        Some("600000"),
        "Idle connections are closed after this long.",
    ),
    def(
        "max.connections",
        Int,
        Some("2147483647"),
        "Open client connections at most.",
    ),
    def(
        "max.connections.per.ip",
        Int,
        Some("2147483647"),
        "Open connections from one address at most.",
    ),
    def(
        "max.connections.per.ip.overrides",
        String,
        Some(""),
        "Per-address exceptions to max.connections.per.ip: a list of address:count.",
    ),
];

pub fn find(name: &str) -> Option<&'static BrokerConfigDef> {
    BROKER_CONFIGS.iter().find(|d| d.name == name)
}
