//! Processes a test starts in a process group of their own, ended as a
//! group when the test ends however it ends, so nothing they start in turn
//! (a browser's renderers, a shell's children) outlives the test.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// A child leading its own process group; dropping it kills the group.
pub struct Group(Child);

impl Group {
    /// Spawns `cmd` as the leader of a new process group.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Self> {
        cmd.process_group(0).spawn().map(Self)
    }

    /// The leader's process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// The leader.
    pub fn child(&mut self) -> &mut Child {
        &mut self.0
    }

    /// Kills every process of the group and reaps the leader.
    pub fn kill(&mut self) {
        if let Ok(pid) = i32::try_from(self.0.id())
            && let Some(pid) = rustix::process::Pid::from_raw(pid)
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}
