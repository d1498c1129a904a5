//! The egress engine behind the `http.send` import: the only way a plugin reaches the
//! network.
//!
//! Plugins are third-party code running next to the operator's credentials and private
//! network, so every request goes through the same checks, in this order:
//!
//! 1. The job's request budget ([`EgressJob`]): a looping plugin cannot flood anyone.
//! 2. The request itself: `http`/`https` only, a valid method (not `CONNECT`), no
//!    credentials in the URL, and no `Host`, `Content-Length`, `Transfer-Encoding` or
//!    other hop-by-hop header, because those would let the plugin address a different
//!    virtual host than the one allowed (Spin's CVE-2024-32980) or smuggle requests.
//! 3. The origin against the effective allow-list ([`EgressPolicy`]), **before** any DNS
//!    lookup, so an undeclared name never even reaches a resolver.
//! 4. The address: an IP-literal host is checked directly; a name is resolved by the host
//!    (through a [`Resolver`]), every address checked, and the connection made only to
//!    the addresses that passed, inside the same connector, so there is no second lookup
//!    a rebinding DNS server could answer differently. Loopback, private, link-local,
//!    metadata and other special ranges are refused unless the operator allowed a network
//!    containing them (see [`super::ip`]).
//! 5. The exchange: redirects are returned to the plugin, never followed (it may follow
//!    them with a new request, checked again); bodies are never decompressed; the body is
//!    read as a stream and abandoned as soon as it exceeds the cap; connect and total
//!    timeouts apply, the total capped by the request, the policy and the job's deadline.
//!
//! Every request is logged with `tracing` (job id, origin, method, status, bytes, time;
//! never the path, query or headers, which may carry secrets) and recorded in the job's
//! [`EgressJob`] so its usage can be reported.
//!
//! This module knows nothing about wasmtime: the WIT glue converts the guest's `request`
//! into an [`OutboundRequest`] and [`EgressError`] back into `http-error`, one variant each.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ipnet::IpNet;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use url::{Host, Url};

pub use super::policy::{EgressLimits, EgressPolicy, Origin, OriginError, PolicyError, Scheme};

use super::ip;

/// Request headers a plugin may not set. `Host` would let it reach a virtual host other
/// than the allowed origin on the same address; the framing headers (`Content-Length`,
/// `Transfer-Encoding`) and hop-by-hop headers belong to the HTTP client, and letting a
/// plugin set them invites request smuggling.
const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
];

/// An HTTP request from a plugin, as the `http.request` WIT record carries it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutboundRequest {
    /// `GET`, `POST`, ...; any valid token except `CONNECT`, sent as given.
    pub method: String,
    /// Absolute `http` or `https` URL.
    pub url: String,
    /// Request headers, in order; repeated names are sent repeatedly.
    pub headers: Vec<(String, String)>,
    /// The request body, if any.
    pub body: Option<Vec<u8>>,
    /// Total time the plugin allows; the host's limit and the job's deadline still apply.
    pub timeout_ms: Option<u32>,
}

/// A complete response, as the `http.response` WIT record carries it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutboundResponse {
    /// The status code; 3xx responses are returned as they are, never followed.
    pub status: u16,
    /// Response headers, in order. Values that are not UTF-8 are converted lossily.
    pub headers: Vec<(String, String)>,
    /// The whole body, exactly as sent (never decompressed), at most the policy's cap.
    pub body: Vec<u8>,
}

/// Why a request produced no response; one variant per WIT `http-error` case.
///
/// Messages are meant for the plugin author and the operator: they name the origin, the
/// address or the limit at fault, never the request's path, query or headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// The origin is not allowed, or the address it resolved to is refused.
    #[error("denied: {0}")]
    Denied(String),
    /// The URL, method or a header is invalid or not allowed.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Connecting or the whole exchange took too long.
    #[error("timeout: {0}")]
    Timeout(String),
    /// The response body was larger than this many bytes; it was not read further.
    #[error("response body is larger than the limit of {0} bytes")]
    TooLarge(u64),
    /// The job already sent as many requests as its budget allows.
    #[error("request budget exhausted: {0}")]
    BudgetExhausted(String),
    /// DNS, connect, TLS or protocol failure.
    #[error("connection failed: {0}")]
    Connection(String),
}

