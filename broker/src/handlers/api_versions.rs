//! ApiVersions: the table comes from the registered handlers, nothing else.

use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use crate::context::BrokerContext;

pub fn handle(ctx: &BrokerContext, req: ApiVersionsRequest, version: i16) -> ApiVersionsResponse {
    if version >= 3 {
        tracing::debug!(
            client_software = %req.client_software_name.as_str(),
            client_version = %req.client_software_version.as_str(),
            "api versions"
        );
    }
    ctx.apis.api_versions_response()
}
