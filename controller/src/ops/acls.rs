//! CreateAcls and DeleteAcls, after Kafka's `AclControlManager`: a valid binding that already
//! exists succeeds without a record; every new one gets a fresh id and an
//! AccessControlEntryRecord; a delete filter removes every binding it matches
//! (RemoveAccessControlEntryRecord, once per binding even when several filters match it).

use std::collections::{BTreeSet, HashSet};

use uuid::Uuid;

use super::{OpContext, OpOutput, MAX_RECORDS_PER_USER_OP};
use crate::acl::{AclBinding, AclFilter};
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// Creates the bindings; one result per binding, in order.
pub(crate) fn create_acls(
    image: &MetadataImage,
    ctx: &mut OpContext,
    acls: &[AclBinding],
) -> OpOutput<Vec<Result<(), ControllerError>>> {
    let mut existing: HashSet<&AclBinding> = image.acls().values().collect();
    let mut records = Vec::new();
    let mut response = Vec::with_capacity(acls.len());
    for acl in acls {
        if let Err(e) = acl.validate() {
            response.push(Err(ControllerError::InvalidRequest(e.0)));
            continue;
        }
        if existing.insert(acl) {
            if records.len() >= MAX_RECORDS_PER_USER_OP {
                response.push(Err(ControllerError::InvalidRequest(format!(
                    "Cannot create more than {MAX_RECORDS_PER_USER_OP} acls in a single request."
                ))));
                continue;
            }
            let id = fresh_id(image, &records, ctx);
            records.push(MetadataRecord::AccessControlEntry {
                id,
                acl: acl.clone(),
            });
        }
        response.push(Ok(()));
    }
    OpOutput { records, response }
}

/// An id no ACL has (Kafka draws random ids until one is free).
fn fresh_id(image: &MetadataImage, pending: &[MetadataRecord], ctx: &mut OpContext) -> Uuid {
    loop {
        let id = (ctx.new_acl_id)();
        let taken = image.acls().contains_key(&id)
            || pending.iter().any(
                |r| matches!(r, MetadataRecord::AccessControlEntry { id: other, .. } if *other == id),
            );
        if !taken && !id.is_nil() {
            return id;
        }
    }
}

/// Deletes what each filter matches; one result per filter, in order, listing the bindings it
/// removed. All the removals are written together (Kafka's `atomicOf`).
pub(crate) fn delete_acls(
    image: &MetadataImage,
    filters: &[AclFilter],
) -> OpOutput<Vec<Result<Vec<AclBinding>, ControllerError>>> {
    let mut removed: BTreeSet<Uuid> = BTreeSet::new();
    let mut response = Vec::with_capacity(filters.len());
    for filter in filters {
        if let Err(e) = filter.validate() {
            response.push(Err(ControllerError::InvalidRequest(e.0)));
            continue;
        }
        let matched: Vec<(Uuid, &AclBinding)> = image
            .acls()
            .iter()
            .filter(|(_, acl)| filter.matches(acl))
            .map(|(id, acl)| (*id, acl))
            .collect();
        let new = matched
            .iter()
            .filter(|(id, _)| !removed.contains(id))
            .count();
        if removed.len() + new > MAX_RECORDS_PER_USER_OP {
            response.push(Err(ControllerError::InvalidRequest(format!(
                "Cannot remove more than {MAX_RECORDS_PER_USER_OP} acls in a single delete operation."
            ))));
            continue;
        }
        removed.extend(matched.iter().map(|(id, _)| *id));
        response.push(Ok(matched.into_iter().map(|(_, a)| a.clone()).collect()));
    }
    let records = removed
        .into_iter()
        .map(|id| MetadataRecord::RemoveAccessControlEntry { id })
        .collect();
    OpOutput { records, response }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{AclOperation, AclPermission, PatternType, ResourceType};
    use crate::ops::test_support::{commit, ctx, image_with_brokers};

    fn acl(name: &str, pt: PatternType, principal: &str, perm: AclPermission) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: pt,
            principal: principal.into(),
            host: "*".into(),
            operation: AclOperation::Write,
            permission: perm,
        }
    }

    fn codes<T>(results: &[Result<T, ControllerError>]) -> Vec<i16> {
        results
            .iter()
            .map(|r| r.as_ref().map_or_else(|e| e.error_code(), |_| 0))
            .collect()
    }

    #[test]
    fn create_validates_dedupes_and_assigns_ids() {
        let image = image_with_brokers(&[1]);
        let mut ctx = ctx();
        let a = acl("a-", PatternType::Prefixed, "User:a", AclPermission::Allow);
        let bad = acl("t", PatternType::Match, "User:a", AclPermission::Allow);
        let no_colon = acl("t", PatternType::Literal, "alice", AclPermission::Allow);
        let out = create_acls(&image, &mut ctx, &[a.clone(), bad, a.clone(), no_colon]);
        assert_eq!(codes(&out.response), vec![0, 42, 0, 42]);
        assert_eq!(
            out.records,
            vec![MetadataRecord::AccessControlEntry {
                id: Uuid::from_u128(1000),
                acl: a.clone()
            }]
        );
        let image = commit(&image, &out.records);
        assert_eq!(image.acls().len(), 1);
        // Creating an existing binding again succeeds and writes nothing.
        let again = create_acls(&image, &mut ctx, std::slice::from_ref(&a));
        assert_eq!(codes(&again.response), vec![0]);
        assert!(again.records.is_empty());
    }

    #[test]
    fn cluster_acls_must_name_kafka_cluster() {
        let image = image_with_brokers(&[1]);
        let mut cluster = acl(
            "other",
            PatternType::Literal,
            "User:a",
            AclPermission::Allow,
        );
        cluster.resource_type = ResourceType::Cluster;
        let out = create_acls(&image, &mut ctx(), std::slice::from_ref(&cluster));
        assert_eq!(codes(&out.response), vec![42]);
        cluster.resource_name = "kafka-cluster".into();
        let out = create_acls(&image, &mut ctx(), &[cluster]);
        assert_eq!(codes(&out.response), vec![0]);
    }

    #[test]
    fn delete_removes_each_match_once() {
        let image = image_with_brokers(&[1]);
        let mut ctx = ctx();
        let a = acl("a-", PatternType::Prefixed, "User:a", AclPermission::Allow);
        let b = acl("b", PatternType::Literal, "User:b", AclPermission::Deny);
        let image = commit(
            &image,
            &create_acls(&image, &mut ctx, &[a.clone(), b.clone()]).records,
        );
        let mut by_principal = AclFilter::any();
        by_principal.principal = Some("User:a".into());
        let mut unknown = AclFilter::any();
        unknown.operation = AclOperation::Unknown;
        let out = delete_acls(&image, &[by_principal, AclFilter::any(), unknown]);
        assert_eq!(codes(&out.response), vec![0, 0, 42]);
        assert_eq!(out.response[0].as_ref().unwrap(), &vec![a.clone()]);
        assert_eq!(out.response[1].as_ref().unwrap().len(), 2);
        assert_eq!(out.records.len(), 2, "each binding removed once");
        let image = commit(&image, &out.records);
        assert!(image.acls().is_empty());
        // The image survives a snapshot round trip with its ACLs.
        let image = commit(
            &image,
            &create_acls(&image, &mut ctx, std::slice::from_ref(&b)).records,
        );
        let restored = MetadataImage::from_snapshot(
            image.cluster_id(),
            image.last_applied_offset(),
            &image.to_records(),
        );
        assert_eq!(restored, image);
    }
}
