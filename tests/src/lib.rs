//! Integration tests that start real kraftwerk processes; see tests/tests/.
