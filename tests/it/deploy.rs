//! The deploy files in `deploy/`, read by the tools that read them: every
//! shipped config passes Tidings' own config check with the environment its
//! deployment gives it; the Kubernetes manifests and the compose file agree
//! with their configs and with the image (config path, ports, probes,
//! secrets, user, shutdown grace) and their commands parse; the systemd unit
//! passes `systemd-analyze verify` and its security review. No container
//! engine runs here, so the image itself is not built by these tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use serde_json::Value;
use tidings::cli::Cli;
use tidings::config::{self, Config, MailTransport};

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file)
}

/// Every document of a YAML file, as JSON, read by PyYAML (Debian's Python).
fn yaml_documents(file: &str) -> Vec<Value> {
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(deploy(file))
        .output()
        .expect("run /usr/bin/python3 (Debian's python3-yaml)");
    assert!(
        out.status.success(),
        "{file} is not YAML: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn yaml(file: &str) -> Value {
    let mut documents = yaml_documents(file);
    assert_eq!(documents.len(), 1, "{file} holds one document");
    documents.remove(0)
}

/// Checks `text` as Tidings does at start, with `env` as the process environment.
fn checked(text: &str, env: &HashMap<String, String>, what: &str) -> Config {
    let lookup = |name: &str| env.get(name).cloned();
    config::from_toml(text, &lookup).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Whether the binary's command line parser accepts `args` (as a container
/// or unit runs it): the parser `main` uses, so a missing or unknown argument
/// is an error here as it would be at start.
fn command_parses(args: &[&str]) -> Result<(), String> {
    Cli::try_parse_from(std::iter::once("tidings").chain(args.iter().copied()))
        .map(drop)
        .map_err(|e| e.to_string())
}

#[test]
fn command_parses_refuses_what_the_binary_refuses() {
    assert_eq!(command_parses(&["serve"]), Ok(()));
    for refused in [
        &["db", "copy"][..],
        &["serve", "--no-such-flag"],
        &["no-such-command"],
        &[],
    ] {
        assert!(command_parses(refused).is_err(), "{refused:?} parsed");
        let binary = Command::new(env!("CARGO_BIN_EXE_tidings"))
            .args(refused)
            .output()
            .unwrap();
        assert_eq!(
            binary.status.code(),
            Some(2),
            "the binary refuses {refused:?}"
        );
    }
}

/// The value of `ENV name=value` in the Dockerfile's final stage.
fn dockerfile_env(name: &str) -> String {
    let dockerfile = std::fs::read_to_string(deploy("Dockerfile")).unwrap();
    let prefix = format!("ENV {name}=");
    dockerfile
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("the Dockerfile sets no {name}"))
        .trim()
        .to_owned()
}

fn smtp_url(config: &Config) -> &str {
    match &config.mail.transport {
        MailTransport::Smtp { url } => url,
        MailTransport::File { dir } => panic!("mail goes to files in {}", dir.display()),
    }
}

fn as_str(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
}

#[test]
fn the_one_box_example_config_passes_the_check_with_the_unit_s_secrets() {
    let text = std::fs::read_to_string(deploy("tidings.example.toml")).unwrap();
    // What the unit's EnvironmentFile (/etc/tidings/env) is documented to hold.
    let env = HashMap::from([
        (
            "TIDINGS_SMTP_URL".to_owned(),
            "smtps://u:p@smtp.example.org".to_owned(),
        ),
        ("TIDINGS_ADMIN_TOKEN".to_owned(), "token".to_owned()),
    ]);
    let config = checked(&text, &env, "deploy/tidings.example.toml");
    assert!(
        config.database.url.starts_with("sqlite://"),
        "one box runs on SQLite"
    );
    assert_eq!(smtp_url(&config), "smtps://u:p@smtp.example.org");
    assert!(!config.sources.is_empty());
}

/// The Kubernetes manifests in `deploy/k8s/`.
struct Kubernetes {
    deployment: Value,
    config_map: Value,
    secret: Value,
    service: Value,
}

impl Kubernetes {
    fn load() -> Self {
        Self {
            deployment: yaml("k8s/deployment.yaml"),
            config_map: yaml("k8s/configmap.yaml"),
            secret: yaml("k8s/secret.yaml"),
            service: yaml("k8s/service.yaml"),
        }
    }

    fn pod(&self) -> &Value {
        &self.deployment["spec"]["template"]["spec"]
    }

    fn container(&self) -> &Value {
        &self.pod()["containers"][0]
    }

    /// The config file the container reads: the ConfigMap's entry mounted
    /// where TIDINGS_CONFIG points.
    fn config_text(&self) -> &str {
        let env = self.container()["env"].as_array().unwrap();
        let config_path = env
            .iter()
            .find(|e| e["name"] == "TIDINGS_CONFIG")
            .map(|e| Path::new(as_str(&e["value"])))
            .expect("the container sets TIDINGS_CONFIG");
        let mount = self.container()["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| Path::new(as_str(&m["mountPath"])) == config_path.parent().unwrap())
            .expect("a volume mounted where TIDINGS_CONFIG points");
        let volume = self.pod()["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap();
        assert_eq!(
            volume["configMap"]["name"],
            self.config_map["metadata"]["name"]
        );
        let file_name = config_path.file_name().unwrap().to_str().unwrap();
        as_str(&self.config_map["data"][file_name])
    }

    /// The Secret's entries, which the container gets as its environment.
    fn secrets(&self) -> HashMap<String, String> {
        assert_eq!(
            self.container()["envFrom"][0]["secretRef"]["name"],
            self.secret["metadata"]["name"]
        );
        self.secret["stringData"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), as_str(v).to_owned()))
            .collect()
    }

    fn config(&self) -> Config {
        checked(
            self.config_text(),
            &self.secrets(),
            "the ConfigMap's tidings.toml",
        )
    }
}

#[test]
fn kubernetes_gives_the_container_the_config_map_s_config_completed_by_the_secret() {
    let k8s = Kubernetes::load();
    let secrets = k8s.secrets();
    let config = k8s.config();
    assert_eq!(config.database.url, secrets["TIDINGS_DATABASE_URL"]);
    assert!(config.database.url.starts_with("postgres://"));
    assert_eq!(smtp_url(&config), secrets["TIDINGS_SMTP_URL"]);
    assert_eq!(
        config.admin.token.as_deref(),
        Some(secrets["TIDINGS_ADMIN_TOKEN"].as_str())
    );
    let args: Vec<&str> = k8s.container()["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(as_str)
        .collect();
    command_parses(&args).unwrap_or_else(|e| panic!("the container's args {args:?}: {e}"));
}

#[test]
fn kubernetes_probes_and_serves_the_port_the_config_listens_on() {
    let k8s = Kubernetes::load();
    let container = k8s.container();
    let port = &container["ports"][0];
    assert_eq!(port["containerPort"], k8s.config().server.listen.port());
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(container[probe]["httpGet"]["port"], port["name"], "{probe}");
    }
    assert_eq!(k8s.service["spec"]["ports"][0]["targetPort"], port["name"]);
    assert_eq!(
        k8s.service["spec"]["selector"],
        k8s.deployment["spec"]["template"]["metadata"]["labels"]
    );
}

#[test]
fn kubernetes_runs_three_replicas_as_the_image_s_user_with_time_to_finish_sends() {
    let k8s = Kubernetes::load();
    assert_eq!(k8s.deployment["kind"], "Deployment");
    assert_eq!(k8s.deployment["spec"]["replicas"], 3);
    let pod = k8s.pod();
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let dockerfile = std::fs::read_to_string(deploy("Dockerfile")).unwrap();
    let uid = pod["securityContext"]["runAsUser"].as_u64().unwrap();
    assert!(
        dockerfile.contains(&format!("--uid {uid} ")),
        "the image's user is uid {uid}"
    );
    // On SIGTERM a replica waits for its sends in flight (mail.timeout_s + 2 s):
    // SIGKILL must come later.
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let needed = k8s.config().mail.timeout.as_secs() + 2;
    assert!(
        grace > needed,
        "terminationGracePeriodSeconds {grace} must exceed mail.timeout_s + 2 = {needed}"
    );
}

#[test]
fn compose_wires_tidings_to_its_database_and_mail_catcher() {
    let compose = yaml("compose.yaml");
    let services = &compose["services"];
    let tidings = &services["tidings"];
    let config_path = dockerfile_env("TIDINGS_CONFIG");
    let mounted = tidings["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(as_str)
        .find_map(|v| {
            v.strip_suffix(":ro")?
                .strip_suffix(config_path.as_str())?
                .strip_suffix(':')
        })
        .expect("a config file mounted read-only where the image's TIDINGS_CONFIG points");
    let text = std::fs::read_to_string(deploy(mounted)).unwrap();
    let env: HashMap<String, String> = tidings["environment"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), as_str(v).to_owned()))
        .collect();
    let config = checked(&text, &env, mounted);

    let host_of = |url: &str| url::Url::parse(url).unwrap().host_str().unwrap().to_owned();
    let database = host_of(&config.database.url);
    let relay = host_of(smtp_url(&config));
    assert!(
        services[&database].is_object(),
        "database host {database} is a service"
    );
    assert!(
        services[&relay].is_object(),
        "mail host {relay} is a service"
    );
    assert_eq!(
        tidings["depends_on"][&database]["condition"],
        "service_healthy"
    );
    let published = tidings["ports"][0].as_str().unwrap();
    assert!(
        published.ends_with(&format!(":{}", config.server.listen.port())),
        "{published} publishes the port the config listens on"
    );
    // The seeds the compose config reads are in the image's working directory.
    assert!(
        std::fs::read_to_string(deploy("Dockerfile"))
            .unwrap()
            .contains("COPY seeds /var/lib/tidings/seeds")
    );
}

