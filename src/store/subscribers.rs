//! Subscribers and generated settings: adding (one, or a whole CSV file in one
//! transaction), listing, removing, unsubscribing, and the confirmed
//! subscribers a digest period is for. Addresses arrive already validated.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, format_time, parse_time};
use crate::model::{CategoryChoice, Consent, Frequency, Subscriber, SubscriberStatus};

/// A subscriber to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscriber {
    /// Normalised address (see `mail::address::Email`).
    pub email: String,
    /// What they get.
    pub categories: CategoryChoice,
    /// How often.
    pub frequency: Frequency,
    /// Confirmed already (`--confirmed`), else pending.
    pub confirmed: bool,
    /// Random nonce for the token.
    pub token_nonce: String,
    /// How they consented, kept as evidence (`subscribers export`).
    pub consent: Consent,
}

const COLUMNS: &str = "id, email, categories, frequency, status, token_nonce, created_at, \
                       confirmed_at, window_end, refusals, suppressed_at";

impl Store {
    /// Adds one subscriber; `Exists` if the address is already there.
    pub async fn add_subscriber(
        &self,
        new: &NewSubscriber,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db("add a subscriber"))?;
        if !insert_subscriber(&mut tx, new, at)
            .await
            .map_err(StoreError::db("add a subscriber"))?
        {
            return Err(StoreError::Exists {
                what: format!("subscriber {}", crate::mail::address::mask(&new.email)),
            });
        }
        let id = sqlx::query_scalar("SELECT id FROM subscribers WHERE email = $1")
            .bind(&new.email)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db("add a subscriber"))?;
        tx.commit()
            .await
            .map_err(StoreError::db("add a subscriber"))?;
        Ok(id)
    }

    /// Adds every subscriber in one transaction; existing addresses are left as
    /// they are. Returns how many were added.
    pub(crate) async fn import_subscribers(
        &self,
        new: &[NewSubscriber],
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let action = "import subscribers";
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action))?;
        let mut added = 0;
        for subscriber in new {
            if insert_subscriber(&mut tx, subscriber, at)
                .await
                .map_err(StoreError::db(action))?
            {
                added += 1;
            }
        }
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(added)
    }

    /// Every subscriber, by address.
    pub async fn list_subscribers(&self) -> Result<Vec<Subscriber>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM subscribers ORDER BY email");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await;
        decode(rows).map_err(StoreError::db("list subscribers"))
    }

    /// One subscriber by id.
    pub async fn subscriber(&self, id: i64) -> Result<Option<Subscriber>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM subscribers WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await;
        row.and_then(|r| r.as_ref().map(subscriber).transpose())
            .map_err(StoreError::db(format!("load subscriber {id}")))
    }

    /// Confirmed subscribers (of `frequency`, or all) whose window ends before `end`.
    pub(crate) async fn subscribers_due(
        &self,
        frequency: Option<Frequency>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Subscriber>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM subscribers WHERE status = 'confirmed' \
             AND ($1 IS NULL OR frequency = $1) AND confirmed_at < $2 \
             AND (window_end IS NULL OR window_end < $2) ORDER BY id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(frequency.map(Frequency::as_str))
            .bind(format_time(end))
            .fetch_all(&self.pool)
            .await;
        decode(rows).map_err(StoreError::db("list subscribers due a digest"))
    }

    /// Every confirmed subscriber, by id.
    pub async fn confirmed_subscribers(&self) -> Result<Vec<Subscriber>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM subscribers WHERE status = 'confirmed' ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await;
        decode(rows).map_err(StoreError::db("list confirmed subscribers"))
    }

    /// Records a web sign-up and claims the right to send `email` a
    /// confirmation: adds a pending subscriber, or updates a pending (or
    /// unsubscribed, or suppressed) one, but only when no confirmation was queued for the
    /// address after `resend_after`. `Some` when a confirmation should be sent;
    /// `None` for confirmed addresses and within the window. One conditional
    /// UPDATE, so the per-address limit holds across replicas.
    pub async fn request_confirmation(
        &self,
        new: &NewSubscriber,
        now: DateTime<Utc>,
        resend_after: DateTime<Utc>,
    ) -> Result<Option<Subscriber>, StoreError> {
        let action = "record a sign-up";
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action))?;
        insert_subscriber(&mut tx, new, now)
            .await
            .map_err(StoreError::db(action))?;
        let claimed = sqlx::query(
            "UPDATE subscribers SET confirmation_sent_at = $2, categories = $3, frequency = $4, \
             status = 'pending', consent_route = 'web', consent_reason = NULL WHERE email = $1 \
             AND status IN ('pending', 'unsubscribed', 'suppressed') \
             AND (confirmation_sent_at IS NULL OR confirmation_sent_at < $5)",
        )
        .bind(&new.email)
        .bind(format_time(now))
        .bind(new.categories.stored())
        .bind(new.frequency.as_str())
        .bind(format_time(resend_after))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(action))?;
        let subscriber = if claimed.rows_affected() == 1 {
            let sql = format!("SELECT {COLUMNS} FROM subscribers WHERE email = $1");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&new.email)
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
            Some(subscriber(&row).map_err(StoreError::db(action))?)
        } else {
            None
        };
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(subscriber)
    }

    /// How many subscribers are suppressed.
    pub async fn count_suppressed(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM subscribers WHERE status = 'suppressed'")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("count suppressed subscribers"))
    }

    /// Confirms a pending subscriber; their first digest window starts `at`,
    /// and earlier refusals of their mail no longer count. False when they
    /// were not pending.
    pub async fn confirm_subscriber(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE subscribers SET status = 'confirmed', confirmed_at = $2, refusals = 0, \
             suppressed_at = NULL, confirm_route = 'link' WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(format_time(at))
        .execute(&self.pool)
        .await
        .map_err(StoreError::db(format!("confirm subscriber {id}")))?;
        Ok(done.rows_affected() == 1)
    }

    /// Saves a subscriber's categories and frequency.
    pub(crate) async fn update_preferences(
        &self,
        id: i64,
        categories: &CategoryChoice,
        frequency: Frequency,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE subscribers SET categories = $2, frequency = $3 WHERE id = $1")
            .bind(id)
            .bind(categories.stored())
            .bind(frequency.as_str())
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(StoreError::db(format!(
                "save the preferences of subscriber {id}"
            )))
    }

    /// Deletes a subscriber; false if there was none with that address.
    pub(crate) async fn remove_subscriber(&self, email: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM subscribers WHERE email = $1")
            .bind(email)
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("remove a subscriber"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Marks a subscriber unsubscribed (idempotent); false if there is no such subscriber.
    pub async fn unsubscribe(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE subscribers SET status = 'unsubscribed', \
             unsubscribed_at = COALESCE(unsubscribed_at, $2) WHERE id = $1",
        )
        .bind(id)
        .bind(format_time(at))
        .execute(&self.pool)
        .await
        .map_err(StoreError::db(format!("unsubscribe subscriber {id}")))?;
        Ok(done.rows_affected() > 0)
    }

    /// The stored value of setting `name`, storing `value` first if there is none.
    /// Safe when several processes do this at once: the first insert wins.
    pub async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String, StoreError> {
        let action = || format!("read setting {name}");
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(StoreError::db(action()))?;
        sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db(action()))
    }

    /// The setting `name`, if it was ever stored.
    pub(crate) async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db(format!("read setting {name}")))
    }

    /// Stores `value` as setting `name`, replacing any value it had.
    pub(crate) async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(StoreError::db(format!("write setting {name}")))
    }
}

