//! kraftwerk-broker
