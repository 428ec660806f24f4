//! Templates: the built-in set (compiled in from `templates/`) with any file
//! of the same name in the run-time folder (`site.templates_dir`, given by
//! `wiring`) taking its place.
//! Templates are loaded once and cached. Edits to that folder are picked up
//! without a restart: at most once a second
//! (`RECHECK_EVERY`) a render compares the
//! folder's file times with the last ones seen and clears the cache when
//! they moved. Renders share the cache through a read lock, so
//! any number run at once. HTML templates are auto-escaped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

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
    (
        "admin_password.txt",
        include_str!("../templates/admin_password.txt"),
    ),
    (
        "admin_password.html",
        include_str!("../templates/admin_password.html"),
    ),
    (
        "admin_set_password.html",
        include_str!("../templates/admin_set_password.html"),
    ),
    (
        "admin_log.html",
        include_str!("../templates/admin_log.html"),
    ),
    (
        "admin_resource.html",
        include_str!("../templates/admin_resource.html"),
    ),
];

/// The stylesheet served at `/assets/style.css`.
pub(crate) const STYLESHEET: &str = include_str!("../templates/style.css");

/// Names and modification times of the override folder's files.
type Signature = Vec<(String, Option<SystemTime>)>;

/// How often at most the override folder is looked at for edits.
pub(crate) const RECHECK_EVERY: Duration = Duration::from_secs(1);

/// Renders templates, preferring overrides in a folder.
pub struct Templates {
    dir: PathBuf,
    env: RwLock<Environment<'static>>,
    /// The folder's file times when last looked at.
    signature: Mutex<Signature>,
    /// When this was made; `checked_ms` counts from it.
    started: Instant,
    /// Milliseconds after `started` of the last look at the folder.
    checked_ms: AtomicU64,
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
            env: RwLock::new(env),
            signature: Mutex::new(signature),
            started: Instant::now(),
            checked_ms: AtomicU64::new(0),
        }
    }

    /// Render template `name` with `context`.
    pub fn render<S: Serialize>(&self, name: &str, context: S) -> Result<String, Error> {
        self.pick_up_edits()?;
        let env = self.env.read().map_err(|_| poisoned())?;
        env.get_template(name)?
            .render(minijinja::value::Serde(context))
    }

    /// Clears the cache when the folder's files changed since the last look;
    /// looks at most once per [`RECHECK_EVERY`], and only one render looks.
    fn pick_up_edits(&self) -> Result<(), Error> {
        let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.checked_ms.load(Ordering::Relaxed);
        let due = now_ms.saturating_sub(last) >= RECHECK_EVERY.as_millis() as u64;
        let claimed = due
            && self
                .checked_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if !claimed {
            return Ok(());
        }
        let current = signature(&self.dir);
        let mut seen = self.signature.lock().map_err(|_| poisoned())?;
        if *seen != current {
            self.env.write().map_err(|_| poisoned())?.clear_templates();
            *seen = current;
        }
        Ok(())
    }
}

fn poisoned() -> Error {
    Error::new(ErrorKind::InvalidOperation, "template cache poisoned")
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
            write_escaped_html(out, text)
                .map_err(|_| Error::new(ErrorKind::WriteFailure, "could not write template output"))
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// Writes `text` with the five characters HTML gives a meaning to
/// (`& < > " '`) escaped: the one HTML escaper, for templates, feed
/// summaries and alert emails alike.
pub(crate) fn write_escaped_html(out: &mut impl std::fmt::Write, text: &str) -> std::fmt::Result {
    for c in text.chars() {
        match c {
            '&' => out.write_str("&amp;")?,
            '<' => out.write_str("&lt;")?,
            '>' => out.write_str("&gt;")?,
            '"' => out.write_str("&quot;")?,
            '\'' => out.write_str("&#39;")?,
            other => out.write_char(other)?,
        }
    }
    Ok(())
}

/// `text` with `& < > " '` escaped for HTML (see `write_escaped_html`).
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Writing to a String cannot fail.
    let _ = write_escaped_html(&mut out, text);
    out
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
        // The folder is looked at once per RECHECK_EVERY: poll until the edit shows.
        let deadline = Instant::now() + RECHECK_EVERY * 5;
        let mut html = t.render("error.html", json!({ "heading": "x" })).unwrap();
        while html != "second x" && Instant::now() < deadline {
            std::thread::yield_now();
            html = t.render("error.html", json!({ "heading": "x" })).unwrap();
        }
        assert_eq!(html, "second x");
    }

    #[test]
    fn renders_from_many_threads_each_get_their_own_context() {
        let dir = tempfile::tempdir().unwrap();
        let t = std::sync::Arc::new(Templates::new(dir.path()));
        let threads: Vec<_> = (0..8)
            .map(|n| {
                let t = std::sync::Arc::clone(&t);
                std::thread::spawn(move || {
                    (0..200)
                        .map(|_| {
                            let context = json!({ "site": { "title": "T", "base_path": "/" },
                                                  "autodiscovery": [], "heading": n, "message": "m" });
                            t.render("error.html", context).unwrap()
                        })
                        .all(|html| html.contains(&format!("<h1>{n}</h1>")))
                })
            })
            .collect();
        assert!(threads.into_iter().all(|h| h.join().unwrap()));
    }

    #[test]
    fn names_that_leave_the_folder_are_not_read_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path(), "../etc/passwd").unwrap(), None);
    }
}
