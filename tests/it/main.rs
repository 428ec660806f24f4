//! The one integration-test binary: a module per area, each against real
//! parts (SQLite and PostgreSQL, HTTP on loopback, real feed parsers).

mod support;
// The HTTP client: origins, redirects, robots.txt, retries, size caps, charsets.
mod fetch;
