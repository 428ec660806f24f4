//! Entry -> category: the category a source gives wins; otherwise the
//! `[[categories]]` word rules are tried on the title, then on the
//! summary, else "Other". Reading the rules from `tidings.toml` is `config`'s job;
//! this module only matches them.

use crate::model::{Category, Entry};

/// One `[[categories]]` rule: entries whose text has one of `words` get `category`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryRule {
    /// The category the rule assigns.
    pub category: Category,
    /// Words or phrases (`match`), compared case-insensitively on whole words.
    pub words: Vec<String>,
}

/// Assigns each entry one category by the rules, in order.
#[derive(Debug, Clone)]
pub struct Categorizer {
    rules: Vec<CompiledRule>,
}

/// A rule with its words already split into tokens.
#[derive(Debug, Clone)]
struct CompiledRule {
    category: Category,
    /// Token sequences; a word with no letters or digits is left out, since it
    /// would otherwise match everything.
    phrases: Vec<Vec<String>>,
}

/// The Tower Hamlets Together rules, under the category names the site uses.
const BUILTIN: &[(&str, &[&str])] = &[
    (
        "Board papers",
        &["board", "boards", "minutes", "agenda", "committee"],
    ),
    (
        "Strategies and plans",
        &[
            "strategy",
            "strategies",
            "framework",
            "frameworks",
            "plan",
            "plans",
        ],
    ),
    (
        "Case studies",
        &[
            "case study",
            "case studies",
            "success story",
            "success stories",
        ],
    ),
    (
        "Leaflets",
        &[
            "leaflet",
            "leaflets",
            "guide",
            "guides",
            "q&a",
            "faq",
            "faqs",
            "factsheet",
            "booklet",
        ],
    ),
    (
        "Reports",
        &[
            "report",
            "reports",
            "results",
            "survey",
            "healthwatch",
            "evaluation",
        ],
    ),
    (
        "News",
        &["launch", "launches", "launched", "opening", "opens", "news"],
    ),
    ("Forms", &["form", "forms"]),
    ("Videos", &["video", "videos", "webinar"]),
];

impl Categorizer {
    /// A categorizer trying `rules` in the given order.
    pub fn new(rules: Vec<CategoryRule>) -> Self {
        let rules = rules
            .into_iter()
            .map(|rule| CompiledRule {
                category: rule.category,
                phrases: rule
                    .words
                    .iter()
                    .map(|word| tokens(word))
                    .filter(|phrase| !phrase.is_empty())
                    .collect(),
            })
            .collect();
        Self { rules }
    }

    /// The built-in Tower Hamlets Together rules, used when the config has none.
    pub fn builtin() -> Self {
        Self::new(Self::builtin_rules())
    }

    /// The built-in rules themselves, for a config that names no categories.
    pub(crate) fn builtin_rules() -> Vec<CategoryRule> {
        BUILTIN
            .iter()
            .map(|(name, words)| CategoryRule {
                category: Category::new(*name),
                words: words.iter().map(|w| (*w).to_owned()).collect(),
            })
            .collect()
    }

    /// The entry's category: the source's own, else the first rule matching the
    /// title, else the first matching the summary, else "Other".
    pub fn categorize(&self, entry: &Entry) -> Category {
        if let Some(given) = entry.category.as_deref().map(str::trim)
            && !given.is_empty()
        {
            return self.known(given);
        }
        let title = tokens(&entry.title);
        if let Some(rule) = self.rules.iter().find(|r| r.matches(&title)) {
            return rule.category.clone();
        }
        let blocks: Vec<Vec<String>> = entry.summary.texts().map(tokens).collect();
        self.rules
            .iter()
            .find(|rule| blocks.iter().any(|block| rule.matches(block)))
            .map_or_else(Category::other, |rule| rule.category.clone())
    }

