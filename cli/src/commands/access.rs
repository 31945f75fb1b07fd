//! `token` and `open`: the credential this CLI presents, printed for a
//! remote client's setup, and the live view opened with it in the
//! address's fragment, which a browser never sends to the hub (so it
//! reaches no server log). The browser is handed a private file that
//! forwards to that address, never the token on its command line, where
//! other users of the machine could read it.

use std::process::{ExitCode, Stdio};

use anyhow::{Context, Result, bail};
use clap::Args;
use shared::config::{self, Discovery};

use crate::args::Global;
use crate::hub::Hub;
use crate::output::line;

/// The file in the private state directory that hands the address to the
/// browser.
const LAUNCHER: &str = "live-view.html";

#[derive(Debug, Args)]
pub(crate) struct OpenArgs {
    /// Print the address (it holds the token) instead of opening a browser
    #[arg(long)]
    print: bool,
}

/// The credential for the hub this run talks to, or why there is none.
fn credential(hub: &Hub, global: &Global) -> Result<config::Credential> {
    match config::discover_credential(global.token.as_deref(), hub.client().endpoint()) {
        Discovery::Found(credential) => Ok(credential),
        Discovery::Missing(why) => bail!(
            "no credential for the hub at {}: {why}",
            hub.client().endpoint()
        ),
    }
}

/// `token`: prints the token this CLI sends (on the hub's machine, the one
/// in its token file), for `AGENT_EVENT_BUS_TOKEN` on another machine.
pub(crate) fn token(hub: &Hub, global: &Global) -> Result<ExitCode> {
    line(&credential(hub, global)?.token)?;
    Ok(ExitCode::SUCCESS)
}

/// `open`: the live view in a browser, `$BROWSER` if set, else the
/// system's opener (`xdg-open`, `open` on macOS).
pub(crate) fn open(hub: &Hub, global: &Global, args: &OpenArgs) -> Result<ExitCode> {
    let credential = credential(hub, global)?;
    let base = config::base_of(hub.client().endpoint());
    let address = format!("{base}#token={}", credential.token);
    if args.print {
        line(&address)?;
        return Ok(ExitCode::SUCCESS);
    }
    let dir = shared::state::dir(None)?;
    let launcher = dir.join(LAUNCHER);
    shared::state::write_private(&launcher, &launcher_page(&address))
        .with_context(|| format!("cannot write {}", launcher.display()))?;
    let opener = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| {
            if cfg!(target_os = "macos") {
                "open"
            } else {
                "xdg-open"
            }
            .to_owned()
        });
    let status = std::process::Command::new(&opener)
        .arg(&launcher)
        .stdin(Stdio::null())
        .status()
        .with_context(|| {
            format!("cannot run `{opener}` to open a browser; set BROWSER, or use `open --print` and paste the address into a browser on this machine")
        })?;
    if !status.success() {
        bail!("`{opener}` failed ({status}); set BROWSER, or use `open --print`");
    }
    line(&format!("Opened the live view of {base} in your browser"))?;
    Ok(ExitCode::SUCCESS)
}

/// A page that sends the browser on to `address` without keeping itself
/// in the tab's history.
fn launcher_page(address: &str) -> String {
    // A JSON string is a JavaScript string; `<` escaped keeps `</script>`
    // out of it.
    let target = serde_json::Value::from(address)
        .to_string()
        .replace('<', "\\u003c");
    format!(
        "<!doctype html>\n<meta charset=\"utf-8\">\n<meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>agent-event-bus</title>\n<script>location.replace({target});</script>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_launcher_cannot_be_broken_out_of() {
        let page = launcher_page("http://127.0.0.1:8080/#token=a</script><b>\"x");
        assert!(!page.contains("</script><b>"), "{page}");
        assert!(
            page.contains(
                "location.replace(\"http://127.0.0.1:8080/#token=a\\u003c/script>\\u003cb>\\\"x\")"
            ),
            "{page}"
        );
    }
}
