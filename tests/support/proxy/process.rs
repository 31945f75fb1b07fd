//! The proxy as a process: its stdin closed, signals sent to it or its
//! parent, its exit, its resident memory, and what it logs on stderr.

use std::time::{Duration, Instant};

use super::{Input, Proxy, REPLY_DEADLINE, lock, wait_for};

impl Proxy {
    /// The proxy's resident memory in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        crate::proc_status_kib(self.pid, "VmRSS").expect("VmRSS in the proxy's /proc status")
    }

    /// Closes the proxy's stdin (the client went away).
    pub fn close_stdin(&mut self) {
        if let Some(Input::Socket(socket)) = self.stdin.take() {
            let _ = socket.shutdown(std::net::Shutdown::Write);
        }
    }

    /// Sends a signal to the proxy process.
    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = i32::try_from(self.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .expect("a valid PID");
        let _ = rustix::process::kill_process(pid, signal);
    }

    /// Kills the parent shell with SIGKILL (`under_parent` only).
    pub fn kill_parent(&mut self) {
        assert!(self.under_parent, "this proxy has no parent shell");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits until the proxy has exited: its stdout closed, and (for a
    /// direct child) the process reaped. Returns the exit code when known.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<i32> {
        let closed = wait_for(&self.stdout, deadline, |state| state.closed.then_some(()));
        assert!(
            closed.is_some(),
            "the proxy did not exit within {deadline:?}; stderr:\n{}",
            self.stderr()
        );
        if self.under_parent {
            return None;
        }
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            assert!(
                start.elapsed() < deadline,
                "the proxy closed stdout but did not exit; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the proxy wrote to stderr so far.
    pub fn stderr(&self) -> String {
        lock(&self.stderr).clone()
    }

    /// How many lines the proxy has logged that contain `needle`.
    pub fn logged(&self, needle: &str) -> usize {
        lock(&self.stderr)
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits until the proxy has logged `n` lines containing `needle` (it
    /// runs with `RUST_LOG=proxy=debug`); panics after `REPLY_DEADLINE`.
    pub fn wait_logged(&self, needle: &str, n: usize) {
        let found = wait_for(&self.stderr, REPLY_DEADLINE, |log| {
            (log.lines().filter(|l| l.contains(needle)).count() >= n).then_some(())
        });
        assert!(
            found.is_some(),
            "the proxy did not log {n} lines with {needle:?} within {REPLY_DEADLINE:?}; stderr:\n{}",
            self.stderr()
        );
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if self.under_parent {
            self.signal(rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- proxy {} stderr ----\n{}", self.pid, self.stderr());
        }
    }
}
