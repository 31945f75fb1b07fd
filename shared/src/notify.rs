//! Desktop notifications, one implementation for the hub and the proxy:
//! which program can show one on this machine and with which argv (the
//! original's: `terminal-notifier` or `osascript` on macOS, `notify-send`
//! with a display on Linux), how a direct message is worded, and running
//! the program with the original's 5 s limit, at most [`IN_FLIGHT_MAX`] at
//! once.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::config;
use crate::text;

/// How long a notifier may run before it counts as failed.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// How much of a direct message's payload its notice shows.
pub const PREVIEW_CHARS: usize = 50;

/// The operating systems that have a notifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    MacOs,
    Linux,
    Other,
}

/// What this machine offers for notifications, read once from the
/// environment so the argv rules are testable on any machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub os: Os,
    /// `terminal-notifier` is on `PATH` (macOS).
    pub terminal_notifier: bool,
    /// `notify-send` is on `PATH` (Linux).
    pub notify_send: bool,
    /// `DISPLAY` or `DBUS_SESSION_BUS_ADDRESS` is set: a desktop to show on.
    pub desktop: bool,
    /// `AGENT_EVENT_BUS_ICON`, when it names an existing file.
    pub icon: Option<String>,
}

impl Host {
    /// This machine, as the environment describes it now.
    pub fn current() -> Self {
        let os = if cfg!(target_os = "macos") {
            Os::MacOs
        } else if cfg!(target_os = "linux") {
            Os::Linux
        } else {
            Os::Other
        };
        Self {
            os,
            terminal_notifier: on_path("terminal-notifier"),
            notify_send: on_path("notify-send"),
            desktop: ["DISPLAY", "DBUS_SESSION_BUS_ADDRESS"]
                .iter()
                .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty())),
            icon: config::non_empty_env(config::ENV_ICON).filter(|i| Path::new(i).is_file()),
        }
    }

    /// Whether a notification can be shown here at all.
    pub fn can_notify(&self) -> bool {
        self.argv("t", "m", false).is_some()
    }

    /// The argv that shows a notification here, or `None` where nothing can:
    /// terminal-notifier, else osascript on macOS; notify-send on Linux with
    /// a desktop; nothing elsewhere.
    pub fn argv(&self, title: &str, message: &str, sound: bool) -> Option<Vec<String>> {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        match self.os {
            Os::MacOs if self.terminal_notifier => {
                let mut argv = owned(&[
                    "terminal-notifier",
                    "-title",
                    title,
                    "-message",
                    message,
                    "-group",
                    "agent-event-bus",
                    "-sender",
                    "com.apple.Terminal",
                ]);
                if sound {
                    argv.extend(owned(&["-sound", "default"]));
                }
                if let Some(icon) = &self.icon {
                    argv.extend(["-appIcon".to_owned(), icon.clone()]);
                }
                Some(argv)
            }
            Os::MacOs => {
                let escape = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
                let mut script = format!(
                    "display notification \"{}\" with title \"{}\"",
                    escape(message),
                    escape(title)
                );
                if sound {
                    script.push_str(" sound name \"default\"");
                }
                Some(vec!["osascript".into(), "-e".into(), script])
            }
            Os::Linux if self.desktop && self.notify_send => {
                Some(owned(&["notify-send", title, message]))
            }
            Os::Linux | Os::Other => None,
        }
    }
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(bin).is_file()))
}

/// Shows a notification on this machine; false when it cannot, when
/// [`IN_FLIGHT_MAX`] notifiers are running already (the notice is dropped,
/// and logged), or when the notifier failed or took longer than [`TIMEOUT`]
/// (logged as an error).
pub async fn send(title: &str, message: &str, sound: bool) -> bool {
    let Some(argv) = Host::current().argv(title, message, sound) else {
        return false;
    };
    let Some(_slot) = Slot::take(&IN_FLIGHT) else {
        return false;
    };
    let child = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let Ok(mut child) = child else {
        tracing::error!(program = %argv[0], "cannot start the notifier");
        return false;
    };
    match tokio::time::timeout(TIMEOUT, child.wait()).await {
        Ok(Ok(status)) if status.success() => true,
        Ok(_) => {
            tracing::error!(program = %argv[0], "the notifier failed");
            false
        }
        Err(_) => {
            tracing::error!(program = %argv[0], "the notifier timed out");
            false
        }
    }
}

/// Notifier processes running at once, per process (hub or proxy); a
/// notice past it is dropped. A flood of direct messages then costs a few
/// processes, never one each.
pub const IN_FLIGHT_MAX: usize = 4;

/// Notifier processes running now, and notices dropped so far.
static IN_FLIGHT: InFlight = InFlight::new(IN_FLIGHT_MAX);

/// A count of running notifiers held under a cap.
struct InFlight {
    max: usize,
    running: AtomicUsize,
    dropped: AtomicU64,
}

impl InFlight {
    const fn new(max: usize) -> Self {
        Self {
            max,
            running: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        }
    }
}

/// One running notifier, counted until dropped.
struct Slot<'a>(&'a InFlight);

