//! Proposals waiting for their raft entry to commit.
//!
//! A proposal is identified by the (term, index) its entry got when proposed. When the entry at
//! that index is applied, the proposal succeeded if the term matches; if another leader's entry
//! took the index, the proposal was overwritten and answers NOT_CONTROLLER (as in Kafka, the
//! client retries against the new controller).

use std::collections::BTreeMap;

use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::ops::OpContext;
use crate::records::MetadataRecord;

/// Answers a request once its records committed (`Ok`) or never will (`Err`).
pub(crate) type Completion = Box<dyn FnOnce(Result<(), ControllerError>) + Send>;

/// What an operation hands the node: records to propose and how to answer.
pub(crate) struct Pending {
    pub records: Vec<MetadataRecord>,
    pub complete: Completion,
}

/// A request waiting for the node: a pure op run against the leader's latest image.
pub(crate) type Operation = Box<dyn FnOnce(&MetadataImage, &mut OpContext) -> Pending + Send>;

/// A completion ready to run, with its outcome.
pub(crate) type Resolved = (Completion, Result<(), ControllerError>);

#[derive(Default)]
pub(crate) struct InFlight {
    by_index: BTreeMap<u64, (u64, Completion)>,
}

impl InFlight {
    pub(crate) fn insert(&mut self, term: u64, index: u64, complete: Completion) {
        if let Some((_, older)) = self.by_index.insert(index, (term, complete)) {
            // Only possible if an earlier proposal's entry was truncated before we saw the index
            // applied; that proposal is lost.
            older(Err(ControllerError::NotController));
        }
    }

    /// The entry (`term`, `index`) was applied: resolves the proposal at `index` and any left
    /// behind at lower indexes.
    pub(crate) fn resolve(&mut self, term: u64, index: u64, out: &mut Vec<Resolved>) {
        while let Some(entry) = self.by_index.first_entry() {
            if *entry.key() > index {
                break;
            }
            let at = *entry.key();
            let (proposed_term, complete) = entry.remove();
            let outcome = if at == index && proposed_term == term {
                Ok(())
            } else {
                Err(ControllerError::NotController)
            };
            out.push((complete, outcome));
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_index.is_empty()
    }

    pub(crate) fn fail_all(&mut self, err: &ControllerError) {
        for (_, (_, complete)) in std::mem::take(&mut self.by_index) {
            complete(Err(err.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    type Log = Arc<Mutex<Vec<(u64, Result<(), ControllerError>)>>>;

    fn completion(log: &Log, id: u64) -> Completion {
        let log = log.clone();
        Box::new(move |r| log.lock().unwrap().push((id, r)))
    }

    fn run(out: Vec<Resolved>) {
        for (complete, outcome) in out {
            complete(outcome);
        }
    }

    #[test]
    fn matches_by_term_and_index() {
        let log = Log::default();
        let mut f = InFlight::default();
        f.insert(2, 5, completion(&log, 1));
        f.insert(2, 6, completion(&log, 2));
        f.insert(2, 8, completion(&log, 3));
        let mut out = Vec::new();
        f.resolve(2, 5, &mut out);
        // Index 6 was taken over by term 3: overwritten.
        f.resolve(3, 6, &mut out);
        run(out);
        assert_eq!(
            *log.lock().unwrap(),
            vec![(1, Ok(())), (2, Err(ControllerError::NotController))]
        );
        assert!(!f.is_empty());
        let mut out = Vec::new();
        // Skipped past 8 without seeing it: lost.
        f.resolve(3, 9, &mut out);
        run(out);
        assert_eq!(
            log.lock().unwrap().last().unwrap(),
            &(3, Err(ControllerError::NotController))
        );
        assert!(f.is_empty());
    }

    #[test]
    fn fail_all_and_replaced_index() {
        let log = Log::default();
        let mut f = InFlight::default();
        f.insert(1, 3, completion(&log, 1));
        f.insert(2, 3, completion(&log, 2));
        f.fail_all(&ControllerError::Storage("disk".into()));
        let got = log.lock().unwrap().clone();
        assert_eq!(got[0], (1, Err(ControllerError::NotController)));
        assert_eq!(got[1], (2, Err(ControllerError::Storage("disk".into()))));
    }
}
