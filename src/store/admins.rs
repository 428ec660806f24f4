//! Named admin accounts (`admins`) and the sessions that belong to them:
//! adding, removing and listing accounts, setting a password through the
//! one-time link (whose nonce is replaced so the link works once), and the
//! session lookup with its idle timeout. Signing links and checking
//! passwords is `accounts`'s; the bootstrap account "admin" lives in the
//! config, not here.

use chrono::{DateTime, Duration, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, format_time, parse_time};

/// A named admin account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAccount {
    /// Row id.
    pub id: i64,
    /// The address they sign in with (trimmed, domain lower-cased).
    pub email: String,
    /// What the log and the pages call them.
    pub name: String,
    /// Their password as an argon2 PHC string; `None` until set through the link.
    pub password_hash: Option<String>,
    /// Signed into the password link; replaced when the password is set.
    pub link_nonce: String,
    /// When the account was added.
    pub created_at: DateTime<Utc>,
}

/// A live session: whose it is and what it was bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The named account, or `None` for the bootstrap account.
    pub admin_id: Option<i64>,
    /// The MAC of the account's password the session was started with.
    pub credential: String,
    /// When it was last used.
    pub last_seen_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, email, name, password_hash, link_nonce, created_at";

/// How one admin account is looked up.
#[derive(Clone, Copy)]
enum AdminKey<'a> {
    Email(&'a str),
    Id(i64),
}

fn account(row: &AnyRow) -> Result<AdminAccount, sqlx::Error> {
    Ok(AdminAccount {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        link_nonce: row.try_get("link_nonce")?,
        created_at: parse_time(&row.try_get::<String, _>("created_at")?)?,
    })
}

