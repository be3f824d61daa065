//! The differential conformance harness: the same wire requests sent to Apache Kafka and to Kraftwerk,
//! the answers flattened ([`flatten`]), normalised and compared field by field ([`compare`]), and every
//! difference not in the allow-list (`tests/conformance/intended-differences.md`) reported with its
//! scenario, API, version and field.
//!
//! A scenario drives a [`Pair`]: [`Pair::exchange`] sends one request to both brokers and records the
//! differences; [`Pair::both`] sends a setup request whose answers are not compared (joining a group,
//! waiting for a coordinator). Both brokers see the same sequence, so their state evolves alike.

pub mod compare;
pub mod flatten;

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::Request;

use crate::error::HarnessError;
use crate::wire::Connection;
use compare::{diff, normalise, Allowed, Difference, Rule};
use flatten::flatten;

/// The allow-list of intended differences.
pub fn allow_list_path() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conformance")
        .join("intended-differences.md")
}

/// How long one request may take on either broker (a busy machine, a JVM warming up).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// One broker under comparison: a connection and the versions it advertised.
pub struct Endpoint {
    pub conn: Connection,
    pub versions: ApiVersionsResponse,
    pub addr: SocketAddr,
}

impl Endpoint {
    pub fn connect(addr: SocketAddr) -> Result<Self, HarnessError> {
        let mut conn = Connection::connect(addr, REQUEST_TIMEOUT)?;
        let versions = conn.request(0, &ApiVersionsRequest::default())?;
        Ok(Endpoint {
            conn,
            versions,
            addr,
        })
    }

    /// The advertised range of `key`, if any.
    pub fn range(&self, key: i16) -> Option<(i16, i16)> {
        self.versions
            .api_keys
            .iter()
            .find(|k| k.api_key == key)
            .map(|k| (k.min_version, k.max_version))
    }
}

/// What a run found: differences (allowed or not), informational notes, and what was covered.
#[derive(Debug, Default)]
pub struct Report {
    pub differences: Vec<Difference>,
    pub notes: Vec<String>,
    pub exchanges: usize,
    pub scenarios: BTreeSet<String>,
    pub covered: BTreeSet<(String, i16)>,
}

impl Report {
    /// Splits the differences into those the allow-list covers (with its reason) and the rest.
    pub fn judge<'a>(
        &'a self,
        allowed: &'a [Allowed],
    ) -> (Vec<(&'a Difference, &'a Allowed)>, Vec<&'a Difference>) {
        let mut intended = Vec::new();
        let mut unexpected = Vec::new();
        for d in &self.differences {
            match allowed.iter().find(|a| a.covers(d)) {
                Some(a) => intended.push((d, a)),
                None => unexpected.push(d),
            }
        }
        (intended, unexpected)
    }
}

/// Apache Kafka and Kraftwerk side by side.
pub struct Pair {
    pub kafka: Endpoint,
    pub kraftwerk: Endpoint,
    pub report: Report,
}

impl Pair {
    pub fn connect(kafka: SocketAddr, kraftwerk: SocketAddr) -> Result<Self, HarnessError> {
        Ok(Pair {
            kafka: Endpoint::connect(kafka)?,
            kraftwerk: Endpoint::connect(kraftwerk)?,
            report: Report::default(),
        })
    }

    /// The lowest and highest version of `R` that both brokers advertise and the codec supports
    /// (one entry when they are equal, none when there is no common version).
    pub fn versions<R: Request>(&self) -> Vec<i16> {
        let key = R::KEY;
        let (Some(a), Some(b)) = (self.kafka.range(key), self.kraftwerk.range(key)) else {
            return Vec::new();
        };
        let lo = a.0.max(b.0).max(R::VERSIONS.min);
        let hi = a.1.min(b.1).min(R::VERSIONS.max);
        match lo.cmp(&hi) {
            std::cmp::Ordering::Less => vec![lo, hi],
            std::cmp::Ordering::Equal => vec![lo],
            std::cmp::Ordering::Greater => Vec::new(),
        }
    }

    /// The highest common version of `R` (for setup steps).
    pub fn max_version<R: Request>(&self) -> Result<i16, HarnessError> {
        self.versions::<R>().last().copied().ok_or_else(|| {
            HarnessError::Protocol(format!("no common version of {:?}", api_name(R::KEY)))
        })
    }

    /// Sends `request` to both brokers without comparing; returns (kafka, kraftwerk) answers.
    pub fn both<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<(R::Response, R::Response), HarnessError> {
        self.both_each(version, request, request)
    }

