//! One plugin instance running one job: a fresh [`Store`], budgets armed, calls into the
//! role's exports, and faults turned into categories a plugin author can act on.
//!
//! The deadline is enforced twice. Epoch interruption stops wasm that is *running*, but a
//! guest that waits (a `std::thread::sleep`, a `wasi:io/poll` on a clock, a slow host
//! call) runs no wasm, so no epoch check ever fires: it would hold its job, its worker
//! slot and its pool slot for as long as it likes. So every guest call (instantiation
//! included) is also a future the host drops when the job's deadline passes
//! ([`within_deadline`]); wasmtime then unwinds the guest's fiber, and the instance,
//! whose state is now undefined, refuses every further call.

use std::time::{Duration, Instant};

use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use super::fault::HostFault;
use super::limits::Budget;
use super::loader::{PluginPre, RoleIndices};
use super::state::{RunStats, StoreState};
use crate::bindings::{enrichment, export, identity, ingestion, scheduled, types, webhook};

/// How a call into a plugin failed, by category.
///
/// The category names are what job records and `run-plugin` report (strum derives them
/// from the variants, kebab-case unless a variant names its own); each message says
/// what happened in terms a plugin author can act on.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "kebab-case")]
pub enum CallError {
    /// The job's wall-clock deadline passed while the plugin was running or waiting.
    #[error(
        "deadline exceeded: the plugin ran past its {0:?} budget (an endless loop, a long sleep or wait, or work too big for one job: page it with the cursor)"
    )]
    Timeout(Duration),
    /// The plugin tried to grow its memory past the budget.
    #[error("the plugin tried to use more than {0} bytes of linear memory")]
    MemoryLimit(u64),
    /// The plugin overflowed its stack (usually unbounded recursion).
    #[error("stack overflow (unbounded recursion?)")]
    #[strum(serialize = "trap")]
    StackOverflow,
    /// The plugin ran out of fuel.
    #[error(
        "the plugin executed more instructions than its fuel budget of {0} allows (an endless loop, or work too big for one job: page it with the cursor)"
    )]
    #[strum(serialize = "fuel")]
    OutOfFuel(u64),
    /// The plugin passed or returned more data than allowed.
    #[error("{0}")]
    OutputLimit(String),
    /// The plugin held more resource handles (WASI streams, pollables, ...) at once than
    /// its budget allows.
    #[error(
        "the plugin held more than {0} resource handles at once (WASI streams, pollables, ...); drop each handle when done with it: a loop that leaks one per iteration ends here"
    )]
    ResourceLimit(usize),
    /// Any other trap: a panic, `unreachable`, a bad memory access, invalid UTF-8 in a
    /// string, a failed host call.
    #[error("{0}")]
    Trap(String),
}

impl CallError {
    /// The category name: `timeout`, `memory-limit`, `trap`, `fuel`, `output-limit`,
    /// `resource-limit`.
    pub fn category(&self) -> &'static str {
        self.into()
    }
}

/// The role's export, loaded into this instance.
enum RoleInstance {
    Ingestion(ingestion::exports::drowl::plugin::ingestion::Guest),
    Enrichment(enrichment::exports::drowl::plugin::enrichment::Guest),
    Export(export::exports::drowl::plugin::export::Guest),
    Resolution(identity::exports::drowl::plugin0_2_0::resolution::Guest),
    Webhook,
}

/// The `webhooks` export's types.
pub type WebhooksGuest = webhook::exports::drowl::plugin0_2_0::webhooks::Guest;

/// A live instance for one job. Dropping it frees everything the job allocated.
pub struct PluginInstance<T: StoreState> {
    store: Store<T>,
    /// The pool slot this instance occupies, released when it is dropped (after the
    /// store, so the slot is free by the time another job gets the permit).
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
    describe: ingestion::exports::drowl::plugin::plugin::Guest,
    role: RoleInstance,
    webhooks: Option<WebhooksGuest>,
    schedules: Option<scheduled::exports::drowl::plugin0_2_0::schedules::Guest>,
    started: Instant,
    /// How long instantiating took, for the job's usage and the daemon's metrics.
    instantiate_us: u64,
    deadline: Instant,
    budget: Budget,
    fuel_start: Option<u64>,
    /// A call was cut off at the deadline in the middle of the guest's work: the
    /// instance's state is undefined, so it is never called again.
    cut_off: bool,
}

