//! Announcing from `/admin`: the preview and Send in one form, the page of
//! each announcement with its delivery counted live from the outbox (and a
//! retry of its failed messages), and the list of announcements.
//!
//! Send proves it sends what was seen: the preview page carries a digest of
//! the email it shows (subject, text and HTML, note included), and Send
//! re-renders the email from the form and refuses, keeping the typed note and
//! showing a fresh preview, when the digests differ. Sending whatever the
//! form holds would be simpler, but could send a note nobody looked at;
//! refusing never drops typed text and never sends what was not shown. (The
//! check and the queuing are two steps: an ingest landing between them is
//! sent as it now is, a window of milliseconds.)

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::accounts::{SignedIn, record};
use super::admin::{home_url, local_time, people, route_words};
use super::forms::{self, with_cookie};
use super::pages::{SiteView, site_view};
use super::security::csrf_issue;
use super::subscribe::expired_form;
use super::{AppState, WebError};
use crate::announce::{AnnounceError, Preview, Request as AnnounceRequest};
use crate::model::{ResourceId, Route};
use crate::store::{AnnouncementRecord, Delivery};

/// Announcements listed on `/admin/announcements`.
const LISTED: usize = 100;

#[derive(Serialize)]
struct PreviewPage {
    site: SiteView,
    autodiscovery: [(); 0],
    csrf: String,
    id: String,
    title: String,
    category: String,
    subject: String,
    text: String,
    html: String,
    digest: String,
    message: String,
    recipients: usize,
    previous: Vec<PreviousRow>,
    force: bool,
    error: Option<String>,
    test_to: Option<String>,
    tested: Option<String>,
}

#[derive(Serialize)]
struct PreviousRow {
    id: i64,
    words: String,
}

/// Query of `GET /admin/announce/{id}`.
#[derive(Debug, Deserialize)]
pub(super) struct PreviewQuery {
    message: Option<String>,
}

/// `GET /admin/announce/{id}`: the email as subscribers would get it, and to how many.
pub(super) async fn preview(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<SignedIn>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<PreviewQuery>,
) -> Result<Response, WebError> {
    let message = query.message.unwrap_or_default();
    let shown = Shown {
        id: &id,
        message: &message,
        force: false,
        test_to: who.email.as_deref(),
        tested: None,
    };
    preview_page(&state, &headers, shown, StatusCode::OK, None).await
}

/// What the form held, and who is looking.
#[derive(Clone, Copy)]
struct Shown<'a> {
    id: &'a str,
    message: &'a str,
    force: bool,
    /// The signed-in admin's address, where "Send a test to me" goes.
    test_to: Option<&'a str>,
    /// Said above the form after a test was queued.
    tested: Option<&'a str>,
}

/// The preview page for `shown`; a note too long to send is kept in the box
/// with the error, and the preview shown without it (Send is refused).
async fn preview_page(
    state: &AppState,
    headers: &HeaderMap,
    shown: Shown<'_>,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, WebError> {
    let resource = ResourceId(shown.id.to_owned());
    match state
        .announcer
        .preview(&resource, Some(shown.message))
        .await
    {
        Ok(p) => render(state, headers, shown, &p, status, error),
        Err(e @ AnnounceError::MessageTooLong) => {
            let p = state.announcer.preview(&resource, None).await?;
            let why = format!("Not sent: {e}. Shorten the note, then update the preview.");
            render(
                state,
                headers,
                shown,
                &p,
                StatusCode::BAD_REQUEST,
                Some(why),
            )
        }
        Err(AnnounceError::NotFound(_)) => Err(WebError::NotFound(format!(
            "There is no resource with id {}.",
            shown.id
        ))),
        Err(e) => Err(e.into()),
    }
}

