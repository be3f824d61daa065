//! Broker configuration: Kafka's own `server.properties` keys, `--override key=value` pairs and the environment
//! variable conventions of the Apache (`KAFKA_LOG_DIRS`) and Bitnami (`KAFKA_CFG_LOG_DIRS`) images.
//!
//! Every key is checked against [`crate::config_keys`]: a key Kraftwerk does not honour is refused at start with
//! the key, where it came from (file, `--override` or environment variable) and why, and so is a value that would
//! change behaviour and cannot be parsed. Keys of features that are not built are accepted at Kafka's default
//! only, so Apache's and Bitnami's config files start as they are (docs/configuration.md has the whole table).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a configuration was refused. Every variant names the key so the operator knows what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid value {value:?} for config key '{key}': {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("missing required config key '{0}'")]
    Missing(&'static str),
    #[error("invalid --override {0:?}: expected key=value")]
    BadOverride(String),
    /// A key that is not honoured (unknown, or a feature that is not built set to a non-default value).
    #[error(transparent)]
    Refused(#[from] crate::config_keys::KeyRefused),
    /// An SSL listener's settings are wrong.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsConfigError),
    /// A SASL listener's settings are wrong.
    #[error(transparent)]
    Sasl(#[from] crate::sasl::SaslConfigError),
}

/// The security protocols Kafka names in `listener.security.protocol.map` (the same type the metadata
/// records carry, so a listener's protocol reaches broker registrations unchanged).
pub use kraftwerk_controller::records::SecurityProtocol;

fn parse_security_protocol(key: &str, s: &str) -> Result<SecurityProtocol, ConfigError> {
    match s.trim().to_ascii_uppercase().as_str() {
        "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
        "SSL" => Ok(SecurityProtocol::Ssl),
        "SASL_PLAINTEXT" => Ok(SecurityProtocol::SaslPlaintext),
        "SASL_SSL" => Ok(SecurityProtocol::SaslSsl),
        other => Err(invalid(key, other, "unknown security protocol")),
    }
}

/// One entry of `listeners` or `advertised.listeners`: `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub security_protocol: SecurityProtocol,
}

impl Listener {
    /// The address to bind: an empty host (`PLAINTEXT://:9092`) binds every interface, like Kafka.
    pub fn bind_addr(&self) -> String {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// A controller quorum voter from `controller.quorum.voters` (`id@host:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Broker,
    Controller,
}

/// The parsed configuration. Fields hold Kafka's defaults when the key is absent.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub process_roles: Vec<Role>,
    pub node_id: i32,
    pub voters: Vec<Voter>,
    pub controller_listener_names: Vec<String>,
    pub listeners: Vec<Listener>,
    pub advertised_listeners: Vec<Listener>,
    pub log_dirs: Vec<PathBuf>,
    pub metadata_log_dir: Option<PathBuf>,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub log_segment_bytes: u64,
    pub log_retention_ms: i64,
    pub log_retention_bytes: i64,
    pub log_roll_ms: i64,
    pub log_retention_check_interval_ms: u64,
    pub log_index_interval_bytes: u32,
    pub log_message_timestamp_type: String,
    pub log_cleanup_policy: String,
    /// `log.cleaner.*`: the log cleaner threads and the broker defaults of the compaction topic configs.
    pub log_cleaner: crate::replica::cleaner::CleanerSettings,
    pub message_max_bytes: u32,
    pub socket_request_max_bytes: usize,
    /// `max.incremental.fetch.session.cache.slots`: fetch sessions (KIP-227) held at most; 0 opens none.
    pub fetch_session_cache_slots: usize,
    /// `max.connections`: open client connections at most (accepts pause at the limit); `None` when unlimited.
    pub max_connections: Option<usize>,
    /// `listener.name.<l>.max.connections`, per listener name.
    pub listener_max_connections: BTreeMap<String, usize>,
    /// `max.connections.per.ip` and `max.connections.per.ip.overrides`: more connections from one address are
    /// closed at once.
    pub max_connections_per_ip: usize,
    pub max_connections_per_ip_overrides: std::collections::HashMap<std::net::IpAddr, usize>,
    /// `connections.max.idle.ms`: a connection with no complete request for this long is closed, so a
    /// client that stalls mid-frame (or never speaks) cannot hold a connection forever.
    pub connections_max_idle: std::time::Duration,
    pub min_insync_replicas: i32,
    /// `replica.lag.time.max.ms`: a follower that has not caught up with its leader's log end for this long
    /// leaves the ISR.
    pub replica_lag_time_max: std::time::Duration,
    /// `replica.selector.class`: whether a leader points rack-aware consumers at a replica in their rack
    /// (KIP-392); unknown classes are refused.
    pub replica_selector: crate::replica::read_replica::ReplicaSelector,
    /// `replica.high.watermark.checkpoint.interval.ms`: how often each log directory's high watermarks are
    /// written to `replication-offset-checkpoint`.
    pub replica_hw_checkpoint_interval: std::time::Duration,
    /// `inter.broker.listener.name`: the listener followers fetch from (else the first client listener).
    pub inter_broker_listener_name: Option<String>,
    /// `compression.type` (validated: `producer`, `uncompressed` or a codec).
    pub compression_type: String,
    /// `compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level`.
    pub compression_levels: kraftwerk_storage::CompressionLevels,
    /// `log.flush.interval.messages`: fsync a partition after this many records (u64::MAX: never by count).
    pub log_flush_interval_messages: u64,
    /// `log.flush.interval.ms`, else `log.flush.scheduler.interval.ms` (Kafka's synonym order): fsync data
    /// older than this (i64::MAX: never by age).
    pub log_flush_interval_ms: i64,
    /// `log.flush.scheduler.interval.ms`: how often partitions are checked against their `flush.ms`.
    pub log_flush_scheduler_interval_ms: i64,
    /// `log.roll.jitter.ms` (or `.hours`).
    pub log_roll_jitter_ms: i64,
    /// `log.message.timestamp.before.max.ms` / `after.max.ms`.
    pub log_message_timestamp_before_max_ms: i64,
    pub log_message_timestamp_after_max_ms: i64,
    /// `num.network.threads` + `num.io.threads` when either is set: the runtime's worker threads (else the
    /// number of CPUs).
    pub worker_threads: Option<usize>,
    /// `socket.send.buffer.bytes` / `socket.receive.buffer.bytes`: SO_SNDBUF / SO_RCVBUF of client
    /// connections; `None` (unset or -1) leaves the OS default.
    pub socket_send_buffer_bytes: Option<u32>,
    pub socket_receive_buffer_bytes: Option<u32>,
    /// `num.recovery.threads.per.data.dir`: threads per log directory that open (and recover) partitions.
    pub num_recovery_threads_per_data_dir: usize,
    /// `producer.id.expiration.ms`: an idempotent producer idle this long is forgotten.
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms`.
    pub producer_id_expiration_check_interval_ms: u64,
    /// Keys from `KAFKA_<KEY>` variables that are not config keys and were left alone (logged).
    pub ignored_env_keys: Vec<String>,
    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_replication_factor: i16,
    pub group_initial_rebalance_delay_ms: i64,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    pub delete_topic_enable: bool,
    /// `controller.quorum.election.timeout.ms`: a voter that hears no leader for this long (randomised up to
    /// twice it, as raft does) starts an election.
    pub election_timeout: std::time::Duration,
    /// `controller.quorum.fetch.timeout.ms`: a broker whose metadata fetch gets no answer for this long tries
    /// another controller.
    pub quorum_fetch_timeout: std::time::Duration,
    /// `broker.session.timeout.ms`: a broker with no heartbeat for this long is fenced.
    pub broker_session_timeout: std::time::Duration,
    /// `broker.heartbeat.interval.ms`.
    pub broker_heartbeat_interval: std::time::Duration,
    /// `metadata.log.max.record.bytes.between.snapshots` (Kafka's default 20 MiB): a controller snapshots its
    /// image after applying this many bytes of records, and trims its log behind the snapshot.
    pub metadata_snapshot_bytes: u64,
    /// `authorizer.class.name`, `super.users`, `allow.everyone.if.no.acl.found`: `None` when no
    /// authorizer is configured (every request allowed, ACL APIs answer SECURITY_DISABLED).
    pub authorizer: Option<crate::auth::AuthorizerConfig>,
    /// The TLS settings of each SSL and SASL_SSL listener, by listener name.
    pub ssl: BTreeMap<String, crate::tls::SslSettings>,
    /// The SASL settings of each SASL_PLAINTEXT and SASL_SSL listener, by listener name.
    pub sasl: BTreeMap<String, crate::sasl::SaslSettings>,
    /// The client-side TLS settings of the SSL listeners this node connects to (the controller listener, the
    /// inter-broker listener).
    pub ssl_clients: BTreeMap<String, crate::tls::SslClientSettings>,
    /// How this node logs in to the SASL_PLAINTEXT/SASL_SSL listeners it connects to (the controller listener,
    /// the inter-broker listener): mechanism and credentials.
    pub sasl_clients: BTreeMap<String, crate::sasl::SaslClientSettings>,
    /// `unclean.leader.election.enable`: the default, for topics without an override (and no dynamic broker
    /// config), of whether a partition whose in-sync replicas are all gone may elect a live replica outside
    /// the ISR (possible data loss). Read by the active controller.
    pub unclean_leader_election_enable: bool,
    /// `auto.leader.rebalance.enable`: the active controller moves leaderships back to preferred replicas.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`: how often the active controller checks for imbalance.
    pub leader_imbalance_check_interval: std::time::Duration,
    /// `leader.imbalance.per.broker.percentage`: a broker's leaderships are moved back once more than this
    /// share of the partitions it is preferred leader of are led by another replica.
    pub leader_imbalance_per_broker_percentage: u32,
    /// Every key as given (after overrides), for DescribeConfigs of the broker resource.
    pub raw: BTreeMap<String, String>,
}

/// Looks `key` up for `listener` as Kafka does: `listener.name.<listener, lower case>.<key>` first, then `<key>`;
/// returns the key that was found (for messages) and its value.
pub fn listener_setting<'a>(
    props: &'a BTreeMap<String, String>,
    listener: &str,
    key: &str,
) -> Option<(String, &'a str)> {
    let prefixed = format!("listener.name.{}.{key}", listener.to_ascii_lowercase());
    if let Some(v) = props.get(&prefixed) {
        return Some((prefixed, v.as_str()));
    }
    props.get(key).map(|v| (key.to_string(), v.as_str()))
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Parses Java-properties text: `key=value` or `key: value`, `#`/`!` comments, trailing-backslash continuations.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut pending = String::new();
    for raw_line in text.lines() {
        let line = raw_line.trim_start();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            continue;
        }
        pending.push_str(line);
        let entry = std::mem::take(&mut pending);
        if let Some(idx) = entry.find(['=', ':']) {
            let (k, v) = entry.split_at(idx);
            out.insert(k.trim().to_string(), v[1..].trim().to_string());
        } else if !entry.trim().is_empty() {
            out.insert(entry.trim().to_string(), String::new());
        }
    }
    out
}

