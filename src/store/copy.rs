//! `tidings db copy`: every table of one database into another, freshly
//! migrated one (SQLite -> PostgreSQL when moving to replicas), in one
//! transaction, then row counts compared table by table. Values are read by
//! their source type and bound as the target column's type, so NULLs and
//! integers land correctly in PostgreSQL's typed columns.

use std::collections::BTreeSet;

use sqlx::any::{AnyRow, AnyTypeInfoKind};
use sqlx::{AnyConnection, AssertSqlSafe, Column, Row, ValueRef};

use super::{Backend, Store, StoreError};

/// Every table `db copy` moves, parents before children. Migration
/// bookkeeping and leases (which belong to running processes) stay behind.
const COPY_ORDER: &[&str] = &[
    "store_meta",
    "resources",
    "revisions",
    "change_events",
    "source_runs",
    "held_runs",
    "source_state",
    "page_cache",
    "settings",
    "subscribers",
    "digest_runs",
    "outbox",
    "outbox_pruned",
    "suppression_list",
    "announcements",
    "channel_posts",
    "upgrades",
    "admins",
    "admin_audit",
];

/// Tables that are not data: migration bookkeeping, and leases, alerts and
/// admin sessions, which belong to the processes running now (the admin
/// signs in again on the new database).
const NOT_COPIED: &[&str] = &["_sqlx_migrations", "leases", "alerts", "admin_sessions"];

/// Tables whose rows `Store::migrate` writes (SQL migrations and upgrade
/// steps): a fresh database holds them, and the copy replaces them.
const SEEDED_BY_MIGRATIONS: &[&str] = &["_sqlx_migrations", "store_meta", "upgrades"];

/// How a target column stores values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Integer,
    Real,
    Text,
    Bytes,
}

/// One value, as read from the source.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

/// Rows per table in the source and the target after a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedTable {
    /// The table.
    pub name: &'static str,
    /// Rows in the source.
    pub source_rows: i64,
    /// Rows in the target after the copy.
    pub target_rows: i64,
}

impl Store {
    /// Copy every table into `target` (migrated here). The target must hold
    /// no rows in any table but the ones its migrations write: the copy
    /// replaces every copied table, so a target with subscribers, an outbox,
    /// settings or anything else would lose them.
    pub async fn copy_to(&self, target: &Store) -> Result<Vec<CopiedTable>, StoreError> {
        self.check_tables_known().await?;
        target.migrate().await?;
        let held = target.tables_holding_rows().await?;
        if !held.is_empty() {
            return Err(StoreError::Refused(format!(
                "the target database already holds rows in {}; nothing was copied: \
                 copy into an empty database",
                held.join(", ")
            )));
        }
        let mut tx = target
            .pool
            .begin()
            .await
            .map_err(StoreError::db("start the copy"))?;
        for table in COPY_ORDER.iter().rev() {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(format!("empty {table} in the target")))?;
        }
        for table in COPY_ORDER {
            self.copy_table(table, target.backend, &mut tx).await?;
        }
        if target.backend == Backend::Postgres {
            reset_identities(&mut tx).await?;
        }
        tx.commit()
            .await
            .map_err(StoreError::db("commit the copy"))?;
        self.compare_counts(target).await
    }

    /// Refuse to copy when a table exists that `COPY_ORDER` does not name.
    async fn check_tables_known(&self) -> Result<(), StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            }
            Backend::Postgres => {
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()"
            }
        };
        let names: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("list tables"))?;
        let known: BTreeSet<&str> = COPY_ORDER.iter().chain(NOT_COPIED).copied().collect();
        match names.iter().find(|n| !known.contains(n.as_str())) {
            Some(unknown) => Err(StoreError::Refused(format!(
                "table {unknown} has no place in the copy order; nothing was copied"
            ))),
            None => Ok(()),
        }
    }

    async fn copy_table(
        &self,
        table: &'static str,
        target: Backend,
        tx: &mut AnyConnection,
    ) -> Result<(), StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!("SELECT * FROM {table}")))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("read {table}")))?;
        let Some(first) = rows.first() else {
            return Ok(());
        };
        let columns: Vec<String> = first
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        let classes = column_classes(tx, target, table, &columns).await?;
        let insert = insert_sql(table, &columns);
        for row in &rows {
            let mut query = sqlx::query(AssertSqlSafe(insert.clone()));
            for (i, class) in classes.iter().enumerate() {
                query = bind(
                    query,
                    read(row, i).map_err(StoreError::db(format!("read {table}")))?,
                    *class,
                );
            }
            query
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(format!("write {table}")))?;
        }
        Ok(())
    }

    /// The tables that hold rows of their own, with how many: every table but
    /// those `migrate` fills.
    async fn tables_holding_rows(&self) -> Result<Vec<String>, StoreError> {
        let mut held = Vec::new();
        let tables = COPY_ORDER.iter().chain(NOT_COPIED);
        for table in tables.filter(|t| !SEEDED_BY_MIGRATIONS.contains(t)) {
            let rows = self.count(table).await?;
            if rows > 0 {
                held.push(format!("{table} ({rows})"));
            }
        }
        Ok(held)
    }

    async fn count(&self, table: &str) -> Result<i64, StoreError> {
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db(format!("count {table}")))
    }

    async fn compare_counts(&self, target: &Store) -> Result<Vec<CopiedTable>, StoreError> {
        let mut tables = Vec::with_capacity(COPY_ORDER.len());
        for name in COPY_ORDER {
            tables.push(CopiedTable {
                name,
                source_rows: self.count(name).await?,
                target_rows: target.count(name).await?,
            });
        }
        Ok(tables)
    }
}

