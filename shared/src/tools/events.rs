//! Events: `publish_event`, `get_events`, `ack_events`.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::receipts::Receipt;
use super::refusal::Deleted;
use super::{
    ArgError, Params, Tool, check_count, check_len, check_non_empty, check_opt_len, check_range,
};
use crate::config::MAX_WAIT_SECONDS;
use crate::cursor;
use crate::level::SignalLevel;
use crate::wire::{Event, EventsPage, Reach};

/// The most events one `get_events` page holds.
pub const LIMIT_MAX: i64 = 1000;
/// The most channels one `get_events` reads (`channels` and `channel`
/// together): each is a posting list the read walks.
pub const READ_CHANNELS_MAX: usize = 64;
/// The most event types one `get_events` reads (`event_types`).
pub const READ_EVENT_TYPES_MAX: usize = 64;

/// The `publish_event` tool.
pub struct PublishEvent;

impl Tool for PublishEvent {
    const NAME: &'static str = "publish_event";
    const DESCRIPTION: &'static str = "Publish an event. Channels: all (default), session:<id> (direct message), repo:<name>, machine:<name>. Returns event_id.";
    type Params = PublishParams;
    type Reply = Published;
}

fn all() -> String {
    "all".to_owned()
}

/// The arguments (its schema is the catalog's input schema).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishParams {
    pub event_type: String,
    // Its size limit is the hub's (`--max-payload-bytes`), checked there.
    pub payload: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default = "all")]
    pub channel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    // An unknown level is stored as given (with a warning in the hub's log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = SignalLevel::NAMES))]
    pub signal_level: Option<String>,
}

impl PublishParams {
    /// A publish of `payload` as `event_type` on `channel`.
    pub fn new(event_type: &str, payload: &str, channel: &str) -> Self {
        Self {
            event_type: event_type.to_owned(),
            payload: payload.to_owned(),
            session_id: None,
            channel: channel.to_owned(),
            title: None,
            tags: None,
            correlation_id: None,
            signal_level: None,
        }
    }
}

const TAGS_MAX: usize = 32;

impl Params for PublishParams {
    fn check(&self) -> Result<(), ArgError> {
        check_non_empty("event_type", &self.event_type)?;
        check_len("event_type", &self.event_type, 128)?;
        check_non_empty("channel", &self.channel)?;
        check_len("channel", &self.channel, 256)?;
        check_opt_len("title", self.title.as_ref(), 256)?;
        if let Some(tags) = &self.tags {
            check_count("tags", tags, TAGS_MAX)?;
            for t in tags {
                check_len("a tag", t, 64)?;
            }
        }
        check_opt_len("correlation_id", self.correlation_id.as_ref(), 256)?;
        check_opt_len("signal_level", self.signal_level.as_ref(), 32)
    }
}

/// `publish_event`'s reply. A publish under a session that has ended is
/// stored anyway and says so (`deleted`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Published {
    pub event_id: u64,
    pub event_type: String,
    pub payload: String,
    pub channel: String,
    pub signal_level: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_deleted: Option<bool>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Deleted>,
    /// A direct message's recipient can be reached now by these (see
    /// [`SessionInfo::reach`](crate::wire::SessionInfo)); only on a
    /// `session:<id>` channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reach: Option<Vec<Reach>>,
    /// The same in words: how the recipient will see the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reach_note: Option<String>,
}

/// The `get_events` tool.
pub struct GetEvents;

impl Tool for GetEvents {
    const NAME: &'static str = "get_events";
    const DESCRIPTION: &'static str = "Get events after cursor. resume=true continues from the session's saved cursor and advances it; peek and filters (channel, channels, event_types, correlation_id) never advance it. Drain with order=asc while has_more. wait_seconds long-polls.";
    type Params = GetParams;
    type Reply = Page;
}

/// `get_events`' reply: an [`EventsPage`] whose events may carry receipts.
pub type Page = EventsPage<PageEvent>;

