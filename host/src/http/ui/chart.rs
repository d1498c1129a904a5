//! The per-minute chart, drawn here as SVG: no script, no charting library.
//!
//! Two panels over the same hour: attempts finished per minute (completed below, failed
//! stacked above) and events stored per minute. Each bar has a `<title>` with its
//! minute and counts, which browsers show on hover.

use maud::{Markup, html};

use crate::queue::activity::Minute;

/// Pixels per minute.
const STEP: usize = 10;
const LEFT: usize = 44;
const TOP: usize = 8;
const JOBS_H: usize = 110;
const GAP: usize = 26;
const EVENTS_H: usize = 70;
const BOTTOM: usize = 20;

/// The smallest of 1, 2, 5 times a power of ten at or above `n` (at least 1): the top
/// of an axis.
fn nice_max(n: u64) -> u64 {
    let mut unit = 1u64;
    loop {
        for m in [1, 2, 5] {
            if n <= m * unit {
                return m * unit;
            }
        }
        unit = unit.saturating_mul(10);
    }
}

fn height(v: u64, max: u64, h: usize) -> usize {
    // Rounded up so that one job in a busy hour is still a visible sliver.
    let px = (v as f64 / max as f64 * h as f64).ceil() as usize;
    px.min(h)
}

fn label(m: &Minute) -> String {
    chrono::DateTime::from_timestamp(m.minute * 60, 0)
        .map(|t| t.format("%H:%M UTC").to_string())
        .unwrap_or_default()
}

/// The chart of `series` (oldest minute first).
pub(super) fn minutes(series: &[Minute]) -> Markup {
    let n = series.len().max(1);
    let width = LEFT + n * STEP + 8;
    let total_h = TOP + JOBS_H + GAP + EVENTS_H + BOTTOM;
    let jobs_max = nice_max(
        series
            .iter()
            .map(|m| m.completed + m.failed)
            .max()
            .unwrap_or(0),
    );
    let events_max = nice_max(series.iter().map(|m| m.events).max().unwrap_or(0));
    let jobs_base = TOP + JOBS_H;
    let events_top = jobs_base + GAP;
    let events_base = events_top + EVENTS_H;
    let completed: u64 = series.iter().map(|m| m.completed).sum();
    let failed: u64 = series.iter().map(|m| m.failed).sum();
    let events: u64 = series.iter().map(|m| m.events).sum();
    let summary = format!(
        "Last {n} minutes: {completed} attempts completed, {failed} failed, {events} events stored"
    );
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(summary)
            viewBox=(format!("0 0 {width} {total_h}")) width=(width) height=(total_h) {
            title { (summary) }
            // Axes and their top values.
            line.axis x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(jobs_base) {}
            line.axis x1=(LEFT) y1=(jobs_base) x2=(width - 8) y2=(jobs_base) {}
            text.tick x=(LEFT - 4) y=(TOP + 8) text-anchor="end" { (jobs_max) }
            text.tick x=(LEFT - 4) y=(jobs_base) text-anchor="end" { "0" }
            text.panel x=(LEFT + 4) y=(TOP + 10) { "attempts / min" }
            line.axis x1=(LEFT) y1=(events_top) x2=(LEFT) y2=(events_base) {}
            line.axis x1=(LEFT) y1=(events_base) x2=(width - 8) y2=(events_base) {}
            text.tick x=(LEFT - 4) y=(events_top + 8) text-anchor="end" { (events_max) }
            text.tick x=(LEFT - 4) y=(events_base) text-anchor="end" { "0" }
            text.panel x=(LEFT + 4) y=(events_top + 10) { "events stored / min" }
            @for (i, m) in series.iter().enumerate() {
                @let x = LEFT + i * STEP + 1;
                @let ok_h = height(m.completed, jobs_max, JOBS_H);
                @let fail_h = height(m.failed, jobs_max, JOBS_H).min(JOBS_H - ok_h);
                @let ev_h = height(m.events, events_max, EVENTS_H);
                @let tip = format!("{}: {} completed, {} failed, {} events", label(m), m.completed, m.failed, m.events);
                g {
                    title { (tip) }
                    @if ok_h > 0 {
                        rect.completed x=(x) y=(jobs_base - ok_h) width=(STEP - 2) height=(ok_h) {}
                    }
                    @if fail_h > 0 {
                        rect.failed x=(x) y=(jobs_base - ok_h - fail_h) width=(STEP - 2) height=(fail_h) {}
                    }
                    @if ev_h > 0 {
                        rect.events x=(x) y=(events_base - ev_h) width=(STEP - 2) height=(ev_h) {}
                    }
                }
            }
            @let first = series.first().map(label).unwrap_or_default();
            text.tick x=(LEFT) y=(events_base + 14) { (first) }
            text.tick x=(width - 8) y=(events_base + 14) text-anchor="end" { "now" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(
            [0, 1, 2, 3, 7, 10, 11, 40, 99, 1001].map(nice_max),
            [1, 1, 2, 5, 10, 10, 20, 50, 100, 2000]
        );
    }

    #[test]
    fn bars_are_drawn_to_scale_with_their_counts() {
        let mut series: Vec<Minute> = (0..60)
            .map(|i| Minute {
                minute: 29_000_000 + i,
                ..Minute::default()
            })
            .collect();
        series[59] = Minute {
            minute: 29_000_059,
            completed: 3,
            failed: 2,
            events: 40,
        };
        series[10].completed = 1;
        let svg = minutes(&series).into_string();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert_eq!(svg.matches("<rect class=\"completed\"").count(), 2);
        assert_eq!(svg.matches("<rect class=\"failed\"").count(), 1);
        assert_eq!(svg.matches("<rect class=\"events\"").count(), 1);
        // Axis top 5 for 5 attempts: the last bar fills the panel, 3/5 of it completed.
        assert!(
            svg.contains(&format!("height=\"{}\"", JOBS_H * 3 / 5)),
            "{svg}"
        );
        assert!(svg.contains("3 completed, 2 failed, 40 events"), "{svg}");
        assert!(svg.contains("4 attempts completed, 2 failed, 40 events stored"));
    }
}
