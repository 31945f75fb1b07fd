"""Drives the hub with the official Python MCP client over Streamable HTTP,
presenting the hub's token from AGENT_EVENT_BUS_TOKEN.

Prints one JSON line with what it saw; the Rust test checks it.
"""

import asyncio
import json
import os
import sys

from mcp import Client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client


async def main(url: str) -> None:
    token = os.environ["AGENT_EVENT_BUS_TOKEN"]
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with Client(streamable_http_client(url, http_client=http)) as client:
        tools = await client.list_tools()
        reg = await client.call_tool("register_session", {"name": "py", "client_id": "py-1"})
        pub = await client.call_tool(
            "publish_event",
            {"session_id": "py-1", "event_type": "hello", "payload": "from python", "channel": "all"},
        )
        listed = await client.call_tool("list_sessions", {})
        bad = await client.call_tool("get_events", {"limit": 0})
        guide = await client.read_resource("agent-event-bus://guide")
        print(
            json.dumps(
                {
                    "protocol": str(client.protocol_version),
                    "tools": sorted(t.name for t in tools.tools),
                    "register": reg.structured_content,
                    "publish": pub.structured_content,
                    "sessions": listed.structured_content,
                    "bad_is_error": bad.is_error,
                    "guide": guide.contents[0].text[:40],
                }
            )
        )


asyncio.run(main(sys.argv[1]))
