//! URL redaction for anything shown or logged: user names and passwords,
//! the secret part of well-known hook URLs' paths (Slack, Discord, Teams,
//! IFTTT, Telegram, Zapier, anything after a `hooks` segment), and
//! credential query parameters.

/// What stands for a redacted part of a URL.
const REDACTED: &str = "***";

/// Query parameters that carry a credential (matched without case):
/// Google Chat's `key`/`token`, Azure's `sig`, and the usual names.
const SECRET_PARAMS: [&str; 12] = [
    "token",
    "key",
    "sig",
    "signature",
    "secret",
    "code",
    "auth",
    "access_token",
    "api_key",
    "apikey",
    "password",
    "pass",
];

/// Where a well-known hook service keeps its secret in the path: the
/// number of leading segments still shown, or where a secret starts.
enum PathSecret {
    /// Everything after the first `n` segments (`hooks.slack.com/services/…`).
    After(usize),
    /// Everything after the segment named `marker` and the `keep` segments
    /// after it (`…/webhooks/<id>/<token>` keeps the id).
    AfterMarker { marker: &'static str, keep: usize },
    /// A segment starting with `prefix` (Telegram's `bot<token>`).
    Prefixed(&'static str),
}

/// Hosts whose URLs carry their secret in the path, matched on the host or
/// any subdomain of it.
const PATH_SECRETS: [(&str, PathSecret); 7] = [
    ("hooks.slack.com", PathSecret::After(1)),
    (
        "discord.com",
        PathSecret::AfterMarker {
            marker: "webhooks",
            keep: 1,
        },
    ),
    (
        "discordapp.com",
        PathSecret::AfterMarker {
            marker: "webhooks",
            keep: 1,
        },
    ),
    ("webhook.office.com", PathSecret::After(1)),
    (
        "maker.ifttt.com",
        PathSecret::AfterMarker {
            marker: "key",
            keep: 0,
        },
    ),
    ("api.telegram.org", PathSecret::Prefixed("bot")),
    (
        "hooks.zapier.com",
        PathSecret::AfterMarker {
            marker: "catch",
            keep: 1,
        },
    ),
];

fn host_is(host: &str, domain: &str) -> bool {
    host.eq_ignore_ascii_case(domain)
        || host.len().checked_sub(domain.len() + 1).is_some_and(|at| {
            host.as_bytes()[at] == b'.' && host[at + 1..].eq_ignore_ascii_case(domain)
        })
}

/// The path segments with the secret ones replaced: by the host's rule,
/// and on any host everything after a `hooks` segment (Mattermost,
/// Rocket.Chat and many self-hosted services put the key there).
fn redact_segments(host: &str, segments: &mut [String]) {
    let rule = PATH_SECRETS
        .iter()
        .find(|(domain, _)| host_is(host, domain))
        .map(|(_, rule)| rule);
    let from = match rule {
        Some(PathSecret::After(n)) => Some(*n),
        Some(PathSecret::AfterMarker { marker, keep }) => segments
            .iter()
            .position(|s| s.eq_ignore_ascii_case(marker))
            .map(|at| at + 1 + keep),
        Some(PathSecret::Prefixed(prefix)) => {
            for s in segments.iter_mut() {
                if s.len() > prefix.len() && s.starts_with(prefix) {
                    *s = format!("{prefix}{REDACTED}");
                }
            }
            None
        }
        None => None,
    };
    let generic = segments
        .iter()
        .position(|s| s.eq_ignore_ascii_case("hooks"))
        .map(|at| at + 1);
    let from = match (from, generic) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if let Some(from) = from.filter(|&f| f < segments.len()) {
        for s in &mut segments[from..] {
            if !s.is_empty() {
                REDACTED.clone_into(s);
            }
        }
    }
}

/// The query with the values of [`SECRET_PARAMS`] replaced.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let secret = SECRET_PARAMS.iter().any(|p| name.eq_ignore_ascii_case(p));
            if secret && !value.is_empty() {
                format!("{name}={REDACTED}")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `url` with its credentials replaced by `***`, for showing and logging:
/// a user name and password (`https://***@host/x`), the secret part of a
/// well-known hook URL's path (Slack `hooks.slack.com/services/***`,
/// Discord `…/api/webhooks/<id>/***`, Teams, IFTTT, Telegram, Zapier,
/// anything after a `hooks` segment), and credential query parameters
/// (`?token=***`).
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Not a URL (never stored so), yet it may hold credentials.
        return match url.rsplit_once('@') {
            Some((_, rest)) => format!("{REDACTED}@{rest}"),
            None => url.to_owned(),
        };
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        let _ = parsed.set_password(None);
        let _ = parsed.set_username(REDACTED);
    }
    let host = parsed.host_str().unwrap_or_default().to_owned();
    if let Some(segments) = parsed.path_segments() {
        let mut segments: Vec<String> = segments.map(str::to_owned).collect();
        let before = segments.clone();
        redact_segments(&host, &mut segments);
        if segments != before {
            parsed.set_path(&segments.join("/"));
        }
    }
    if let Some(query) = parsed.query().map(redact_query) {
        parsed.set_query(Some(&query));
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_redacted() {
        assert_eq!(
            redact_url("https://user:pass@hooks.example.com/x?y=1"),
            "https://***@hooks.example.com/x?y=1"
        );
        assert_eq!(
            redact_url("https://token@hooks.example.com/x"),
            "https://***@hooks.example.com/x"
        );
        assert_eq!(
            redact_url("https://:pass@hooks.example.com/"),
            "https://***@hooks.example.com/"
        );
        assert_eq!(
            redact_url("https://hooks.example.com/x"),
            "https://hooks.example.com/x"
        );
    }

    #[test]
    fn secrets_in_well_known_hook_paths_are_redacted() {
        for (url, shown) in [
            (
                "https://hooks.slack.com/services/T0001/B0002/XXXXXXXXXXXXXXXXXXXXXXXX",
                "https://hooks.slack.com/services/***/***/***",
            ),
            (
                "https://hooks.slack.com/workflows/T1/A2/3/abcdef",
                "https://hooks.slack.com/workflows/***/***/***/***",
            ),
            (
                "https://discord.com/api/webhooks/123456/tok-en_XYZ",
                "https://discord.com/api/webhooks/123456/***",
            ),
            (
                "https://canary.discordapp.com/api/v10/webhooks/1/secret?wait=true",
                "https://canary.discordapp.com/api/v10/webhooks/1/***?wait=true",
            ),
            (
                "https://acme.webhook.office.com/webhookb2/a@b/IncomingWebhook/c/d",
                "https://acme.webhook.office.com/webhookb2/***/***/***/***",
            ),
            (
                "https://maker.ifttt.com/trigger/ev/with/key/abc123",
                "https://maker.ifttt.com/trigger/ev/with/key/***",
            ),
            (
                "https://api.telegram.org/bot123:ABC/sendMessage",
                "https://api.telegram.org/bot***/sendMessage",
            ),
            (
                "https://hooks.zapier.com/hooks/catch/123/abc/",
                "https://hooks.zapier.com/hooks/***/***/***/",
            ),
            (
                "https://chat.example.org/hooks/xyz123",
                "https://chat.example.org/hooks/***",
            ),
            (
                "https://chat.googleapis.com/v1/spaces/S/messages?key=K1&token=T1&thread=x",
                "https://chat.googleapis.com/v1/spaces/S/messages?key=***&token=***&thread=x",
            ),
            (
                "https://x.logic.azure.com/workflows/1/triggers/manual/paths/invoke?api-version=1&sp=%2F&SIG=abc",
                "https://x.logic.azure.com/workflows/1/triggers/manual/paths/invoke?api-version=1&sp=%2F&SIG=***",
            ),
            (
                "https://u:p@hooks.slack.com/services/T/B/S",
                "https://***@hooks.slack.com/services/***/***/***",
            ),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        for same in [
            "http://127.0.0.1:8082/hook",
            "https://notdiscord.com/api/webhooks/1/2",
            "https://example.com/webhooks/1/2?page=3",
            "https://hooks.slack.com/",
        ] {
            assert_eq!(redact_url(same), same);
        }
    }
}
