//! Config loading and checking, including hostile values.

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn problems_of(text: &str) -> Vec<Problem> {
    match from_toml(text, &no_env) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected problems, got {other:?}"),
    }
}

fn keys(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.key.as_str()).collect()
}

const DESIGN_EXAMPLE: &str = r#"
[site]
title = "Tower Hamlets Together — Resource Library"
base_url = "https://feeds.example.org"
timezone = "Europe/London"

[database]
url = "sqlite://tidings.db"

[server]
listen = "127.0.0.1:8080"

[[sources]]
name = "library"
kind = "html"
url = "https://www.towerhamletstogether.com/resource-library"
schedule = "0 */30 * * * *"
[sources.select]
entry = "ul.resource-list > li"
title = "h3"
link = "h3 a"
summary = ".resource-card__body"
date = "time"
category = ".resource-card__tag"
download = "a.btn--download"
next_page = "a[rel=next]"

[[sources]]
name = "seeds"
kind = "seed"
path = "seeds/"

[[categories]]
name = "Strategies and plans"
match = ["strategy", "framework", "plan"]

[mail]
transport = "file"
dir = "outbox"
smtp_url = "smtp://127.0.0.1:2525"
from = "Tower Hamlets Together <resources@example.org>"

[digest]
schedule = "0 0 8 * * Mon"
"#;

#[test]
fn built_in_defaults_ingest_the_seed_folder_into_sqlite() {
    let config = check::check(RawConfig::default(), &no_env).unwrap();
    assert_eq!(config.database.url, "sqlite://tidings.db");
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.site.base_url.as_str(), "http://127.0.0.1:8080/");
    assert_eq!(config.site.timezone, chrono_tz::Europe::London);
    assert_eq!(config.sources.len(), 1);
    assert_eq!(config.sources[0].name, "seeds");
    assert!(
        matches!(&config.sources[0].kind, SourceKind::Seed { path } if path == Path::new("seeds/"))
    );
    assert_eq!(config.sources[0].withdraw_after, 2);
    assert_eq!(config.feeds.max_items, 100);
    assert!(matches!(config.mail.transport, MailTransport::File { .. }));
    assert!(
        config.categories.rules.len() >= 6,
        "built-in THT rules are used"
    );
}

#[test]
fn the_design_example_is_valid() {
    let config = from_toml(DESIGN_EXAMPLE, &no_env).unwrap();
    assert_eq!(config.sources.len(), 2);
    let SourceKind::Html(html) = &config.sources[0].kind else {
        panic!("first source is html");
    };
    assert_eq!(html.max_pages, 50);
    assert_eq!(html.max_bytes, 5_000_000);
    assert_eq!(config.site.base_url.as_str(), "https://feeds.example.org/");
    assert_eq!(
        config.categories.rules.len(),
        1,
        "a config's list replaces the built-in one"
    );
}

#[test]
fn every_problem_is_reported_at_once_with_its_key() {
    let problems = problems_of(
        r#"
[site]
timezone = "Mars/Olympus"
[server]
listen = "localhost"
[[sources]]
name = "a"
kind = "html"
url = "ftp://example.org/"
[sources.select]
entry = "ul >> li["
title = "h3"
[[sources]]
name = "a"
kind = "carrier-pigeon"
[digest]
schedule = "every monday"
"#,
    );
    let keys = keys(&problems);
    for expected in [
        "site.timezone",
        "server.listen",
        "sources[0].url",
        "sources[0].select.entry",
        "sources[0].select.link",
        "sources[1].name",
        "sources[1].kind",
        "digest.schedule",
    ] {
        assert!(keys.contains(&expected), "missing {expected} in {keys:?}");
    }
}

#[test]
fn unknown_keys_are_refused_with_their_name() {
    let Err(ConfigError::Syntax { reason, .. }) = from_toml("[site]\ntitel = \"x\"\n", &no_env)
    else {
        panic!("an unknown key must be an error");
    };
    assert!(reason.contains("titel"), "{reason}");
    assert!(!reason.contains('\n'), "one line: {reason}");
}

