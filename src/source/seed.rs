//! Seed text files -> entries: a library page as a person would copy it (see
//! "Seed files" in the README). `parse_seed_text` is pure over `&str`;
//! `read_seed_source` reads a file or a folder of `*.txt` files into a `Snapshot`.
//! Categories are left to `categorize`, identity and fingerprints to `reconcile`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::dates::find_date_in_title;
use crate::model::{Block, Entry, Snapshot, Summary};
use crate::source::SourceError;

/// Why one seed text yielded no entries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    /// The bytes are not UTF-8; `line` is 1-based, `offset` counts bytes from the start.
    #[error(
        "not UTF-8: invalid byte at line {line} (byte offset {offset}); save the file as UTF-8"
    )]
    NotUtf8 {
        /// Line of the first invalid byte.
        line: usize,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// Nothing in the text is an entry.
    #[error(
        "no entries: expected the page title, an intro, the page title again, \
         then entries separated by two blank lines"
    )]
    NoEntries,
}

/// Decode a seed file's bytes (UTF-8, with or without a BOM) and parse them.
pub(crate) fn parse_seed_bytes(bytes: &[u8]) -> Result<Vec<Entry>, SeedError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_seed_text(text),
        Err(err) => {
            let offset = err.valid_up_to();
            let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
            Err(SeedError::NotUtf8 { line, offset })
        }
    }
}

/// Parse the text of a copied library page into its entries, in page order.
///
/// Entries are separated by two or more blank lines, paragraphs by one; lines
/// starting with `•` are list items. A date in a title becomes the entry's date.
/// Line endings, a BOM, trailing and whitespace-only lines make no difference.
pub(crate) fn parse_seed_text(text: &str) -> Result<Vec<Entry>, SeedError> {
    let text = clean(text);
    let chunks = chunks(&text);
    let groups = groups(&chunks);
    let skip = header_chunks(&chunks, groups.first().copied().unwrap_or_default());
    let entries: Vec<Entry> = groups
        .iter()
        .filter_map(|&(start, end)| {
            let start = start.max(skip);
            (start < end).then(|| entry(&chunks[start..end]))
        })
        .collect();
    if entries.is_empty() {
        return Err(SeedError::NoEntries);
    }
    Ok(entries)
}

/// Read a seed source: one file, or every `*.txt` file directly inside a folder
/// (in name order; hidden files skipped, the extension in any case).
///
/// Files that fail become `warnings` of a `partial` snapshot; when none succeeds,
/// or there is nothing to read, the error names the path.
pub fn read_seed_source(source_name: &str, path: &Path) -> Result<Snapshot, SourceError> {
    let meta = fs::metadata(path).map_err(|err| io_error(path, &err))?;
    let files = if meta.is_dir() {
        seed_files(path)?
    } else if meta.is_file() {
        vec![path.to_path_buf()]
    } else {
        return Err(SourceError::Io {
            path: path.to_path_buf(),
            reason: "not a file or a folder".into(),
        });
    };
    let mut snapshot = Snapshot {
        source: source_name.to_owned(),
        entries: Vec::new(),
        warnings: Vec::new(),
        partial: false,
    };
    let mut failures = Vec::new();
    for file in &files {
        match read_seed_file(file) {
            Ok(entries) => snapshot.entries.extend(entries),
            Err(err) => failures.push(err),
        }
    }
    if failures.len() == files.len() {
        return Err(all_failed(path, failures));
    }
    snapshot.partial = !failures.is_empty();
    snapshot.warnings = failures.iter().map(warning).collect();
    Ok(snapshot)
}

