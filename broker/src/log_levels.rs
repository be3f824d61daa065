//! Run-time log levels: Kafka's BROKER_LOGGER config resource (KIP-412), which `kafka-configs --entity-type
//! broker-loggers` and the Admin client describe and change, with Kraftwerk's tracing targets as the loggers.
//!
//! Kafka's loggers are log4j's: dotted names, each inheriting its level from the nearest configured ancestor or
//! from `root`. Here a logger is a tracing target (a module path), one of its prefixes, a target named in
//! `RUST_LOG`, or `root`, the level of targets no directive names. Loggers are named with dots where the
//! target has `::` (`kraftwerk_broker.replica` is the target `kraftwerk_broker::replica`), as Kafka's are:
//! `kafka-configs` refuses a `:` in a config name. The
//! levels are an `EnvFilter` behind tracing-subscriber's `reload` layer, rebuilt from [`LevelState`] (what
//! `RUST_LOG` said at start, then every change) on each change, so a SET applies to the next event. A logger
//! exists once its crate is Kraftwerk's, it was named at start, or code logging under it has run (tracing
//! registers a call site the first time it is reached, enabled or not), as a log4j logger exists once created.
//! As in Kafka, changes are not persisted: a restart starts again from `RUST_LOG`.
//!
//! Kafka's levels FATAL, ERROR, WARN, INFO, DEBUG and TRACE are accepted (as Kafka, in capitals only). tracing
//! has no FATAL: Kraftwerk logs the conditions that stop it at ERROR, so FATAL lets ERROR events through.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};

use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::Metadata;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

/// The name of the logger every other inherits from when nothing more specific is set (Kafka's).
pub const ROOT: &str = "root";

/// Kraftwerk's own crates: loggers from the start, before any of their code has logged.
const CRATES: [&str; 4] = [
    "kraftwerk_broker",
    "kraftwerk_controller",
    "kraftwerk_storage",
    "kraftwerk_protocol",
];

/// The level names Kafka's `LogLevelConfig.VALID_LOG_LEVELS` accepts in a SET, in the order Kafka lists them in
/// its refusal.
const SETTABLE: [&str; 6] = ["DEBUG", "ERROR", "FATAL", "INFO", "TRACE", "WARN"];

/// A logger's level by Kafka's name. OFF is never set through the API (Kafka refuses it too) but is what a
/// logger shows when `RUST_LOG` turned it off, or named no default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Off,
    Fatal,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    /// A level a client may SET (exactly Kafka's names).
    pub fn settable(name: &str) -> Option<Self> {
        Some(match name {
            "FATAL" => Self::Fatal,
            "ERROR" => Self::Error,
            "WARN" => Self::Warn,
            "INFO" => Self::Info,
            "DEBUG" => Self::Debug,
            "TRACE" => Self::Trace,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "OFF",
            Self::Fatal => "FATAL",
            Self::Error => "ERROR",
            Self::Warn => "WARN",
            Self::Info => "INFO",
            Self::Debug => "DEBUG",
            Self::Trace => "TRACE",
        }
    }

    /// The directive level (FATAL: ERROR, the most severe tracing has).
    fn directive(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Fatal | Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }

    fn from_filter(filter: LevelFilter) -> Self {
        match filter {
            LevelFilter::OFF => Self::Off,
            LevelFilter::ERROR => Self::Error,
            LevelFilter::WARN => Self::Warn,
            LevelFilter::INFO => Self::Info,
            LevelFilter::DEBUG => Self::Debug,
            _ => Self::Trace,
        }
    }
}

/// Why a change to a logger is refused, with Kafka's error for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelError {
    /// INVALID_CONFIG, as Kafka's `RuntimeLoggerManager`.
    #[error("Logger {0} does not exist!")]
    UnknownLogger(String),
    /// INVALID_CONFIG.
    #[error(
        "Cannot set the log level of {logger} to {level} as it is not a supported log level. Valid log levels \
         are {}", SETTABLE.join(", ")
    )]
    InvalidLevel { logger: String, level: String },
    /// INVALID_REQUEST.
    #[error("Removing the log level of the root logger is not allowed")]
    DeleteRoot,
    /// INVALID_REQUEST: APPEND and SUBTRACT have no meaning for a level.
    #[error("{0} operation is not allowed for the BROKER_LOGGER resource")]
    Operation(&'static str),
    /// The rebuilt filter was refused (never expected: it is built from directives that parsed).
    #[error("the new log levels could not be applied: {0}")]
    Apply(String),
}

