//! The node-to-node side of a Kraftwerk process: the controller listener, raft messages between voters,
//! broker registration and heartbeats, writes forwarded to the active controller, and brokers following the
//! metadata log.
//!
//! - [`peer_transport`]: raft messages to the other voters (one connection per peer).
//! - [`controller_service`]: the controller listener (raft in, broker requests in, Kafka clients refused).
//! - [`controller_scram`]: the SCRAM credentials of a SASL controller listener (bootstrap, then the image).
//! - [`controller_client`]: a broker's calls to the active controller.
//! - [`cluster`]: [`cluster::ClusterHandle`], the metadata and controller every request handler uses.
//! - [`lifecycle`]: register, heartbeat, controlled shutdown.
//! - [`follower_task`]: a broker-only node's metadata image, fetched from the controllers.

pub mod channel;
pub mod cluster;
pub mod controller_client;
pub mod controller_scram;
pub mod controller_service;
pub mod follower_task;
pub mod lifecycle;
pub mod peer_transport;
pub mod voter_apis;
