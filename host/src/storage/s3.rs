//! The production object store: an S3-compatible bucket (MinIO in drowl's own setup).
//!
//! Configured from drowl's variables (`S3_ENDPOINT`, `S3_ACCESS_KEY`, `S3_SECRET_KEY`,
//! `S3_BUCKET`) with path-style addressing, so MinIO, moto and other S3-compatible servers
//! work without wildcard DNS. Credentials are static; nothing is read from `~/.aws` or an
//! instance metadata service, so the daemon never contacts anything it was not told about.
//!
//! Retries are deliberately few and timeouts short: when the server is down, the job
//! should fail quickly as [`StorageError::Unavailable`] and be retried by the queue (which
//! is safe: keys are deterministic, so a retry rewrites the same objects), rather than
//! hold its queue lock while the SDK backs off.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;

use super::{ObjectKey, ObjectStore, Result, StorageError};

/// drowl's default bucket name.
pub const DEFAULT_BUCKET: &str = "drowl-events";

/// How to reach the bucket.
#[derive(Clone)]
pub struct S3Config {
    /// `http(s)://host:port` of the S3-compatible server (`S3_ENDPOINT`).
    pub endpoint: String,
    /// Bucket holding raw payloads and plugin objects (`S3_BUCKET`).
    pub bucket: String,
    /// Access key id (`S3_ACCESS_KEY`).
    pub access_key: String,
    /// Secret key (`S3_SECRET_KEY`); never printed.
    pub secret_key: String,
    /// Signing region (`S3_REGION`, default `us-east-1`, which MinIO and moto accept).
    pub region: String,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Upper bound for one request attempt (upload of one object included).
    pub attempt_timeout: Duration,
    /// Attempts per operation, the first included (SDK-level retries of transient errors).
    pub max_attempts: u32,
    /// How long the start-up check of the bucket may take ([`S3Store::connect`]): a server
    /// that accepts connections but never answers must stop the start, not hold it for
    /// `attempt_timeout` times `max_attempts`.
    pub start_timeout: Duration,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .field("secret_key", &"***")
            .field("region", &self.region)
            .field("connect_timeout", &self.connect_timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("start_timeout", &self.start_timeout)
            .finish()
    }
}

impl S3Config {
    /// Defaults for `endpoint`, `bucket` and static credentials.
    pub fn new(
        endpoint: impl Into<String>,
        bucket: impl Into<String>,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            bucket: bucket.into(),
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            region: "us-east-1".into(),
            connect_timeout: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(30),
            max_attempts: 2,
            start_timeout: Duration::from_secs(10),
        }
    }

    /// Reads drowl's variables (`S3_ENDPOINT`, `S3_BUCKET`, `S3_ACCESS_KEY`,
    /// `S3_SECRET_KEY`, optional `S3_REGION`).
    ///
    /// `Ok(None)` when none of the four is set (objects stay in the data directory). Setting
    /// some but not all of them is an error naming the missing ones: falling back to local
    /// files, or to a default bucket, would quietly keep payloads somewhere the operator
    /// did not choose.
    pub fn from_env() -> Result<Option<Self>> {
        match Self::from_vars(|k| std::env::var(k).ok()) {
            Some(cfg) => cfg.check().map(|()| Some(cfg)),
            None => Ok(None),
        }
    }

    /// What the variables ask for, without judging it: `None` when none of the four is
    /// set, otherwise a config whose unset fields are empty, which [`Self::check`] (and
    /// so [`S3Store::connect`]) refuses by name. Empty values count as unset.
    pub(crate) fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let [endpoint, bucket, access, secret] = REQUIRED_VARS.map(var);
        if endpoint.is_none() && bucket.is_none() && access.is_none() && secret.is_none() {
            return None;
        }
        let mut cfg = Self::new(
            endpoint.unwrap_or_default(),
            bucket.unwrap_or_default(),
            access.unwrap_or_default(),
            secret.unwrap_or_default(),
        );
        if let Some(region) = var("S3_REGION") {
            cfg.region = region;
        }
        Some(cfg)
    }

    /// Checks the settings without contacting the server: all four variables given and
    /// the endpoint an http(s) URL. Errors name the variables to fix.
    pub fn check(&self) -> Result<()> {
        let set = [
            &self.endpoint,
            &self.bucket,
            &self.access_key,
            &self.secret_key,
        ]
        .map(|v| !v.trim().is_empty());
        if set.contains(&false) {
            let names = |want: bool| {
                REQUIRED_VARS
                    .iter()
                    .zip(set)
                    .filter(|(_, s)| *s == want)
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
            };
            let (present, missing) = (names(true), names(false));
            let verb = |n: &[&str]| if n.len() == 1 { "is" } else { "are" };
            return Err(StorageError::Config(if present.is_empty() {
                format!("{} {} empty", missing.join(", "), verb(&missing))
            } else {
                format!(
                    "{} {} set but {} {} not: set all of {} to keep objects in S3, or none \
                     of them to keep objects in the data directory",
                    present.join(", "),
                    verb(&present),
                    missing.join(", "),
                    verb(&missing),
                    REQUIRED_VARS.join(", "),
                )
            }));
        }
        let url = url::Url::parse(&self.endpoint).map_err(|e| {
            StorageError::Config(format!("S3_ENDPOINT ({}) is not a URL: {e}", self.endpoint))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(StorageError::Config(format!(
                "S3_ENDPOINT ({}) must be an http:// or https:// URL",
                self.endpoint
            )));
        }
        Ok(())
    }
}

