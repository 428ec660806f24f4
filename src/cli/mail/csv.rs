//! `subscribers import`: CSV rows (`email,categories,frequency`, header row
//! optional, categories `;`-separated or `all`) -> subscribers, checking every
//! row before anything is stored and naming the first bad line.

use std::collections::HashSet;

use super::{parse_categories, parse_frequency};
use crate::mail::address::Email;
use crate::mail::token::random_hex;
use crate::model::CategorySlug;
use crate::store::{Frequency, NewSubscriber};

/// Every row as a subscriber, or the first bad row's 1-based line number and why.
pub(super) fn subscribers(
    text: &str,
    known: &[CategorySlug],
    confirmed: bool,
) -> Result<Vec<NewSubscriber>, (usize, String)> {
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let fields = fields(line).map_err(|why| (number, why))?;
        if fields.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if rows.is_empty() && seen.is_empty() && fields[0].trim().eq_ignore_ascii_case("email") {
            continue;
        }
        let row = subscriber(&fields, known, confirmed).map_err(|why| (number, why))?;
        if !seen.insert(row.email.clone()) {
            return Err((number, format!("{} appears twice in the file", row.email)));
        }
        rows.push(row);
    }
    Ok(rows)
}

fn subscriber(
    fields: &[String],
    known: &[CategorySlug],
    confirmed: bool,
) -> Result<NewSubscriber, String> {
    if fields.len() > 3 {
        return Err(format!(
            "{} columns; expected email,categories,frequency",
            fields.len()
        ));
    }
    let email = Email::parse(&fields[0])?;
    let categories = fields.get(1).map_or("", String::as_str);
    let frequency = match fields.get(2).map(|f| f.trim()) {
        None | Some("") => Frequency::Weekly,
        Some(f) => parse_frequency(f)?,
    };
    Ok(NewSubscriber {
        email: email.to_string(),
        categories: parse_categories(categories, known, ';')?,
        frequency,
        confirmed,
        token_nonce: random_hex(16).map_err(|e| e.to_string())?,
    })
}

/// Splits one CSV line (RFC 4180 quoting: `"a,b"`, `""` for a quote).
fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        let field = fields.last_mut().expect("fields starts with one element");
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.trim().is_empty() => quoted = true,
            (',', false) => fields.push(String::new()),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".to_owned());
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<CategorySlug> {
        ["leaflets", "news", "board-papers"]
            .map(CategorySlug::from_name)
            .to_vec()
    }

    #[test]
    fn header_quotes_and_defaults_are_understood() {
        let text = "email,categories,frequency\r\na@x.org,leaflets;news,daily\n\n\"b@x.org\",\"all\",\nc@X.ORG,Board papers\n";
        let rows = subscribers(text, &known(), true).unwrap();
        let emails: Vec<&str> = rows.iter().map(|r| r.email.as_str()).collect();
        assert_eq!(emails, ["a@x.org", "b@x.org", "c@x.org"]);
        assert_eq!(rows[0].frequency, Frequency::Daily);
        assert_eq!(rows[1].frequency, Frequency::Weekly);
        assert!(rows.iter().all(|r| r.confirmed));
    }

    #[test]
    fn the_first_bad_row_is_named_by_its_line() {
        let cases = [
            (
                "a@x.org,news\nnot-an-address,news\n",
                2,
                "not an email address",
            ),
            ("a@x.org,news\nb@x.org,gardening\n", 2, "unknown category"),
            ("a@x.org,news,monthly\n", 1, "not weekly or daily"),
            ("a@x.org,news\nA@X.org,news\nA@x.ORG,news\n", 3, "twice"),
            ("a@x.org,\"news\n", 1, "not closed"),
            ("a@x.org\n", 1, "no categories"),
        ];
        for (text, line, why) in cases {
            let (at, message) = subscribers(text, &known(), false).unwrap_err();
            assert_eq!(at, line, "{text:?}: {message}");
            assert!(message.contains(why), "{text:?}: {message}");
        }
    }
}