/// An event of a [`Page`]: with `receipts=true`, the reader's own direct
/// messages carry where they got to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PageEvent {
    #[serde(flatten)]
    pub event: Event,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

impl From<Page> for EventsPage<Event> {
    fn from(page: Page) -> Self {
        Self {
            events: page.events.into_iter().map(|e| e.event).collect(),
            next_cursor: page.next_cursor,
            has_more: page.has_more,
        }
    }
}

/// Which end of the bus a page starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first: drain a backlog, follow what arrives.
    Asc,
    /// Newest first.
    #[default]
    Desc,
}

impl Order {
    /// The names on the wire.
    pub const NAMES: [&'static str; 2] = ["asc", "desc"];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "asc" => Some(Self::Asc),
            "desc" => Some(Self::Desc),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Asc => "asc",
            Self::Desc => "desc",
        }
    }
}

fn fifty() -> i64 {
    50
}

fn desc() -> String {
    Order::Desc.as_str().to_owned()
}

/// `get_events`' arguments as they travel, text where a caller writes text;
/// its schema is the catalog's input schema. [`GetParams`] is what they mean.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-text" = true))]
    pub cursor: Option<String>,
    #[serde(default = "fifty")]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default = "desc")]
    #[schemars(extend("enum" = Order::NAMES))]
    pub order: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    #[serde(default)]
    pub resume: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    #[serde(default)]
    pub peek: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = SignalLevel::NAMES))]
    pub min_level: Option<String>,
    #[serde(default)]
    #[schemars(range(min = 0, max = 60))]
    pub wait_seconds: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipts: Option<bool>,
}

/// `get_events`' arguments, parsed: what a client builds and the hub reads.
/// On the wire they are [`GetArgs`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "GetArgs", into = "GetArgs")]
pub struct GetParams {
    /// Read after this event id; without one, from the newest (`desc`) or
    /// the oldest (`asc`).
    pub cursor: Option<u64>,
    /// 1 to [`LIMIT_MAX`].
    pub limit: usize,
    /// The reader: a plain read advances its saved cursor.
    pub session_id: Option<String>,
    pub order: Order,
    pub channel: Option<String>,
    pub channels: Option<Vec<String>>,
    /// Continue from the session's saved cursor (when no cursor is given).
    pub resume: bool,
    pub event_types: Option<Vec<String>>,
    /// Read without advancing the saved cursor.
    pub peek: bool,
    pub correlation_id: Option<String>,
    /// Leave out events below this level.
    pub min_level: Option<SignalLevel>,
    /// Hold an empty read open up to this long for something to arrive.
    pub wait_seconds: u64,
    /// Add receipts to the reader's own direct messages.
    pub receipts: Option<bool>,
}

impl Default for GetParams {
    fn default() -> Self {
        Self {
            cursor: None,
            limit: 50,
            session_id: None,
            order: Order::Desc,
            channel: None,
            channels: None,
            resume: false,
            event_types: None,
            peek: false,
            correlation_id: None,
            min_level: None,
            wait_seconds: 0,
            receipts: None,
        }
    }
}

impl GetParams {
    /// Newest first (the default), or oldest first.
    pub fn descending(&self) -> bool {
        self.order == Order::Desc
    }

    /// A cursor as a caller writes it (blank is none), parsed.
    pub fn parse_cursor(raw: &str) -> Result<Option<u64>, ArgError> {
        if raw.trim().is_empty() {
            return Ok(None);
        }
        cursor::parse(raw).map(Some).map_err(ArgError::Cursor)
    }
}

impl TryFrom<GetArgs> for GetParams {
    type Error = ArgError;