/// The variables an S3 configuration needs, all or none.
const REQUIRED_VARS: [&str; 4] = ["S3_ENDPOINT", "S3_BUCKET", "S3_ACCESS_KEY", "S3_SECRET_KEY"];

/// Objects in one S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    endpoint: String,
}

/// Classifies an SDK error: transport trouble and 5xx are retryable, 403 is configuration.
fn sdk_err<E, R>(what: &str, endpoint: &str, e: SdkError<E, R>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let detail = aws_sdk_s3::error::DisplayErrorContext(&e).to_string();
    match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StorageError::Unavailable(format!("{what}: S3 at S3_ENDPOINT ({endpoint}): {detail}"))
        }
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("");
            match code {
                "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" => {
                    StorageError::Config(format!(
                        "{what}: S3 refused the credentials (S3_ACCESS_KEY/S3_SECRET_KEY): {detail}"
                    ))
                }
                "NoSuchBucket" => StorageError::Config(format!(
                    "{what}: the bucket in S3_BUCKET does not exist at S3_ENDPOINT ({endpoint})"
                )),
                "SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout" => {
                    StorageError::Unavailable(format!("{what}: {detail}"))
                }
                _ => StorageError::Invalid(format!("{what}: {detail}")),
            }
        }
        _ => StorageError::Invalid(format!("{what}: {detail}")),
    }
}

impl S3Store {
    /// Builds the client and checks that the bucket exists and the credentials work
    /// (`HeadBucket`), so a wrong endpoint, bucket or key fails at start-up with a message
    /// naming the variable to fix, rather than in the first job.
    pub async fn connect(cfg: &S3Config) -> Result<Self> {
        cfg.check()?;
        let store = Self {
            client: Self::client_for(cfg),
            bucket: cfg.bucket.clone(),
            endpoint: cfg.endpoint.clone(),
        };
        match tokio::time::timeout(cfg.start_timeout, store.check_bucket()).await {
            Ok(checked) => checked?,
            Err(_) => {
                return Err(StorageError::Unavailable(format!(
                    "S3 at S3_ENDPOINT={} did not answer within {:?} (checking S3_BUCKET={})",
                    cfg.endpoint, cfg.start_timeout, cfg.bucket
                )));
            }
        }
        Ok(store)
    }

