//! The WIT glue of the `http` interface: converts between the WIT records and
//! [`super::egress`], which does all the checking.

use super::egress::{EgressError, OutboundRequest};
use super::{HttpCtx, wit};
use crate::runtime::guarded;

impl wit::Host for HttpCtx {
    #[tracing::instrument(name = "drowl.http.send", level = "debug", skip_all, fields(plugin = %self.tag.plugin, job = %self.tag.job))]
    async fn send(
        &mut self,
        req: wit::Request,
    ) -> wasmtime::Result<Result<wit::Response, wit::HttpError>> {
        let client = self.client.clone();
        let job = self.job.clone();
        let deadline = self.deadline;
        let out = OutboundRequest {
            method: req.method,
            url: req.url,
            headers: req.headers,
            body: req.body,
            timeout_ms: req.timeout_ms,
        };
        let result = guarded("http.send", client.send(&job, out, Some(deadline))).await?;
        Ok(match result {
            Ok(r) => Ok(wit::Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
            }),
            Err(e) => Err(match e {
                EgressError::Denied(m) => wit::HttpError::Denied(m),
                EgressError::InvalidRequest(m) => wit::HttpError::InvalidRequest(m),
                EgressError::Timeout(m) => wit::HttpError::Timeout(m),
                EgressError::TooLarge(n) => wit::HttpError::TooLarge(n),
                EgressError::BudgetExhausted(m) => wit::HttpError::BudgetExhausted(m),
                EgressError::Connection(m) => wit::HttpError::Connection(m),
            }),
        })
    }
}