#[test]
fn the_image_s_command_parses() {
    let dockerfile = std::fs::read_to_string(deploy("Dockerfile")).unwrap();
    let cmd = dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("CMD "))
        .expect("the Dockerfile has a CMD");
    let args: Vec<String> = serde_json::from_str(cmd).unwrap();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    command_parses(&args).unwrap_or_else(|e| panic!("CMD {args:?}: {e}"));
}

/// `systemd-analyze` on a copy of the unit whose `ExecStart` runs the test's binary.
fn systemd_analyze(args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(deploy("tidings.service"))
        .unwrap()
        .replace("/usr/local/bin/tidings", env!("CARGO_BIN_EXE_tidings"));
    let path = dir.path().join("tidings.service");
    std::fs::write(&path, unit).unwrap();
    Command::new("systemd-analyze")
        .args(args)
        .arg(&path)
        .output()
        .expect("run systemd-analyze (Debian's systemd)")
}

#[test]
fn the_systemd_unit_verifies_and_scores_as_hardened() {
    let verify = systemd_analyze(&["verify"]);
    let complaints = String::from_utf8_lossy(&verify.stderr);
    // verify exits 0 on unknown keys too, only saying so: any word is a failure.
    assert!(
        verify.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify: {complaints}"
    );
    // systemd's exposure score: 0 (locked down) to 10 (exposed), "OK" up to 2;
    // --threshold counts in tenths.
    let security = systemd_analyze(&["security", "--offline=yes", "--threshold=20", "--no-pager"]);
    let report = String::from_utf8_lossy(&security.stdout);
    assert!(
        security.status.success(),
        "exposure above 2: {}",
        report.lines().last().unwrap_or_default()
    );
    assert!(
        report.contains("Overall exposure level for tidings.service"),
        "{report}"
    );

    let unit = std::fs::read_to_string(deploy("tidings.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart="))
        .unwrap();
    let args: Vec<&str> = exec.split_whitespace().skip(1).collect();
    command_parses(&args).unwrap_or_else(|e| panic!("ExecStart {args:?}: {e}"));
}

