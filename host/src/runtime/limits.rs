//! Per-call resource budgets and the limiter that enforces and measures them.
//!
//! wasmtime leaves linear memory unlimited by default, so every store gets a
//! [`Limiter`]: it refuses growth beyond the budget (the guest's `memory.grow` fails and
//! the SDK's allocator turns that into a trap), records that the limit was hit so the
//! job is reported as `memory-limit` rather than a generic trap, and records the peak
//! for the job's usage report.

pub use crate::policy::Budget;

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
    use std::time::Duration;

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
