// The official TypeScript MCP SDK against the bus: over stdio to the proxy
// and over Streamable HTTP to the hub, every tool, the guide resource and a
// long-poll. Run by tests/clients (`make test-clients`), which passes
// CLIENTS_DIR (where the SDK is installed), HUB_URL, AGENT_EVENT_BUS_TOKEN and PROXY. Prints one
// JSON line: per transport, the tools called, and whether the guide and the
// long-poll worked. Any failure throws (exit code 1).
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.CLIENTS_DIR, "package.json"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");

const hub = process.env.HUB_URL;
// The hub's token: sent on every HTTP call, and inherited by the proxy.
const auth = { authorization: `Bearer ${process.env.AGENT_EVENT_BUS_TOKEN}` };

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// A publish from outside the client under test (a plain JSON-RPC POST).
async function publishElsewhere(eventType) {
  const res = await fetch(`${hub}/mcp`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: { name: "publish_event", arguments: { session_id: "elsewhere", event_type: eventType, payload: "p" } },
    }),
  });
  check(res.ok, `publish from elsewhere: HTTP ${res.status}`);
}

async function exercise(label, transport, viaProxy) {
  const client = new Client({ name: `sdk-${label}`, version: "1.0.0" });
  await client.connect(transport);
  const called = [];
  const call = async (name, args = {}) => {
    const result = await client.callTool({ name, arguments: args });
    check(!result.isError, `${label} ${name}(${JSON.stringify(args)}): ${JSON.stringify(result.content)}`);
    called.push(name);
    return result.structuredContent ?? JSON.parse(result.content[0].text);
  };

  const tools = (await client.listTools()).tools.map((t) => t.name);
  check(tools.length === 18, `${label}: ${tools.length} tools: ${tools}`);

  const registered = await call("register_session", { name: `sdk-${label}`, machine: "sdk-test", cwd: "/src/sdk" });
  const sessionId = registered.session_id;
  check(sessionId, `${label}: no session_id in ${JSON.stringify(registered)}`);
  // Through the proxy, session_id is filled in; over HTTP the client says it.
  const own = viaProxy ? {} : { session_id: sessionId };

  const sessions = await call("list_sessions");
  check(JSON.stringify(sessions).includes(sessionId), `${label}: own session not listed`);
  await call("list_channels");
  const published = await call("publish_event", { ...own, event_type: `sdk_${label}`, payload: "hello from the SDK" });
  const eventId = published.event_id;
  const page = await call("get_events", { ...own, order: "asc", limit: 100 });
  const mine = page.events.find((e) => e.id === eventId);
  check(mine && mine.session_id === sessionId, `${label}: event not stored under ${sessionId}`);
  await call("ack_events", { ...own, cursor: String(eventId) });
  await call("notify", { title: "agent-event-bus", message: `SDK over ${label}` });
  await call("message_status", { event_ids: [eventId] });

  const resource = `task:sdk-${label}`;
  const claimed = await call("claim", { ...own, resource, note: "the SDK test" });
  check(claimed.resource === resource, `${label}: claim gave ${JSON.stringify(claimed)}`);
  const claims = await call("list_claims", { prefix: "task:" });
  check(JSON.stringify(claims).includes(resource), `${label}: own claim not listed`);
  await call("claim", { ...own, resource, release: true });

  const webhook = await call("register_webhook", { url: "http://127.0.0.1:9/hook", channel: "nothing-matches" });
  const webhookId = webhook.webhook_id;
  await call("list_webhooks");
  await call("set_webhook_active", { webhook_id: webhookId, active: false });
  await call("list_webhook_deliveries", { webhook_id: webhookId });
  await call("redeliver_webhook", { webhook_id: webhookId, event_id: eventId });
  await call("test_webhook", { webhook_id: webhookId });
  await call("unregister_webhook", { webhook_id: webhookId });

  const guide = await client.readResource({ uri: "agent-event-bus://guide" });
  const guideOk = guide.contents.some((c) => (c.text ?? "").includes("publish_event"));

  // Long-poll from the newest event; the event published meanwhile ends it.
  const newest = (await call("get_events", { limit: 1, order: "desc" })).events[0].id;
  const poll = call("get_events", { cursor: String(newest), order: "asc", wait_seconds: 30 });
  await publishElsewhere(`sdk_${label}_wakes`);
  const woken = await poll;
  const longPollOk = woken.events.some((e) => e.event_type === `sdk_${label}_wakes`);

  await call("unregister_session", own);
  await client.close();
  return { called: [...new Set(called)], guide: guideOk, long_poll: longPollOk };
}

const stdio = await exercise(
  "stdio",
  new StdioClientTransport({
    command: process.env.PROXY,
    env: { ...process.env, AGENT_EVENT_BUS_URL: hub, AGENT_EVENT_BUS_SESSION_NAME: "sdk-stdio" },
    stderr: "ignore",
  }),
  true,
);
const http = await exercise(
  "http",
  new StreamableHTTPClientTransport(new URL(`${hub}/mcp`), { requestInit: { headers: auth } }),
  false,
);
console.log(JSON.stringify({ stdio, http }));
