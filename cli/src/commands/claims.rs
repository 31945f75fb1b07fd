//! Claims: `claim`, `release`, `claims`. A resource is named outright
//! (`file:<repo>/<path>`, `task:<id>`, a prefix ending in `/`) or with
//! `--file PATH`, which names a file as `file:<repo>/<path in the repo>`:
//! the repository is the nearest directory holding `.git` (named as the hub
//! names a session's repo), so every worktree of it meets the same names.
// The argument docs below are clap's help text, where `<repo>` is meant
// literally; rustdoc would read it as HTML.
#![allow(rustdoc::invalid_html_tags)]

use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::json;
use shared::tools::Refusal;
use shared::tools::claims::{Claim, ClaimParams, ClaimReply, ListClaims, ListClaimsParams};
use shared::wire::ClaimInfo;

use crate::hub::Hub;
use crate::output::{self, json_line, line, note};
use crate::session::SessionArg;

/// The resource a command is about.
#[derive(Debug, Args)]
pub(crate) struct ResourceArg {
    /// The resource: file:<repo>/<path>, task:<id>, or a prefix ending in /
    resource: Option<String>,
    /// A file or directory, named as file:<repo>/<path in the repo>
    #[arg(long, conflicts_with = "resource")]
    file: Option<PathBuf>,
}

impl ResourceArg {
    fn name(&self) -> Result<Option<String>> {
        match (&self.resource, &self.file) {
            (Some(r), _) => Ok(Some(r.clone())),
            (None, Some(path)) => {
                let cwd = std::env::current_dir().context("cannot read the current directory")?;
                Ok(Some(file_resource(path, &cwd)))
            }
            (None, None) => Ok(None),
        }
    }