impl<T: StoreState> std::fmt::Debug for PluginInstance<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginInstance")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl<T: StoreState> PluginInstance<T> {
    /// Creates a store with the job's budgets and instantiates the plugin in it; `slot`
    /// is the pool slot it may use, if the engine pools instances. `state` builds the
    /// store's data from the job's deadline.
    pub(crate) async fn start(
        engine: &Engine,
        pre: &PluginPre<T>,
        budget: &Budget,
        state: impl FnOnce(Instant) -> T,
        slot: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<Self, CallError> {
        let started = Instant::now();
        let deadline = started + budget.timeout;
        let mut store = Store::new(engine, state(deadline));
        store.limiter(|s| &mut s.sandbox_mut().limiter);
        store.set_hostcall_fuel(budget.max_guest_to_host_bytes);
        // The WASI table (see `Sandbox::new`) and the component's own handle tables
        // are both capped, so leaked handles end the job instead of growing the host.
        store.set_max_component_handles(budget.max_resource_handles);
        // Check the deadline on every epoch tick, yielding to tokio in between so a busy
        // plugin never holds a worker thread for long.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        // Fuel is set only when the engine meters it (the runtime then always gives the
        // budget some): calling `set_fuel` on any other engine builds an error, which
        // captures a backtrace when RUST_BACKTRACE is set: 4 us a job, measured.
        let fuel_start = budget
            .fuel
            .and_then(|fuel| store.set_fuel(fuel).ok().map(|()| fuel));
        let instantiate = async {
            let instance = pre.pre.instantiate_async(&mut store).await?;
            let describe = pre.describe.load(&mut store, &instance)?;
            let role = match &pre.role {
                RoleIndices::Ingestion(i) => {
                    RoleInstance::Ingestion(i.load(&mut store, &instance)?)
                }
                RoleIndices::Enrichment(i) => {
                    RoleInstance::Enrichment(i.load(&mut store, &instance)?)
                }
                RoleIndices::Export(i) => RoleInstance::Export(i.load(&mut store, &instance)?),
                RoleIndices::Resolution(i) => {
                    RoleInstance::Resolution(i.load(&mut store, &instance)?)
                }
                RoleIndices::Webhook => RoleInstance::Webhook,
            };
            let webhooks = match &pre.webhooks {
                Some(w) => Some(w.load(&mut store, &instance)?),
                None => None,
            };
            let schedules = match &pre.schedules {
                Some(s) => Some(s.load(&mut store, &instance)?),
                None => None,
            };
            wasmtime::Result::Ok((describe, role, webhooks, schedules))
        };
        // Instantiation runs guest code too (start functions), so it has the same bound.
        let (describe, role, webhooks, schedules) = within_deadline(deadline, instantiate)
            .await
            .ok_or(CallError::Timeout(budget.timeout))?
            .map_err(|e| classify(store.data(), e, budget))?;
        let instantiate_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        Ok(Self {
            store,
            _slot: slot,
            describe,
            role,
            webhooks,
            schedules,
            started,
            instantiate_us,
            deadline,
            budget: *budget,
            fuel_start,
            cut_off: false,
        })
    }

    /// Ends a guest call: `None` (the deadline passed first) becomes a timeout, after
    /// which this instance refuses further calls; a wasmtime error is classified.
    fn settle<R>(&mut self, r: Option<wasmtime::Result<R>>) -> Result<R, CallError> {
        match r {
            Some(r) => r.map_err(|e| classify(self.store.data(), e, &self.budget)),
            None => {
                self.cut_off = true;
                Err(CallError::Timeout(self.budget.timeout))
            }
        }
    }

    /// Refuses a call on an instance whose earlier call was cut off at the deadline.
    fn check_usable(&self) -> Result<(), CallError> {
        if self.cut_off {
            Err(CallError::Timeout(self.budget.timeout))
        } else {
            Ok(())
        }
    }

    /// Calls `describe`.
    pub async fn describe(&mut self) -> Result<types::Manifest, CallError> {
        self.check_usable()?;
        let call = self.describe.call_describe(&mut self.store);
        let r = within_deadline(self.deadline, call).await;
        self.settle(r)
    }

    /// Calls `webhooks.spec` (the plugin must export `webhooks`).
    pub async fn webhook_spec(
        &mut self,
    ) -> Result<webhook::exports::drowl::plugin0_2_0::webhooks::WebhookSpec, CallError> {
        self.check_usable()?;
        let Some(w) = &self.webhooks else {
            return Err(CallError::Trap(
                "this plugin does not receive webhooks".into(),
            ));
        };
        let call = w.call_spec(&mut self.store);
        let r = within_deadline(self.deadline, call).await;
        self.settle(r)
    }

    /// Calls `schedules.defaults` (the plugin must export `schedules`).
    pub async fn default_schedules(
        &mut self,
    ) -> Result<Vec<scheduled::exports::drowl::plugin0_2_0::schedules::DefaultSchedule>, CallError>
    {
        self.check_usable()?;
        let Some(s) = &self.schedules else {
            return Err(CallError::Trap("this plugin suggests no schedules".into()));
        };
        let call = s.call_defaults(&mut self.store);
        let r = within_deadline(self.deadline, call).await;
        self.settle(r)
    }

    /// Calls `webhooks.handle` (the plugin must export `webhooks`).
    pub async fn handle_delivery(
        &mut self,
        delivery: &webhook::exports::drowl::plugin0_2_0::webhooks::Delivery,
    ) -> Result<
        Result<webhook::exports::drowl::plugin0_2_0::webhooks::DeliveryResult, types::JobError>,
        CallError,
    > {
        self.check_usable()?;
        let Some(w) = &self.webhooks else {
            return Err(CallError::Trap(
                "this plugin does not receive webhooks".into(),
            ));
        };
        let call = w.call_handle(&mut self.store, delivery);
        let r = within_deadline(self.deadline, call).await;
        self.settle(r)
    }

    /// Calls `ingest` (the plugin must be an ingestion plugin).
    pub async fn ingest(
        &mut self,
        req: &ingestion::exports::drowl::plugin::ingestion::IngestRequest,
    ) -> Result<
        Result<ingestion::exports::drowl::plugin::ingestion::IngestBatch, types::JobError>,
        CallError,
    > {
        self.check_usable()?;
        let RoleInstance::Ingestion(i) = &self.role else {
            return Err(CallError::Trap(
                "this plugin is not an ingestion plugin".into(),
            ));
        };
        let call = i.call_ingest(&mut self.store, req);
        let r = within_deadline(self.deadline, call).await;
        self.settle(r)
    }

    /// Calls `enrich` (the plugin must be an enrichment plugin).
    pub async fn enrich(
        &mut self,
        req: &enrichment::exports::drowl::plugin::enrichment::EnrichRequest,
    ) -> Result<
        Result<enrichment::exports::drowl::plugin::enrichment::EnrichResult, types::JobError>,
        CallError,
    > {
        self.check_usable()?;
        let RoleInstance::Enrichment(i) = &self.role else {
            return Err(CallError::Trap(
                "this plugin is not an enrichment plugin".into(),
            ));
        };
        let call = i.call_enrich(&mut self.store, req);
        let r = within_deadline(self.deadline, call).await;
        self.settle(r)
    }

    /// Calls `deliver` (the plugin must be an export plugin).
    pub async fn deliver(
        &mut self,
        req: &export::exports::drowl::plugin::export::ExportRequest,
    ) -> Result<
        Result<export::exports::drowl::plugin::export::ExportResult, types::JobError>,
        CallError,
    > {
        self.check_usable()?;
        let RoleInstance::Export(i) = &self.role else {
            return Err(CallError::Trap(
                "this plugin is not an export plugin".into(),
            ));
        };
        let call = i.call_deliver(&mut self.store, req);
        let r = within_deadline(self.deadline, call).await;
        self.settle(r)
    }

    /// Calls `resolve` (the plugin must be an identity plugin).
    pub async fn resolve(
        &mut self,
        req: &identity::exports::drowl::plugin0_2_0::resolution::ResolveRequest,
    ) -> Result<
        Result<identity::exports::drowl::plugin0_2_0::resolution::ResolveResult, types::JobError>,
        CallError,
    > {
        self.check_usable()?;
        let RoleInstance::Resolution(i) = &self.role else {
            return Err(CallError::Trap(
                "this plugin is not an identity plugin".into(),
            ));
        };
        let call = i.call_resolve(&mut self.store, req);
        let r = within_deadline(self.deadline, call).await;
        self.settle(r)
    }

    /// Time left before the job's deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Counts bytes the plugin returned, for the usage report.
    pub fn add_bytes_from_plugin(&mut self, n: u64) {
        let sandbox = self.store.data_mut().sandbox_mut();
        sandbox.bytes_from_plugin = sandbox.bytes_from_plugin.saturating_add(n);
    }

    /// The tail of the plugin's stderr, redacted.
    pub fn stderr_tail(&self) -> String {
        let state = self.store.data();
        state.redact(&state.sandbox().stderr_tail())
    }

    /// The store's data, for the layer that built it.
    pub fn state(&self) -> &T {
        self.store.data()
    }

    /// The store's data, mutably, for the layer that built it.
    pub fn state_mut(&mut self) -> &mut T {
        self.store.data_mut()
    }

    /// Ends the job and returns what it used and produced.
    pub fn finish(self) -> T::Report {
        let fuel_consumed = self.fuel_start.and_then(|start| {
            self.store
                .get_fuel()
                .ok()
                .map(|left| start.saturating_sub(left))
        });
        let wall_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let state = self.store.into_data();
        let sandbox = state.sandbox();
        let stats = RunStats {
            wall_ms,
            instantiate_us: self.instantiate_us,
            peak_memory_bytes: sandbox.limiter.peak_memory as u64,
            fuel_consumed,
            bytes_from_plugin: sandbox.bytes_from_plugin,
        };
        state.into_report(stats)
    }
}