    /// [`Pair::both`] with a request per broker, for requests naming what each broker generated (its
    /// member id, its topic id).
    pub fn both_each<R: Request>(
        &mut self,
        version: i16,
        to_kafka: &R,
        to_kraftwerk: &R,
    ) -> Result<(R::Response, R::Response), HarnessError> {
        let kafka = self.kafka.conn.request(version, to_kafka)?;
        let kraftwerk = self.kraftwerk.conn.request(version, to_kraftwerk)?;
        Ok((kafka, kraftwerk))
    }

    /// [`Pair::exchange`] with a request per broker (see [`Pair::both_each`]).
    pub fn exchange_each<R: Request>(
        &mut self,
        scenario: &str,
        version: i16,
        to_kafka: &R,
        to_kraftwerk: &R,
    ) -> Result<(R::Response, R::Response), HarnessError>
    where
        R::Response: Debug,
    {
        let (kafka, kraftwerk) = self.both_each(version, to_kafka, to_kraftwerk)?;
        self.compare(scenario, R::KEY, version, &kafka, &kraftwerk, &[])?;
        Ok((kafka, kraftwerk))
    }

    /// [`Pair::exchange_each`] with `prepare` run on both answers before comparing (e.g. to summarise
    /// record bytes); the answers are returned as the brokers sent them.
    pub fn exchange_each_with<R: Request>(
        &mut self,
        scenario: &str,
        version: i16,
        to_kafka: &R,
        to_kraftwerk: &R,
        prepare: impl Fn(&mut R::Response, &mut R::Response),
    ) -> Result<(R::Response, R::Response), HarnessError>
    where
        R::Response: Debug + Clone,
    {
        let (kafka, kraftwerk) = self.both_each(version, to_kafka, to_kraftwerk)?;
        let (mut a, mut b) = (kafka.clone(), kraftwerk.clone());
        prepare(&mut a, &mut b);
        self.compare(scenario, R::KEY, version, &a, &b, &[])?;
        Ok((kafka, kraftwerk))
    }

    /// Sends `request` to both and records every difference between the answers.
    pub fn exchange<R: Request>(
        &mut self,
        scenario: &str,
        version: i16,
        request: &R,
    ) -> Result<(R::Response, R::Response), HarnessError>
    where
        R::Response: Debug + Clone,
    {
        self.exchange_with(scenario, version, request, &[], |_, _| {})
    }

    /// [`Pair::exchange`] with extra normalisation rules for this exchange, and `prepare` run on both
    /// answers before comparing (to keep only what both can be compared on, e.g. config keys both expose).
    pub fn exchange_with<R: Request>(
        &mut self,
        scenario: &str,
        version: i16,
        request: &R,
        extra: &[Rule],
        prepare: impl Fn(&mut R::Response, &mut R::Response),
    ) -> Result<(R::Response, R::Response), HarnessError>
    where
        R::Response: Debug + Clone,
    {
        let (kafka, kraftwerk) = self.both(version, request)?;
        let (mut a, mut b) = (kafka.clone(), kraftwerk.clone());
        prepare(&mut a, &mut b);
        self.compare(scenario, R::KEY, version, &a, &b, extra)?;
        Ok((kafka, kraftwerk))
    }

    /// Records the differences between two answers of `key` at `version`.
    pub fn compare(
        &mut self,
        scenario: &str,
        key: i16,
        version: i16,
        kafka: &impl Debug,
        kraftwerk: &impl Debug,
        extra: &[Rule],
    ) -> Result<(), HarnessError> {
        let flat = |v: &dyn Debug| {
            flatten::flatten_text(&format!("{v:?}"))
                .map_err(|e| HarnessError::Protocol(e.to_string()))
        };
        let a = normalise(flat(kafka)?, extra);
        let b = normalise(flat(kraftwerk)?, extra);
        let api = api_name(key);
        self.report.exchanges += 1;
        self.report.scenarios.insert(scenario.to_string());
        self.report.covered.insert((api.clone(), version));
        for (path, k, w) in diff(&a, &b) {
            self.report.differences.push(Difference {
                scenario: scenario.to_string(),
                api: api.clone(),
                version,
                path,
                kafka: k,
                kraftwerk: w,
            });
        }
        Ok(())
    }

    /// An informational line for the report (never fails the test).
    pub fn note(&mut self, line: impl Into<String>) {
        self.report.notes.push(line.into());
    }
}

/// `Metadata`, `OffsetCommit`, ... (the API key's name), or the number for a key the codec lacks.
pub fn api_name(key: i16) -> String {
    ApiKey::try_from(key)
        .map(|k| format!("{k:?}"))
        .unwrap_or_else(|_| format!("api{key}"))
}

/// Keeps `flatten` reachable for callers that flatten a single value.
pub fn flatten_debug(value: &impl Debug) -> Result<Vec<flatten::Field>, HarnessError> {
    flatten(value).map_err(|e| HarnessError::Protocol(e.to_string()))
}