fn insert_sql(table: &str, columns: &[String]) -> String {
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        columns.join(", "),
        placeholders.join(", ")
    )
}

/// The storage class of each of `columns` in the target's `table`.
async fn column_classes(
    tx: &mut AnyConnection,
    target: Backend,
    table: &str,
    columns: &[String],
) -> Result<Vec<Class>, StoreError> {
    let sql = match target {
        Backend::Sqlite => format!("SELECT name, type FROM pragma_table_info('{table}')"),
        Backend::Postgres => format!(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{table}'"
        ),
    };
    let described: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(sql))
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::db(format!("describe {table} in the target")))?;
    columns
        .iter()
        .map(|column| {
            let declared = described
                .iter()
                .find(|(name, _)| name == column)
                .map(|(_, ty)| ty.to_ascii_lowercase())
                .ok_or_else(|| StoreError::NotFound {
                    what: format!("column {table}.{column} in the target"),
                })?;
            Ok(class_of(&declared))
        })
        .collect()
}

fn class_of(declared: &str) -> Class {
    if declared.contains("int") {
        Class::Integer
    } else if declared.contains("real")
        || declared.contains("double")
        || declared.contains("numeric")
    {
        Class::Real
    } else if declared.contains("blob") || declared.contains("bytea") {
        Class::Bytes
    } else {
        Class::Text
    }
}

fn read(row: &AnyRow, i: usize) -> Result<Value, sqlx::Error> {
    let kind = row.column(i).type_info().kind();
    if row.try_get_raw(i)?.is_null() {
        return Ok(Value::Null);
    }
    Ok(match kind {
        AnyTypeInfoKind::Bool => Value::Integer(i64::from(row.try_get::<bool, _>(i)?)),
        AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
            Value::Integer(row.try_get::<i64, _>(i)?)
        }
        AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => Value::Real(row.try_get::<f64, _>(i)?),
        AnyTypeInfoKind::Blob => Value::Bytes(row.try_get::<Vec<u8>, _>(i)?),
        _ => Value::Text(row.try_get::<String, _>(i)?),
    })
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Bind `value` as the target column's class, so NULLs carry the right type.
fn bind(query: AnyQuery<'_>, value: Value, class: Class) -> AnyQuery<'_> {
    match (class, value) {
        (Class::Integer, Value::Integer(v)) => query.bind(v),
        (Class::Integer, Value::Real(v)) => query.bind(v as i64),
        (Class::Integer, _) => query.bind(None::<i64>),
        (Class::Real, Value::Real(v)) => query.bind(v),
        (Class::Real, Value::Integer(v)) => query.bind(v as f64),
        (Class::Real, _) => query.bind(None::<f64>),
        (Class::Bytes, Value::Bytes(v)) => query.bind(v),
        (Class::Bytes, Value::Text(v)) => query.bind(v.into_bytes()),
        (Class::Bytes, _) => query.bind(None::<Vec<u8>>),
        (Class::Text, Value::Text(v)) => query.bind(v),
        (Class::Text, Value::Integer(v)) => query.bind(v.to_string()),
        (Class::Text, Value::Real(v)) => query.bind(v.to_string()),
        (Class::Text, _) => query.bind(None::<String>),
    }
}

/// Move each identity sequence past the ids copied in, so new rows do not collide.
async fn reset_identities(tx: &mut AnyConnection) -> Result<(), StoreError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND column_name = 'id' AND is_identity = 'YES'",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(StoreError::db("list identity columns"))?;
    for table in tables {
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST((SELECT MAX(id) FROM {table}), 1))"
        );
        sqlx::query(AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(format!("reset the id sequence of {table}")))?;
    }
    Ok(())
}