fn render(
    state: &AppState,
    headers: &HeaderMap,
    shown: Shown<'_>,
    p: &Preview,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, WebError> {
    let (csrf, cookie) = csrf_issue(state, headers);
    let too_long = status == StatusCode::BAD_REQUEST;
    let page = PreviewPage {
        site: site_view(state),
        autodiscovery: [],
        csrf,
        id: shown.id.to_owned(),
        title: p.resource.title.clone(),
        category: p.resource.category.name.clone(),
        subject: p.subject.clone(),
        text: p.text.clone(),
        html: p.html.clone(),
        // A preview without the typed note proves nothing: no digest, no Send.
        digest: if too_long { String::new() } else { p.digest() },
        message: shown.message.to_owned(),
        recipients: p.recipients,
        previous: p
            .previous
            .iter()
            .map(|a| PreviousRow {
                id: a.id,
                words: format!("{} to {}", local_time(state, a.at), people(a.recipients)),
            })
            .collect(),
        force: shown.force,
        error,
        test_to: shown.test_to.map(str::to_owned),
        tested: shown.tested.map(str::to_owned),
    };
    let html = state.templates.render("admin_preview.html", page)?;
    Ok(with_cookie((status, Html(html)).into_response(), cookie))
}

/// `POST /admin/announce/{id}`: "Update preview" shows the email for the
/// form's note; "Send" queues and records it (route `admin`) when it is
/// exactly the email previewed, then opens the announcement's page.
pub(super) async fn announce(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<SignedIn>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let Some(pairs) = forms::verified(&state, &headers, &body) else {
        return expired_form(&state);
    };
    let message = forms::value(&pairs, "message").unwrap_or_default();
    let shown = Shown {
        id: &id,
        message,
        force: forms::value(&pairs, "force") == Some("yes"),
        test_to: who.email.as_deref(),
        tested: None,
    };
    if forms::value(&pairs, "do") == Some("test") {
        return send_test(&state, &headers, &who, shown).await;
    }
    if forms::value(&pairs, "do") != Some("send") {
        return preview_page(&state, &headers, shown, StatusCode::OK, None).await;
    }
    let resource = ResourceId(id.clone());
    let current = match state.announcer.preview(&resource, Some(message)).await {
        Ok(p) => p,
        Err(AnnounceError::MessageTooLong | AnnounceError::NotFound(_)) => {
            return preview_page(&state, &headers, shown, StatusCode::BAD_REQUEST, None).await;
        }
        Err(e) => return Err(e.into()),
    };
    let seen = forms::value(&pairs, "digest").unwrap_or_default();
    if seen.is_empty() || seen != current.digest() {
        let why = "Not sent: the email has changed since the preview you saw (the note was \
                   edited, or the resource was updated). Check the new preview below, then \
                   press Send again.";
        return render(
            &state,
            &headers,
            shown,
            &current,
            StatusCode::CONFLICT,
            Some(why.to_owned()),
        );
    }
    let request = AnnounceRequest {
        resource: &resource,
        message: Some(message),
        route: Route::Admin,
        force: shown.force,
    };
    match state.announcer.announce(request, state.clock.now()).await {
        Ok(done) => {
            state.wake.notify_one();
            let what = format!(
                "Announced “{}” to {} (announcement {})",
                current.resource.title,
                people(i64::try_from(done.recipients).unwrap_or(i64::MAX)),
                done.id
            );
            record(&state, &who, "announce", &what).await;
            let url = format!(
                "{}/announcements/{}?queued={}",
                home_url(&state),
                done.id,
                done.recipients
            );
            Ok(Redirect::to(&url).into_response())
        }
        Err(AnnounceError::AlreadyAnnounced { .. }) => {
            let why = "Not sent: this was already announced (see above). Tick “Yes, send it \
                       again” if everyone should get it a second time.";
            render(
                &state,
                &headers,
                shown,
                &current,
                StatusCode::CONFLICT,
                Some(why.to_owned()),
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// "Send a test to me": the email for the form's note, to the signed-in
/// admin alone, then the preview again saying so. The bootstrap account has
/// no address, so its form offers no test.
async fn send_test(
    state: &AppState,
    headers: &HeaderMap,
    who: &SignedIn,
    shown: Shown<'_>,
) -> Result<Response, WebError> {
    let Some(to) = shown.test_to else {
        let why = "No test sent: the shared admin account has no email address. Sign in with your own account to send yourself a test.";
        return preview_page(
            state,
            headers,
            shown,
            StatusCode::BAD_REQUEST,
            Some(why.to_owned()),
        )
        .await;
    };
    let resource = ResourceId(shown.id.to_owned());
    let now = state.clock.now();
    match state
        .announcer
        .send_test(&resource, Some(shown.message), to, now)
        .await
    {
        Ok(_) => {}
        Err(AnnounceError::MessageTooLong | AnnounceError::NotFound(_)) => {
            return preview_page(state, headers, shown, StatusCode::BAD_REQUEST, None).await;
        }
        Err(e) => return Err(e.into()),
    }
    state.wake.notify_one();
    let title = state
        .store
        .resource(&resource)
        .await?
        .map(|r| r.title)
        .unwrap_or_default();
    let what = format!("Sent a test of the announcement of “{title}” to {to}");
    record(state, who, "test", &what).await;
    let tested = format!(
        "A test was queued for {to}. It is not an announcement: nobody else gets it, and the resource is not marked as announced."
    );
    let shown = Shown {
        tested: Some(&tested),
        ..shown
    };
    preview_page(state, headers, shown, StatusCode::OK, None).await
}

#[derive(Serialize)]
struct AnnouncementPage {
    site: SiteView,
    autodiscovery: [(); 0],
    csrf: String,
    a: RecordView,
    queued: Option<String>,
    retried: Option<u64>,
    d: Delivery,
    reasons: Vec<String>,
}

#[derive(Serialize)]
struct RecordView {
    id: i64,
    resource_id: String,
    title: String,
    when: String,
    who: &'static str,
    recipients: String,
    message: Option<String>,
    summary: String,
}

fn record_view(state: &AppState, a: &AnnouncementRecord, d: &Delivery) -> RecordView {
    RecordView {
        id: a.id,
        resource_id: a.resource_id.clone(),
        title: a.title.clone(),
        when: local_time(state, a.at),
        who: route_words(&a.route),
        recipients: people(a.recipients),
        message: a.message.clone(),
        summary: delivery_words(d),
    }
}

/// "138 sent, 5 failed", or "Nothing queued".
fn delivery_words(d: &Delivery) -> String {
    let parts: Vec<String> = [
        (d.sent, "sent"),
        (d.waiting, "waiting"),
        (d.failed, "failed"),
        (d.unconfirmed, "unconfirmed"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, word)| format!("{n} {word}"))
    .collect();
    if parts.is_empty() {
        "Nothing queued".to_owned()
    } else {
        parts.join(", ")
    }
}

/// Query of `GET /admin/announcements/{id}`.
#[derive(Debug, Deserialize)]
pub(super) struct AnnouncementQuery {
    queued: Option<i64>,
    retried: Option<u64>,
}

/// `GET /admin/announcements/{id}`: who got it, counted now from the outbox.
pub(super) async fn announcement(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<AnnouncementQuery>,
) -> Result<Response, WebError> {
    let a = find(&state, &id).await?;
    let d = state.store.announcement_delivery(&a.key).await?;
    let (csrf, cookie) = csrf_issue(&state, &headers);
    let page = AnnouncementPage {
        site: site_view(&state),
        autodiscovery: [],
        csrf,
        a: record_view(&state, &a, &d),
        queued: query.queued.map(|n| format!("Queued for {}.", people(n))),
        retried: query.retried,
        reasons: d
            .reasons
            .iter()
            .map(|(e, n)| format!("{}: {}", people(*n), plain_reason(e)))
            .collect(),
        d,
    };
    let html = state.templates.render("admin_announcement.html", page)?;
    Ok(with_cookie(Html(html).into_response(), cookie))
}

/// `POST /admin/announcements/{id}/retry`: its failed messages are queued again.
pub(super) async fn retry(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<SignedIn>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    if forms::verified(&state, &headers, &body).is_none() {
        return expired_form(&state);
    }
    let a = find(&state, &id).await?;
    let moved = state
        .store
        .retry_announcement(&a.key, state.clock.now())
        .await?;
    state.wake.notify_one();
    let what = format!(
        "Queued {moved} failed message(s) of announcement {} (“{}”) to be sent again",
        a.id, a.title
    );
    record(&state, &who, "retry", &what).await;
    let url = format!(
        "{}/announcements/{}?retried={moved}",
        home_url(&state),
        a.id
    );
    Ok(Redirect::to(&url).into_response())
}

async fn find(state: &AppState, id: &str) -> Result<AnnouncementRecord, WebError> {
    let missing = || WebError::NotFound(format!("There is no announcement numbered {id}."));
    let number: i64 = id.parse().map_err(|_| missing())?;
    state
        .store
        .announcement_record(number)
        .await?
        .ok_or_else(missing)
}

#[derive(Serialize)]
struct ListPage {
    site: SiteView,
    autodiscovery: [(); 0],
    rows: Vec<RecordView>,
}

/// `GET /admin/announcements`: the newest announcements and how each went.
pub(super) async fn list(State(state): State<Arc<AppState>>) -> Result<Response, WebError> {
    let mut rows = Vec::new();
    for a in state.store.recent_announcements(LISTED).await? {
        let d = state.store.announcement_delivery(&a.key).await?;
        rows.push(record_view(&state, &a, &d));
    }
    let page = ListPage {
        site: site_view(&state),
        autodiscovery: [],
        rows,
    };
    let html = state.templates.render("admin_announcements.html", page)?;
    Ok(Html(html).into_response())
}

/// A mail server's reply in words a comms officer can act on, keeping the reply.
fn plain_reason(error: &str) -> String {
    let code = error
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 3 && (w.starts_with('4') || w.starts_with('5')));
    match code.map(|c| &c[..1]) {
        Some("5") => format!("the mail server refused it for good (it said: {error})"),
        Some(_) => format!("the mail server asked to try again later (it said: {error})"),
        None => format!("it could not be handed to the mail server ({error})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_replies_read_as_plain_words() {
        assert!(
            plain_reason("permanent error (554): 5.7.1 Relay access denied")
                .starts_with("the mail server refused it for good")
        );
        assert!(
            plain_reason("gave up after 5 attempts: transient error (451): try later")
                .starts_with("the mail server asked to try again later")
        );
        assert!(plain_reason("connection refused").starts_with("it could not be handed"));
    }
}
