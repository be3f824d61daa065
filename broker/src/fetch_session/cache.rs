//! The broker's fetch sessions: what a request's session id and epoch mean, session creation and eviction.

use std::collections::HashMap;
use std::sync::Mutex;

use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::ResponseError;

use super::session::{Answer, PartitionKey, Session};
use super::{next_epoch, EVICTION_MS, FINAL_EPOCH, INITIAL_EPOCH};

/// The session fields of a Fetch (v7+) and the partitions it names.
#[derive(Debug, Default)]
pub struct SessionRequest {
    pub session_id: i32,
    pub epoch: i32,
    /// Fetch v13+: topics by id.
    pub uses_topic_ids: bool,
    /// The partitions the request names, in its order.
    pub partitions: Vec<(PartitionKey, FetchPartition)>,
    /// `forgotten_topics_data`: partitions an incremental request drops from its session.
    pub forgotten: Vec<PartitionKey>,
}

/// What a Fetch is, once its session fields are read.
#[derive(Debug)]
pub enum Begun {
    /// Answer the partitions the request names; no session is opened (epoch -1, or an incremental request
    /// that left its session empty, which closes it). The answer carries session id 0.
    Sessionless(Vec<(PartitionKey, FetchPartition)>),
    /// Answer the partitions the request names, then [`FetchSessionCache::open`] a session with them.
    Full(Vec<(PartitionKey, FetchPartition)>),
    /// Read these partitions of session `id`, in its order, and answer those [`FetchSessionCache::select`]
    /// picks; `epoch` is the session's epoch after this request.
    Incremental {
        id: i32,
        epoch: i32,
        partitions: Vec<(PartitionKey, FetchPartition)>,
    },
    /// Answer only this error, with no partitions and session id 0.
    Error(ResponseError),
}

/// Every fetch session of this broker.
#[derive(Debug)]
pub struct FetchSessionCache {
    /// `max.incremental.fetch.session.cache.slots`.
    slots: usize,
    sessions: Mutex<HashMap<i32, Session>>,
}

