'use strict';
// Interop scenarios: the REAL bull client (producer side) against a drowl-bull worker that
// the Rust test harness (host/bull/tests/interop.rs) starts on the same queue. The worker's
// behaviour is chosen by job data (see host/bull/examples/noop_worker.rs).
//
// Usage: QUEUE=<name> [REDIS_URL=…] [PREFIX=…] node scenarios.js <scenario>
// Exits 0 when every assertion holds; prints what failed otherwise.

const assert = require('assert');
const crypto = require('crypto');
const Queue = require('bull');

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const QUEUE = process.env.QUEUE;
const PREFIX = process.env.PREFIX || 'bull';

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

async function expectCounts(q, expected) {
  const counts = await q.getJobCounts();
  for (const [k, v] of Object.entries(expected)) {
    assert.strictEqual(counts[k], v, `count ${k}: ${JSON.stringify(counts)}`);
  }
  return counts;
}

const scenarios = {
  // Completion with a return value through job.finished(), for default and named jobs.
  async complete(q) {
    const value = { answer: 42, list: [1, 'two', null], nested: { ok: true } };
    const job = await q.add({ action: 'return', value });
    assert.deepStrictEqual(await within(job.finished(), 10000, 'finished'), value);
    const j = await q.getJob(job.id);
    assert.strictEqual(await j.getState(), 'completed');
    assert.deepStrictEqual(j.returnvalue, value);
    assert.strictEqual(j.attemptsMade, 0);
    assert.ok(j.processedOn >= j.timestamp, 'processedOn after timestamp');
    assert.ok(j.finishedOn >= j.processedOn, 'finishedOn after processedOn');
    const named = await q.add('named', { action: 'return', value: 'text' });
    assert.strictEqual(await within(named.finished(), 10000, 'named'), 'text');
    assert.strictEqual((await q.getJob(named.id)).name, 'named');
    const nothing = await q.add({ action: 'noop' });
    assert.strictEqual(await within(nothing.finished(), 10000, 'noop'), null);
    await expectCounts(q, { waiting: 0, active: 0, completed: 3, failed: 0, delayed: 0, paused: 0 });
  },

  // Retries with a fixed backoff, then failure: failedReason, attemptsMade, stacktrace, timing.
  async retries_fixed(q) {
    const t0 = Date.now();
    const job = await q.add({ action: 'fail', message: 'boom' }, { attempts: 3, backoff: 400 });
    await assert.rejects(within(job.finished(), 15000, 'failure'), /boom/);
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 800, `two 400 ms backoffs take >= 800 ms, took ${elapsed}`);
    assert.ok(elapsed < 800 + 2500, `fixed backoff too slow: ${elapsed}`);
    const j = await q.getJob(job.id);
    assert.strictEqual(await j.getState(), 'failed');
    assert.strictEqual(j.attemptsMade, 3);
    assert.strictEqual(j.failedReason, 'boom');
    assert.strictEqual(j.stacktrace.length, 3);
    assert.deepStrictEqual(j.opts.backoff, { type: 'fixed', delay: 400 });
    await expectCounts(q, { waiting: 0, active: 0, completed: 0, failed: 1, delayed: 0 });
  },

  // Exponential backoff (d, 3d) then success on the third attempt; linear fails after d, 2d.
  async retries_exponential(q) {
    const t0 = Date.now();
    const job = await q.add(
      { action: 'fail_until', attempt: 2, value: 'third time' },
      { attempts: 5, backoff: { type: 'exponential', delay: 300 } }
    );
    assert.strictEqual(await within(job.finished(), 15000, 'success'), 'third time');
    const j = await q.getJob(job.id);
    const waited = j.processedOn - t0;
    assert.ok(waited >= 1200, `300 + 900 ms of backoff before the last attempt, got ${waited}`);
    assert.ok(waited < 1200 + 2500, `exponential backoff too slow: ${waited}`);
    assert.strictEqual(j.attemptsMade, 2, 'completion does not count as an attempt');
    assert.strictEqual(j.failedReason, 'attempt 2 fails');

    const t1 = Date.now();
    const lin = await q.add(
      { action: 'fail', message: 'linear' },
      { attempts: 3, backoff: { type: 'linear', delay: 250 } }
    );
    await assert.rejects(within(lin.finished(), 15000, 'linear failure'), /linear/);
    const took = Date.now() - t1;
    assert.ok(took >= 750, `linear 250 + 500 ms, took ${took}`);
    assert.ok(took < 750 + 2500, `linear backoff too slow: ${took}`);
    assert.strictEqual((await q.getJob(lin.id)).attemptsMade, 3);
    await expectCounts(q, { completed: 1, failed: 1, active: 0, delayed: 0, waiting: 0 });
  },

  // Handler-side overrides: permanent failure ignores attempts; retry-after sets the delay.
  async failure_overrides(q) {
    const perm = await q.add({ action: 'fail', message: 'bad input', permanent: true }, { attempts: 5 });
    await assert.rejects(within(perm.finished(), 10000, 'permanent'), /bad input/);
    assert.strictEqual((await q.getJob(perm.id)).attemptsMade, 1);
    const t0 = Date.now();
    const ra = await q.add(
      { action: 'fail', message: 'slow down', retryAfterMs: 700 },
      { attempts: 2, backoff: { type: 'fixed', delay: 10 } }
    );
    await assert.rejects(within(ra.finished(), 10000, 'retry-after'), /slow down/);
    const took = Date.now() - t0;
    assert.ok(took >= 700, `retry-after 700 ms honoured over the 10 ms backoff, took ${took}`);
    assert.strictEqual((await q.getJob(ra.id)).attemptsMade, 2);
  },

  // A delayed job waits in `delayed` and runs after its delay.
  async delay(q) {
    const t0 = Date.now();
    const job = await q.add({ action: 'return', value: 'late' }, { delay: 1500 });
    assert.strictEqual(await job.getState(), 'delayed');
    assert.strictEqual(await within(job.finished(), 10000, 'delayed job'), 'late');
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 1500, `ran before its delay: ${elapsed}`);
    assert.ok(elapsed < 1500 + 1500, `delayed job promoted too late: ${elapsed}`);
    const j = await q.getJob(job.id);
    assert.ok(j.processedOn >= j.timestamp + 1500);
    assert.strictEqual(j.delay, 0, 'promotion resets delay to 0');
  },

  // Priority order (lower first, FIFO within a priority, unprioritized after), with the
  // queue globally paused while the jobs are added.
  async priority(q) {
    await q.pause();
    const specs = [
      ['none-1', undefined],
      ['p3', 3],
      ['p1-a', 1],
      ['p2', 2],
      ['p1-b', 1],
      ['none-2', undefined],
    ];
    const jobs = [];
    for (const [tag, priority] of specs) {
      const opts = priority ? { priority } : {};
      jobs.push(await q.add({ action: 'sleep', ms: 30, value: tag }, opts));
    }
    await expectCounts(q, { paused: specs.length, waiting: 0 });
    await q.resume();
    await Promise.all(jobs.map(j => within(j.finished(), 15000, 'priority job')));
    const done = await Promise.all(jobs.map(j => q.getJob(j.id)));
    done.sort((a, b) => a.processedOn - b.processedOn);
    assert.deepStrictEqual(
      done.map(j => j.returnvalue),
      ['p1-a', 'p1-b', 'p2', 'p3', 'none-1', 'none-2']
    );
  },

  // A custom jobId deduplicates: the second add is a no-op returning the same id.
  async dedupe(q) {
    const a = await q.add({ action: 'return', value: 'first' }, { jobId: 'custom-1' });
    const b = await q.add({ action: 'return', value: 'second' }, { jobId: 'custom-1' });
    assert.strictEqual(a.id, 'custom-1');
    assert.strictEqual(b.id, 'custom-1');
    assert.strictEqual(await within(a.finished(), 10000, 'first'), 'first');
    const c = await q.add({ action: 'return', value: 'third' }, { jobId: 'custom-1' });
    assert.strictEqual(await within(c.finished(), 10000, 'third'), 'first');
    await expectCounts(q, { completed: 1, waiting: 0, active: 0 });
  },

  // opts.timeout fails the attempt with Bull's message.
  async timeout(q) {
    const job = await q.add({ action: 'sleep', ms: 5000, value: 'never' }, { timeout: 300 });
    await assert.rejects(
      within(job.finished(), 10000, 'timeout'),
      /^Error: Promise timed out after 300 milliseconds$/
    );
    const j = await q.getJob(job.id);
    assert.strictEqual(j.failedReason, 'Promise timed out after 300 milliseconds');
    assert.strictEqual(j.attemptsMade, 1);
    await expectCounts(q, { failed: 1, active: 0 });
  },

  // removeOnComplete/removeOnFail: finished() still resolves/rejects; sets are trimmed.
  async remove_on_complete(q) {
    // With removeOnComplete the published event is finished()'s only signal. Bull's own
    // finished() misses an event that fires before it has attached its listener (bull
    // #2504), so the jobs are added while paused and released once finished() is waiting.
    await q.pause();
    const job = await q.add({ action: 'return', value: { ok: true } }, { removeOnComplete: true });
    const failing = await q.add({ action: 'fail', message: 'gone' }, { removeOnFail: true });
    const done = within(job.finished(), 10000, 'removed job');
    const rejected = assert.rejects(within(failing.finished(), 10000, 'removed failure'), /gone/);
    await sleep(500);
    await q.resume();
    assert.deepStrictEqual(await done, { ok: true });
    await rejected;
    assert.strictEqual(await q.getJob(job.id), null, 'hash removed');
    assert.strictEqual(await q.getJob(failing.id), null);
    await expectCounts(q, { completed: 0, failed: 0, active: 0 });
    // Trimmed jobs leave no trace for finished() to find once the event has passed, so
    // count completion events, listening from before the adds.
    const events = new Set();
    q.on('global:completed', jobId => events.add(String(jobId)));
    await q._registerEvent('global:completed');
    const kept = [];
    for (let i = 0; i < 5; i++) {
      kept.push(await q.add({ action: 'return', value: i }, { removeOnComplete: 2 }));
    }
    await until(async () => kept.every(j => events.has(String(j.id))), 10000, 'counted completions');
    const counts = await expectCounts(q, { completed: 2, failed: 0, active: 0 });
    const remaining = await q.getCompleted();
    assert.deepStrictEqual(remaining.map(j => j.returnvalue).sort(), [3, 4]);
    const aged = await q.add({ action: 'return', value: 'aged' }, { removeOnComplete: { age: 3600, count: 1 } });
    await within(aged.finished(), 10000, 'aged');
    await expectCounts(q, { completed: 1 });
    return counts;
  },

  // Repeat every: runs at multiples of `every`, ids as Bull computes them, limit honoured,
  // and the real client's getRepeatableJobs/removeRepeatable interoperate.
  async repeat_every(q) {
    await q.add({ action: 'return', value: 'tick' }, { repeat: { every: 1000, limit: 3 } });
    await until(async () => (await q.getCompletedCount()) >= 3, 9000, '3 repeats');
    await sleep(1500);
    const done = await q.getCompleted();
    assert.strictEqual(done.length, 3, 'limit 3 stops the chain');
    const key = '__default__:::1000';
    const prefix = 'repeat:' + md5('__default__' + ':' + md5(key)) + ':';
    for (const j of done) {
      assert.ok(String(j.id).startsWith(prefix), `repeat id ${j.id}`);
      const millis = Number(String(j.id).slice(prefix.length));
      assert.strictEqual(millis % 1000, 0, 'every aligns to multiples');
      assert.strictEqual(j.opts.repeat.key, key);
    }
    assert.deepStrictEqual(done.map(j => j.opts.repeat.count).sort(), [1, 2, 3]);
    const repeatables = await q.getRepeatableJobs();
    assert.strictEqual(repeatables.length, 1);
    assert.strictEqual(repeatables[0].every, 1000);

    // An unlimited chain stops when removed with the real client.
    await q.add('chain', { action: 'return', value: 'c' }, { repeat: { every: 500 } });
    await until(async () => (await q.getCompleted()).filter(j => j.name === 'chain').length >= 2, 6000, 'chain');
    await q.removeRepeatable('chain', { every: 500 });
    await sleep(700);
    const before = (await q.getCompleted()).filter(j => j.name === 'chain').length;
    await sleep(1500);
    const after = (await q.getCompleted()).filter(j => j.name === 'chain').length;
    assert.strictEqual(after, before, 'removed repeatable keeps running');
    await expectCounts(q, { active: 0, waiting: 0 });
  },

  // Repeat cron (6 fields, seconds first, as cron-parser reads it): the worker schedules each
  // next run; ids and the repeat key are Bull's; limit stops the chain.
  async repeat_cron(q) {
    const cron = '*/1 * * * * *';
    await q.add('cron', { action: 'return', value: 'c' }, { repeat: { cron, limit: 3 } });
    await until(async () => (await q.getCompletedCount()) >= 3, 9000, '3 cron runs');
    await sleep(1500);
    const done = await q.getCompleted();
    assert.strictEqual(done.length, 3, 'limit 3 stops the chain');
    const key = 'cron::::' + cron;
    const prefix = 'repeat:' + md5('cron' + ':' + md5(key)) + ':';
    const millis = done.map(j => Number(String(j.id).slice(prefix.length))).sort();
    for (const j of done) {
      assert.ok(String(j.id).startsWith(prefix), `repeat id ${j.id}`);
      assert.ok(j.processedOn >= Number(String(j.id).slice(prefix.length)), 'not run early');
    }
    assert.ok(millis.every(m => m % 1000 === 0), 'whole seconds');
    assert.deepStrictEqual(millis.slice(1).map((m, i) => m - millis[i]), [1000, 1000]);
    const repeatables = await q.getRepeatableJobs();
    assert.strictEqual(repeatables.length, 1);
    assert.strictEqual(repeatables[0].cron, cron);
    assert.strictEqual(repeatables[0].key, key);
    await expectCounts(q, { active: 0, waiting: 0, delayed: 0 });
  },

  // Global pause keeps jobs in `paused`; resume lets the worker take them.
  async pause_resume(q) {
    await q.pause();
    const job = await q.add({ action: 'return', value: 'after resume' });
    await sleep(1000);
    assert.strictEqual(await job.getState(), 'paused');
    await expectCounts(q, { paused: 1, waiting: 0, active: 0 });
    await q.resume();
    assert.strictEqual(await within(job.finished(), 10000, 'resumed job'), 'after resume');
    await expectCounts(q, { paused: 0, waiting: 0, completed: 1 });
  },

  // Progress events and values, and job logs.
  async progress_logs(q) {
    const seen = [];
    q.on('global:progress', (jobId, progress) => seen.push(progress));
    await q.isReady();
    await sleep(200);
    const job = await q.add({ action: 'progress', values: [10, 50, { step: 3 }], value: 'p' });
    assert.strictEqual(await within(job.finished(), 10000, 'progress job'), 'p');
    await until(async () => seen.length >= 3, 3000, 'progress events');
    assert.deepStrictEqual(seen, [10, 50, { step: 3 }]);
    assert.deepStrictEqual((await q.getJob(job.id)).progress(), { step: 3 });
    const logged = await q.add({ action: 'log', lines: ['first line', 'second line'] });
    await within(logged.finished(), 10000, 'log job');
    const logs = await q.getJobLogs(logged.id);
    assert.deepStrictEqual(logs.logs, ['first line', 'second line']);
  },

  // Many jobs with concurrency; counts at the end.
  async many(q) {
    const jobs = await q.addBulk(
      Array.from({ length: 200 }, (_, i) => ({ data: { action: 'return', value: i } }))
    );
    const values = await Promise.all(jobs.map(j => within(j.finished(), 20000, 'bulk')));
    assert.deepStrictEqual(values, Array.from({ length: 200 }, (_, i) => i));
    await expectCounts(q, { waiting: 0, active: 0, completed: 200, failed: 0, delayed: 0, paused: 0 });
  },
};

async function main() {
  const name = process.argv[2];
  if (!QUEUE || !scenarios[name]) {
    console.error(`usage: QUEUE=<name> node scenarios.js <${Object.keys(scenarios).join('|')}>`);
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
