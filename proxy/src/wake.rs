//! Waking an idle agent for a direct message, on the paths its client has:
//! Claude Code's inbox socket first, then a notice typed into the agent's
//! own terminal pane (tmux or zellij). Each step is reported as a receipt
//! (`offered` when sent, `delivered` only when the screen shows the text
//! was taken (a typed notice: and a turn started), `held` with the reason). Nothing is typed
//! into a pane the proxy has not proven is its client's, nor over a
//! person's draft. The session's reach (the `push` list of every register
//! and renewal) says which paths work now.
//!
//! - [`client`]: which client this is, and whether its version was measured.
//! - [`inbox`]: Claude Code's inbox socket and its status frames.
//! - [`settings`]: Claude Code's `crossSessionInbound` setting.
//! - [`pane`]: finding the client's pane and proving it.
//! - [`mux`]: driving tmux and zellij.
//! - [`screen`]: reading a client's screen (input line, draft, busy).
//! - [`terminal`]: the pane wake's steps: ready, type, submit, taken.
//! - [`gate`]: cooldown, one `held` receipt per message, giving up.
//! - [`notice`]: what a wake says.
//! - [`report`]: receipts to the hub.
//! - `seen`: whether a wake is needed at all (the agent has the message,
//!   or its connected wake-up hook hands it over).

pub mod client;
pub mod gate;
pub mod inbox;
pub mod mux;
pub mod notice;
pub mod pane;
pub mod report;
pub mod screen;
mod seen;
pub mod settings;
pub mod terminal;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use shared::HubClient;
use shared::tools::receipts::{Path, Step};
use shared::wake::PaneTarget;
use tokio::sync::mpsc;

use self::client::{Client, ClientInfo};
use self::gate::Gate;
use self::inbox::{Inbox, Status};
use self::notice::Message;
use self::terminal::{Ready, Typed};

/// Wake jobs waiting for the wake task.
const JOBS: usize = 64;
/// How often a waiting pane wake looks again (idle? line empty?).
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// How long a connected wake-up hook (`wait`) gets to hand a message to the
/// agent before the inbox or the pane wakes it instead: the hook prints
/// and reports within a fraction of a second of the publish.
const HOOK_GRACE: Duration = Duration::from_secs(3);

/// What the wake task is asked to do.
#[derive(Debug)]
enum Job {
    /// Wake session `session` for `message`.
    Wake { session: String, message: Message },
    /// Claude Code said something about an inbox message.
    Status(Status),
}

/// The wake paths the switch turned on, and where the wake files are.
#[derive(Debug, Clone)]
pub struct WakeConfig {
    pub paths: Vec<&'static str>,
    pub state_dir: Option<PathBuf>,
}

/// The proxy's wake: shared by the pusher (which offers messages), the MCP
/// server (which names the client) and presence (which reports the reach).
pub struct Waker {
    hub: Arc<HubClient>,
    inbox_on: bool,
    pane_on: bool,
    state_dir: Option<PathBuf>,
    /// Our parent: the client process a pane must hold.
    client_pid: u32,
    /// The pane our environment names, if any.
    own_pane: Option<PaneTarget>,
    client: OnceLock<ClientInfo>,
    inbox: OnceLock<Arc<Inbox>>,
    jobs: mpsc::Sender<Job>,
    /// Refusals already logged (a stale pane is warned about once).
    refused: Mutex<Vec<String>>,
    /// The routes last reported, to log a change.
    reach: Mutex<Vec<String>>,
}

impl Waker {
    /// A waker and the receiving end [`Waker::run`] drains.
    pub fn new(hub: Arc<HubClient>, config: &WakeConfig, client_pid: u32) -> (Arc<Self>, JobQueue) {
        let (jobs, rx) = mpsc::channel(JOBS);
        let waker = Arc::new(Self {
            hub,
            inbox_on: config.paths.contains(&"inbox"),
            pane_on: config.paths.contains(&"pane"),
            state_dir: config.state_dir.clone(),
            client_pid,
            own_pane: PaneTarget::from_env(|name| std::env::var(name).ok()),
            client: OnceLock::new(),
            inbox: OnceLock::new(),
            jobs,
            refused: Mutex::new(Vec::new()),
            reach: Mutex::new(Vec::new()),
        });
        (waker, JobQueue(rx))
    }

