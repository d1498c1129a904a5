//! Progress of long CLI work on a terminal (indicatif): `run-plugin` over many pages,
//! `plugin install` compiling a component, `install-bundled` over a release's plugins.
//!
//! Every bar is hidden when stderr is not a terminal, so scripts, CI logs and `serve`'s
//! supervisors get only the commands' one-line summaries, never control characters.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How often a visible bar redraws its spinner and elapsed time, so a step that gives no
/// progress of its own (compiling a component) still shows the command is alive.
const TICK: Duration = Duration::from_millis(120);

/// A bar from `template` showing `what`, or a hidden one off a terminal.
fn bar(len: Option<u64>, template: &str, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = len.map_or_else(ProgressBar::new_spinner, ProgressBar::new);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(TICK);
    bar
}

/// A bar of a plugin's reported progress (0 to 100) with the time spent.
pub(crate) fn percent(what: &str) -> ProgressBar {
    bar(
        Some(100),
        "{spinner} {msg} [{elapsed}] {bar:30} {pos:>3}%",
        what,
    )
}

/// A spinner for one step that reports nothing while it runs, with the time spent.
pub(crate) fn spinner(what: &str) -> ProgressBar {
    bar(None, "{spinner} {msg} [{elapsed}]", what)
}

/// A bar over `n` items, the message naming the one in hand.
pub(crate) fn items(n: u64, what: &str) -> ProgressBar {
    bar(
        Some(n),
        "{spinner} {msg} [{elapsed}] {bar:30} {pos}/{len}",
        what,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Off a terminal (as under `cargo test`, whose stderr is captured) every bar is
    /// hidden: nothing is drawn into logs or pipes.
    #[test]
    fn bars_are_hidden_off_a_terminal() {
        if std::io::stderr().is_terminal() {
            return;
        }
        assert!(percent("x").is_hidden());
        assert!(spinner("x").is_hidden());
        assert!(items(3, "x").is_hidden());
    }
}
