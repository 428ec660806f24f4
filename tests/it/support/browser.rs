//! A real headless Chromium (Debian's) driven through `chromedriver`'s
//! WebDriver HTTP API with reqwest: a handful of commands, no client crate
//! (fantoccini would pull in a second TLS stack). Screenshots go to
//! `target/test-artifacts/`. chromedriver binds a port of its own choosing
//! and says which. Chromium's profile and temporary files live in one
//! folder of the test's, removed with the browser once chromedriver's
//! process group is killed.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use serde_json::{Value, json};

use super::http;

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session.
pub struct Browser {
    driver: Child,
    base: String,
    /// `profile/` (Chromium's `--user-data-dir`) and `tmp/` (`TMPDIR` of
    /// chromedriver and Chromium, where Chromium puts its singleton files).
    _scratch: tempfile::TempDir,
}

impl Browser {
    /// Start chromedriver and a headless Chromium session.
    pub async fn start() -> Self {
        let scratch = tempfile::tempdir().expect("browser scratch dir");
        let (profile, tmp) = (scratch.path().join("profile"), scratch.path().join("tmp"));
        std::fs::create_dir(&tmp).expect("browser tmp dir");
        // Its own process group, so dropping the browser ends Chromium too.
        let mut driver = Command::new("/usr/bin/chromedriver")
            .process_group(0)
            .arg("--port=0")
            .env("TMPDIR", &tmp)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts (package chromium-driver)");
        let port = started_on(&mut driver);
        let root = format!("http://127.0.0.1:{port}");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1024,1400",
        ];
        let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let caps = json!({ "capabilities": { "alwaysMatch": { "browserName": "chrome",
            "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args } } } });
        let created = call(&format!("{root}/session"), Some(caps)).await;
        let id = created["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        Self {
            driver,
            base: format!("{root}/session/{id}"),
            _scratch: scratch,
        }
    }

    /// Open `url`.
    pub async fn goto(&self, url: &str) {
        call(&format!("{}/url", self.base), Some(json!({ "url": url }))).await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        get(&format!("{}/url", self.base))
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The page's HTML.
    pub async fn source(&self) -> String {
        get(&format!("{}/source", self.base))
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The first element matching `css`.
    pub async fn find(&self, css: &str) -> String {
        let found = call(
            &format!("{}/element", self.base),
            Some(json!({ "using": "css selector", "value": css })),
        )
        .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned()
    }

    /// The rendered text of the first element matching `css`, as a person
    /// reads it (WebDriver's "Get Element Text").
    pub async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        get(&format!("{}/element/{id}/text", self.base))
            .await
            .as_str()
            .unwrap_or_else(|| panic!("no text for {css}"))
            .to_owned()
    }

    /// Click the element matching `css`.
    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        call(
            &format!("{}/element/{id}/click", self.base),
            Some(json!({})),
        )
        .await;
    }

    /// Type `text` into the element matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        call(
            &format!("{}/element/{id}/value", self.base),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Run `script` (a function body) in the page with `args`; a returned
    /// promise is awaited.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        call(
            &format!("{}/execute/sync", self.base),
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Resize the window so the page is `width` CSS pixels wide.
    pub async fn set_width(&self, width: u32) {
        call(
            &format!("{}/window/rect", self.base),
            Some(json!({ "width": width, "height": 900 })),
        )
        .await;
        let inner = self.execute("return window.innerWidth;", json!([])).await;
        assert_eq!(inner, json!(width), "the viewport follows the window");
    }

    /// How wide the page is laid out: more than the viewport means sideways scrolling.
    pub async fn scroll_width(&self) -> u64 {
        self.execute("return document.documentElement.scrollWidth;", json!([]))
            .await
            .as_u64()
            .expect("a width")
    }

    /// axe-core's WCAG 2.2 A and AA violations on the current page, as
    /// "rule: target…" lines. axe comes from the npm registry (scripts/test.sh
    /// installs it under tests/.npm).
    pub async fn axe_violations(&self) -> Vec<String> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/.npm/node_modules/axe-core/axe.min.js");
        let source = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run `npm install --prefix tests/.npm axe-core@4` (scripts/test.sh does)",
                path.display()
            )
        });
        self.execute(&source, json!([])).await;
        let run = "return axe.run(document, { runOnly: { type: 'tag', values:                    ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] } })                   .then(r => r.violations.map(v => v.id + ': ' + v.help + ' at ' +                    v.nodes.map(n => n.target.join(' ')).join(', ')));";
        let found = self.execute(run, json!([])).await;
        found
            .as_array()
            .expect("a list of violations")
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The page at 1280 and at 390 px wide: no axe violations at either, no
    /// sideways scrolling at 390 px; screenshots `{name}-1280` and `{name}-390`.
    pub async fn check_page(&self, name: &str) {
        for width in [1280, 390] {
            self.set_width(width).await;
            let violations = self.axe_violations().await;
            assert!(
                violations.is_empty(),
                "{name} at {width} px: {violations:#?}"
            );
            self.screenshot(&format!("{name}-{width}")).await;
        }
        let wide = self.scroll_width().await;
        assert!(wide <= 390, "{name} is {wide} px wide on a 390 px screen");
        self.set_width(1280).await;
    }

    /// Save a screenshot as `target/test-artifacts/{name}.png`.
    pub async fn screenshot(&self, name: &str) {
        let data = get(&format!("{}/screenshot", self.base)).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

/// The port chromedriver says it listens on ("ChromeDriver was started
/// successfully on port N."), once it does; its later output is drained.
fn started_on(driver: &mut Child) -> u16 {
    use std::io::BufRead as _;
    const STARTED: &str = "started successfully on port ";
    let stdout = driver
        .stdout
        .take()
        .expect("chromedriver's stdout is piped");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let port = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let (_, port) = line.split_once(STARTED)?;
            port.trim_end_matches('.').parse().ok()
        })
        .expect("chromedriver says which port it listens on");
    std::thread::spawn(move || lines.for_each(drop));
    port
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver's group holds the Chromium processes it started;
        // the scratch folder, with everything they wrote, goes after them.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}

async fn call(url: &str, body: Option<Value>) -> Value {
    let request = http().post(url).header("content-type", "application/json");
    let body = body.unwrap_or(json!({})).to_string();
    let response = request
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let value: Value = response.json_value().await;
    if value["value"].get("error").is_some() {
        panic!("WebDriver {url}: {}", value["value"]);
    }
    value["value"].clone()
}

async fn get(url: &str) -> Value {
    let response = http()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    response.json_value().await["value"].clone()
}

trait JsonValue {
    async fn json_value(self) -> Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> Value {
        let text = self.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}
