//! kraftwerk-broker: listeners, request handlers and the hosted partitions. The protocol crate turns bytes
//! into typed requests, the storage crate holds the logs, the controller crate owns cluster metadata; this
//! crate is the async shell that connects them (see ARCHITECTURE.md).

pub mod auth;
pub mod broker_configs;
pub mod config;
pub mod config_keys;
pub mod context;
pub mod dir_lock;
pub mod fetch_session;
pub mod format_scram;
pub mod group;
pub mod group_service;
pub mod handlers;
pub mod image_ext;
pub mod log_levels;
pub mod meta_properties;
pub mod network;
pub mod producer_ids;
pub mod quorum;
pub mod replica;
pub mod sasl;
pub mod server;
pub mod tls;
