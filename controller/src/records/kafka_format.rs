//! Apache Kafka's byte format for metadata records and the raft control records, written from
//! Kafka's JSON schemas (`metadata/src/main/resources/common/metadata/*.json` and
//! `clients/src/main/resources/common/message/{LeaderChangeMessage,SnapshotHeaderRecord,
//! SnapshotFooterRecord,VotersRecord,KRaftVersionRecord}.json`). Pure functions over bytes, no I/O.
//!
//! A serialized metadata record is what Kafka's `MetadataRecordSerde` writes as a record value:
//! unsigned varints frame version (1), record type (the schema's `apiKey`) and record version,
//! then the message body. Every record used here is flexible from version 0, so strings and
//! arrays are compact (length + 1, 0 for null) and every message and struct ends with a
//! tagged-field section.
//!
//! Versions written: the highest each schema defines (Kafka 4.4), except where a lower one is
//! the only lossless choice: RegisterBrokerRecord is written at version 3 unless it carries
//! cordoned log directories (version 4, which tools before Kafka 4.4 cannot read), and a
//! PartitionRecord without replica directories at version 0 (version 1+ requires them). Every
//! version a schema defines is decoded; unknown tagged fields are skipped.

use crate::acl::{AclBinding, AclOperation, AclPermission, PatternType, ResourceType};

use super::wire::{tagged, DecodeError, EncodeError, Reader, Writer};
use super::{
    BrokerFeature, BrokerRecord, ConfigRecord, ConfigResource, ConfigResourceType, Endpoint,
    MetadataRecord, PartitionChangeRecord, PartitionRecord, ScramCredentialRecord, ScramMechanism,
    SecurityProtocol,
};

/// `MetadataRecordSerde`'s frame version.
pub const FRAME_VERSION: u32 = 1;

/// Metadata record types (the schemas' `apiKey`s) this codec handles.
pub mod record_type {
    /// RegisterBrokerRecord
    pub const REGISTER_BROKER: u32 = 0;
    /// UnregisterBrokerRecord
    pub const UNREGISTER_BROKER: u32 = 1;
    /// TopicRecord
    pub const TOPIC: u32 = 2;
    /// PartitionRecord
    pub const PARTITION: u32 = 3;
    /// ConfigRecord
    pub const CONFIG: u32 = 4;
    /// PartitionChangeRecord
    pub const PARTITION_CHANGE: u32 = 5;
    /// FenceBrokerRecord
    pub const FENCE_BROKER: u32 = 7;
    /// UnfenceBrokerRecord
    pub const UNFENCE_BROKER: u32 = 8;
    /// RemoveTopicRecord
    pub const REMOVE_TOPIC: u32 = 9;
    /// FeatureLevelRecord
    pub const FEATURE_LEVEL: u32 = 12;
    /// ProducerIdsRecord
    pub const PRODUCER_IDS: u32 = 15;
    /// AccessControlEntryRecord
    pub const ACCESS_CONTROL_ENTRY: u32 = 18;
    /// RemoveAccessControlEntryRecord
    pub const REMOVE_ACCESS_CONTROL_ENTRY: u32 = 19;
    /// UserScramCredentialRecord
    pub const USER_SCRAM_CREDENTIAL: u32 = 11;
    /// RemoveUserScramCredentialRecord
    pub const REMOVE_USER_SCRAM_CREDENTIAL: u32 = 22;
}

/// Kafka's record type (api key) of a record.
pub fn record_type_of(record: &MetadataRecord) -> u32 {
    use record_type::*;
    match record {
        MetadataRecord::RegisterBroker(_) => REGISTER_BROKER,
        MetadataRecord::UnregisterBroker { .. } => UNREGISTER_BROKER,
        MetadataRecord::Topic { .. } => TOPIC,
        MetadataRecord::Partition(_) => PARTITION,
        MetadataRecord::Config(_) => CONFIG,
        MetadataRecord::PartitionChange(_) => PARTITION_CHANGE,
        MetadataRecord::FenceBroker { .. } => FENCE_BROKER,
        MetadataRecord::UnfenceBroker { .. } => UNFENCE_BROKER,
        MetadataRecord::RemoveTopic { .. } => REMOVE_TOPIC,
        MetadataRecord::FeatureLevel { .. } => FEATURE_LEVEL,
        MetadataRecord::ProducerIds { .. } => PRODUCER_IDS,
        MetadataRecord::AccessControlEntry { .. } => ACCESS_CONTROL_ENTRY,
        MetadataRecord::RemoveAccessControlEntry { .. } => REMOVE_ACCESS_CONTROL_ENTRY,
        MetadataRecord::UserScramCredential(_) => USER_SCRAM_CREDENTIAL,
        MetadataRecord::RemoveUserScramCredential { .. } => REMOVE_USER_SCRAM_CREDENTIAL,
    }
}

