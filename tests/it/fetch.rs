//! `source::fetch::Fetcher` end to end against `support::site::Site` on
//! loopback: User-Agent, allowed origins and redirects, robots.txt,
//! conditional GET, retries, timeouts, size caps (also after gzip and
//! brotli) and charset decoding.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use tidings::source::fetch::{
    FetchError, FetchPolicy, Fetched, Fetcher, MAX_REDIRECTS, Page, Validators, user_agent,
};
use url::Url;

use crate::support::site::{Reply, Site};

const CONTACT: &str = "https://feeds.example.org/about";

/// A policy for `site` with fast retries and short timeouts.
fn policy(site: &Site) -> FetchPolicy {
    let mut policy = FetchPolicy::new(CONTACT, vec![site.origin()]);
    policy.retry_base = Duration::from_millis(10);
    policy.timeout = Duration::from_secs(5);
    policy.connect_timeout = Duration::from_secs(2);
    policy.page_pause = Duration::ZERO;
    policy
}

async fn get(policy: FetchPolicy, url: &Url) -> Result<Fetched, FetchError> {
    Fetcher::new(policy)
        .expect("client builds")
        .get(url, None)
        .await
}

fn page(fetched: Fetched) -> Page {
    match fetched {
        Fetched::Page(page) => page,
        other => panic!("expected a page, got {other:?}"),
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder
        .write_all(bytes)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

fn brotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
    writer
        .write_all(bytes)
        .expect("writing to a Vec cannot fail");
    drop(writer);
    out
}

// --- requests carry what they should ---

#[tokio::test]
async fn sends_a_user_agent_naming_tidings_and_the_contact() {
    let site = Site::start().await;
    site.route("/lib", Reply::html("<p>hello</p>"));
    let page = page(get(policy(&site), &site.url("/lib")).await.unwrap());
    assert_eq!(page.text, "<p>hello</p>");
    assert_eq!(page.encoding, "UTF-8");
    assert_eq!(page.url, site.url("/lib"));
    let ua = site.requests("/lib")[0]
        .header("user-agent")
        .unwrap()
        .to_owned();
    assert_eq!(ua, user_agent(CONTACT));
    assert!(ua.starts_with("Tidings/") && ua.contains(CONTACT), "{ua}");
    assert_eq!(
        site.requests("/robots.txt")[0].header("user-agent"),
        Some(ua.as_str())
    );
}

#[tokio::test]
async fn conditional_get_sends_validators_and_maps_304() {
    let site = Site::start().await;
    let first = Reply::html("v1")
        .header("ETag", "\"abc\"")
        .header("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT");
    site.route("/lib", Reply::Sequence(vec![first, Reply::status(304)]));
    let mut fetcher = Fetcher::new(policy(&site)).unwrap();
    let page = page(fetcher.get(&site.url("/lib"), None).await.unwrap());
    let expected = Validators {
        etag: Some("\"abc\"".into()),
        last_modified: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()),
    };
    assert_eq!(page.validators, expected);
    let again = fetcher
        .get(&site.url("/lib"), Some(&page.validators))
        .await
        .unwrap();
    assert_eq!(
        again,
        Fetched::NotModified {
            url: site.url("/lib")
        }
    );
    let requests = site.requests("/lib");
    assert_eq!(requests[0].header("if-none-match"), None);
    assert_eq!(requests[1].header("if-none-match"), Some("\"abc\""));
    assert_eq!(
        requests[1].header("if-modified-since"),
        Some("Wed, 21 Oct 2015 07:28:00 GMT")
    );
}

#[tokio::test]
async fn a_304_to_an_unconditional_request_is_an_error() {
    let site = Site::start().await;
    site.route("/lib", Reply::status(304));
    let error = get(policy(&site), &site.url("/lib")).await.unwrap_err();
    assert!(
        matches!(error, FetchError::Status { status, .. } if status == 304),
        "{error}"
    );
}

