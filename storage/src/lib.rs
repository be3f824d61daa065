//! kraftwerk-storage: Kafka-compatible partition logs on local disk.
//!
//! Each partition is a directory of segments (`.log` + sparse `.index` + `.timeindex`), written
//! through a synchronous std::fs API. The broker calls it from tokio tasks, so every call is
//! kept short; nothing here is async and nothing here does networking.

pub mod batch;
