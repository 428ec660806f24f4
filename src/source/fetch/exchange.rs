//! One HTTP exchange and its retries: builds the conditional request,
//! classifies the answer (page, 304, redirect, retryable failure), waits with
//! backoff or `Retry-After`, and streams the body under the size cap. Which
//! URLs may be requested at all is decided in `fetch::Fetcher::follow`.

use std::time::{Duration, SystemTime};

use reqwest::header::{self, HeaderMap};
use reqwest::{Response, StatusCode};
use url::Url;

use super::{ACCEPT_HTML, FetchError, Fetcher, Validators, retry};

/// What a request asks for besides its URL.
pub(super) struct Job<'a> {
    pub(super) validators: Option<&'a Validators>,
    pub(super) max_bytes: u64,
    /// Cut an oversized body at `max_bytes` (robots.txt) rather than fail.
    pub(super) truncate: bool,
    pub(super) robots: bool,
}

/// The end of a redirect chain.
pub(super) enum Arrival {
    Body {
        bytes: Vec<u8>,
        content_type: Option<String>,
        validators: Validators,
        /// Why the body ended early (a `Content-Length` not met), when it did.
        incomplete: Option<String>,
    },
    NotModified,
}

/// One exchange's result.
pub(super) enum Step {
    Arrive(Arrival),
    Redirect(Url),
}

/// A failed exchange, with the server's `Retry-After` if it sent one.
pub(super) struct Failure {
    error: FetchError,
    retry_after: Option<Duration>,
    /// A body cut short: used, marked incomplete, when no retry does better.
    partial: Option<Arrival>,
}

impl From<FetchError> for Failure {
    fn from(error: FetchError) -> Self {
        Self {
            error,
            retry_after: None,
            partial: None,
        }
    }
}

