"""The Python MCP client driving mcp-snowflake-server (from PyPI, unchanged) over stdio, the server
pointed at Sluice as an agent would point it at Snowflake: --host --port --protocol http
--authenticator oauth --token. Calls its list, describe, read and write tools; prints one JSON object."""
import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

cfg = json.loads(sys.argv[1])


def content(result):
    return {
        'isError': bool(result.isError),
        'text': [c.text for c in result.content if getattr(c, 'type', '') == 'text'],
        'resources': [c.resource.text for c in result.content if getattr(c, 'type', '') == 'resource'],
    }


async def main():
    args = ['--account', cfg['account'], '--user', 'agent', '--host', '127.0.0.1', '--port', str(cfg['port']),
            '--protocol', 'http', '--authenticator', 'oauth', '--token', cfg['token'],
            '--database', 'SLUICE_TEST', '--schema', 'PUBLIC', '--allow_write', '--log_level', 'WARNING']
    env = {k: v for k, v in os.environ.items() if k in ('PATH', 'HOME', 'LANG', 'TMPDIR')}
    params = StdioServerParameters(command=cfg['server'], args=args, env=env)
    out = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            out['tools'] = sorted(t.name for t in (await session.list_tools()).tools)
            for name, arguments in cfg['calls']:
                try:
                    out[name] = content(await session.call_tool(name, arguments))
                except Exception as e:  # noqa: BLE001 - the test asserts on the error itself
                    out[name] = {'isError': True, 'text': [f'{type(e).__name__}: {e}'], 'resources': []}
    print(json.dumps(out))


asyncio.run(main())
