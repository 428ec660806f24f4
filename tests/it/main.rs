//! The one integration-test binary: a module per area, each against real
//! parts (SQLite and PostgreSQL, HTTP on loopback, real feed parsers).

mod support;
// Store on SQLite and PostgreSQL: migrations, apply, conflicts, queries.
mod store;
