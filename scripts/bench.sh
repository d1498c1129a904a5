#!/usr/bin/env bash
# Issue #14's figures, each side by side with its peer, in one command:
#
#   scripts/bench.sh [--runs N] [--cold] [--skip-build] [--skip-demo]
#
# Builds the release host and its bench examples (the examples' dev-dependency
# tests/artifacts builds the plugin components), the demo's debug build, starts the services
# (scripts/services.sh: PostgreSQL, Redis, moto_server, Bull), then runs every bench N times
# (default 3) and prints ONE table of medians: target | drowl | peer | ratio | holds? | what
# limits it. Everything each bench printed, and a Markdown report for BENCHMARKS.md, go to
# target/bench/<time>/. Benchmarks print figures; no test asserts a speed.
#
#   --runs N      runs of every bench; the table shows the median (default 3)
#   --cold        also time ./scripts/demo.sh in a fresh clone of this repository's HEAD
#                 with its own empty target directory (issue #14's cold build; ~20+ min on
#                 2 cores). Crates already downloaded to ~/.cargo stay downloaded.
#   --skip-build  use what is already built
#   --skip-demo   neither build nor time ./scripts/demo.sh (figure 6 then shows "not run")
#
# Figures (the benches' headers say exactly what each measures):
#   1 queue       host/examples/bench_daemon.rs --levels 1,8,50 (drowl-host serve vs Bull 4's
#                 Node.js worker, no-op jobs, removeOnComplete; CPU per job of the worker)
#   2 sandbox     host/examples/bench_instantiate.rs (instantiate + describe of the hostile
#                 no-op plugin, p50, pooling allocator as the daemon uses it)
#   3 ingestion   host/examples/bench_host_ingest.rs 20 1000 20000 (the host's store path,
#                 S3 object + identities + rows + cursor per page, 4 pages in flight as 4
#                 concurrent jobs, vs psql \copy of the same 20,000 rows into the same table;
#                 the executor runs with the hostile and github plugins are shown too)
#   4 enrichment  tests/interop/bench_matcher.js (plain Node.js matcher) and
#                 host/examples/bench_matcher.rs (the keywords plugin in its sandbox and the
#                 same matcher natively) over one corpus; host/examples/bench_enrich.rs 20000
#                 (keyword_extraction end to end from PostgreSQL)
#   5 density     host/examples/bench_density.rs (RSS per idle / active instance at 100 and
#                 1,000 instances; epoch interruption on vs off)
#   6 build       ./scripts/demo.sh timed warm (everything built) and, with --cold, from a
#                 fresh clone
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ARGS="$*"

RUNS=3
COLD=0
BUILD=1
DEMO=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --runs=*) RUNS=${1#--runs=}; shift ;;
    --cold) COLD=1; shift ;;
    --skip-build) BUILD=0; shift ;;
    --skip-demo) DEMO=0; shift ;;
    -h|--help) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "--runs needs a positive number" >&2; exit 2; }

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ "$TARGET" != "$ROOT/target" ] && [ "$TARGET" != "target" ]; then
  # scripts/demo.sh runs target/debug/... relative to the repository.
  echo "note: CARGO_TARGET_DIR=$TARGET; scripts/demo.sh expects $ROOT/target" >&2