/// The version [`encode_record`] writes for this record.
pub fn version_for(record: &MetadataRecord) -> u32 {
    match record {
        MetadataRecord::RegisterBroker(r) if r.cordoned_log_dirs.is_some() => 4,
        MetadataRecord::RegisterBroker(_) => 3,
        MetadataRecord::Partition(p)
            if p.directories.is_empty()
                && p.eligible_leader_replicas.is_none()
                && p.last_known_elr.is_none() =>
        {
            0
        }
        MetadataRecord::Partition(_) | MetadataRecord::PartitionChange(_) => 2,
        _ => 0,
    }
}

/// Serializes one metadata record as Kafka's `MetadataRecordSerde` does.
pub fn encode_record(record: &MetadataRecord) -> Result<Vec<u8>, EncodeError> {
    let version = version_for(record);
    let mut w = Writer::new();
    w.uvarint(FRAME_VERSION);
    w.uvarint(record_type_of(record));
    w.uvarint(version);
    match record {
        MetadataRecord::RegisterBroker(r) => write_register_broker(&mut w, r, version)?,
        MetadataRecord::UnregisterBroker {
            broker_id,
            broker_epoch,
        } => {
            w.i32(*broker_id);
            w.i64(*broker_epoch);
            w.tagged_fields(&[])?;
        }
        MetadataRecord::Topic { name, id } => {
            w.string(name, "TopicRecord.Name")?;
            w.uuid(id);
            w.tagged_fields(&[])?;
        }
        MetadataRecord::Partition(p) => write_partition(&mut w, p, version)?,
        MetadataRecord::Config(c) => {
            w.i8(c.resource.resource_type.id());
            w.string(&c.resource.name, "ConfigRecord.ResourceName")?;
            w.string(&c.name, "ConfigRecord.Name")?;
            w.nullable_string(c.value.as_deref(), "ConfigRecord.Value")?;
            w.tagged_fields(&[])?;
        }
        MetadataRecord::PartitionChange(c) => write_partition_change(&mut w, c)?,
        MetadataRecord::FenceBroker { broker_id, epoch }
        | MetadataRecord::UnfenceBroker { broker_id, epoch } => {
            w.i32(*broker_id);
            w.i64(*epoch);
            w.tagged_fields(&[])?;
        }
        MetadataRecord::RemoveTopic { id } => {
            w.uuid(id);
            w.tagged_fields(&[])?;
        }
        MetadataRecord::FeatureLevel { name, level } => {
            w.string(name, "FeatureLevelRecord.Name")?;
            w.i16(*level);
            w.tagged_fields(&[])?;
        }
        MetadataRecord::ProducerIds {
            broker_id,
            broker_epoch,
            next_producer_id,
        } => {
            w.i32(*broker_id);
            w.i64(*broker_epoch);
            w.i64(*next_producer_id);
            w.tagged_fields(&[])?;
        }
        MetadataRecord::AccessControlEntry { id, acl } => {
            w.uuid(id);
            w.i8(acl.resource_type.code());
            w.string(&acl.resource_name, "AccessControlEntryRecord.ResourceName")?;
            w.i8(acl.pattern_type.code());
            w.string(&acl.principal, "AccessControlEntryRecord.Principal")?;
            w.string(&acl.host, "AccessControlEntryRecord.Host")?;
            w.i8(acl.operation.code());
            w.i8(acl.permission.code());
            w.tagged_fields(&[])?;
        }
        MetadataRecord::RemoveAccessControlEntry { id } => {
            w.uuid(id);
            w.tagged_fields(&[])?;
        }
        MetadataRecord::UserScramCredential(c) => {
            w.string(&c.name, "UserScramCredentialRecord.Name")?;
            w.i8(c.mechanism.id());
            w.compact_bytes(&c.salt, "UserScramCredentialRecord.Salt")?;
            w.compact_bytes(&c.stored_key, "UserScramCredentialRecord.StoredKey")?;
            w.compact_bytes(&c.server_key, "UserScramCredentialRecord.ServerKey")?;
            w.i32(c.iterations);
            w.tagged_fields(&[])?;
        }
        MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
            w.string(name, "RemoveUserScramCredentialRecord.Name")?;
            w.i8(mechanism.id());
            w.tagged_fields(&[])?;
        }
    }
    Ok(w.into_bytes())
}