/// One change to a logger, as IncrementalAlterConfigs carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Set { logger: String, level: String },
    Delete { logger: String },
    Append { logger: String },
    Subtract { logger: String },
}

/// The levels in force, as `EnvFilter` directives: the default (root), a level per target, and whatever else
/// `RUST_LOG` held that is not a logger's level (span and field directives), kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelState {
    root: Level,
    targets: BTreeMap<String, Level>,
    other: Vec<String>,
}

impl LevelState {
    /// What `RUST_LOG` (already known to parse as an `EnvFilter`) says; `None` or a value that does not parse
    /// is INFO for everything, as the broker starts its logging.
    pub fn from_directives(directives: Option<&str>) -> Self {
        let mut state = Self {
            root: Level::Info,
            targets: BTreeMap::new(),
            other: Vec::new(),
        };
        let Some(text) = directives.filter(|d| EnvFilter::try_new(d).is_ok()) else {
            return state;
        };
        // An EnvFilter without a bare level enables only what its directives name.
        state.root = Level::Off;
        for directive in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            if directive.contains('[') {
                state.other.push(directive.to_string());
                continue;
            }
            match directive.rsplit_once('=') {
                Some((target, level)) => {
                    let level = level.parse().map_or(Level::Trace, Level::from_filter);
                    state.targets.insert(target.to_string(), level);
                }
                None => match directive.parse::<LevelFilter>() {
                    Ok(level) => state.root = Level::from_filter(level),
                    // A bare target enables everything under it.
                    Err(_) => {
                        state.targets.insert(directive.to_string(), Level::Trace);
                    }
                },
            }
        }
        state
    }

    /// The `EnvFilter` directives for this state (targets after the default; more specific ones win).
    pub fn directives(&self) -> String {
        let mut parts = vec![self.root.directive().to_string()];
        parts.extend(
            self.targets
                .iter()
                .map(|(t, l)| format!("{t}={}", l.directive())),
        );
        parts.extend(self.other.iter().cloned());
        parts.join(",")
    }

    /// The level a logger logs at: the level of the most specific target directive matching it (`EnvFilter`
    /// matches targets by prefix), else root's.
    pub fn effective(&self, logger: &str) -> Level {
        if logger == ROOT {
            return self.root;
        }
        let target = target_of(logger);
        self.targets
            .iter()
            .filter(|(t, _)| target.starts_with(t.as_str()))
            .max_by_key(|(t, _)| t.len())
            .map_or(self.root, |(_, l)| *l)
    }

    /// Checks every change (Kafka validates the whole resource before applying any), then applies them.
    pub fn apply(
        &mut self,
        changes: &[Change],
        known: &dyn Fn(&str) -> bool,
    ) -> Result<(), LevelError> {
        let exists = |logger: &str| {
            if logger == ROOT || known(logger) || self.targets.contains_key(&target_of(logger)) {
                Ok(())
            } else {
                Err(LevelError::UnknownLogger(logger.to_string()))
            }
        };
        for change in changes {
            match change {
                Change::Set { logger, level } => {
                    exists(logger)?;
                    if Level::settable(level).is_none() {
                        return Err(LevelError::InvalidLevel {
                            logger: logger.clone(),
                            level: level.clone(),
                        });
                    }
                }
                Change::Delete { logger } => {
                    exists(logger)?;
                    if logger == ROOT {
                        return Err(LevelError::DeleteRoot);
                    }
                }
                Change::Append { .. } => return Err(LevelError::Operation("APPEND")),
                Change::Subtract { .. } => return Err(LevelError::Operation("SUBTRACT")),
            }
        }
        for change in changes {
            match change {
                Change::Set { logger, level } => {
                    let level = Level::settable(level).unwrap_or(Level::Info);
                    if logger == ROOT {
                        self.root = level;
                    } else {
                        self.targets.insert(target_of(logger), level);
                    }
                }
                // The logger inherits again: from the nearest ancestor directive, else root.
                Change::Delete { logger } => {
                    self.targets.remove(&target_of(logger));
                }
                Change::Append { .. } | Change::Subtract { .. } => {}
            }
        }
        Ok(())
    }
}

