//! robots.txt rules (RFC 9309): parsing a file into the group that applies
//! to Tidings, and deciding whether a path may be fetched. Fetching the file,
//! and what a missing or failing one means, is `fetch::Fetcher`'s job.

/// The product token Tidings looks for in `User-agent` lines.
pub(crate) const PRODUCT_TOKEN: &str = "tidings";

/// At most this much of a robots.txt is parsed (RFC 9309 2.5: at least 500 KiB).
pub(crate) const MAX_ROBOTS_BYTES: u64 = 500 * 1024;

/// What one origin's robots.txt lets Tidings fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Robots {
    /// Fetch anything: no robots.txt (4xx), or no group applies.
    AllowAll,
    /// Fetch nothing: robots.txt was unreachable (5xx, 429, network error).
    DisallowAll {
        /// Why, for the error message.
        reason: String,
    },
    /// Fetch what these rules allow.
    Rules(Vec<Rule>),
}

/// One `Allow` or `Disallow` line of the group that applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `true` for `Allow`.
    pub allow: bool,
    /// The path pattern: `*` matches any run of characters, a final `$` the end.
    pub pattern: String,
}

impl Robots {
    /// Parse a robots.txt body into the rules for `PRODUCT_TOKEN`, falling
    /// back to the `*` groups (RFC 9309 2.2.1); all matching groups merge.
    pub fn parse(text: &str) -> Self {
        let groups = groups(text);
        let ours: Vec<&Group> = groups.iter().filter(|g| g.names(PRODUCT_TOKEN)).collect();
        let chosen = if ours.is_empty() {
            groups.iter().filter(|g| g.names("*")).collect()
        } else {
            ours
        };
        let rules: Vec<Rule> = chosen.into_iter().flat_map(|g| g.rules.clone()).collect();
        if rules.is_empty() {
            Self::AllowAll
        } else {
            Self::Rules(rules)
        }
    }

    /// Why `path_and_query` may not be fetched, or `None` if it may.
    pub(crate) fn refusal(&self, path_and_query: &str) -> Option<String> {
        match self {
            Self::AllowAll => None,
            Self::DisallowAll { reason } => Some(reason.clone()),
            // RFC 9309 2.2.2: /robots.txt itself is always allowed.
            Self::Rules(_) if path_and_query == "/robots.txt" => None,
            Self::Rules(rules) => {
                let rule = deciding_rule(rules, path_and_query)?;
                (!rule.allow).then(|| format!("rule \"Disallow: {}\"", rule.pattern))
            }
        }
    }
}

/// The longest matching pattern wins; on a tie `Allow` wins (RFC 9309 2.2.2).
fn deciding_rule<'a>(rules: &'a [Rule], path: &str) -> Option<&'a Rule> {
    rules
        .iter()
        .filter(|rule| matches(&rule.pattern, path))
        .max_by_key(|rule| (rule.pattern.len(), rule.allow))
}

/// Whether `pattern` matches the start of `path`.
fn matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(stripped) => (stripped, true),
        None => (pattern, false),
    };
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = path.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return !anchored || rest.is_empty();
    };
    // Leftmost matching of each piece is optimal for `*`-only globs.
    for piece in middle {
        let Some(at) = rest.find(piece) else {
            return false;
        };
        rest = &rest[at + piece.len()..];
    }
    if anchored {
        rest.ends_with(last)
    } else {
        rest.contains(last)
    }
}

/// A run of `User-agent` lines and the rules after them.
#[derive(Debug, Default)]
struct Group {
    agents: Vec<String>,
    rules: Vec<Rule>,
}

impl Group {
    /// Whether this group names `token` (case-insensitive; `Tidings/1.0` names `tidings`).
    fn names(&self, token: &str) -> bool {
        self.agents.iter().any(|agent| {
            let product = agent.split(['/', ' ']).next().unwrap_or_default();
            product.eq_ignore_ascii_case(token)
        })
    }
}