fn write_register_broker(
    w: &mut Writer,
    r: &BrokerRecord,
    version: u32,
) -> Result<(), EncodeError> {
    w.i32(r.broker_id);
    if version >= 2 {
        w.bool(r.is_migrating_zk_broker);
    }
    w.uuid(&r.incarnation_id);
    w.i64(r.broker_epoch);
    w.array_of(&r.listeners, "RegisterBrokerRecord.EndPoints", |w, e| {
        w.string(&e.name, "BrokerEndpoint.Name")?;
        w.string(&e.host, "BrokerEndpoint.Host")?;
        w.u16(e.port);
        w.i16(e.security_protocol.id());
        w.tagged_fields(&[])
    })?;
    w.array_of(&r.features, "RegisterBrokerRecord.Features", |w, f| {
        w.string(&f.name, "BrokerFeature.Name")?;
        w.i16(f.min_supported_version);
        w.i16(f.max_supported_version);
        w.tagged_fields(&[])
    })?;
    w.nullable_string(r.rack.as_deref(), "RegisterBrokerRecord.Rack")?;
    w.bool(r.fenced);
    if version >= 1 {
        w.bool(r.in_controlled_shutdown);
    }
    let mut tags = Vec::new();
    if version >= 3 && !r.log_dirs.is_empty() {
        tags.push(tagged(0, |w| w.uuids(&r.log_dirs, "LogDirs"))?);
    }
    if version >= 4 {
        if let Some(dirs) = &r.cordoned_log_dirs {
            tags.push(tagged(1, |w| w.uuids(dirs, "CordonedLogDirs"))?);
        }
    }
    w.tagged_fields(&tags)
}

fn write_partition(w: &mut Writer, p: &PartitionRecord, version: u32) -> Result<(), EncodeError> {
    w.i32(p.partition);
    w.uuid(&p.topic_id);
    w.i32s(&p.replicas, "PartitionRecord.Replicas")?;
    w.i32s(&p.isr, "PartitionRecord.Isr")?;
    w.i32s(&p.removing_replicas, "PartitionRecord.RemovingReplicas")?;
    w.i32s(&p.adding_replicas, "PartitionRecord.AddingReplicas")?;
    w.i32(p.leader);
    w.i32(p.leader_epoch);
    w.i32(p.partition_epoch);
    if version >= 1 {
        w.uuids(&p.directories, "PartitionRecord.Directories")?;
    }
    let mut tags = Vec::new();
    if p.leader_recovery_state != 0 {
        tags.push(tagged(0, |w| {
            w.i8(p.leader_recovery_state);
            Ok(())
        })?);
    }
    if version >= 2 {
        if let Some(elr) = &p.eligible_leader_replicas {
            tags.push(tagged(1, |w| w.i32s(elr, "EligibleLeaderReplicas"))?);
        }
        if let Some(lke) = &p.last_known_elr {
            tags.push(tagged(2, |w| w.i32s(lke, "LastKnownElr"))?);
        }
    }
    w.tagged_fields(&tags)
}

/// PartitionChangeRecord's "leader unchanged" (-2) and "recovery state unchanged" (-1).
const LEADER_UNCHANGED: i32 = -2;
const RECOVERY_STATE_UNCHANGED: i8 = -1;

fn write_partition_change(w: &mut Writer, c: &PartitionChangeRecord) -> Result<(), EncodeError> {
    w.i32(c.partition);
    w.uuid(&c.topic_id);
    let mut tags = Vec::new();
    let ints = |tag: u32, v: &Option<Vec<i32>>, what: &'static str| match v {
        Some(v) => tagged(tag, |w| w.i32s(v, what)).map(Some),
        None => Ok(None),
    };
    tags.extend(ints(0, &c.isr, "Isr")?);
    if let Some(leader) = c.leader {
        if leader == LEADER_UNCHANGED {
            return Err(EncodeError::Reserved {
                field: "PartitionChangeRecord.Leader",
                value: leader.into(),
                why: "-2 means the leader did not change",
            });
        }
        tags.push(tagged(1, |w| {
            w.i32(leader);
            Ok(())
        })?);
    }
    tags.extend(ints(2, &c.replicas, "Replicas")?);
    tags.extend(ints(3, &c.removing_replicas, "RemovingReplicas")?);
    tags.extend(ints(4, &c.adding_replicas, "AddingReplicas")?);
    if let Some(state) = c.leader_recovery_state {
        if state == RECOVERY_STATE_UNCHANGED {
            return Err(EncodeError::Reserved {
                field: "PartitionChangeRecord.LeaderRecoveryState",
                value: state.into(),
                why: "-1 means the recovery state did not change",
            });
        }
        tags.push(tagged(5, |w| {
            w.i8(state);
            Ok(())
        })?);
    }
    tags.extend(ints(
        6,
        &c.eligible_leader_replicas,
        "EligibleLeaderReplicas",
    )?);
    tags.extend(ints(7, &c.last_known_elr, "LastKnownElr")?);
    if let Some(dirs) = &c.directories {
        tags.push(tagged(8, |w| w.uuids(dirs, "Directories"))?);
    }
    w.tagged_fields(&tags)
}

