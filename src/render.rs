//! Templates: the built-in set (compiled in from `templates/`) with any file
//! of the same name in the run-time `templates/` folder taking its place.
//! Edits to that folder are picked up without a restart: the folder's file
//! times are compared before each render, and the cache is cleared when
//! they moved. HTML templates are auto-escaped.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use std::fmt::Write as _;

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State};
use serde::Serialize;

/// Built-in templates, by the names the README lists (Templates).
const BUILT_IN: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("index.html", include_str!("../templates/index.html")),
    ("resource.html", include_str!("../templates/resource.html")),
    ("error.html", include_str!("../templates/error.html")),
    (
        "unsubscribe.html",
        include_str!("../templates/unsubscribe.html"),
    ),
    ("digest.txt", include_str!("../templates/digest.txt")),
    ("digest.html", include_str!("../templates/digest.html")),
    ("notice.html", include_str!("../templates/notice.html")),
    (
        "preferences.html",
        include_str!("../templates/preferences.html"),
    ),
    (
        "subscribe_fields.html",
        include_str!("../templates/subscribe_fields.html"),
    ),
    ("admin.html", include_str!("../templates/admin.html")),
    (
        "admin_login.html",
        include_str!("../templates/admin_login.html"),
    ),
    (
        "admin_preview.html",
        include_str!("../templates/admin_preview.html"),
    ),
    (
        "admin_announcement.html",
        include_str!("../templates/admin_announcement.html"),
    ),
    (
        "admin_announcements.html",
        include_str!("../templates/admin_announcements.html"),
    ),
    (
        "confirmation.txt",
        include_str!("../templates/confirmation.txt"),
    ),
    (
        "confirmation.html",
        include_str!("../templates/confirmation.html"),
    ),
    (
        "announcement.txt",
        include_str!("../templates/announcement.txt"),
    ),
    (
        "announcement.html",
        include_str!("../templates/announcement.html"),
    ),
    ("alert.txt", include_str!("../templates/alert.txt")),
];

/// The stylesheet served at `/assets/style.css`.
pub const STYLESHEET: &str = include_str!("../templates/style.css");

/// Names and modification times of the override folder's files.
type Signature = Vec<(String, Option<SystemTime>)>;

/// Renders templates, preferring overrides in a folder.
pub struct Templates {
    dir: PathBuf,
    state: Mutex<(Environment<'static>, Signature)>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").field("dir", &self.dir).finish()
    }
}

impl Templates {
    /// Templates overridden by files in `dir` (which need not exist).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let env = environment(dir.clone());
        let signature = signature(&dir);
        Self {
            dir,
            state: Mutex::new((env, signature)),
        }
    }

    /// Render template `name` with `context`.
    pub fn render<S: Serialize>(&self, name: &str, context: S) -> Result<String, Error> {
        let current = signature(&self.dir);
        let mut state = self
            .state
            .lock()
            .map_err(|_| Error::new(ErrorKind::InvalidOperation, "template cache poisoned"))?;
        if state.1 != current {
            state.0.clear_templates();
            state.1 = current;
        }
        state
            .0
            .get_template(name)?
            .render(minijinja::value::Serde(context))
    }
}

fn environment(dir: PathBuf) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_loader(move |name| load(&dir, name));
    env.set_formatter(html_formatter);
    env
}

/// HTML auto-escaping of the five characters that matter (`& < > " '`).
/// minijinja's default also escapes `/`, which turns every URL in an
/// attribute into `http:&#x2f;&#x2f;…`: valid, but needlessly unreadable.
fn html_formatter(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    match value.as_str() {
        Some(text) if *state.auto_escape() == AutoEscape::Html && !value.is_safe() => {
            for c in text.chars() {
                match c {
                    '&' => out.write_str("&amp;"),
                    '<' => out.write_str("&lt;"),
                    '>' => out.write_str("&gt;"),
                    '"' => out.write_str("&quot;"),
                    '\'' => out.write_str("&#39;"),
                    other => out.write_char(other),
                }
                .map_err(|_| {
                    Error::new(ErrorKind::WriteFailure, "could not write template output")
                })?;
            }
            Ok(())
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// The override file if there is one, else the built-in text.
fn load(dir: &Path, name: &str) -> Result<Option<String>, Error> {
    let safe = !name.contains(['/', '\\']) && !name.starts_with('.');
    if safe {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(text) => return Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                let message = format!("could not read template {}: {e}", dir.join(name).display());
                return Err(Error::new(ErrorKind::InvalidOperation, message));
            }
        }
    }
    Ok(BUILT_IN
        .iter()
        .find(|(builtin, _)| *builtin == name)
        .map(|(_, text)| (*text).to_owned()))
}

fn signature(dir: &Path) -> Signature {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Signature = entries
        .filter_map(Result::ok)
        .map(|e| {
            let modified = e.metadata().and_then(|m| m.modified()).ok();
            (e.file_name().to_string_lossy().into_owned(), modified)
        })
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn built_in_templates_escape_html() {
        let dir = tempfile::tempdir().unwrap();
        let t = Templates::new(dir.path());
        let html = t
            .render(
                "error.html",
                json!({ "site": { "title": "T", "base_path": "/" }, "autodiscovery": [],
                        "heading": "<script>alert(1)</script>", "message": "a & b" }),
            )
            .unwrap();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("a &amp; b"));
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // sets a file time, not the app's notion of now
    fn a_file_in_the_folder_overrides_and_edits_are_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let t = Templates::new(dir.path());
        let path = dir.path().join("error.html");
        std::fs::write(&path, "first {{ heading }}").unwrap();
        assert_eq!(
            t.render("error.html", json!({ "heading": "x" })).unwrap(),
            "first x"
        );
        std::fs::write(&path, "second {{ heading }}").unwrap();
        // Make sure the modification time differs even on coarse file systems.
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(
            t.render("error.html", json!({ "heading": "x" })).unwrap(),
            "second x"
        );
    }

    #[test]
    fn names_that_leave_the_folder_are_not_read_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path(), "../etc/passwd").unwrap(), None);
    }
}