    /// The client introduced itself (`initialize`): Claude Code's inbox is
    /// set up when our environment names it.
    pub fn attach(&self, name: &str, version: &str) {
        let info = ClientInfo::new(name, version);
        if info.kind == Client::ClaudeCode && self.inbox_on {
            if let Some(inbox) = Inbox::from_env() {
                let inbox = Arc::new(inbox);
                if let Some(mut statuses) = inbox.listen(shared::procs::ancestors()) {
                    let jobs = self.jobs.clone();
                    tokio::spawn(async move {
                        while let Some(status) = statuses.recv().await {
                            let _ = jobs.send(Job::Status(status)).await;
                        }
                    });
                }
                let _ = self.inbox.set(inbox);
            }
            if !info.verified() {
                tracing::info!(version = %info.version, "this Claude Code version's inbox was not measured: tried, not relied on");
            }
        }
        tracing::debug!(client = %info.name, version = %info.version, kind = ?info.kind, "client");
        let _ = self.client.set(info);
    }

    fn kind(&self) -> Client {
        self.client.get().map_or(Client::Other, |c| c.kind)
    }

    /// The state directory, when it can be used.
    fn state_dir(&self) -> Option<PathBuf> {
        match shared::state::dir(self.state_dir.as_deref()) {
            Ok(dir) => Some(dir),
            Err(e) => {
                tracing::debug!("no state directory: {e}");
                None
            }
        }
    }

    /// The routes session `session_id` can be reached by now, for its
    /// register or renewal: `inbox` after a probe answered (and the user's
    /// setting accepts), `pane` while its pane is proven, `channel` for
    /// Claude Code, `notify` where a desktop notice can show.
    pub async fn routes(&self, session_id: &str) -> Vec<String> {
        let mut routes = Vec::new();
        if let Some(inbox) = self.inbox.get()
            && Self::inbox_choice().reason().is_none()
            && inbox.probe().await
        {
            routes.push("inbox".to_owned());
        }
        if self.pane_on && self.find_pane(session_id).await.is_some() {
            routes.push("pane".to_owned());
        }
        if self.kind() == Client::ClaudeCode {
            routes.push("channel".to_owned());
        }
        if shared::notify::Host::current().can_notify() {
            routes.push("notify".to_owned());
        }
        let routes = shared::push::ordered_routes(&routes);
        let mut last = self
            .reach
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *last != routes {
            tracing::info!(routes = %routes.join(", "), "reach now");
            last.clone_from(&routes);
        }
        routes
    }