/// Decodes one record serialized by Kafka's `MetadataRecordSerde` (or [`encode_record`]).
/// Never panics and never allocates more than the input could hold.
pub fn decode_record(bytes: &[u8]) -> Result<MetadataRecord, DecodeError> {
    use record_type::*;
    let mut r = Reader::new(bytes);
    let frame = r.uvarint("frame version")?;
    if frame != FRAME_VERSION {
        return Err(DecodeError::FrameVersion(frame));
    }
    let kind = r.uvarint("record type")?;
    let version = r.uvarint("record version")?;
    let check = |name: &'static str, max: u32| {
        if version > max {
            Err(DecodeError::UnsupportedVersion {
                record: name,
                version,
            })
        } else {
            Ok(())
        }
    };
    let record = match kind {
        REGISTER_BROKER => {
            check("RegisterBrokerRecord", 4)?;
            MetadataRecord::RegisterBroker(read_register_broker(&mut r, version)?)
        }
        UNREGISTER_BROKER => {
            check("UnregisterBrokerRecord", 0)?;
            let broker_id = r.i32("UnregisterBrokerRecord.BrokerId")?;
            let broker_epoch = r.i64("UnregisterBrokerRecord.BrokerEpoch")?;
            r.tagged_fields(|_, _| Ok(false))?;
            MetadataRecord::UnregisterBroker {
                broker_id,
                broker_epoch,
            }
        }
        TOPIC => {
            check("TopicRecord", 0)?;
            let name = r.string("TopicRecord.Name")?;
            let id = r.uuid("TopicRecord.TopicId")?;
            r.tagged_fields(|_, _| Ok(false))?;
            MetadataRecord::Topic { name, id }
        }
        PARTITION => {
            check("PartitionRecord", 2)?;
            MetadataRecord::Partition(read_partition(&mut r, version)?)
        }
        CONFIG => {
            check("ConfigRecord", 0)?;
            let type_id = r.i8("ConfigRecord.ResourceType")?;
            let resource_type =
                ConfigResourceType::from_id(type_id).ok_or(DecodeError::Invalid {
                    field: "ConfigRecord.ResourceType",
                    value: type_id.into(),
                })?;
            let resource_name = r.string("ConfigRecord.ResourceName")?;
            let name = r.string("ConfigRecord.Name")?;
            let value = r.nullable_string("ConfigRecord.Value")?;
            r.tagged_fields(|_, _| Ok(false))?;
            MetadataRecord::Config(ConfigRecord {
                resource: ConfigResource {
                    resource_type,
                    name: resource_name,
                },
                name,
                value,
            })
        }
        PARTITION_CHANGE => {
            check("PartitionChangeRecord", 2)?;
            MetadataRecord::PartitionChange(read_partition_change(&mut r, version)?)
        }
        FENCE_BROKER | UNFENCE_BROKER => {
            let fence = kind == FENCE_BROKER;
            check(
                if fence {
                    "FenceBrokerRecord"
                } else {
                    "UnfenceBrokerRecord"
                },
                0,
            )?;
            let broker_id = r.i32("Id")?;
            let epoch = r.i64("Epoch")?;
            r.tagged_fields(|_, _| Ok(false))?;
            if fence {
                MetadataRecord::FenceBroker { broker_id, epoch }
            } else {
                MetadataRecord::UnfenceBroker { broker_id, epoch }
            }
        }
        REMOVE_TOPIC => {
            check("RemoveTopicRecord", 0)?;
            let id = r.uuid("RemoveTopicRecord.TopicId")?;
            r.tagged_fields(|_, _| Ok(false))?;
            MetadataRecord::RemoveTopic { id }
        }
        FEATURE_LEVEL => {
            check("FeatureLevelRecord", 0)?;
            let name = r.string("FeatureLevelRecord.Name")?;
            let level = r.i16("FeatureLevelRecord.FeatureLevel")?;
            r.tagged_fields(|_, _| Ok(false))?;
            MetadataRecord::FeatureLevel { name, level }
        }
        PRODUCER_IDS => {
            check("ProducerIdsRecord", 0)?;
            let broker_id = r.i32("ProducerIdsRecord.BrokerId")?;
            let broker_epoch = r.i64("ProducerIdsRecord.BrokerEpoch")?;
            let next_producer_id = r.i64("ProducerIdsRecord.NextProducerId")?;
            r.tagged_fields(|_, _| Ok(false))?;
            MetadataRecord::ProducerIds {
                broker_id,
                broker_epoch,
                next_producer_id,
            }
        }
        ACCESS_CONTROL_ENTRY => {
            check("AccessControlEntryRecord", 0)?;
            let id = r.uuid("AccessControlEntryRecord.Id")?;
            let resource_type =
                ResourceType::from_code(r.i8("AccessControlEntryRecord.ResourceType")?);
            let resource_name = r.string("AccessControlEntryRecord.ResourceName")?;
            let pattern_type =
                PatternType::from_code(r.i8("AccessControlEntryRecord.PatternType")?);
            let principal = r.string("AccessControlEntryRecord.Principal")?;
            let host = r.string("AccessControlEntryRecord.Host")?;
            let operation = AclOperation::from_code(r.i8("AccessControlEntryRecord.Operation")?);
            let permission =
                AclPermission::from_code(r.i8("AccessControlEntryRecord.PermissionType")?);
            r.tagged_fields(|_, _| Ok(false))?;
            MetadataRecord::AccessControlEntry {
                id,
                acl: AclBinding {
                    resource_type,
                    resource_name,
                    pattern_type,
                    principal,
                    host,
                    operation,
                    permission,
                },
            }
        }
        REMOVE_ACCESS_CONTROL_ENTRY => {
            check("RemoveAccessControlEntryRecord", 0)?;
            let id = r.uuid("RemoveAccessControlEntryRecord.Id")?;
            r.tagged_fields(|_, _| Ok(false))?;
            MetadataRecord::RemoveAccessControlEntry { id }
        }
        USER_SCRAM_CREDENTIAL => {
            check("UserScramCredentialRecord", 0)?;
            let name = r.string("UserScramCredentialRecord.Name")?;
            let mechanism = read_scram_mechanism(&mut r, "UserScramCredentialRecord.Mechanism")?;
            let salt = r.compact_bytes("UserScramCredentialRecord.Salt")?;
            let stored_key = r.compact_bytes("UserScramCredentialRecord.StoredKey")?;
            let server_key = r.compact_bytes("UserScramCredentialRecord.ServerKey")?;
            let iterations = r.i32("UserScramCredentialRecord.Iterations")?;
            r.tagged_fields(|_, _| Ok(false))?;
            MetadataRecord::UserScramCredential(ScramCredentialRecord {
                name,
                mechanism,
                salt,
                stored_key,
                server_key,
                iterations,
            })
        }
        REMOVE_USER_SCRAM_CREDENTIAL => {
            check("RemoveUserScramCredentialRecord", 0)?;
            let name = r.string("RemoveUserScramCredentialRecord.Name")?;
            let mechanism =
                read_scram_mechanism(&mut r, "RemoveUserScramCredentialRecord.Mechanism")?;
            r.tagged_fields(|_, _| Ok(false))?;
            MetadataRecord::RemoveUserScramCredential { name, mechanism }
        }
        other => return Err(DecodeError::UnknownType(other)),
    };
    r.finish()?;
    Ok(record)
}

