//! `subscribers import`: CSV rows (`email,categories,frequency`, header row
//! optional, categories `;`-separated or `all`) -> subscribers. The `csv`
//! crate reads the file (RFC 4180 quoting, quoted newlines, a leading UTF-8
//! byte-order mark as Excel's "CSV UTF-8" writes); every row is checked before
//! anything is stored, and every bad row is named by its line.

use std::collections::HashSet;

use super::{parse_categories, parse_frequency};
use crate::mail::address::Email;
use crate::mail::token::random_hex;
use crate::model::{CategorySlug, Consent, Frequency};
use crate::store::NewSubscriber;

/// A row that cannot be imported: its 1-based line number and why.
pub(super) type BadRow = (u64, String);

/// The rows of a file: those that can be imported, and those that cannot.
#[derive(Debug, Default)]
pub(super) struct Parsed {
    /// Rows to import, in file order.
    pub(super) rows: Vec<NewSubscriber>,
    /// The line each of `rows` starts on.
    pub(super) lines: Vec<u64>,
    /// Rows refused, by line.
    pub(super) bad: Vec<BadRow>,
    /// Addresses of `rows`.
    seen: HashSet<String>,
}

impl Parsed {
    /// Keeps `row`, or names its line: bad, or an address seen before in the file.
    pub(super) fn push(&mut self, line: u64, row: Result<NewSubscriber, String>) {
        match row {
            Ok(row) if !self.seen.insert(row.email.clone()) => {
                self.bad
                    .push((line, format!("{} appears twice in the file", row.email)));
            }
            Ok(row) => {
                self.rows.push(row);
                self.lines.push(line);
            }
            Err(why) => self.bad.push((line, why)),
        }
    }

    /// Every row, or every bad row (tests).
    #[cfg(test)]
    fn into_result(self) -> Result<Vec<NewSubscriber>, Vec<BadRow>> {
        if self.bad.is_empty() {
            Ok(self.rows)
        } else {
            Err(self.bad)
        }
    }
}

/// A CSV reader over `bytes`, every row a record (headers are the caller's).
pub(super) fn reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes)
}

/// Every row of a Tidings CSV file (`email,categories,frequency`).
pub(super) fn subscribers(
    bytes: &[u8],
    known: &[CategorySlug],
    confirmed: bool,
    consent: &Consent,
) -> Parsed {
    let mut parsed = Parsed::default();
    for (index, record) in reader(bytes).records().enumerate() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                parsed.bad.push((error_line(&e), plain_csv_error(&e)));
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if index == 0 && cell(&record[0]).eq_ignore_ascii_case("email") {
            continue;
        }
        parsed.push(line, subscriber(&record, known, confirmed, consent));
    }
    parsed
}

/// A field without surrounding spaces or a byte-order mark.
pub(super) fn cell(field: &str) -> &str {
    field.trim_start_matches('\u{feff}').trim()
}

fn subscriber(
    fields: &csv::StringRecord,
    known: &[CategorySlug],
    confirmed: bool,
    consent: &Consent,
) -> Result<NewSubscriber, String> {
    if fields.len() > 3 {
        return Err(format!(
            "{} columns; expected email,categories,frequency",
            fields.len()
        ));
    }
    let email = Email::parse(&fields[0])?;
    let categories = fields.get(1).unwrap_or("");
    let frequency = match fields.get(2).map(str::trim) {
        None | Some("") => Frequency::Weekly,
        Some(f) => parse_frequency(f)?,
    };
    Ok(NewSubscriber {
        email: email.to_string(),
        categories: parse_categories(categories, known, ';')?,
        frequency,
        confirmed,
        token_nonce: random_hex(16).map_err(|e| e.to_string())?,
        consent: consent.clone(),
    })
}

pub(super) fn error_line(error: &csv::Error) -> u64 {
    error.position().map_or(0, csv::Position::line)
}

/// The reader's complaint without its own position (the caller names the line).
pub(super) fn plain_csv_error(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 (save the file as \"CSV UTF-8\")".to_owned(),
        _ => format!("not readable as CSV: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<CategorySlug> {
        ["leaflets", "news", "board-papers"]
            .map(CategorySlug::from_name)
            .to_vec()
    }

    fn consent() -> Consent {
        Consent::import("test.csv".to_owned())
    }

    fn emails(rows: &[NewSubscriber]) -> Vec<&str> {
        rows.iter().map(|r| r.email.as_str()).collect()
    }

    #[test]
    fn header_quotes_and_defaults_are_understood() {
        let text = "email,categories,frequency\r\na@x.org,leaflets;news,daily\n\n\"b@x.org\",\"all\",\nc@X.ORG,Board papers\n";
        let rows = subscribers(text.as_bytes(), &known(), true, &consent())
            .into_result()
            .unwrap();
        assert_eq!(emails(&rows), ["a@x.org", "b@x.org", "c@x.org"]);
        assert_eq!(rows[0].frequency, Frequency::Daily);
        assert_eq!(rows[1].frequency, Frequency::Weekly);
        assert!(rows.iter().all(|r| r.confirmed));
    }

    #[test]
    fn a_file_saved_as_excel_csv_utf8_imports() {
        let text = "\u{feff}Email,Categories,Frequency\r\nann@x.org,\"leaflets;\r\nnews\",weekly\r\nbob@x.org,all,daily\r\n";
        let rows = subscribers(text.as_bytes(), &known(), false, &consent())
            .into_result()
            .unwrap();
        assert_eq!(emails(&rows), ["ann@x.org", "bob@x.org"]);
        assert_eq!(
            rows[0].categories,
            parse_categories("leaflets;news", &known(), ';').unwrap()
        );
    }

    #[test]
    fn every_bad_row_is_named_by_its_line() {
        let text = "a@x.org,news\nnot-an-address,news\nb@x.org,gardening\nc@x.org,news,monthly\nA@X.org,news\nA@x.ORG,news\nd@x.org\n";
        let bad = subscribers(text.as_bytes(), &known(), false, &consent())
            .into_result()
            .unwrap_err();
        let expected = [
            (2, "not an email address"),
            (3, "unknown category"),
            (4, "not weekly or daily"),
            (6, "twice"),
            (7, "no categories"),
        ];
        assert_eq!(bad.len(), expected.len(), "{bad:?}");
        for ((line, message), (want_line, why)) in bad.iter().zip(expected) {
            assert_eq!(*line, want_line, "{message}");
            assert!(message.contains(why), "line {line}: {message}");
        }
    }

    #[test]
    fn a_row_spanning_lines_is_named_by_its_first_line() {
        let text = "a@x.org,news\n\"eve@x.org\r\nBcc: x@y.org\",news\nb@x.org,news\n";
        let bad = subscribers(text.as_bytes(), &known(), false, &consent())
            .into_result()
            .unwrap_err();
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].0, 2);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_refused_by_line() {
        let bytes = b"a@x.org,news\nb@x.org,caf\xe9\n";
        let bad = subscribers(bytes, &known(), false, &consent())
            .into_result()
            .unwrap_err();
        assert_eq!(bad[0].0, 2);
        assert!(bad[0].1.contains("not UTF-8"), "{bad:?}");
    }
}
