//! Tests of whole controllers: a durable single voter, and three voters over an in-memory
//! network.

mod membership;
mod single_voter;
mod snapshots;
mod three_voters;