/// The `*.txt` files directly inside `dir`, sorted by name.
fn seed_files(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let listing = fs::read_dir(dir).map_err(|err| io_error(dir, &err))?;
    let mut files = Vec::new();
    for item in listing {
        let item = item.map_err(|err| io_error(dir, &err))?;
        let name = item.file_name();
        let name = name.to_string_lossy();
        let is_txt = Path::new(name.as_ref())
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("txt"));
        // Following symlinks: a linked seed file counts; a folder named `x.txt` does not.
        if is_txt && !name.starts_with('.') && item.path().is_file() {
            files.push(item.path());
        }
    }
    if files.is_empty() {
        return Err(SourceError::Parse {
            location: dir.display().to_string(),
            reason: "no *.txt seed files in this folder".into(),
        });
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// One file's entries, or its problem named by path (and line).
fn read_seed_file(path: &Path) -> Result<Vec<Entry>, SourceError> {
    let bytes = fs::read(path).map_err(|err| io_error(path, &err))?;
    parse_seed_bytes(&bytes).map_err(|err| match err {
        SeedError::NotUtf8 { line, offset } => SourceError::Parse {
            location: format!("{}:{line}", path.display()),
            reason: format!(
                "not UTF-8: invalid byte at byte offset {offset}; save the file as UTF-8"
            ),
        },
        SeedError::NoEntries => SourceError::Parse {
            location: path.display().to_string(),
            reason: err.to_string(),
        },
    })
}

/// The error when no file of the source could be used.
fn all_failed(path: &Path, mut failures: Vec<SourceError>) -> SourceError {
    if failures.len() == 1
        && let Some(only) = failures.pop()
    {
        return only;
    }
    let problems: Vec<String> = failures.iter().map(warning).collect();
    SourceError::Parse {
        location: path.display().to_string(),
        reason: format!("no seed file could be used: {}", problems.join("; ")),
    }
}

/// A file's problem as one line starting with its path.
fn warning(err: &SourceError) -> String {
    match err {
        SourceError::Io { path, reason } => format!("{}: could not read: {reason}", path.display()),
        other => other.to_string(),
    }
}

/// An I/O failure on `path`.
fn io_error(path: &Path, err: &std::io::Error) -> SourceError {
    SourceError::Io {
        path: path.to_path_buf(),
        reason: err.to_string(),
    }
}

/// The text with line endings as `\n`, and without byte order marks or control
/// characters other than newline and tab (they cannot appear in XML 1.0).
/// Whitespace controls (form feed, vertical tab, NEL) become a space. Line numbers
/// are kept: `\r\n` and a lone `\r` are each one line break.
fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push('\n');
            }
            '\n' | '\t' => out.push(c),
            '\u{feff}' => {}
            c if c.is_control() && c.is_whitespace() => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Consecutive non-blank lines (trimmed), with how many blank lines came before.
struct Chunk<'t> {
    blank_before: usize,
    lines: Vec<&'t str>,
}

/// Split cleaned text into chunks; a line of only whitespace is blank.
fn chunks(text: &str) -> Vec<Chunk<'_>> {
    let mut out: Vec<Chunk<'_>> = Vec::new();
    let mut blanks = 0;
    let mut in_chunk = false;
    for line in text.split('\n').map(str::trim) {
        if line.is_empty() {
            blanks += 1;
            in_chunk = false;
        } else if let (true, Some(last)) = (in_chunk, out.last_mut()) {
            last.lines.push(line);
        } else {
            out.push(Chunk {
                blank_before: blanks,
                lines: vec![line],
            });
            blanks = 0;
            in_chunk = true;
        }
    }
    out
}

/// Chunk index ranges `[start, end)` of the entry groups: a new group starts
/// after two or more blank lines.
fn groups(chunks: &[Chunk<'_>]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, chunk) in chunks.iter().enumerate().skip(1) {
        if chunk.blank_before >= 2 {
            out.push((start, i));
            start = i;
        }
    }
    if start < chunks.len() {
        out.push((start, chunks.len()));
    }
    out
}