#[tokio::test]
async fn page_pause_spaces_out_requests() {
    let site = Site::start().await;
    site.route("/a", Reply::html("a"));
    let mut policy = policy(&site);
    policy.page_pause = Duration::from_millis(300);
    let mut fetcher = Fetcher::new(policy).unwrap();
    let started = Instant::now();
    fetcher.get(&site.url("/a"), None).await.unwrap();
    fetcher.get(&site.url("/a"), None).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

// --- only the configured origins, on every hop ---

#[tokio::test]
async fn refuses_urls_outside_the_allowed_origins() {
    let site = Site::start().await;
    let other = Site::start().await;
    let mut fetcher = Fetcher::new(policy(&site)).unwrap();
    for url in [
        other.url("/lib"),
        Url::parse("file:///etc/passwd").unwrap(),
        Url::parse(&site.url("/lib").as_str().replace("127.0.0.1", "localhost")).unwrap(),
        Url::parse(&site.url("/lib").as_str().replace("http:", "https:")).unwrap(),
    ] {
        let error = fetcher.get(&url, None).await.unwrap_err();
        assert!(
            matches!(&error, FetchError::NotAllowed { url: refused } if *refused == url),
            "{error}"
        );
    }
    assert_eq!(other.total_hits() + site.total_hits(), 0);
}

#[tokio::test]
async fn follows_redirects_within_the_origin() {
    let site = Site::start().await;
    for hop in 0..MAX_REDIRECTS {
        site.route(
            &format!("/hop/{hop}"),
            Reply::redirect(301, &format!("/hop/{}", hop + 1)),
        );
    }
    site.route(&format!("/hop/{MAX_REDIRECTS}"), Reply::html("arrived"));
    let page = page(get(policy(&site), &site.url("/hop/0")).await.unwrap());
    assert_eq!(page.text, "arrived");
    assert_eq!(page.url, site.url(&format!("/hop/{MAX_REDIRECTS}")));
}

#[tokio::test]
async fn too_many_redirects_and_loops_fail() {
    let site = Site::start().await;
    for hop in 0..=MAX_REDIRECTS {
        site.route(
            &format!("/hop/{hop}"),
            Reply::redirect(302, &format!("/hop/{}", hop + 1)),
        );
    }
    site.route(
        &format!("/hop/{}", MAX_REDIRECTS + 1),
        Reply::html("too far"),
    );
    site.route("/self", Reply::redirect(307, "/self"));
    site.route("/ping", Reply::redirect(308, "/pong"));
    site.route("/pong", Reply::redirect(303, "/ping"));
    let mut fetcher = Fetcher::new(policy(&site)).unwrap();
    for start in ["/hop/0", "/self", "/ping"] {
        let error = fetcher.get(&site.url(start), None).await.unwrap_err();
        assert!(
            matches!(
                error,
                FetchError::Redirects {
                    limit: MAX_REDIRECTS,
                    ..
                }
            ),
            "{error}"
        );
    }
    assert_eq!(site.hits(&format!("/hop/{}", MAX_REDIRECTS + 1)), 0);
    assert_eq!(site.hits("/self"), MAX_REDIRECTS + 1);
}

#[tokio::test]
async fn redirects_to_other_origins_or_schemes_are_refused() {
    let site = Site::start().await;
    let other = Site::start().await;
    other.route("/x", Reply::html("elsewhere"));
    site.route("/away", Reply::redirect(302, other.url("/x").as_str()));
    site.route("/file", Reply::redirect(301, "file:///etc/passwd"));
    site.route("/ftp", Reply::redirect(301, "ftp://127.0.0.1/x"));
    let mut fetcher = Fetcher::new(policy(&site)).unwrap();
    for (from, to) in [
        ("/away", other.url("/x").as_str()),
        ("/file", "file:///etc/passwd"),
        ("/ftp", "ftp://127.0.0.1/x"),
    ] {
        let error = fetcher.get(&site.url(from), None).await.unwrap_err();
        assert!(
            matches!(&error, FetchError::NotAllowed { url } if url.as_str() == to),
            "{error}"
        );
    }
    assert_eq!(other.total_hits(), 0);
}

#[tokio::test]
async fn a_redirect_without_location_is_an_error() {
    let site = Site::start().await;
    site.route("/nowhere", Reply::status(302));
    let error = get(policy(&site), &site.url("/nowhere")).await.unwrap_err();
    assert!(matches!(error, FetchError::BadRedirect { .. }), "{error}");
}

// --- robots.txt ---

#[tokio::test]
async fn robots_disallow_is_obeyed_and_fetched_once() {
    let site = Site::start().await;
    site.route(
        "/robots.txt",
        Reply::status(200).body("User-agent: *\nDisallow: /private\n"),
    );
    site.route("/public", Reply::html("ok"));
    site.route("/private/page", Reply::html("secret"));
    site.route("/to-private", Reply::redirect(302, "/private/page"));
    let mut fetcher = Fetcher::new(policy(&site)).unwrap();
    assert!(fetcher.get(&site.url("/public"), None).await.is_ok());
    for path in ["/private/page", "/to-private"] {
        let error = fetcher.get(&site.url(path), None).await.unwrap_err();
        assert!(
            matches!(&error, FetchError::Robots { url, .. } if url.path() == "/private/page"),
            "{error}"
        );
        assert!(error.to_string().contains("Disallow: /private"), "{error}");
    }
    assert_eq!(site.hits("/private/page"), 0);
    assert_eq!(site.hits("/robots.txt"), 1);
}

#[tokio::test]
async fn robots_group_for_tidings_wins() {
    let site = Site::start().await;
    let robots = "User-agent: *\nDisallow: /\n\nUser-agent: Tidings\nAllow: /\nDisallow: /admin\n";
    site.route("/robots.txt", Reply::status(200).body(robots));
    site.route("/lib", Reply::html("ok"));
    let mut fetcher = Fetcher::new(policy(&site)).unwrap();
    assert!(fetcher.get(&site.url("/lib"), None).await.is_ok());
    let error = fetcher.get(&site.url("/admin"), None).await.unwrap_err();
    assert!(matches!(error, FetchError::Robots { .. }), "{error}");
}

#[tokio::test]
async fn missing_robots_allows_everything() {
    let site = Site::start().await;
    site.route("/robots.txt", Reply::status(410));
    site.route("/lib", Reply::html("ok"));
    assert!(get(policy(&site), &site.url("/lib")).await.is_ok());
    assert_eq!(site.hits("/robots.txt"), 1);
}

#[tokio::test]
async fn failing_robots_disallows_everything() {
    let site = Site::start().await;
    site.route("/robots.txt", Reply::status(503));
    site.route("/lib", Reply::html("ok"));
    let error = get(policy(&site), &site.url("/lib")).await.unwrap_err();
    assert!(matches!(error, FetchError::Robots { .. }), "{error}");
    assert!(error.to_string().contains("unreachable"), "{error}");
    assert_eq!(site.hits("/lib"), 0);
    assert_eq!(
        site.hits("/robots.txt"),
        4,
        "robots.txt is retried like any request"
    );
}

#[tokio::test]
async fn robots_can_be_ignored_by_policy() {
    let site = Site::start().await;
    site.route(
        "/robots.txt",
        Reply::status(200).body("User-agent: *\nDisallow: /\n"),
    );
    site.route("/lib", Reply::html("ok"));
    let mut policy = policy(&site);
    policy.honour_robots = false;
    assert!(get(policy, &site.url("/lib")).await.is_ok());
    assert_eq!(site.hits("/robots.txt"), 0);
}

// --- statuses and retries ---

#[tokio::test]
async fn client_errors_fail_at_once() {
    let site = Site::start().await;
    site.route("/gone", Reply::status(404));
    let error = get(policy(&site), &site.url("/gone")).await.unwrap_err();
    assert!(
        matches!(error, FetchError::Status { status, .. } if status == 404),
        "{error}"
    );
    assert!(
        error.to_string().contains(site.url("/gone").as_str()),
        "{error}"
    );
    assert_eq!(site.hits("/gone"), 1);
}

#[tokio::test]
async fn a_503_then_200_is_retried() {
    let site = Site::start().await;
    site.route(
        "/lib",
        Reply::Sequence(vec![Reply::status(503), Reply::html("back")]),
    );
    let page = page(get(policy(&site), &site.url("/lib")).await.unwrap());
    assert_eq!(page.text, "back");
    assert_eq!(site.hits("/lib"), 2);
}

#[tokio::test]
async fn server_errors_give_up_after_three_retries() {
    let site = Site::start().await;
    site.route("/lib", Reply::status(500));
    let error = get(policy(&site), &site.url("/lib")).await.unwrap_err();
    assert!(
        matches!(error, FetchError::Status { status, .. } if status == 500),
        "{error}"
    );
    assert_eq!(site.hits("/lib"), 4);
}

#[tokio::test]
async fn retry_after_seconds_is_honoured() {
    let site = Site::start().await;
    let busy = Reply::status(429).header("Retry-After", "1");
    site.route("/lib", Reply::Sequence(vec![busy, Reply::html("ok")]));
    let started = Instant::now();
    assert!(get(policy(&site), &site.url("/lib")).await.is_ok());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(site.hits("/lib"), 2);
}

#[tokio::test]
async fn retry_after_date_is_measured_from_the_response_date() {
    let site = Site::start().await;
    let date = SystemTime::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    let busy = Reply::status(503)
        .header("Date", &httpdate::fmt_http_date(date))
        .header(
            "Retry-After",
            &httpdate::fmt_http_date(date + Duration::from_secs(1)),
        );
    site.route("/lib", Reply::Sequence(vec![busy, Reply::html("ok")]));
    let started = Instant::now();
    assert!(get(policy(&site), &site.url("/lib")).await.is_ok());
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn retry_after_beyond_the_cap_gives_up_at_once() {
    let site = Site::start().await;
    site.route("/lib", Reply::status(503).header("Retry-After", "3600"));
    let started = Instant::now();
    let error = get(policy(&site), &site.url("/lib")).await.unwrap_err();
    assert!(
        matches!(error, FetchError::Status { status, .. } if status == 503),
        "{error}"
    );
    assert_eq!(site.hits("/lib"), 1);
    assert!(started.elapsed() < Duration::from_secs(5));
}

// --- timeouts and broken connections ---

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let site = Site::start().await;
    site.route("/lib", Reply::Hang);
    let mut policy = policy(&site);
    policy.timeout = Duration::from_millis(300);
    policy.max_retries = 1;
    let started = Instant::now();
    let error = get(policy, &site.url("/lib")).await.unwrap_err();
    assert!(matches!(error, FetchError::Timeout { .. }), "{error}");
    assert_eq!(site.hits("/lib"), 2);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_body_that_stalls_times_out() {
    let site = Site::start().await;
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n<p>partial".to_vec();
    site.route(
        "/lib",
        Reply::Raw {
            bytes: head,
            hang: true,
        },
    );
    let mut policy = policy(&site);
    policy.timeout = Duration::from_millis(300);
    policy.max_retries = 0;
    let error = get(policy, &site.url("/lib")).await.unwrap_err();
    assert!(matches!(error, FetchError::Timeout { .. }), "{error}");
}

#[tokio::test]
async fn issue_13_a_truncated_body_is_retried_then_kept_marked_incomplete() {
    let site = Site::start().await;
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n<p>partial".to_vec();
    site.route(
        "/lib",
        Reply::Raw {
            bytes: head,
            hang: false,
        },
    );
    let cut = page(get(policy(&site), &site.url("/lib")).await.unwrap());
    assert_eq!(cut.text, "<p>partial");
    let reason = cut.incomplete.unwrap();
    assert!(reason.contains("10 of the 100 bytes"), "{reason}");
    assert_eq!(site.hits("/lib"), 4, "retried first");
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    // Held, bound and not listening: refused, and no other process can take it.
    let (_held, port) = crate::support::refusing_port();
    let url = Url::parse(&format!("http://127.0.0.1:{port}/lib")).unwrap();
    let mut policy = FetchPolicy::new(CONTACT, vec![url.origin()]);
    policy.retry_base = Duration::from_millis(10);
    policy.max_retries = 1;
    policy.honour_robots = false;
    let error = get(policy, &url).await.unwrap_err();
    assert!(matches!(error, FetchError::Connect { .. }), "{error}");
    assert!(error.to_string().contains(url.as_str()), "{error}");
}

// --- size cap, before and after decompression ---

#[tokio::test]
async fn a_body_at_the_cap_passes_and_one_byte_more_fails() {
    let site = Site::start().await;
    site.route("/fits", Reply::html(vec![b'x'; 1000]));
    site.route("/over", Reply::html(vec![b'x'; 1001]));
    let mut policy = policy(&site);
    policy.max_bytes = 1000;
    let mut fetcher = Fetcher::new(policy).unwrap();
    assert_eq!(
        page(fetcher.get(&site.url("/fits"), None).await.unwrap())
            .text
            .len(),
        1000
    );
    let error = fetcher.get(&site.url("/over"), None).await.unwrap_err();
    assert!(
        matches!(error, FetchError::TooLarge { limit: 1000, .. }),
        "{error}"
    );
}

#[tokio::test]
async fn a_declared_oversized_body_is_refused_unread() {
    let site = Site::start().await;
    site.route(
        "/big",
        Reply::Stream {
            len: 20 << 20,
            content_length: true,
        },
    );
    let started = Instant::now();
    let error = get(policy(&site), &site.url("/big")).await.unwrap_err();
    assert!(
        matches!(
            error,
            FetchError::TooLarge {
                limit: tidings::source::fetch::DEFAULT_MAX_BYTES,
                ..
            }
        ),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(site.hits("/big"), 1, "too large is not retried");
}

#[tokio::test]
async fn a_streamed_20_mb_body_fails_before_it_is_all_read() {
    let site = Site::start().await;
    let len: u64 = 20 << 20;
    site.route(
        "/big",
        Reply::Stream {
            len,
            content_length: false,
        },
    );
    let started = Instant::now();
    let error = get(policy(&site), &site.url("/big")).await.unwrap_err();
    assert!(matches!(error, FetchError::TooLarge { .. }), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The server stops when the fetcher hangs up; kernel buffers hold the
    // difference between what it wrote and what the fetcher read.
    let deadline = Instant::now() + Duration::from_secs(5);
    while site.bytes_written("/big") == 0 && Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
    let written = site.bytes_written("/big");
    assert!(
        written > 0 && written < len,
        "server wrote {written} of {len} bytes"
    );
}

#[tokio::test]
async fn gzip_is_decoded_and_the_cap_applies_after_decompression() {
    let site = Site::start().await;
    let html = "<p>caf\u{e9}</p>".repeat(100);
    let small = Reply::html(gzip(html.as_bytes())).header("Content-Encoding", "gzip");
    site.route("/small", small);
    let bomb = gzip(&vec![0u8; 20 << 20]);
    assert!(bomb.len() < 100 * 1024, "bomb is {} bytes", bomb.len());
    site.route(
        "/bomb",
        Reply::html(bomb).header("Content-Encoding", "gzip"),
    );
    let mut fetcher = Fetcher::new(policy(&site)).unwrap();
    assert_eq!(
        page(fetcher.get(&site.url("/small"), None).await.unwrap()).text,
        html
    );
    let accept = site.requests("/small")[0]
        .header("accept-encoding")
        .unwrap_or_default()
        .to_owned();
    assert!(accept.contains("gzip") && accept.contains("br"), "{accept}");
    let error = fetcher.get(&site.url("/bomb"), None).await.unwrap_err();
    assert!(matches!(error, FetchError::TooLarge { .. }), "{error}");
}

#[tokio::test]
async fn brotli_is_decoded_and_the_cap_applies_after_decompression() {
    let site = Site::start().await;
    let html = "<li>resource</li>".repeat(100);
    site.route(
        "/small",
        Reply::html(brotli(html.as_bytes())).header("Content-Encoding", "br"),
    );
    site.route(
        "/bomb",
        Reply::html(brotli(&vec![0u8; 2 << 20])).header("Content-Encoding", "br"),
    );
    let mut policy = policy(&site);
    policy.max_bytes = 1 << 20;
    let mut fetcher = Fetcher::new(policy).unwrap();
    assert_eq!(
        page(fetcher.get(&site.url("/small"), None).await.unwrap()).text,
        html
    );
    let error = fetcher.get(&site.url("/bomb"), None).await.unwrap_err();
    assert!(matches!(error, FetchError::TooLarge { .. }), "{error}");
}

// --- decoding ---

const CP1252: &[u8] =
    b"<html><head><title>Caf\xe9</title></head><p>\x93Leaflets\x94 \x96 \x80 5</p>";
const CP1252_TEXT: &str = "<html><head><title>Café</title></head><p>“Leaflets” – € 5</p>";

#[tokio::test]
async fn windows_1252_from_the_content_type() {
    let site = Site::start().await;
    let reply = Reply::status(200)
        .header("Content-Type", "text/html; charset=windows-1252")
        .body(CP1252);
    site.route("/lib", reply);
    let page = page(get(policy(&site), &site.url("/lib")).await.unwrap());
    assert_eq!(page.encoding, "windows-1252");
    assert_eq!(page.text, CP1252_TEXT);
}

#[tokio::test]
async fn windows_1252_from_a_meta_tag() {
    let site = Site::start().await;
    let body = [
        &b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\">"[..],
        CP1252,
    ]
    .concat();
    site.route(
        "/lib",
        Reply::status(200)
            .header("Content-Type", "text/html")
            .body(body),
    );
    let page = page(get(policy(&site), &site.url("/lib")).await.unwrap());
    assert_eq!(page.encoding, "windows-1252");
    assert!(page.text.ends_with(CP1252_TEXT), "{}", page.text);
}

#[tokio::test]
async fn undeclared_legacy_bytes_become_replacement_characters() {
    let site = Site::start().await;
    site.route(
        "/lib",
        Reply::status(200)
            .header("Content-Type", "text/html")
            .body(CP1252),
    );
    let page = page(get(policy(&site), &site.url("/lib")).await.unwrap());
    assert_eq!(page.encoding, "UTF-8");
    assert!(page.text.contains("Caf\u{fffd}</title>"), "{}", page.text);
}
