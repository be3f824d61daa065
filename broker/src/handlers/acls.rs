//! DescribeAcls, CreateAcls and DeleteAcls (Kafka's `AclApis`). Without an authorizer they answer
//! SECURITY_DISABLED as Kafka does; with one, creations and deletions are written to the metadata
//! log by the active controller and descriptions are read from this broker's image. All three
//! need a cluster permission first (ALTER to change, DESCRIBE to list).

use std::sync::Arc;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use kraftwerk_controller::acl::{
    AclBinding, AclFilter, AclOperation, AclPermission, PatternType, ResourceType,
};

use crate::context::{BrokerContext, ConnectionInfo};

use super::errors::code;

const NO_AUTHORIZER: &str = "No Authorizer is configured on the broker";

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A DescribeAcls or DeleteAcls filter as the request carries it.
#[allow(clippy::too_many_arguments)]
fn filter(
    resource_type: i8,
    resource_name: &Option<StrBytes>,
    pattern_type: i8,
    principal: &Option<StrBytes>,
    host: &Option<StrBytes>,
    operation: i8,
    permission: i8,
) -> AclFilter {
    AclFilter {
        resource_type: ResourceType::from_code(resource_type),
        resource_name: resource_name.as_ref().map(|s| s.to_string()),
        pattern_type: PatternType::from_code(pattern_type),
        principal: principal.as_ref().map(|s| s.to_string()),
        host: host.as_ref().map(|s| s.to_string()),
        operation: AclOperation::from_code(operation),
        permission: AclPermission::from_code(permission),
    }
}

pub fn describe_acls(
    ctx: &Arc<BrokerContext>,
    conn: &ConnectionInfo,
    req: DescribeAclsRequest,
    _version: i16,
) -> DescribeAclsResponse {
    let mut resp = DescribeAclsResponse::default();
    if !ctx.auth(conn).allows_cluster(AclOperation::Describe) {
        resp.error_code = code(ResponseError::ClusterAuthorizationFailed);
        return resp;
    }
    if ctx.authorizer.is_none() {
        resp.error_code = code(ResponseError::SecurityDisabled);
        resp.error_message = Some(StrBytes::from_static_str(NO_AUTHORIZER));
        return resp;
    }
    let f = filter(
        req.resource_type_filter,
        &req.resource_name_filter,
        req.pattern_type_filter,
        &req.principal_filter,
        &req.host_filter,
        req.operation,
        req.permission_type,
    );
    let image = ctx.controller.image();
    resp.resources = describe(image.acls().values(), &f);
    resp
}

/// The ACLs `f` selects, grouped by resource. As Kafka's broker does (`AuthorizerData.acls`), a filter is
/// not validated first: a code it does not know (UNKNOWN) equals no ACL's, so it selects nothing.
fn describe<'a>(
    acls: impl Iterator<Item = &'a AclBinding>,
    f: &AclFilter,
) -> Vec<DescribeAclsResource> {
    let matching: Vec<&AclBinding> = acls.filter(|a| f.matches(a)).collect();
    group_by_resource(&matching)
}

/// Kafka's `DescribeAclsResponse.aclsResources`: one entry per resource pattern with its ACLs.
fn group_by_resource(acls: &[&AclBinding]) -> Vec<DescribeAclsResource> {
    let mut by_resource: std::collections::BTreeMap<(i8, &str, i8), Vec<AclDescription>> =
        Default::default();
    for a in acls {
        let mut d = AclDescription::default();
        d.principal = text(&a.principal);
        d.host = text(&a.host);
        d.operation = a.operation.code();
        d.permission_type = a.permission.code();
        by_resource
            .entry((
                a.resource_type.code(),
                a.resource_name.as_str(),
                a.pattern_type.code(),
            ))
            .or_default()
            .push(d);
    }
    by_resource
        .into_iter()
        .map(|((rt, name, pt), acls)| {
            let mut r = DescribeAclsResource::default();
            r.resource_type = rt;
            r.resource_name = text(name);
            r.pattern_type = pt;
            r.acls = acls;
            r
        })
        .collect()
}

