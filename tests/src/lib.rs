//! Test harness for Kraftwerk integration tests: it runs the real `kraftwerk` binary on free loopback ports
//! in a temporary directory, so the tests in `tests/tests/` exercise exactly what a user would run.
//!
//! The harness talks to the broker only over the Kafka wire protocol (see [`wire`]); readiness is "the port
//! accepts and a Metadata request succeeds", never a log line, so log wording can change freely. The one
//! exception is [`cluster`]: a controller-only node serves no Kafka API, so the cluster harness reads its
//! `kraftwerk started` and `controller role changed` lines (see [`cluster::ROLE_LINE`]).

pub mod apache_kafka;
pub mod binary;
pub mod broker;
pub mod cluster;
pub mod conformance;
pub mod error;
pub mod nemesis;
pub mod netns;
pub mod observed;
pub mod pki;
pub mod ports;
pub mod properties;
pub mod security;
pub mod security_admin;
pub mod verify;
pub mod wire;

pub use broker::{Broker, BrokerBuilder};
pub use cluster::{Cluster, ClusterBuilder, ClusterNode, Role};
pub use error::HarnessError;
