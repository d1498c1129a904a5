'use strict';
// The Node.js side of issue #14's enrichment figure: a plain Node.js keyword matcher
// (50 keywords, case-insensitive, Unicode word boundaries) over generated developer
// activity texts, in memory, on one core. host/examples/bench_matcher.rs runs the keywords
// plugin in its sandbox and natively over the SAME corpus, which this script writes.
//
//   node bench_matcher.js [--write corpus.json] [--events N] [--passes P]
//
// Defaults: 20,000 events, 3 timed passes after one warm-up pass; prints the best pass and
// a `BENCH enrich.node_eps=...` summary line. Like the plugin, the matcher is built once per
// pass (a job), the events go through it in pages of 500 (a job's pages) and each keyword's
// occurrences are counted with the position of the first. The word-boundary rule is the usual Unicode one (a term's word
// character must not touch a letter, mark, digit or `_`); the plugin's script-aware rule for
// CJK text is more work, so this is, if anything, the cheaper matcher.

const fs = require('fs');

const PAGE = 500;

const TERMS = [
  'TypeScript', 'React', 'Rust', 'WebAssembly', 'PostgreSQL', 'Kubernetes', 'Deno', 'Svelte',
  'GraphQL', 'Tailwind', 'Go', 'Python', 'Java', 'Kotlin', 'Swift', 'Docker', 'Terraform', 'Vue',
  'Angular', 'Next.js', 'Node.js', 'C++', 'C#', '.NET', 'Redis', 'MongoDB', 'MySQL', 'SQLite',
  'Elixir', 'Ruby', 'Rails', 'Django', 'Flask', 'Spring', 'Scala', 'Haskell', 'Zig', 'Lua', 'PHP',
  'Laravel', 'Flutter', 'Dart', 'Unity', 'TensorFlow', 'PyTorch', 'Kafka', 'Nginx', 'Bun', 'Vite',
  '生成AI',
];
const SYNONYMS = { Kubernetes: ['k8s'], Rust: ['rustlang'], WebAssembly: ['wasm'], PostgreSQL: ['Postgres'] };

const WORDS = [
  'the', 'parser', 'is', 'faster', 'now', 'refactor', 'integration', 'update', 'docs', 'for',
  'release', 'fix', 'memory', 'leak', 'in', 'worker', 'thread', 'add', 'tests', 'Reactive',
  'TypeScripts', 'gopher', 'javascript', 'rusty', 'crate', 'async', 'pool', 'ビルド', 'が', '速い',
  'を使ってみた', 'für', 'Größe', 'école', 'naïve', 'crème', 'coöperate',
];

/// A deterministic corpus: texts of 60-1,200 characters mixing tracked terms, near misses
/// (`Reactive`, `TypeScripts`) and non-Latin text.
function corpus(n) {
  let seed = 42;
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  const events = [];
  for (let i = 0; i < n; i++) {
    const len = 60 + Math.floor(rnd() * 1140);
    let text = '';
    while (text.length < len) {
      const r = rnd();
      if (r < 0.06) text += TERMS[Math.floor(rnd() * TERMS.length)];
      else text += WORDS[Math.floor(rnd() * WORDS.length)];
      text += rnd() < 0.1 ? '. ' : ' ';
    }
    events.push({ id: `ev-${String(i).padStart(9, '0')}`, text });
  }
  const keywords = TERMS.map((term, i) => ({ id: `kw-${i + 1}`, term, synonyms: SYNONYMS[term] || [] }));
  return { keywords, events };
}

const escape = s => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const WORD = /[\p{L}\p{M}\p{N}_]/u;

function compile(keywords) {
  return keywords.map(k => {
    const alts = [k.term, ...k.synonyms].map(s => {
      const pre = WORD.test(s[0]) ? '(?<![\\p{L}\\p{M}\\p{N}_])' : '';
      const post = WORD.test(s[s.length - 1]) ? '(?![\\p{L}\\p{M}\\p{N}_])' : '';
      return pre + escape(s).replace(/\s+/g, '\\s+') + post;
    });
    return { id: k.id, re: new RegExp(alts.join('|'), 'giu') };
  });
}

function matchPage(compiled, events) {
  const out = [];
  for (const e of events) {
    for (const k of compiled) {
      k.re.lastIndex = 0;
      let first = null;
      let occurrences = 0;
      let m;
      while ((m = k.re.exec(e.text)) !== null) {
        if (first === null) first = m;
        occurrences++;
      }
      if (first !== null) {
        out.push({ eventId: e.id, keywordId: k.id, matchedText: first[0], position: first.index, occurrences });
      }
    }
  }
  return out;
}

function pass({ keywords, events }) {
  let matches = 0;
  const t0 = process.hrtime.bigint();
  const compiled = compile(keywords);
  for (let i = 0; i < events.length; i += PAGE) {
    matches += matchPage(compiled, events.slice(i, i + PAGE)).length;
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return { secs, matches };
}

function main() {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : dflt;
  };
  const n = Number(opt('--events', 20000));
  const passes = Number(opt('--passes', 3));
  const data = corpus(n);
  const write = opt('--write', null);
  if (write) fs.writeFileSync(write, JSON.stringify(data));
  pass(data);
  let best = null;
  for (let p = 0; p < passes; p++) {
    const r = pass(data);
    if (!best || r.secs < best.secs) best = r;
  }
  const eps = n / best.secs;
  const bytes = data.events.reduce((s, e) => s + Buffer.byteLength(e.text), 0);
  console.log(
    `node ${process.version} matcher: ${n} events (avg ${Math.round(bytes / n)} B), ` +
      `${data.keywords.length} keywords, best of ${passes}: ${best.secs.toFixed(3)} s, ` +
      `${Math.round(eps)} events/s, ${best.matches} matches`
  );
  console.log(`BENCH enrich.node_eps=${eps.toFixed(0)} enrich.node_matches=${best.matches}`);
}

main();
