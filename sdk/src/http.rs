//! Outbound HTTP to the origins the manifest declares and the operator grants.
//!
//! The host never follows redirects for you: a 3xx comes back as a response, and
//! following it is a new request that is checked again.

use crate::JobError;
use crate::bindings::drowl::plugin0_1_0::http as wit;

pub use wit::{HttpError, Response};

/// A request being built.
#[derive(Debug, Clone)]
#[must_use]
pub struct Request(wit::Request);

impl Request {
    /// A request with any method.
    pub fn new(method: &str, url: &str) -> Self {
        Self(wit::Request {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
        })
    }

    /// A `GET` request.
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` request with a body.
    pub fn post(url: &str, body: Vec<u8>) -> Self {
        let mut r = Self::new("POST", url);
        r.0.body = Some(body);
        r
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.0.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets a total timeout; the host caps it by its own limit and the job's deadline.
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.0.timeout_ms = Some(ms);
        self
    }

    /// Sends the request.
    pub fn send(&self) -> Result<Response, HttpError> {
        wit::send(&self.0)
    }
}

/// Sends a `GET` request.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::get(url).send()
}

impl Response {
    /// The first value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses the body as JSON; a body that does not parse fails the job permanently.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            JobError::permanent(format!("response body is not the expected JSON: {e}"))
        })
    }

    /// Maps common HTTP failure statuses to queue semantics: 429, and 403 with
    /// `x-ratelimit-remaining: 0`, are rate limits retried after `retry-after` seconds
    /// (60 s when absent: plugins have no clock to interpret `x-ratelimit-reset`; do that
    /// yourself against the `date` header if the platform needs it); 5xx are retryable;
    /// other 4xx are permanent.
    pub fn error_for_status(self) -> Result<Self, JobError> {
        let status = self.status;
        if self.is_success() || (300..400).contains(&status) {
            return Ok(self);
        }
        let retry_after_ms = self
            .header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| s * 1000);
        let exhausted = self.header("x-ratelimit-remaining").map(str::trim) == Some("0");
        let msg = format!(
            "HTTP {status}: {}",
            self.text().chars().take(200).collect::<String>()
        );
        Err(match status {
            429 => JobError::rate_limited(msg, retry_after_ms.unwrap_or(60_000)),
            403 if exhausted => JobError::rate_limited(msg, retry_after_ms.unwrap_or(60_000)),
            500..=599 => match retry_after_ms {
                Some(ms) => JobError::retry_after(msg, ms),
                None => JobError::retryable(msg),
            },
            _ => JobError::permanent(msg),
        })
    }
}

/// A one-line description of an HTTP error, for job errors and logs.
pub fn describe_error(e: &HttpError) -> String {
    match e {
        HttpError::Denied(m) => format!("request denied: {m}"),
        HttpError::InvalidRequest(m) => format!("invalid request: {m}"),
        HttpError::Timeout(m) => format!("request timed out: {m}"),
        HttpError::TooLarge(n) => format!("response larger than the host's limit of {n} bytes"),
        HttpError::BudgetExhausted(m) => format!("request budget exhausted: {m}"),
        HttpError::Connection(m) => format!("connection failed: {m}"),
    }
}

impl From<HttpError> for JobError {
    /// Network trouble is retryable; a denied origin is a configuration problem the
    /// operator must fix (grant the host); anything else will not improve on retry.
    fn from(e: HttpError) -> Self {
        let message = describe_error(&e);
        match e {
            HttpError::Timeout(_) | HttpError::Connection(_) | HttpError::BudgetExhausted(_) => {
                Self::retryable(message)
            }
            HttpError::Denied(_) => Self::invalid_config(message),
            HttpError::InvalidRequest(_) | HttpError::TooLarge(_) => Self::permanent(message),
        }
    }
}