/// A key set by an environment variable: the variable's name (for messages) and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSetting {
    pub var: String,
    pub value: String,
}

/// Maps environment variables to keys: `KAFKA_CFG_LOG_DIRS` (Bitnami) and `KAFKA_LOG_DIRS` (Apache image) both
/// become `log.dirs`. Underscores become dots; the Apache image's `__` stands for `_` and `___` for `-`.
pub fn env_overrides(vars: impl Iterator<Item = (String, String)>) -> BTreeMap<String, EnvSetting> {
    let mut bitnami = BTreeMap::new();
    let mut apache = BTreeMap::new();
    for (name, value) in vars {
        if let Some(rest) = name.strip_prefix("KAFKA_CFG_") {
            let key = env_name_to_key(rest);
            bitnami.insert(key, EnvSetting { var: name, value });
        } else if let Some(rest) = name.strip_prefix("KAFKA_") {
            // Image-level variables that are not broker keys.
            if matches!(
                rest,
                "HEAP_OPTS"
                    | "OPTS"
                    | "JMX_OPTS"
                    | "LOG4J_OPTS"
                    | "GC_LOG_OPTS"
                    | "JVM_PERFORMANCE_OPTS"
            ) || rest.starts_with("CFG_")
            {
                continue;
            }
            let key = env_name_to_key(rest);
            apache.insert(key, EnvSetting { var: name, value });
        }
    }
    // Bitnami's explicit prefix wins over the generic one.
    apache.extend(bitnami);
    apache
}

fn env_name_to_key(rest: &str) -> String {
    rest.to_ascii_lowercase()
        .replace("___", "\u{1}")
        .replace("__", "\u{2}")
        .replace('_', ".")
        .replace('\u{1}', "-")
        .replace('\u{2}', "_")
}

fn parse_num<T: std::str::FromStr>(
    props: &BTreeMap<String, String>,
    key: &str,
    default: T,
) -> Result<T, ConfigError> {
    match props.get(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| invalid(key, v, "not a valid number")),
    }
}

fn parse_bool(
    props: &BTreeMap<String, String>,
    key: &str,
    default: bool,
) -> Result<bool, ConfigError> {
    match props.get(key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(invalid(key, &v, "expected true or false")),
    }
}

