//! `doctor`: checks the setup end to end and prints a fix for each failure —
//! the hub answers, auth works, versions match, a publish → read round trip,
//! and (when `claude` is on PATH) the proxy is registered with Claude Code.
//! Exit 1 when any check fails.

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;
use shared::level::SignalLevel;
use shared::tools::events::{GetEvents, GetParams, Order, PublishEvent, PublishParams};
use shared::tools::sessions::NoParams;
use shared::{ClientError, config};

use crate::args::Global;
use crate::hub::Hub;
use crate::output::line;

/// The name the proxy is registered under with Claude Code.
const MCP_NAME: &str = "agent-event-bus";
const PROXY_BIN: &str = "agent-event-bus-proxy";

/// How to start the hub, for the unreachable case.
const START_HUB: &str = "start it with `agent-event-bus` (foreground) or `make install-server` (a service), \
                         or point AGENT_EVENT_BUS_URL / --url at where it runs";

/// Counts failures while printing one line per check.
#[derive(Default)]
struct Report {
    failures: usize,
}

impl Report {
    #[expect(
        clippy::unused_self,
        reason = "every outcome goes through the report; only failures are counted"
    )]
    fn pass(&mut self, what: &str) -> Result<()> {
        Ok(line(&format!("✓ {what}"))?)
    }

    fn fail(&mut self, what: &str, fix: &str) -> Result<()> {
        self.failures += 1;
        Ok(line(&format!("✗ {what}\n  fix: {fix}"))?)
    }

    #[expect(
        clippy::unused_self,
        reason = "every outcome goes through the report; only failures are counted"
    )]
    fn skip(&mut self, what: &str) -> Result<()> {
        Ok(line(&format!("- {what}"))?)
    }
}

pub(crate) async fn doctor(hub: &Hub, global: &Global) -> Result<ExitCode> {
    let mut report = Report::default();
    let endpoint = hub.client().endpoint().to_string();
    line(&format!(
        "agent-event-bus-cli {} checking {endpoint}",
        shared::VERSION
    ))?;

    match check_hub(hub, &mut report, &endpoint).await? {
        Reach::Down => report.skip("auth, version and round trip: skipped (no hub)")?,
        Reach::Up(version) => {
            if check_auth(hub, &mut report, global).await? {
                check_version(&mut report, version.as_deref())?;
                check_round_trip(hub, &mut report).await?;
            } else {
                report.skip("version and round trip: skipped (auth failed)")?;
            }
        }
    }
    check_claude(hub, &mut report, global).await?;
    check_original(&mut report)?;

    if report.failures == 0 {
        line("All checks passed.")?;
        Ok(ExitCode::SUCCESS)
    } else {
        let s = if report.failures == 1 { "" } else { "s" };
        line(&format!("{} check{s} failed.", report.failures))?;
        Ok(ExitCode::from(1))
    }
}

/// Points at `agent-event-bus import` while the Python original's database
/// sits in its default place on this machine (informational: not a failure).
fn check_original(report: &mut Report) -> Result<()> {
    if let Some(original) = config::original_db_path().filter(|p| p.exists()) {
        report.skip(&format!(
            "{}; once imported, move it away to silence this line",
            config::import_hint(&original)
        ))?;
    }
    Ok(())
}

enum Reach {
    Down,
    /// Up, with the version `/health` reported (None when it did not, or
    /// when `/health` itself needs the token we lack).
    Up(Option<String>),
}

