//! End-to-end tests: auth.
