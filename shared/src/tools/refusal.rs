//! Domain refusals: a normal reply (not `isError`) whose `error` says why
//! the hub would not do it, in the original's shapes. Each `error` text is
//! written here and nowhere else.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::wire::ClaimInfo;

const SESSION_NOT_FOUND: &str = "Session not found";
const NO_SESSION_GIVEN: &str = "Must provide either session_id or client_id";
const SESSION_DELETED: &str = "Session deleted";
const CLAIMED: &str = "Claimed";
const SESSION_KEYED: &str = "Session key required";
const WEBHOOK_NOT_FOUND: &str = "Webhook not found";
const WEBHOOK_PAUSED: &str = "Webhook is paused; enable it first (set_webhook_active)";
/// Also the `error` of a `message_status` item for an unknown id.
pub const EVENT_NOT_FOUND: &str = "Event not found";
const WEBHOOK_LIMIT: &str = "Webhook limit reached";
const NOTIFY_NOT_LOCAL: &str = "notify is off for callers on other machines";
const TESTS_LIMITED: &str = "Too many webhook tests";

/// A session that has ended, as a refusal (or a publish's flags) shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Deleted {
    pub session_id: String,
    pub display_id: String,
    pub deleted_at: Option<String>,
    /// What the caller should do now.
    pub hint: String,
}

/// Why the hub refused a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// No session has this id.
    SessionNotFound {
        session_id: String,
    },
    /// No session has this client id on this machine.
    ClientNotFound {
        client_id: String,
        machine: String,
    },
    /// `unregister_session` named no session.
    NoSessionGiven,
    /// The session named has ended.
    SessionDeleted(Deleted),
    /// The session named is keyed, and the call (which would act as it)
    /// did not present its key; nothing was changed.
    SessionKeyed {
        session_id: String,
        /// What to do instead (differs for a missing and a wrong key).
        hint: String,
    },
    /// `ack_events` would not move the cursor there; `cursor` is where the
    /// session's cursor stays, `tip` the newest event when it is ahead.
    Cursor {
        error: String,
        session_id: String,
        cursor: Option<String>,
        tip: Option<u64>,
    },
    /// Claims held by other sessions stand in the way.
    Claimed {
        held_by: Vec<ClaimInfo>,
    },
    WebhookNotFound {
        webhook_id: u64,
    },
    WebhookPaused {
        webhook_id: u64,
    },
    EventNotFound {
        webhook_id: u64,
        event_id: u64,
    },
    /// The hub holds as many webhooks as it keeps (`--max-webhooks`).
    WebhookLimit {
        limit: u64,
    },
    /// `notify` from a caller on another machine, which the hub does not
    /// allow (`--allow-remote-notify`).
    NotifyNotLocal,
    /// `test_webhook` past its rate ([`webhooks::TEST_EVERY_SECONDS`] per
    /// webhook, [`webhooks::TESTS_PER_MINUTE`] per hub).
    ///
    /// [`webhooks::TEST_EVERY_SECONDS`]: super::webhooks::TEST_EVERY_SECONDS
    /// [`webhooks::TESTS_PER_MINUTE`]: super::webhooks::TESTS_PER_MINUTE
    TestsLimited {
        webhook_id: u64,
        retry_after_seconds: u64,
    },
    /// A refusal this build does not know (a newer hub).
    Other(Value),
}

impl Refusal {
    /// `ack_events` to a cursor past the newest event.
    pub fn cursor_ahead(session_id: String, position: Option<u64>, cursor: u64, tip: u64) -> Self {
        let newest = if tip == 0 {
            "none published yet".to_owned()
        } else {
            tip.to_string()
        };
        Self::Cursor {
            error: format!("Cursor {cursor} is ahead of the newest event ({newest})"),
            session_id,
            cursor: position.map(|p| p.to_string()),
            tip: Some(tip),
        }
    }

    /// `ack_events` behind the session's position without `allow_rewind`.
    pub fn cursor_behind(session_id: String, position: u64, cursor: u64) -> Self {
        Self::Cursor {
            error: format!(
                "Cursor {cursor} is behind the session's current position ({position}). Pass allow_rewind=true to replay deliberately."
            ),
            session_id,
            cursor: Some(position.to_string()),
            tip: None,
        }
    }

