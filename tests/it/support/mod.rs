//! Shared test helpers: databases, servers and external consumers.

pub mod site;