/// Applies a rebuilt filter (the reload handle in the process; a recorder in tests).
type Reloader = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

/// The broker's loggers and their levels.
pub struct LogLevels {
    state: Mutex<LevelState>,
    /// Every target tracing has registered a call site for, with its `::` prefixes.
    seen: Arc<Mutex<BTreeSet<String>>>,
    reload: Reloader,
}

impl std::fmt::Debug for LogLevels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogLevels")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

static INSTALLED: OnceLock<LogLevels> = OnceLock::new();

/// Installs the process's logging (stderr, levels from `RUST_LOG`, INFO if unset or invalid) with levels that
/// can change at run time. Called once, by `main`.
pub fn install() {
    let directives = std::env::var(EnvFilter::DEFAULT_ENV).ok();
    let state = LevelState::from_directives(directives.as_deref());
    let filter = EnvFilter::try_new(state.directives()).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::<EnvFilter, Registry>::new(filter);
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let targets = TargetRecorder {
        seen: Arc::clone(&seen),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(targets)
        .init();
    let levels = LogLevels::with_seen(
        state,
        seen,
        Box::new(move |f| handle.reload(f).map_err(|e| e.to_string())),
    );
    let _ = INSTALLED.set(levels);
}

/// The process's log levels, if [`install`] ran (it does in the `kraftwerk` binary).
pub fn installed() -> Option<&'static LogLevels> {
    INSTALLED.get()
}

impl LogLevels {
    /// Levels over `state` whose changes go to `reload` (for tests; the process uses [`install`]).
    pub fn new(state: LevelState, reload: Reloader) -> Self {
        Self::with_seen(state, Arc::new(Mutex::new(BTreeSet::new())), reload)
    }

    /// A logger named at start stays one after its level is unset (as a configured log4j logger does).
    fn with_seen(state: LevelState, seen: Arc<Mutex<BTreeSet<String>>>, reload: Reloader) -> Self {
        for target in state.targets.keys() {
            record_target(&seen, target);
        }
        Self {
            state: Mutex::new(state),
            seen,
            reload,
        }
    }

    /// Records a target as seen (what the layer does for every call site).
    pub fn saw_target(&self, target: &str) {
        record_target(&self.seen, target);
    }

    fn known(&self, logger: &str) -> bool {
        CRATES.contains(&logger) || lock(&self.seen).contains(logger)
    }

    /// Every logger with its effective level, `root` included, by name.
    pub fn loggers(&self) -> BTreeMap<String, Level> {
        let state = lock(&self.state);
        let mut names: BTreeSet<String> = lock(&self.seen).clone();
        names.extend(CRATES.iter().map(|c| c.to_string()));
        names.extend(state.targets.keys().filter_map(|t| logger_of(t)));
        names.insert(ROOT.to_string());
        names
            .into_iter()
            .map(|n| {
                let level = state.effective(&n);
                (n, level)
            })
            .collect()
    }

    /// Checks `changes` and, unless `validate_only`, applies them and reloads the filter.
    pub fn change(&self, changes: &[Change], validate_only: bool) -> Result<(), LevelError> {
        let mut state = lock(&self.state);
        let mut next = state.clone();
        next.apply(changes, &|l| self.known(l))?;
        if validate_only {
            return Ok(());
        }
        let filter =
            EnvFilter::try_new(next.directives()).map_err(|e| LevelError::Apply(e.to_string()))?;
        (self.reload)(filter).map_err(LevelError::Apply)?;
        *state = next;
        drop(state);
        for change in changes {
            match change {
                Change::Set { logger, level } => {
                    tracing::warn!("Updated the log level of {logger} to {level}")
                }
                Change::Delete { logger } => tracing::warn!("Unset the log level of {logger}"),
                Change::Append { .. } | Change::Subtract { .. } => {}
            }
        }
        Ok(())
    }
}