impl Store {
    /// Adds account `email` called `name`; `StoreError::Exists` when the address has one.
    pub async fn add_admin(
        &self,
        email: &str,
        name: &str,
        link_nonce: &str,
        at: DateTime<Utc>,
    ) -> Result<AdminAccount, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO admins (email, name, link_nonce, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
        )))
        .bind(email)
        .bind(name)
        .bind(link_nonce)
        .bind(format_time(at))
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("add an admin account"))?;
        let Some(row) = row else {
            return Err(StoreError::Exists {
                what: format!("admin account {email}"),
            });
        };
        account(&row).map_err(StoreError::db("read the added admin account"))
    }

    /// Every named account, oldest first.
    pub async fn list_admins(&self) -> Result<Vec<AdminAccount>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM admins ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("list admin accounts"))?;
        rows.iter()
            .map(account)
            .collect::<Result<_, _>>()
            .map_err(StoreError::db("read admin accounts"))
    }

    /// The account signing in as `email`, if there is one.
    pub async fn admin_by_email(&self, email: &str) -> Result<Option<AdminAccount>, StoreError> {
        self.admin_where(AdminKey::Email(email)).await
    }

    /// Account `id`, if it still exists.
    pub async fn admin_by_id(&self, id: i64) -> Result<Option<AdminAccount>, StoreError> {
        self.admin_where(AdminKey::Id(id)).await
    }

    async fn admin_where(&self, key: AdminKey<'_>) -> Result<Option<AdminAccount>, StoreError> {
        let condition = match key {
            AdminKey::Email(_) => "email = $1",
            AdminKey::Id(_) => "id = $1",
        };
        let sql = format!("SELECT {COLUMNS} FROM admins WHERE {condition}");
        let query = sqlx::query(sqlx::AssertSqlSafe(sql));
        let query = match key {
            AdminKey::Email(email) => query.bind(email),
            AdminKey::Id(id) => query.bind(id),
        };
        let row = query
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("look up an admin account"))?;
        row.as_ref()
            .map(account)
            .transpose()
            .map_err(StoreError::db("read an admin account"))
    }

    /// True when at least one named account exists.
    pub async fn any_admins(&self) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM admins LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("look for admin accounts"))?;
        Ok(found.is_some())
    }

    /// Removes account `email` and ends its sessions; `NotFound` when there is none.
    pub async fn remove_admin(&self, email: &str) -> Result<AdminAccount, StoreError> {
        let Some(found) = self.admin_by_email(email).await? else {
            return Err(StoreError::NotFound {
                what: format!("admin account {email}"),
            });
        };
        let action = || format!("remove admin account {}", found.id);
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action()))?;
        sqlx::query("DELETE FROM admin_sessions WHERE admin_id = $1")
            .bind(found.id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action()))?;
        sqlx::query("DELETE FROM admins WHERE id = $1")
            .bind(found.id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action()))?;
        tx.commit().await.map_err(StoreError::db(action()))?;
        Ok(found)
    }

    /// Gives account `email` a new link nonce, so links sent before stop
    /// working; `NotFound` when there is no such account.
    pub async fn renew_admin_link(
        &self,
        email: &str,
        nonce: &str,
    ) -> Result<AdminAccount, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE admins SET link_nonce = $2 WHERE email = $1 RETURNING {COLUMNS}"
        )))
        .bind(email)
        .bind(nonce)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("renew an admin account's link"))?;
        let Some(row) = row else {
            return Err(StoreError::NotFound {
                what: format!("admin account {email}"),
            });
        };
        account(&row).map_err(StoreError::db("read an admin account"))
    }

    /// Sets account `id`'s password when its link nonce is still `nonce`,
    /// replacing the nonce with `next_nonce` (so the link works once) and
    /// ending the account's sessions. False when the nonce had moved on.
    pub async fn set_admin_password(
        &self,
        id: i64,
        nonce: &str,
        next_nonce: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let action = || format!("set the password of admin account {id}");
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action()))?;
        let changed = sqlx::query(
            "UPDATE admins SET password_hash = $3, link_nonce = $4 WHERE id = $1 AND link_nonce = $2",
        )
        .bind(id)
        .bind(nonce)
        .bind(password_hash)
        .bind(next_nonce)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(action()))?
        .rows_affected();
        sqlx::query("DELETE FROM admin_sessions WHERE admin_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action()))?;
        tx.commit().await.map_err(StoreError::db(action()))?;
        Ok(changed == 1)
    }

    /// Session `id` when it exists, has not expired and was used within
    /// `idle` of `now`; its last use moves to `now` (at most once a minute,
    /// so reading pages does not write on every request).
    pub async fn admin_session(
        &self,
        id: &str,
        now: DateTime<Utc>,
        idle: Duration,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT admin_id, credential, COALESCE(last_seen_at, created_at) AS seen \
             FROM admin_sessions WHERE id = $1 AND expires_at > $2",
        )
        .bind(id)
        .bind(format_time(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("look up an admin session"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let read = |row: &AnyRow| -> Result<SessionRecord, sqlx::Error> {
            Ok(SessionRecord {
                admin_id: row.try_get("admin_id")?,
                credential: row.try_get("credential")?,
                last_seen_at: parse_time(&row.try_get::<String, _>("seen")?)?,
            })
        };
        let session = read(&row).map_err(StoreError::db("read an admin session"))?;
        if now - session.last_seen_at >= idle {
            self.end_admin_session(id).await?;
            return Ok(None);
        }
        if now - session.last_seen_at >= Duration::minutes(1) {
            sqlx::query("UPDATE admin_sessions SET last_seen_at = $2 WHERE id = $1")
                .bind(id)
                .bind(format_time(now))
                .execute(&self.pool)
                .await
                .map_err(StoreError::db("note an admin session's use"))?;
        }
        Ok(Some(session))
    }

    /// Records that session `id` belongs to account `admin_id` (`None`: the bootstrap account).
    pub async fn own_admin_session(
        &self,
        id: &str,
        admin_id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE admin_sessions SET admin_id = $2, last_seen_at = $3 WHERE id = $1")
            .bind(id)
            .bind(admin_id)
            .bind(format_time(now))
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(StoreError::db("record whose admin session it is"))
    }
}
