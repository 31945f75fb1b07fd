//! End-to-end tests: cursors.