fn read_scram_mechanism(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<ScramMechanism, DecodeError> {
    let id = r.i8(field)?;
    ScramMechanism::from_id(id).ok_or(DecodeError::Invalid {
        field,
        value: id.into(),
    })
}

fn read_register_broker(r: &mut Reader<'_>, version: u32) -> Result<BrokerRecord, DecodeError> {
    let broker_id = r.i32("RegisterBrokerRecord.BrokerId")?;
    let is_migrating_zk_broker = if version >= 2 {
        r.bool("RegisterBrokerRecord.IsMigratingZkBroker")?
    } else {
        false
    };
    let incarnation_id = r.uuid("RegisterBrokerRecord.IncarnationId")?;
    let broker_epoch = r.i64("RegisterBrokerRecord.BrokerEpoch")?;
    // An endpoint takes at least 2 + 2 + 2 + 1 bytes: two empty strings, port, protocol, tags.
    let listeners = r.array_of("RegisterBrokerRecord.EndPoints", 7, |r| {
        let name = r.string("BrokerEndpoint.Name")?;
        let host = r.string("BrokerEndpoint.Host")?;
        let port = r.u16("BrokerEndpoint.Port")?;
        let protocol = r.i16("BrokerEndpoint.SecurityProtocol")?;
        let security_protocol =
            SecurityProtocol::from_id(protocol).ok_or(DecodeError::Invalid {
                field: "BrokerEndpoint.SecurityProtocol",
                value: protocol.into(),
            })?;
        r.tagged_fields(|_, _| Ok(false))?;
        Ok(Endpoint {
            name,
            host,
            port,
            security_protocol,
        })
    })?;
    let features = r.array_of("RegisterBrokerRecord.Features", 6, |r| {
        let name = r.string("BrokerFeature.Name")?;
        let min_supported_version = r.i16("BrokerFeature.MinSupportedVersion")?;
        let max_supported_version = r.i16("BrokerFeature.MaxSupportedVersion")?;
        r.tagged_fields(|_, _| Ok(false))?;
        Ok(BrokerFeature {
            name,
            min_supported_version,
            max_supported_version,
        })
    })?;
    let rack = r.nullable_string("RegisterBrokerRecord.Rack")?;
    let fenced = r.bool("RegisterBrokerRecord.Fenced")?;
    let in_controlled_shutdown = if version >= 1 {
        r.bool("RegisterBrokerRecord.InControlledShutdown")?
    } else {
        false
    };
    let mut log_dirs = Vec::new();
    let mut cordoned_log_dirs = None;
    r.tagged_fields(|tag, f| match tag {
        0 if version >= 3 => {
            log_dirs = f.uuids("RegisterBrokerRecord.LogDirs")?;
            Ok(true)
        }
        1 if version >= 4 => {
            cordoned_log_dirs = f.nullable_uuids("RegisterBrokerRecord.CordonedLogDirs")?;
            Ok(true)
        }
        _ => Ok(false),
    })?;
    Ok(BrokerRecord {
        broker_id,
        is_migrating_zk_broker,
        incarnation_id,
        broker_epoch,
        listeners,
        features,
        rack,
        fenced,
        in_controlled_shutdown,
        log_dirs,
        cordoned_log_dirs,
    })
}

fn read_partition(r: &mut Reader<'_>, version: u32) -> Result<PartitionRecord, DecodeError> {
    let partition = r.i32("PartitionRecord.PartitionId")?;
    let topic_id = r.uuid("PartitionRecord.TopicId")?;
    let replicas = r.i32s("PartitionRecord.Replicas")?;
    let isr = r.i32s("PartitionRecord.Isr")?;
    let removing_replicas = r.i32s("PartitionRecord.RemovingReplicas")?;
    let adding_replicas = r.i32s("PartitionRecord.AddingReplicas")?;
    let leader = r.i32("PartitionRecord.Leader")?;
    let leader_epoch = r.i32("PartitionRecord.LeaderEpoch")?;
    let partition_epoch = r.i32("PartitionRecord.PartitionEpoch")?;
    let directories = if version >= 1 {
        r.uuids("PartitionRecord.Directories")?
    } else {
        Vec::new()
    };
    let mut leader_recovery_state = 0;
    let mut eligible_leader_replicas = None;
    let mut last_known_elr = None;
    r.tagged_fields(|tag, f| match tag {
        0 => {
            leader_recovery_state = f.i8("PartitionRecord.LeaderRecoveryState")?;
            Ok(true)
        }
        1 if version >= 2 => {
            eligible_leader_replicas = f.nullable_i32s("PartitionRecord.EligibleLeaderReplicas")?;
            Ok(true)
        }
        2 if version >= 2 => {
            last_known_elr = f.nullable_i32s("PartitionRecord.LastKnownElr")?;
            Ok(true)
        }
        _ => Ok(false),
    })?;
    Ok(PartitionRecord {
        topic_id,
        partition,
        replicas,
        isr,
        removing_replicas,
        adding_replicas,
        leader,
        leader_recovery_state,
        leader_epoch,
        partition_epoch,
        directories,
        eligible_leader_replicas,
        last_known_elr,
    })
}

fn read_partition_change(
    r: &mut Reader<'_>,
    version: u32,
) -> Result<PartitionChangeRecord, DecodeError> {
    let partition = r.i32("PartitionChangeRecord.PartitionId")?;
    let topic_id = r.uuid("PartitionChangeRecord.TopicId")?;
    let mut c = PartitionChangeRecord {
        topic_id,
        partition,
        ..PartitionChangeRecord::default()
    };
    r.tagged_fields(|tag, f| {
        match tag {
            0 => c.isr = f.nullable_i32s("PartitionChangeRecord.Isr")?,
            1 => {
                let leader = f.i32("PartitionChangeRecord.Leader")?;
                c.leader = (leader != LEADER_UNCHANGED).then_some(leader);
            }
            2 => c.replicas = f.nullable_i32s("PartitionChangeRecord.Replicas")?,
            3 => c.removing_replicas = f.nullable_i32s("PartitionChangeRecord.RemovingReplicas")?,
            4 => c.adding_replicas = f.nullable_i32s("PartitionChangeRecord.AddingReplicas")?,
            5 => {
                let state = f.i8("PartitionChangeRecord.LeaderRecoveryState")?;
                c.leader_recovery_state = (state != RECOVERY_STATE_UNCHANGED).then_some(state);
            }
            6 if version >= 2 => {
                c.eligible_leader_replicas =
                    f.nullable_i32s("PartitionChangeRecord.EligibleLeaderReplicas")?;
            }
            7 if version >= 2 => {
                c.last_known_elr = f.nullable_i32s("PartitionChangeRecord.LastKnownElr")?;
            }
            8 if version >= 1 => {
                c.directories = f.nullable_uuids("PartitionChangeRecord.Directories")?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(c)
}

// --- raft control records ------------------------------------------------------------------

/// Control record types (the `type` of a control record key, Kafka's `ControlRecordType`).
pub mod control_type {
    /// LeaderChangeMessage, written by a new raft leader.
    pub const LEADER_CHANGE: i16 = 2;
    /// SnapshotHeaderRecord, first record of a snapshot.
    pub const SNAPSHOT_HEADER: i16 = 3;
    /// SnapshotFooterRecord, last record of a snapshot.
    pub const SNAPSHOT_FOOTER: i16 = 4;
    /// KRaftVersionRecord (read, never written: Kraftwerk keeps kraft.version as a FeatureLevelRecord in the
    /// metadata log, see `ops::features::KRAFT_VERSION`).
    pub const KRAFT_VERSION: i16 = 5;
    /// VotersRecord: the voter set after a membership change (KIP-853).
    pub const KRAFT_VOTERS: i16 = 6;
}

/// The key of a control record: version 0 and the control type, two int16s.
pub fn control_key(kind: i16) -> [u8; 4] {
    let [a, b] = 0i16.to_be_bytes();
    let [c, d] = kind.to_be_bytes();
    [a, b, c, d]
}

/// The control type of a control record key. Kafka reads the version and type and ignores
/// anything after them; we do too, but refuse key versions other than 0.
pub fn parse_control_key(key: &[u8]) -> Result<i16, DecodeError> {
    let mut r = Reader::new(key);
    let version = r.i16("control record key version")?;
    let kind = r.i16("control record key type")?;
    if version != 0 {
        return Err(DecodeError::ControlKey { version, kind });
    }
    Ok(kind)
}

/// Kafka's LeaderChangeMessage at version 0 (the version Kafka reads control values at).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaderChange {
    /// The message's own `Version` field (Kafka writes 0).
    pub version: i16,
    /// The new leader's node id, -1 if not known.
    pub leader_id: i32,
    /// The voters of the quorum in this epoch (node ids).
    pub voters: Vec<i32>,
    /// The voters that voted for the leader (node ids), where known.
    pub granting_voters: Vec<i32>,
}

fn write_voters(w: &mut Writer, voters: &[i32], what: &'static str) -> Result<(), EncodeError> {
    w.array_of(voters, what, |w, id| {
        w.i32(*id);
        w.tagged_fields(&[])
    })
}

fn read_voters(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<i32>, DecodeError> {
    r.array_of(what, 5, |r| {
        let id = r.i32("Voter.VoterId")?;
        r.tagged_fields(|_, _| Ok(false))?;
        Ok(id)
    })
}

/// Encodes a LeaderChangeMessage control record value.
pub fn encode_leader_change(m: &LeaderChange) -> Result<Vec<u8>, EncodeError> {
    let mut w = Writer::new();
    w.i16(m.version);
    w.i32(m.leader_id);
    write_voters(&mut w, &m.voters, "LeaderChangeMessage.Voters")?;
    write_voters(
        &mut w,
        &m.granting_voters,
        "LeaderChangeMessage.GrantingVoters",
    )?;
    w.tagged_fields(&[])?;
    Ok(w.into_bytes())
}

/// Decodes a LeaderChangeMessage control record value.
pub fn decode_leader_change(bytes: &[u8]) -> Result<LeaderChange, DecodeError> {
    let mut r = Reader::new(bytes);
    let version = r.i16("LeaderChangeMessage.Version")?;
    let leader_id = r.i32("LeaderChangeMessage.LeaderId")?;
    let voters = read_voters(&mut r, "LeaderChangeMessage.Voters")?;
    let granting_voters = read_voters(&mut r, "LeaderChangeMessage.GrantingVoters")?;
    r.tagged_fields(|_, _| Ok(false))?;
    r.finish()?;
    Ok(LeaderChange {
        version,
        leader_id,
        voters,
        granting_voters,
    })
}

/// Encodes a SnapshotHeaderRecord (version 0) control record value.
pub fn encode_snapshot_header(last_contained_log_timestamp: i64) -> Vec<u8> {
    let mut w = Writer::new();
    w.i16(0);
    w.i64(last_contained_log_timestamp);
    w.uvarint(0);
    w.into_bytes()
}

/// Decodes a SnapshotHeaderRecord value: its (version field, last contained log timestamp).
pub fn decode_snapshot_header(bytes: &[u8]) -> Result<(i16, i64), DecodeError> {
    let mut r = Reader::new(bytes);
    let version = r.i16("SnapshotHeaderRecord.Version")?;
    let timestamp = r.i64("SnapshotHeaderRecord.LastContainedLogTimestamp")?;
    r.tagged_fields(|_, _| Ok(false))?;
    r.finish()?;
    Ok((version, timestamp))
}

/// Encodes a SnapshotFooterRecord (version 0) control record value.
pub fn encode_snapshot_footer() -> Vec<u8> {
    let mut w = Writer::new();
    w.i16(0);
    w.uvarint(0);
    w.into_bytes()
}

/// Decodes a SnapshotFooterRecord value: its version field.
pub fn decode_snapshot_footer(bytes: &[u8]) -> Result<i16, DecodeError> {
    let mut r = Reader::new(bytes);
    let version = r.i16("SnapshotFooterRecord.Version")?;
    r.tagged_fields(|_, _| Ok(false))?;
    r.finish()?;
    Ok(version)
}

/// One listener of a voter in a VotersRecord (`Endpoint`: name, host, port).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VoterEndpoint {
    /// The listener name (e.g. `CONTROLLER`).
    pub name: String,
    /// Host the listener is reachable on.
    pub host: String,
    /// Its port.
    pub port: u16,
}

/// One voter of a VotersRecord.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VoterEntry {
    /// `VoterId`.
    pub id: i32,
    /// `VoterDirectoryId`: the voter's metadata log directory id (zero when unknown, as for a
    /// voter from a static `controller.quorum.voters`).
    pub directory_id: uuid::Uuid,
    /// `Endpoints`: the voter's controller listeners.
    pub endpoints: Vec<VoterEndpoint>,
    /// `KRaftVersionFeature`: the (min, max) kraft.version the voter supports.
    pub kraft_version: (i16, i16),
}

/// Kafka's VotersRecord (control type 6) at version 0, plus the tagged fields Kafka's own schema
/// does not define, kept raw so a caller can carry its own data in them (Kafka's reader skips
/// unknown tags).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VotersRecord {
    /// The message's own `Version` field (0).
    pub version: i16,
    /// The voters.
    pub voters: Vec<VoterEntry>,
    /// Extra top-level tagged fields, `(tag, bytes)` in ascending tag order.
    pub extra_tags: Vec<(u32, Vec<u8>)>,
}

/// Writes the `Voters` array of a VotersRecord (also used for Kraftwerk's own learner list).
pub fn write_voter_entries(
    w: &mut Writer,
    voters: &[VoterEntry],
    what: &'static str,
) -> Result<(), EncodeError> {
    w.array_of(voters, what, |w, v| {
        w.i32(v.id);
        w.uuid(&v.directory_id);
        w.array_of(&v.endpoints, "Voter.Endpoints", |w, e| {
            w.string(&e.name, "Endpoint.Name")?;
            w.string(&e.host, "Endpoint.Host")?;
            w.u16(e.port);
            w.tagged_fields(&[])
        })?;
        w.i16(v.kraft_version.0);
        w.i16(v.kraft_version.1);
        // KRaftVersionFeature's own tagged fields, then the voter's.
        w.tagged_fields(&[])?;
        w.tagged_fields(&[])
    })
}

/// Reads a `Voters` array as [`write_voter_entries`] writes it.
pub fn read_voter_entries(
    r: &mut Reader<'_>,
    what: &'static str,
) -> Result<Vec<VoterEntry>, DecodeError> {
    // id 4, directory id 16, endpoints 1, feature 4 + 1, tags 1.
    r.array_of(what, 27, |r| {
        let id = r.i32("Voter.VoterId")?;
        let directory_id = r.uuid("Voter.VoterDirectoryId")?;
        // name 1, host 1, port 2, tags 1.
        let endpoints = r.array_of("Voter.Endpoints", 5, |r| {
            let name = r.string("Endpoint.Name")?;
            let host = r.string("Endpoint.Host")?;
            let port = r.u16("Endpoint.Port")?;
            r.tagged_fields(|_, _| Ok(false))?;
            Ok(VoterEndpoint { name, host, port })
        })?;
        let min = r.i16("KRaftVersionFeature.MinSupportedVersion")?;
        let max = r.i16("KRaftVersionFeature.MaxSupportedVersion")?;
        r.tagged_fields(|_, _| Ok(false))?;
        r.tagged_fields(|_, _| Ok(false))?;
        Ok(VoterEntry {
            id,
            directory_id,
            endpoints,
            kraft_version: (min, max),
        })
    })
}

/// Encodes a VotersRecord control record value.
pub fn encode_voters(m: &VotersRecord) -> Result<Vec<u8>, EncodeError> {
    let mut w = Writer::new();
    w.i16(m.version);
    write_voter_entries(&mut w, &m.voters, "VotersRecord.Voters")?;
    w.tagged_fields(&m.extra_tags)?;
    Ok(w.into_bytes())
}

/// Decodes a VotersRecord control record value; unknown top-level tagged fields are kept in
/// `extra_tags`.
pub fn decode_voters(bytes: &[u8]) -> Result<VotersRecord, DecodeError> {
    let mut r = Reader::new(bytes);
    let version = r.i16("VotersRecord.Version")?;
    let voters = read_voter_entries(&mut r, "VotersRecord.Voters")?;
    let mut extra_tags = Vec::new();
    r.tagged_fields(|tag, field| {
        let rest = field.remaining();
        extra_tags.push((tag, field.take(rest, "VotersRecord tagged field")?.to_vec()));
        Ok(true)
    })?;
    r.finish()?;
    Ok(VotersRecord {
        version,
        voters,
        extra_tags,
    })
}

/// Encodes a KRaftVersionRecord control record value (version field 0).
pub fn encode_kraft_version(kraft_version: i16) -> Vec<u8> {
    let mut w = Writer::new();
    w.i16(0);
    w.i16(kraft_version);
    w.uvarint(0);
    w.into_bytes()
}

/// Decodes a KRaftVersionRecord value: its kraft.version.
pub fn decode_kraft_version(bytes: &[u8]) -> Result<i16, DecodeError> {
    let mut r = Reader::new(bytes);
    r.i16("KRaftVersionRecord.Version")?;
    let level = r.i16("KRaftVersionRecord.KRaftVersion")?;
    r.tagged_fields(|_, _| Ok(false))?;
    r.finish()?;
    Ok(level)
}