impl Fetcher {
    /// One exchange, retried with backoff while the failure is transient.
    pub(super) async fn with_retries(&self, url: &Url, job: &Job<'_>) -> Result<Step, FetchError> {
        let mut attempt = 0;
        loop {
            let failure = match self.exchange(url, job).await {
                Ok(step) => return Ok(step),
                Err(failure) => failure,
            };
            let Some(wait) = self.retry_wait(&failure, attempt) else {
                return match failure.partial {
                    Some(arrival) => Ok(Step::Arrive(arrival)),
                    None => Err(failure.error),
                };
            };
            tracing::warn!(url = %url, attempt, wait_ms = wait.as_millis(), "retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// How long to wait before retrying, or `None` to give up.
    fn retry_wait(&self, failure: &Failure, attempt: u32) -> Option<Duration> {
        if attempt >= self.policy.max_retries || !failure.error.is_transient() {
            return None;
        }
        match failure.retry_after {
            Some(wait) if wait > self.policy.max_retry_wait => None,
            Some(wait) => Some(wait),
            None => Some(self.policy.backoff().wait(attempt)),
        }
    }

    /// Send one request and classify the answer.
    async fn exchange(&self, url: &Url, job: &Job<'_>) -> Result<Step, Failure> {
        let response = self
            .request(url, job.validators)
            .send()
            .await
            .map_err(|e| FetchError::from_reqwest(url, &e))?;
        let status = response.status();
        if status.is_success() {
            let arrival = read_body(url, response, job).await?;
            if let Arrival::Body {
                incomplete: Some(reason),
                ..
            } = &arrival
            {
                return Err(Failure {
                    error: FetchError::Body {
                        url: url.clone(),
                        reason: reason.clone(),
                    },
                    retry_after: None,
                    partial: Some(arrival),
                });
            }
            return Ok(Step::Arrive(arrival));
        }
        if status == StatusCode::NOT_MODIFIED && job.validators.is_some() {
            return Ok(Step::Arrive(Arrival::NotModified));
        }
        if is_redirect(status) {
            return Ok(Step::Redirect(redirect_target(url, response.headers())?));
        }
        let retry_after = self.retry_after(response.headers());
        Err(Failure {
            error: FetchError::Status {
                url: url.clone(),
                status,
            },
            retry_after,
            partial: None,
        })
    }

    /// A GET for `url` with the conditional headers of `validators`.
    fn request(&self, url: &Url, validators: Option<&Validators>) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .get(url.clone())
            .header(header::ACCEPT, ACCEPT_HTML);
        if let Some(Validators {
            etag,
            last_modified,
        }) = validators
        {
            if let Some(etag) = etag {
                request = request.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(last_modified) = last_modified {
                request = request.header(header::IF_MODIFIED_SINCE, last_modified);
            }
        }
        request
    }

    /// The wait a `Retry-After` header asks for; an HTTP-date is measured
    /// from the response's `Date` (the server's clock), else from ours.
    fn retry_after(&self, headers: &HeaderMap) -> Option<Duration> {
        let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
        let now = headers
            .get(header::DATE)
            .and_then(|date| httpdate::parse_http_date(date.to_str().ok()?).ok())
            .unwrap_or_else(|| SystemTime::from(self.policy.clock.now()));
        retry::parse_retry_after(value, now)
    }
}

/// Read the body in chunks (decompressed by reqwest), never past `job.max_bytes`.
async fn read_body(
    url: &Url,
    mut response: Response,
    job: &Job<'_>,
) -> Result<Arrival, FetchError> {
    let too_large = || FetchError::TooLarge {
        url: url.clone(),
        limit: job.max_bytes,
    };
    // Known only for uncompressed bodies; saves reading what would be refused.
    if !job.truncate && response.content_length().is_some_and(|n| n > job.max_bytes) {
        return Err(too_large());
    }
    let content_type = header_text(response.headers(), header::CONTENT_TYPE);
    let validators = Validators::from_headers(response.headers());
    let limit = usize::try_from(job.max_bytes).unwrap_or(usize::MAX);
    let declared = response.content_length();
    let mut bytes = Vec::new();
    let mut incomplete = None;
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            // Part of the page arrived, then the connection ended before the
            // declared length: keep what came, and say the page is incomplete.
            // A body that stalls is a timeout, as before: the server is hung.
            Err(e) if !bytes.is_empty() && !e.is_timeout() => {
                incomplete = Some(body_cut_short(declared, bytes.len(), &e));
                break;
            }
            Err(e) => return Err(FetchError::from_reqwest(url, &e)),
        };
        let room = limit - bytes.len();
        if chunk.len() > room {
            if !job.truncate {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk[..room]);
            break;
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Arrival::Body {
        bytes,
        content_type,
        validators,
        incomplete,
    })
}

/// Why a body that broke off after `received` bytes is incomplete.
fn body_cut_short(declared: Option<u64>, received: usize, error: &reqwest::Error) -> String {
    let cause = super::error::root_cause(error);
    match declared {
        Some(length) => format!(
            "the body ended after {received} of the {length} bytes its Content-Length declared ({cause})"
        ),
        None => format!("the body broke off after {received} bytes ({cause})"),
    }
}

/// Statuses that carry a `Location` to follow (RFC 9110 15.4).
fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The absolute URL a redirect points to, resolved against `url`.
fn redirect_target(url: &Url, headers: &HeaderMap) -> Result<Url, FetchError> {
    let location = headers
        .get(header::LOCATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()));
    let location = location.unwrap_or_default().into_owned();
    url.join(&location)
        .ok()
        .filter(|_| !location.is_empty())
        .ok_or(FetchError::BadRedirect {
            url: url.clone(),
            location,
        })
}

/// A header's value as text, if it is text.
fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    Some(headers.get(name)?.to_str().ok()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_targets_resolve_relative_locations() {
        let url = Url::parse("https://www.example.org/a/b").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::LOCATION, "../c?d=1".parse().unwrap());
        assert_eq!(
            redirect_target(&url, &headers).unwrap().as_str(),
            "https://www.example.org/c?d=1"
        );
        headers.insert(header::LOCATION, "".parse().unwrap());
        assert!(matches!(
            redirect_target(&url, &headers),
            Err(FetchError::BadRedirect { .. })
        ));
        headers.insert(header::LOCATION, "http://[::1".parse().unwrap());
        assert!(matches!(
            redirect_target(&url, &headers),
            Err(FetchError::BadRedirect { .. })
        ));
    }
}
