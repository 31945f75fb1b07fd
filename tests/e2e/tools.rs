//! End-to-end tests: tools.