#[test]
fn header_breaking_values_are_refused() {
    let problems = problems_of(
        "[site]\ntitle = \"Evil\\r\\nBcc: all@example.org\"\n[mail]\nfrom = \"a@example.org\\r\\nBcc: x@example.org\"\nadmins = [\"not-an-address\"]\n",
    );
    let keys = keys(&problems);
    assert!(keys.contains(&"site.title"));
    assert!(keys.contains(&"mail.from"));
    assert!(keys.contains(&"mail.admins[0]"));
}

#[test]
fn smtp_needs_a_url_which_the_environment_may_give() {
    let text = "[mail]\ntransport = \"smtp\"\n";
    assert_eq!(keys(&problems_of(text)), ["mail.smtp_url"]);
    let env = |name: &str| {
        (name == "TIDINGS_SMTP_URL").then(|| "smtp://u:secret@127.0.0.1:2525".to_owned())
    };
    let config = from_toml(text, &env).unwrap();
    let shown = format!("{:?}", config.mail.transport);
    assert!(
        shown.contains("127.0.0.1:2525") && !shown.contains("secret"),
        "{shown}"
    );
}

#[test]
fn database_passwords_never_reach_debug_output() {
    let config = from_toml(
        "[database]\nurl = \"postgres://tidings:hunter2@db.example.org/tidings\"\n",
        &no_env,
    )
    .unwrap();
    let shown = format!("{:?}", config.database);
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("db.example.org"));
}

#[test]
fn bad_numbers_and_duplicate_categories_are_problems() {
    let problems = problems_of(
        r#"
[feeds]
max_items = 0
[mail]
poll_s = 0
suppress_after = 0
alert_after_failed_sends = 0
max_attempts = 0
[[sources]]
name = "s"
kind = "seed"
path = "x"
min_ratio = 1.5
withdraw_after = 0
[[categories]]
name = "Board papers"
[[categories]]
name = "board  papers!"
[[categories]]
name = "***"
"#,
    );
    let keys = keys(&problems);
    for expected in [
        "feeds.max_items",
        "mail.poll_s",
        "mail.suppress_after",
        "mail.alert_after_failed_sends",
        "mail.max_attempts",
        "sources[0].min_ratio",
        "sources[0].withdraw_after",
        "categories[1].name",
        "categories[2].name",
    ] {
        assert!(keys.contains(&expected), "missing {expected} in {keys:?}");
    }
}

#[test]
fn a_config_file_that_is_not_utf8_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tidings.toml");
    std::fs::write(&path, b"[site]\ntitle = \"Caf\xe9\"\n").unwrap();
    let err = load(Some(&path), &no_env).unwrap_err();
    assert!(err.to_string().contains("tidings.toml"), "{err}");
}

#[test]
fn the_environment_names_the_file_when_no_flag_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.toml");
    std::fs::write(&path, "[site]\ntitle = \"From env\"\n").unwrap();
    let shown = path.to_string_lossy().into_owned();
    let env = move |name: &str| (name == "TIDINGS_CONFIG").then(|| shown.clone());
    let loaded = load(None, &env).unwrap();
    assert_eq!(loaded.config.site.title, "From env");
    assert_eq!(loaded.origin, Origin::File(path));
}

#[test]
fn the_environment_may_hold_the_database_url_with_its_password() {
    let env = |name: &str| {
        (name == "TIDINGS_DATABASE_URL").then(|| "postgres://tidings:s3cret@db/tidings".to_owned())
    };
    let config = from_toml("[database]\nurl = \"sqlite://ignored.db\"\n", &env).unwrap();
    assert_eq!(config.database.url, "postgres://tidings:s3cret@db/tidings");
}

#[test]
fn issue_13_hold_limits_deadline_and_expect_are_checked_with_their_keys() {
    let config = check::check(RawConfig::default(), &no_env).unwrap();
    let seeds = &config.sources[0];
    assert_eq!(seeds.hold, crate::hold::HoldLimits::default());
    assert_eq!(seeds.run_timeout, std::time::Duration::from_secs(300));
    assert_eq!(seeds.expect, super::Expect::default());

    let problems = problems_of(
        r#"
[[sources]]
name = "s"
kind = "seed"
path = "x"
max_changed_ratio = 1.5
max_withdrawn_ratio = -0.1
run_timeout_s = 0
expect = { min_entries = 5, max_entries = 2, required = ["title", "when"] }
"#,
    );
    let keys = keys(&problems);
    for expected in [
        "sources[0].max_changed_ratio",
        "sources[0].max_withdrawn_ratio",
        "sources[0].run_timeout_s",
        "sources[0].expect.max_entries",
        "sources[0].expect.required",
    ] {
        assert!(keys.contains(&expected), "missing {expected} in {keys:?}");
    }
    let required = problems
        .iter()
        .find(|p| p.key == "sources[0].expect.required")
        .unwrap();
    assert!(
        required.to_string().contains("\"when\" is not a field"),
        "{required}"
    );
}