    /// Whether Claude Code's inbox was the way in when the routes were last
    /// found (at registration or the last renewal): a direct message then
    /// goes by the inbox alone.
    pub fn inbox_reachable(&self) -> bool {
        self.reach
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|r| r == "inbox")
    }

    fn inbox_choice() -> settings::Choice {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        settings::Files::standard(&cwd).choice()
    }

    /// This client's pane, proven; refusals are logged once each.
    async fn find_pane(&self, session_id: &str) -> Option<PaneTarget> {
        let mapped =
            self.state_dir()
                .and_then(|dir| match shared::wake::read_pane(&dir, session_id) {
                    Some(Ok(target)) => Some(target),
                    Some(Err(e)) => {
                        tracing::warn!("{e}");
                        None
                    }
                    None => None,
                });
        let search = pane::find(self.client_pid, self.own_pane.as_ref(), mapped.as_ref()).await;
        let mut logged = self
            .refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for why in search.refused {
            if !logged.contains(&why) {
                tracing::warn!("not typing into {why}");
                logged.push(why);
            }
        }
        drop(logged);
        search.found.map(|(target, source)| {
            tracing::debug!(pane = %target.describe(), from = source.name(), "the client's pane");
            target
        })
    }

    /// Asks for a wake of session `session` for `message` (a direct message
    /// or several told as one). Never waits: a full queue drops the wake,
    /// and the message stays readable.
    pub fn offer(&self, session: &str, message: Message) {
        if !self.inbox_on && !self.pane_on {
            tracing::info!(event_ids = ?message.event_ids, "wake is off ({}): no wake", shared::wake::ENV_WAKE);
            return;
        }
        let job = Job::Wake {
            session: session.to_owned(),
            message,
        };
        if self.jobs.try_send(job).is_err() {
            tracing::debug!("the wake queue is full; the message stays readable with get_events");
        }
    }

    /// Removes the inbox reply socket (at exit).
    pub fn close(&self) {
        if let Some(inbox) = self.inbox.get() {
            inbox.close();
        }
    }

    /// The wake task: runs until the queue closes.
    pub async fn run(self: Arc<Self>, JobQueue(mut jobs): JobQueue) {
        let mut pending: Vec<Message> = Vec::new();
        let mut session = String::new();
        let mut gate = Gate::default();
        loop {
            let job = tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => Some(job),
                    None => return,
                },
                () = tokio::time::sleep(RETRY_EVERY), if !pending.is_empty() => None,
            };
            match job {
                Some(Job::Wake {
                    session: s,
                    message,
                }) => {
                    session = s;
                    if let Some(message) = self.inbox_first(&session, message).await {
                        pending.push(message);
                    }
                }
                Some(Job::Status(status)) => {
                    let reason = (status.step == Step::Held).then_some(status.reason.as_str());
                    report::report(
                        &self.hub,
                        &session,
                        &status.event_ids,
                        status.step,
                        Path::Inbox,
                        reason,
                    );
                }
                None => {}
            }
            if !pending.is_empty() {
                self.pane_round(&session, &mut pending, &mut gate).await;
            }
        }
    }

    /// Sends `message` to Claude Code's inbox when it is the way in; returns
    /// it back when the pane should wake for it instead.
    async fn inbox_first(&self, session: &str, message: Message) -> Option<Message> {
        let Some(inbox) = self
            .inbox
            .get()
            .filter(|_| self.kind() == Client::ClaudeCode)
        else {
            return Some(message);
        };
        if let Some(reason) = Self::inbox_choice().reason() {
            // The user decides about messages from other sessions: neither
            // the inbox nor the pane goes around that.
            report::report(
                &self.hub,
                session,
                &message.event_ids,
                Step::Held,
                Path::Inbox,
                Some(&reason),
            );
            return None;
        }
        if !inbox.probe().await {
            tracing::debug!(socket = %inbox.socket().display(), "Claude Code's inbox does not answer");
            return Some(message);
        }
        if self.seen_or_hooked(session, &message.event_ids).await {
            tracing::debug!(event_ids = ?message.event_ids, "the agent has these messages already: no wake");
            return None;
        }
        match inbox
            .send(&notice::inbox_text(&message), &message.event_ids)
            .await
        {
            Ok(()) => {
                report::report(
                    &self.hub,
                    session,
                    &message.event_ids,
                    Step::Offered,
                    Path::Inbox,
                    None,
                );
                self.watch_inbox(session, &message).await;
                None
            }
            Err(e) => {
                tracing::debug!("cannot write to Claude Code's inbox: {e}");
                Some(message)
            }
        }
    }

    /// After an inbox write: where the client's pane is proven, the same
    /// on-screen check as for a typed notice proves delivery.
    async fn watch_inbox(&self, session: &str, message: &Message) {
        if !self.pane_on {
            return;
        }
        let Some(target) = self.find_pane(session).await else {
            return;
        };
        let (dir, hub, session) = (self.state_dir(), self.hub.clone(), session.to_owned());
        let (text, ids) = (notice::inbox_text(message), message.event_ids.clone());
        let since = shared::time::now_ms();
        tokio::spawn(async move {
            let scratch = dir.clone().unwrap_or_else(std::env::temp_dir);
            let state = || {
                dir.as_deref()
                    .and_then(|d| shared::wake::read_state(d, &session))
            };
            // The read hint names the message's own cursor: unlike the
            // first line, no earlier message's shows the same.
            let last = text.lines().last().unwrap_or_default();
            if terminal::taken(&target, &scratch, last, false, since, state).await {
                report::report(&hub, &session, &ids, Step::Delivered, Path::Inbox, None);
            }
        });
    }

    /// One try at waking through the pane for what is pending.
    async fn pane_round(&self, session: &str, pending: &mut Vec<Message>, gate: &mut Gate) {
        let ids: Vec<u64> = pending
            .iter()
            .flat_map(|m| m.event_ids.iter().copied())
            .collect();
        if !self.pane_on {
            tracing::info!(event_ids = ?ids, "the pane wake is off ({}): nothing typed", shared::wake::ENV_WAKE);
            pending.clear();
            return;
        }
        if !gate.ready(Instant::now()) {
            return;
        }
        let Some(target) = self.find_pane(session).await else {
            tracing::info!(event_ids = ?ids, "no pane proven to be this client's: nothing typed");
            pending.clear();
            gate.clear();
            return;
        };
        let dir = self.state_dir();
        let scratch = dir.clone().unwrap_or_else(std::env::temp_dir);
        let state = || {
            dir.as_deref()
                .and_then(|d| shared::wake::read_state(d, session))
        };
        let failed = |gate: &mut Gate, pending: &mut Vec<Message>, e: mux::MuxError| {
            tracing::warn!(pane = %target.describe(), "the pane wake failed: {e}");
            if gate.failed() {
                pending.clear();
            }
        };
        match terminal::ready(&target, &scratch, state()).await {
            Ok(Ready::Yes) => {}
            Ok(Ready::Busy) => {
                if gate.busy() {
                    tracing::info!(event_ids = ?ids, "the agent is busy; the wake waits until it is idle");
                }
                return;
            }
            Ok(Ready::Held(reason)) => {
                return self.hold(session, gate, &ids, &reason);
            }
            Err(e) => return failed(gate, pending, e),
        }
        if self.seen_or_hooked(session, &ids).await {
            tracing::debug!(event_ids = ?ids, "the agent has these messages already: no wake");
            pending.clear();
            gate.clear();
            return;
        }
        let line = notice::pane_line(pending);
        let since = shared::time::now_ms();
        match terminal::type_and_submit(&target, &scratch, &line).await {
            Ok(Typed::Submitted) => {}
            Ok(Typed::Abandoned(reason)) => {
                return self.hold(session, gate, &ids, &reason);
            }
            Err(e) => return failed(gate, pending, e),
        }
        gate.typed(Instant::now());
        pending.clear();
        report::report(&self.hub, session, &ids, Step::Offered, Path::Pane, None);
        if terminal::taken(&target, &scratch, &line, true, since, state).await {
            report::report(&self.hub, session, &ids, Step::Delivered, Path::Pane, None);
        } else {
            tracing::info!(event_ids = ?ids, "the typed notice was not seen taken within {:?}; it stays offered", terminal::TAKEN_WAIT);
        }
    }

    /// The pane wake waits for `reason`: tells it once per message.
    fn hold(&self, session: &str, gate: &mut Gate, ids: &[u64], reason: &str) {
        let new = gate.hold(reason, ids);
        report::report(
            &self.hub,
            session,
            &new,
            Step::Held,
            Path::Pane,
            Some(reason),
        );
    }
}

/// The receiving end of the wake queue.
pub struct JobQueue(mpsc::Receiver<Job>);
