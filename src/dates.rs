//! Reading the dates people write on a resource library into `EntryDate`s: whole
//! values as a scraper or seed gives them (`parse_date`), and the first date
//! phrase inside a title (`find_date_in_title`). Day-first (UK) throughout.
//! Turning dates into feed timestamps is left to `model` and the feed builders.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use crate::model::EntryDate;

/// Parse a whole value as a date: ISO (`2020-11-17`, `2020-11-17T10:00:00Z`,
/// `2020-05`), "17 November 2020", "17th Nov 2020", "Aug 14, 2019",
/// "14/08/2019" (also with `.` or `-`), "17/11/20" (a two-digit year, with `/`
/// only), or "May 2020"; `None` for anything else, impossible dates included.
///
/// A datetime gives the calendar day as written, whatever its offset.
pub(crate) fn parse_date(text: &str) -> Option<EntryDate> {
    let text = text.trim();
    if let Some(date) = parse_iso(text) {
        return Some(date);
    }
    let found = scan(text).next()?;
    (found.start == 0 && found.end == text.len())
        .then_some(found.date)
        .flatten()
}

/// The first date phrase in a title: "Board - 17 November 2020" gives that day,
/// "Café launch – May 2020" that month. A bare year or a year range
/// ("2021-2024", "2022/23") is not a date.
pub(crate) fn find_date_in_title(title: &str) -> Option<EntryDate> {
    scan(title).find_map(|found| found.date)
}

/// ISO 8601 forms: a day, a month, or a datetime (the day as written).
fn parse_iso(text: &str) -> Option<EntryDate> {
    if !text.is_ascii() {
        return None;
    }
    match text.len() {
        7 => {
            let (year, month) = text.split_once('-')?;
            if year.len() != 4 || !all_digits(year) || month.len() != 2 || !all_digits(month) {
                return None;
            }
            EntryDate::month(year.parse().ok()?, month.parse().ok()?)
        }
        10 => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .map(EntryDate::Day),
        11.. => parse_iso_datetime(text),
        _ => None,
    }
}

/// `2020-11-17T10:00:00Z`, `…+01:00`, or without offset; `T` or a space.
fn parse_iso_datetime(text: &str) -> Option<EntryDate> {
    let (day, rest) = text.split_at(10);
    if !rest.starts_with(['T', 't', ' ']) {
        return None;
    }
    let normalised = format!("{day}T{}", &rest[1..]);
    if let Ok(at) = DateTime::parse_from_rfc3339(&normalised) {
        // `date_naive` on a fixed-offset time is the local day, as written.
        return Some(EntryDate::Day(at.date_naive()));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(&normalised, format).ok())
        .map(|at| EntryDate::Day(at.date()))
}

/// A date phrase found in a text, by byte range. `date` is `None` when the
/// phrase has the shape of a date but names an impossible one ("31/02/2020"):
/// it is skipped whole rather than read as something shorter.
struct Found {
    start: usize,
    end: usize,
    date: Option<EntryDate>,
}

/// A run of alphanumeric characters, by byte range.
#[derive(Clone, Copy)]
struct Token<'a> {
    text: &'a str,
    start: usize,
    end: usize,
}

/// Every alphanumeric run of `text`: these are the words a date phrase is made of,
/// so "Mayor" is one token and never the month May.
fn tokens(text: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(Token {
                    text: &text[s..i],
                    start: s,
                    end: i,
                });
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(Token {
            text: &text[s..],
            start: s,
            end: text.len(),
        });
    }
    out
}

/// Date phrases in `text`, left to right, none overlapping.
fn scan(text: &str) -> impl Iterator<Item = Found> + '_ {
    let tokens = tokens(text);
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < tokens.len() {
            if let Some((used, found)) = phrase_at(text, &tokens[i..]) {
                i += used;
                return Some(found);
            }
            i += 1;
        }
        None
    })
}

