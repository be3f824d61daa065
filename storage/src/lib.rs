//! kraftwerk-storage
