"""Drives the hub with the official Python MCP client over Streamable HTTP.

Prints one JSON line with what it saw; the Rust test checks it.
"""

import asyncio
import json
import sys

from mcp import Client


async def main(url: str) -> None:
    async with Client(url) as client:
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