/// The logger name of a tracing target (`::` → `.`); `None` for a target that is not a path of identifiers
/// (an explicit `target:` with dots or spaces could not be told apart from a module path once dotted).
fn logger_of(target: &str) -> Option<String> {
    let path = target
        .split("::")
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'));
    path.then(|| target.replace("::", "."))
}

/// The tracing target a logger names (`.` → `::`).
fn target_of(logger: &str) -> String {
    logger.replace('.', "::")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records a target's logger and its ancestors.
fn record_target(seen: &Mutex<BTreeSet<String>>, target: &str) {
    let Some(logger) = logger_of(target) else {
        return;
    };
    let mut seen = lock(seen);
    if seen.contains(&logger) {
        return;
    }
    for (i, _) in logger.match_indices('.') {
        seen.insert(logger[..i].to_string());
    }
    seen.insert(logger);
}

/// Records the target of every call site tracing registers (it asks each layer once per call site, and again
/// when the filter is rebuilt), so the loggers can be listed. It filters nothing.
struct TargetRecorder {
    seen: Arc<Mutex<BTreeSet<String>>>,
}

impl<S: tracing::Subscriber> Layer<S> for TargetRecorder {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        record_target(&self.seen, metadata.target());
        Interest::always()
    }

    /// Without it the global level hint would be the filter's most verbose level, and tracing's macros skip a
    /// call site above it before registering it: at WARN, a module that logs only at DEBUG would never become
    /// a logger, so nobody could turn its DEBUG on. With it every call site registers the first time it is
    /// reached; the filter's answer is cached in the call site, so a disabled one stays a load and a branch.
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }

    fn enabled(&self, _metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(logger: &str, level: &str) -> Change {
        Change::Set {
            logger: logger.into(),
            level: level.into(),
        }
    }

    fn recording() -> (LogLevels, Arc<Mutex<Vec<String>>>) {
        let applied = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&applied);
        let levels = LogLevels::new(
            LevelState::from_directives(Some("warn,kraftwerk_broker::replica=debug,h2=off")),
            Box::new(move |f| {
                lock(&sink).push(f.to_string());
                Ok(())
            }),
        );
        (levels, applied)
    }

    #[test]
    fn rust_log_becomes_the_loggers_levels() {
        let state =
            LevelState::from_directives(Some("warn,kraftwerk_broker::replica=debug,h2=off"));
        assert_eq!(state.effective(ROOT), Level::Warn);
        assert_eq!(
            state.effective("kraftwerk_broker.replica.fetcher"),
            Level::Debug
        );
        assert_eq!(state.effective("kraftwerk_broker.group"), Level::Warn);
        assert_eq!(state.effective("h2.codec"), Level::Off);
        // Unset or invalid: INFO, as the broker logs by default.
        assert_eq!(
            LevelState::from_directives(None).effective(ROOT),
            Level::Info
        );
        assert_eq!(
            LevelState::from_directives(Some("=][")).effective(ROOT),
            Level::Info
        );
        // Only targets named: everything else is off.
        let only = LevelState::from_directives(Some("kraftwerk_storage=trace"));
        assert_eq!(only.effective(ROOT), Level::Off);
        assert_eq!(only.effective("kraftwerk_storage.log"), Level::Trace);
        // Span directives are kept as written.
        let spans = LevelState::from_directives(Some("info,kraftwerk_broker[conn]=debug"));
        assert!(spans.directives().contains("kraftwerk_broker[conn]=debug"));
    }

    #[test]
    fn set_and_delete_change_the_filter_and_what_is_described() {
        let (levels, applied) = recording();
        levels.saw_target("kraftwerk_broker::group_service::load");
        let loggers = levels.loggers();
        assert_eq!(loggers[ROOT], Level::Warn);
        assert_eq!(loggers["kraftwerk_broker.group_service"], Level::Warn);
        assert_eq!(loggers["kraftwerk_broker.replica"], Level::Debug);
        // Not a module path: no logger.
        levels.saw_target("my.target");
        assert!(!levels.loggers().contains_key("my.target"));
        assert_eq!(loggers["kraftwerk_storage"], Level::Warn);

        levels
            .change(
                &[set("kraftwerk_broker", "DEBUG"), set(ROOT, "ERROR")],
                false,
            )
            .unwrap();
        let loggers = levels.loggers();
        assert_eq!(loggers["kraftwerk_broker.group_service.load"], Level::Debug);
        assert_eq!(loggers["kraftwerk_storage"], Level::Error);
        let filter = lock(&applied).last().cloned().unwrap();
        assert!(filter.contains("kraftwerk_broker=debug"), "{filter}");
        // A dotted logger is its module path's target.
        levels
            .change(&[set("kraftwerk_broker.group_service", "TRACE")], false)
            .unwrap();
        assert!(lock(&levels.state)
            .directives()
            .contains("kraftwerk_broker::group_service=trace"));
        assert_eq!(
            levels.loggers()["kraftwerk_broker.group_service.load"],
            Level::Trace
        );
        levels
            .change(
                &[Change::Delete {
                    logger: "kraftwerk_broker.group_service".into(),
                }],
                false,
            )
            .unwrap();
        assert!(filter.contains("error"), "{filter}");

        // DELETE: the logger inherits again (its parent's level, else root's), also one RUST_LOG named.
        levels
            .change(
                &[Change::Delete {
                    logger: "kraftwerk_broker.replica".into(),
                }],
                false,
            )
            .unwrap();
        assert_eq!(levels.loggers()["kraftwerk_broker.replica"], Level::Debug);
        levels
            .change(
                &[Change::Delete {
                    logger: "kraftwerk_broker".into(),
                }],
                false,
            )
            .unwrap();
        assert_eq!(levels.loggers()["kraftwerk_broker.replica"], Level::Error);
        assert_eq!(lock(&applied).len(), 5);
    }

    #[test]
    fn refusals_as_kafka_and_nothing_applied_from_a_refused_resource() {
        let (levels, applied) = recording();
        let err = levels
            .change(
                &[set(ROOT, "DEBUG"), set("kraftwerk_broker", "debug")],
                false,
            )
            .unwrap_err();
        assert!(matches!(err, LevelError::InvalidLevel { .. }));
        assert_eq!(
            err.to_string(),
            "Cannot set the log level of kraftwerk_broker to debug as it is not a supported log level. \
             Valid log levels are DEBUG, ERROR, FATAL, INFO, TRACE, WARN"
        );
        for level in ["OFF", "ALL", "VERBOSE", ""] {
            assert!(
                levels.change(&[set(ROOT, level)], false).is_err(),
                "{level}"
            );
        }
        assert_eq!(
            levels.change(&[set("no.such.logger", "INFO")], false),
            Err(LevelError::UnknownLogger("no.such.logger".into()))
        );
        // A prefix that is not a whole path segment is no logger.
        assert!(levels
            .change(&[set("kraftwerk_bro", "INFO")], false)
            .is_err());
        assert_eq!(
            levels.change(
                &[Change::Delete {
                    logger: ROOT.into()
                }],
                false
            ),
            Err(LevelError::DeleteRoot)
        );
        assert_eq!(
            levels.change(
                &[Change::Append {
                    logger: ROOT.into()
                }],
                false
            ),
            Err(LevelError::Operation("APPEND"))
        );
        assert!(lock(&applied).is_empty());
        assert_eq!(levels.loggers()[ROOT], Level::Warn);
        // validate_only checks and changes nothing.
        levels.change(&[set(ROOT, "TRACE")], true).unwrap();
        assert!(lock(&applied).is_empty());
        assert_eq!(levels.loggers()[ROOT], Level::Warn);
        // FATAL is accepted and shown as set; the filter lets ERROR through.
        levels.change(&[set(ROOT, "FATAL")], false).unwrap();
        assert_eq!(levels.loggers()[ROOT], Level::Fatal);
        assert!(lock(&levels.state).directives().starts_with("error,"));
        assert_eq!(lock(&applied).len(), 1);
    }
}
