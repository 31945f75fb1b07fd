//! The hub process: started on a loopback port with its own data dir (or a
//! given store or port), stopped, killed, restarted on the same data.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared::HubClient;

use crate::group::Group;
use crate::{command, credential, rt, wait_until};

/// How long the harness waits for a state the hub reports.
const WAIT_DEADLINE: Duration = Duration::from_secs(20);

/// A running hub on a loopback port with its own data dir.
pub struct Hub {
    /// The hub leads a process group of its own, so that what it starts
    /// (notifiers) ends with it.
    child: Option<Group>,
    /// The temp dir that holds the database; kept across restarts.
    pub dir: Arc<tempfile::TempDir>,
    pub url: String,
    pub port: u16,
    /// The database file (in `dir` unless [`Hub::start_on`] put it elsewhere).
    db: PathBuf,
    /// The hub's credential: the token it was given, else the one it made.
    pub(crate) token: String,
    /// The token file it made (`None` when it was given its token).
    pub(crate) token_file: Option<PathBuf>,
    extra_args: Vec<String>,
    extra_env: Vec<(String, String)>,
    log: Arc<Mutex<String>>,
    /// The client the harness's own helpers share (its connections pooled).
    shared: Mutex<Option<Arc<HubClient>>>,
}

/// How to start a hub.
#[derive(Default, Clone)]
pub struct HubOptions {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Hub {
    /// Starts a hub on 127.0.0.1, port 0, with a fresh temp data dir.
    pub fn start() -> Self {
        Self::start_with(HubOptions::default())
    }

    pub fn start_with(options: HubOptions) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("a temp dir"));
        let db = dir.path().join("data.redb");
        Self::spawn(dir, db, options.args, options.env, 0)
    }

    /// Starts a hub whose database is `db` (say, on a small filesystem).
    pub fn start_on_db(db: PathBuf, options: HubOptions) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("a temp dir"));
        Self::spawn(dir, db, options.args, options.env, 0)
    }

    /// Starts a hub on 127.0.0.1 at `port` (one a test has just freed).
    pub fn start_on_port(options: HubOptions, port: u16) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("a temp dir"));
        let db = dir.path().join("data.redb");
        Self::spawn(dir, db, options.args, options.env, port)
    }

    /// Starts a hub on the store already in `dir` (`data.redb`), e.g. one
    /// just imported.
    pub fn start_on(dir: Arc<tempfile::TempDir>, options: HubOptions) -> Self {
        let db = dir.path().join("data.redb");
        Self::spawn(dir, db, options.args, options.env, 0)
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.db.clone()
    }

    fn spawn(
        dir: Arc<tempfile::TempDir>,
        db: PathBuf,
        args: Vec<String>,
        env: Vec<(String, String)>,
        port: u16,
    ) -> Self {
        let options = HubOptions { args, env };
        Self::spawn_command(command("agent-event-bus"), dir, db, options, port)
    }

    /// Starts `cmd`, the hub's command line so far, on `db`.
    pub(crate) fn spawn_command(
        mut cmd: Command,
        dir: Arc<tempfile::TempDir>,
        db: PathBuf,
        options: HubOptions,
        port: u16,
    ) -> Self {
        let HubOptions { args, env } = options;
        if !args.iter().any(|a| a == "--host") {
            cmd.arg("--host").arg("127.0.0.1");
        }
        cmd.arg("--port")
            .arg(port.to_string())
            .arg("--db")
            .arg(&db)
            .args(&args)
            .env("RUST_LOG", "hub=debug,warn")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = Group::spawn(&mut cmd).expect("the hub starts");
        let stderr = child.child().stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(rest.trim().to_owned());
                }
                let mut log = sink
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                log.push_str(&line);
                log.push('\n');
            }
        });
        let Ok(base) = rx.recv_timeout(Duration::from_secs(30)) else {
            child.kill();
            panic!(
                "the hub did not report its address; its stderr:\n{}",
                log.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
            );
        };
        let port = base
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .expect("the readiness line ends with a port");
        let (token, token_file) = if let Some(token) = credential::given_token(&args, &env) {
            (token, None)
        } else {
            let file = shared::config::token_file_beside(&db);
            let token = std::fs::read_to_string(&file).unwrap_or_else(|e| {
                panic!(
                    "the hub made no token file at {} ({e}); its stderr:\n{}",
                    file.display(),
                    log.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                )
            });
            (token.trim().to_owned(), Some(file))
        };
        Self {
            child: Some(child),
            dir,
            url: format!("{}/mcp", base.trim_end_matches('/')),
            port,
            db,
            token,
            token_file,
            extra_args: args,
            extra_env: env,
            log,
            shared: Mutex::new(None),
        }
    }

    /// The base URL without `/mcp`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything the hub has written to stderr so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The client the harness's helpers share, presenting the credential;
    /// one per hub process, so polling loops reuse its connections.
    pub fn shared_client(&self) -> Arc<HubClient> {
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert_with(|| Arc::new(self.client()))
            .clone()
    }

    /// Waits until the hub reports `n` `get_events` long-polls in progress
    /// (`long_polls` in `/health`): a long-poll sent before has reached it.
    pub fn wait_long_polls(&self, n: u64) {
        let client = self.shared_client();
        let runtime = rt();
        wait_until(
            &format!("{n} long-polls in progress"),
            WAIT_DEADLINE,
            || {
                let health = runtime.block_on(client.health()).ok()?;
                (health["long_polls"].as_u64() == Some(n)).then_some(())
            },
        );
    }

    /// Stops the hub with SIGTERM and waits for it to exit; then ends what
    /// it left running.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut group = self.child.take()?;
        let child = group.child();
        let pid = rustix::process::Pid::from_child(child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the hub with SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut group) = self.child.take() {
            group.kill();
        }
    }

    /// Starts a new hub process on the same data dir (and a new port).
    pub fn restart(&mut self) {
        self.stop();
        let next = Self::spawn(
            self.dir.clone(),
            self.db.clone(),
            self.extra_args.clone(),
            self.extra_env.clone(),
            0,
        );
        self.absorb(next);
    }

    /// Starts a new hub process on the same data dir and the same port.
    pub fn restart_same_port(&mut self) {
        self.stop();
        let port = self.port;
        let next = Self::spawn(
            self.dir.clone(),
            self.db.clone(),
            self.extra_args.clone(),
            self.extra_env.clone(),
            port,
        );
        self.absorb(next);
    }

    fn absorb(&mut self, mut next: Hub) {
        *self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        self.token.clone_from(&next.token);
        self.token_file.clone_from(&next.token_file);
        self.child = next.child.take();
        self.url.clone_from(&next.url);
        self.port = next.port;
        self.log = next.log.clone();
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Group::id)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(mut group) = self.child.take() {
            group.kill();
        }
        if std::thread::panicking() {
            eprintln!("---- hub stderr ----\n{}", self.log());
        }
    }
}
