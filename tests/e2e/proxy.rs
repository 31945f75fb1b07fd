//! End-to-end tests: proxy.
