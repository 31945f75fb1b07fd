//! `setup claude-code|codex|gemini [--dry-run]`: connects a client to the
//! bus in one command. It registers the proxy as the client's MCP server and
//! adds the hooks that tell the proxy when the agent is busy or idle and that
//! wake it (see each client's module). It merges into the client's config
//! files, keeping everything else there; it is idempotent; it prints one line
//! per change (nothing when there is nothing to change); `--dry-run` prints
//! the same lines and writes nothing.

mod claude;
mod codex;
mod gemini;
pub(crate) mod merge;

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};
use serde_json::{Map, Value, json};
use shared::config;

use crate::args::Global;
use crate::commands::hook::Recipe;
use crate::output::line;

/// The MCP server's name in every client's config.
pub(crate) const SERVER: &str = "agent-event-bus";
/// This program's file name, by which hook entries are recognised as ours.
const CLI_NAME: &str = "agent-event-bus-cli";
const PROXY_NAME: &str = "agent-event-bus-proxy";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Client {
    /// Claude Code: ~/.claude.json and ~/.claude/settings.json
    ClaudeCode,
    /// Codex: ~/.codex/config.toml
    Codex,
    /// Gemini CLI: ~/.gemini/settings.json
    Gemini,
}

#[derive(Debug, Args)]
pub(crate) struct SetupArgs {
    /// The client to connect
    #[arg(value_enum)]
    client: Client,
    /// Print what would change and write nothing
    #[arg(long)]
    dry_run: bool,
    /// The proxy to register [default: agent-event-bus-proxy beside this program, else on PATH]
    #[arg(long, value_name = "PATH")]
    proxy: Option<PathBuf>,
}

/// What `setup` knows to write: where things are, and the hub to record.
pub(crate) struct Context {
    pub home: PathBuf,
    /// This program, as hooks run it.
    pub cli: PathBuf,
    pub proxy: PathBuf,
    /// The hub URL, when it is not the default (recorded in the server's
    /// environment and the hook commands).
    pub url: Option<String>,
    /// The token, when one was given (the server's environment only; never
    /// on a command line).
    pub token: Option<String>,
    /// The token file named in the environment, when one is: some clients
    /// (Gemini CLI) drop variables that look like secrets from what their
    /// MCP servers inherit, so the server's own environment carries it.
    pub token_file: Option<String>,
}