/// File descriptors `serve` keeps back from HTTP connections.
const RESERVED_FILES: usize = tidings::web::RESERVED_FILES as usize;

#[test]
fn the_unit_and_compose_raise_the_open_file_limit_above_the_connection_limit() {
    let env = HashMap::from([(
        "TIDINGS_SMTP_URL".to_owned(),
        "smtps://u:p@smtp.example.org".to_owned(),
    )]);
    let text = std::fs::read_to_string(deploy("tidings.example.toml")).unwrap();
    let one_box = checked(&text, &env, "deploy/tidings.example.toml");
    let unit = std::fs::read_to_string(deploy("tidings.service")).unwrap();
    let limit: usize = unit
        .lines()
        .find_map(|line| line.strip_prefix("LimitNOFILE="))
        .expect("the unit sets LimitNOFILE")
        .parse()
        .unwrap();
    assert!(
        limit >= one_box.server.max_connections + RESERVED_FILES,
        "LimitNOFILE={limit} leaves no room for server.max_connections = {}",
        one_box.server.max_connections
    );
    let compose = yaml("compose.yaml");
    let text = std::fs::read_to_string(deploy("compose.toml")).unwrap();
    let config = checked(&text, &env, "deploy/compose.toml");
    let nofile = &compose["services"]["tidings"]["ulimits"]["nofile"];
    let soft = nofile["soft"]
        .as_u64()
        .expect("compose sets ulimits.nofile");
    assert!(soft as usize >= config.server.max_connections + RESERVED_FILES);
}