/// How many leading chunks are the page header rather than entries.
///
/// The rule: the file's first line is the page heading when it comes back as
/// a line alone, compared ignoring case and runs of whitespace, in the first
/// group (before any two blank lines) or as the first chunk after it (an intro
/// followed by too many blank lines). Everything up to and including that
/// repetition is the header ("Resource Library", intro, "Resource Library").
/// The search stops there so that a title repeated further down never swallows
/// the entries before it. Without a repetition there is no header and every
/// group is an entry: a page title shown as an entry is visible and easy to fix,
/// a real entry silently dropped is not. The one exception is a file of a
/// single line: a heading whose page was not copied, so no entries.
fn header_chunks(chunks: &[Chunk<'_>], first_group: (usize, usize)) -> usize {
    let Some(heading) = chunks.first().and_then(|c| c.lines.first()) else {
        return 0;
    };
    if chunks.len() == 1 && chunks[0].lines.len() == 1 {
        return 1;
    }
    let heading = comparable(heading);
    let last = first_group.1.min(chunks.len() - 1);
    (1..=last)
        .find(|&i| chunks[i].lines.len() == 1 && comparable(chunks[i].lines[0]) == heading)
        .map_or(0, |i| i + 1)
}

/// A line lower-cased with whitespace runs as one space, for comparing headings.
fn comparable(line: &str) -> String {
    collapse(&line.to_lowercase())
}

/// Runs of whitespace as one space, trimmed.
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One entry from its chunks: the first line is the title, the rest its summary.
fn entry(chunks: &[Chunk<'_>]) -> Entry {
    let mut lines = chunks.iter().map(|c| c.lines.as_slice());
    let first = lines.next().unwrap_or_default();
    let (title, first_rest) = first.split_first().map_or(("", first), |(t, r)| (*t, r));
    let mut blocks = Vec::new();
    push_blocks(first_rest, &mut blocks);
    for paragraph in lines {
        push_blocks(paragraph, &mut blocks);
    }
    let mut entry = Entry::titled(title);
    entry.date = find_date_in_title(title);
    entry.summary = Summary { blocks };
    entry
}

/// Append the blocks of one chunk: runs of `•` lines are a list, runs of other
/// lines a paragraph joined with single spaces. A plain line after a list starts
/// a new paragraph (a copied list item is one line, never wrapped).
fn push_blocks(lines: &[&str], blocks: &mut Vec<Block>) {
    let mut paragraph: Vec<&str> = Vec::new();
    let mut items: Vec<String> = Vec::new();
    for line in lines {
        if let Some(item) = line.strip_prefix('•') {
            flush_paragraph(&mut paragraph, blocks);
            let item = collapse(item);
            if !item.is_empty() {
                items.push(item);
            }
        } else {
            flush_list(&mut items, blocks);
            paragraph.push(line);
        }
    }
    flush_paragraph(&mut paragraph, blocks);
    flush_list(&mut items, blocks);
}

/// Move pending paragraph lines into `blocks` as one paragraph.
fn flush_paragraph(lines: &mut Vec<&str>, blocks: &mut Vec<Block>) {
    if !lines.is_empty() {
        blocks.push(Block::Paragraph(collapse(&lines.join(" "))));
        lines.clear();
    }
}

/// Move pending list items into `blocks` as one list.
fn flush_list(items: &mut Vec<String>, blocks: &mut Vec<Block>) {
    if !items.is_empty() {
        blocks.push(Block::List(std::mem::take(items)));
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use chrono::NaiveDate;

    use super::*;
    use crate::model::EntryDate;

    const REFERENCE: &str = include_str!("../../tests/fixtures/seeds/resource-library-page-4.txt");

    fn reference() -> Vec<Entry> {
        parse_seed_text(REFERENCE).expect("the reference seed parses")
    }

    fn titles(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.title.as_str()).collect()
    }

    fn paragraph(text: &str) -> Block {
        Block::Paragraph(text.to_owned())
    }

    #[test]
    fn reference_page_has_its_nine_entries_in_order() {
        assert_eq!(
            titles(&reference()),
            [
                "OCEAN - Offering Compassionate & Emotional Support for Those Living Through Birth Trauma and Loss",
                "Tower Hamlets Together: Health and Social Care Workforce Strategy 2021-2024",
                "Tower Hamlets Together - Shared Outcomes Framework",
                "Let\u{2019}s keep young people and children safe and healthy",
                "Health and Wellbeing Board - 17 November 2020",
                "Hestia & ELFT launch the Together Caf\u{e9} Service in Tower Hamlets \u{2013} May 2020",
                "Covid-19 THT Partnership success stories and case studies",
                "What Would You Do? - HealthWatch Tower Hamlets Part 2",
                "Tower Hamlets Urgent Treatment Centre - Opening 14 August 2019",
            ]
        );
    }

    #[test]
    fn page_heading_and_intro_are_not_entries() {
        for entry in reference() {
            assert_ne!(entry.title, "Resource Library");
            assert!(!entry.summary.plain_text().contains("Explore our extensive"));
        }
    }

    #[test]
    fn summaries_keep_paragraphs() {
        let entries = reference();
        assert_eq!(
            entries[0].summary.blocks,
            [paragraph("Download the FULL Q&A for Health Professionals")]
        );
        let last = &entries[8].summary.blocks;
        assert_eq!(last.len(), 2);
        assert!(matches!(&last[0], Block::Paragraph(p)
            if p.starts_with("When it comes to accessing medical care that\u{2019}s urgent")
            && p.ends_with("the most appropriate service.")));
        assert!(matches!(&last[1], Block::Paragraph(p)
            if p.starts_with("This may now be an appointment")
            && p.ends_with("DOWNLOAD the official leaflet now.")));
    }

    #[test]
    fn a_paragraph_line_followed_by_bullets_is_a_paragraph_then_a_list() {
        let board = &reference()[4];
        assert_eq!(board.summary.blocks.len(), 2);
        assert_eq!(
            board.summary.blocks[0],
            paragraph("Independent Chair's Progress Report on Tower Hamlets Together")
        );
        let Block::List(items) = &board.summary.blocks[1] else {
            panic!("second block is not a list: {:?}", board.summary.blocks[1]);
        };
        assert_eq!(items.len(), 6);
        assert_eq!(
            items[0],
            "Our mission, vision, objectives and priorities for action"
        );
        assert_eq!(items[5], "Citizen voice and service user engagement");
    }

    #[test]
    fn dates_come_from_titles_and_nothing_else_is_known() {
        let entries = reference();
        let dates: Vec<Option<String>> = entries
            .iter()
            .map(|e| e.date.map(|d| d.to_string()))
            .collect();
        let expected: Vec<Option<String>> = [
            None,
            None,
            None,
            None,
            Some("2020-11-17"),
            Some("2020-05"),
            None,
            None,
            Some("2019-08-14"),
        ]
        .iter()
        .map(|d| d.map(str::to_owned))
        .collect();
        assert_eq!(dates, expected);
        assert!(
            entries
                .iter()
                .all(|e| e.link.is_none() && e.download.is_none() && e.category.is_none())
        );
    }

    /// The reference as a careless editor or another OS would save it.
    fn mangled(line_end: &str) -> String {
        let mut out = String::from("\u{feff}");
        let mut blank_run = 0;
        for line in REFERENCE.lines() {
            if line.is_empty() {
                blank_run += 1;
                // Whitespace-only blank lines, and a third blank between entries.
                out.push_str(" \t ");
                out.push_str(line_end);
                if blank_run == 2 {
                    out.push_str(line_end);
                }
            } else {
                blank_run = 0;
                out.push_str(line);
                out.push_str(" \t  ");
                out.push_str(line_end);
            }
        }
        out
    }

    #[test]
    fn bom_line_endings_and_trailing_whitespace_make_no_difference() {
        let clean = reference();
        for line_end in ["\r\n", "\r", "\n"] {
            let text = mangled(line_end);
            assert_eq!(parse_seed_text(&text).as_ref(), Ok(&clean), "{line_end:?}");
        }
        // Mixed endings; a lone CR never directly before an empty line, where
        // "\r" + "\n" would be one CRLF break.
        let lines: Vec<&str> = REFERENCE.lines().collect();
        let mixed: String = lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                let next_is_blank = lines.get(i + 1).is_some_and(|l| l.is_empty());
                let end = match i % 3 {
                    0 => "\r\n",
                    1 if !next_is_blank => "\r",
                    _ => "\n",
                };
                format!("{line}{end}")
            })
            .collect();
        let lone_crs = mixed.matches('\r').count() - mixed.matches("\r\n").count();
        assert!(
            lone_crs > 0 && mixed.contains("\r\n"),
            "the test mixes endings"
        );
        assert_eq!(parse_seed_text(&mixed), Ok(clean));
    }

    #[test]
    fn control_characters_are_stripped() {
        let dirty = REFERENCE
            .replace("OCEAN", "OC\u{0}EAN\u{7}")
            .replace("Download the FULL", "Download\u{1b} the\u{9b} FULL\u{7f}")
            .replace("Health and Wellbeing", "Health\u{c}and Wellbeing");
        let entries = parse_seed_text(&dirty).expect("parses");
        assert!(entries[0].title.starts_with("OCEAN - Offering"));
        assert_eq!(
            entries[0].summary.blocks,
            [paragraph("Download the FULL Q&A for Health Professionals")]
        );
        // A form feed is whitespace: the words stay apart.
        assert_eq!(
            entries[4].title,
            "Health and Wellbeing Board - 17 November 2020"
        );
        let all: String = entries
            .iter()
            .map(|e| format!("{}{}", e.title, e.summary.plain_text()))
            .collect();
        assert!(!all.chars().any(|c| c.is_control() && c != '\n'));
    }

    #[test]
    fn paragraph_lines_are_joined_with_one_space() {
        let text = "First title\nwrapped  first\tline\n  second line  \n\nNext paragraph\n\n\nSecond title";
        let entries = parse_seed_text(text).expect("parses");
        assert_eq!(titles(&entries), ["First title", "Second title"]);
        assert_eq!(
            entries[0].summary.blocks,
            [
                paragraph("wrapped first line second line"),
                paragraph("Next paragraph")
            ]
        );
        assert!(entries[1].summary.is_empty());
    }

    #[test]
    fn lists_end_at_a_plain_line_or_blank_line() {
        let text = "Title\n\nIntro\n• one\n•two\n  •   three  \n•\nAfter the list\n\n• alone";
        let entries = parse_seed_text(text).expect("parses");
        let list = |items: &[&str]| Block::List(items.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            entries[0].summary.blocks,
            [
                paragraph("Intro"),
                list(&["one", "two", "three"]),
                paragraph("After the list"),
                list(&["alone"]),
            ]
        );
    }

    #[test]
    fn without_a_repeated_heading_every_group_is_an_entry() {
        let text = "First entry\n\nIts summary\n\n\nSecond entry\n\nAnother summary\n";
        let entries = parse_seed_text(text).expect("parses");
        assert_eq!(titles(&entries), ["First entry", "Second entry"]);

        // A heading and intro without the repetition cannot be told from an entry.
        let text = "Resource Library\n\nExplore our library.\n\n\nOCEAN\n\nQ&A";
        assert_eq!(
            titles(&parse_seed_text(text).expect("parses")),
            ["Resource Library", "OCEAN"]
        );
    }

    #[test]
    fn the_heading_may_come_back_after_too_many_blank_lines() {
        let text =
            "Resource Library\n\nExplore.\n\n\nresource  library\n\nOCEAN\n\nQ&A\n\n\nSecond";
        let entries = parse_seed_text(text).expect("parses");
        assert_eq!(titles(&entries), ["OCEAN", "Second"]);
        assert_eq!(entries[0].summary.blocks, [paragraph("Q&A")]);
    }

    #[test]
    fn a_title_repeated_further_down_does_not_hide_entries() {
        let text = "Minutes\n\nJanuary\n\n\nAgenda\n\nFebruary\n\n\nMinutes\n\nMarch";
        let entries = parse_seed_text(text).expect("parses");
        assert_eq!(titles(&entries), ["Minutes", "Agenda", "Minutes"]);
    }

    #[test]
    fn a_title_with_its_summary_on_the_next_line() {
        let text = "Resource Library\n\nResource Library\n\nTitle\nSummary straight after";
        let entries = parse_seed_text(text).expect("parses");
        assert_eq!(titles(&entries), ["Title"]);
        assert_eq!(
            entries[0].summary.blocks,
            [paragraph("Summary straight after")]
        );
    }

    #[test]
    fn texts_without_entries_are_errors() {
        for text in [
            "",
            "\u{feff}",
            " \n\t\n\r\n",
            "\u{0}\u{7}\n\u{1b}",
            "Resource Library",
            "Resource Library\n\n\n",
            "Resource Library\n\nResource Library\n",
            "Resource Library\n\nExplore our library.\n\nResource Library\n\n\n",
        ] {
            assert_eq!(parse_seed_text(text), Err(SeedError::NoEntries), "{text:?}");
        }
    }

    #[test]
    fn non_utf8_bytes_are_located() {
        let bytes = b"Resource Library\n\nResource Library\n\nThe Together Caf\xe9\n";
        assert_eq!(
            parse_seed_bytes(bytes),
            Err(SeedError::NotUtf8 {
                line: 5,
                offset: 52
            })
        );
        let message = SeedError::NotUtf8 {
            line: 5,
            offset: 52,
        }
        .to_string();
        assert!(
            message.contains("line 5") && message.contains("52"),
            "{message}"
        );
        assert_eq!(
            parse_seed_bytes(REFERENCE.as_bytes()),
            Ok(reference()),
            "valid UTF-8 parses as text"
        );
    }

    #[test]
    fn a_very_long_title_is_kept_whole() {
        let title = "A".repeat(10_000);
        let text = format!("Resource Library\n\nResource Library\n\n{title}\n\nSummary");
        let entries = parse_seed_text(&text).expect("parses");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].title.len(), 10_000);
    }

    #[test]
    fn five_megabytes_of_entries_parse_in_linear_time() {
        let mut text = String::from("Resource Library\n\nIntro.\n\nResource Library\n\n");
        let mut count = 0;
        while text.len() < 5_000_000 {
            count += 1;
            text.push_str(&format!(
                "Entry {count} - 17 November 2020\n\nA paragraph about entry {count}.\nMore words.\n• an item\n\n\n"
            ));
        }
        let started = Instant::now();
        let entries = parse_seed_text(&text).expect("parses");
        assert_eq!(entries.len(), count);
        assert_eq!(
            entries[count - 1].title,
            format!("Entry {count} - 17 November 2020")
        );
        // Quadratic work on 5 MB would take hours; linear takes well under a second.
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, bytes).expect("write fixture");
        path
    }

    const SMALL: &str = "Library\n\nLibrary\n\nFirst in b\n\n\nSecond in b - May 2020";

    #[test]
    fn a_folder_gives_every_txt_file_in_name_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        write(dir.path(), "b.txt", SMALL.as_bytes());
        write(dir.path(), "a.TXT", REFERENCE.as_bytes());
        write(dir.path(), "notes.md", b"Not a seed\n\nNot read");
        write(dir.path(), ".hidden.txt", b"Hidden\n\nNot read");
        fs::create_dir(dir.path().join("sub.txt")).expect("mkdir");
        let snapshot = read_seed_source("seeds", dir.path()).expect("reads");
        assert_eq!(snapshot.source, "seeds");
        assert_eq!(snapshot.entries.len(), 11);
        assert!(snapshot.entries[0].title.starts_with("OCEAN"));
        assert_eq!(snapshot.entries[9].title, "First in b");
        assert_eq!(snapshot.entries[10].date, EntryDate::month(2020, 5));
        assert!(!snapshot.partial);
        assert!(snapshot.warnings.is_empty());
    }

    #[test]
    fn one_file_can_be_the_whole_source() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write(dir.path(), "page.text", REFERENCE.as_bytes());
        let snapshot = read_seed_source("seeds", &path).expect("reads");
        assert_eq!(snapshot.entries, reference());
        let first_day = NaiveDate::from_ymd_opt(2019, 8, 14).expect("valid");
        assert_eq!(snapshot.entries[8].date, Some(EntryDate::Day(first_day)));
    }

    #[test]
    fn a_bad_file_makes_a_partial_snapshot_with_a_warning() {
        let dir = tempfile::tempdir().expect("temp dir");
        write(dir.path(), "a.txt", b"Library\n\nLibrary\n\nCaf\xe9 news\n");
        write(dir.path(), "b.txt", SMALL.as_bytes());
        write(dir.path(), "c.txt", b"");
        let snapshot = read_seed_source("seeds", dir.path()).expect("reads");
        assert_eq!(
            titles(&snapshot.entries),
            ["First in b", "Second in b - May 2020"]
        );
        assert!(snapshot.partial);
        assert_eq!(snapshot.warnings.len(), 2);
        let a = dir.path().join("a.txt").display().to_string();
        let c = dir.path().join("c.txt").display().to_string();
        assert!(
            snapshot.warnings[0].starts_with(&format!("{a}:5:")),
            "{:?}",
            snapshot.warnings
        );
        assert!(
            snapshot.warnings[0].contains("offset 21"),
            "{:?}",
            snapshot.warnings
        );
        assert!(
            snapshot.warnings[1].starts_with(&format!("{c}:")),
            "{:?}",
            snapshot.warnings
        );
        assert!(
            snapshot.warnings[1].contains("no entries"),
            "{:?}",
            snapshot.warnings
        );
    }

    #[test]
    fn a_non_utf8_file_alone_is_an_error_naming_file_and_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write(dir.path(), "cafe.txt", b"Caf\xe9\n");
        let err = read_seed_source("seeds", &path)
            .expect_err("not UTF-8")
            .to_string();
        assert!(err.starts_with(&format!("{}:1:", path.display())), "{err}");
        assert!(err.contains("UTF-8") && err.contains("offset 3"), "{err}");
    }

    #[test]
    fn nothing_usable_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let shown = dir.path().display().to_string();

        let err = read_seed_source("seeds", dir.path()).expect_err("empty folder");
        assert!(
            err.to_string().contains(&shown) && err.to_string().contains("*.txt"),
            "{err}"
        );

        let empty = write(dir.path(), "empty.txt", b"");
        let err = read_seed_source("seeds", &empty).expect_err("empty file");
        assert!(
            err.to_string().contains(&empty.display().to_string()),
            "{err}"
        );
        assert!(err.to_string().contains("no entries"), "{err}");

        write(dir.path(), "heading.txt", b"Resource Library\n");
        let err = read_seed_source("seeds", dir.path()).expect_err("every file fails");
        let message = err.to_string();
        assert!(message.starts_with(&shown), "{message}");
        assert!(
            message.contains("empty.txt") && message.contains("heading.txt"),
            "{message}"
        );

        let missing = dir.path().join("missing");
        let err = read_seed_source("seeds", &missing).expect_err("missing path");
        assert!(
            matches!(&err, SourceError::Io { path, .. } if *path == missing),
            "{err}"
        );
    }
}