impl FetchSessionCache {
    pub fn new(slots: usize) -> Self {
        Self {
            slots,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Session>> {
        // The map stays consistent even if a holder panicked: every change is a single insert or remove.
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sessions held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads a request's session fields, as Kafka's `FetchManager.newContext`: a full request (epoch 0 or -1)
    /// closes the session it names; an incremental one must name a live session at its current epoch, with
    /// the same topic naming (ids or names) it was opened with.
    pub fn begin(&self, req: SessionRequest, now_ms: u64) -> Begun {
        if req.epoch == INITIAL_EPOCH || req.epoch == FINAL_EPOCH {
            if req.session_id != 0 && self.lock().remove(&req.session_id).is_some() {
                tracing::debug!(
                    session = req.session_id,
                    "fetch session closed by a full fetch"
                );
            }
            return if req.epoch == FINAL_EPOCH {
                Begun::Sessionless(req.partitions)
            } else {
                Begun::Full(req.partitions)
            };
        }
        let mut sessions = self.lock();
        let Some(session) = sessions.get_mut(&req.session_id) else {
            return Begun::Error(ResponseError::FetchSessionIdNotFound);
        };
        if session.epoch != req.epoch {
            tracing::debug!(
                session = req.session_id,
                expected = session.epoch,
                got = req.epoch,
                "fetch session epoch mismatch"
            );
            return Begun::Error(ResponseError::InvalidFetchSessionEpoch);
        }
        if session.uses_topic_ids != req.uses_topic_ids {
            return Begun::Error(ResponseError::FetchSessionTopicIdError);
        }
        session.update(&req.partitions, &req.forgotten);
        if session.is_empty() {
            sessions.remove(&req.session_id);
            tracing::debug!(
                session = req.session_id,
                "fetch session closed: no partition left"
            );
            return Begun::Sessionless(req.partitions);
        }
        session.last_used_ms = now_ms;
        session.epoch = next_epoch(session.epoch);
        Begun::Incremental {
            id: session.id,
            epoch: session.epoch,
            partitions: session.partitions(),
        }
    }

    /// Opens a session with the partitions a full fetch was answered with; returns its id, or 0 when the
    /// cache is full and nothing may be evicted for it (or it is configured with no slots).
    pub fn open(
        &self,
        privileged: bool,
        uses_topic_ids: bool,
        answered: Vec<(PartitionKey, FetchPartition, Answer)>,
        now_ms: u64,
    ) -> i32 {
        let mut sessions = self.lock();
        if self.slots == 0 {
            return 0;
        }
        if sessions.len() >= self.slots
            && !try_evict(&mut sessions, privileged, answered.len(), now_ms)
        {
            tracing::debug!(
                privileged,
                size = answered.len(),
                "no fetch session created: the cache is full"
            );
            return 0;
        }
        let id = new_session_id(&sessions);
        tracing::debug!(
            session = id,
            privileged,
            partitions = answered.len(),
            "fetch session opened"
        );
        sessions.insert(
            id,
            Session::new(id, privileged, uses_topic_ids, now_ms, answered),
        );
        id
    }

    /// For an incremental answer of session `id` at `epoch`: which partitions it carries, one flag per answer
    /// in order. A session that moved on meanwhile (a duplicate request) is INVALID_FETCH_SESSION_EPOCH, as
    /// Kafka answers; one evicted meanwhile gets everything it read (its next request will find no session).
    pub fn select(
        &self,
        id: i32,
        epoch: i32,
        answers: &[(PartitionKey, Answer)],
    ) -> Result<Vec<bool>, ResponseError> {
        let mut sessions = self.lock();
        match sessions.get_mut(&id) {
            None => Ok(vec![true; answers.len()]),
            Some(session) if session.epoch != epoch => Err(ResponseError::InvalidFetchSessionEpoch),
            Some(session) => Ok(session.select(answers)),
        }
    }
}

/// Kafka's `FetchSessionCacheShard.tryEvict`: a session unused for longer than [`EVICTION_MS`] goes first;
/// otherwise the least valuable session the new one may evict (a follower's may evict any consumer's, and any
/// session may evict one created more than [`EVICTION_MS`] ago), if it is worth less: consumers' before
/// followers', then fewer partitions first.
fn try_evict(
    sessions: &mut HashMap<i32, Session>,
    privileged: bool,
    size: usize,
    now_ms: u64,
) -> bool {
    let Some(stalest) = sessions
        .values()
        .min_by_key(|s| (s.last_used_ms, s.id))
        .map(|s| (s.id, s.last_used_ms))
    else {
        return false;
    };
    if now_ms.saturating_sub(stalest.1) > EVICTION_MS {
        sessions.remove(&stalest.0);
        tracing::debug!(session = stalest.0, "evicted a stale fetch session");
        return true;
    }
    let candidate = sessions
        .values()
        .filter(|s| {
            let old = now_ms.saturating_sub(s.created_ms) > EVICTION_MS;
            old || (privileged && !s.privileged)
        })
        .map(|s| (s.privileged, s.len(), s.id))
        .min();
    match candidate {
        Some(worst) if (privileged, size, 0) >= worst => {
            sessions.remove(&worst.2);
            tracing::debug!(
                session = worst.2,
                privileged,
                size,
                "evicted a fetch session for a new one"
            );
            true
        }
        _ => false,
    }
}

/// A random positive id no session has (0 means "no session" on the wire).
fn new_session_id(sessions: &HashMap<i32, Session>) -> i32 {
    loop {
        let id = (uuid::Uuid::new_v4().as_u128() as u32 & 0x7fff_ffff) as i32;
        if id != 0 && !sessions.contains_key(&id) {
            return id;
        }
    }
}
