"""Drives `deploylens mcp` with the official Python MCP client over stdio: lists the tools and
calls each one, printing one JSON object with what came back. Used by the Rust test
crates/deploylens-cli/tests/mcp.rs."""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main(binary: str, data_dir: str) -> None:
    params = StdioServerParameters(command=binary, args=["--data-dir", data_dir, "--quiet", "mcp"])
    out = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            out["server"] = init.server_info.name
            tools = await session.list_tools()
            out["tools"] = sorted(t.name for t in tools.tools)

            def text(result):
                return "".join(c.text for c in result.content if getattr(c, "type", "") == "text")

            r = await session.call_tool("search_past_fixes", {"error": "ERROR: Health check timeout after 45s", "limit": 3})
            out["search"] = {"is_error": bool(getattr(r, "is_error", getattr(r, "isError", False))), "hits": json.loads(text(r))}
            r = await session.call_tool("run_sql", {"sql": "SELECT repository, count(*) AS n FROM deployments GROUP BY repository ORDER BY repository"})
            out["sql"] = {"is_error": bool(getattr(r, "is_error", getattr(r, "isError", False))), "rows": json.loads(text(r))}
            r = await session.call_tool("run_sql", {"sql": "DROP VIEW deployments"})
            out["sql_refused"] = {"is_error": bool(getattr(r, "is_error", getattr(r, "isError", False))), "text": text(r)}
            r = await session.call_tool("deployment_summary", {"window": "all"})
            out["summary"] = {"is_error": bool(getattr(r, "is_error", getattr(r, "isError", False))), "reports": sorted(json.loads(text(r)).keys())}
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
