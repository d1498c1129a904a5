'use strict';
// Helpers that let the Rust tests use the REAL bull client as producer or as worker.
//
//   node bull_tool.js add '<json array of {name, data, opts}>'
//       adds each job with queue.add(name, data, opts) and prints the ids as JSON.
//   node bull_tool.js inspect '<json array of ids>'
//       prints {id: {state, json}} as the bull client reads the jobs.
//   node bull_tool.js list '<json array of states>' [start end]
//       prints {state: [ids]} as the bull client's getRanges([state], start, end) lists
//       them (newest first).
//   node bull_tool.js work [concurrency]
//       a Bull worker processing the same job actions as examples/noop_worker.rs (return,
//       fail, sleep, record); exits on SIGTERM/SIGINT. Prints "ready" once processing.
//
// QUEUE selects the queue; REDIS_URL and PREFIX as in scenarios.js.

const Queue = require('bull');

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const QUEUE = process.env.QUEUE;
const PREFIX = process.env.PREFIX || 'bull';

async function add(q, specs) {
  const ids = [];
  for (const s of specs) {
    const job = s.name ? await q.add(s.name, s.data, s.opts || {}) : await q.add(s.data, s.opts || {});
    ids.push(job.id);
  }
  console.log(JSON.stringify(ids));
}

async function inspect(q, ids) {
  const out = {};
  for (const id of ids) {
    const job = await q.getJob(id);
    out[id] = job ? { state: await job.getState(), json: job.toJSON() } : null;
  }
  console.log(JSON.stringify(out));
}

async function list(q, states, start, end) {
  const out = {};
  for (const state of states) {
    out[state] = await q.getRanges([state], start, end, false);
  }
  console.log(JSON.stringify(out));
}

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms));
}

async function work(q, concurrency) {
  q.process(concurrency, async job => {
    const d = job.data || {};
    switch (d.action) {
      case 'return':
        return d.value;
      case 'fail':
        throw new Error(d.message || 'failed');
      case 'sleep':
        await sleep(d.ms || 0);
        return d.value;
      case 'record':
        await q.client.rpush(`test:${QUEUE}:runs`, String(job.id));
        await sleep(d.ms || 0);
        return d.value;
      default:
        return null;
    }
  });
  await q.isReady();
  console.log('ready');
  await new Promise(resolve => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
}

async function main() {
  const [cmd, arg, start, end] = process.argv.slice(2);
  const q = new Queue(QUEUE, REDIS_URL, { prefix: PREFIX });
  try {
    await q.isReady();
    if (cmd === 'add') await add(q, JSON.parse(arg));
    else if (cmd === 'inspect') await inspect(q, JSON.parse(arg));
    else if (cmd === 'list') await list(q, JSON.parse(arg), Number(start || 0), Number(end || -1));
    else if (cmd === 'work') await work(q, Number(arg || 1));
    else throw new Error(`unknown command ${cmd}`);
  } finally {
    await q.close();
  }
}

main().then(
  () => process.exit(0),
  err => {
    console.error(err && err.stack ? err.stack : err);
    process.exit(1);
  }
);