async fn check_hub(hub: &Hub, report: &mut Report, endpoint: &str) -> Result<Reach> {
    match hub.client().health().await {
        Ok(health) => {
            let version = health
                .get("version")
                .and_then(Value::as_str)
                .map(str::to_owned);
            report.pass(&format!("hub reachable at {endpoint}"))?;
            if let Some(storage) = health.get("storage").and_then(Value::as_str)
                && health.get("status").and_then(Value::as_str) != Some("ok")
            {
                report.fail(
                    &format!("the hub's storage is failing: {storage}"),
                    "free disk space where the hub keeps its database (see its log); writes resume by themselves, no restart needed",
                )?;
            }
            Ok(Reach::Up(version))
        }
        Err(ClientError::Unauthorized { .. }) => {
            report.pass(&format!("hub reachable at {endpoint}"))?;
            Ok(Reach::Up(None))
        }
        Err(e @ ClientError::Withheld { .. }) => {
            report.fail(
                &e.to_string(),
                "see which program holds the port (`ss -ltnp` on Linux, `lsof -iTCP -sTCP:LISTEN` on macOS), stop it, and start the hub",
            )?;
            Ok(Reach::Down)
        }
        Err(e) if e.is_unreachable() => {
            report.fail(&e.to_string(), START_HUB)?;
            Ok(Reach::Down)
        }
        Err(e) => {
            report.fail(
                &format!("something answered at {endpoint}, but not as the hub does: {e}"),
                "point AGENT_EVENT_BUS_URL / --url at agent-event-bus (its base URL or …/mcp)",
            )?;
            Ok(Reach::Down)
        }
    }
}

/// A harmless tool call: proves the hub accepts our credentials.
async fn check_auth(hub: &Hub, report: &mut Report, global: &Global) -> Result<bool> {
    match hub
        .answer::<shared::tools::sessions::ListChannels>(&NoParams {})
        .await
    {
        Ok(_) => {
            let how = match hub.client().credential() {
                Some(credential) => format!("token from {}", credential.origin()),
                None => "no token needed".to_owned(),
            };
            report.pass(&format!("auth ok ({how})"))?;
            Ok(true)
        }
        Err(e) => {
            let fix = if matches!(
                e.downcast_ref::<ClientError>(),
                Some(ClientError::Unauthorized { .. })
            ) {
                credential_fix(hub, global)
            } else {
                "see the hub's log (`make logs` on its machine)".to_owned()
            };
            report.fail(&format!("tool call refused: {e:#}"), &fix)?;
            Ok(false)
        }
    }
}

/// What to do when the hub refused this CLI's credential (or its lack).
fn credential_fix(hub: &Hub, global: &Global) -> String {
    let endpoint = hub.client().endpoint();
    let token = config::ENV_TOKEN;
    match config::discover_credential(global.token.as_deref(), endpoint) {
        config::Discovery::Found(config::Credential {
            source: config::TokenSource::Given,
            ..
        }) => format!(
            "{token} (or --token) is not this hub's token: set it to the hub's \
             (`agent-event-bus-cli token` on the hub's machine prints it){}",
            if config::is_loopback_url(endpoint) {
                ", or unset it to use the token file of the hub on this machine".to_owned()
            } else {
                String::new()
            }
        ),
        config::Discovery::Found(config::Credential {
            source: config::TokenSource::File(file),
            ..
        }) => format!(
            "the token in {} is not the one the hub at this address uses (a hub with another \
             database?): set {} to that hub's database (or {} to its token file), or set {token}",
            file.display(),
            config::ENV_DB,
            config::ENV_TOKEN_FILE
        ),
        config::Discovery::Missing(why) => why,
    }
}

fn check_version(report: &mut Report, hub_version: Option<&str>) -> Result<()> {
    let fix = "install one version everywhere: `make install` on each machine, then `make restart` where the hub runs";
    match hub_version {
        Some(v) if v == shared::VERSION => report.pass(&format!("versions match ({v})")),
        Some(v) => report.fail(
            &format!("version mismatch: hub {v}, cli {}", shared::VERSION),
            fix,
        ),
        None => report.fail(
            "the hub did not report its version on /health (an older hub?)",
            fix,
        ),
    }
}

