//! The local process tree, read without `unsafe`: a process's parent, its
//! chain of ancestors, and (on Linux) its environment. The CLI finds its
//! agent's session through its ancestors; the proxy proves a terminal pane
//! is its client's by finding the pane's process among its client's.

/// A process tree is shallow; the bound only guards against a loop.
const DEPTH_MAX: usize = 128;

/// Our own ancestors' PIDs, parent first, stopping before init (PID 1).
pub fn ancestors() -> Vec<u32> {
    chain_from(std::os::unix::process::parent_id())
}

/// `pid` and its ancestors, nearest first, stopping before init (PID 1).
pub fn chain_from(pid: u32) -> Vec<u32> {
    let mut chain = Vec::new();
    let mut pid = pid;
    while pid > 1 && chain.len() < DEPTH_MAX && !chain.contains(&pid) {
        chain.push(pid);
        match parent_of(pid) {
            Some(parent) => pid = parent,
            None => break,
        }
    }
    chain
}

/// A process's parent: `/proc/<pid>/stat` on Linux, `ps` elsewhere.
pub fn parent_of(pid: u32) -> Option<u32> {
    if cfg!(target_os = "linux") {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        parse_stat_ppid(&stat)
    } else {
        let out = std::process::Command::new("ps")
            .args(["-o", "ppid=", "-p", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }
}

/// The controlling terminal of a process, as a device number (`tty_nr`
/// of `/proc/<pid>/stat`, Linux); `None` without one or elsewhere.
pub fn tty_of(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_tty(&stat)
}

/// The device number of a terminal file (`/dev/pts/3`), in the encoding
/// `tty_nr` uses, so the two compare.
pub fn tty_device(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let rdev = std::fs::metadata(path).ok()?.rdev();
    // glibc's makedev and the kernel's new_encode_dev agree below 2^32.
    let (major, minor) = (
        ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff),
        (rdev & 0xff) | ((rdev >> 12) & !0xff),
    );
    Some((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12))
}

/// One variable of a process's environment as it was when the process
/// started (`/proc/<pid>/environ`, readable for our own processes on
/// Linux); `None` elsewhere or when it is not set.
pub fn env_of(pid: u32, name: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ_lookup(&environ, name)
}

/// `name`'s value in a NUL-separated `NAME=value` list.
fn environ_lookup(environ: &[u8], name: &str) -> Option<String> {
    environ.split(|b| *b == 0).find_map(|entry| {
        let entry = String::from_utf8_lossy(entry);
        let (key, value) = entry.split_once('=')?;
        (key == name).then(|| value.to_owned())
    })
}

/// The parent PID in a `/proc/<pid>/stat` line. The command name (field 2)
/// is in parentheses and may itself contain spaces and `)`, so fields are
/// counted from the last `)`: state, then the parent PID.
fn parse_stat_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The controlling terminal in a `/proc/<pid>/stat` line (0: none).
fn parse_stat_tty(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let tty: u64 = rest.split_whitespace().nth(4)?.parse().ok()?;
    (tty != 0).then_some(tty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parent_survives_odd_names() {
        assert_eq!(parse_stat_ppid("123 (bash) S 45 123 123 0"), Some(45));
        assert_eq!(parse_stat_ppid("9 (a) b (c)) R 7 9 9"), Some(7));
        assert_eq!(parse_stat_ppid("garbage"), None);
    }

    #[test]
    fn stat_terminal_is_field_seven() {
        assert_eq!(parse_stat_tty("9 (a b) S 1 9 9 34818 9"), Some(34818));
        assert_eq!(parse_stat_tty("9 (d) S 1 9 9 0 -1"), None);
    }

    #[test]
    fn our_parent_comes_first() {
        let chain = ancestors();
        assert_eq!(
            chain.first().copied(),
            Some(std::os::unix::process::parent_id()).filter(|p| *p > 1)
        );
        let own = chain_from(std::process::id());
        assert_eq!(own.first().copied(), Some(std::process::id()));
        assert_eq!(&own[1..], &chain[..], "the same chain above us");
    }

    #[test]
    fn environment_entries_are_found_by_exact_name() {
        let environ = b"TMUX_PANE=%3\0TMUX=/tmp/s,1,0\0X=a=b\0";
        assert_eq!(
            environ_lookup(environ, "TMUX").as_deref(),
            Some("/tmp/s,1,0")
        );
        assert_eq!(environ_lookup(environ, "X").as_deref(), Some("a=b"));
        assert_eq!(environ_lookup(environ, "TMUX_P"), None);
    }
}