/// `der` as a PEM block of `label`.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[test]
fn ca_file_adds_its_certificates_or_names_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let with_ca =
        |path: &std::path::Path| format!("[mail]\nca_file = {:?}\n", path.display().to_string());
    let roots = dir.path().join("roots.pem");
    let one = rcgen::generate_simple_self_signed(vec!["relay.example.org".into()]).unwrap();
    let two = rcgen::generate_simple_self_signed(vec!["other.example.org".into()]).unwrap();
    let text = format!(
        "{}{}",
        pem("CERTIFICATE", one.cert.der()),
        pem("CERTIFICATE", two.cert.der())
    );
    std::fs::write(&roots, text).unwrap();
    let config = from_toml(&with_ca(&roots), &no_env).unwrap();
    assert_eq!(
        config.mail.extra_roots,
        [one.cert.der().clone(), two.cert.der().clone()]
    );
    assert_eq!(config.mail.ca_file.as_deref(), Some(roots.as_path()));
    assert!(from_toml("", &no_env).unwrap().mail.extra_roots.is_empty());

    let missing = dir.path().join("missing.pem");
    let key_only = dir.path().join("key.pem");
    std::fs::write(&key_only, pem("PRIVATE KEY", &one.key_pair.serialize_der())).unwrap();
    let not_a_certificate = dir.path().join("junk.pem");
    std::fs::write(&not_a_certificate, pem("CERTIFICATE", b"not DER at all")).unwrap();
    for (path, expected) in [
        (&missing, "could not read"),
        (&key_only, "holds no certificate"),
        (&not_a_certificate, "cannot be a trusted root"),
    ] {
        let problems = problems_of(&with_ca(path));
        assert_eq!(keys(&problems), ["mail.ca_file"], "{problems:?}");
        let message = &problems[0].message;
        assert!(message.contains(expected), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
    }
}

#[test]
fn numbers_that_would_overflow_a_timer_are_refused_with_the_allowed_range() {
    let problems = problems_of(
        r#"
[mail]
timeout_s = 9000000000000000000
poll_s = 18446744073709551615
retry_base_s = 9000000000000000000
rate_per_s = 1e-30
[[sources]]
name = "s"
kind = "html"
url = "https://example.org/"
timeout_s = 9000000000000000000
page_pause_ms = 9000000000000000000
[sources.select]
entry = "li"
title = "h3"
"#,
    );
    for (key, range) in [
        ("mail.timeout_s", "between 1 and 3600"),
        ("mail.poll_s", "between 1 and 3600"),
        ("mail.retry_base_s", "between 1 and 86400"),
        ("mail.rate_per_s", "(one an hour) and 10000"),
        ("sources[0].timeout_s", "between 1 and 600"),
        ("sources[0].page_pause_ms", "between 0 and 60000"),
    ] {
        let problem = problems
            .iter()
            .find(|p| p.key == key)
            .unwrap_or_else(|| panic!("no problem for {key} in {problems:?}"));
        assert!(
            problem.message.contains(range),
            "{key}: {}",
            problem.message
        );
    }
    let huge_rate = problems_of("[mail]\nrate_per_s = 1e30\n");
    assert_eq!(keys(&huge_rate), ["mail.rate_per_s"]);
}

#[test]
fn a_schedule_that_can_never_fire_is_refused_with_its_key() {
    let problems = problems_of(
        r#"
[digest]
daily_schedule = "0 0 30 2 *"
[[sources]]
name = "s"
kind = "seed"
path = "x"
schedule = "0 12 31 4 *"
"#,
    );
    assert_eq!(
        keys(&problems),
        ["sources[0].schedule", "digest.daily_schedule"]
    );
    assert!(
        problems
            .iter()
            .all(|p| p.message.contains("can never fire")),
        "{problems:?}"
    );
    // 29 February comes round: a rare schedule is fine.
    let config = from_toml("[digest]\ndaily_schedule = \"0 9 29 2 *\"\n", &no_env);
    assert!(config.is_ok(), "{config:?}");
}

