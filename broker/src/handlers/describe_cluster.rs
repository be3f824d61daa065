//! DescribeCluster (what `Admin.describeCluster` uses): cluster id, controller and the brokers reachable on the
//! client's listener.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::context::{BrokerContext, ConnectionInfo};

use super::errors::code;

/// `endpoint_type` 1 asks for broker endpoints; 2 (controllers) is for KIP-919 clients talking to controllers.
const ENDPOINT_BROKERS: i8 = 1;
const OPS_NOT_REQUESTED: i32 = i32::MIN;
const CLUSTER_ALL_OPS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

pub fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnectionInfo,
    req: DescribeClusterRequest,
    version: i16,
) -> DescribeClusterResponse {
    let image = ctx.controller.image();
    let mut resp = DescribeClusterResponse::default();
    resp.endpoint_type = ENDPOINT_BROKERS;
    if version >= 1 && req.endpoint_type != ENDPOINT_BROKERS {
        resp.error_code = code(ResponseError::UnsupportedEndpointType);
        resp.error_message = Some(StrBytes::from_static_str(
            "only broker endpoints are served by brokers",
        ));
        return resp;
    }
    resp.cluster_id = StrBytes::from_string(ctx.cluster_id.clone());
    resp.controller_id = BrokerId(ctx.controller.controller_id_for_clients(ctx.node_id));
    resp.cluster_authorized_operations = if req.include_cluster_authorized_operations {
        CLUSTER_ALL_OPS
    } else {
        OPS_NOT_REQUESTED
    };
    resp.brokers = image
        .brokers()
        .values()
        .filter(|b| !b.fenced || req.include_fenced_brokers)
        .filter_map(|b| {
            let ep = b.listener(&conn.listener_name)?;
            let mut out = DescribeClusterBroker::default();
            out.broker_id = BrokerId(b.id);
            out.host = StrBytes::from_string(ep.host.clone());
            out.port = i32::from(ep.port);
            out.rack = b.rack.clone().map(StrBytes::from_string);
            out.is_fenced = b.fenced;
            Some(out)
        })
        .collect();
    resp
}
