//! Desktop notifications on the hub's machine: the `notify` tool, and a
//! notice for direct messages to local sessions that have no proxy (a proxy
//! notifies on its own machine, where the human is).

use std::time::Duration;

use serde_json::{Value, json};

use super::args::{Args, check_len};
use super::{Outcome, Reply};
use crate::state::Bus;
use crate::store::SessionRecord;

const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);
const PREVIEW_CHARS: usize = 50;

/// `notify(title, message, sound=false)` → `{success, title, message}`.
pub async fn tool(_bus: &Bus, arguments: Option<Value>) -> Outcome {
    let a = Args::new(arguments, &["title", "message", "sound"])?;
    let title = a.req_str("title")?;
    check_len("title", &title, 256)?;
    let message = a.req_str("message")?;
    check_len("message", &message, 4096)?;
    let sound = a.bool_or("sound", false)?;
    let success = send(&title, &message, sound).await;
    Ok(Reply::Object(
        json!({"success": success, "title": title, "message": message}),
    ))
}

/// The argv that shows a notification here, or `None` where nothing can.
pub fn command(title: &str, message: &str, sound: bool) -> Option<Vec<String>> {
    let on_path = |bin: &str| {
        std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(bin).is_file()))
    };
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    if cfg!(target_os = "macos") {
        if on_path("terminal-notifier") {
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
            if let Some(icon) = shared::config::non_empty_env(shared::config::ENV_ICON)
                && std::path::Path::new(&icon).is_file()
            {
                argv.extend(["-appIcon".to_owned(), icon]);
            }
            return Some(argv);
        }
        let escape = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut script = format!(
            "display notification \"{}\" with title \"{}\"",
            escape(message),
            escape(title)
        );
        if sound {
            script.push_str(" sound name \"default\"");
        }
        return Some(vec!["osascript".into(), "-e".into(), script]);
    }
    if cfg!(target_os = "linux") {
        let has_display = ["DISPLAY", "DBUS_SESSION_BUS_ADDRESS"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
        if has_display && on_path("notify-send") {
            return Some(owned(&["notify-send", title, message]));
        }
    }
    None
}

/// Shows a notification; false when this machine cannot, or it failed.
pub async fn send(title: &str, message: &str, sound: bool) -> bool {
    let Some(argv) = command(title, message, sound) else {
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
    match tokio::time::timeout(NOTIFY_TIMEOUT, child.wait()).await {
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

/// Title and body of a direct-message notice, as the original words them.
pub fn dm_text(
    target: &SessionRecord,
    sender: Option<&SessionRecord>,
    payload: &str,
) -> (String, String) {
    let project = if !target.repo.is_empty() {
        target.repo.clone()
    } else {
        target
            .cwd
            .rsplit('/')
            .find(|p| !p.is_empty())
            .unwrap_or("unknown")
            .to_owned()
    };
    let preview: String = if payload.chars().count() > PREVIEW_CHARS {
        let cut: String = payload.chars().take(PREVIEW_CHARS).collect();
        format!("{cut}...")
    } else {
        payload.to_owned()
    };
    let from = sender.map_or("anonymous", |s| s.name.as_str());
    (
        format!("📨 {} • {project}", target.name),
        format!("From: {from}\n{preview}"),
    )
}

/// Notifies a DM's recipient when it is local and has no proxy (no lease).
/// Runs in the background; never fails the publish.
pub fn direct_message(
    bus: &Bus,
    target: &SessionRecord,
    sender: Option<&SessionRecord>,
    payload: &str,
) {
    if target.lease_seconds.is_some() || target.machine != bus.hostname {
        return;
    }
    let (title, body) = dm_text(target, sender, payload);
    tokio::spawn(async move {
        send(&title, &body, false).await;
    });
}