impl<'a> Slot<'a> {
    /// A slot when fewer than the cap are running; else the notice is
    /// dropped, which is logged at the first drop and then at every power
    /// of two (a flood logs a few lines, each with the count).
    fn take(limit: &'a InFlight) -> Option<Self> {
        let taken = limit
            .running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit.max).then_some(n + 1)
            })
            .is_ok();
        if taken {
            return Some(Self(limit));
        }
        let dropped = limit.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if dropped.is_power_of_two() {
            tracing::warn!(
                running = limit.max,
                dropped,
                "desktop notice dropped: {} notifiers are still running",
                limit.max
            );
        }
        None
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The project a session works in, as a notice names it: its repo, else the
/// cwd's last component, else `unknown`.
pub fn project(repo: &str, cwd: &str) -> String {
    if !repo.is_empty() {
        return repo.to_owned();
    }
    cwd.rsplit('/')
        .find(|p| !p.is_empty())
        .unwrap_or("unknown")
        .to_owned()
}

/// Title and body of a direct-message notice, as the original words them:
/// `📨 {target} • {project}` and `From: {sender or anonymous}\n{preview}`.
/// Names stay on their line and the preview's control characters are
/// escaped ([`crate::text`]): they are other clients' text.
pub fn dm_text(
    target_name: &str,
    project: &str,
    sender_name: Option<&str>,
    payload: &str,
) -> (String, String) {
    let preview: String = if payload.chars().count() > PREVIEW_CHARS {
        let cut: String = payload.chars().take(PREVIEW_CHARS).collect();
        format!("{cut}...")
    } else {
        payload.to_owned()
    };
    let from = sender_name.unwrap_or("anonymous");
    (
        format!("📨 {} • {}", text::line(target_name), text::line(project)),
        format!("From: {}\n{}", text::line(from), text::lines(&preview)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(os: Os) -> Host {
        Host {
            os,
            terminal_notifier: false,
            notify_send: false,
            desktop: false,
            icon: None,
        }
    }

    #[test]
    fn macos_prefers_terminal_notifier_with_sound_and_icon() {
        let mac = Host {
            terminal_notifier: true,
            icon: Some("/i.png".into()),
            ..host(Os::MacOs)
        };
        assert_eq!(
            mac.argv("T", "M", true).unwrap(),
            [
                "terminal-notifier",
                "-title",
                "T",
                "-message",
                "M",
                "-group",
                "agent-event-bus",
                "-sender",
                "com.apple.Terminal",
                "-sound",
                "default",
                "-appIcon",
                "/i.png"
            ]
        );
        let quiet = mac.argv("T", "M", false).unwrap();
        assert_eq!(quiet.len(), 11, "no sound: {quiet:?}");
        assert_eq!(quiet[9..], ["-appIcon", "/i.png"], "the icon is kept");
    }

    #[test]
    fn macos_falls_back_to_escaped_osascript() {
        let argv = host(Os::MacOs).argv("a \"t\"", "b\\c", true).unwrap();
        assert_eq!(
            argv,
            [
                "osascript",
                "-e",
                "display notification \"b\\\\c\" with title \"a \\\"t\\\"\" sound name \"default\""
            ]
        );
    }

    #[test]
    fn linux_needs_a_desktop_and_notify_send() {
        let both = Host {
            notify_send: true,
            desktop: true,
            ..host(Os::Linux)
        };
        assert_eq!(
            both.argv("T", "M", true).unwrap(),
            ["notify-send", "T", "M"]
        );
        assert!(both.can_notify());
        let headless = Host {
            notify_send: true,
            ..host(Os::Linux)
        };
        assert_eq!(headless.argv("T", "M", false), None);
        let missing = Host {
            desktop: true,
            ..host(Os::Linux)
        };
        assert_eq!(missing.argv("T", "M", false), None);
        assert!(!host(Os::Other).can_notify());
    }

    #[test]
    fn dm_notices_read_as_the_original() {
        let (title, body) = dm_text("bob", &project("", "/src/app/"), Some("alice"), "hi");
        assert_eq!(title, "📨 bob • app");
        assert_eq!(body, "From: alice\nhi");
        let long = "x".repeat(60);
        let (_, body) = dm_text("bob", "r", None, &long);
        assert_eq!(body, format!("From: anonymous\n{}...", "x".repeat(50)));
        assert_eq!(project("", "/"), "unknown");
        assert_eq!(project("repo", "/x"), "repo");
        let (title, body) = dm_text("b\nob", "r", Some("al\u{1b}ice"), "l1\nl2\r");
        assert_eq!(title, "📨 b\\nob • r");
        assert_eq!(body, "From: al\\u001bice\nl1\nl2\\r");
    }

    #[test]
    fn notifiers_past_the_cap_are_dropped_until_one_ends() {
        let limit = InFlight::new(2);
        let a = Slot::take(&limit).expect("first");
        let b = Slot::take(&limit).expect("second");
        assert!(Slot::take(&limit).is_none(), "the cap holds");
        assert!(Slot::take(&limit).is_none());
        assert_eq!(limit.dropped.load(Ordering::Relaxed), 2);
        drop(a);
        let c = Slot::take(&limit).expect("a slot freed");
        drop((b, c));
        assert_eq!(limit.running.load(Ordering::Relaxed), 0);
    }
}
