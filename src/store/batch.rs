//! Multi-row statements for the apply transaction and the page cache: one
//! `INSERT … VALUES (…), (…)` or `UPDATE … WHERE id IN (…)` per chunk of
//! rows instead of one statement per row. Each statement is a round trip (to
//! the server, or to sqlx's SQLite worker thread), which dominated large runs
//! (issue 5). Only generated placeholders go into the SQL text; every value
//! is bound.

use super::Backend;

/// Rows per statement. With at most 17 values a row this stays far below
/// SQLite's 32,766 and PostgreSQL's 65,535 bind parameters.
pub(super) const ROWS: usize = 500;

/// Hands out bind placeholders in the order values are bound: `$1`, `$2`, …
/// for PostgreSQL; anonymous `?` for SQLite, because SQLite finds the index
/// of a named parameter (`$7`) by scanning every name in the statement, so a
/// statement of thousands of `$n` took seconds to bind.
pub(super) struct Placeholders {
    backend: Backend,
    next: usize,
}

impl Placeholders {
    /// Placeholders for `backend`, starting at the first parameter.
    pub(super) fn new(backend: Backend) -> Self {
        Self { backend, next: 1 }
    }

    /// The next placeholder.
    pub(super) fn next(&mut self) -> String {
        let n = self.next;
        self.next += 1;
        match self.backend {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${n}"),
        }
    }

    /// `template` with each `{}` replaced by the next placeholder.
    pub(super) fn fill(&mut self, template: &str) -> String {
        let mut pieces = template.split("{}");
        let mut out = pieces.next().unwrap_or_default().to_owned();
        for piece in pieces {
            out.push_str(&self.next());
            out.push_str(piece);
        }
        out
    }

    /// `template` filled once per row, joined by commas: `(…), (…)`.
    pub(super) fn rows(&mut self, template: &str, rows: usize) -> String {
        (0..rows)
            .map(|_| self.fill(template))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `count` placeholders joined by commas, for an `IN (…)` list.
    pub(super) fn list(&mut self, count: usize) -> String {
        (0..count)
            .map(|_| self.next())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_placeholders_are_numbered_across_rows() {
        let mut p = Placeholders::new(Backend::Postgres);
        assert_eq!(
            p.rows("({}, COALESCE({}, {}))", 2),
            "($1, COALESCE($2, $3)), ($4, COALESCE($5, $6))"
        );
        assert_eq!(p.list(2), "$7, $8");
    }

    #[test]
    fn sqlite_placeholders_are_anonymous_and_in_order() {
        let mut p = Placeholders::new(Backend::Sqlite);
        assert_eq!(p.fill("SET a = {} WHERE id IN"), "SET a = ? WHERE id IN");
        assert_eq!(p.rows("({}, {})", 2), "(?, ?), (?, ?)");
        assert_eq!(p.list(3), "?, ?, ?");
    }
}
