"""Drives the real proxy with the official Python MCP client over stdio.

usage: stdio_client.py PROXY_BINARY HUB_URL
Prints one JSON line with what it saw; the Rust test checks it.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main(proxy: str, url: str) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AGENT_EVENT_BUS_URL": url,
        "AGENT_EVENT_BUS_SESSION_NAME": "python-client",
    }
    # Where the proxy finds the hub's credential, as its user's would.
    for name in ("AGENT_EVENT_BUS_TOKEN_FILE", "AGENT_EVENT_BUS_TOKEN"):
        if name in os.environ:
            env[name] = os.environ[name]
    params = StdioServerParameters(command=proxy, env=env)
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            published = await session.call_tool(
                "publish_event", {"event_type": "from_python", "payload": "hello"}
            )
            listed = await session.call_tool("list_sessions", {})
            print(
                json.dumps(
                    {
                        "server": init.server_info.name,
                        "protocol": str(init.protocol_version),
                        "tools": [t.name for t in tools.tools],
                        "published_error": bool(published.is_error),
                        "published": published.structured_content,
                        "listed_error": bool(listed.is_error),
                        "listed": listed.structured_content,
                    }
                )
            )


asyncio.run(main(sys.argv[1], sys.argv[2]))
