//! Text hygiene at the edge: every text field a source yields passes through
//! here once, before it is fingerprinted or stored. Characters that can make
//! text lie about itself go: bidi embeddings, overrides and isolates
//! (U+202A–U+202E, U+2066–U+2069; "Invoice \u{202E}fdp.exe" would display as
//! "Invoice exe.pdf") and Unicode noncharacters (U+FFFE, U+FFFF, U+FDD0–U+FDEF
//! and the last two code points of every plane), and C0 controls but tab and
//! line ends. The line and paragraph separators U+2028 / U+2029 become a space
//! in one-line fields (title, category) and a line break in summaries. Everything else is kept as
//! written: right-to-left scripts, their marks (U+200E, U+200F, U+061C), and
//! the joiners U+200C / U+200D that Bengali and other scripts spell with.
//!
//! `store` applies the same functions once to text stored before this existed,
//! so an upgrade changes no fingerprint of text that did not really change.

use crate::model::{Block, Entry, Snapshot, Summary};

/// True for a character no text from a source keeps: a bidi embedding,
/// override or isolate control, a Unicode noncharacter, or a C0 control other
/// than tab and line ends (U+0000 cannot be stored by PostgreSQL, and none of
/// them may appear in XML 1.0).
pub(crate) fn is_removed(c: char) -> bool {
    let code = u32::from(c);
    matches!(code, 0x202A..=0x202E | 0x2066..=0x2069 | 0xFDD0..=0xFDEF)
        || code & 0xFFFE == 0xFFFE
        || (c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r'))
}

/// A one-line field (title, category name): removed characters dropped,
/// U+2028 / U+2029 turned into spaces.
pub fn line(text: &str) -> String {
    replace(text, ' ')
}

/// A summary's text: removed characters dropped, U+2028 / U+2029 turned into line breaks.
pub fn paragraph(text: &str) -> String {
    replace(text, '\n')
}

/// `text` without removed characters and with each separator as `separator`.
fn replace(text: &str, separator: char) -> String {
    if !text.chars().any(needs_work) {
        return text.to_owned();
    }
    text.chars()
        .filter(|&c| !is_removed(c))
        .map(|c| if is_separator(c) { separator } else { c })
        .collect()
}

/// True for U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR.
fn is_separator(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

fn needs_work(c: char) -> bool {
    is_removed(c) || is_separator(c)
}

/// A summary with every block's text cleaned; blocks and items left blank go.
pub fn summary(summary: &Summary) -> Summary {
    let blocks = summary
        .blocks
        .iter()
        .filter_map(|block| match block {
            Block::Paragraph(text) => {
                let text = paragraph(text);
                (!text.trim().is_empty()).then_some(Block::Paragraph(text))
            }
            Block::List(items) => {
                let items: Vec<String> = items
                    .iter()
                    .map(|item| paragraph(item))
                    .filter(|item| !item.trim().is_empty())
                    .collect();
                (!items.is_empty()).then_some(Block::List(items))
            }
        })
        .collect();
    Summary { blocks }
}

/// An entry with title, summary and category cleaned; links are URLs, which
/// percent-encode such characters already.
pub fn entry(mut entry: Entry) -> Entry {
    entry.title = line(&entry.title);
    entry.summary = summary(&entry.summary);
    entry.category = entry
        .category
        .map(|name| line(&name))
        .filter(|name| !name.trim().is_empty());
    entry
}

/// Clean every entry of `snapshot`. An entry whose title was nothing but
/// removed characters is dropped with a warning naming its position: it has
/// nothing left to show.
pub fn snapshot(snapshot: &mut Snapshot) {
    let entries = std::mem::take(&mut snapshot.entries);
    for (position, raw) in entries.into_iter().enumerate() {
        let cleaned = entry(raw);
        if cleaned.title.trim().is_empty() {
            let link = cleaned
                .link
                .as_ref()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default();
            snapshot.warnings.push(format!(
                "entry {}{link} skipped: its title is only control characters",
                position + 1
            ));
            continue;
        }
        snapshot.entries.push(cleaned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_controls_and_noncharacters_are_removed() {
        assert_eq!(line("Invoice \u{202E}fdp.exe"), "Invoice fdp.exe");
        for c in [
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{FFFE}',
            '\u{FFFF}',
            '\u{FDD0}',
            '\u{FDEF}',
            '\u{1FFFE}',
            '\u{10FFFF}',
        ] {
            assert_eq!(line(&format!("a{c}b")), "ab", "U+{:04X}", u32::from(c));
            assert_eq!(paragraph(&format!("a{c}b")), "ab", "U+{:04X}", u32::from(c));
        }
        // Neighbours of the removed ranges stay.
        for c in [
            '\u{2029}', '\u{202F}', '\u{2065}', '\u{206A}', '\u{FDCF}', '\u{FDF0}',
        ] {
            assert!(!is_removed(c), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn control_characters_other_than_tab_and_line_ends_are_removed() {
        assert_eq!(
            line("Bell\u{7} and nul\u{0} and del\u{7f}"),
            "Bell and nul and del"
        );
        assert_eq!(paragraph("one\ttwo\r\nthree"), "one\ttwo\r\nthree");
    }

    #[test]
    fn separators_become_spaces_in_lines_and_breaks_in_summaries() {
        assert_eq!(line("One\u{2028}Two\u{2029}Three"), "One Two Three");
        assert_eq!(paragraph("One\u{2028}Two\u{2029}Three"), "One\nTwo\nThree");
    }

    #[test]
    fn right_to_left_and_bengali_text_is_untouched() {
        let hebrew = "מדריך להורים \u{200F}(2024)";
        let arabic = "دليل الخدمات الصحية\u{061C} للعائلات";
        // Bengali spells with ZWNJ (U+200C) and ZWJ (U+200D).
        let bengali = "স্বাস্থ্য সেবা র\u{200D}্যাব ক্\u{200C}ষ";
        for text in [hebrew, arabic, bengali] {
            assert_eq!(line(text), text);
            assert_eq!(paragraph(text), text);
        }
    }

    #[test]
    fn an_entry_of_only_controls_is_dropped_with_a_warning() {
        let mut shown = Entry::titled("Leaflet\u{2028}two");
        shown.summary = Summary {
            blocks: vec![
                Block::Paragraph("\u{FFFE}".into()),
                Block::List(vec!["a\u{2029}b".into(), "\u{202E}".into()]),
            ],
        };
        shown.category = Some("\u{2066}News\u{2069}".into());
        let mut snap = Snapshot {
            source: "seeds".into(),
            entries: vec![Entry::titled("\u{202E}\u{FFFF} "), shown],
            warnings: Vec::new(),
            partial: false,
        };
        snapshot(&mut snap);
        assert_eq!(snap.entries.len(), 1);
        let kept = &snap.entries[0];
        assert_eq!(kept.title, "Leaflet two");
        assert_eq!(
            kept.summary.blocks,
            [Block::List(vec!["a\nb".into()])],
            "blank blocks and items go"
        );
        assert_eq!(kept.category.as_deref(), Some("News"));
        assert_eq!(
            snap.warnings,
            ["entry 1 skipped: its title is only control characters"]
        );
    }
}
