// Hostile clients against the real `tidings serve`: bursts of sign-ins
// (limits taken before the password check, memory bounded), sessions ended
// by signing out, slow and idle connections shed while a reader polls, and
// quick, clear failures when the database is gone or read-only.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::app::TestApp;
use crate::support::http;
use crate::support::postgres::on_postgres;
use crate::web::{PASSWORD, form_of, no_redirects, post_form, sign_in};

/// Peak resident memory of `serve` under the sign-in bursts, in KiB: a
/// debug build takes about 55 MiB at start, and sign-in at most two 19 MiB
/// blocks of argon2 memory. Before the bound, these bursts took 370 MiB and
/// more with every check.
const SIGN_IN_PEAK_KIB: u64 = 128 * 1024;

/// The `VmHWM` (peak resident set) of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Sends `count` sign-ins with `password` at once, each from the next of
/// `addresses` in turn; returns how many got each status.
async fn burst(
    app: &TestApp,
    (csrf, jar): &(String, String),
    password: &str,
    count: usize,
    addresses: &[IpAddr],
) -> std::collections::BTreeMap<u16, usize> {
    let clients: Vec<reqwest::Client> = addresses
        .iter()
        .map(|ip| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .local_address(*ip)
                .build()
                .unwrap()
        })
        .collect();
    let body = format!("csrf={csrf}&password={}", password.replace(' ', "+"));
    let mut tasks = Vec::new();
    for i in 0..count {
        let request = clients[i % clients.len()]
            .post(app.url("/admin/login"))
            .header(COOKIE, jar.as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone());
        tasks.push(tokio::spawn(async move {
            let r = request.send().await.unwrap();
            let session = r
                .headers()
                .get_all(SET_COOKIE)
                .iter()
                .any(|c| c.to_str().unwrap().starts_with("tidings_admin="));
            assert!(
                !(session && r.status() != StatusCode::SEE_OTHER),
                "a session only with a 303"
            );
            r.status().as_u16()
        }));
    }
    let mut counts = std::collections::BTreeMap::new();
    for task in tasks {
        *counts.entry(task.await.unwrap()).or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn sign_in_bursts_are_limited_before_the_password_check_and_memory_stays_bounded() {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("t.db").display());
    let app = TestApp::new(&url, "");
    let served = app.serve_env(&[("TIDINGS_ADMIN_PASSWORD", PASSWORD)]).await;
    let form = form_of(&app.url("/admin/login"), "").await;
    let one = [IpAddr::V4(Ipv4Addr::LOCALHOST)];

    let counts = burst(&app, &form, "wrong", 200, &one).await;
    let wrong = counts.get(&401).copied().unwrap_or(0);
    assert!(wrong <= 5, "at most the limit checked: {counts:?}");
    assert_eq!(
        wrong + counts.get(&429).copied().unwrap_or(0),
        200,
        "{counts:?}"
    );
    // The right password, sent in a burst after the limit, signs nobody in.
    let counts = burst(&app, &form, PASSWORD, 20, &one).await;
    assert_eq!(counts.get(&429), Some(&20), "{counts:?}");
    let r = post_form(
        &app.url("/admin/login"),
        &form.1,
        &format!("csrf={}&password={}", form.0, PASSWORD.replace(' ', "+")),
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key(RETRY_AFTER));

    // Many addresses (127.0.0.2 …): the account's limit holds across them,
    // and no more than a few checks run at once.
    let many: Vec<IpAddr> = (2..=101)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
        .collect();
    let counts = burst(&app, &form, "wrong", 200, &many).await;
    let checked = counts.get(&401).copied().unwrap_or(0);
    assert!(
        wrong + checked <= 30,
        "at most 30 checks per account: {counts:?}"
    );
    let answered: usize = [401, 429, 503]
        .iter()
        .map(|s| counts.get(s).copied().unwrap_or(0))
        .sum();
    assert_eq!(answered, 200, "{counts:?}");

    let peak = peak_rss_kib(served.pid());
    eprintln!("peak RSS of serve after the bursts: {} KiB", peak);
    assert!(
        peak < SIGN_IN_PEAK_KIB,
        "peak RSS {peak} KiB over {SIGN_IN_PEAK_KIB} KiB"
    );
}