/// The date phrase starting at the first of `tokens`, with how many tokens it uses.
fn phrase_at(text: &str, tokens: &[Token<'_>]) -> Option<(usize, Found)> {
    let found = |used: usize, date: Option<EntryDate>| {
        let found = Found {
            start: tokens[0].start,
            end: tokens[used - 1].end,
            date,
        };
        (used, found)
    };
    if let [a, b, c, ..] = tokens
        && let Some(date) = day_month_year(text, a, b, c)
            .or_else(|| month_day_year(text, a, b, c))
            .or_else(|| numeric(text, a, b, c))
    {
        return Some(found(3, date));
    }
    if let [a, b, ..] = tokens
        && let Some(date) = month_year(text, a, b)
    {
        return Some(found(2, Some(date)));
    }
    None
}

/// "17 November 2020", "17th Nov, 2020".
fn day_month_year(
    text: &str,
    day: &Token,
    month: &Token,
    year: &Token,
) -> Option<Option<EntryDate>> {
    let day_no = day_number(day.text)?;
    let month_no = month_number(month.text)?;
    let year_no = year_number(year.text)?;
    if !is_space(gap(text, day, month)) || !is_month_year_gap(gap(text, month, year)) {
        return None;
    }
    Some(NaiveDate::from_ymd_opt(year_no, month_no, day_no).map(EntryDate::Day))
}

/// "Aug 14, 2019", "August 14th 2019" (month first, as US-style sites write).
fn month_day_year(
    text: &str,
    month: &Token,
    day: &Token,
    year: &Token,
) -> Option<Option<EntryDate>> {
    let month_no = month_number(month.text)?;
    let day_no = day_number(day.text)?;
    let year_no = year_number(year.text)?;
    if !is_month_year_gap(gap(text, month, day)) || !is_month_year_gap(gap(text, day, year)) {
        return None;
    }
    Some(NaiveDate::from_ymd_opt(year_no, month_no, day_no).map(EntryDate::Day))
}

/// "May 2020", "Nov. 2020".
fn month_year(text: &str, month: &Token, year: &Token) -> Option<EntryDate> {
    let month_no = month_number(month.text)?;
    let year_no = year_number(year.text)?;
    if !is_month_year_gap(gap(text, month, year)) {
        return None;
    }
    EntryDate::month(year_no, month_no)
}

/// "14/08/2019", "14.08.2019", "14-08-2019", "14/08/19" (day first), or ISO
/// "2019-08-14": one separator character, the same twice. A two-digit year
/// only with `/`: "1.2.10" is more likely a version than a date. A number run on with the same
/// separator ("1.14.08.2019") is not a date.
fn numeric(text: &str, a: &Token, b: &Token, c: &Token) -> Option<Option<EntryDate>> {
    let sep = gap(text, a, b);
    let single = sep.chars().count() == 1 && matches!(sep, "/" | "." | "-");
    if !single || gap(text, b, c) != sep || !all_digits(b.text) || b.text.len() > 2 {
        return None;
    }
    let before = &text[..a.start];
    let after = &text[c.end..];
    let runs_on = before.ends_with(sep)
        || after
            .strip_prefix(sep)
            .is_some_and(|rest| rest.starts_with(|ch: char| ch.is_ascii_digit()));
    if runs_on {
        return None;
    }
    let month: u32 = b.text.parse().ok()?;
    if a.text.len() <= 2 && all_digits(a.text) {
        let year =
            year_number(c.text).or_else(|| (sep == "/").then(|| two_digit_year(c.text))?)?;
        return Some(
            NaiveDate::from_ymd_opt(year, month, a.text.parse().ok()?).map(EntryDate::Day),
        );
    }
    if sep == "-" && c.text.len() <= 2 && all_digits(c.text) {
        let year = year_number(a.text)?;
        return Some(
            NaiveDate::from_ymd_opt(year, month, c.text.parse().ok()?).map(EntryDate::Day),
        );
    }
    None
}

/// The day of "17" or "17th" (any ordinal suffix, any case); `None` unless
/// it is one or two digits.
fn day_number(token: &str) -> Option<u32> {
    let digits = token
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(token.len());
    let suffix = token[digits..].to_ascii_lowercase();
    let ordinal = matches!(suffix.as_str(), "" | "st" | "nd" | "rd" | "th");
    if !(1..=2).contains(&digits) || !ordinal {
        return None;
    }
    token[..digits].parse().ok()
}

/// 1–12 for an English month name or its abbreviation, any case.
fn month_number(token: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let lower = token.to_lowercase();
    let abbreviation = lower.len() == 3 || lower == "sept";
    let position = MONTHS
        .iter()
        .position(|name| *name == lower || (abbreviation && name.starts_with(&lower)))?;
    u32::try_from(position + 1).ok()
}

/// A four-digit year; shorter numbers are too ambiguous to be one.
fn year_number(token: &str) -> Option<i32> {
    if token.len() == 4 && all_digits(token) {
        token.parse().ok()
    } else {
        None
    }
}

/// The year of a two-digit "20" in "17/11/20": 2000–2068 for 00–68, else
/// 1969–1999 (the POSIX `%y` rule).
fn two_digit_year(token: &str) -> Option<i32> {
    if token.len() != 2 || !all_digits(token) {
        return None;
    }
    let short: i32 = token.parse().ok()?;
    Some(if short <= 68 {
        2000 + short
    } else {
        1900 + short
    })
}

/// The text between two tokens.
fn gap<'t>(text: &'t str, left: &Token, right: &Token) -> &'t str {
    &text[left.end..right.start]
}