impl Context {
    /// The hook entry's command: a shell command line.
    pub(crate) fn hook_command(&self, recipe: Recipe) -> String {
        self.hook_argv(recipe)
            .iter()
            .map(|w| shell_word(w))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The same as a list of arguments (Codex's `notify`).
    pub(crate) fn hook_argv(&self, recipe: Recipe) -> Vec<String> {
        let mut argv = vec![self.cli.display().to_string()];
        if let Some(url) = &self.url {
            argv.extend(["--url".to_owned(), url.clone()]);
        }
        argv.extend(["hook".to_owned(), recipe.name().to_owned()]);
        argv
    }

    /// The MCP server's environment: the hub and credential `setup` was given.
    pub(crate) fn server_env(&self) -> Map<String, Value> {
        let mut env = Map::new();
        if let Some(url) = &self.url {
            env.insert(config::ENV_URL.to_owned(), json!(url));
        }
        if let Some(token) = &self.token {
            env.insert(config::ENV_TOKEN.to_owned(), json!(token));
        }
        if let Some(file) = &self.token_file {
            env.insert(config::ENV_TOKEN_FILE.to_owned(), json!(file));
        }
        env
    }

    /// `path` with the home folder shown as `~`.
    pub(crate) fn shown(&self, path: &Path) -> String {
        match path.strip_prefix(&self.home) {
            Ok(rest) => format!("~/{}", rest.display()),
            Err(_) => path.display().to_string(),
        }
    }
}

/// Whether a hook `command` is one `setup` wrote for `recipe` (from any
/// path of this program), or the example script it replaces.
pub(crate) fn is_ours(command: &str, recipe: Recipe) -> bool {
    let words = shell_words(command);
    let ours = words
        .first()
        .is_some_and(|w| Path::new(w).file_name().is_some_and(|n| n == CLI_NAME))
        && words
            .windows(2)
            .any(|pair| pair[0] == "hook" && pair[1] == recipe.name());
    let example = format!("/{}.sh", recipe.name());
    ours || words.first().is_some_and(|w| w.ends_with(&example))
}

/// A command line split into words as a shell would, for the plain and
/// single-quoted words [`shell_word`] writes.
fn shell_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut escaped = false;
    for c in command.chars() {
        if escaped {
            word.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            '\\' if !quoted => {
                escaped = true;
                in_word = true;
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// A word for a POSIX shell: as it is when it needs no quoting.
pub(crate) fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=@%+,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// One config file to write, and what changed in it.
pub(crate) struct Edit {
    pub path: PathBuf,
    pub text: String,
    pub changes: Vec<String>,
}

/// The file's text, `None` when it does not exist.
pub(crate) fn read(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// `setup`: plans every edit first (a file it cannot read or parse stops
/// it before anything is written), then writes them and prints the changes.
pub(crate) fn setup(args: &SetupArgs, global: &Global) -> Result<ExitCode> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .context("HOME is not set")?;
    let cli = std::env::current_exe().context("cannot find this program's path")?;
    let proxy = match &args.proxy {
        Some(path) => path.clone(),
        None => find_proxy(&cli)?,
    };
    if !proxy.is_file() {
        bail!(
            "{} does not exist; build and install it first (make install), or pass --proxy PATH",
            proxy.display()
        );
    }
    let url = (global.url != config::DEFAULT_URL).then(|| global.url.clone());
    let ctx = Context {
        home,
        cli,
        proxy,
        url,
        token: global.token.clone(),
        token_file: config::non_empty_env(config::ENV_TOKEN_FILE),
    };
    let edits = match args.client {
        Client::ClaudeCode => claude::plan(&ctx)?,
        Client::Codex => codex::plan(&ctx)?,
        Client::Gemini => gemini::plan(&ctx)?,
    };
    for edit in edits.iter().filter(|e| !e.changes.is_empty()) {
        if !args.dry_run {
            write(&edit.path, &edit.text)?;
        }
        for change in &edit.changes {
            line(&format!("{}: {change}", ctx.shown(&edit.path)))?;
        }
    }
    if args.dry_run && edits.iter().any(|e| !e.changes.is_empty()) {
        line("(dry run: nothing was written)")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The proxy beside this program, else the one on `PATH`.
fn find_proxy(cli: &Path) -> Result<PathBuf> {
    if let Some(beside) = cli
        .parent()
        .map(|d| d.join(PROXY_NAME))
        .filter(|p| p.is_file())
    {
        return Ok(beside);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(PROXY_NAME))
                .find(|p| p.is_file())
        })
        .with_context(|| {
            format!("{PROXY_NAME} is neither beside this program nor on PATH; install it (make install) or pass --proxy PATH")
        })
}

/// Writes through a temporary file beside it (a crash never leaves half a
/// file), keeping the file's mode; a new file is private to its user.
fn write(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mode = std::fs::metadata(path).map_or(0o600, |m| m.permissions().mode() & 0o7777);
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.agent-event-bus-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_commands_are_recognised_from_any_path_and_the_examples() {
        assert!(is_ours("/a/b/agent-event-bus-cli hook idle", Recipe::Idle));
        assert!(is_ours(
            "'/x y/agent-event-bus-cli' --url http://h:1 hook stop-wait",
            Recipe::StopWait
        ));
        assert!(is_ours(
            "/repo/examples/hooks/stop-wait.sh",
            Recipe::StopWait
        ));
        assert!(!is_ours("/a/agent-event-bus-cli hook busy", Recipe::Idle));
        assert!(!is_ours("my-hook.sh hook idle", Recipe::Idle));
        let quoted = shell_word("/it's here/agent-event-bus-cli");
        assert_eq!(
            shell_words(&format!("{quoted} hook idle"))[0],
            "/it's here/agent-event-bus-cli"
        );
    }

    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("/usr/bin/x"), "/usr/bin/x");
        assert_eq!(
            shell_word("http://127.0.0.1:8080/mcp"),
            "http://127.0.0.1:8080/mcp"
        );
        assert_eq!(shell_word("/a b/it's"), r"'/a b/it'\''s'");
    }
}
