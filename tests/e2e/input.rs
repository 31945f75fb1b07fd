//! End-to-end tests: input.