fn channel_env(name: &str) -> Option<String> {
    match name {
        "HOOK_URL" => Some("https://hooks.example.org/abc?sig=secret".to_owned()),
        "NOT_A_URL" => Some("javascript:alert(1)".to_owned()),
        "HOOK_SECRET" => Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()),
        "SHORT_SECRET" => Some("tiny".to_owned()),
        "BAD_WHSEC" => Some("whsec_not base64!".to_owned()),
        _ => None,
    }
}

fn channel_problems(channels: &str) -> Vec<Problem> {
    match from_toml(channels, &channel_env) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn issue_17_a_channel_gets_its_url_and_secret_from_the_environment_and_hides_them() {
    let config = from_toml(
        r#"
[[channels]]
name = "team-chat"
kind = "teams"
url_env = "HOOK_URL"
categories = ["board-papers", "leaflets"]

[[channels]]
name = "crm"
kind = "webhook"
url_env = "HOOK_URL"
secret_env = "HOOK_SECRET"
events = ["new", "changed", "withdrawn"]
rate_per_s = 2.0
"#,
        &channel_env,
    )
    .expect("valid");
    let [teams, hook] = &config.channels[..] else {
        panic!("two channels: {:?}", config.channels);
    };
    assert_eq!(teams.kind, ChannelKind::Teams);
    assert_eq!(
        teams.url.as_str(),
        "https://hooks.example.org/abc?sig=secret"
    );
    assert_eq!(
        teams.events,
        [ChannelEvent::New, ChannelEvent::Announcement]
    );
    assert!(matches!(&teams.categories, ChannelCategories::Only(s) if s.len() == 2));
    assert_eq!(hook.categories, ChannelCategories::All);
    assert_eq!(
        hook.secret.as_ref().map(Vec::len),
        Some(24),
        "whsec_ is base64-decoded"
    );
    let shown = format!("{config:?}");
    assert!(!shown.contains("sig=secret"), "{shown}");
    assert!(
        !shown.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        "{shown}"
    );
}

#[test]
fn issue_17_hostile_channels_are_refused_by_key_path_without_echoing_secrets() {
    let problems = channel_problems(
        r#"
[[channels]]
name = "Bad Name!"
kind = "irc"
url_env = "UNSET_URL"
categories = ["all", "leaflets"]
events = ["new", "deleted"]
rate_per_s = 0.0

[[channels]]
name = "two"
kind = "teams"
url_env = "NOT_A_URL"
secret_env = "HOOK_SECRET"
categories = ["Board Papers"]

[[channels]]
name = "two"
kind = "webhook"
url_env = "HOOK_URL"
secret_env = "SHORT_SECRET"

[[channels]]
name = "four"
kind = "webhook"
url_env = "HOOK_URL"
secret_env = "BAD_WHSEC"

[[channels]]
name = "five"
kind = "webhook"
url_env = "$(rm -rf)"
"#,
    );
    let mut got = keys(&problems);
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "channels[0].categories",
            "channels[0].events",
            "channels[0].kind",
            "channels[0].name",
            "channels[0].rate_per_s",
            "channels[0].url_env",
            "channels[1].categories",
            "channels[1].secret_env",
            "channels[1].url_env",
            "channels[2].name",
            "channels[2].secret_env",
            "channels[3].secret_env",
            "channels[4].secret_env",
            "channels[4].url_env",
        ],
        "{problems:?}"
    );
    let text = format!("{problems:?}");
    assert!(
        !text.contains("javascript"),
        "the URL is never shown: {text}"
    );
    assert!(!text.contains("tiny"), "the secret is never shown: {text}");
}

#[test]
fn issue_17_an_unknown_channel_key_is_an_error() {
    let err = from_toml(
        "[[channels]]\nname = \"a\"\nkind = \"slack\"\nurl_env = \"HOOK_URL\"\nurl = \"https://x\"\n",
        &channel_env,
    )
    .expect_err("unknown key");
    assert!(err.to_string().contains("unknown field `url`"), "{err}");
}
