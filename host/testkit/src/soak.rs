//! What the soak tests share, in process (`soak`), through the daemon (`daemon_soak`) and
//! through the CLI (`all`): the fast faults of the hostile test plugin with the error
//! category each must end in, and the check that resident memory stays flat.

/// (mode, `count` input, extra boolean input or "", expected error code). The counts
/// assume the soak caps: 32 MiB memory, 4 MiB per host call, 1 MiB per page, 1,000
/// handles.
pub const FAULTS: &[(&str, u32, &str, &str)] = &[
    ("panic", 1, "", "trap"),
    ("grow", 1, "", "memory-limit"),
    ("recurse", 1, "", "trap"),
    ("bad-source", 1, "", "invalid-output"),
    ("bad-payload", 1, "", "invalid-output"),
    ("leak-secret", 1, "", "plugin-permanent"),
    ("log-huge", 8, "", "output-limit"),
    ("huge-output", 2, "", "invalid-output"),
    ("huge-output", 6, "", "output-limit"),
    ("handles", 5_000, "", "resource-limit"),
    ("stderr-flood", 500, "then_panic", "trap"),
    ("kv-huge", 2, "", "plugin-permanent"),
    ("abort", 1, "", "trap"),
    ("exit", 1, "", "trap"),
];

/// The secret the soak gives the hostile plugin's `token` field (`leak-secret` tries to
/// get it out).
pub const SECRET: &str = "ghp_SOAKsecret42";

/// The resident set of process `pid` (`"self"` for this one) and its high-water mark, in
/// KiB.
pub fn rss_kib(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// How much resident memory may grow between warm-up and the end of a soak.
pub const RSS_GROWTH_LIMIT_KIB: u64 = 64 * 1024;

/// The median resident set over the samples `(jobs done, rss)` taken while `range` jobs
/// were done.
fn median_rss(samples: &[(usize, u64)], range: std::ops::RangeInclusive<usize>) -> u64 {
    let mut v: Vec<u64> = samples
        .iter()
        .filter(|s| range.contains(&s.0))
        .map(|s| s.1)
        .collect();
    assert!(
        !v.is_empty(),
        "no memory sample while {range:?} jobs were done"
    );
    v.sort_unstable();
    v[v.len() / 2]
}

/// Prints and checks a soak's memory: samples `(jobs done, rss KiB)` are taken while other
/// jobs are in flight (a memory bomb among them holds up to 32 MiB), so medians are
/// compared: over the 250 jobs after the first 500 (warm-up), and over the last 500 of
/// `total`. Panics when the growth reaches [`RSS_GROWTH_LIMIT_KIB`].
pub fn assert_flat_rss(who: &str, samples: &[(usize, u64)], total: usize) {
    let warm = median_rss(samples, 500..=750);
    let last = median_rss(samples, total - 500..=total);
    let growth = last.saturating_sub(warm);
    println!(
        "{who}: median VmRSS over jobs 500-750 {:.1} MiB, over the last 500 {:.1} MiB, growth {:.1} MiB (limit {} MiB)",
        warm as f64 / 1024.0,
        last as f64 / 1024.0,
        growth as f64 / 1024.0,
        RSS_GROWTH_LIMIT_KIB / 1024
    );
    assert!(
        growth < RSS_GROWTH_LIMIT_KIB,
        "{who}: resident memory grew by {growth} KiB from jobs 500-750 to the last 500"
    );
}
