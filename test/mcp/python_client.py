"""The Python `mcp` client against Sluice's /mcp: initialize, list tools, call every tool.

Usage: python_client.py <mcp url> <token> <connection> <schema> <table> <sql>
Prints one JSON object: the server's name, the tool names, and each call's result as the
client parsed it (is_error, structured_content, text), for the test to check.
"""
import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
import mcp.types as types


def dump(result):
    return {
        "is_error": bool(result.is_error),
        "structured": result.structured_content,
        "text": "\n".join(getattr(c, "text", "") for c in result.content),
    }


async def main(url, token, connection, schema, table, sql):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http:
        async with streamable_http_client(url, http_client=http) as streams:
            read, write = streams[0], streams[1]
            info = types.Implementation(name="python-mcp-test", version="2.3.0")
            async with ClientSession(read, write, client_info=info) as session:
                init = await session.initialize()
                tools = await session.list_tools()
                calls = {
                    "list_connections": await session.call_tool("list_connections", {}),
                    "list_schemas": await session.call_tool("list_schemas", {"connection": connection}),
                    "list_tables": await session.call_tool("list_tables", {"connection": connection, "schema": schema}),
                    "describe_table": await session.call_tool("describe_table", {"connection": connection, "schema": schema, "table": table}),
                    "query": await session.call_tool("query", {"connection": connection, "sql": sql}),
                    "explain": await session.call_tool("explain", {"connection": connection, "sql": sql}),
                    "denied": await session.call_tool("query", {"connection": connection, "sql": "DROP TABLE customers"}),
                    "approval_status": await session.call_tool("approval_status", {"approvalId": "00000000-0000-4000-8000-000000000000"}),
                }
                print(json.dumps({
                    "server": init.server_info.name,
                    "tools": sorted(t.name for t in tools.tools),
                    "calls": {name: dump(r) for name, r in calls.items()},
                }))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
