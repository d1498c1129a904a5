//! Per-call resource budgets and the limiter that enforces and measures them.
//!
//! wasmtime leaves linear memory unlimited by default, so every store gets a
//! [`Limiter`]: it refuses growth beyond the budget (the guest's `memory.grow` fails and
//! the SDK's allocator turns that into a trap), records that the limit was hit so the
//! job is reported as `memory-limit` rather than a generic trap, and records the peak
//! for the job's usage report.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Budgets for one job. The plugin's manifest requests them, the operator's configuration
/// caps them (see [`Budget::resolve`]), and the host enforces them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Linear memory per instance, in bytes. Default 256 MiB.
    pub max_memory_bytes: u64,
    /// Wall-clock time for the whole job. Default 60 s.
    pub timeout: Duration,
    /// Fuel per job when fuel is enabled on the engine. Default: none.
    pub fuel: Option<u64>,
    /// Table elements per table. Default 100,000.
    pub max_table_elements: usize,
    /// Instances, tables and memories per store. Default 16 each.
    pub max_instances: usize,
    /// Bytes a single call may pass from guest to host (wasmtime's hostcall fuel).
    /// Default 64 MiB.
    pub max_guest_to_host_bytes: usize,
    /// Events in one ingested page. Default 10,000.
    pub max_events_per_batch: usize,
    /// Bytes of raw payload in one ingested page. Default 64 MiB.
    pub max_batch_bytes: usize,
    /// Pages one ingestion job may fetch before it stops and leaves the rest to the
    /// next run. Default 100.
    pub max_pages_per_job: u32,
    /// Outbound HTTP requests per job. Default 1,000.
    pub max_http_requests: u32,
    /// Log lines kept per job; further lines are counted and dropped. Default 1,000.
    pub max_log_lines: u32,
    /// Follow-up jobs one job may enqueue. Default 100.
    pub max_follow_ups: u32,
    /// Resource handles (WASI streams, pollables, ...) a job may hold at once. Each one
    /// is a host-side allocation the guest creates with a single call, so without a cap
    /// a loop that never drops them grows host memory until the job's deadline. Plugins
    /// need a handful; default 10,000.
    pub max_resource_handles: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            max_memory_bytes: 256 << 20,
            timeout: Duration::from_secs(60),
            fuel: None,
            max_table_elements: 100_000,
            max_instances: 16,
            max_guest_to_host_bytes: 64 << 20,
            max_events_per_batch: 10_000,
            max_batch_bytes: 64 << 20,
            max_pages_per_job: 100,
            max_http_requests: 1_000,
            max_log_lines: 1_000,
            max_follow_ups: 100,
            max_resource_handles: 10_000,
        }
    }
}

impl Budget {
    /// The budget for a plugin: what it requested, never above the operator's caps.
    /// Anything it did not request gets the cap.
    #[must_use]
    pub fn resolve(
        caps: &Budget,
        requested_memory: Option<u64>,
        requested_timeout_ms: Option<u64>,
        requested_http: Option<u32>,
    ) -> Budget {
        let mut b = *caps;
        if let Some(m) = requested_memory {
            b.max_memory_bytes = m.min(caps.max_memory_bytes);
        }
        if let Some(t) = requested_timeout_ms {
            b.timeout = Duration::from_millis(t).min(caps.timeout);
        }
        if let Some(h) = requested_http {
            b.max_http_requests = h.min(caps.max_http_requests);
        }
        b
    }
}

/// Enforces memory and table budgets for one store and measures the peak.
#[derive(Debug)]
pub struct Limiter {
    max_memory: usize,
    max_table_elements: usize,
    max_instances: usize,
    /// Largest total linear memory seen, in bytes.
    pub peak_memory: usize,
    /// Set when a growth request was refused because of the budget.
    pub memory_limit_hit: bool,
    /// Set when a table growth request was refused.
    pub table_limit_hit: bool,
}

impl Limiter {
    /// A limiter for `budget`.
    pub fn new(budget: &Budget) -> Self {
        Self {
            max_memory: usize::try_from(budget.max_memory_bytes).unwrap_or(usize::MAX),
            max_table_elements: budget.max_table_elements,
            max_instances: budget.max_instances,
            peak_memory: 0,
            memory_limit_hit: false,
            table_limit_hit: false,
        }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.memory_limit_hit = true;
            return Ok(false);
        }
        self.peak_memory = self.peak_memory.max(desired).max(current);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_table_elements {
            self.table_limit_hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.max_instances
    }

    fn tables(&self) -> usize {
        self.max_instances
    }

    fn memories(&self) -> usize {
        self.max_instances
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_caps_win_over_requests() {
        let caps = Budget::default();
        let b = Budget::resolve(&caps, Some(u64::MAX), Some(10), Some(5));
        assert_eq!(b.max_memory_bytes, caps.max_memory_bytes);
        assert_eq!(b.timeout, Duration::from_millis(10));
        assert_eq!(b.max_http_requests, 5);
    }

    #[test]
    fn limiter_refuses_growth_past_budget_and_tracks_peak() {
        use wasmtime::ResourceLimiter;
        let mut l = Limiter::new(&Budget {
            max_memory_bytes: 1 << 20,
            ..Budget::default()
        });
        assert!(l.memory_growing(0, 65536, None).unwrap());
        assert!(!l.memory_growing(65536, 2 << 20, None).unwrap());
        assert!(l.memory_limit_hit);
        assert_eq!(l.peak_memory, 65536);
    }
}