fn list(props: &BTreeMap<String, String>, key: &str) -> Vec<String> {
    props
        .get(key)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn parse_listeners(
    key: &str,
    value: &[String],
    protocol_map: &BTreeMap<String, SecurityProtocol>,
) -> Result<Vec<Listener>, ConfigError> {
    let mut out: Vec<Listener> = Vec::new();
    for item in value {
        let (name, rest) = item
            .split_once("://")
            .ok_or_else(|| invalid(key, item, "expected NAME://host:port"))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| invalid(key, item, "expected NAME://host:port"))?;
        let port: u16 = port.parse().map_err(|_| invalid(key, item, "bad port"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let name = name.to_ascii_uppercase();
        let security_protocol = match protocol_map.get(&name) {
            Some(p) => *p,
            None => parse_security_protocol(key, &name).map_err(|_| {
                invalid(
                    key,
                    item,
                    "listener name is not in listener.security.protocol.map and is not a security protocol",
                )
            })?,
        };
        if out.iter().any(|l| l.name == name) {
            return Err(invalid(key, item, "listener name used twice"));
        }
        out.push(Listener {
            name,
            host,
            port,
            security_protocol,
        });
    }
    Ok(out)
}

/// An integer key with a lower bound (Kafka's `atLeast`).
fn at_least(
    props: &BTreeMap<String, String>,
    key: &str,
    default: i64,
    min: i64,
) -> Result<i64, ConfigError> {
    let v: i64 = parse_num(props, key, default)?;
    if v < min {
        return Err(invalid(
            key,
            &v.to_string(),
            &format!("must be at least {min}"),
        ));
    }
    Ok(v)
}

/// An integer key within inclusive bounds (Kafka's `between`).
fn between(
    props: &BTreeMap<String, String>,
    key: &str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ConfigError> {
    let v: i64 = parse_num(props, key, default)?;
    if v < min || v > max {
        return Err(invalid(
            key,
            &v.to_string(),
            &format!("must be between {min} and {max}"),
        ));
    }
    Ok(v)
}

/// A duration in milliseconds that must be positive.
fn positive_ms(
    props: &BTreeMap<String, String>,
    key: &'static str,
    default: u64,
) -> Result<std::time::Duration, ConfigError> {
    let ms: u64 = parse_num(props, key, default)?;
    if ms == 0 {
        return Err(invalid(key, "0", "must be positive"));
    }
    Ok(std::time::Duration::from_millis(ms))
}

/// The checks Kafka makes between `process.roles`, `node.id`, the voters and the listeners, each failing with
/// the keys to fix: a controller must bind its controller listener, on the port the voters name if it is one
/// of them; a broker-only node must not be a voter. A controller missing from `controller.quorum.voters` (the
/// quorum the metadata log started with) is an observer: it follows the log until it is added with
/// `kafka-metadata-quorum add-controller` (KIP-853).
fn check_roles(
    roles: &[Role],
    node_id: i32,
    voters: &[Voter],
    listeners: &[Listener],
    controller_listener_names: &[String],
) -> Result<(), ConfigError> {
    if controller_listener_names.is_empty() {
        return Err(ConfigError::Missing("controller.listener.names"));
    }
    let me = voters.iter().find(|v| v.id == node_id);
    if roles.contains(&Role::Controller) {
        let Some(listener) = listeners
            .iter()
            .find(|l| l.name == controller_listener_names[0])
        else {
            return Err(invalid(
                "listeners",
                &listeners.iter().map(|l| l.name.clone()).collect::<Vec<_>>().join(","),
                &format!(
                    "a controller must bind its controller listener {} (the first of controller.listener.names)",
                    controller_listener_names[0]
                ),
            ));
        };
        if let Some(me) = me.filter(|me| listener.port != me.port) {
            return Err(invalid(
                "controller.quorum.voters",
                &format_voters(voters),
                &format!(
                    "voter {node_id} is listed at port {}, but this node's controller listener {} binds port {}",
                    me.port, listener.name, listener.port
                ),
            ));
        }
    } else if me.is_some() {
        return Err(invalid(
            "process.roles",
            "broker",
            &format!(
                "node.id {node_id} is one of the controller.quorum.voters, so it must have the controller role"
            ),
        ));
    }
    Ok(())
}

fn format_voters(voters: &[Voter]) -> String {
    voters
        .iter()
        .map(|v| format!("{}@{}:{}", v.id, v.host, v.port))
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_voters(value: &[String]) -> Result<Vec<Voter>, ConfigError> {
    const KEY: &str = "controller.quorum.voters";
    value
        .iter()
        .map(|item| {
            let (id, addr) = item
                .split_once('@')
                .ok_or_else(|| invalid(KEY, item, "expected id@host:port"))?;
            let (host, port) = addr
                .rsplit_once(':')
                .ok_or_else(|| invalid(KEY, item, "expected id@host:port"))?;
            Ok(Voter {
                id: id
                    .trim()
                    .parse()
                    .map_err(|_| invalid(KEY, item, "bad node id"))?,
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                port: port.parse().map_err(|_| invalid(KEY, item, "bad port"))?,
            })
        })
        .collect()
}

impl BrokerConfig {
    /// The configuration of `kraftwerk` run with no arguments: one combined node, PLAINTEXT on 127.0.0.1:9092,
    /// data under ./data.
    pub fn single_node_defaults() -> BTreeMap<String, String> {
        [
            ("process.roles", "broker,controller"),
            ("node.id", "1"),
            ("controller.quorum.voters", "1@127.0.0.1:9093"),
            ("controller.listener.names", "CONTROLLER"),
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
            ),
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            ),
            ("log.dirs", "./data"),
            ("offsets.topic.replication.factor", "1"),
            ("group.initial.rebalance.delay.ms", "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Reads a file, then applies environment variables, then `--override` pairs (last wins).
    pub fn load(
        path: Option<&std::path::Path>,
        env: BTreeMap<String, EnvSetting>,
        overrides: &[String],
    ) -> Result<Self, ConfigError> {
        use crate::config_keys::Source;
        let mut sources = BTreeMap::new();
        let mut props = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                let props = parse_properties(&text);
                for k in props.keys() {
                    sources.insert(k.clone(), Source::File(p.to_path_buf()));
                }
                props
            }
            None => Self::single_node_defaults(),
        };
        for (k, setting) in env {
            sources.insert(k.clone(), Source::Env(setting.var));
            props.insert(k, setting.value);
        }
        for o in overrides {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| ConfigError::BadOverride(o.clone()))?;
            sources.insert(k.trim().to_string(), Source::Override);
            props.insert(k.trim().to_string(), v.trim().to_string());
        }
        Self::from_sourced_properties(props, &sources)
    }

    /// [`Self::load`]'s parsing of keys given directly (every key taken as meant: unknown keys are refused).
    pub fn from_properties(props: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_sourced_properties(props, &BTreeMap::new())
    }

    fn from_sourced_properties(
        mut props: BTreeMap<String, String>,
        sources: &BTreeMap<String, crate::config_keys::Source>,
    ) -> Result<Self, ConfigError> {
        let ignored_env_keys = crate::config_keys::check(&props, sources)?;
        for key in &ignored_env_keys {
            props.remove(key);
        }
        let roles_raw = list(&props, "process.roles");
        if roles_raw.is_empty() {
            return Err(ConfigError::Missing("process.roles"));
        }
        let process_roles = roles_raw
            .iter()
            .map(|r| match r.as_str() {
                "broker" => Ok(Role::Broker),
                "controller" => Ok(Role::Controller),
                other => Err(invalid(
                    "process.roles",
                    other,
                    "expected broker and/or controller",
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let node_id: i32 = match props.get("node.id").or_else(|| props.get("broker.id")) {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| invalid("node.id", v, "not a valid integer"))?,
            None => return Err(ConfigError::Missing("node.id")),
        };
        if node_id < 0 {
            return Err(invalid("node.id", &node_id.to_string(), "must be >= 0"));
        }
        let mut protocol_map = BTreeMap::new();
        for item in list(&props, "listener.security.protocol.map") {
            let (name, proto) = item.split_once(':').ok_or_else(|| {
                invalid(
                    "listener.security.protocol.map",
                    &item,
                    "expected NAME:PROTOCOL",
                )
            })?;
            protocol_map.insert(
                name.trim().to_ascii_uppercase(),
                parse_security_protocol("listener.security.protocol.map", proto)?,
            );
        }
        for p in ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] {
            if !protocol_map.contains_key(p) {
                protocol_map.insert(p.to_string(), parse_security_protocol("", p)?);
            }
        }
        let controller_listener_names: Vec<String> = list(&props, "controller.listener.names")
            .into_iter()
            .map(|s| s.to_ascii_uppercase())
            .collect();
        if !props.contains_key("listener.security.protocol.map") {
            // As Kafka does when the map is not set: controller listeners default to PLAINTEXT.
            for name in &controller_listener_names {
                protocol_map
                    .entry(name.clone())
                    .or_insert(SecurityProtocol::Plaintext);
            }
        }
        let listeners = parse_listeners("listeners", &list(&props, "listeners"), &protocol_map)?;
        let mut advertised_listeners = parse_listeners(
            "advertised.listeners",
            &list(&props, "advertised.listeners"),
            &protocol_map,
        )?;
        if advertised_listeners.is_empty() {
            advertised_listeners = listeners
                .iter()
                .filter(|l| !controller_listener_names.contains(&l.name))
                .cloned()
                .collect();
        }
        let inter_broker_listener =
            props
                .get("inter.broker.listener.name")
                .cloned()
                .or_else(|| {
                    listeners
                        .iter()
                        .find(|l| !controller_listener_names.contains(&l.name))
                        .map(|l| l.name.clone())
                });
        let connections_max_idle = std::time::Duration::from_millis(
            parse_num::<u64>(&props, "connections.max.idle.ms", 600_000)?.max(1),
        );
        let mut ssl = BTreeMap::new();
        let mut sasl = BTreeMap::new();
        for l in &listeners {
            if matches!(
                l.security_protocol,
                SecurityProtocol::Ssl | SecurityProtocol::SaslSsl
            ) {
                ssl.insert(
                    l.name.clone(),
                    crate::tls::SslSettings::from_props(&l.name, &props)?,
                );
            }
            if matches!(
                l.security_protocol,
                SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
            ) {
                sasl.insert(
                    l.name.clone(),
                    crate::sasl::SaslSettings::from_props(&l.name, &props, connections_max_idle)?,
                );
            }
        }
        // The listeners this node dials: the controller listener (raft between controllers, brokers' calls to
        // the active controller) and the inter-broker listener (follower fetches), each with its own protocol:
        // TLS client settings for SSL/SASL_SSL, a mechanism and credentials for SASL_PLAINTEXT/SASL_SSL (Kafka's
        // sasl.mechanism.controller.protocol and sasl.mechanism.inter.broker.protocol).
        let mut ssl_clients = BTreeMap::new();
        let mut sasl_clients = BTreeMap::new();
        let dialled = controller_listener_names
            .iter()
            .take(1)
            .map(|name| (name, "sasl.mechanism.controller.protocol"))
            .chain(
                inter_broker_listener
                    .iter()
                    .map(|name| (name, "sasl.mechanism.inter.broker.protocol")),
            );
        for (name, mechanism_key) in dialled {
            let protocol = protocol_map.get(name).copied();
            if matches!(
                protocol,
                Some(SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
            ) && !ssl_clients.contains_key(name)
            {
                ssl_clients.insert(
                    name.clone(),
                    crate::tls::SslClientSettings::from_props(name, &props)?,
                );
            }
            if matches!(
                protocol,
                Some(SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
            ) {
                // As Kafka requires: a node serving the listener must accept what the nodes log in with (checked
                // before the credentials, as the more basic mistake).
                let named = props
                    .get(mechanism_key)
                    .and_then(|m| crate::sasl::Mechanism::from_name(m.trim()));
                if let (Some(served), Some(mechanism)) = (sasl.get(name), named) {
                    let served: &crate::sasl::SaslSettings = served;
                    if !served.mechanisms.contains(&mechanism) {
                        return Err(invalid(
                            mechanism_key,
                            mechanism.name(),
                            &format!(
                                "listener {name} does not enable it (sasl.enabled.mechanisms or \
                                 listener.name.{}.sasl.enabled.mechanisms), so nodes could not log in to it",
                                name.to_ascii_lowercase()
                            ),
                        ));
                    }
                }
                let client =
                    crate::sasl::SaslClientSettings::from_props(name, mechanism_key, &props)?;
                if let Some(existing) = sasl_clients.get(name) {
                    let existing: &crate::sasl::SaslClientSettings = existing;
                    if existing.mechanism != client.mechanism {
                        return Err(invalid(
                            mechanism_key,
                            client.mechanism.name(),
                            &format!(
                                "listener {name} is both the controller and the inter-broker listener, and \
                                 sasl.mechanism.controller.protocol is {}",
                                existing.mechanism.name()
                            ),
                        ));
                    }
                }
                sasl_clients.insert(name.clone(), client);
            }
        }
        let is_broker = process_roles.contains(&Role::Broker);
        if is_broker
            && !listeners
                .iter()
                .any(|l| !controller_listener_names.contains(&l.name))
        {
            return Err(invalid(
                "listeners",
                props.get("listeners").map(String::as_str).unwrap_or(""),
                "a broker needs at least one listener that is not a controller listener",
            ));
        }
        let voters = parse_voters(&list(&props, "controller.quorum.voters"))?;
        if let Some(servers) = props.get("controller.quorum.bootstrap.servers") {
            return Err(invalid(
                "controller.quorum.bootstrap.servers",
                servers,
                "Kraftwerk finds the quorum from controller.quorum.voters: list there, on every node, the \
                 voters the metadata log started with (id@host:port,...); voters added or removed since are \
                 learned from the log. A controller that is not one of them starts as an observer and is \
                 added with kafka-metadata-quorum add-controller",
            ));
        }
        if voters.is_empty() {
            return Err(ConfigError::Missing("controller.quorum.voters"));
        }
        check_roles(
            &process_roles,
            node_id,
            &voters,
            &listeners,
            &controller_listener_names,
        )?;
        let election_timeout = positive_ms(&props, "controller.quorum.election.timeout.ms", 1000)?;
        let broker_session_timeout = positive_ms(&props, "broker.session.timeout.ms", 9000)?;
        let broker_heartbeat_interval = positive_ms(&props, "broker.heartbeat.interval.ms", 2000)?;
        if broker_heartbeat_interval >= broker_session_timeout {
            return Err(invalid(
                "broker.heartbeat.interval.ms",
                &broker_heartbeat_interval.as_millis().to_string(),
                "must be less than broker.session.timeout.ms",
            ));
        }
        let leader_imbalance_check_seconds: u64 =
            parse_num(&props, "leader.imbalance.check.interval.seconds", 300)?;
        if leader_imbalance_check_seconds == 0 {
            return Err(invalid(
                "leader.imbalance.check.interval.seconds",
                "0",
                "must be at least 1",
            ));
        }
        let leader_imbalance_per_broker_percentage: u32 =
            parse_num(&props, "leader.imbalance.per.broker.percentage", 10)?;
        let mut log_dirs: Vec<PathBuf> = list(&props, "log.dirs")
            .into_iter()
            .map(PathBuf::from)
            .collect();
        if log_dirs.is_empty() {
            log_dirs = list(&props, "log.dir")
                .into_iter()
                .map(PathBuf::from)
                .collect();
        }
        if log_dirs.is_empty() {
            log_dirs.push(PathBuf::from("/tmp/kraft-combined-logs"));
        }
        let log_retention_ms = if props.contains_key("log.retention.ms") {
            parse_num(&props, "log.retention.ms", 0i64)?
        } else if props.contains_key("log.retention.minutes") {
            parse_num(&props, "log.retention.minutes", 0i64)? * 60_000
        } else {
            parse_num(&props, "log.retention.hours", 168i64)? * 3_600_000
        };
        let log_roll_ms = if props.contains_key("log.roll.ms") {
            parse_num(&props, "log.roll.ms", 0i64)?
        } else {
            parse_num(&props, "log.roll.hours", 168i64)? * 3_600_000
        };
        let log_segment_bytes: u64 = parse_num(&props, "log.segment.bytes", 1_073_741_824u64)?;
        if log_segment_bytes < 14 {
            return Err(invalid(
                "log.segment.bytes",
                &log_segment_bytes.to_string(),
                "must be at least 14",
            ));
        }
        let num_partitions: i32 = parse_num(&props, "num.partitions", 1)?;
        if num_partitions < 1 {
            return Err(invalid(
                "num.partitions",
                &num_partitions.to_string(),
                "must be at least 1",
            ));
        }
        let default_replication_factor: i16 = parse_num(&props, "default.replication.factor", 1)?;
        if default_replication_factor < 1 {
            return Err(invalid(
                "default.replication.factor",
                &default_replication_factor.to_string(),
                "must be at least 1",
            ));
        }
        let timestamp_type = props
            .get("log.message.timestamp.type")
            .cloned()
            .unwrap_or_else(|| "CreateTime".to_string());
        if timestamp_type != "CreateTime" && timestamp_type != "LogAppendTime" {
            return Err(invalid(
                "log.message.timestamp.type",
                &timestamp_type,
                "expected CreateTime or LogAppendTime",
            ));
        }
        let socket_request_max_bytes: usize =
            parse_num(&props, "socket.request.max.bytes", 104_857_600usize)?;
        if socket_request_max_bytes == 0 || socket_request_max_bytes > i32::MAX as usize {
            return Err(invalid(
                "socket.request.max.bytes",
                &socket_request_max_bytes.to_string(),
                "must be between 1 and 2147483647",
            ));
        }
        let fetch_session_cache_slots: i32 =
            parse_num(&props, "max.incremental.fetch.session.cache.slots", 1000i32)?;
        let fetch_session_cache_slots =
            usize::try_from(fetch_session_cache_slots).map_err(|_| {
                invalid(
                    "max.incremental.fetch.session.cache.slots",
                    &fetch_session_cache_slots.to_string(),
                    "must be at least 0",
                )
            })?;
        let authorizer = crate::auth::AuthorizerConfig::from_properties(
            props.get("authorizer.class.name").map(String::as_str),
            props.get("super.users").map(String::as_str),
            parse_bool(&props, "allow.everyone.if.no.acl.found", false)?,
        );
        let connections = crate::network::limits::ConnectionSettings::from_properties(&props)?;
        let mut listener_max_connections = BTreeMap::new();
        for l in &listeners {
            let key = format!(
                "listener.name.{}.max.connections",
                l.name.to_ascii_lowercase()
            );
            if let Some(v) = props.get(&key) {
                let n: usize = v
                    .trim()
                    .parse()
                    .map_err(|_| invalid(&key, v, "not a connection count"))?;
                listener_max_connections.insert(l.name.clone(), n);
            }
        }
        let log_flush_scheduler_interval_ms: i64 =
            at_least(&props, "log.flush.scheduler.interval.ms", i64::MAX, 0)?;
        let log_flush_interval_ms: i64 = if props.contains_key("log.flush.interval.ms") {
            at_least(&props, "log.flush.interval.ms", i64::MAX, 0)?
        } else {
            log_flush_scheduler_interval_ms
        };
        let log_flush_interval_messages: i64 =
            at_least(&props, "log.flush.interval.messages", i64::MAX, 1)?;
        let log_roll_jitter_ms: i64 = if props.contains_key("log.roll.jitter.ms") {
            at_least(&props, "log.roll.jitter.ms", 0, 0)?
        } else {
            at_least(&props, "log.roll.jitter.hours", 0, 0)?.saturating_mul(3_600_000)
        };
        let log_message_timestamp_before_max_ms =
            at_least(&props, "log.message.timestamp.before.max.ms", i64::MAX, 0)?;
        // Kafka 4's default: one hour ahead of the broker's clock at most.
        let log_message_timestamp_after_max_ms =
            at_least(&props, "log.message.timestamp.after.max.ms", 3_600_000, 0)?;
        let compression_type = props
            .get("compression.type")
            .map_or("producer", |v| v.trim())
            .to_string();
        if kraftwerk_storage::TargetCompression::parse(&compression_type).is_none() {
            return Err(invalid(
                "compression.type",
                &compression_type,
                "expected one of uncompressed, zstd, lz4, snappy, gzip, producer",
            ));
        }
        let compression_levels = kraftwerk_storage::CompressionLevels {
            gzip: {
                let l = parse_num(&props, "compression.gzip.level", -1i32)?;
                if l != -1 && !(1..=9).contains(&l) {
                    return Err(invalid(
                        "compression.gzip.level",
                        &l.to_string(),
                        "must be -1 (the codec default) or between 1 and 9",
                    ));
                }
                l
            },
            lz4: between(&props, "compression.lz4.level", 9, 1, 17)? as i32,
            zstd: between(&props, "compression.zstd.level", 3, -131_072, 22)? as i32,
        };
        let threads = |key: &str| -> Result<Option<usize>, ConfigError> {
            match props.get(key) {
                None => Ok(None),
                Some(_) => Ok(Some(between(&props, key, 1, 1, 10_000)? as usize)),
            }
        };
        let worker_threads = match (threads("num.network.threads")?, threads("num.io.threads")?) {
            (None, None) => None,
            // Kafka's defaults for the one not given: 3 network threads, 8 I/O threads.
            (n, io) => Some(n.unwrap_or(3) + io.unwrap_or(8)),
        };
        let buffer = |key: &str| -> Result<Option<u32>, ConfigError> {
            let v: i64 = parse_num(&props, key, -1)?;
            match v {
                -1 => Ok(None),
                v if v >= 1 && v <= i64::from(i32::MAX) => Ok(Some(v as u32)),
                _ => Err(invalid(
                    key,
                    &v.to_string(),
                    "must be -1 (the OS default) or positive",
                )),
            }
        };
        let socket_send_buffer_bytes = buffer("socket.send.buffer.bytes")?;
        let socket_receive_buffer_bytes = buffer("socket.receive.buffer.bytes")?;
        let num_recovery_threads_per_data_dir =
            between(&props, "num.recovery.threads.per.data.dir", 2, 1, 10_000)? as usize;
        let producer_id_expiration_ms =
            at_least(&props, "producer.id.expiration.ms", 86_400_000, 1)?;
        let producer_id_expiration_check_interval_ms = at_least(
            &props,
            "producer.id.expiration.check.interval.ms",
            600_000,
            1,
        )? as u64;
        Ok(BrokerConfig {
            producer_id_expiration_ms,
            producer_id_expiration_check_interval_ms,
            compression_levels,
            log_flush_interval_messages: u64::try_from(log_flush_interval_messages)
                .unwrap_or(u64::MAX),
            log_flush_interval_ms,
            log_flush_scheduler_interval_ms,
            log_roll_jitter_ms,
            log_message_timestamp_before_max_ms,
            log_message_timestamp_after_max_ms,
            worker_threads,
            socket_send_buffer_bytes,
            socket_receive_buffer_bytes,
            num_recovery_threads_per_data_dir,
            ignored_env_keys,
            authorizer,
            // Kafka's default, Int.MaxValue, means no limit.
            max_connections: connections.max_connections,
            listener_max_connections,
            max_connections_per_ip: connections.per_ip,
            max_connections_per_ip_overrides: connections.per_ip_overrides,
            ssl,
            ssl_clients,
            sasl_clients,
            sasl,
            process_roles,
            node_id,
            voters,
            controller_listener_names,
            listeners,
            advertised_listeners,
            log_dirs,
            metadata_log_dir: props.get("metadata.log.dir").map(PathBuf::from),
            num_partitions,
            default_replication_factor,
            auto_create_topics_enable: parse_bool(&props, "auto.create.topics.enable", true)?,
            log_segment_bytes,
            log_retention_ms,
            log_retention_bytes: parse_num(&props, "log.retention.bytes", -1i64)?,
            log_roll_ms,
            log_retention_check_interval_ms: parse_num(
                &props,
                "log.retention.check.interval.ms",
                300_000u64,
            )?,
            log_index_interval_bytes: parse_num(&props, "log.index.interval.bytes", 4096u32)?,
            log_message_timestamp_type: timestamp_type,
            log_cleanup_policy: props
                .get("log.cleanup.policy")
                .cloned()
                .unwrap_or_else(|| "delete".into()),
            log_cleaner: crate::replica::cleaner::CleanerSettings::from_properties(&props)?,
            message_max_bytes: parse_num(&props, "message.max.bytes", 1_048_588u32)?,
            socket_request_max_bytes,
            fetch_session_cache_slots,
            connections_max_idle,
            min_insync_replicas: parse_num(&props, "min.insync.replicas", 1)?,
            replica_lag_time_max: positive_ms(&props, "replica.lag.time.max.ms", 30_000)?,
            replica_hw_checkpoint_interval: positive_ms(
                &props,
                "replica.high.watermark.checkpoint.interval.ms",
                5_000,
            )?,
            replica_selector: {
                let value = props
                    .get("replica.selector.class")
                    .map_or("", |v| v.as_str());
                crate::replica::read_replica::ReplicaSelector::parse(value)
                    .map_err(|e| invalid("replica.selector.class", value, &e.to_string()))?
            },
            inter_broker_listener_name: props.get("inter.broker.listener.name").cloned(),
            compression_type,
            offsets_topic_num_partitions: parse_num(&props, "offsets.topic.num.partitions", 50)?,
            offsets_topic_replication_factor: parse_num(
                &props,
                "offsets.topic.replication.factor",
                3,
            )?,
            group_initial_rebalance_delay_ms: parse_num(
                &props,
                "group.initial.rebalance.delay.ms",
                3000,
            )?,
            group_min_session_timeout_ms: parse_num(&props, "group.min.session.timeout.ms", 6000)?,
            group_max_session_timeout_ms: parse_num(
                &props,
                "group.max.session.timeout.ms",
                1_800_000,
            )?,
            delete_topic_enable: parse_bool(&props, "delete.topic.enable", true)?,
            election_timeout,
            quorum_fetch_timeout: positive_ms(&props, "controller.quorum.fetch.timeout.ms", 2000)?,
            broker_session_timeout,
            broker_heartbeat_interval,
            metadata_snapshot_bytes: {
                let bytes: u64 = parse_num(
                    &props,
                    "metadata.log.max.record.bytes.between.snapshots",
                    20_971_520,
                )?;
                if bytes == 0 {
                    return Err(invalid(
                        "metadata.log.max.record.bytes.between.snapshots",
                        "0",
                        "must be at least 1",
                    ));
                }
                bytes
            },
            unclean_leader_election_enable: parse_bool(
                &props,
                "unclean.leader.election.enable",
                false,
            )?,
            auto_leader_rebalance_enable: parse_bool(&props, "auto.leader.rebalance.enable", true)?,
            leader_imbalance_check_interval: std::time::Duration::from_secs(
                leader_imbalance_check_seconds,
            ),
            leader_imbalance_per_broker_percentage,
            raw: props,
        })
    }

    pub fn is_broker(&self) -> bool {
        self.process_roles.contains(&Role::Broker)
    }

    pub fn is_controller(&self) -> bool {
        self.process_roles.contains(&Role::Controller)
    }

    /// Listeners that serve Kafka clients (not the controller quorum).
    pub fn client_listeners(&self) -> impl Iterator<Item = &Listener> {
        self.listeners
            .iter()
            .filter(|l| !self.controller_listener_names.contains(&l.name))
    }

    /// How this node dials `listener` on other nodes: TLS when it is an SSL or SASL_SSL listener (its client-side
    /// settings are read now, so a bad truststore stops the start), else plain TCP; then a SASL login when it is
    /// a SASL listener.
    pub fn connector_for(
        &self,
        listener: &str,
    ) -> Result<crate::tls::PeerConnector, crate::tls::TlsConfigError> {
        let connector = match self.ssl_clients.get(listener) {
            Some(settings) => crate::tls::PeerConnector::tls(settings)?,
            None => crate::tls::PeerConnector::plaintext(),
        };
        Ok(match self.sasl_clients.get(listener) {
            Some(settings) => connector.with_sasl(settings.clone()),
            None => connector,
        })
    }

    /// The listener replicas fetch from: `inter.broker.listener.name`, else the first client listener.
    pub fn inter_broker_listener(&self) -> Option<&str> {
        match &self.inter_broker_listener_name {
            Some(name) => Some(name.as_str()),
            None => self.client_listeners().next().map(|l| l.name.as_str()),
        }
    }

    /// Where `__cluster_metadata` lives: `metadata.log.dir`, else the first of `log.dirs`, like Kafka.
    pub fn metadata_dir(&self) -> PathBuf {
        self.metadata_log_dir
            .clone()
            .unwrap_or_else(|| self.log_dirs[0].clone())
    }

    /// The advertised endpoint for a listener name; host falls back to the bound address's host.
    pub fn advertised_for(&self, listener_name: &str) -> Option<Listener> {
        self.advertised_listeners
            .iter()
            .find(|l| l.name == listener_name)
            .cloned()
            .map(|mut l| {
                if l.host.is_empty() || l.host == "0.0.0.0" {
                    l.host = "localhost".into();
                }
                l
            })
    }

    /// Resolves a bound address for tests and logs.
    pub fn parse_socket_addr(listener: &Listener) -> Option<SocketAddr> {
        listener.bind_addr().parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> BTreeMap<String, String> {
        BrokerConfig::single_node_defaults()
    }

    #[test]
    fn defaults_parse() {
        let c = BrokerConfig::from_properties(base()).expect("defaults are valid");
        assert_eq!(c.node_id, 1);
        assert!(c.is_broker() && c.is_controller());
        assert_eq!(c.client_listeners().count(), 1);
        assert_eq!(c.advertised_listeners.len(), 1);
        assert_eq!(c.advertised_listeners[0].port, 9092);
        assert_eq!(c.log_retention_ms, 168 * 3_600_000);
        assert_eq!(c.socket_request_max_bytes, 104_857_600);
        assert_eq!(c.replica_lag_time_max.as_millis(), 30_000);
        assert_eq!(c.inter_broker_listener(), Some("PLAINTEXT"));
    }

    #[test]
    fn authorizer_keys() {
        let mut props = base();
        let c = BrokerConfig::from_properties(props.clone()).expect("valid");
        assert!(c.authorizer.is_none());
        props.insert(
            "authorizer.class.name".into(),
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
        );
        props.insert(
            "super.users".into(),
            "User:admin; User:CN=broker,O=x ;".into(),
        );
        let c = BrokerConfig::from_properties(props.clone()).expect("valid");
        let a = c.authorizer.expect("configured");
        assert_eq!(a.super_users, vec!["User:admin", "User:CN=broker,O=x"]);
        assert!(!a.allow_everyone_if_no_acl_found);
        props.insert("allow.everyone.if.no.acl.found".into(), "true".into());
        let c = BrokerConfig::from_properties(props.clone()).expect("valid");
        assert!(
            c.authorizer
                .expect("configured")
                .allow_everyone_if_no_acl_found
        );
        props.insert("allow.everyone.if.no.acl.found".into(), "yes".into());
        assert!(BrokerConfig::from_properties(props.clone()).is_err());
        props.remove("allow.everyone.if.no.acl.found");
        props.insert("authorizer.class.name".into(), " ".into());
        let c = BrokerConfig::from_properties(props).expect("valid");
        assert!(
            c.authorizer.is_none(),
            "an empty class name configures nothing"
        );
    }

    #[test]
    fn replica_selector_class_is_kafkas_or_refused() {
        use crate::replica::read_replica::{ReplicaSelector, RACK_AWARE_SELECTOR};
        let mut props = base();
        let c = BrokerConfig::from_properties(props.clone()).expect("valid");
        assert_eq!(c.replica_selector, ReplicaSelector::Leader);
        props.insert("replica.selector.class".into(), RACK_AWARE_SELECTOR.into());
        let c = BrokerConfig::from_properties(props.clone()).expect("valid");
        assert_eq!(c.replica_selector, ReplicaSelector::RackAware);
        props.insert("replica.selector.class".into(), "com.example.Mine".into());
        let err = BrokerConfig::from_properties(props)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("replica.selector.class") && err.contains("com.example.Mine"),
            "{err}"
        );
    }

    #[test]
    fn replication_keys_are_honoured() {
        let mut props = base();
        props.insert("replica.lag.time.max.ms".into(), "1500".into());
        props.insert("inter.broker.listener.name".into(), "INTERNAL".into());
        let c = BrokerConfig::from_properties(props.clone()).expect("valid");
        assert_eq!(c.replica_lag_time_max.as_millis(), 1500);
        assert_eq!(c.inter_broker_listener(), Some("INTERNAL"));
        props.insert("replica.lag.time.max.ms".into(), "0".into());
        assert!(BrokerConfig::from_properties(props).is_err());
    }

    #[test]
    fn leader_election_keys_are_honoured() {
        let c = BrokerConfig::from_properties(base()).expect("valid");
        assert!(!c.unclean_leader_election_enable);
        assert!(c.auto_leader_rebalance_enable);
        assert_eq!(c.leader_imbalance_check_interval.as_secs(), 300);
        assert_eq!(c.leader_imbalance_per_broker_percentage, 10);
        let mut props = base();
        props.insert("unclean.leader.election.enable".into(), "true".into());
        props.insert("auto.leader.rebalance.enable".into(), "false".into());
        props.insert("leader.imbalance.check.interval.seconds".into(), "2".into());
        props.insert("leader.imbalance.per.broker.percentage".into(), "0".into());
        let c = BrokerConfig::from_properties(props.clone()).expect("valid");
        assert!(c.unclean_leader_election_enable);
        assert!(!c.auto_leader_rebalance_enable);
        assert_eq!(c.leader_imbalance_check_interval.as_secs(), 2);
        assert_eq!(c.leader_imbalance_per_broker_percentage, 0);
        for (key, bad) in [
            ("leader.imbalance.check.interval.seconds", "0"),
            ("leader.imbalance.per.broker.percentage", "-1"),
            ("unclean.leader.election.enable", "yes"),
        ] {
            let mut props = base();
            props.insert(key.into(), bad.into());
            let err = BrokerConfig::from_properties(props)
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    /// A controller missing from the voters is an observer waiting to be added; the bootstrap-servers form of a
    /// dynamic quorum is refused with what to do instead.
    #[test]
    fn observer_controllers_and_bootstrap_servers() {
        let mut p = base();
        p.insert("process.roles".into(), "controller".into());
        p.insert("node.id".into(), "4".into());
        p.insert("listeners".into(), "CONTROLLER://127.0.0.1:9094".into());
        p.insert("controller.quorum.voters".into(), "1@127.0.0.1:9093".into());
        let c = BrokerConfig::from_properties(p.clone()).expect("an observer controller");
        assert!(c.voters.iter().all(|v| v.id != 4));
        p.insert(
            "controller.quorum.bootstrap.servers".into(),
            "127.0.0.1:9093".into(),
        );
        let err = BrokerConfig::from_properties(p).unwrap_err().to_string();
        assert!(err.contains("controller.quorum.bootstrap.servers"), "{err}");
    }

    #[test]
    fn invalid_value_names_the_key() {
        let mut p = base();
        p.insert("num.partitions".into(), "many".into());
        let err = BrokerConfig::from_properties(p).unwrap_err().to_string();
        assert!(err.contains("num.partitions"), "{err}");
    }

    #[test]
    fn retention_hours_and_ms_precedence() {
        let mut p = base();
        p.insert("log.retention.hours".into(), "1".into());
        assert_eq!(
            BrokerConfig::from_properties(p.clone())
                .unwrap()
                .log_retention_ms,
            3_600_000
        );
        p.insert("log.retention.ms".into(), "500".into());
        assert_eq!(
            BrokerConfig::from_properties(p).unwrap().log_retention_ms,
            500
        );
    }

    #[test]
    fn properties_syntax() {
        let p = parse_properties("# c\na=1\nb : 2\n! x\nc=multi\\\n  line\n\n");
        assert_eq!(p["a"], "1");
        assert_eq!(p["b"], "2");
        assert_eq!(p["c"], "multiline");
    }

    #[test]
    fn env_conventions() {
        let vars = vec![
            ("KAFKA_CFG_LOG_DIRS".to_string(), "/bitnami".to_string()),
            ("KAFKA_NUM_PARTITIONS".to_string(), "3".to_string()),
            ("KAFKA_HEAP_OPTS".to_string(), "-Xmx1g".to_string()),
            ("KAFKA_LISTENER_NAME_X__Y".to_string(), "v".to_string()),
        ];
        let m = env_overrides(vars.into_iter());
        assert_eq!(m["log.dirs"].value, "/bitnami");
        assert_eq!(m["log.dirs"].var, "KAFKA_CFG_LOG_DIRS");
        assert_eq!(m["num.partitions"].value, "3");
        assert!(!m.contains_key("heap.opts"));
        assert_eq!(m["listener.name.x_y"].value, "v");
    }

    #[test]
    fn ssl_listeners_need_their_stores_and_internal_ones_a_truststore() {
        let mut p = base();
        p.insert(
            "listeners".into(),
            "SSL://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093".into(),
        );
        let err = BrokerConfig::from_properties(p.clone())
            .unwrap_err()
            .to_string();
        assert!(err.contains("ssl.keystore.location"), "{err}");
        p.insert("ssl.keystore.location".into(), "/k.p12".into());
        // SSL is the inter-broker listener too: this node dials it, so it needs a truststore.
        let err = BrokerConfig::from_properties(p.clone())
            .unwrap_err()
            .to_string();
        assert!(err.contains("ssl.truststore.location"), "{err}");
        p.insert("ssl.truststore.location".into(), "/t.p12".into());
        let c = BrokerConfig::from_properties(p.clone()).expect("valid");
        assert!(c.ssl.contains_key("SSL") && c.ssl_clients.contains_key("SSL"));
        assert!(!c.ssl_clients.contains_key("CONTROLLER"));
        // An SSL controller listener: served with the same stores and dialled by every node.
        p.insert(
            "listener.security.protocol.map".into(),
            "SSL:SSL,CONTROLLER:SSL".into(),
        );
        let c = BrokerConfig::from_properties(p).expect("valid");
        assert!(c.ssl.contains_key("CONTROLLER") && c.ssl_clients.contains_key("CONTROLLER"));
    }

    #[test]
    fn sasl_client_listeners_are_served_and_internal_ones_refused() {
        // A SASL_PLAINTEXT client listener beside the PLAINTEXT inter-broker one.
        let mut p = base();
        p.insert(
            "listeners".into(),
            "PLAINTEXT://127.0.0.1:9092,CLIENT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093".into(),
        );
        p.insert(
            "listener.security.protocol.map".into(),
            "PLAINTEXT:PLAINTEXT,CLIENT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT".into(),
        );
        // Kafka's default mechanism is GSSAPI: without sasl.enabled.mechanisms the start is refused.
        let err = BrokerConfig::from_properties(p.clone())
            .unwrap_err()
            .to_string();
        assert!(err.contains("sasl.enabled.mechanisms"), "{err}");
        p.insert(
            "listener.name.client.sasl.enabled.mechanisms".into(),
            "PLAIN".into(),
        );
        p.insert(
            "listener.name.client.plain.sasl.jaas.config".into(),
            "org.apache.kafka.common.security.plain.PlainLoginModule required user_a=\"b\";".into(),
        );
        let c = BrokerConfig::from_properties(p.clone()).expect("a SASL client listener");
        assert_eq!(c.sasl["CLIENT"].plain_users["a"], "b");
        assert!(c.ssl.is_empty());
    }

    #[test]
    fn sasl_on_the_controller_and_inter_broker_listeners_is_dialled_with_the_nodes_credentials() {
        const SCRAM: &str = "org.apache.kafka.common.security.scram.ScramLoginModule required \
                             username=\"admin\" password=\"admin-secret\";";
        const PLAIN: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
                             username=\"broker\" password=\"b-secret\" user_broker=\"b-secret\";";
        let mut p = base();
        p.insert(
            "listeners".into(),
            "INTERNAL://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093".into(),
        );
        p.insert(
            "listener.security.protocol.map".into(),
            "INTERNAL:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT".into(),
        );
        p.insert(
            "listener.name.controller.sasl.enabled.mechanisms".into(),
            "SCRAM-SHA-512".into(),
        );
        p.insert(
            "listener.name.internal.sasl.enabled.mechanisms".into(),
            "PLAIN".into(),
        );
        p.insert(
            "listener.name.internal.plain.sasl.jaas.config".into(),
            PLAIN.into(),
        );
        // Kafka's default mechanism for node connections is GSSAPI: the key must be set, and is named.
        let err = BrokerConfig::from_properties(p.clone())
            .unwrap_err()
            .to_string();
        assert!(err.contains("sasl.mechanism.controller.protocol"), "{err}");
        p.insert(
            "sasl.mechanism.controller.protocol".into(),
            "SCRAM-SHA-512".into(),
        );
        // The credentials: the JAAS entry of the mechanism, named by its key.
        let err = BrokerConfig::from_properties(p.clone())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("listener.name.controller.scram-sha-512.sasl.jaas.config"),
            "{err}"
        );
        p.insert(
            "listener.name.controller.scram-sha-512.sasl.jaas.config".into(),
            "org.apache.kafka.common.security.scram.ScramLoginModule required password=\"x\";"
                .into(),
        );
        let err = BrokerConfig::from_properties(p.clone())
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing username"), "{err}");
        p.insert(
            "listener.name.controller.scram-sha-512.sasl.jaas.config".into(),
            SCRAM.into(),
        );
        let err = BrokerConfig::from_properties(p.clone())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sasl.mechanism.inter.broker.protocol"),
            "{err}"
        );
        // A mechanism the served listener does not enable could never log in.
        p.insert(
            "sasl.mechanism.inter.broker.protocol".into(),
            "SCRAM-SHA-256".into(),
        );
        let err = BrokerConfig::from_properties(p.clone())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sasl.mechanism.inter.broker.protocol") && err.contains("does not enable"),
            "{err}"
        );
        p.insert(
            "sasl.mechanism.inter.broker.protocol".into(),
            "PLAIN".into(),
        );
        let c = BrokerConfig::from_properties(p.clone()).expect("SASL between nodes");
        let controller = &c.sasl_clients["CONTROLLER"];
        assert_eq!(
            (controller.mechanism, controller.username.as_str()),
            (crate::sasl::Mechanism::ScramSha512, "admin")
        );
        let internal = &c.sasl_clients["INTERNAL"];
        assert_eq!(
            (internal.mechanism, internal.username.as_str()),
            (crate::sasl::Mechanism::Plain, "broker")
        );
        assert!(c.ssl_clients.is_empty());
        assert_eq!(
            format!("{:?}", c.connector_for("CONTROLLER").unwrap()),
            "PeerConnector(SASL_PLAINTEXT)"
        );
        // GSSAPI and OAUTHBEARER are refused, naming the key.
        for m in ["GSSAPI", "OAUTHBEARER"] {
            let mut q = p.clone();
            q.insert("sasl.mechanism.controller.protocol".into(), m.into());
            let err = BrokerConfig::from_properties(q).unwrap_err().to_string();
            assert!(
                err.contains("sasl.mechanism.controller.protocol") && err.contains(m),
                "{err}"
            );
        }
        // SASL_SSL: the TLS client settings too.
        p.insert(
            "listener.security.protocol.map".into(),
            "INTERNAL:SASL_PLAINTEXT,CONTROLLER:SASL_SSL".into(),
        );
        let err = BrokerConfig::from_properties(p.clone())
            .unwrap_err()
            .to_string();
        assert!(err.contains("ssl."), "{err}");
    }

    #[test]
    fn listener_needs_protocol() {
        let mut p = base();
        p.insert(
            "listeners".into(),
            "FOO://127.0.0.1:1,CONTROLLER://127.0.0.1:2".into(),
        );
        assert!(BrokerConfig::from_properties(p).is_err());
    }
}