    fn required(&self) -> Result<String> {
        match self.name()? {
            Some(name) => Ok(name),
            None => bail!("name a resource (file:<repo>/<path>, task:<id>) or pass --file PATH"),
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct ClaimArgs {
    #[command(flatten)]
    resource: ResourceArg,
    /// A shared claim: coexists with other shared claims
    #[arg(long)]
    shared: bool,
    /// Why you hold it (shown to whoever is refused)
    #[arg(long)]
    note: Option<String>,
    #[command(flatten)]
    session: SessionArg,
    /// Output the reply as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ReleaseArgs {
    #[command(flatten)]
    resource: ResourceArg,
    #[command(flatten)]
    session: SessionArg,
    /// Output the reply as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ClaimsArgs {
    #[command(flatten)]
    prefix: ResourceArg,
    /// Output the list as JSON
    #[arg(long)]
    json: bool,
}

async fn session_id(hub: &Hub, session: &SessionArg) -> Result<Option<String>> {
    let id = session.resolve_id(hub).await?;
    if id.is_none() {
        note(
            "Error: no session: pass --session-id, set AGENT_EVENT_BUS_SESSION_ID, \
             or run this under an agent whose proxy is registered on this machine",
        );
    }
    Ok(id)
}

/// An exclusive claim of the resource by the session, without a note;
/// `None` when there is no session (said on stderr).
async fn claim_params(
    hub: &Hub,
    resource: &ResourceArg,
    session: &SessionArg,
) -> Result<Option<ClaimParams>> {
    let resource = resource.required()?;
    let Some(session_id) = session_id(hub, session).await? else {
        return Ok(None);
    };
    Ok(Some(ClaimParams {
        resource,
        session_id,
        exclusive: true,
        note: None,
        release: false,
    }))
}

/// `claim`: `Claimed <resource> (exclusive)`; refused, who holds it on
/// stderr with exit 1.
pub(crate) async fn claim(hub: &Hub, args: ClaimArgs) -> Result<ExitCode> {
    let Some(params) = claim_params(hub, &args.resource, &args.session).await? else {
        return Ok(ExitCode::from(1));
    };
    let resource = params.resource.clone();
    let params = ClaimParams {
        exclusive: !args.shared,
        note: args.note.filter(|n| !n.is_empty()),
        ..params
    };
    let reply = match hub.answer::<Claim>(&params).await? {
        Ok(reply) => reply,
        Err(refusal) => {
            if args.json {
                line(&json_line(&refusal.to_value()))?;
            } else {
                note(&refusal_text(&refusal));
            }
            return Ok(ExitCode::from(1));
        }
    };
    if args.json {
        line(&json_line(&json!(reply)))?;
    } else {
        let kind = if args.shared { "shared" } else { "exclusive" };
        let verb = match reply {
            ClaimReply::Held {
                already_held: true, ..
            } => "Already holding",
            _ => "Claimed",
        };
        line(&format!("{verb} {resource} ({kind})"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `release`: `Released <resource>`, or `Not holding <resource>`.
pub(crate) async fn release(hub: &Hub, args: ReleaseArgs) -> Result<ExitCode> {
    let Some(params) = claim_params(hub, &args.resource, &args.session).await? else {
        return Ok(ExitCode::from(1));
    };
    let resource = params.resource.clone();
    let params = ClaimParams {
        release: true,
        ..params
    };
    let reply = match hub.answer::<Claim>(&params).await? {
        Ok(reply) => reply,
        Err(refusal) => return output::error_reply(&refusal.to_value(), args.json),
    };
    if args.json {
        line(&json_line(&json!(reply)))?;
    } else if matches!(reply, ClaimReply::Released { released: true, .. }) {
        line(&format!("Released {resource}"))?;
    } else {
        line(&format!("Not holding {resource}"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `claims`: a block per claim, or `No claims`.
pub(crate) async fn list(hub: &Hub, args: ClaimsArgs) -> Result<ExitCode> {
    let params = ListClaimsParams {
        prefix: args.prefix.name()?,
    };
    let claims = hub.list::<ListClaims, _>(&params).await?;
    if args.json {
        line(&json_line(&json!(claims)))?;
    } else {
        output::print(&claims_text(&claims))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `<name> (<display id>)`, or the session id when the holder is unknown.
fn holder(c: &ClaimInfo) -> String {
    match (c.name.as_deref(), c.display_id.as_deref()) {
        (None | Some(""), _) => c.session_id.clone(),
        (Some(name), None | Some("")) => name.to_owned(),
        (Some(name), Some(display)) => format!("{name} ({display})"),
    }
}

fn claim_block(c: &ClaimInfo) -> String {
    let kind = if c.exclusive { "exclusive" } else { "shared" };
    let mut text = format!("  {}  {kind}\n", c.resource);
    text.push_str(&format!("    held by: {}\n", holder(c)));
    text.push_str(&format!("    since: {}\n", c.since));
    if let Some(n) = &c.note {
        text.push_str(&format!("    note: {n}\n"));
    }
    text
}

/// The `claims` listing.
pub(crate) fn claims_text(claims: &[ClaimInfo]) -> String {
    if claims.is_empty() {
        return "No claims\n".to_owned();
    }
    let mut text = format!("Claims ({}):\n\n", claims.len());
    for c in claims {
        text.push_str(&claim_block(c));
    }
    text
}

/// `Error: Claimed` and who holds what.
fn refusal_text(refusal: &Refusal) -> String {
    let mut text = output::error_text(&refusal.to_value());
    if let Refusal::Claimed { held_by } = refusal {
        for c in held_by {
            text.push('\n');
            text.push_str(claim_block(c).trim_end());
        }
    }
    text
}

/// `path` (relative to `cwd`) as `file:<repo>/<path in the repo>`, ending in
/// `/` for a directory. The repository root is the nearest directory holding
/// `.git`, else `cwd` when the file is under it, else the file's directory.
pub(crate) fn file_resource(path: &Path, cwd: &Path) -> String {
    let full = normalize(&cwd.join(path));
    let dir_like = path.as_os_str().to_string_lossy().ends_with('/') || full.is_dir();
    let root = full
        .ancestors()
        .skip(1)
        .find(|dir| dir.join(".git").exists())
        .map(Path::to_path_buf)
        .or_else(|| full.starts_with(cwd).then(|| normalize(cwd)))
        .or_else(|| full.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("/"));
    let repo = shared::channel::repo_from_cwd(&root.to_string_lossy());
    let rel = full.strip_prefix(&root).unwrap_or(&full);
    let mut name = format!("file:{repo}/{}", rel.to_string_lossy());
    if dir_like && !name.ends_with('/') {
        name.push('/');
    }
    name
}

/// `.` and `..` resolved without touching the file system (the file may
/// not exist yet).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_by_repository_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("proj");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        std::fs::create_dir_all(repo.join("src")).unwrap();
        let wt = repo.join(".worktrees/feature");
        std::fs::create_dir_all(wt.join("src")).unwrap();
        std::fs::write(wt.join(".git"), "gitdir: ../../.git/worktrees/feature\n").unwrap();

        assert_eq!(
            file_resource(Path::new("src/x.rs"), &repo),
            "file:proj/src/x.rs"
        );
        assert_eq!(
            file_resource(&repo.join("src/../src/./y.rs"), Path::new("/")),
            "file:proj/src/y.rs"
        );
        assert_eq!(file_resource(Path::new("src"), &repo), "file:proj/src/");
        assert_eq!(
            file_resource(Path::new("src/x.rs"), &wt),
            "file:proj/src/x.rs",
            "a worktree names its files as the repository does"
        );
        let plain = dir.path().join("plain");
        assert_eq!(
            file_resource(Path::new("a/b.txt"), &plain),
            "file:plain/a/b.txt"
        );
    }
}
