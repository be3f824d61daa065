//! kraftwerk-controller