pub async fn create_acls(
    ctx: &Arc<BrokerContext>,
    conn: &ConnectionInfo,
    req: CreateAclsRequest,
    _version: i16,
) -> CreateAclsResponse {
    let mut resp = CreateAclsResponse::default();
    let refuse = |error: ResponseError, message: Option<&'static str>| {
        req.creations
            .iter()
            .map(|_| {
                let mut r = AclCreationResult::default();
                r.error_code = code(error);
                r.error_message = message.map(StrBytes::from_static_str);
                r
            })
            .collect()
    };
    if !ctx.auth(conn).allows_cluster(AclOperation::Alter) {
        resp.results = refuse(ResponseError::ClusterAuthorizationFailed, None);
        return resp;
    }
    if ctx.authorizer.is_none() {
        resp.results = refuse(ResponseError::SecurityDisabled, Some(NO_AUTHORIZER));
        return resp;
    }
    let bindings: Vec<AclBinding> = req
        .creations
        .iter()
        .map(|c| AclBinding {
            resource_type: ResourceType::from_code(c.resource_type),
            resource_name: c.resource_name.to_string(),
            pattern_type: PatternType::from_code(c.resource_pattern_type),
            principal: c.principal.to_string(),
            host: c.host.to_string(),
            operation: AclOperation::from_code(c.operation),
            permission: AclPermission::from_code(c.permission_type),
        })
        .collect();
    let results = ctx.controller.create_acls(bindings).await;
    resp.results = results
        .into_iter()
        .map(|r| {
            let mut out = AclCreationResult::default();
            if let Err(e) = r {
                out.error_code = e.error_code();
                out.error_message = Some(text(&e.message()));
            }
            out
        })
        .collect();
    resp
}

pub async fn delete_acls(
    ctx: &Arc<BrokerContext>,
    conn: &ConnectionInfo,
    req: DeleteAclsRequest,
    _version: i16,
) -> DeleteAclsResponse {
    let mut resp = DeleteAclsResponse::default();
    let refuse = |error: ResponseError, message: Option<&'static str>| {
        req.filters
            .iter()
            .map(|_| {
                let mut r = DeleteAclsFilterResult::default();
                r.error_code = code(error);
                r.error_message = message.map(StrBytes::from_static_str);
                r
            })
            .collect()
    };
    if !ctx.auth(conn).allows_cluster(AclOperation::Alter) {
        resp.filter_results = refuse(ResponseError::ClusterAuthorizationFailed, None);
        return resp;
    }
    if ctx.authorizer.is_none() {
        resp.filter_results = refuse(ResponseError::SecurityDisabled, Some(NO_AUTHORIZER));
        return resp;
    }
    let filters: Vec<AclFilter> = req
        .filters
        .iter()
        .map(|f| {
            filter(
                f.resource_type_filter,
                &f.resource_name_filter,
                f.pattern_type_filter,
                &f.principal_filter,
                &f.host_filter,
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let results = ctx.controller.delete_acls(filters).await;
    resp.filter_results = results
        .into_iter()
        .map(|r| {
            let mut out = DeleteAclsFilterResult::default();
            (out.error_code, out.error_message) = super::errors::outcome(&r);
            if let Ok(removed) = r {
                out.matching_acls = removed
                    .iter()
                    .map(|a| {
                        let mut m = DeleteAclsMatchingAcl::default();
                        // A removed ACL carries no error: a null message, as Kafka sends.
                        m.error_message = None;
                        m.resource_type = a.resource_type.code();
                        m.resource_name = text(&a.resource_name);
                        m.pattern_type = a.pattern_type.code();
                        m.principal = text(&a.principal);
                        m.host = text(&a.host);
                        m.operation = a.operation.code();
                        m.permission_type = a.permission.code();
                        m
                    })
                    .collect();
            }
            out
        })
        .collect();
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: "t".into(),
            pattern_type: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        }
    }

    fn any() -> AclFilter {
        filter(1, &None, 1, &None, &None, 1, 1)
    }

    #[test]
    fn filters_with_unknown_codes_describe_nothing_without_failing() {
        let acls = [binding()];
        assert_eq!(describe(acls.iter(), &any()).len(), 1);
        for f in [
            AclFilter {
                pattern_type: PatternType::from_code(9),
                ..any()
            },
            AclFilter {
                resource_type: ResourceType::from_code(99),
                ..any()
            },
            AclFilter {
                operation: AclOperation::from_code(99),
                ..any()
            },
        ] {
            assert!(describe(acls.iter(), &f).is_empty(), "{f:?}");
        }
    }
}