impl EgressError {
    /// The variant without its message, for records and metrics.
    pub fn kind(&self) -> EgressErrorKind {
        match self {
            EgressError::Denied(_) => EgressErrorKind::Denied,
            EgressError::InvalidRequest(_) => EgressErrorKind::InvalidRequest,
            EgressError::Timeout(_) => EgressErrorKind::Timeout,
            EgressError::TooLarge(_) => EgressErrorKind::TooLarge,
            EgressError::BudgetExhausted(_) => EgressErrorKind::BudgetExhausted,
            EgressError::Connection(_) => EgressErrorKind::Connection,
        }
    }
}

/// The kind of an [`EgressError`], named as in the WIT `http-error` variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EgressErrorKind {
    /// See [`EgressError::Denied`].
    Denied,
    /// See [`EgressError::InvalidRequest`].
    InvalidRequest,
    /// See [`EgressError::Timeout`].
    Timeout,
    /// See [`EgressError::TooLarge`].
    TooLarge,
    /// See [`EgressError::BudgetExhausted`].
    BudgetExhausted,
    /// See [`EgressError::Connection`].
    Connection,
}

/// What one request did, kept in the job's usage so operators can see where a plugin
/// went and how much it transferred.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RequestRecord {
    /// The normalised origin, when the URL could be parsed.
    pub origin: Option<String>,
    /// The method, when it was valid.
    pub method: Option<String>,
    /// The response status, when one arrived.
    pub status: Option<u16>,
    /// The address actually connected to, when a response arrived.
    pub remote_addr: Option<SocketAddr>,
    /// Request body bytes.
    pub bytes_out: u64,
    /// Response body bytes received (including those of a body cut off as too large).
    pub bytes_in: u64,
    /// Wall time of the whole call, checks included.
    pub elapsed_ms: u64,
    /// Why it failed, if it did.
    pub error: Option<EgressErrorKind>,
}

/// Totals over a job's requests, for the job's usage report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct EgressUsage {
    /// Requests counted against the budget (every call until it ran out).
    pub requests: u32,
    /// Calls refused because the budget had run out.
    pub over_budget: u32,
    /// Counted requests that failed, for any reason.
    pub failed: u32,
    /// Counted requests that were denied by the policy.
    pub denied: u32,
    /// Request body bytes sent.
    pub bytes_out: u64,
    /// Response body bytes received.
    pub bytes_in: u64,
}

/// The per-job side of egress: the job id for logs, the request budget and the records.
///
/// Cheap to clone (shared state), so the WIT glue can take it out of the store before
/// awaiting. A new one is made for every job with [`EgressClient::new_job`], which is what
/// makes the budget per job rather than per plugin.
#[derive(Debug, Clone)]
pub struct EgressJob {
    inner: Arc<JobState>,
}

#[derive(Debug)]
struct JobState {
    job_id: String,
    max_requests: u32,
    used: AtomicU32,
    over_budget: AtomicU32,
    records: Mutex<Vec<RequestRecord>>,
}

