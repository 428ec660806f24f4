//! `subscribers import --format mailchimp|listmonk`: other systems' exports
//! -> subscribers, with the consent times they recorded kept as evidence.
//!
//! - Mailchimp audience exports (`Email Address`, `First Name`, …,
//!   `OPTIN_TIME`, `CONFIRM_TIME`, …): the subscribed export gives confirmed
//!   subscribers; the unsubscribed (`UNSUB_TIME`) and cleaned (`CLEAN_TIME`)
//!   exports give suppressed ones, so nothing is sent to them.
//! - listmonk subscriber exports (`uuid,email,name,attributes,status,
//!   created_at,updated_at`): `enabled` -> confirmed, `disabled` ->
//!   unsubscribed, `blocklisted` -> suppressed; `created_at` is the opt-in.
//!
//! Columns are found by name in the header row (any order, any case); only
//! the address, the status and the times are kept, never names or other fields.

use std::collections::HashMap;

use super::csv::{Parsed, cell, error_line, plain_csv_error, reader};
use crate::mail::address::Email;
use crate::mail::token::random_hex;
use crate::model::{CategoryChoice, Consent, Frequency, SubscriberStatus};
use crate::store::NewSubscriber;

/// A system whose export Tidings reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Foreign {
    /// A Mailchimp audience export (subscribed, unsubscribed or cleaned).
    Mailchimp,
    /// A listmonk subscribers export.
    Listmonk,
}

/// Column names by position, lower-cased.
struct Header(HashMap<String, usize>);

impl Header {
    fn new(record: &csv::StringRecord) -> Self {
        let names = record.iter().enumerate();
        Self(names.map(|(i, n)| (cell(n).to_lowercase(), i)).collect())
    }

    fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The field of `record` under column `name`, trimmed; `None` when empty.
    fn get<'r>(&self, record: &'r csv::StringRecord, name: &str) -> Option<&'r str> {
        let field = record.get(*self.0.get(name)?)?;
        Some(cell(field)).filter(|f| !f.is_empty())
    }
}

/// Every row of a `format` export; each subscriber gets `categories`.
/// `origin` (file and format) is recorded with their consent.
pub(super) fn subscribers(
    bytes: &[u8],
    format: Foreign,
    categories: &CategoryChoice,
    origin: &str,
) -> Parsed {
    let mut parsed = Parsed::default();
    let mut header: Option<Header> = None;
    for record in reader(bytes).records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                parsed.bad.push((error_line(&e), plain_csv_error(&e)));
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        if record.iter().all(|f| cell(f).is_empty()) {
            continue;
        }
        let Some(columns) = &header else {
            let found = Header::new(&record);
            if let Err(why) = check_header(&found, format) {
                parsed.bad.push((line, why));
                return parsed;
            }
            header = Some(found);
            continue;
        };
        let consent = match format {
            Foreign::Mailchimp => mailchimp_consent(columns, &record, origin),
            Foreign::Listmonk => listmonk_consent(columns, &record, origin),
        };
        let row = consent.and_then(|consent| {
            let address = columns.get(&record, email_column(format)).unwrap_or("");
            new_subscriber(address, categories, consent)
        });
        parsed.push(line, row);
    }
    parsed
}

fn email_column(format: Foreign) -> &'static str {
    match format {
        Foreign::Mailchimp => "email address",
        Foreign::Listmonk => "email",
    }
}

fn check_header(header: &Header, format: Foreign) -> Result<(), String> {
    let (needed, what): (&[&str], _) = match format {
        Foreign::Mailchimp => (&["email address"], "a Mailchimp audience export"),
        Foreign::Listmonk => (&["email", "status"], "a listmonk subscribers export"),
    };
    let missing: Vec<&str> = needed.iter().copied().filter(|c| !header.has(c)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "no {} column in the header row: is this {what}?",
        missing.join(", ")
    ))
}