    /// Every category an entry can get from the rules: rule order, then "Other",
    /// each slug once.
    pub fn categories(&self) -> Vec<Category> {
        let mut out: Vec<Category> = Vec::new();
        let candidates = self.rules.iter().map(|r| r.category.clone());
        for category in candidates.chain([Category::other()]) {
            if !out.iter().any(|c| c.slug == category.slug) {
                out.push(category);
            }
        }
        out
    }

    /// A source-given name as a category, spelled as a rule spells it when the
    /// slugs agree ("board papers" is "Board papers"), so one category never
    /// appears under two names.
    fn known(&self, name: &str) -> Category {
        let given = Category::new(name);
        self.categories()
            .into_iter()
            .find(|c| c.slug == given.slug)
            .unwrap_or(given)
    }
}

impl CompiledRule {
    /// True when one of the rule's phrases appears, whole, in `text`.
    fn matches(&self, text: &[String]) -> bool {
        self.phrases.iter().any(|phrase| {
            text.windows(phrase.len())
                .any(|window| window == phrase.as_slice())
        })
    }
}

/// Lower-case runs of letters and digits (any script): the unit of matching,
/// so "plan" never matches "planet" and "Q&A" is the phrase "q a".
fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Summary;
    use crate::source::seed::parse_seed_text;

    fn rule(name: &str, words: &[&str]) -> CategoryRule {
        CategoryRule {
            category: Category::new(name),
            words: words.iter().map(|w| w.to_string()).collect(),
        }
    }

    fn entry(title: &str, summary: &str) -> Entry {
        let mut entry = Entry::titled(title);
        entry.summary = Summary::paragraph(summary);
        entry
    }

    fn name_of(categorizer: &Categorizer, title: &str, summary: &str) -> String {
        categorizer.categorize(&entry(title, summary)).name
    }

    #[test]
    fn reference_seed_entries_land_where_the_site_puts_them() {
        let text = include_str!("../tests/fixtures/seeds/resource-library-page-4.txt");
        let entries = parse_seed_text(text).expect("the reference seed parses");
        let got: Vec<String> = entries
            .iter()
            .map(|e| Categorizer::builtin().categorize(e).name)
            .collect();
        assert_eq!(
            got,
            [
                "Leaflets",             // OCEAN: "FULL Q&A" in the summary
                "Strategies and plans", // Workforce Strategy
                "Strategies and plans", // Shared Outcomes Framework
                "Leaflets",             // "Read our parents’ guide"
                "Board papers",         // Health and Wellbeing Board
                "News",                 // Hestia & ELFT launch …
                "Case studies",         // … success stories and case studies
                "Reports",              // HealthWatch
                "News",                 // Urgent Treatment Centre - Opening …
            ]
        );
    }

    #[test]
    fn a_title_match_beats_an_earlier_rule_in_the_summary() {
        let rules = Categorizer::new(vec![
            rule("Board papers", &["board"]),
            rule("News", &["opening"]),
        ]);
        assert_eq!(
            name_of(&rules, "Clinic opening", "Agreed by the board"),
            "News"
        );
        // Within the same text, rule order decides.
        assert_eq!(name_of(&rules, "Board on the opening", ""), "Board papers");
        assert_eq!(
            name_of(&rules, "Clinic", "Opening agreed by the board"),
            "Board papers"
        );
        assert_eq!(name_of(&rules, "Clinic", "Opening soon"), "News");
        assert_eq!(name_of(&rules, "Clinic", "Nothing to see"), "Other");
    }

    #[test]
    fn words_match_whole_and_in_any_case() {
        let rules = Categorizer::new(vec![rule("Plans", &["Plan"])]);
        assert_eq!(name_of(&rules, "The PLAN for 2024", ""), "Plans");
        assert_eq!(name_of(&rules, "plan.", ""), "Plans");
        assert_eq!(name_of(&rules, "(plan)", ""), "Plans");
        assert_eq!(name_of(&rules, "Planet health", ""), "Other");
        assert_eq!(name_of(&rules, "Our plans", ""), "Other");
        assert_eq!(name_of(&rules, "Floorplan", ""), "Other");
    }

    #[test]
    fn phrases_match_as_consecutive_words() {
        let rules = Categorizer::new(vec![
            rule("Case studies", &["case study"]),
            rule("Leaflets", &["Q&A"]),
        ]);
        assert_eq!(name_of(&rules, "A case  study: Poplar", ""), "Case studies");
        assert_eq!(name_of(&rules, "Case-study", ""), "Case studies");
        assert_eq!(name_of(&rules, "A case for a study", ""), "Other");
        assert_eq!(name_of(&rules, "Study the case", ""), "Other");
        assert_eq!(name_of(&rules, "Full q&a", ""), "Leaflets");
        assert_eq!(name_of(&rules, "FAQ", ""), "Other");
    }

    #[test]
    fn matching_is_unicode_aware() {
        let rules = Categorizer::new(vec![rule("Cafés", &["café"])]);
        assert_eq!(name_of(&rules, "The Together CAFÉ", ""), "Cafés");
        assert_eq!(name_of(&rules, "The Together Caf", ""), "Other");
        assert_eq!(name_of(&rules, "Cafés open", ""), "Other");
    }

    #[test]
    fn a_phrase_does_not_run_across_summary_blocks() {
        let rules = Categorizer::new(vec![rule("Case studies", &["case study"])]);
        let mut e = Entry::titled("Untitled");
        e.summary = Summary {
            blocks: vec![
                crate::model::Block::Paragraph("A difficult case".into()),
                crate::model::Block::List(vec!["study hall".into(), "one case study".into()]),
            ],
        };
        assert_eq!(rules.categorize(&e).name, "Case studies");
        e.summary.blocks.pop();
        e.summary
            .blocks
            .push(crate::model::Block::List(vec!["study hall".into()]));
        assert_eq!(rules.categorize(&e).name, "Other");
    }

    #[test]
    fn the_source_category_wins_over_rules() {
        let builtin = Categorizer::builtin();
        let mut e = entry("Board minutes", "");
        e.category = Some("Videos".into());
        assert_eq!(builtin.categorize(&e), Category::new("Videos"));
        // Spelled differently, it is still the rule's category.
        e.category = Some("  board PAPERS ".into());
        assert_eq!(builtin.categorize(&e), Category::new("Board papers"));
        // A category the rules do not know is kept as given.
        e.category = Some("Podcasts".into());
        assert_eq!(builtin.categorize(&e), Category::new("Podcasts"));
        // A blank one is no category.
        e.category = Some("  ".into());
        assert_eq!(builtin.categorize(&e).name, "Board papers");
    }

    #[test]
    fn categories_are_rule_order_then_other_without_duplicates() {
        let names = |c: &Categorizer| -> Vec<String> {
            c.categories().into_iter().map(|c| c.name).collect()
        };
        assert_eq!(
            names(&Categorizer::builtin()),
            [
                "Board papers",
                "Strategies and plans",
                "Case studies",
                "Leaflets",
                "Reports",
                "News",
                "Forms",
                "Videos",
                "Other"
            ]
        );
        let repeated = Categorizer::new(vec![
            rule("News", &["launch"]),
            rule("Reports", &["report"]),
            rule("News", &["opening"]),
            rule("Other", &["misc"]),
        ]);
        assert_eq!(names(&repeated), ["News", "Reports", "Other"]);
        // A repeated category still matches by its later rule.
        assert_eq!(name_of(&repeated, "Opening day", ""), "News");
        assert_eq!(names(&Categorizer::new(Vec::new())), ["Other"]);
    }

    #[test]
    fn words_without_letters_or_digits_never_match() {
        let rules = Categorizer::new(vec![
            rule("Odd", &["", "  ", "&&", "–"]),
            rule("Forms", &["form"]),
        ]);
        assert_eq!(name_of(&rules, "A form & more – here", ""), "Forms");
        assert_eq!(name_of(&rules, "", ""), "Other");
    }
}
