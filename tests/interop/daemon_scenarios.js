'use strict';
// Interop scenarios for the daemon: the REAL bull client (as drowl's API uses it) against
// `drowl-host serve`, which host/tests/daemon.rs starts on the same queue with the hostile
// test plugin installed. Jobs are in drowl's format; the plugin's behaviour is `input.mode`
// (see tests/plugins/hostile/src/lib.rs).
//
// Usage: QUEUE=<name> [REDIS_URL=…] [PREFIX=…] node daemon_scenarios.js <scenario> [args]
// Exits 0 when every assertion holds and prints one JSON line
// {scenario, ok, counts, extra}; prints what failed otherwise.

const assert = require('assert');
const crypto = require('crypto');
const Queue = require('bull');

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const QUEUE = process.env.QUEUE;
const PREFIX = process.env.PREFIX || 'bull';
// How late a retry or a delayed job may start past its due time: promotion latency, the
// attempt's own run time in a debug build, and a loaded two-core machine.
const SLACK_MS = Number(process.env.SLACK_MS || 800);

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms));
}

function within(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

async function until(check, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

function md5(s) {
  return crypto.createHash('md5').update(s).digest('hex');
}

// A job in drowl's format for the hostile plugin.
function probe(mode, extra = {}) {
  return { type: 'event_ingestion', name: `probe-${mode}`, input: { pluginId: 'hostile', mode, ...extra } };
}

function uniqueTag() {
  return crypto.randomBytes(6).toString('hex') + '-';
}

async function expectCounts(q, expected) {
  const counts = await q.getJobCounts();
  for (const [k, v] of Object.entries(expected)) {
    assert.strictEqual(counts[k], v, `count ${k}: ${JSON.stringify(counts)}`);
  }
  return counts;
}

// The start time of every attempt of a job, read from `processedOn` (set at each
// activation) while the job runs, until it is finished.
async function attemptStarts(q, id, ms) {
  const starts = [];
  const end = Date.now() + ms;
  for (;;) {
    const j = await q.getJob(id);
    if (j && j.processedOn && starts[starts.length - 1] !== j.processedOn) starts.push(j.processedOn);
    if (j && j.finishedOn) return { starts, job: j };
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms following the attempts of ${id}`);
    await sleep(15);
  }
}

function gaps(starts) {
  return starts.slice(1).map((s, i) => s - starts[i]);
}

// Each gap between attempt starts is at least the backoff and at most the backoff plus
// slack (the attempt's own run time is in the gap).
function assertGaps(starts, expected, what) {
  const got = gaps(starts);
  assert.strictEqual(got.length, expected.length, `${what}: attempts started at ${JSON.stringify(starts)}`);
  got.forEach((g, i) => {
    assert.ok(g >= expected[i], `${what}: retry ${i + 1} after ${g} ms, before its ${expected[i]} ms backoff`);
    assert.ok(g < expected[i] + SLACK_MS, `${what}: retry ${i + 1} after ${g} ms, backoff ${expected[i]} ms`);
  });
  return got;
}

const scenarios = {
  // Completion: job.finished() resolves with the daemon's output; Bull's fields agree.
  async complete(q) {
    const tag = uniqueTag();
    const job = await q.add(probe('ok', { count: 2, tag }));
    const out = await within(job.finished(), 15000, 'finished');
    assert.strictEqual(out.pluginId, 'hostile');
    assert.strictEqual(out.eventsReceived, 2);
    assert.strictEqual(out.eventsStored, 2);
    assert.strictEqual(out.pages, 1);
    const j = await q.getJob(job.id);
    assert.strictEqual(await j.getState(), 'completed');
    assert.deepStrictEqual(j.returnvalue, out);
    assert.strictEqual(j.attemptsMade, 0);
    assert.ok(j.processedOn >= j.timestamp, 'processedOn after timestamp');
    assert.ok(j.finishedOn >= j.processedOn, 'finishedOn after processedOn');
    // Named jobs (queue.add(name, data)) run the same way.
    const named = await q.add('daily-ingest', probe('ok', { count: 0 }));
    assert.strictEqual((await within(named.finished(), 15000, 'named')).eventsStored, 0);
    assert.strictEqual((await q.getJob(named.id)).name, 'daily-ingest');
    return expectCounts(q, { waiting: 0, active: 0, completed: 2, failed: 0, delayed: 0, paused: 0 });
  },

  // Failures the daemon decides: permanent ones fail at once whatever `attempts` says;
  // a plugin's retry-after wins over the job's backoff; every reason says what happened.
  async failures(q) {
    const cases = [
      [probe('panic'), { attempts: 3 }, /panicked on purpose/],
      [{ type: 'event_ingestion', name: 'x', input: { pluginId: 'nope', mode: 'ok' } }, { attempts: 2 },
        /plugin `nope` is not installed; installed plugins: hostile, keywords/],
      [{ type: 'eat', name: 'x', input: {} }, { attempts: 2 }, /unknown job type "eat"/],
      [{ hello: 'not a drowl job' }, { attempts: 2 }, /no string field `type`/],
      [{ type: 'analytics', name: 'x', input: {} }, { attempts: 2 }, /no handler for analytics jobs/],
      [probe('unheard-of'), { attempts: 2 }, /unknown mode/],
    ];
    for (const [data, opts, reason] of cases) {
      const job = await q.add(data, opts);
      await assert.rejects(within(job.finished(), 15000, `failure ${reason}`), reason);
      const j = await q.getJob(job.id);
      assert.strictEqual(await j.getState(), 'failed');
      assert.strictEqual(j.attemptsMade, 1, `${reason}: a permanent failure spends one attempt`);
      assert.match(j.failedReason, reason);
    }
    // Retryable with retry-after 1500 ms: the 100 ms fixed backoff is overridden.
    const retry = await q.add(probe('retry'), { attempts: 2, backoff: { type: 'fixed', delay: 100 } });
    const { starts, job } = await attemptStarts(q, retry.id, 15000);
    await assert.rejects(within(retry.finished(), 5000, 'retry failure'), /upstream hiccup/);
    assertGaps(starts, [1500], 'retry-after');
    assert.strictEqual(job.attemptsMade, 2);
    assert.strictEqual(job.failedReason, 'plugin error (Retryable): upstream hiccup');
    assert.strictEqual(job.stacktrace.length, 2);
    return expectCounts(q, { waiting: 0, active: 0, completed: 0, failed: cases.length + 1, delayed: 0 });
  },

  // Security matrix row 29: a config value the operator supplies from the environment
  // (`${VAR}` in the plugin config) is redacted from everything Bull keeps of the job, although
  // the plugin's manifest declares it a plain string. argv[3] is the value.
  async leak_config(q) {
    const secret = process.argv[3];
    assert.ok(secret && secret.length >= 8, 'pass the secret value as argv[3]');
    const job = await q.add(probe('leak-config'), { attempts: 2 });
    await assert.rejects(within(job.finished(), 15000, 'leak-config failure'), /failing with label/);
    const j = await q.getJob(job.id);
    assert.strictEqual(await j.getState(), 'failed');
    const kept = JSON.stringify(j.toJSON());
    assert.ok(!kept.includes(secret), `the value reached Bull: ${kept}`);
    assert.match(j.failedReason, /failing with label \[REDACTED\] in the message/);
    return { failedReason: j.failedReason };
  },

  // Retries with a fixed backoff, then failure: attemptsMade, failedReason, timing.
  async retries_fixed(q) {
    const job = await q.add(probe('flaky', { count: 99 }), { attempts: 3, backoff: 400 });
    const { starts, job: j } = await attemptStarts(q, job.id, 15000);
    await assert.rejects(within(job.finished(), 5000, 'failure'), /flaky attempt 3/);
    const measured = assertGaps(starts, [400, 400], 'fixed');
    assert.strictEqual(await j.getState(), 'failed');
    assert.strictEqual(j.attemptsMade, 3);
    assert.strictEqual(j.failedReason, 'plugin error (Retryable): flaky attempt 3');
    assert.strictEqual(j.stacktrace.length, 3);
    assert.deepStrictEqual(j.opts.backoff, { type: 'fixed', delay: 400 });
    await expectCounts(q, { waiting: 0, active: 0, completed: 0, failed: 1, delayed: 0 });
    return { gapsMs: measured };
  },

  // Exponential backoff (d, 3d) then success on the third attempt; drowl's linear (d, 2d).
  async retries_exponential(q) {
    const job = await q.add(probe('flaky', { count: 2 }), { attempts: 5, backoff: { type: 'exponential', delay: 300 } });
    const { starts, job: j } = await attemptStarts(q, job.id, 15000);
    const out = await within(job.finished(), 5000, 'success');
    assert.strictEqual(out.pluginId, 'hostile');
    const exponential = assertGaps(starts, [300, 900], 'exponential');
    assert.strictEqual(await j.getState(), 'completed');
    assert.strictEqual(j.attemptsMade, 2, 'completion does not count as an attempt');
    assert.strictEqual(j.failedReason, 'plugin error (Retryable): flaky attempt 2');

    const lin = await q.add(probe('flaky', { count: 99 }), { attempts: 3, backoff: { type: 'linear', delay: 250 } });
    const l = await attemptStarts(q, lin.id, 15000);
    await assert.rejects(within(lin.finished(), 5000, 'linear failure'), /flaky attempt 3/);
    const linear = assertGaps(l.starts, [250, 500], 'linear');
    assert.strictEqual(l.job.attemptsMade, 3);
    await expectCounts(q, { completed: 1, failed: 1, active: 0, delayed: 0, waiting: 0 });
    return { exponentialGapsMs: exponential, linearGapsMs: linear };
  },

  // drowl's job defaults, as drowl's API enqueues: `queue.add({type, name, input})`, no
  // options. The daemon applies 3 attempts, 1 s then 2 s apart (drowl's doubling, not
  // Bull's 1 s, 3 s), and 5 minutes; a job's own options win; bad input still fails at
  // once. host/tests/daemon.rs checks the jobs rows of the returned ids.
  async job_defaults(q) {
    const meta = { correlationId: 'corr-42', userId: 'user-7', tags: ['devrel', 'github'] };
    const flaky = await q.add({
      type: 'event_ingestion', name: 'github-events',
      input: { pluginId: 'hostile', mode: 'flaky', count: 99, ...meta },
    });
    const f = await attemptStarts(q, flaky.id, 20000);
    await assert.rejects(within(flaky.finished(), 5000, 'no-options failure'), /flaky attempt 3/);
    const gapsMs = assertGaps(f.starts, [1000, 2000], 'drowl defaults');
    assert.strictEqual(f.job.attemptsMade, 3);
    // The defaults are the worker's: what bull stored is left as bull wrote it.
    assert.strictEqual(f.job.opts.attempts, 1);
    assert.strictEqual(f.job.opts.backoff, undefined);
    assert.strictEqual(f.job.opts.timeout, undefined);

    // Its own attempts and timeout win (drowl's backoff fills the backoff it left unset).
    const own = await q.add(probe('flaky', { count: 99 }), { attempts: 2, timeout: 5000 });
    const o = await attemptStarts(q, own.id, 15000);
    await assert.rejects(within(own.finished(), 5000, 'own options failure'), /flaky attempt 2/);
    assertGaps(o.starts, [1000], 'own attempts');
    assert.strictEqual(o.job.attemptsMade, 2);

    // Bad input fails at once naming the field, whatever the defaults allow.
    const bad = await q.add({ type: 'event_ingestion', name: 'github-events', input: { pluginId: 'hostile', count: 1 } });
    await assert.rejects(within(bad.finished(), 15000, 'bad input'), /missing field `mode`/);
    assert.strictEqual((await q.getJob(bad.id)).attemptsMade, 1, 'bad input spends one attempt');
    // So does bad input for every other job type, each named by the failure.
    const badInputs = [
      [{ type: 'event_ingestion', name: 'github-events', input: { pluginId: 'hostile', mode: 'ok', since: 'yesterday' } },
        /input\.since "yesterday" is not RFC 3339/],
      [{ type: 'keyword_extraction', name: 'extract-keywords', input: { keywords: 'TypeScript' } }, /input\.keywords must be an array/],
      [{ type: 'identity_resolution', name: 'link-identities', input: { identityId1: 'a', confidence: 'high' } },
        /identity link jobs need `input\.identityId2`/],
      [{ type: 'data_export', name: 'export', input: {} }, /data_export jobs must name their plugin in `input\.pluginId`/],
      [{ type: 'analytics', name: 'daily-metrics', input: { startDate: '2024-01-01' } },
        /daily-metrics jobs need `input\.endDate`/],
      [{ type: 'report_generation', name: 'weekly', input: {} }, /no handler for report_generation jobs/],
    ];
    for (const [data, reason] of badInputs) {
      const job = await q.add(data);
      await assert.rejects(within(job.finished(), 15000, `bad ${data.type}`), reason);
      assert.strictEqual((await q.getJob(job.id)).attemptsMade, 1, `${data.type}: bad input spends one attempt`);
    }

    // Bull's priority 2 (1 is the most urgent) is drowl's 9; a follow-up names its parent.
    const urgent = await q.add({ type: 'event_ingestion', name: 'urgent', input: { pluginId: 'hostile', mode: 'enqueue', ...meta } }, { priority: 2 });
    await within(urgent.finished(), 15000, 'urgent parent');
    const u = await q.getJob(urgent.id);
    const childId = `${urgent.id}:${u.timestamp}:follow-up-0`;
    await until(async () => {
      const c = await q.getJob(childId);
      return c && c.finishedOn;
    }, 15000, `follow-up ${childId}`);
    return { flaky: String(flaky.id), own: String(own.id), bad: String(bad.id), urgent: String(urgent.id), child: childId, gapsMs };
  },

  // Per-type defaults from the daemon's `--job-defaults event_ingestion:attempts=2,
  // backoff=linear:300,timeout=1500`: ingestion jobs without options follow them (the
  // timeout bounds each attempt); other types keep drowl's.
  async job_defaults_per_type(q) {
    const flaky = await q.add({ type: 'event_ingestion', name: 'github-events', input: { pluginId: 'hostile', mode: 'flaky', count: 99 } });
    const f = await attemptStarts(q, flaky.id, 15000);
    await assert.rejects(within(flaky.finished(), 5000, 'per-type failure'), /flaky attempt 2/);
    const gapsMs = assertGaps(f.starts, [300], 'per-type linear');
    assert.strictEqual(f.job.attemptsMade, 2);
    const slow = await q.add({ type: 'event_ingestion', name: 'slow', input: { pluginId: 'hostile', mode: 'sleep', ms: 20000 } });
    await assert.rejects(within(slow.finished(), 15000, 'per-type timeout'), /Promise timed out after 1500 milliseconds/);
    const s = await q.getJob(slow.id);
    assert.strictEqual(s.attemptsMade, 2);
    assert.ok(s.finishedOn - s.processedOn < 1500 + SLACK_MS, `timed out after ${s.finishedOn - s.processedOn} ms`);
    const keywords = await q.add({ type: 'keyword_extraction', name: 'extract-keywords', input: { keywords: ['Rust'] } });
    await within(keywords.finished(), 15000, 'keywords');
    return { flaky: String(flaky.id), slow: String(slow.id), keywords: String(keywords.id), gapsMs };
  },

  // A delayed job waits in `delayed` and runs after its delay (the daemon promotes it).
  async delay(q) {
    const t0 = Date.now();
    const job = await q.add(probe('ok', { count: 0 }), { delay: 1500 });
    assert.strictEqual(await job.getState(), 'delayed');
    await within(job.finished(), 10000, 'delayed job');
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 1500, `ran before its delay: ${elapsed}`);
    const j = await q.getJob(job.id);
    assert.ok(j.processedOn >= j.timestamp + 1500, 'started before its delay');
    assert.ok(j.processedOn < j.timestamp + 1500 + SLACK_MS, `promoted ${j.processedOn - j.timestamp - 1500} ms late`);
    assert.strictEqual(j.delay, 0, 'promotion resets delay to 0');
    return { lateMs: j.processedOn - j.timestamp - 1500 };
  },

  // Priority order with concurrency 1: lower first, FIFO within a priority, unprioritized
  // after. Added while the queue is paused so the order is all the worker's.
  async priority(q) {
    await q.pause();
    const specs = [['none-1'], ['p3', 3], ['p1-a', 1], ['p2', 2], ['p1-b', 1], ['none-2']];
    const byId = {};
    const jobs = [];
    for (const [tag, priority] of specs) {
      const job = await q.add(probe('sleep', { ms: 30 }), priority ? { priority } : {});
      byId[job.id] = tag;
      jobs.push(job);
    }
    await expectCounts(q, { paused: specs.length, waiting: 0 });
    await q.resume();
    await Promise.all(jobs.map(j => within(j.finished(), 20000, 'priority job')));
    const done = await Promise.all(jobs.map(j => q.getJob(j.id)));
    done.sort((a, b) => a.processedOn - b.processedOn);
    assert.deepStrictEqual(done.map(j => byId[j.id]), ['p1-a', 'p1-b', 'p2', 'p3', 'none-1', 'none-2']);
  },

  // A custom jobId deduplicates: the second add is a no-op returning the same id, also after
  // the first has completed.
  async dedupe(q) {
    const a = await q.add(probe('ok', { count: 1, tag: uniqueTag() }), { jobId: 'ingest-github-2024-01-02' });
    const b = await q.add(probe('ok', { count: 3, tag: uniqueTag() }), { jobId: 'ingest-github-2024-01-02' });
    assert.strictEqual(a.id, 'ingest-github-2024-01-02');
    assert.strictEqual(b.id, a.id);
    assert.strictEqual((await within(a.finished(), 15000, 'first')).eventsStored, 1);
    const c = await q.add(probe('ok', { count: 5, tag: uniqueTag() }), { jobId: 'ingest-github-2024-01-02' });
    assert.strictEqual((await within(c.finished(), 15000, 'third')).eventsStored, 1, 'the first add ran, once');
    return expectCounts(q, { completed: 1, waiting: 0, active: 0, delayed: 0 });
  },

  // opts.timeout fails the attempt with Bull's message, and the plugin stops running.
  async timeout(q) {
    const job = await q.add(probe('sleep', { ms: 5000 }), { timeout: 300 });
    await assert.rejects(
      within(job.finished(), 10000, 'timeout'),
      /^Error: Promise timed out after 300 milliseconds$/
    );
    const j = await q.getJob(job.id);
    assert.strictEqual(j.failedReason, 'Promise timed out after 300 milliseconds');
    assert.strictEqual(j.attemptsMade, 1);
    assert.ok(j.finishedOn - j.processedOn < 300 + SLACK_MS, `timed out after ${j.finishedOn - j.processedOn} ms`);
    // With attempts left, a timed-out attempt is retried like any failure.
    const again = await q.add(probe('sleep', { ms: 5000 }), { timeout: 200, attempts: 2, backoff: 100 });
    await assert.rejects(within(again.finished(), 10000, 'second timeout'), /Promise timed out after 200 milliseconds/);
    assert.strictEqual((await q.getJob(again.id)).attemptsMade, 2);
    return expectCounts(q, { failed: 2, active: 0, waiting: 0, delayed: 0 });
  },

  // removeOnComplete/removeOnFail: finished() still resolves/rejects (the published event is
  // its only signal); kept sets are trimmed.
  async remove_on_complete(q) {
    // Bull's own finished() misses an event that fires before it has attached its listener
    // (bull #2504), so the jobs are added while paused and released once finished() waits.
    await q.pause();
    const job = await q.add(probe('ok', { count: 0 }), { removeOnComplete: true });
    const failing = await q.add(probe('panic'), { removeOnFail: true });
    const done = within(job.finished(), 15000, 'removed job');
    const rejected = assert.rejects(within(failing.finished(), 15000, 'removed failure'), /panicked on purpose/);
    await sleep(500);
    await q.resume();
    assert.strictEqual((await done).pluginId, 'hostile');
    await rejected;
    assert.strictEqual(await q.getJob(job.id), null, 'hash removed');
    assert.strictEqual(await q.getJob(failing.id), null);
    await expectCounts(q, { completed: 0, failed: 0, active: 0 });
    const events = new Set();
    q.on('global:completed', jobId => events.add(String(jobId)));
    await q._registerEvent('global:completed');
    // One at a time: Bull keeps the two most recently *finished*, and with the daemon's
    // concurrency of 2 jobs added together may finish in either order.
    const kept = [];
    for (let i = 0; i < 5; i++) {
      const j = await q.add(probe('ok', { count: 0 }), { removeOnComplete: 2 });
      kept.push(j);
      await until(async () => events.has(String(j.id)), 15000, `completion of job ${j.id}`);
    }
    const counts = await expectCounts(q, { completed: 2, failed: 0, active: 0 });
    const remaining = (await q.getCompleted()).map(j => String(j.id)).sort();
    assert.deepStrictEqual(remaining, kept.slice(3).map(j => String(j.id)).sort());
    return counts;
  },

  // Repeat every: the daemon schedules each next run itself, nobody re-enqueues; Bull's ids.
  async repeat_every(q) {
    await q.add(probe('ok', { count: 0 }), { repeat: { every: 1000, limit: 3 } });
    await until(async () => (await q.getCompletedCount()) >= 3, 12000, '3 repeats');
    await sleep(1500);
    const done = await q.getCompleted();
    assert.strictEqual(done.length, 3, 'limit 3 stops the chain');
    const key = '__default__:::1000';
    const prefix = 'repeat:' + md5('__default__' + ':' + md5(key)) + ':';
    for (const j of done) {
      assert.ok(String(j.id).startsWith(prefix), `repeat id ${j.id}`);
      assert.strictEqual(Number(String(j.id).slice(prefix.length)) % 1000, 0, 'every aligns to multiples');
      assert.strictEqual(j.returnvalue.pluginId, 'hostile');
    }
    assert.deepStrictEqual(done.map(j => j.opts.repeat.count).sort(), [1, 2, 3]);
    const repeatables = await q.getRepeatableJobs();
    assert.strictEqual(repeatables.length, 1);
    assert.strictEqual(repeatables[0].every, 1000);
    return expectCounts(q, { completed: 3, active: 0, waiting: 0, delayed: 0, failed: 0 });
  },

  // A schedule from `serve --schedules` as drowl's API sees it: `getRepeatableJobs()`
  // lists it with the configured cron and zone, and its pending run is a `repeat:` job of
  // the same key. argv[3]: {name, idPrefix, cron, tz}.
  async schedule_listed(q) {
    const want = JSON.parse(process.argv[3]);
    const all = await q.getRepeatableJobs();
    const mine = all.filter(r => r.id && r.id.startsWith(want.idPrefix));
    assert.strictEqual(mine.length, 1, `one schedule ${want.idPrefix}: ${JSON.stringify(all)}`);
    const r = mine[0];
    assert.strictEqual(r.name, want.name);
    assert.strictEqual(r.cron, want.cron);
    assert.strictEqual(r.tz, want.tz);
    assert.ok(r.next > Date.now() - 5000, `next run ${r.next} is current`);
    const prefix = 'repeat:' + md5(r.name + r.id + ':' + md5(r.key)) + ':';
    const pending = await q.getJob(prefix + r.next);
    assert.ok(pending, `the run due at ${r.next} exists as ${prefix}${r.next}`);
    return { repeatables: all };
  },

  // When Bull's client (cron-parser, as in repeatable.js getNextMillis) says each cron
  // next fires. argv[3]: [{cron, tz, after}] → [next ms].
  async cron_next() {
    const parser = require('cron-parser');
    const cases = JSON.parse(process.argv[3]);
    return cases.map(c =>
      parser.parseExpression(c.cron, { currentDate: new Date(c.after), tz: c.tz }).next().getTime()
    );
  },

  // Global pause keeps jobs in `paused`; resume lets the daemon take them.
  async pause_resume(q) {
    await q.pause();
    const job = await q.add(probe('ok', { count: 0 }));
    await sleep(1000);
    assert.strictEqual(await job.getState(), 'paused');
    await expectCounts(q, { paused: 1, waiting: 0, active: 0 });
    await q.resume();
    assert.strictEqual((await within(job.finished(), 10000, 'resumed job')).pluginId, 'hostile');
    return expectCounts(q, { paused: 0, waiting: 0, completed: 1 });
  },

  // Progress reported by the plugin reaches Bull: events and the stored value.
  async progress(q) {
    const seen = [];
    q.on('global:progress', (jobId, progress) => seen.push(progress));
    await q._registerEvent('global:progress');
    const job = await q.add(probe('sleep', { ms: 300 }));
    await within(job.finished(), 10000, 'progress job');
    await until(async () => seen.length >= 2, 3000, 'progress events');
    assert.deepStrictEqual(seen, [1, 100]);
    assert.strictEqual((await q.getJob(job.id)).progress(), 100);
  },

  // Security matrix row 30: 200,000 progress calls are coalesced (latest wins), so the
  // job ends in about the time its plugin ran, with a handful of Redis updates, the last
  // of them 100.
  async progress_flood(q) {
    const seen = [];
    q.on('global:progress', (jobId, progress) => seen.push(progress));
    await q._registerEvent('global:progress');
    const started = Date.now();
    const job = await q.add(probe('progress-flood', { count: 200000 }));
    await within(job.finished(), 20000, 'progress-flood job');
    const took = Date.now() - started;
    await until(async () => seen.includes(100), 3000, 'the final progress event');
    assert.ok(seen.length < 1000, `${seen.length} progress updates reached Redis`);
    assert.strictEqual(seen[seen.length - 1], 100);
    assert.strictEqual((await q.getJob(job.id)).progress(), 100);
    return { took, updates: seen.length };
  },

  // Security matrix row 30 through the daemon (started with 4 MiB of key-value and
  // 20 MiB of objects per job): a log flood keeps the job's log budget, in its result and
  // when it fails; a 32 MiB cursor fails as invalid output and is not retried; key-value
  // and object floods stop at their quotas. The daemon's side (its memory, the `jobs`
  // rows) is checked by the test that runs this scenario.
  async bounds(q) {
    const ids = {};
    const fields = await q.add(probe('log-fields', { count: 1000 }));
    const out = await within(fields.finished(), 60000, 'log-fields job');
    assert.deepStrictEqual(out.usage.violations, ['log-bytes'], JSON.stringify(out.usage));
    assert.strictEqual(out.usage.logLines, 1000);
    const returned = JSON.stringify((await q.getJob(fields.id)).returnvalue).length;
    assert.ok(returned < 64 * 1024, `a ${returned}-byte returnvalue`);
    ids.fields = String(fields.id);

    const failing = await q.add(probe('log-fields', { count: 1000, then_panic: true }), { attempts: 2 });
    await assert.rejects(within(failing.finished(), 60000, 'log-fields then panic'), /panicked after a log-fields flood/);
    ids.fieldsFailed = String(failing.id);

    const cursor = await q.add(probe('cursor-huge', { count: 32 * 1024 }), { attempts: 2 });
    await assert.rejects(within(cursor.finished(), 60000, 'cursor-huge job'), /next-cursor/);
    const c = await q.getJob(cursor.id);
    assert.strictEqual(c.attemptsMade, 1, 'invalid output is not retried');
    assert.ok(c.failedReason.length < 1024, `a ${c.failedReason.length}-byte failedReason`);
    assert.strictEqual(c.returnvalue, null);
    ids.cursor = String(cursor.id);

    for (const [mode, violation] of [['kv-flood', 'kv-bytes'], ['objects-flood', 'object-bytes']]) {
      const job = await q.add(probe(mode, { count: 40 }));
      const done = await within(job.finished(), 60000, `${mode} job`);
      assert.deepStrictEqual(done.usage.violations, [violation], `${mode}: ${JSON.stringify(done.usage)}`);
      ids[mode] = String(job.id);
    }
    await expectCounts(q, { completed: 3, failed: 2, waiting: 0, active: 0, delayed: 0 });
    return { ids, returned };
  },

  // A plugin's follow-up job is enqueued when its job completes, under an id derived from
  // the parent's, and runs on its own (keyword extraction by the keywords plugin).
  async follow_up(q) {
    const parent = await q.add(probe('enqueue'));
    const out = await within(parent.finished(), 15000, 'parent');
    assert.strictEqual(out.eventsStored, 1);
    const p = await q.getJob(parent.id);
    assert.strictEqual(p.progress(), 50);
    const childId = `${parent.id}:${p.timestamp}:follow-up-0`;
    const child = await until(async () => {
      const c = await q.getJob(childId);
      return c && c.finishedOn ? c : null;
    }, 15000, `follow-up ${childId}`);
    assert.strictEqual(await child.getState(), 'completed', child.failedReason);
    assert.strictEqual(child.name, 'follow-up');
    assert.deepStrictEqual(child.data, {
      type: 'keyword_extraction',
      name: 'follow-up',
      input: { keywords: ['Rust'] },
      parentJobId: String(parent.id),
      lineage: { root: String(parent.id), depth: 1 },
    });
    // The follow-up's inline keyword selects; it is not added to drowl's keywords (the
    // daemon's store tracks none, so `Rust` is reported as unknown and nothing is stored).
    assert.strictEqual(child.returnvalue.matchesStored, 0);
    assert.deepStrictEqual(child.returnvalue.unknownKeywords, [{ term: 'Rust', matches: 0 }]);
    return expectCounts(q, { completed: 2, failed: 0, waiting: 0, active: 0, delayed: 0 });
  },

  // Without the operator's grant, a follow-up for another plugin is refused: the parent
  // fails permanently, saying why, and nothing is enqueued for the other plugin.
  async follow_up_refused(q) {
    for (const mode of ['enqueue', 'enqueue-other']) {
      const job = await q.add(probe(mode), { attempts: 3 });
      await within(job.finished().then(() => { throw new Error(`${mode} completed`); }, () => {}), 15000, mode);
      const j = await q.getJob(job.id);
      assert.match(j.failedReason, /not granted to plugin `hostile`/);
      assert.strictEqual(j.attemptsMade, 1, `${mode}: a refused follow-up is not retried`);
    }
    return expectCounts(q, { completed: 0, failed: 2, waiting: 0, active: 0, delayed: 0 });
  },

  // A job that enqueues ten copies of itself: the daemon is started with a follow-up
  // depth of 2 and a lineage budget of 15, so the lineage ends at 1 + 10 + 5 jobs instead
  // of growing tenfold per generation.
  async fanout(q) {
    const root = await q.add(probe('fanout', { count: 10 }));
    await within(root.finished(), 15000, 'root');
    const total = async () => {
      const c = await q.getJobCounts();
      return c.waiting + c.active + c.delayed + c.completed + c.failed;
    };
    await until(async () => (await q.getJobCounts()).completed >= 16, 30000, '16 jobs completed');
    // Give any job over the budget time to show up before counting.
    await sleep(1500);
    assert.strictEqual(await total(), 16);
    const jobs = await q.getJobs(['completed']);
    const depths = jobs.map(j => (j.data.lineage ? j.data.lineage.depth : 0)).sort();
    assert.deepStrictEqual(depths, [0, ...Array(10).fill(1), ...Array(5).fill(2)]);
    assert.ok(jobs.every(j => !j.data.lineage || j.data.lineage.root === String(root.id)));
    const refused = jobs.map(j => j.returnvalue.followUpsRefused || 0).reduce((a, b) => a + b, 0);
    assert.strictEqual(refused, 9 * 10 + 5, 'children refused over the lineage budget');
    return expectCounts(q, { completed: 16, failed: 0, waiting: 0, active: 0, delayed: 0 });
  },

  // Security row 32: the hostile plugin tries to get its secret (argv[3], which the test
  // configures as its `token`) out through a cursor, a follow-up's name and input, and a
  // value the host quotes, and puts NUL in fields. Each job fails at once naming the
  // field, and afterwards no key of the queue holds the secret, plain or hex.
  async secrets(q) {
    const secret = process.argv[3];
    assert.ok(secret, 'usage: secrets <secret>');
    const hex = Buffer.from(secret).toString('hex');
    const cases = [
      ['leak-secret-in', 'next-cursor', /next-cursor holds one of the plugin's secrets/],
      ['leak-secret-in', 'next-cursor-hex', /next-cursor holds one of the plugin's secrets/],
      ['leak-secret-in', 'follow-up-name', /holds one of this plugin's secrets/],
      ['leak-secret-in', 'follow-up-input', /holds one of this plugin's secrets/],
      ['leak-secret-in', 'source', /events\[0\]\.source "\[REDACTED\]" is not declared/],
      ['nul-in', 'event-type', /events\[0\]\.event-type "pu\\0sh" contains a NUL character/],
      ['nul-in', 'identities.metadata-json', /identities\[0\]\.metadata-json contains a NUL character/],
    ];
    const ids = {};
    for (const [mode, field, reason] of cases) {
      const job = await q.add(probe(mode, { field }), { attempts: 2 });
      await assert.rejects(within(job.finished(), 15000, `${mode} ${field}`), reason);
      const j = await q.getJob(job.id);
      assert.strictEqual(j.attemptsMade, 1, `${mode} ${field}: a refused output is not retried`);
      assert.match(j.failedReason, reason);
      assert.strictEqual(j.returnvalue, null, `${mode} ${field}`);
      ids[`${mode}:${field}`] = String(job.id);
    }
    // Every key of the queue, whatever its type: job hashes (data, returnvalue,
    // failedReason, stacktrace), state lists and sets, and any follow-up job.
    const keys = await q.client.keys(`${PREFIX}:${QUEUE}:*`);
    for (const key of keys) {
      const type = await q.client.type(key);
      const dump = {
        hash: () => q.client.hgetall(key),
        list: () => q.client.lrange(key, 0, -1),
        zset: () => q.client.zrange(key, 0, -1),
        set: () => q.client.smembers(key),
        string: () => q.client.get(key),
      }[type];
      const text = dump ? JSON.stringify(await dump()) : '';
      assert.ok(!text.includes(secret) && !text.includes(hex), `the secret is in ${key} (${type}): ${text}`);
    }
    await expectCounts(q, { failed: cases.length, completed: 0, waiting: 0, active: 0, delayed: 0 });
    return { ids, keys: keys.length };
  },

  // Many jobs with concurrency; counts at the end.
  async many(q) {
    const n = 200;
    const jobs = await q.addBulk(Array.from({ length: n }, () => ({ data: probe('ok', { count: 0 }) })));
    const values = await Promise.all(jobs.map(j => within(j.finished(), 60000, 'bulk')));
    assert.ok(values.every(v => v.pluginId === 'hostile'));
    return expectCounts(q, { waiting: 0, active: 0, completed: n, failed: 0, delayed: 0, paused: 0 });
  },

  // Security row 27, with the daemon at concurrency 2 and --timeout-ms 2000: two jobs
  // whose plugin waits instead of running (a thread sleep of 31,000 years, one
  // wasi:io/poll on a clock that never fires) take both slots; each fails at its
  // deadline and frees its slot, so a good job added behind them completes.
  async deadline_frees_slots(q) {
    const sleeper = await q.add(probe('sleep', { ms: 1e15 }));
    const poller = await q.add(probe('poll', { ms: 0 }));
    await until(async () => (await q.getActiveCount()) === 2, 15000, 'both waiting jobs to run');
    const added = Date.now();
    const good = await q.add(probe('ok', { count: 1, tag: uniqueTag() }));
    const out = await within(good.finished(), 30000, 'the good job behind two waiting ones');
    assert.strictEqual(out.eventsStored, 1);
    const goodWaitedMs = Date.now() - added;
    const ranMs = [];
    for (const j of [sleeper, poller]) {
      await assert.rejects(within(j.finished(), 15000, `waiting job ${j.id}`), /deadline exceeded/);
      const done = await q.getJob(j.id);
      assert.strictEqual(await done.getState(), 'failed');
      assert.strictEqual(done.attemptsMade, 1);
      assert.match(done.failedReason, /ran past its 2s budget/);
      ranMs.push(done.finishedOn - done.processedOn);
    }
    await expectCounts(q, { active: 0, waiting: 0, completed: 1, failed: 2 });
    return { goodWaitedMs, ranMs };
  },

  // Jobs whose mirror rows host/tests/daemon.rs checks in PostgreSQL.
  async mirror(q) {
    const ok = await q.add(probe('ok', { count: 1, tag: uniqueTag() }), { attempts: 3 });
    const flaky = await q.add(probe('flaky', { count: 99 }), { attempts: 2, backoff: { type: 'fixed', delay: 100 } });
    const slow = await q.add(probe('sleep', { ms: 5000 }), { timeout: 300 });
    const panics = await q.add(probe('panic'), { attempts: 3 });
    const recovers = await q.add(probe('flaky', { count: 1 }), { attempts: 3, backoff: { type: 'linear', delay: 100 } });
    // Past the daemon's plugin deadline (the test starts it with --timeout-ms 2000).
    const overran = await q.add(probe('sleep', { ms: 4000 }), { attempts: 2 });
    await within(ok.finished(), 15000, 'ok');
    await within(recovers.finished(), 15000, 'recovers');
    for (const j of [flaky, slow, panics]) await assert.rejects(within(j.finished(), 15000, `job ${j.id}`));
    await assert.rejects(within(overran.finished(), 15000, 'overran'), /deadline|time/i);
    return { ok: ok.id, flaky: flaky.id, slow: slow.id, panics: panics.id, recovers: recovers.id, overran: overran.id };
  },

  // drowl's API linking two identities by hand (argv[3], argv[4]: identities.id values):
  // its payload verbatim, with no options. host/tests/daemon.rs checks the
  // identity_links row.
  // One job exactly as drowl's API enqueues it (argv[3]: the JSON payload; argv[4], optional,
  // its Bull options):
  // its outcome, for the test to compare with the rows it finds.
  async drowl_job(q) {
    const payload = JSON.parse(process.argv[3]);
    const opts = process.argv[4] ? JSON.parse(process.argv[4]) : undefined;
    const job = await q.add(payload, opts);
    let output = null;
    let failedReason = null;
    try {
      output = await within(job.finished(), 30000, `${payload.type} ${payload.name}`);
    } catch (e) {
      if (/timed out/.test(e.message)) throw e;
      failedReason = e.message;
    }
    const stored = await q.getJob(job.id);
    return { id: String(job.id), output, failedReason, attemptsMade: stored.attemptsMade };
  },

  async link_identities(q) {
    const [identityId1, identityId2] = [process.argv[3], process.argv[4]];
    const job = await q.add({ type: 'identity_resolution', name: 'link-identities', input: { identityId1, identityId2, confidence: 'high' } });
    const output = await within(job.finished(), 15000, 'link-identities');
    return { id: job.id, output };
  },

  // drowl's API asking for the daily rollups of startDate..endDate (argv[3], argv[4]): its
  // payload verbatim, with no options. host/tests/daemon.rs checks the metrics_daily_* rows.
  async daily_metrics(q) {
    const [startDate, endDate] = [process.argv[3], process.argv[4]];
    const job = await q.add({ type: 'analytics', name: 'daily-metrics', input: { startDate, endDate } });
    const output = await within(job.finished(), 30000, 'daily-metrics');
    return { id: job.id, output };
  },

  // daily-metrics jobs with bad inputs (argv[3]: a JSON array of inputs), three attempts
  // each: every one fails at once, spending one attempt. Returns the failed reasons.
  async daily_metrics_refused(q) {
    const out = [];
    for (const input of JSON.parse(process.argv[3])) {
      const job = await q.add({ type: 'analytics', name: 'daily-metrics', input }, { attempts: 3, backoff: 1000 });
      await assert.rejects(within(job.finished(), 15000, `refusal of ${JSON.stringify(input)}`));
      const j = await q.getJob(job.id);
      assert.strictEqual(await j.getState(), 'failed');
      assert.strictEqual(j.attemptsMade, 1, `${JSON.stringify(input)}: a permanent failure spends one attempt`);
      out.push({ id: job.id, failedReason: j.failedReason });
    }
    return out;
  },

  // Adds N jobs (argv[3]) with distinct events and counts every completed/failed event per
  // job until all N have finished, then listens a little longer for duplicates.
  // Prints per-id event counts for the fault tests.
  async add_and_watch(q) {
    const n = Number(process.argv[3] || 1000);
    const limitMs = Number(process.argv[4] || 120000);
    const completed = new Map();
    const failed = new Map();
    q.on('global:completed', id => completed.set(String(id), (completed.get(String(id)) || 0) + 1));
    q.on('global:failed', id => failed.set(String(id), (failed.get(String(id)) || 0) + 1));
    await q._registerEvent('global:completed');
    await q._registerEvent('global:failed');
    const run = process.env.RUN_TAG || uniqueTag();
    const specs = Array.from({ length: n }, (_, i) => ({
      // One attempt: a job may be recovered after a crash, but no attempt may fail.
      data: probe('ok', { count: 1, reset: true, tag: `${run}${i}-` }),
    }));
    const jobs = [];
    for (let i = 0; i < n; i += 250) jobs.push(...(await q.addBulk(specs.slice(i, i + 250))));
    console.error(`added ${jobs.length} jobs`);
    const ids = jobs.map(j => String(j.id));
    await until(async () => ids.every(id => completed.has(id) || failed.has(id)), limitMs, 'every job to finish');
    await sleep(1500);
    return {
      ids,
      completed: Object.fromEntries(completed),
      failed: Object.fromEntries(failed),
    };
  },
};

async function main() {
  const name = process.argv[2];
  if (!QUEUE || !scenarios[name]) {
    console.error(`usage: QUEUE=<name> node daemon_scenarios.js <${Object.keys(scenarios).join('|')}>`);
    process.exit(2);
  }
  const q = new Queue(QUEUE, REDIS_URL, { prefix: PREFIX });
  try {
    await q.isReady();
    const extra = await scenarios[name](q);
    console.log(JSON.stringify({ scenario: name, ok: true, counts: await q.getJobCounts(), extra }));
  } finally {
    await q.close();
  }
}

main().then(
  () => process.exit(0),
  err => {
    console.error(`scenario ${process.argv[2]} failed: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  }
);