/// Subscribed -> confirmed; the unsubscribed and cleaned exports -> suppressed.
fn mailchimp_consent(
    header: &Header,
    record: &csv::StringRecord,
    origin: &str,
) -> Result<Consent, String> {
    let mut consent = Consent::import(origin.to_owned());
    consent.source_optin_at = header.get(record, "optin_time").map(str::to_owned);
    consent.source_confirmed_at = header.get(record, "confirm_time").map(str::to_owned);
    if header.has("unsub_time") || header.has("clean_time") {
        consent.imported_status = Some(SubscriberStatus::Suppressed);
    }
    Ok(consent)
}

fn listmonk_consent(
    header: &Header,
    record: &csv::StringRecord,
    origin: &str,
) -> Result<Consent, String> {
    let mut consent = Consent::import(origin.to_owned());
    consent.source_optin_at = header.get(record, "created_at").map(str::to_owned);
    consent.imported_status = match header.get(record, "status").unwrap_or("") {
        "enabled" => None,
        "disabled" => Some(SubscriberStatus::Unsubscribed),
        "blocklisted" => Some(SubscriberStatus::Suppressed),
        other => {
            return Err(format!(
                "status {other:?} is not enabled, disabled or blocklisted"
            ));
        }
    };
    Ok(consent)
}

fn new_subscriber(
    address: &str,
    categories: &CategoryChoice,
    consent: Consent,
) -> Result<NewSubscriber, String> {
    Ok(NewSubscriber {
        email: Email::parse(address)?.to_string(),
        categories: categories.clone(),
        frequency: Frequency::Weekly,
        confirmed: consent.imported_status.is_none(),
        token_nonce: random_hex(16).map_err(|e| e.to_string())?,
        consent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, format: Foreign) -> Parsed {
        subscribers(text.as_bytes(), format, &CategoryChoice::All, "test")
    }

    #[test]
    fn a_mailchimp_export_keeps_its_consent_times() {
        let text = "\u{feff}Email Address,First Name,Last Name,OPTIN_TIME,CONFIRM_TIME\r\n\
                    ann@x.org,Ann,\"Smith\r\nJones\",2023-01-05 10:11:12,2023-01-05 10:20:00\r\n";
        let parsed = parse(text, Foreign::Mailchimp);
        assert!(parsed.bad.is_empty(), "{:?}", parsed.bad);
        let consent = &parsed.rows[0].consent;
        assert_eq!(
            consent.source_optin_at.as_deref(),
            Some("2023-01-05 10:11:12")
        );
        assert_eq!(
            consent.source_confirmed_at.as_deref(),
            Some("2023-01-05 10:20:00")
        );
        assert!(parsed.rows[0].confirmed);
    }

    #[test]
    fn a_cleaned_export_gives_suppressed_subscribers() {
        let text = "Email Address,CLEAN_TIME\nbob@x.org,2024-02-01 00:00:00\n";
        let parsed = parse(text, Foreign::Mailchimp);
        let consent = &parsed.rows[0].consent;
        assert_eq!(consent.imported_status, Some(SubscriberStatus::Suppressed));
        assert!(!parsed.rows[0].confirmed);
    }

    #[test]
    fn listmonk_statuses_map_and_unknown_ones_are_named() {
        let text = "uuid,email,name,attributes,status,created_at,updated_at\n\
                    1,a@x.org,A,\"{\"\"city\"\": \"\"Bow\"\"}\",enabled,2022-01-01 00:00:00+00,x\n\
                    2,b@x.org,B,{},blocklisted,2022-01-02 00:00:00+00,x\n\
                    3,c@x.org,C,{},frozen,2022-01-03 00:00:00+00,x\n";
        let parsed = parse(text, Foreign::Listmonk);
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(
            parsed.rows[1].consent.imported_status,
            Some(SubscriberStatus::Suppressed)
        );
        assert_eq!(parsed.bad.len(), 1);
        assert_eq!(parsed.bad[0].0, 4);
        assert!(parsed.bad[0].1.contains("frozen"), "{:?}", parsed.bad);
    }

    #[test]
    fn a_file_of_another_layout_is_refused_by_its_header() {
        let parsed = parse("email,categories\na@x.org,all\n", Foreign::Mailchimp);
        assert!(parsed.rows.is_empty());
        assert!(parsed.bad[0].1.contains("Mailchimp"), "{:?}", parsed.bad);
    }
}