fi
REL=$TARGET/release
OUT=$ROOT/target/bench/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
say() { echo "== $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

say "services (PostgreSQL, Redis, moto_server, bull)"
scripts/services.sh --no-browser

BUILD_SECS=""
if [ "$BUILD" = 1 ]; then
  say "building the release host, its bench examples (and the plugins they load), the demo"
  t0=$(now)
  # The plugins (tests/artifacts' build script, scripts/build-plugins.sh) are components.
  rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
  cargo build --release -p drowl-host --bin drowl-host --examples
  if [ "$DEMO" = 1 ]; then
    # One untimed run does the demo's own build steps (whatever demo.sh builds), so that
    # timing it below measures a warm run.
    data=$(mktemp -d)
    DROWL_DATA_DIR=$data ./scripts/demo.sh >/dev/null
    rm -rf "$data"
  fi
  BUILD_SECS=$(since "$t0")
fi
for ex in bench_daemon bench_instantiate bench_host_ingest bench_matcher bench_enrich bench_density; do
  [ -x "$REL/examples/$ex" ] || { echo "$REL/examples/$ex is missing: run without --skip-build" >&2; exit 1; }
done

{
  echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo)"
  echo "kernel: $(uname -r); rustc: $(rustc --version); node: $(node --version); $(psql --version); redis $(redis-server --version | grep -o 'v=[0-9.]*')"
  echo "command: scripts/bench.sh $ARGS"
  echo "runs: $RUNS; started $(date -u +%Y-%m-%dT%H:%M:%SZ); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  [ -n "$BUILD_SECS" ] && echo "build step of this invocation: ${BUILD_SECS%.*} s"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

# One bench, its output shown and kept.
bench() {
  local run=$1 name=$2; shift 2
  say "run $run/$RUNS: $name"
  "$@" 2>&1 | tee "$OUT/run$run/$name.log"
}

CORPUS=$OUT/corpus.json
for run in $(seq 1 "$RUNS"); do
  mkdir -p "$OUT/run$run"
  bench "$run" queue "$REL/examples/bench_daemon" 3000 8 --levels 1,8,50
  bench "$run" sandbox "$REL/examples/bench_instantiate" 3000
  bench "$run" ingest "$REL/examples/bench_host_ingest" 20 1000 20000
  bench "$run" node-matcher node tests/interop/bench_matcher.js --write "$CORPUS"
  bench "$run" matcher "$REL/examples/bench_matcher" "$CORPUS"
  bench "$run" enrich "$REL/examples/bench_enrich" 20000
  bench "$run" density "$REL/examples/bench_density"
  if [ "$DEMO" = 1 ]; then
    say "run $run/$RUNS: warm ./scripts/demo.sh"
    data=$(mktemp -d)
    t0=$(now)
    DROWL_DATA_DIR=$data ./scripts/demo.sh >"$OUT/run$run/demo.log" 2>&1
    echo "BENCH build.demo_warm_s=$(since "$t0")" | tee -a "$OUT/run$run/demo.log"
    rm -rf "$data"
  fi
done

if [ "$COLD" = 1 ]; then
  say "cold ./scripts/demo.sh in a fresh clone of HEAD (own target directory)"
  tmp=$(mktemp -d)
  git clone --quiet --no-hardlinks "$ROOT" "$tmp/drowl-host"
  t0=$(now)
  (cd "$tmp/drowl-host" && env -u CARGO_TARGET_DIR DROWL_DATA_DIR="$tmp/data" ./scripts/demo.sh) \
    >"$OUT/run1/demo-cold.log" 2>&1
  echo "BENCH build.demo_cold_s=$(since "$t0")" | tee -a "$OUT/run1/demo-cold.log"
  echo "load average after the cold build: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
  rm -rf "$tmp"
fi

python3 - "$OUT" "$RUNS" <<'PY'
import glob, os, re, statistics, sys

out, runs = sys.argv[1], int(sys.argv[2])
vals = {}
for path in sorted(glob.glob(os.path.join(out, "run*", "*.log"))):
    for line in open(path, encoding="utf-8", errors="replace"):
        if line.startswith("BENCH "):
            for kv in line.split()[1:]:
                k, _, v = kv.partition("=")
                try:
                    vals.setdefault(k, []).append(float(v))
                except ValueError:
                    pass
med = {k: statistics.median(v) for k, v in vals.items()}
g = med.get

def num(x, unit=""):
    if x is None:
        return "-"
    s = f"{x:,.1f}" if abs(x) < 100 else f"{x:,.0f}"
    return s + unit

def ratio(a, b):
    return a / b if a is not None and b else None

def rnum(x):
    return "-" if x is None else f"{x:.2f}"

# Where a target is missed, what limits it: from the perf profiles in BENCHMARKS.md (issue
# #14's `perf record -g` of serve at concurrency 8, and this branch's profiles).
LIMIT = {
    "queue": "the daemon's path around the plugin, not the queue: drowl-bull's noop_worker alone does 15,167 jobs/s at 52 us/job at c8, 1.6x Bull. perf --call-graph dwarf of serve at c8 (after ddc0023): the sqlx-sqlite worker thread 25% (a cursor read and write per job, the jobs-table mirror; SQLite's JSON functions 7% of all), scheduler/futex wake-ups between it and the runtime, instantiate 7%, dropping the instance 4-5%, malloc 10%",
    "cpu": "the same profile: per job a SQLite cursor read on sqlx's reader thread (and a write when the cursor moved) plus its share of a batched mirror upsert on the writer thread, each a thread round trip (about 20 futex calls and 8 fcntl locks per job, strace -c); instantiate + describe 17-26 us p50 (figure 2)",
    "sandbox": "instantiate from InstancePre plus the first call into a fresh instance (guest start-up): 17-26 us p50 in stop 20's runs, 51 us before ddc0023 built wasmtime without component-model-async; pooling on, dirty pages reset in place (no refaults) since 4e8ef87",
    "ingest": "PostgreSQL's insert into events with its indexes: 'event rows' is 77-81% of the store path's time (the bench's own step timing, BENCHMARKS.md), S3 put and identities about 10% each",
    "node": "the plugin's compiled wasm: the matcher's search loops in JIT code (perf). Since 4b6e2ff it compiles a job's keywords once and builds at opt-level 3 with simd128; one stop-19 run had it on a par with Node.js (1.02), stop 20's three release runs 0.70-0.78",
    "native": "the matcher runs 2.8-3.3x slower as wasm than natively (stop 19 and stop 20 runs), in its regex/aho-corasick search loops (natively those crates can take SSE/AVX2 paths that have no wasm simd128 counterpart; not verified function by function); not the component boundary (memmove + malloc under 5%)",
    "e2e": "in the bench process 45% of samples in the plugin's wasm (matching), 35% host code (first-load compile, serde, malloc); PostgreSQL reads/writes not sampled (perf of the process)",
    "build": "compiling, CPU-bound on 2 cores; what is left after stop 20's dev profile (only cranelift and wasmtime's core optimised among dependencies) is dominated by those crates, aws-sdk-s3 and the C of aws-lc-sys and SQLite (cargo --timings before the change); a load average above 2 in machine.txt means the machine was shared",
}

rows = []
def row(target, drowl, peer, r, holds, limit_key):
    h = "n/a" if holds is None else ("yes" if holds else "no")
    rows.append((target, drowl, peer, r, h, LIMIT.get(limit_key, "") if holds is False else ""))

for c in (1, 8, 50):
    d, b = g(f"queue.c{c}.drowl_jobs_s"), g(f"queue.c{c}.bull_jobs_s")
    r = ratio(d, b)
    row(f"1 queue c{c}: serve jobs/s >= 2x Bull node worker", num(d), num(b) + " (bull)",
        rnum(r), None if r is None else r >= 2, "queue")
for c in (1, 8, 50):
    d, b = g(f"queue.c{c}.drowl_cpu_us"), g(f"queue.c{c}.bull_cpu_us")
    row(f"1 queue c{c}: host CPU per no-op job <= 100 us", num(d, " us"), num(b, " us") + " (bull)",
        rnum(ratio(d, b)), None if d is None else d <= 100, "cpu")
d, p = g("sandbox.pooling_p50_us"), g("sandbox.ondemand_p50_us")
row("2 sandbox: instantiate + 1 call, no-op plugin <= 10 us (p50)", num(d, " us"),
    num(p, " us") + " (on-demand)", rnum(ratio(d, 10.0)) + " of target", None if d is None else d <= 10, "sandbox")
d, p = g("ingest.store4_eps"), g("ingest.copy_eps")
r = ratio(d, p)
row("3 ingestion: host store path, 4 jobs' pages in flight >= 0.8 psql \\copy", num(d, " ev/s"),
    num(p, " ev/s") + " (\\copy)", rnum(r), None if r is None else r >= 0.8, "ingest")
for key, what in (("store", "host store path, one page at a time"),
                  ("hostile", "executor + hostile plugin, ~100 B events"),
                  ("github", "executor + github plugin over HTTP, one job")):
    d = g(f"ingest.{key}_eps")
    row(f"3 ingestion (info): {what}", num(d, " ev/s"), num(p, " ev/s") + " (\\copy)",
        rnum(ratio(d, p)), None, "")
d, p = g("enrich.sandbox_eps"), g("enrich.node_eps")
r = ratio(d, p)
row("4 enrichment: sandbox matcher >= Node.js matcher, per core", num(d, " ev/s"), num(p, " ev/s") + " (node)",
    rnum(r), None if r is None else r >= 1.0, "node")
d, p = g("enrich.sandbox_eps"), g("enrich.native_eps")
r = ratio(p, d)
row("4 enrichment: native within 1.5x of sandbox (native/sandbox)", num(d, " ev/s"), num(p, " ev/s") + " (native)",
    rnum(r), None if r is None else r <= 1.5, "native")
d = g("enrich.e2e_first_eps")
row("4 enrichment: keyword_extraction from PostgreSQL >= 10,000 ev/s", num(d, " ev/s"), "-",
    rnum(ratio(d, 10000.0)) + " of target", None if d is None else d >= 10000, "e2e")
for n in (100, 1000):
    row(f"5 density: RSS per idle / active instance, {n} at once",
        f"{num(g(f'density.idle_kib_{n}'), ' KiB')} / {num(g(f'density.active_kib_{n}'), ' KiB')}", "-", "-", None, "")
d, p = g("epoch.on_ns"), g("epoch.off_ns")
row("5 density: epoch interruption vs none (ns per loop iteration)", num(d and d * 1000, " ps"),
    num(p and p * 1000, " ps") + " (no epochs)", rnum(ratio(d, p)), None, "")
d = g("build.demo_warm_s")
row("6 build: ./scripts/demo.sh warm (everything built)",
    "not run (--skip-demo)" if d is None else num(d, " s"), "-", "-", None, "")
d = g("build.demo_cold_s")
row("6 build: ./scripts/demo.sh cold, fresh clone <= 12 min",
    "not run (--cold)" if d is None else num(d / 60, " min"), "-",
    rnum(ratio(d, 720.0)) + " of target" if d else "-", None if d is None else d <= 720, "build")

hdr = ("target", "drowl", "peer", "ratio", "holds?", "what limits it (when missed)")
w = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(5)]
lines = []
def fmt(r):
    return " | ".join(str(r[i]).ljust(w[i]) for i in range(5)) + " | " + r[5]
lines.append(fmt(hdr))
lines.append("-|-".join("-" * x for x in w) + "-|-" + "-" * 28)
lines += [fmt(r) for r in rows]
table = "\n".join(lines)
print()
print(f"issue #14 figures, median of {runs} run(s):")
print(table)

with open(os.path.join(out, "report.md"), "w") as f:
    f.write(open(os.path.join(out, "machine.txt")).read().replace("\n", "  \n"))
    f.write(f"\nMedian of {runs} run(s):\n\n")
    f.write("| " + " | ".join(hdr) + " |\n|" + "---|" * 6 + "\n")
    for r in rows:
        f.write("| " + " | ".join(str(x).replace("|", "\\|") for x in r) + " |\n")
    f.write("\nEvery summary value (all runs, then the median):\n\n")
    for k in sorted(vals):
        f.write(f"- `{k}`: {', '.join(num(v) for v in vals[k])} -> median {num(med[k])}\n")
print(f"\nlogs and report.md: {out}")
PY
