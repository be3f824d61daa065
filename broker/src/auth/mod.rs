//! Authorization with Kafka's StandardAuthorizer rules over the ACLs in the metadata image.
//!
//! - [`index`]: the pure decision over an index of the ACLs.
//! - [`Authorizer`]: the configured rules plus the index of the current image's ACLs, rebuilt only
//!   when the image's ACL map changes.
//! - [`RequestAuth`]: one request's view (its principal and address), what handlers ask.
//! - [`checks`]: which resources and operations each API needs, in one place.
//! - [`inter_node`]: the rule for the traffic between nodes on the controller listener (CLUSTER_ACTION).
//!
//! Everything depends only on the connection's principal string (`User:ANONYMOUS`, a certificate
//! subject, a SASL user), never on how it was authenticated.

pub mod index;
pub mod inter_node;

use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use kraftwerk_controller::acl::{AclOperation, ResourceType, CLUSTER_NAME};
use kraftwerk_controller::MetadataImage;

pub mod checks;

pub use index::{AclIndex, Requester, Rules};

/// The class Kafka users name in `authorizer.class.name`.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// `authorizer.class.name`, `super.users` and `allow.everyone.if.no.acl.found`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// The class named (any non-empty value enables Kafka's StandardAuthorizer rules).
    pub class_name: String,
    /// Principals allowed everything (`super.users`, semicolon-separated).
    pub super_users: Vec<String>,
    /// What to answer when no ACL exists for a resource.
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerConfig {
    /// `None` when `authorizer.class.name` is absent or blank: no authorizer, as in Kafka.
    pub fn from_properties(
        class_name: Option<&str>,
        super_users: Option<&str>,
        allow_everyone_if_no_acl_found: bool,
    ) -> Option<Self> {
        let class_name = class_name.map(str::trim).filter(|c| !c.is_empty())?;
        if class_name != STANDARD_AUTHORIZER {
            tracing::warn!(
                class = class_name,
                "authorizer.class.name is not {STANDARD_AUTHORIZER}; Kraftwerk applies \
                 StandardAuthorizer's rules to the ACLs in the metadata log"
            );
        }
        let super_users = super_users
            .unwrap_or("")
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Some(Self {
            class_name: class_name.to_string(),
            super_users,
            allow_everyone_if_no_acl_found,
        })
    }
}

type AclMap = std::collections::BTreeMap<uuid::Uuid, kraftwerk_controller::acl::AclBinding>;

/// The configured authorizer: rules plus a cached index of the current ACLs.
#[derive(Debug)]
pub struct Authorizer {
    rules: Arc<Rules>,
    /// The ACL map the index was built from (compared by pointer) and the index.
    cache: Mutex<(Arc<AclMap>, Arc<AclIndex>)>,
}

impl Authorizer {
    /// An authorizer with no ACLs indexed yet.
    pub fn new(config: &AuthorizerConfig) -> Self {
        Self {
            rules: Arc::new(Rules {
                super_users: config.super_users.clone(),
                allow_if_no_acl: config.allow_everyone_if_no_acl_found,
            }),
            cache: Mutex::new((Arc::default(), Arc::default())),
        }
    }

    /// The index of this image's ACLs (rebuilt only when they changed since the last call).
    pub fn index_for(&self, image: &MetadataImage) -> Arc<AclIndex> {
        let mut cache = self.cache.lock();
        if !Arc::ptr_eq(&cache.0, image.acls()) {
            *cache = (
                image.acls().clone(),
                Arc::new(AclIndex::build(image.acls())),
            );
        }
        cache.1.clone()
    }

    /// Whether `principal` connecting from `host` may send inter-node traffic to this controller, by the ACLs of
    /// `image` (the controller's own): super users always, others with CLUSTER_ACTION on the cluster once the
    /// image holds the metadata log's ACLs (it has a `metadata.version`).
    pub fn authorize_inter_node(
        &self,
        image: &MetadataImage,
        principal: &str,
        host: IpAddr,
    ) -> Result<(), inter_node::Denial> {
        let loaded = image.features().contains_key("metadata.version");
        let index = self.index_for(image);
        inter_node::authorize(&self.rules, &index, Requester { principal, host }, loaded)
    }
}

/// One request's authorization: who asks and the ACLs as of the image the request is served
/// from. With no authorizer configured everything is allowed. Owned (cheap to clone), so a
/// response patch can keep deciding after the handler ran.
#[derive(Clone)]
pub struct RequestAuth {
    checker: Option<(Arc<Rules>, Arc<AclIndex>)>,
    principal: String,
    host: IpAddr,
}

impl RequestAuth {
    /// The view for one request.
    pub fn new(
        authorizer: Option<&Authorizer>,
        image: &MetadataImage,
        principal: &str,
        host: IpAddr,
    ) -> Self {
        Self {
            checker: authorizer.map(|a| (a.rules.clone(), a.index_for(image))),
            principal: principal.to_string(),
            host,
        }
    }

    fn who(&self) -> Requester<'_> {
        Requester {
            principal: &self.principal,
            host: self.host,
        }
    }

    /// Whether an authorizer is configured.
    pub fn enabled(&self) -> bool {
        self.checker.is_some()
    }

    /// Whether the requester may do `op` on `(rt, name)`.
    pub fn allows(&self, op: AclOperation, rt: ResourceType, name: &str) -> bool {
        match &self.checker {
            None => true,
            Some((rules, index)) => {
                let ok = index.authorize(rules, self.who(), op, rt, name);
                if !ok {
                    tracing::info!(
                        principal = %self.principal,
                        host = %self.host,
                        operation = %op,
                        resource = %format_args!("{rt}:{name}"),
                        "authorization denied"
                    );
                }
                ok
            }
        }
    }

    /// Whether the requester may do `op` on the cluster.
    pub fn allows_cluster(&self, op: AclOperation) -> bool {
        self.allows(op, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Whether the requester may do `op` on some resource of type `rt`.
    pub fn allows_some(&self, op: AclOperation, rt: ResourceType) -> bool {
        match &self.checker {
            None => true,
            Some((rules, index)) => index.authorize_by_resource_type(rules, self.who(), op, rt),
        }
    }
}