impl EgressJob {
    fn new(job_id: String, max_requests: u32) -> Self {
        EgressJob {
            inner: Arc::new(JobState {
                job_id,
                max_requests,
                used: AtomicU32::new(0),
                over_budget: AtomicU32::new(0),
                records: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The job these requests belong to, as logged.
    pub fn job_id(&self) -> &str {
        &self.inner.job_id
    }

    /// Requests counted against the budget so far.
    pub fn requests_used(&self) -> u32 {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// Requests the job may still send.
    pub fn requests_left(&self) -> u32 {
        self.inner.max_requests.saturating_sub(self.requests_used())
    }

    /// One record per counted request, in completion order. At most the budget's size,
    /// since calls over budget are only counted in [`EgressUsage::over_budget`].
    pub fn records(&self) -> Vec<RequestRecord> {
        self.lock_records().clone()
    }

    /// Totals over [`EgressJob::records`].
    pub fn usage(&self) -> EgressUsage {
        let records = self.lock_records();
        let mut usage = EgressUsage {
            requests: self.requests_used(),
            over_budget: self.inner.over_budget.load(Ordering::Relaxed),
            ..EgressUsage::default()
        };
        for record in records.iter() {
            usage.bytes_out = usage.bytes_out.saturating_add(record.bytes_out);
            usage.bytes_in = usage.bytes_in.saturating_add(record.bytes_in);
            match record.error {
                Some(EgressErrorKind::Denied) => {
                    usage.failed += 1;
                    usage.denied += 1;
                }
                Some(_) => usage.failed += 1,
                None => {}
            }
        }
        usage
    }

    /// Takes one request from the budget; false once it is used up.
    fn try_acquire(&self) -> bool {
        let max = self.inner.max_requests;
        self.inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < max).then_some(used + 1)
            })
            .is_ok()
    }

    /// Counts a call refused for lack of budget; returns how many there were so far.
    fn note_over_budget(&self) -> u32 {
        self.inner
            .over_budget
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1)
    }

    fn push(&self, record: RequestRecord) {
        self.lock_records().push(record);
    }

    fn lock_records(&self) -> std::sync::MutexGuard<'_, Vec<RequestRecord>> {
        // A panic while holding the lock cannot leave a Vec half-pushed; keep going.
        self.inner
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Resolves host names for the egress engine.
///
/// Injectable so tests can make `evil.test` resolve to loopback or simulate a rebinding
/// DNS server; production uses [`SystemResolver`]. Whatever it returns is checked before
/// anything connects to it.
#[async_trait]
pub trait Resolver: Send + Sync + 'static {
    /// All addresses of `host`, a lowercase ASCII domain name without trailing dot.
    async fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver, through `tokio::net::lookup_host`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        let addrs = tokio::net::lookup_host((host, 0)).await?;
        Ok(addrs.map(|addr| addr.ip()).collect())
    }
}

/// Every resolved address was refused; surfaces through reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to refused addresses: {reasons}")]
struct AddressDenied {
    host: String,
    reasons: String,
}

/// The resolver failed or found nothing.
#[derive(Debug, thiserror::Error)]
#[error("could not resolve {host}: {source}")]
struct ResolveFailed {
    host: String,
    source: io::Error,
}

/// The bridge into reqwest's connector: resolves once, keeps only the addresses that pass
/// [`ip::check`], and hands exactly those to the connector, which connects to nothing else.
struct VettingResolver {
    resolver: Arc<dyn Resolver>,
    allowed_networks: Arc<[IpNet]>,
}