    /// Checks in the order a caller has always been told: limit, order,
    /// level, wait, then how many channels and types (at most
    /// [`READ_CHANNELS_MAX`] and [`READ_EVENT_TYPES_MAX`]), then the cursor.
    fn try_from(a: GetArgs) -> Result<Self, ArgError> {
        check_range(
            "limit",
            a.limit,
            1..=LIMIT_MAX,
            "; page with next_cursor for more",
        )?;
        let order = Order::parse(&a.order).ok_or_else(|| ArgError::Order(a.order.clone()))?;
        let min_level = match &a.min_level {
            Some(l) => Some(SignalLevel::parse(l).ok_or_else(|| ArgError::Level(l.clone()))?),
            None => None,
        };
        let max_wait = i64::try_from(MAX_WAIT_SECONDS).unwrap_or(i64::MAX);
        check_range("wait_seconds", a.wait_seconds, 0..=max_wait, "")?;
        let channels = a.channels.as_ref().map_or(0, Vec::len) + usize::from(a.channel.is_some());
        if channels > READ_CHANNELS_MAX {
            return Err(ArgError::TooMany {
                key: "channels",
                count: channels,
                max: READ_CHANNELS_MAX,
            });
        }
        let types = a.event_types.as_ref().map_or(0, Vec::len);
        if types > READ_EVENT_TYPES_MAX {
            return Err(ArgError::TooMany {
                key: "event_types",
                count: types,
                max: READ_EVENT_TYPES_MAX,
            });
        }
        let cursor = match &a.cursor {
            Some(raw) => Self::parse_cursor(raw)?,
            None => None,
        };
        Ok(Self {
            cursor,
            // In range: checked above.
            limit: usize::try_from(a.limit).unwrap_or(0),
            session_id: a.session_id,
            order,
            channel: a.channel,
            channels: a.channels,
            resume: a.resume,
            event_types: a.event_types,
            peek: a.peek,
            correlation_id: a.correlation_id,
            min_level,
            wait_seconds: u64::try_from(a.wait_seconds).unwrap_or(0),
            receipts: a.receipts,
        })
    }
}

impl From<GetParams> for GetArgs {
    fn from(p: GetParams) -> Self {
        Self {
            cursor: p.cursor.map(|c| c.to_string()),
            limit: i64::try_from(p.limit).unwrap_or(i64::MAX),
            session_id: p.session_id,
            order: p.order.as_str().to_owned(),
            channel: p.channel,
            channels: p.channels,
            resume: p.resume,
            event_types: p.event_types,
            peek: p.peek,
            correlation_id: p.correlation_id,
            min_level: p.min_level.map(|l| l.as_str().to_owned()),
            wait_seconds: i64::try_from(p.wait_seconds).unwrap_or(i64::MAX),
            receipts: p.receipts,
        }
    }
}

/// The schema is the wire form's.
impl JsonSchema for GetParams {
    fn schema_name() -> Cow<'static, str> {
        GetArgs::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        GetArgs::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        GetArgs::json_schema(generator)
    }
}

impl Params for GetParams {
    fn read(arguments: Map<String, Value>) -> Result<Self, ArgError> {
        let args: GetArgs = serde_json::from_value(Value::Object(arguments))
            .map_err(|e| ArgError::Shape(e.to_string()))?;
        Self::try_from(args)
    }
}

/// The `ack_events` tool.
pub struct AckEvents;

impl Tool for AckEvents {
    const NAME: &'static str = "ack_events";
    const DESCRIPTION: &'static str =
        "Advance a session's saved cursor to an event id it has handled (pairs with peek).";
    type Params = AckParams;
    type Reply = Acked;
}

/// The arguments (its schema is the catalog's input schema).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AckParams {
    pub session_id: String,
    // Parsed by the hub: a bad cursor is a refusal that shows the session's.
    #[schemars(extend("x-text" = true, "x-required" = "an event id such as a next_cursor"))]
    pub cursor: String,
    #[serde(default)]
    pub allow_rewind: bool,
}

impl Params for AckParams {}

/// `ack_events`' reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Acked {
    pub success: bool,
    pub session_id: String,
    pub cursor: String,
    pub previous_cursor: Option<String>,
}
