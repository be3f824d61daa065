//! The async shell: accept connections on each client listener, and per connection read frames, dispatch them
//! and write responses in request order.

pub mod connection;
pub mod limits;
pub mod listener;
pub mod log_limit;
pub mod queued_input;
pub mod response_writer;
pub mod sasl_exchange;
pub mod sniff;