/// Publishes a lifecycle event (hidden by `--min-level info`) with a unique
/// correlation id, and reads it back by that id.
async fn check_round_trip(hub: &Hub, report: &mut Report) -> Result<()> {
    let host = config::hostname();
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let correlation = format!("doctor-{}-{nonce}", std::process::id());
    let fix = "see the hub's log (`make logs` on its machine); its database may be unwritable";
    let publish = PublishParams {
        signal_level: Some(SignalLevel::Lifecycle.as_str().to_owned()),
        correlation_id: Some(correlation.clone()),
        ..PublishParams::new(
            "doctor_check",
            &format!("agent-event-bus-cli doctor on {host}"),
            &format!("machine:{host}"),
        )
    };
    let id = match hub.answer::<PublishEvent>(&publish).await {
        Ok(Ok(reply)) => reply.event_id,
        Ok(Err(refusal)) => return report.fail(&format!("publish failed: {refusal}"), fix),
        Err(e) => return report.fail(&format!("publish failed: {e:#}"), fix),
    };
    let read_back = GetParams {
        cursor: Some(id - 1),
        order: Order::Asc,
        limit: 1,
        correlation_id: Some(correlation),
        ..GetParams::default()
    };
    let read = hub.answer::<GetEvents>(&read_back).await;
    let found = match &read {
        Ok(Ok(page)) => page.events.first().map(|e| e.event.id),
        _ => None,
    };
    match (read, found) {
        (_, Some(got)) if got == id => {
            report.pass(&format!("publish → read round trip (event #{id})"))
        }
        (Err(e), _) => report.fail(&format!("read after publish failed: {e:#}"), fix),
        (Ok(Err(refusal)), _) => report.fail(&format!("read after publish failed: {refusal}"), fix),
        _ => report.fail(
            &format!("event #{id} was published but did not read back"),
            fix,
        ),
    }
}

async fn check_claude(hub: &Hub, report: &mut Report, global: &Global) -> Result<()> {
    let Some(claude) = on_path("claude") else {
        return report.skip("Claude Code: `claude` is not on PATH; proxy registration not checked");
    };
    let add = add_command(hub, global);
    let run = tokio::process::Command::new(claude)
        .args(["mcp", "get", MCP_NAME])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(Duration::from_secs(30), run).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            return report.fail(
                &format!("cannot run `claude`: {e}"),
                "check the `claude` install",
            );
        }
        Err(_) => {
            return report.fail(
                &format!("`claude mcp get {MCP_NAME}` did not finish within 30 s"),
                "run it by hand to see what it waits for",
            );
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return report.fail("the proxy is not registered with Claude Code", &add);
    }
    if !text.contains(PROXY_BIN) {
        return report.fail(
            &format!("Claude Code's `{MCP_NAME}` server is not the proxy (an HTTP entry from the original?)"),
            &format!("claude mcp remove --scope user {MCP_NAME} && {add}"),
        );
    }
    if text.contains("Failed to connect") {
        return report.fail(
            "the proxy is registered with Claude Code but failed to connect",
            &format!("run `{PROXY_BIN}` by hand and read its stderr"),
        );
    }
    report.pass(&format!(
        "proxy registered with Claude Code (`claude mcp get {MCP_NAME}`)"
    ))
}

/// The `claude mcp add` line for this setup; a remote hub's URL and token go
/// into the proxy's environment (the token by reference, never its value).
fn add_command(hub: &Hub, global: &Global) -> String {
    let mut add = "claude mcp add --scope user".to_owned();
    let endpoint = hub.client().endpoint();
    if config::mcp_endpoint(config::DEFAULT_URL).ok().as_ref() != Some(endpoint) {
        add.push_str(&format!(" -e {}={endpoint}", config::ENV_URL));
    }
    if token(global).is_some() {
        add.push_str(&format!(" -e {0}=\"${0}\"", config::ENV_TOKEN));
    }
    add.push_str(&format!(" {MCP_NAME} -- {PROXY_BIN}"));
    add
}

fn token(global: &Global) -> Option<&str> {
    global.token.as_deref().filter(|t| !t.is_empty())
}

/// The first executable file called `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|file| {
            file.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
