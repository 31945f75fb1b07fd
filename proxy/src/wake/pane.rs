//! Finding the terminal pane our client runs in, and proving it. Candidates
//! come from our environment (`TMUX`/`TMUX_PANE`, zellij's variables), a
//! pane mapped by hand (`panes set`), and the environment our ancestors
//! started with (a client such as Codex gives its MCP servers a fixed
//! environment, but its own still names the pane). A candidate is trusted
//! only when the pane's process tree holds our client process (our parent)
//! and the pane's terminal is the client's own (a background server shared
//! by several terminals, as Codex's daemon is, has none): a stale or
//! foreign pane is never typed into.

use std::path::Path;

use shared::procs;
use shared::wake::{Mux, PaneTarget};

use super::mux;

/// Where a candidate pane came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The proxy's own environment.
    Env,
    /// `panes set`.
    Mapped,
    /// The environment of one of our ancestors.
    Ancestor,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Self::Env => "environment",
            Self::Mapped => "panes set",
            Self::Ancestor => "an ancestor's environment",
        }
    }
}

/// The outcome of a search: the proven pane, and why others were refused.
#[derive(Debug, Default)]
pub struct Search {
    pub found: Option<(PaneTarget, Source)>,
    pub refused: Vec<String>,
}

/// Finds the pane holding `client_pid`, trying `own` (from our environment),
/// then `mapped`, then what our ancestors' environments name.
pub async fn find(
    client_pid: u32,
    own: Option<&PaneTarget>,
    mapped: Option<&PaneTarget>,
) -> Search {
    let chain = procs::chain_from(client_pid);
    let mut candidates: Vec<(PaneTarget, Source)> = Vec::new();
    if let Some(own) = own {
        candidates.push((own.clone(), Source::Env));
    }
    if let Some(mapped) = mapped {
        candidates.push((mapped.clone(), Source::Mapped));
    }
    for pid in &chain {
        let found = PaneTarget::from_env(|name| procs::env_of(*pid, name));
        if let Some(target) = found
            && !candidates.iter().any(|(c, _)| c.same_pane(&target))
        {
            candidates.push((target, Source::Ancestor));
        }
    }
    let mut search = Search::default();
    for (target, source) in candidates {
        match verify(&target, client_pid, &chain).await {
            Ok(()) => {
                search.found = Some((target, source));
                return search;
            }
            Err(why) => search.refused.push(format!(
                "{} (from {}): {why}",
                target.describe(),
                source.name()
            )),
        }
    }
    search
}

/// Proves `target` holds `client_pid`, whose ancestors (itself first) are
/// `chain`; `Err` says why not.
pub async fn verify(target: &PaneTarget, client_pid: u32, chain: &[u32]) -> Result<(), String> {
    if client_pid <= 1 || chain.first() != Some(&client_pid) {
        return Err("the proxy has no client process to look for".to_owned());
    }
    target.check()?;
    match target.mux {
        Mux::Tmux => {
            let panes = mux::tmux_panes(target.socket.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            let pane = panes
                .iter()
                .find(|p| p.pane == target.pane)
                .ok_or("no such pane on that tmux server")?;
            holds(pane.pid, chain, client_pid)?;
            let client_tty = procs::tty_of(client_pid);
            if client_tty.is_some() && client_tty == procs::tty_device(Path::new(&pane.tty)) {
                Ok(())
            } else {
                Err(format!(
                    "its terminal {} is not our client's ({client_pid}) own terminal",
                    pane.tty
                ))
            }
        }
        Mux::Zellij => {
            let root =
                zellij_pane_root(chain).ok_or("our client does not run under a zellij server")?;
            let pane = procs::env_of(root, "ZELLIJ_PANE_ID");
            let session = procs::env_of(root, "ZELLIJ_SESSION_NAME");
            if pane.as_deref() == Some(target.pane.as_str()) && session == target.session {
                Ok(())
            } else {
                Err(format!(
                    "our client runs in zellij pane {} of session {}",
                    pane.as_deref().unwrap_or("?"),
                    session.as_deref().unwrap_or("?")
                ))
            }
        }
    }
}

/// Whether the pane's process `pane_pid` is our client or one of its
/// ancestors (so the pane's process tree holds the client).
fn holds(pane_pid: u32, chain: &[u32], client_pid: u32) -> Result<(), String> {
    if chain.contains(&pane_pid) {
        Ok(())
    } else {
        Err(format!(
            "its process {pane_pid} is not our client ({client_pid}) nor one of its ancestors: a stale or foreign pane"
        ))
    }
}

/// The process a zellij server started for our pane: the one in `chain`
/// right below a process named `zellij`.
fn zellij_pane_root(chain: &[u32]) -> Option<u32> {
    chain.windows(2).find_map(|pair| {
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", pair[1])).ok()?;
        (comm.trim() == "zellij").then_some(pair[0])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pane_holds_the_client_only_through_its_ancestors() {
        let chain = [300, 200, 100];
        assert!(
            holds(300, &chain, 300).is_ok(),
            "the client is the pane's process"
        );
        assert!(
            holds(100, &chain, 300).is_ok(),
            "the pane's shell started it"
        );
        let err = holds(999, &chain, 300).unwrap_err();
        assert!(err.contains("stale or foreign"), "{err}");
    }

    #[tokio::test]
    async fn without_a_client_nothing_is_proven() {
        let target = PaneTarget {
            mux: Mux::Tmux,
            pane: "%0".into(),
            socket: None,
            session: None,
        };
        assert!(verify(&target, 1, &[1]).await.is_err());
        assert!(verify(&target, 5, &[6, 5]).await.is_err());
    }
}
