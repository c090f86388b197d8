"""Drives `deploylens mcp` as a careless or hostile agent would, with the official Python MCP
client over stdio: SQL nested too deep, a cross join, a function asked for gigabytes, and a
store that changes under an open session. Prints one JSON object; used by
crates/deploylens-cli/tests/hostile.rs."""

import asyncio
import json
import subprocess
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def is_error(r):
    return bool(getattr(r, "is_error", getattr(r, "isError", False)))


def text(r):
    return "".join(c.text for c in r.content if getattr(c, "type", "") == "text")


async def main(binary: str, data_dir: str, more_root: str) -> None:
    params = StdioServerParameters(
        command=binary,
        args=["--data-dir", data_dir, "--quiet", "mcp", "--timeout", "5s", "--memory-mib", "64"],
    )
    out = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()

            async def sql(q):
                r = await session.call_tool("run_sql", {"sql": q})
                return {"is_error": is_error(r), "text": text(r)[:400]}

            out["deep"] = await sql("SELECT " + "+".join(["1"] * 2000))
            out["cross"] = await sql("SELECT a.event_id, b.event_id FROM events a CROSS JOIN events b")
            out["repeat"] = await sql("SELECT length(repeat('x', 300000000))")
            out["unnest"] = await sql("SELECT count(*) FROM unnest(range(1, 50000000))")
            out["before"] = await sql("SELECT count(*) AS n FROM events")
            # Another process commits while the session stays open.
            subprocess.run([binary, "--data-dir", data_dir, "--quiet", "ingest", more_root], check=True)
            out["after"] = await sql("SELECT count(*) AS n FROM events")
            r = await session.call_tool("search_past_fixes", {"error": "zz-new-failure-token disk quota exceeded on /srv"})
            out["search_after"] = {"is_error": is_error(r), "hits": json.loads(text(r))}
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