#[tokio::test]
async fn a_session_cookie_replayed_after_signing_out_is_refused() {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("t.db").display());
    let app = TestApp::new(&url, "");
    let _served = app.serve_env(&[("TIDINGS_ADMIN_PASSWORD", PASSWORD)]).await;
    let jar = sign_in(&app).await;
    let home = no_redirects()
        .get(app.url("/admin"))
        .header(COOKIE, &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    let (csrf, jar) = form_of(&app.url("/admin"), &jar).await;
    let out = post_form(&app.url("/admin/logout"), &jar, &format!("csrf={csrf}")).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    // The browser forgets the cookie; a copy of it is worth nothing now.
    let replayed = no_redirects()
        .get(app.url("/admin"))
        .header(COOKIE, &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), StatusCode::SEE_OTHER);
    assert_eq!(replayed.headers()[LOCATION], "/admin/login");
}

/// Opens a connection and sends the start of a request (`closed_within`
/// then trickles a header line every second, never finishing: slowloris).
async fn slow_header(port: u16) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    stream
        .write_all(b"GET /feeds/all.rss HTTP/1.1\r\nHost: x\r\n")
        .await
        .ok()?;
    Some(stream)
}

/// Waits until the server closes `stream`, feeding it a header line every
/// second when `trickle`; returns how long that took from `opened`, or
/// `None` if it was still open at `limit`.
async fn closed_within(
    mut stream: TcpStream,
    opened: Instant,
    trickle: bool,
    limit: Duration,
) -> Option<Duration> {
    let mut buf = [0u8; 1024];
    loop {
        let left = limit.checked_sub(opened.elapsed())?;
        let wait = left.min(Duration::from_secs(1));
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(opened.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => {
                if trickle && stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
                    return Some(opened.elapsed());
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_shed_while_a_reader_polls() {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("t.db").display());
    let app = TestApp::with_server_keys(
        &url,
        "header_timeout_s = 2\nidle_timeout_s = 3\nmax_connections = 400",
        "",
    );
    app.run_ok(&["ingest"]);
    let _served = app.serve().await;
    let port = app.port();

    // Headers trickled in slowly are cut off at the header timeout.
    let opened = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..50 {
        slow.push(slow_header(port).await.unwrap());
    }
    let waits: Vec<_> = slow
        .into_iter()
        .map(|s| tokio::spawn(closed_within(s, opened, true, Duration::from_secs(6))))
        .collect();
    // A keep-alive connection left idle after a request is closed at the idle timeout.
    let mut idle = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    let idle_since = Instant::now();
    let idle_wait = tokio::spawn(closed_within(
        idle,
        idle_since,
        false,
        Duration::from_secs(6),
    ));
    for wait in waits {
        let took = wait.await.unwrap().expect("a slow connection is closed");
        assert!(
            took >= Duration::from_millis(1_900) && took < Duration::from_millis(3_500),
            "closed after {took:?}, the header timeout is 2 s"
        );
    }
    let took = idle_wait
        .await
        .unwrap()
        .expect("the idle connection is closed");
    assert!(
        took >= Duration::from_millis(2_900) && took < Duration::from_millis(4_500),
        "idle connection closed after {took:?}, the idle timeout is 3 s"
    );

    // 1,000 hostile connections (slow headers, and silent ones), more than
    // the limit of 400, kept coming for 6 s while a feed reader polls.
    let stop_at = Instant::now() + Duration::from_secs(6);
    let mut attackers = Vec::new();
    for i in 0..1_000 {
        attackers.push(tokio::spawn(async move {
            let mut opened = 0;
            while Instant::now() < stop_at {
                let stream = if i % 2 == 0 {
                    slow_header(port).await
                } else {
                    TcpStream::connect(("127.0.0.1", port)).await.ok()
                };
                let Some(stream) = stream else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                opened += 1;
                let left = stop_at.saturating_duration_since(Instant::now());
                let _ = closed_within(stream, Instant::now(), i % 2 == 0, left).await;
                // Closed by the server: come back a second later.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            opened
        }));
    }
    // The reader runs on a thread of its own, so the attackers' tasks in
    // this process do not delay it: what it measures is the server.
    let feed = app.url("/feeds/all.rss");
    let reader = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let reader = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            let mut polls = Vec::new();
            while Instant::now() < stop_at {
                let started = Instant::now();
                let r =
                    tokio::time::timeout(Duration::from_secs(5), reader.get(&feed).send()).await;
                let took = started.elapsed();
                let status = match r {
                    Ok(Ok(r)) => r.status().as_u16(),
                    _ => 0,
                };
                polls.push((status, took));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            polls
        })
    });
    let polls = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();
    let mut opened = 0;
    for a in attackers {
        opened += a.await.unwrap();
    }
    let slowest = polls.iter().map(|(_, t)| *t).max().unwrap();
    eprintln!(
        "{} polls under {opened} hostile connections: slowest {slowest:?}",
        polls.len()
    );
    assert!(polls.len() >= 20, "{polls:?}");
    assert!(
        polls
            .iter()
            .all(|(s, t)| *s == 200 && *t < Duration::from_secs(1)),
        "every poll answered 200 within 1 s: {polls:?}"
    );
    assert!(opened >= 1_000, "the attackers held their connections");
    let metrics = http()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let shed = |reason: &str| {
        let prefix = format!("tidings_http_connections_shed_total{{reason=\"{reason}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0.0, |v| v.parse::<f64>().unwrap())
    };
    assert!(shed("header_timeout") >= 50.0, "{metrics}");
    assert!(shed("idle") >= 1.0, "{metrics}");
    assert!(shed("displaced") >= 1.0, "the limit was reached: {metrics}");
}

/// A TCP proxy of the test's own in front of PostgreSQL, to cut. It runs on
/// a runtime of its own, so it keeps forwarding while the test blocks on a
/// command.
struct Proxy {
    port: u16,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Proxy {
    fn start(target: String) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self {
            port,
            runtime: Some(runtime),
        }
    }

    /// Stop listening and cut every connection.
    fn cut(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: TIDINGS_TEST_PG"]
async fn a_database_outage_answers_503_with_retry_after_within_seconds() {
    on_postgres(|db| async move {
        let mut url = url::Url::parse(&db.url).unwrap();
        let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
        let mut proxy = Proxy::start(target);
        url.set_port(Some(proxy.port)).unwrap();
        let app = TestApp::new(url.as_str(), "");
        app.run_ok(&["ingest"]);
        let _served = app.serve().await;
        let page = http().get(app.url("/")).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);

        proxy.cut();
        for path in ["/", "/api/resources"] {
            let started = Instant::now();
            let r = http().get(app.url(path)).send().await.unwrap();
            let took = started.elapsed();
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
            assert!(
                took < Duration::from_secs(4),
                "{path} answered after {took:?}"
            );
            assert!(r.headers().contains_key(RETRY_AFTER), "{path}");
            let html = r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html");
            let body = r.text().await.unwrap();
            if path == "/" {
                assert!(html, "a page fails as a page");
                assert!(body.contains("cannot reach its database"), "{body}");
            } else {
                assert!(!html && body.contains("\"error\""), "{body}");
            }
        }
        // Feeds are served from memory through the outage.
        let feed = http().get(app.url("/feeds/all.rss")).send().await.unwrap();
        assert_eq!(feed.status(), StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn unreachable_and_read_only_databases_fail_fast_and_say_which() {
    let app = TestApp::new("postgres://tidings:s3cret@127.0.0.1:1/tidings", "");
    let started = Instant::now();
    let out = app.run(&["ingest"]);
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(took < Duration::from_secs(8), "failed after {took:?}");
    assert!(
        stderr.contains("postgres://tidings:***@127.0.0.1:1/tidings"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.db");
    let writable = TestApp::new(&format!("sqlite://{}", file.display()), "");
    writable.run_ok(&["ingest"]);
    let read_only = TestApp::new(&format!("sqlite://{}?mode=ro", file.display()), "");
    for command in [["ingest"], ["serve"]] {
        let started = Instant::now();
        let out = read_only.run(&command);
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command:?}");
        assert!(
            took < Duration::from_secs(8),
            "{command:?} failed after {took:?}"
        );
        assert!(
            stderr.contains("the database is read-only"),
            "{command:?}: {stderr}"
        );
        assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: TIDINGS_TEST_PG"]
async fn serve_refuses_to_start_on_a_read_only_postgresql_database() {
    on_postgres(|db| async move {
        let app = TestApp::new(&db.url, "");
        app.run_ok(&["db", "migrate"]);
        let name = url::Url::parse(&db.url)
            .unwrap()
            .path()
            .trim_start_matches('/')
            .to_owned();
        let read_only = format!("ALTER DATABASE {name} SET default_transaction_read_only = on");
        sqlx::query(sqlx::AssertSqlSafe(read_only))
            .execute(db.store.pool())
            .await
            .unwrap();
        // Migrated already: without a check at start, the migrator's own
        // statement is what fails, with a message about a transaction.
        let mut serve = app.spawn(&["serve"]);
        let deadline = Instant::now() + Duration::from_secs(8);
        while serve.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = serve.kill();
                panic!("serve kept running on a read-only database");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let out = serve.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("the database is read-only") && stderr.contains(&name),
            "{stderr}"
        );
    })
    .await;
}