    /// Creates the bucket if it does not exist yet, for development setups and tests
    /// (production buckets are provisioned by the operator).
    pub async fn create_bucket(cfg: &S3Config) -> Result<()> {
        cfg.check()?;
        let client = Self::client_for(cfg);
        match client.create_bucket().bucket(&cfg.bucket).send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(s))
                if s.err().is_bucket_already_owned_by_you()
                    || s.err().is_bucket_already_exists() =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_err("creating S3_BUCKET", &cfg.endpoint, e)),
        }
    }

    fn client_for(cfg: &S3Config) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(cfg.endpoint.clone())
            .force_path_style(true)
            .region(Region::new(cfg.region.clone()))
            .credentials_provider(Credentials::new(
                cfg.access_key.clone(),
                cfg.secret_key.clone(),
                None,
                None,
                "drowl-s3-env",
            ))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(cfg.max_attempts.max(1))
                    .with_initial_backoff(Duration::from_millis(100))
                    .with_max_backoff(Duration::from_secs(1)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(cfg.connect_timeout)
                    .operation_attempt_timeout(cfg.attempt_timeout)
                    .build(),
            )
            // Only send checksums the operation requires: older S3-compatible servers
            // reject the newer default trailers, and TLS/TCP already protect the bytes.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    async fn check_bucket(&self) -> Result<()> {
        let store = self;
        match store
            .client
            .head_bucket()
            .bucket(&store.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(s)) if s.err().is_not_found() => {
                Err(StorageError::Config(format!(
                    "the bucket S3_BUCKET={} does not exist at S3_ENDPOINT={}; create it first",
                    store.bucket, store.endpoint
                )))
            }
            Err(SdkError::ServiceError(s)) if s.raw().status().as_u16() == 403 => {
                Err(StorageError::Config(format!(
                    "S3 at S3_ENDPOINT={} refused access to S3_BUCKET={}: check S3_ACCESS_KEY \
                     and S3_SECRET_KEY",
                    store.endpoint, store.bucket
                )))
            }
            Err(e) => Err(match sdk_err("checking S3_BUCKET", &store.endpoint, e) {
                StorageError::Unavailable(m) => StorageError::Unavailable(format!(
                    "cannot reach S3_ENDPOINT={} to check S3_BUCKET={}: {m}",
                    store.endpoint, store.bucket
                )),
                other => other,
            }),
        }
    }

    /// The bucket name, for logs.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The underlying client, for tests and tools that list or clean the bucket.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &ObjectKey, data: bytes::Bytes, content_type: &str) -> Result<()> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .body(ByteStream::from(data));
        if !content_type.is_empty() {
            req = req.content_type(content_type);
        }
        req.send()
            .await
            .map_err(|e| sdk_err(&format!("writing {key}"), &self.endpoint, e))?;
        Ok(())
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<bytes::Bytes>> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(out) => out,
            Err(SdkError::ServiceError(s)) if s.err().is_no_such_key() => return Ok(None),
            Err(e) => return Err(sdk_err(&format!("reading {key}"), &self.endpoint, e)),
        };
        let body = out.body.collect().await.map_err(|e| {
            StorageError::Unavailable(format!(
                "reading {key} from S3_ENDPOINT ({}): {e}",
                self.endpoint
            ))
        })?;
        Ok(Some(body.into_bytes()))
    }

    async fn prefix_bytes(&self, prefix: &str) -> Result<u64> {
        // ListObjectsV2 returns at most 1,000 keys a page: follow the continuation
        // token until the listing is complete.
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut total: u64 = 0;
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| sdk_err(&format!("listing {prefix}"), &self.endpoint, e))?;
            total += page
                .contents()
                .iter()
                .filter_map(|o| o.size())
                .map(|n| u64::try_from(n).unwrap_or(0))
                .sum::<u64>();
        }
        Ok(total)
    }

    fn describe(&self, key: &ObjectKey) -> String {
        format!("s3://{}/{}", self.bucket, key)
    }

    /// `HeadBucket`: the bucket exists and the credentials may use it.
    async fn ping(&self) -> Result<()> {
        self.check_bucket().await
    }

    fn backend(&self) -> String {
        format!("S3 bucket {} at {}", self.bucket, self.endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_never_printed() {
        let cfg = S3Config::new("http://127.0.0.1:9000", "b", "ak", "very-secret");
        assert!(!format!("{cfg:?}").contains("very-secret"));
    }

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn s3_variables_are_all_or_nothing() {
        assert!(S3Config::from_vars(vars(&[])).is_none());
        assert!(
            S3Config::from_vars(vars(&[("S3_ENDPOINT", " "), ("S3_REGION", "eu")])).is_none(),
            "empty values and the region alone do not ask for S3"
        );
        let full = [
            ("S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("S3_BUCKET", "drowl-events"),
            ("S3_ACCESS_KEY", "ak"),
            ("S3_SECRET_KEY", "sk"),
            ("S3_REGION", "eu-west-1"),
        ];
        let cfg = S3Config::from_vars(vars(&full)).unwrap();
        cfg.check().unwrap();
        assert_eq!(cfg.bucket, "drowl-events");
        assert_eq!(cfg.region, "eu-west-1");
        let e = S3Config::from_vars(vars(&full[..1]))
            .unwrap()
            .check()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("S3_ENDPOINT is set but S3_BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY are not"),
            "{e}"
        );
        let e = S3Config::from_vars(vars(&[full[0], full[2], full[3]]))
            .unwrap()
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("are set but S3_BUCKET is not"), "{e}");
    }

    #[tokio::test]
    async fn a_bad_endpoint_is_a_config_error_naming_s3_endpoint() {
        let cfg = S3Config::new("ftp://x", "b", "a", "s");
        let e = S3Store::connect(&cfg).await.unwrap_err();
        assert!(
            matches!(&e, StorageError::Config(m) if m.contains("S3_ENDPOINT")),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_closed_port_fails_fast_as_unavailable() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let cfg = S3Config::new(format!("http://127.0.0.1:{port}"), "b", "a", "s");
        let started = std::time::Instant::now();
        let e = S3Store::connect(&cfg).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        assert!(
            matches!(&e, StorageError::Unavailable(m) if m.contains("S3_ENDPOINT") && m.contains("S3_BUCKET")),
            "{e}"
        );
    }
}
