//! DescribeClientQuotas: Kraftwerk has no client quotas (AlterClientQuotas is not served, so none can be set),
//! so the true answer to any valid filter is "no entries"; `kafka-configs --describe --entity-type users` asks
//! it beside DescribeUserScramCredentials. The filter is still validated as Kafka's `ClientQuotaControlManager`
//! does, so a malformed one gets INVALID_REQUEST rather than an empty success.

use std::collections::HashSet;

use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::errors::code;

/// Kafka's `ClientQuotaFilterComponent` match types.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_ANY: i8 = 2;

/// Why a filter is refused, in Kafka's words where it has them: an entity type Kafka does not know is
/// UNSUPPORTED_VERSION (its `ClientQuotaFilterComponent` parse throws UnsupportedVersionException), any other
/// malformed filter INVALID_REQUEST.
fn refusal(req: &DescribeClientQuotasRequest) -> Option<(ResponseError, String)> {
    if let Some(c) = req
        .components
        .iter()
        .find(|c| !matches!(c.entity_type.as_str(), "user" | "client-id" | "ip"))
    {
        return Some((
            ResponseError::UnsupportedVersion,
            format!("Unsupported entity type {}", c.entity_type.as_str()),
        ));
    }
    invalid_filter(req).map(|m| (ResponseError::InvalidRequest, m))
}

/// Why a filter of known entity types is malformed.
fn invalid_filter(req: &DescribeClientQuotasRequest) -> Option<String> {
    let mut seen = HashSet::new();
    for c in &req.components {
        let entity = c.entity_type.as_str();
        if !seen.insert(entity) {
            return Some(format!(
                "Duplicate entity type in filter component: {entity}"
            ));
        }
        match c.match_type {
            MATCH_EXACT if c._match.is_none() => {
                return Some(format!(
                    "Request specified MATCH_EXACT, but no match string for {entity}"
                ))
            }
            MATCH_DEFAULT | MATCH_ANY if c._match.is_some() => {
                return Some(format!(
                    "Request specified a match string for {entity} with match type {}",
                    c.match_type
                ))
            }
            MATCH_EXACT | MATCH_DEFAULT | MATCH_ANY => {}
            other => return Some(format!("Unknown match type {other}")),
        }
    }
    if seen.contains("ip") && seen.len() > 1 {
        return Some("Invalid entity filter component combination, IP filter component should not be used with user or clientId filter component.".into());
    }
    None
}

pub fn handle(req: DescribeClientQuotasRequest, _version: i16) -> DescribeClientQuotasResponse {
    let mut resp = DescribeClientQuotasResponse::default();
    match refusal(&req) {
        Some((error, message)) => {
            resp.error_code = code(error);
            resp.error_message = Some(StrBytes::from_string(message));
            resp.entries = None;
        }
        None => resp.entries = Some(Vec::new()),
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_client_quotas_request::ComponentData;

    fn component(entity: &str, match_type: i8, m: Option<&str>) -> ComponentData {
        let mut c = ComponentData::default();
        c.entity_type = StrBytes::from_string(entity.into());
        c.match_type = match_type;
        c._match = m.map(|s| StrBytes::from_string(s.into()));
        c
    }

    fn ask(components: Vec<ComponentData>) -> DescribeClientQuotasResponse {
        let mut req = DescribeClientQuotasRequest::default();
        req.components = components;
        handle(req, 1)
    }

    #[test]
    fn a_valid_filter_finds_no_quotas() {
        let resp = ask(vec![component("user", MATCH_EXACT, Some("alice"))]);
        assert_eq!(resp.error_code, 0);
        assert_eq!(resp.entries, Some(Vec::new()));
        assert_eq!(ask(vec![]).entries, Some(Vec::new()));
    }

    #[test]
    fn malformed_filters_are_invalid_requests() {
        for components in [
            vec![component("user", MATCH_EXACT, None)],
            vec![component("user", MATCH_ANY, Some("x"))],
            vec![component("user", 7, None)],
            vec![
                component("user", MATCH_ANY, None),
                component("user", MATCH_DEFAULT, None),
            ],
            vec![
                component("ip", MATCH_ANY, None),
                component("user", MATCH_ANY, None),
            ],
        ] {
            let resp = ask(components);
            assert_eq!(resp.error_code, code(ResponseError::InvalidRequest));
            assert!(resp.error_message.is_some());
        }
    }

    #[test]
    fn an_unknown_entity_type_is_unsupported() {
        let resp = ask(vec![
            component("user", MATCH_ANY, None),
            component("topic", MATCH_ANY, None),
        ]);
        assert_eq!(resp.error_code, code(ResponseError::UnsupportedVersion));
        assert_eq!(
            resp.error_message.as_deref(),
            Some("Unsupported entity type topic")
        );
        assert_eq!(resp.entries, None);
    }
}