    /// `ack_events` with a cursor that is no event id.
    pub fn cursor_invalid(
        session_id: String,
        position: Option<u64>,
        error: &crate::cursor::CursorError,
    ) -> Self {
        Self::Cursor {
            error: error.to_string(),
            session_id,
            cursor: position.map(|p| p.to_string()),
            tip: None,
        }
    }

    /// A call acting as keyed session `session_id` without its key;
    /// `presented` when it sent a key, just not this session's.
    pub fn keyed(session_id: &str, presented: bool) -> Self {
        let what = if presented {
            format!("The session key this call sent is not session {session_id}'s.")
        } else {
            format!("Session {session_id} is keyed and this call sent no key.")
        };
        Self::SessionKeyed {
            session_id: session_id.to_owned(),
            hint: format!(
                "{what} Acting as a keyed session (publishing as it, consuming or acking its events, \
                 claims, receipt reports, renewing, unregistering or re-registering it) needs its key \
                 in the agent-event-bus-session-key header; its own proxy and hooks send it. Nothing \
                 was changed. To read without acting as a session, omit session_id."
            ),
        }
    }

    /// The `error` text.
    pub fn error(&self) -> &str {
        match self {
            Self::SessionNotFound { .. } | Self::ClientNotFound { .. } => SESSION_NOT_FOUND,
            Self::NoSessionGiven => NO_SESSION_GIVEN,
            Self::SessionDeleted(_) => SESSION_DELETED,
            Self::SessionKeyed { .. } => SESSION_KEYED,
            Self::Cursor { error, .. } => error,
            Self::Claimed { .. } => CLAIMED,
            Self::WebhookNotFound { .. } => WEBHOOK_NOT_FOUND,
            Self::WebhookPaused { .. } => WEBHOOK_PAUSED,
            Self::EventNotFound { .. } => EVENT_NOT_FOUND,
            Self::WebhookLimit { .. } => WEBHOOK_LIMIT,
            Self::NotifyNotLocal => NOTIFY_NOT_LOCAL,
            Self::TestsLimited { .. } => TESTS_LIMITED,
            Self::Other(v) => v["error"].as_str().unwrap_or_default(),
        }
    }

    /// Whether it says the session named is gone (unknown or ended).
    pub fn session_gone(&self) -> bool {
        matches!(self, Self::SessionNotFound { .. } | Self::SessionDeleted(_))
    }

    /// The reply object.
    pub fn to_value(&self) -> Value {
        let error = self.error();
        let fields = match self {
            Self::SessionNotFound { session_id } => json!({"session_id": session_id}),
            Self::ClientNotFound { client_id, machine } => {
                json!({"client_id": client_id, "machine": machine})
            }
            Self::NoSessionGiven => json!({}),
            Self::SessionDeleted(d) => {
                let mut v = json!({"session_deleted": true});
                extend(&mut v, d);
                v
            }
            Self::SessionKeyed { session_id, hint } => {
                json!({"session_id": session_id, "keyed": true, "hint": hint})
            }
            Self::Cursor {
                session_id,
                cursor,
                tip,
                ..
            } => {
                let mut v = json!({"session_id": session_id, "cursor": cursor});
                if let Some(tip) = tip {
                    v["tip"] = json!(tip);
                }
                v
            }
            Self::Claimed { held_by } => json!({"held_by": held_by}),
            Self::WebhookNotFound { webhook_id } | Self::WebhookPaused { webhook_id } => {
                json!({"webhook_id": webhook_id})
            }
            Self::EventNotFound {
                webhook_id,
                event_id,
            } => json!({"webhook_id": webhook_id, "event_id": event_id}),
            Self::WebhookLimit { limit } => json!({
                "limit": limit,
                "hint": format!(
                    "This hub keeps at most {limit} webhooks (--max-webhooks, AGENT_EVENT_BUS_MAX_WEBHOOKS). \
                     Remove one with unregister_webhook, or ask the hub's owner to raise the limit."
                ),
            }),
            Self::NotifyNotLocal => json!({
                "hint": "notify shows its text on the hub machine's desktop, so only callers on that machine may use it, \
                         unless the hub runs with --allow-remote-notify (AGENT_EVENT_BUS_ALLOW_REMOTE_NOTIFY=1). \
                         Through agent-event-bus-proxy, notify shows on your own machine instead.",
            }),
            Self::TestsLimited {
                webhook_id,
                retry_after_seconds,
            } => json!({
                "webhook_id": webhook_id,
                "retry_after_seconds": retry_after_seconds,
                "hint": format!(
                    "test_webhook runs at most once every {} s per webhook and {} times a minute per hub; try again in {retry_after_seconds} s.",
                    super::webhooks::TEST_EVERY_SECONDS,
                    super::webhooks::TESTS_PER_MINUTE,
                ),
            }),
            Self::Other(v) => return v.clone(),
        };
        // Webhook and notify refusals say `success: false` first, as the
        // original's webhook refusals do.
        let mut out = Map::new();
        if matches!(
            self,
            Self::WebhookNotFound { .. }
                | Self::WebhookPaused { .. }
                | Self::EventNotFound { .. }
                | Self::WebhookLimit { .. }
                | Self::NotifyNotLocal
                | Self::TestsLimited { .. }
        ) {
            out.insert("success".into(), Value::Bool(false));
        }
        out.insert("error".into(), Value::String(error.to_owned()));
        if let Value::Object(fields) = fields {
            out.extend(fields);
        }
        Value::Object(out)
    }