/// Inserts unless the address exists; true when a row was added. The
/// consent is recorded with it; an imported opt-out status is kept as it was.
async fn insert_subscriber(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    new: &NewSubscriber,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let consent = &new.consent;
    let (status, confirmed_at) = match consent.imported_status {
        Some(status) => (status, None),
        None if new.confirmed => (SubscriberStatus::Confirmed, Some(format_time(at))),
        None => (SubscriberStatus::Pending, None),
    };
    let opted_out_at = |wanted: SubscriberStatus| (status == wanted).then(|| format_time(at));
    let done = sqlx::query(
        "INSERT INTO subscribers (email, categories, frequency, status, token_nonce, created_at, \
         confirmed_at, consent_route, confirm_route, consent_reason, source_optin_at, \
         source_confirmed_at, unsubscribed_at, suppressed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(&new.email)
    .bind(new.categories.stored())
    .bind(new.frequency.as_str())
    .bind(status.as_str())
    .bind(&new.token_nonce)
    .bind(format_time(at))
    .bind(confirmed_at.clone())
    .bind(consent.route.as_str())
    .bind(confirmed_at.map(|_| consent.route.as_str()))
    .bind(consent.reason.clone())
    .bind(consent.source_optin_at.clone())
    .bind(consent.source_confirmed_at.clone())
    .bind(opted_out_at(SubscriberStatus::Unsubscribed))
    .bind(opted_out_at(SubscriberStatus::Suppressed))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Counts one permanent refusal of `subscriber`'s mail; at `suppress_after`
/// a confirmed subscriber becomes suppressed. Returns their address when this
/// refusal suppressed them.
pub(super) async fn count_refusal(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    subscriber: i64,
    suppress_after: u32,
    at: DateTime<Utc>,
) -> Result<Option<String>, sqlx::Error> {
    let counted: Option<(i64, String)> = sqlx::query_as(
        "UPDATE subscribers SET refusals = refusals + 1 WHERE id = $1 RETURNING refusals, email",
    )
    .bind(subscriber)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((refusals, email)) = counted else {
        return Ok(None);
    };
    if refusals < i64::from(suppress_after) {
        return Ok(None);
    }
    let suppressed = sqlx::query(
        "UPDATE subscribers SET status = 'suppressed', suppressed_at = $2 \
         WHERE id = $1 AND status = 'confirmed'",
    )
    .bind(subscriber)
    .bind(format_time(at))
    .execute(&mut **tx)
    .await?;
    Ok((suppressed.rows_affected() == 1).then_some(email))
}

fn decode(rows: Result<Vec<AnyRow>, sqlx::Error>) -> Result<Vec<Subscriber>, sqlx::Error> {
    rows?.iter().map(subscriber).collect()
}

fn subscriber(row: &AnyRow) -> Result<Subscriber, sqlx::Error> {
    let bad = |what: &str, value: &str| sqlx::Error::Decode(format!("bad {what} {value:?}").into());
    let frequency: String = row.try_get("frequency")?;
    let status: String = row.try_get("status")?;
    let time = |column: &str| -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        let text: Option<String> = row.try_get(column)?;
        text.as_deref().map(parse_time).transpose()
    };
    Ok(Subscriber {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        categories: CategoryChoice::from_stored(&row.try_get::<String, _>("categories")?),
        frequency: Frequency::parse(&frequency).ok_or_else(|| bad("frequency", &frequency))?,
        status: SubscriberStatus::parse(&status).ok_or_else(|| bad("status", &status))?,
        token_nonce: row.try_get("token_nonce")?,
        created_at: parse_time(&row.try_get::<String, _>("created_at")?)?,
        confirmed_at: time("confirmed_at")?,
        window_end: time("window_end")?,
        refusals: row.try_get("refusals")?,
        suppressed_at: time("suppressed_at")?,
    })
}