/// True for a non-empty run of whitespace.
fn is_space(gap: &str) -> bool {
    !gap.is_empty() && gap.chars().all(char::is_whitespace)
}

/// Between a month and its year: whitespace, after an optional "," or "."
/// ("November, 2020", "Nov. 2020").
fn is_month_year_gap(gap: &str) -> bool {
    is_space(gap.strip_prefix([',', '.']).unwrap_or(gap))
}

/// True when `text` is non-empty ASCII digits.
fn all_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> Option<EntryDate> {
        Some(EntryDate::Day(NaiveDate::from_ymd_opt(y, m, d).unwrap()))
    }

    fn month(y: i32, m: u32) -> Option<EntryDate> {
        Some(EntryDate::month(y, m).unwrap())
    }

    #[test]
    fn iso_days_months_and_datetimes() {
        assert_eq!(parse_date("2020-11-17"), day(2020, 11, 17));
        assert_eq!(parse_date("2020-05"), month(2020, 5));
        assert_eq!(parse_date("2020-11-17T10:00:00Z"), day(2020, 11, 17));
        assert_eq!(
            parse_date("2020-11-17T10:00:00.250+01:00"),
            day(2020, 11, 17)
        );
        assert_eq!(parse_date("2020-11-17 10:00"), day(2020, 11, 17));
        assert_eq!(parse_date("2020-11-17T10:00:00"), day(2020, 11, 17));
    }

    #[test]
    fn a_datetime_keeps_the_day_as_written_whatever_its_offset() {
        // 23:30 at UTC-05:00 is already the 18th in UTC; the page said the 17th.
        assert_eq!(parse_date("2020-11-17T23:30:00-05:00"), day(2020, 11, 17));
        assert_eq!(parse_date("2020-11-17T00:30:00+09:00"), day(2020, 11, 17));
    }

    #[test]
    fn written_out_days_in_any_case_and_with_ordinals() {
        assert_eq!(parse_date("17 November 2020"), day(2020, 11, 17));
        assert_eq!(parse_date("17th November 2020"), day(2020, 11, 17));
        assert_eq!(parse_date("1st May 2020"), day(2020, 5, 1));
        assert_eq!(parse_date("17 Nov 2020"), day(2020, 11, 17));
        assert_eq!(parse_date("17 NOVEMBER 2020"), day(2020, 11, 17));
        assert_eq!(parse_date("17 november, 2020"), day(2020, 11, 17));
        assert_eq!(parse_date("3 Sept 2021"), day(2021, 9, 3));
        assert_eq!(parse_date("  \t17 November 2020\n"), day(2020, 11, 17));
    }

    #[test]
    fn numeric_dates_are_day_first() {
        assert_eq!(parse_date("14/08/2019"), day(2019, 8, 14));
        assert_eq!(parse_date("14.08.2019"), day(2019, 8, 14));
        assert_eq!(parse_date("14-08-2019"), day(2019, 8, 14));
        assert_eq!(parse_date("4/8/2019"), day(2019, 8, 4));
        // 05/06 is the 5th of June in the UK, not May 6th.
        assert_eq!(parse_date("05/06/2020"), day(2020, 6, 5));
    }

    #[test]
    fn issue_13_month_first_days_and_two_digit_years() {
        assert_eq!(parse_date("Aug 14, 2019"), day(2019, 8, 14));
        assert_eq!(parse_date("August 14 2019"), day(2019, 8, 14));
        assert_eq!(parse_date("Aug. 14th, 2019"), day(2019, 8, 14));
        assert_eq!(parse_date("14 Aug 2019"), day(2019, 8, 14));
        assert_eq!(parse_date("Feb 30, 2020"), None);
        assert_eq!(parse_date("17/11/20"), day(2020, 11, 17));
        assert_eq!(parse_date("1/2/05"), day(2005, 2, 1));
        assert_eq!(parse_date("31/12/99"), day(1999, 12, 31));
        assert_eq!(parse_date("31/02/20"), None);
        assert_eq!(
            find_date_in_title("Board minutes (Aug 14, 2019)"),
            day(2019, 8, 14)
        );
        assert_eq!(find_date_in_title("Minutes 17/11/20"), day(2020, 11, 17));
        // Versions and scores stay what they are.
        assert_eq!(find_date_in_title("Release 1.2.10"), None);
        assert_eq!(find_date_in_title("Won 3-1 in May"), None);
    }

    #[test]
    fn months_alone() {
        assert_eq!(parse_date("May 2020"), month(2020, 5));
        assert_eq!(parse_date("Nov 2020"), month(2020, 11));
        assert_eq!(parse_date("nov. 2020"), month(2020, 11));
        assert_eq!(parse_date("DECEMBER 1999"), month(1999, 12));
    }

    #[test]
    fn impossible_dates_are_none() {
        for text in [
            "31/02/2020",
            "32 May 2020",
            "29 February 2021",
            "2020-13",
            "2020-02-30",
            "2020-02-30T10:00:00Z",
            "00/01/2020",
            "14/13/2019",
        ] {
            assert_eq!(parse_date(text), None, "{text:?}");
        }
        assert_eq!(parse_date("29 February 2020"), day(2020, 2, 29));
    }

    #[test]
    fn anything_but_a_whole_date_is_none() {
        for text in [
            "",
            "   ",
            "May",
            "2020",
            "2021-2024",
            "2022/23",
            "Mayor 2020",
            "17 November",
            "14.08.19",
            "14-08-19",
            "14/08/1",
            "14/08/199",
            "Board 17 November 2020",
            "17 November 2020 board",
            "2020-11-17x",
            "2020-11-17Tnoon",
            "17November 2020",
            "17 Novembre 2020",
            "17thNovember 2020",
            "17xx November 2020",
        ] {
            assert_eq!(parse_date(text), None, "{text:?}");
        }
    }

    #[test]
    fn dates_in_the_reference_titles() {
        assert_eq!(
            find_date_in_title("Health and Wellbeing Board - 17 November 2020"),
            day(2020, 11, 17)
        );
        assert_eq!(
            find_date_in_title(
                "Hestia & ELFT launch the Together Café Service in Tower Hamlets – May 2020"
            ),
            month(2020, 5)
        );
        assert_eq!(
            find_date_in_title("Tower Hamlets Urgent Treatment Centre - Opening 14 August 2019"),
            day(2019, 8, 14)
        );
        assert_eq!(
            find_date_in_title("Health and Social Care Workforce Strategy 2021-2024"),
            None
        );
        assert_eq!(
            find_date_in_title("What Would You Do? - HealthWatch Tower Hamlets Part 2"),
            None
        );
    }

    #[test]
    fn years_and_year_ranges_are_not_dates() {
        for title in [
            "Annual Report 2022/23",
            "Annual Report 2011-12",
            "Plan 2019-2020",
            "Strategy 2021–2024",
            "Report 2020",
            "May",
            "What you may need",
            "Covid-19 THT Partnership success stories",
        ] {
            assert_eq!(find_date_in_title(title), None, "{title:?}");
        }
    }

    #[test]
    fn month_names_need_whole_words() {
        assert_eq!(find_date_in_title("Mayor 2020 address"), None);
        assert_eq!(find_date_in_title("Summary 2020"), None);
        assert_eq!(find_date_in_title("Marching 2020"), None);
        assert_eq!(find_date_in_title("Ma 2020"), None);
        assert_eq!(
            find_date_in_title("Mayor's speech, May 2020"),
            month(2020, 5)
        );
    }

    #[test]
    fn the_first_date_phrase_wins() {
        assert_eq!(
            find_date_in_title("Minutes of May 2020, approved 3rd June 2020"),
            month(2020, 5)
        );
        assert_eq!(
            find_date_in_title("Agenda 14/08/2019 (revised 20/08/2019)"),
            day(2019, 8, 14)
        );
        assert_eq!(find_date_in_title("Board (2019-08-14)"), day(2019, 8, 14));
        assert_eq!(
            find_date_in_title("Board papers, 17th nov 2020."),
            day(2020, 11, 17)
        );
        assert_eq!(find_date_in_title("Opening 14.08.2019."), day(2019, 8, 14));
    }

    #[test]
    fn an_impossible_date_in_a_title_is_skipped_whole() {
        // "32 May 2020" is a typo for some day in May, not a statement about May.
        assert_eq!(find_date_in_title("Board - 32 May 2020"), None);
        assert_eq!(find_date_in_title("Board - 31/02/2020"), None);
        assert_eq!(
            find_date_in_title("Board - 31/02/2020, moved to 2 March 2020"),
            day(2020, 3, 2)
        );
    }

    #[test]
    fn numbers_run_on_with_the_separator_are_not_dates() {
        assert_eq!(find_date_in_title("Version 1.14.08.2019"), None);
        assert_eq!(find_date_in_title("Ref 14/08/2019/7"), None);
    }

    #[test]
    fn long_and_odd_titles_do_not_panic() {
        let long = "word ".repeat(10_000) + "17 November 2020";
        assert_eq!(find_date_in_title(&long), day(2020, 11, 17));
        for odd in [
            "é/é/é",
            "1/1/1",
            "٣/٣/٢٠٢٠",
            "17 ٢٠٢٠",
            "—",
            "2020-11-17T",
            "2020-11-1é",
        ] {
            let _ = find_date_in_title(odd);
            let _ = parse_date(odd);
        }
        assert_eq!(parse_date("٣/٣/٢٠٢٠"), None);
    }
}