    /// Reads a reply that carries an `error`; `None` for any other reply.
    pub fn from_value(v: &Value) -> Option<Self> {
        let error = v.get("error")?.as_str()?;
        let text = |key: &str| v[key].as_str().unwrap_or_default().to_owned();
        let id = |key: &str| v[key].as_u64().unwrap_or_default();
        Some(match error {
            SESSION_NOT_FOUND if v.get("client_id").is_some() => Self::ClientNotFound {
                client_id: text("client_id"),
                machine: text("machine"),
            },
            SESSION_NOT_FOUND => Self::SessionNotFound {
                session_id: text("session_id"),
            },
            NO_SESSION_GIVEN => Self::NoSessionGiven,
            SESSION_DELETED => match serde_json::from_value(v.clone()) {
                Ok(d) => Self::SessionDeleted(d),
                Err(_) => Self::Other(v.clone()),
            },
            SESSION_KEYED => Self::SessionKeyed {
                session_id: text("session_id"),
                hint: text("hint"),
            },
            CLAIMED => match serde_json::from_value(v["held_by"].clone()) {
                Ok(held_by) => Self::Claimed { held_by },
                Err(_) => Self::Other(v.clone()),
            },
            WEBHOOK_NOT_FOUND => Self::WebhookNotFound {
                webhook_id: id("webhook_id"),
            },
            WEBHOOK_PAUSED => Self::WebhookPaused {
                webhook_id: id("webhook_id"),
            },
            EVENT_NOT_FOUND => Self::EventNotFound {
                webhook_id: id("webhook_id"),
                event_id: id("event_id"),
            },
            WEBHOOK_LIMIT => Self::WebhookLimit { limit: id("limit") },
            NOTIFY_NOT_LOCAL => Self::NotifyNotLocal,
            TESTS_LIMITED => Self::TestsLimited {
                webhook_id: id("webhook_id"),
                retry_after_seconds: id("retry_after_seconds"),
            },
            _ if v.get("session_id").is_some() && v.get("cursor").is_some() => Self::Cursor {
                error: error.to_owned(),
                session_id: text("session_id"),
                cursor: v["cursor"].as_str().map(str::to_owned),
                tip: v["tip"].as_u64(),
            },
            _ => Self::Other(v.clone()),
        })
    }
}

/// Adds `fields`' keys to the object `v`.
fn extend(v: &mut Value, fields: &impl Serialize) {
    if let (Value::Object(out), Ok(Value::Object(more))) = (v, serde_json::to_value(fields)) {
        out.extend(more);
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.error())
    }
}

impl Serialize for Refusal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Refusal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(deserializer)?;
        Self::from_value(&v).ok_or_else(|| D::Error::custom("a refusal has an error"))
    }
}
