//! kraftwerk-protocol