/// Split a robots.txt into groups; unknown lines (`Sitemap`, `Crawl-delay`) are skipped.
fn groups(text: &str) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut open = false; // still reading the User-agent lines of the last group
    for line in text.trim_start_matches('\u{feff}').lines() {
        let line = line.split('#').next().unwrap_or_default();
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
        match key.as_str() {
            "user-agent" => {
                if !open {
                    groups.push(Group::default());
                    open = true;
                }
                if let Some(group) = groups.last_mut() {
                    group.agents.push(value.to_owned());
                }
            }
            "allow" | "disallow" => {
                open = false;
                // An empty `Disallow:` disallows nothing; rules before any group are ignored.
                if let (false, Some(group)) = (value.is_empty(), groups.last_mut()) {
                    let allow = key == "allow";
                    group.rules.push(Rule {
                        allow,
                        pattern: value.to_owned(),
                    });
                }
            }
            _ => {}
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(robots: &str, path: &str) -> bool {
        Robots::parse(robots).refusal(path).is_none()
    }

    #[test]
    fn star_group_applies_when_ours_is_absent() {
        let text = "User-agent: Googlebot\nDisallow: /\n\nUser-agent: *\nDisallow: /private\n";
        assert!(allowed(text, "/resource-library"));
        assert!(!allowed(text, "/private/a"));
        assert!(!allowed(text, "/private"));
    }

    #[test]
    fn our_group_replaces_star() {
        let text = "User-agent: *\nDisallow: /\n\nUser-agent: Tidings/0.1\nDisallow: /admin\n";
        assert!(allowed(text, "/resource-library"));
        assert!(!allowed(text, "/admin/x"));
    }

    #[test]
    fn agents_share_a_group_and_groups_merge() {
        let text =
            "User-agent: a\nUser-agent: TIDINGS\nDisallow: /x\nUser-agent: tidings\nDisallow: /y\n";
        assert!(!allowed(text, "/x"));
        assert!(!allowed(text, "/y"));
        assert!(allowed(text, "/z"));
    }

    #[test]
    fn longest_match_wins_and_allow_wins_ties() {
        let text =
            "User-agent: *\nDisallow: /lib\nAllow: /lib/public\nAllow: /same\nDisallow: /same\n";
        assert!(!allowed(text, "/lib/secret"));
        assert!(allowed(text, "/lib/public/a"));
        assert!(allowed(text, "/same"));
    }

    #[test]
    fn wildcards_and_end_anchor() {
        let text = "User-agent: *\nDisallow: /*.pdf$\nDisallow: /a*b*c\n";
        assert!(!allowed(text, "/files/x.pdf"));
        assert!(allowed(text, "/files/x.pdf?download=1"));
        assert!(!allowed(text, "/a-b-c-d"));
        assert!(allowed(text, "/a-c-b"));
        assert!(matches("/x$", "/x"));
        assert!(!matches("/x$", "/xy"));
        assert!(matches("*", "/anything"));
    }

    #[test]
    fn empty_disallow_and_comments() {
        let text = "# hello\nUser-agent: * # everyone\nDisallow:\n";
        assert_eq!(Robots::parse(text), Robots::AllowAll);
        assert_eq!(Robots::parse(""), Robots::AllowAll);
        assert_eq!(Robots::parse("Disallow: /\n"), Robots::AllowAll);
        assert!(!allowed("\u{feff}User-agent: *\r\nDisallow: /x\r\n", "/x"));
    }

    #[test]
    fn robots_txt_itself_is_allowed() {
        assert!(allowed("User-agent: *\nDisallow: /\n", "/robots.txt"));
        assert!(!allowed("User-agent: *\nDisallow: /\n", "/"));
    }

    #[test]
    fn disallow_all_says_why() {
        let robots = Robots::DisallowAll {
            reason: "503".into(),
        };
        assert_eq!(robots.refusal("/robots.txt").as_deref(), Some("503"));
    }
}