impl reqwest::dns::Resolve for VettingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = Arc::clone(&self.resolver);
        let allowed_networks = Arc::clone(&self.allowed_networks);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = resolver
                .resolve(&host)
                .await
                .map_err(|source| ResolveFailed {
                    host: host.clone(),
                    source,
                })?;
            let vetted = vet(&host, &found, &allowed_networks)?;
            let addrs: reqwest::dns::Addrs =
                Box::new(vetted.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Keeps the addresses of `host` that may be connected to.
fn vet(
    host: &str,
    found: &[IpAddr],
    allowed_networks: &[IpNet],
) -> Result<Vec<IpAddr>, Box<dyn StdError + Send + Sync>> {
    if found.is_empty() {
        return Err(ResolveFailed {
            host: host.to_owned(),
            source: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
        }
        .into());
    }
    let mut vetted = Vec::new();
    let mut refused = Vec::new();
    for &addr in found {
        match ip::check(addr, allowed_networks) {
            Ok(()) if !vetted.contains(&addr) => vetted.push(addr),
            Ok(()) => {}
            Err(blocked) => refused.push(blocked.to_string()),
        }
    }
    if vetted.is_empty() {
        refused.dedup();
        return Err(AddressDenied {
            host: host.to_owned(),
            reasons: refused.join("; "),
        }
        .into());
    }
    if !refused.is_empty() {
        tracing::debug!(host, refused = %refused.join("; "), "dropped refused addresses");
    }
    Ok(vetted)
}

/// Building the HTTP client failed (TLS initialisation); a host problem, not a plugin one.
#[derive(Debug, thiserror::Error)]
#[error("could not build the outbound HTTP client: {0}")]
pub struct ClientBuildError(#[source] reqwest::Error);

/// Sends plugins' requests under one [`EgressPolicy`].
///
/// Build one per plugin policy and share it (clones share the connection pool): the DNS
/// vetting is wired into its connection pool, so a pooled connection can only ever be one
/// that was vetted under this policy.
#[derive(Clone)]
pub struct EgressClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    policy: EgressPolicy,
    http: reqwest::Client,
}

impl fmt::Debug for EgressClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EgressClient")
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl EgressClient {
    /// A client resolving names with the operating system's resolver.
    pub fn new(policy: EgressPolicy) -> Result<Self, ClientBuildError> {
        Self::with_resolver(policy, Arc::new(SystemResolver))
    }

    /// A client resolving names with `resolver` (tests, or a host-wide caching resolver).
    pub fn with_resolver(
        policy: EgressPolicy,
        resolver: Arc<dyn Resolver>,
    ) -> Result<Self, ClientBuildError> {
        let vetting = VettingResolver {
            resolver,
            allowed_networks: policy.allowed_networks().into(),
        };
        let http = reqwest::Client::builder()
            .dns_resolver(vetting)
            // A proxy would resolve and connect on our behalf, bypassing every address check.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            // Even if another crate turns these features on, never inflate bodies.
            .no_gzip()
            .no_brotli()
            .no_zstd()
            .no_deflate()
            .connect_timeout(policy.limits().connect_timeout)
            .user_agent(concat!("drowl-host/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientBuildError)?;
        Ok(EgressClient {
            inner: Arc::new(ClientInner { policy, http }),
        })
    }

    /// The policy this client enforces.
    pub fn policy(&self) -> &EgressPolicy {
        &self.inner.policy
    }

    /// Starts the egress side of a job, with a fresh budget of
    /// [`EgressLimits::max_requests_per_job`] requests.
    pub fn new_job(&self, job_id: impl Into<String>) -> EgressJob {
        EgressJob::new(job_id.into(), self.policy().limits().max_requests_per_job)
    }

    /// Sends `req` on behalf of `job`, enforcing the policy (see the module docs), and
    /// reads the whole response.
    ///
    /// `deadline` is when the job must be done; the exchange gets at most the time left
    /// until then. Every call is counted against the job's budget, logged, and recorded in
    /// `job` (see [`EgressJob::records`]); if this future is dropped before it completes,
    /// the call stays counted but is not recorded.
    pub async fn send(
        &self,
        job: &EgressJob,
        req: OutboundRequest,
        deadline: Option<Instant>,
    ) -> Result<OutboundResponse, EgressError> {
        let started = Instant::now();
        if !job.try_acquire() {
            let max = self.policy().limits().max_requests_per_job;
            let refused = job.note_over_budget();
            if refused == 1 {
                tracing::warn!(job_id = job.job_id(), max, "outbound http budget exhausted");
            } else {
                tracing::debug!(job_id = job.job_id(), refused, "outbound http over budget");
            }
            return Err(EgressError::BudgetExhausted(format!(
                "this job already sent the {max} requests it may send"
            )));
        }
        let mut record = RequestRecord::default();
        let result = self.exchange(req, deadline, &mut record).await;
        record.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        record.error = result.as_ref().err().map(EgressError::kind);
        log_request(job.job_id(), &record, result.as_ref().err());
        job.push(record);
        result
    }

    async fn exchange(
        &self,
        req: OutboundRequest,
        deadline: Option<Instant>,
        record: &mut RequestRecord,
    ) -> Result<OutboundResponse, EgressError> {
        let prepared = prepare(req)?;
        let origin = prepared.origin;
        record.method = Some(prepared.method.to_string());
        record.origin = Some(origin.to_string());
        record.bytes_out = prepared.body.as_ref().map_or(0, |b| b.len() as u64);

        let policy = self.policy();
        if !policy.allows(&origin) {
            return Err(EgressError::Denied(format!(
                "{origin} is not an origin this plugin declared and the operator granted"
            )));
        }
        // IP literals are connected to without DNS, so they are vetted here.
        if let Some(addr) = origin.ip() {
            ip::check(addr, policy.allowed_networks())
                .map_err(|blocked| EgressError::Denied(blocked.to_string()))?;
        }

        let (limit, cause) = time_limit(
            policy.limits().total_timeout,
            prepared.timeout,
            deadline,
            Instant::now(),
        );
        if limit.is_zero() {
            return Err(EgressError::Timeout(format!(
                "no time left for a request to {origin} ({cause})"
            )));
        }
        let mut builder = self
            .inner
            .http
            .request(prepared.method, prepared.url)
            .headers(prepared.headers);
        if let Some(body) = prepared.body {
            builder = builder.body(body);
        }
        match tokio::time::timeout(limit, self.roundtrip(builder, &origin, record)).await {
            Ok(result) => result,
            Err(_) => Err(EgressError::Timeout(format!(
                "{origin} did not complete the exchange within {} ms ({cause})",
                limit.as_millis()
            ))),
        }
    }

    async fn roundtrip(
        &self,
        builder: reqwest::RequestBuilder,
        origin: &Origin,
        record: &mut RequestRecord,
    ) -> Result<OutboundResponse, EgressError> {
        let limits = self.policy().limits();
        let mut response = builder
            .send()
            .await
            .map_err(|err| send_error(err, origin, limits.connect_timeout))?;
        let status = response.status().as_u16();
        record.status = Some(status);
        record.remote_addr = response.remote_addr();
        // Defence in depth: the connector only ever gets vetted addresses, but if that
        // wiring were ever broken this refuses to hand the plugin what it fetched.
        if let Some(peer) = response.remote_addr() {
            ip::check(peer.ip(), self.policy().allowed_networks()).map_err(|blocked| {
                EgressError::Denied(format!("connected to a refused address: {blocked}"))
            })?;
        }

        let cap = limits.max_response_bytes;
        let announced = response.content_length();
        if announced.is_some_and(|len| len > cap) {
            return Err(EgressError::TooLarge(cap));
        }
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();
        let capacity = usize::try_from(announced.unwrap_or(0).min(cap)).unwrap_or(0);
        let mut body = Vec::with_capacity(capacity);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| body_error(err, origin))?
        {
            record.bytes_in = record.bytes_in.saturating_add(chunk.len() as u64);
            if record.bytes_in > cap {
                // Dropping the response closes the connection; nothing more is read.
                return Err(EgressError::TooLarge(cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(OutboundResponse {
            status,
            headers,
            body,
        })
    }
}

/// A request that passed the checks that need no policy.
#[derive(Debug)]
struct Prepared {
    origin: Origin,
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    timeout: Option<Duration>,
}

/// Validates and converts a plugin's request; the policy is checked afterwards.
fn prepare(req: OutboundRequest) -> Result<Prepared, EgressError> {
    let invalid = EgressError::InvalidRequest;
    let method = Method::from_bytes(req.method.as_bytes()).map_err(|_| {
        invalid(format!(
            "`{}` is not a valid HTTP method",
            clip(&req.method)
        ))
    })?;
    if method.as_str().eq_ignore_ascii_case("CONNECT") {
        return Err(invalid("CONNECT is not allowed".to_owned()));
    }

    let mut url = Url::parse(req.url.trim())
        .map_err(|err| invalid(format!("the URL is not valid: {err}")))?;
    let origin = Origin::from_url(&url).map_err(|err| invalid(err.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "the URL contains credentials; send them in an Authorization header".to_owned(),
        ));
    }
    // Resolve exactly the name that was checked: `evil.test.` becomes `evil.test`.
    if let Some(Host::Domain(domain)) = url.host()
        && domain.ends_with('.')
    {
        url.set_host(Some(origin.host()))
            .map_err(|err| invalid(format!("the URL's host is not valid: {err}")))?;
    }
    url.set_fragment(None);

    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for (name, value) in &req.headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(format!("`{}` is not a valid header name", clip(name))))?;
        if FORBIDDEN_HEADERS.contains(&header.as_str()) {
            return Err(invalid(format!(
                "header `{header}` is set by the host and may not be sent by a plugin"
            )));
        }
        // The value is not echoed: it is often a credential.
        let value = HeaderValue::from_str(value)
            .map_err(|_| invalid(format!("the value of header `{header}` is not valid")))?;
        headers.append(header, value);
    }

    Ok(Prepared {
        origin,
        method,
        url,
        headers,
        body: req.body,
        timeout: req
            .timeout_ms
            .map(|ms| Duration::from_millis(u64::from(ms))),
    })
}

/// The time an exchange may take and which limit set it: the least of the policy's total
/// timeout, the request's own timeout and the time left before the job's deadline.
fn time_limit(
    policy: Duration,
    requested: Option<Duration>,
    deadline: Option<Instant>,
    now: Instant,
) -> (Duration, &'static str) {
    let mut limit = (policy, "the host's limit");
    if let Some(requested) = requested
        && requested < limit.0
    {
        limit = (requested, "the request's timeout-ms");
    }
    if let Some(deadline) = deadline {
        let left = deadline.saturating_duration_since(now);
        if left < limit.0 {
            limit = (left, "the job's deadline");
        }
    }
    limit
}

/// Maps a failure to get a response, finding our own resolver errors in the chain.
fn send_error(err: reqwest::Error, origin: &Origin, connect_timeout: Duration) -> EgressError {
    if let Some(denied) = find_in_chain::<AddressDenied>(&err) {
        return EgressError::Denied(denied.to_string());
    }
    if let Some(failed) = find_in_chain::<ResolveFailed>(&err) {
        return EgressError::Connection(failed.to_string());
    }
    if err.is_timeout() && err.is_connect() {
        return EgressError::Timeout(format!(
            "could not connect to {origin} within {} ms",
            connect_timeout.as_millis()
        ));
    }
    if err.is_timeout() {
        return EgressError::Timeout(format!("{origin} timed out"));
    }
    EgressError::Connection(format!("{origin}: {}", describe(&err.without_url())))
}

/// Maps a failure while reading the body.
fn body_error(err: reqwest::Error, origin: &Origin) -> EgressError {
    if err.is_timeout() {
        return EgressError::Timeout(format!("{origin} timed out sending the body"));
    }
    EgressError::Connection(format!(
        "reading the body from {origin}: {}",
        describe(&err.without_url())
    ))
}

fn find_in_chain<'a, E: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// An error and its sources, `: `-separated, skipping repeats.
fn describe(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// At most 64 characters of plugin-supplied text, for error messages.
fn clip(text: &str) -> String {
    let mut clipped: String = text.chars().take(64).collect();
    if clipped.len() < text.len() {
        clipped.push('…');
    }
    clipped.escape_debug().to_string()
}

fn log_request(job_id: &str, record: &RequestRecord, error: Option<&EgressError>) {
    let origin = record.origin.as_deref().unwrap_or("-");
    let method = record.method.as_deref().unwrap_or("-");
    let remote_addr = record.remote_addr.map(|addr| addr.to_string());
    match error {
        None => tracing::info!(
            job_id,
            origin,
            method,
            status = record.status,
            remote_addr,
            bytes_out = record.bytes_out,
            bytes_in = record.bytes_in,
            elapsed_ms = record.elapsed_ms,
            "outbound http request"
        ),
        Some(error) => tracing::warn!(
            job_id,
            origin,
            method,
            status = record.status,
            remote_addr,
            bytes_out = record.bytes_out,
            bytes_in = record.bytes_in,
            elapsed_ms = record.elapsed_ms,
            %error,
            "outbound http request failed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> OutboundRequest {
        OutboundRequest {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: None,
            timeout_ms: None,
        }
    }

    fn invalid(req: OutboundRequest) -> String {
        match prepare(req) {
            Err(EgressError::InvalidRequest(msg)) => msg,
            other => panic!("expected InvalidRequest, got {other:?}"),
        }
    }

    #[test]
    fn valid_requests_are_normalised() {
        let p = prepare(request(
            "POST",
            "HTTPS://API.Example.COM.:443/v1/items?q=1#frag",
            &[
                ("Accept-Encoding", "gzip"),
                ("X-Multi", "a"),
                ("x-multi", "b"),
            ],
        ))
        .unwrap();
        assert_eq!(p.origin.to_string(), "https://api.example.com:443");
        assert_eq!(p.url.as_str(), "https://api.example.com/v1/items?q=1");
        assert_eq!(p.method, Method::POST);
        assert_eq!(p.headers.get_all("x-multi").iter().count(), 2);
        assert_eq!(p.headers["accept-encoding"], "gzip");

        let literal = prepare(request("GET", "http://0x7f.1:8080/", &[])).unwrap();
        assert_eq!(literal.origin.to_string(), "http://127.0.0.1:8080");
        assert_eq!(literal.origin.ip(), Some("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn forbidden_headers_are_invalid_requests() {
        for name in [
            "Host",
            "host",
            "Connection",
            "Transfer-Encoding",
            "Content-Length",
            "Upgrade",
            "TE",
            "Keep-Alive",
            "Proxy-Connection",
            "Trailer",
        ] {
            let msg = invalid(request("GET", "https://example.com/", &[(name, "x")]));
            assert!(msg.contains(&name.to_ascii_lowercase()), "{name}: {msg}");
            assert!(msg.contains("may not be sent"), "{name}: {msg}");
        }
    }

    #[test]
    fn malformed_requests_say_what_is_wrong() {
        let cases = [
            (
                request("GET", "ftp://example.com/", &[]),
                "scheme `ftp` is not allowed",
            ),
            (
                request("GET", "file:///etc/passwd", &[]),
                "scheme `file` is not allowed",
            ),
            (
                request("GET", "example.com/path", &[]),
                "the URL is not valid",
            ),
            (
                request("GET", "https://user:secret@example.com/", &[]),
                "credentials",
            ),
            (
                request("GET", "https://a.com@evil.test/", &[]),
                "credentials",
            ),
            (request("GET", "https://*.example.com/", &[]), "wildcard"),
            (request("GET", "http://example.com:0/", &[]), "port 0"),
            (
                request("GE T", "https://example.com/", &[]),
                "not a valid HTTP method",
            ),
            (
                request("", "https://example.com/", &[]),
                "not a valid HTTP method",
            ),
            (
                request("CONNECT", "https://example.com/", &[]),
                "CONNECT is not allowed",
            ),
            (
                request("connect", "https://example.com/", &[]),
                "CONNECT is not allowed",
            ),
            (
                request("GET", "https://example.com/", &[("bad name", "x")]),
                "not a valid header name",
            ),
            (
                request("GET", "https://example.com/", &[(":authority", "x")]),
                "not a valid header name",
            ),
            (
                request(
                    "GET",
                    "https://example.com/",
                    &[("x-token", "a\r\nHost: evil")],
                ),
                "value of header `x-token`",
            ),
        ];
        for (req, want) in cases {
            let url = req.url.clone();
            let msg = invalid(req);
            assert!(msg.contains(want), "{url}: {msg:?} lacks {want:?}");
            assert!(!msg.contains("secret"), "{msg}");
            assert!(!msg.contains("evil"), "header values are not echoed: {msg}");
        }
    }

    #[test]
    fn the_tightest_time_limit_wins() {
        let now = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(
            time_limit(s(30), None, None, now),
            (s(30), "the host's limit")
        );
        assert_eq!(
            time_limit(s(30), Some(s(60)), None, now),
            (s(30), "the host's limit")
        );
        assert_eq!(
            time_limit(s(30), Some(s(2)), None, now),
            (s(2), "the request's timeout-ms")
        );
        assert_eq!(
            time_limit(s(30), Some(s(2)), Some(now + s(1)), now),
            (s(1), "the job's deadline")
        );
        assert_eq!(
            time_limit(s(30), None, Some(now + s(40)), now),
            (s(30), "the host's limit")
        );
        let past = time_limit(s(30), None, Some(now), now + s(1));
        assert_eq!(past, (Duration::ZERO, "the job's deadline"));
    }

    #[test]
    fn vetting_keeps_only_allowed_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let two: IpNet = "127.0.0.2/32".parse().unwrap();
        let kept = vet(
            "evil.test",
            &[ip("127.0.0.1"), ip("127.0.0.2"), ip("127.0.0.2")],
            &[two],
        )
        .unwrap();
        assert_eq!(kept, [ip("127.0.0.2")]);
        let public = vet("example.com", &[ip("93.184.215.14"), ip("10.0.0.1")], &[]).unwrap();
        assert_eq!(public, [ip("93.184.215.14")]);

        let denied = vet("evil.test", &[ip("127.0.0.1"), ip("::1")], &[]).unwrap_err();
        let msg = denied.to_string();
        assert!(
            msg.starts_with("evil.test resolves only to refused addresses: 127.0.0.1 is loopback"),
            "{msg}"
        );
        assert!(msg.contains("::1 is loopback"), "{msg}");
        assert!(denied.downcast_ref::<AddressDenied>().is_some());

        let empty = vet("nothing.test", &[], &[]).unwrap_err();
        assert!(empty.downcast_ref::<ResolveFailed>().is_some());
    }

    #[test]
    fn budget_is_per_job() {
        let policy = EgressPolicy::new(
            &[],
            &[],
            &Default::default(),
            vec![],
            EgressLimits {
                max_requests_per_job: 2,
                ..Default::default()
            },
        )
        .unwrap();
        let client = EgressClient::new(policy).unwrap();
        let job = client.new_job("job-1");
        assert!(job.try_acquire());
        assert!(job.clone().try_acquire());
        assert!(!job.try_acquire());
        assert_eq!(job.requests_left(), 0);
        assert_eq!(client.new_job("job-2").requests_left(), 2);
    }

    #[test]
    fn error_kinds_match_wit_names() {
        let kinds = [
            EgressError::Denied(String::new()).kind(),
            EgressError::InvalidRequest(String::new()).kind(),
            EgressError::Timeout(String::new()).kind(),
            EgressError::TooLarge(1).kind(),
            EgressError::BudgetExhausted(String::new()).kind(),
            EgressError::Connection(String::new()).kind(),
        ];
        let names = serde_json::to_string(&kinds).unwrap();
        assert_eq!(
            names,
            r#"["denied","invalid-request","timeout","too-large","budget-exhausted","connection"]"#
        );
    }
}
