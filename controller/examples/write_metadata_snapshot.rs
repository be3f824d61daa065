//! Writes a Kafka-format metadata snapshot of a small sample image into a directory, so
//! `tests/tools/run.sh` can check that Apache Kafka's tools read Kraftwerk's snapshot files.
//!
//!     cargo run -p kraftwerk-controller --example write_metadata_snapshot -- <dir>
//!
//! Prints the path of the file written.

use std::path::PathBuf;
use std::process::ExitCode;

use kraftwerk_controller::records::{
    BrokerRecord, ConfigRecord, ConfigResource, Endpoint, MetadataRecord, PartitionRecord,
    SecurityProtocol, DIRECTORY_MIGRATING,
};
use kraftwerk_controller::snapshot_file::{write_snapshot, SnapshotId};
use kraftwerk_controller::MetadataImage;
use uuid::Uuid;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: write_metadata_snapshot <dir>");
        return ExitCode::from(2);
    };
    let topic_id = Uuid::from_u128(0x5eed);
    let records = vec![
        MetadataRecord::FeatureLevel {
            name: "metadata.version".into(),
            level: 21,
        },
        MetadataRecord::RegisterBroker(BrokerRecord {
            broker_id: 1,
            incarnation_id: Uuid::from_u128(0x1),
            broker_epoch: 1,
            listeners: vec![Endpoint {
                name: "PLAINTEXT".into(),
                host: "localhost".into(),
                port: 9092,
                security_protocol: SecurityProtocol::Plaintext,
            }],
            fenced: false,
            ..BrokerRecord::default()
        }),
        MetadataRecord::Topic {
            name: "snapshot-topic".into(),
            id: topic_id,
        },
        MetadataRecord::Partition(PartitionRecord {
            topic_id,
            partition: 0,
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            directories: vec![DIRECTORY_MIGRATING],
            ..PartitionRecord::default()
        }),
        MetadataRecord::Config(ConfigRecord {
            resource: ConfigResource::topic("snapshot-topic"),
            name: "retention.ms".into(),
            value: Some("3600000".into()),
        }),
    ];
    let image = MetadataImage::empty("snapshot-cluster").apply(0, &records);
    let id = SnapshotId {
        end_offset: image.next_offset(),
        epoch: 1,
    };
    match write_snapshot(&dir, id, 0, &image.to_records()) {
        Ok(path) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