/// Runs one guest call, bounded from the host side by `deadline`: `None` when the
/// deadline passed first.
///
/// Dropping the call's future is how wasmtime cancels a guest that is waiting rather
/// than running: the fiber is resumed with an error and unwinds, and the store stays
/// safe to drop (it must not be called into again, see `PluginInstance::cut_off`). The
/// future is polled first, so a call that is ready at the deadline still completes.
pub(crate) async fn within_deadline<R>(
    deadline: Instant,
    call: impl Future<Output = wasmtime::Result<R>>,
) -> Option<wasmtime::Result<R>> {
    tokio::time::timeout_at(deadline.into(), call).await.ok()
}

/// What wasmtime says when a call copies more than the store's hostcall fuel (the
/// error type itself is private to wasmtime, so its message is matched).
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";
/// What wasmtime says when the store's live handle count reaches its limit.
const HANDLE_LIMIT_EXCEEDED: &str = "store handle limit exceeded";

/// Turns a wasmtime error into a category, using what the store recorded.
fn classify<T: StoreState>(state: &T, e: wasmtime::Error, budget: &Budget) -> CallError {
    if state.sandbox().limiter.memory_limit_hit {
        return CallError::MemoryLimit(budget.max_memory_bytes);
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        match trap {
            Trap::Interrupt => return CallError::Timeout(budget.timeout),
            Trap::StackOverflow => return CallError::StackOverflow,
            Trap::OutOfFuel => return CallError::OutOfFuel(budget.fuel.unwrap_or(0)),
            _ => {}
        }
    }
    let text = format!("{e:#}");
    if text.contains(HOSTCALL_FUEL_EXHAUSTED) {
        return CallError::OutputLimit(format!(
            "the plugin passed more than {} bytes to the host in one call (a log line, KV value, object, request body or returned page that big); split the data into smaller pieces or pages",
            budget.max_guest_to_host_bytes
        ));
    }
    if text.contains(HANDLE_LIMIT_EXCEEDED)
        || e.chain().any(|c| {
            matches!(
                c.downcast_ref::<wasmtime::component::ResourceTableError>(),
                Some(wasmtime::component::ResourceTableError::Full)
            )
        })
    {
        return CallError::ResourceLimit(budget.max_resource_handles);
    }
    if let Some(fault) = e.downcast_ref::<HostFault>() {
        return CallError::Trap(state.redact(&fault.to_string()));
    }
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return CallError::Trap(format!(
            "the plugin called exit({}) instead of returning; return a job-error from the export (std::process::exit ends the whole instance)",
            exit.0
        ));
    }
    let stderr = state.redact(&state.sandbox().stderr_tail());
    // Rust plugins print a panic message to stderr, then abort with `unreachable`.
    if let Some(at) = stderr.rfind("panicked at ") {
        let msg = stderr[at..].lines().next().unwrap_or_default().replace(
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
            "",
        );
        return CallError::Trap(state.redact(&format!("the plugin {}", msg.trim())));
    }
    let what = match e.downcast_ref::<Trap>() {
        Some(Trap::UnreachableCodeReached) if stderr.is_empty() => {
            "the plugin aborted (wasm `unreachable` executed, e.g. std::process::abort) without a panic message".to_owned()
        }
        Some(trap) => format!("the plugin trapped: {trap}"),
        // wasmtime refuses to lift a `string` that is not UTF-8; say so in plain words.
        None if text.contains("invalid utf-8") => format!(
            "the plugin passed a string that is not valid UTF-8 ({}); WIT strings must be UTF-8, send raw bytes as list<u8>",
            text.lines().next().unwrap_or("")
        ),
        None => format!("the plugin failed: {}", text.lines().next().unwrap_or("")),
    };
    let detail = if stderr.is_empty() {
        what
    } else {
        format!("{what}; stderr: {}", stderr.replace('\n', " | "))
    };
    CallError::Trap(state.redact(&detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_call_error_has_its_category() {
        for (error, category) in [
            (CallError::Timeout(Duration::from_secs(1)), "timeout"),
            (CallError::MemoryLimit(1), "memory-limit"),
            (CallError::StackOverflow, "trap"),
            (CallError::Trap("boom".into()), "trap"),
            (CallError::OutOfFuel(1), "fuel"),
            (CallError::OutputLimit("too much".into()), "output-limit"),
            (CallError::ResourceLimit(1), "resource-limit"),
        ] {
            assert_eq!(error.category(), category, "{error:?}");
        }
    }
}
