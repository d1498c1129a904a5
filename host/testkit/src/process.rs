//! Child processes that tests start: killed when their handle drops, so a failing test
//! leaves nothing running.

use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// A child process killed (SIGKILL) and reaped when dropped.
///
/// The fields are public so a test can build one around any `Command` it spawned
/// (`Proc { child: cmd.spawn()?, name: … }`) and poll the child directly.
#[derive(Debug)]
pub struct Proc {
    /// The process.
    pub child: Child,
    /// What it is, for messages.
    pub name: String,
}

impl Proc {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends it a signal by name (`TERM`, `KILL`, `STOP`, …) with kill(1); panics if
    /// kill fails.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(
            status.success(),
            "kill -{sig} {} ({})",
            self.pid(),
            self.name
        );
    }

    /// Waits up to `limit` for it to exit; its exit status if it did.
    pub fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills (SIGKILL) and reaps it unless it has exited; what dropping it does, for
    /// owners that must know it is gone before they go on (to read its last output).
    pub fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper() -> Proc {
        Proc {
            child: Command::new("sleep").arg("60").spawn().expect("sleep"),
            name: "sleep 60".to_owned(),
        }
    }

    #[test]
    fn a_signalled_process_is_seen_to_exit() {
        let mut p = sleeper();
        assert!(p.wait_for(Duration::from_millis(50)).is_none());
        p.signal("TERM");
        let status = p.wait_for(Duration::from_secs(10)).expect("exited");
        assert!(!status.success());
    }

    #[test]
    fn a_dropped_process_is_killed_and_reaped() {
        let p = sleeper();
        let pid = p.pid();
        drop(p);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}
