#!/usr/bin/env python3
"""deploylens benchmarks, side by side with DuckDB, in one run on the same files and cores.

Builds release, generates demo ecosystems with `deploylens demo`, then measures:
  ingest      JSONL -> Parquet: deploylens (full validation) vs DuckDB COPY ... read_json, and
              `cat` of the same files as the physical reference; events/s, MB/s, peak RSS
  refresh     every canned query: deploylens `report --all` vs the same SQL in DuckDB over the
              same Parquet; the answers are cross-checked (counts, rates, exact percentiles)
  live        append -> visible in /metrics (p50/p99 over 100 appends); idle CPU of `serve`
              watching 1,000 repositories; /metrics scrape latency with 1,000 x 3 series sets
  search      `fixes` search latency over one million past failures
and writes docs/benchmarks.md. Medians of repeated runs; ratios against DuckDB and cat.

    python3 bench/run.py [--sizes 100000,1000000,10000000] [--refresh-size 1000000] [--repeat 3] [--quick]
"""

import argparse
import datetime
import glob
import http.client
import json
import math
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("DEPLOYLENS_BIN", os.path.join(ROOT, "target", "release", "deploylens"))
AS_OF = "2026-01-01T00:00:00Z"


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def measured(cmd, stdout=subprocess.DEVNULL):
    """Runs a command; returns (seconds, peak RSS in MiB) of the process tree's largest child."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - start
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    if status != 0:
        raise RuntimeError(f"{cmd} failed: {err}")
    return elapsed, usage.ru_maxrss / 1024.0


def median_of(runs, f):
    values = [f() for _ in range(runs)]
    return statistics.median(v[0] for v in values), max(v[1] for v in values)


def files_of(eco):
    return sorted(glob.glob(os.path.join(eco, "*", ".chora", "memory", "events", "deployment.jsonl")))


DUCKDB_INGEST = """
import duckdb, sys
con = duckdb.connect()
con.execute("SET TimeZone='UTC'")
files = sys.argv[2:]
con.execute(f'''COPY (SELECT * FROM read_json({files!r}, format='newline_delimited', ignore_errors=true,
  columns={{timestamp:'TIMESTAMPTZ', event_type:'VARCHAR', repository:'VARCHAR', environment:'VARCHAR',
           version:'VARCHAR', status:'VARCHAR', duration_seconds:'DOUBLE', errors:'VARCHAR[]',
           notes:'VARCHAR', deployed_by:'VARCHAR', trace_id:'VARCHAR', services:'VARCHAR[]',
           metadata:'JSON', resolution_time_seconds:'DOUBLE'}}))
  TO '{sys.argv[1]}' (FORMAT parquet, COMPRESSION zstd)''')
"""


def bench_ingest(eco, repeat, work):
    files = files_of(eco)
    size = sum(os.path.getsize(f) for f in files)
    lines = sum(1 for f in files for _ in open(f, "rb"))

    def ours():
        d = os.path.join(work, "dl-ingest")
        shutil.rmtree(d, ignore_errors=True)
        return measured([BIN, "--data-dir", d, "--quiet", "ingest", eco])

    def duck():
        out = os.path.join(work, "duck.parquet")
        if os.path.exists(out):
            os.remove(out)
        return measured([sys.executable, "-c", DUCKDB_INGEST, out] + files)

    def cat():
        return measured(["cat"] + files)

    cat()  # warm the page cache for everyone
    result = {"bytes": size, "lines": lines}
    tools = [("deploylens", ours), ("duckdb", duck), ("cat", cat)]
    # Interleaved, so that a noisy moment of the machine falls on both sides alike.
    runs = {name: [] for name, _ in tools}
    for _ in range(repeat):
        for name, f in tools:
            runs[name].append(f())
    for name, values in runs.items():
        secs = statistics.median(v[0] for v in values)
        rss = max(v[1] for v in values)
        result[name] = {"seconds": secs, "peak_rss_mib": rss, "mb_per_s": size / 1e6 / secs, "lines_per_s": lines / secs, "runs": [v[0] for v in values]}
    return result


# --- canned queries in DuckDB -------------------------------------------------------------


def queries():
    out, views = {}, {}
    for path in sorted(glob.glob(os.path.join(ROOT, "queries", "**", "*.sql"), recursive=True)):
        text = open(path).read()
        name = re.search(r"-- name: (\w+)", text).group(1)
        body = "\n".join(l for l in text.splitlines() if not l.startswith("--"))
        (views if "/views/" in path else out)[name] = body
    return views, out


def to_duckdb(sql, start, end, days):
    sql = sql.replace("$window_days", f"CAST({days!r} AS DOUBLE)")
    sql = sql.replace("$start", f"TIMESTAMPTZ '{start}'").replace("$end", f"TIMESTAMPTZ '{end}'")
    # Timestamps as microseconds: DataFusion casts, DuckDB has epoch_us.
    sql = re.sub(r"CAST\(([\w.]+(?:_at|timestamp)) AS BIGINT\)", r"epoch_us(\1)", sql)
    return sql


def duckdb_refresh(data_dir, names, start, end, days):
    """Runs the named canned queries in DuckDB over deploylens' Parquet; returns (seconds, rows)."""
    import duckdb

    views, qs = queries()
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{data_dir}/store/commit-*/events.parquet')")
    con.execute(f"CREATE VIEW rejects AS SELECT * FROM read_parquet('{data_dir}/store/commit-*/rejects.parquet')")
    # Views may build on each other: create them in passes until all exist.
    pending = sorted(views)
    while pending:
        failed = []
        for name in pending:
            try:
                con.execute(f"CREATE VIEW {name} AS {to_duckdb(views[name], start, end, days)}")
            except duckdb.CatalogException:
                failed.append(name)
        if len(failed) == len(pending):
            raise RuntimeError(f"views that cannot be created in DuckDB: {failed}")
        pending = failed
    results, failed = {}, {}
    t = time.perf_counter()
    for name in names:
        try:
            cur = con.execute(to_duckdb(qs[name], start, end, days))
            cols = [d[0] for d in cur.description]
            results[name] = [dict(zip(cols, r)) for r in cur.fetchall()]
        except Exception as e:  # a construct DuckDB spells differently
            failed[name] = str(e).splitlines()[0]
    return time.perf_counter() - t, results, failed


def norm(v):
    if isinstance(v, datetime.datetime):
        return round(v.timestamp() * 1e6)
    if isinstance(v, str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", v):
        return round(datetime.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() * 1e6)
    if isinstance(v, list):
        return [norm(x) for x in v]
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


def same(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def cross_check(ours, theirs):
    """Row sets equal (order-insensitive), floats within 1e-9."""
    if len(ours) != len(theirs):
        return f"{len(ours)} rows vs {len(theirs)}"
    key = lambda r: json.dumps({k: norm(v) for k, v in r.items() if not isinstance(norm(v), float)}, sort_keys=True, default=str)
    a = sorted(({k: norm(v) for k, v in r.items()} for r in ours), key=key)
    b = sorted(({k: norm(v) for k, v in r.items()} for r in theirs), key=key)
    for x, y in zip(a, b):
        for k in x:
            if not same(x[k], y.get(k)):
                return f"{k}: {x[k]!r} vs {y.get(k)!r}"
    return None


def bench_refresh(eco, repeat, work, window="30d"):
    data = os.path.join(work, "dl-refresh")
    shutil.rmtree(data, ignore_errors=True)
    sh([BIN, "--data-dir", data, "--quiet", "ingest", eco])
    end = datetime.datetime.fromisoformat(AS_OF.replace("Z", "+00:00"))
    # The engine clamps the window to the first event's day; DuckDB gets the same bounds.
    first = json.loads(subprocess.run([BIN, "--data-dir", data, "sql", "-f", "json", "SELECT min(timestamp) AS t FROM events"], capture_output=True, check=True).stdout)[0]["t"]
    first_day = datetime.datetime.fromisoformat(first.replace("Z", "+00:00")).replace(hour=0, minute=0, second=0, microsecond=0)
    start = max(end - datetime.timedelta(days=30), first_day)
    days = (end - start).total_seconds() / 86400
    s, e = start.isoformat().replace("+00:00", "Z"), AS_OF
    _, qs = queries()
    names = sorted(qs)
    ours_t, _ = median_of(repeat, lambda: measured([BIN, "--data-dir", data, "report", "--all", "--window", window, "--as-of", AS_OF, "-f", "json"]))
    theirs_t = statistics.median(duckdb_refresh(data, names, s, e, days)[0] for _ in range(repeat))
    _, theirs, failed = duckdb_refresh(data, names, s, e, days)
    checks = {}
    for name in names:
        if name in failed:
            checks[name] = "not run in DuckDB: " + failed[name]
            continue
        out = subprocess.run([BIN, "--data-dir", data, "report", name, "--window", window, "--as-of", AS_OF, "-f", "json"], capture_output=True, check=True).stdout
        problem = cross_check(json.loads(out), theirs[name])
        checks[name] = problem or "agree"
    # DuckDB's timing covers the queries it could run; compare like with like.
    return {"deploylens_seconds": ours_t, "duckdb_seconds": theirs_t, "queries": len(names), "duckdb_ran": len(names) - len(failed), "checks": checks, "data": data}


# --- live ----------------------------------------------------------------------------------


def get(addr, path):
    host, port = addr.split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def store_events(addr):
    _, body = get(addr, "/metrics")
    m = re.search(rb"^deploylens_store_events (\S+)$", body, re.M)
    return float(m.group(1)) if m else -1


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_load(addr, seconds=60, clients=6):
    """A bounded mixed load on loopback: /metrics, POST /api/sql and /api/fixes."""
    import threading

    host, port = addr.split(":")
    stop = time.time() + seconds
    lat = {"metrics": [], "sql": [], "fixes": []}
    errors, shed = [], []

    def worker(w):
        i = w
        while time.time() < stop:
            kind = ["metrics", "sql", "fixes"][i % 3]
            i += 1
            c = http.client.HTTPConnection(host, int(port), timeout=60)
            t = time.perf_counter()
            try:
                if kind == "metrics":
                    c.request("GET", "/metrics")
                elif kind == "sql":
                    c.request("POST", "/api/sql", body="SELECT repository, environment, count(*) AS n FROM deployments GROUP BY 1, 2")
                else:
                    c.request("GET", "/api/fixes?q=Health%20check%20timeout%20after%2031s&limit=5")
                r = c.getresponse()
                r.read()
                if r.status == 429:
                    shed.append(kind)  # the concurrency cap answering, by design
                elif r.status != 200:
                    errors.append((kind, r.status))
            except Exception as e:
                errors.append((kind, str(e)))
            finally:
                c.close()
            lat[kind].append((time.perf_counter() - t) * 1e3)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    q = lambda v, x: sorted(v)[min(len(v) - 1, round((len(v) - 1) * x))] if v else float("nan")
    return {
        "seconds": seconds, "clients": clients, "errors": len(errors), "error_examples": errors[:5], "shed_429": len(shed),
        **{f"{k}_requests": len(v) for k, v in lat.items()},
        **{f"{k}_p50_ms": q(v, 0.5) for k, v in lat.items()},
        **{f"{k}_p99_ms": q(v, 0.99) for k, v in lat.items()},
    }


def bench_live(work, repos=1000, appends=100, load_seconds=60):
    eco = os.path.join(work, "eco-live")
    data = os.path.join(work, "dl-live")
    shutil.rmtree(eco, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)
    sh([BIN, "--quiet", "demo", eco, "--repos", str(repos), "--events", str(repos * 30), "--days", "3", "--seed", "5"], stdout=subprocess.DEVNULL)
    p = subprocess.Popen([BIN, "--data-dir", data, "serve", eco, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    addr = re.search(r"http://(\S+)", p.stdout.readline().decode()).group(1)
    try:
        t0 = time.time()
        while get(addr, "/readyz")[0] != 200:
            time.sleep(0.1)
        ready = time.time() - t0
        while store_events(addr) <= 0:
            time.sleep(0.1)
        time.sleep(3)
        # Idle CPU while watching.
        c0, w0 = cpu_seconds(p.pid), time.time()
        time.sleep(20)
        idle_cpu = (cpu_seconds(p.pid) - c0) / (time.time() - w0) * 100
        # Scrape latency.
        lat, size = [], 0
        for _ in range(50):
            t = time.perf_counter()
            _, body = get(addr, "/metrics")
            lat.append((time.perf_counter() - t) * 1e3)
            size = len(body)
        series = sum(1 for l in body.split(b"\n") if l and not l.startswith(b"#"))
        # Append -> visible.
        files = files_of(eco)
        seen, visible = store_events(addr), []
        rng = random.Random(1)
        for i in range(appends):
            f = rng.choice(files)
            repo = f.split(os.sep)[-5]
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            line = json.dumps({"timestamp": now, "event_type": "deployment", "repository": repo, "environment": "staging", "version": f"bench-{i}", "status": "success", "duration_seconds": 12.5})
            t = time.perf_counter()
            with open(f, "a") as h:
                h.write(line + "\n")
            while store_events(addr) < seen + 1:
                time.sleep(0.005)
                if time.perf_counter() - t > 30:
                    raise RuntimeError("append never became visible")
            visible.append((time.perf_counter() - t) * 1e3)
            seen += 1
            time.sleep(rng.uniform(0.05, 0.3))
        load = bench_load(addr, seconds=load_seconds)
    finally:
        p.terminate()
        p.wait()
    q = lambda v, x: sorted(v)[min(len(v) - 1, round((len(v) - 1) * x))]
    return {
        "repositories": repos, "ready_seconds": ready, "idle_cpu_percent": idle_cpu,
        "scrape_p50_ms": q(lat, 0.5), "scrape_p99_ms": q(lat, 0.99), "scrape_bytes": size, "series": series,
        "append_visible_p50_ms": q(visible, 0.5), "append_visible_p99_ms": q(visible, 0.99), "appends": appends,
        "load": load,
    }


def bench_search(n):
    binary = os.environ.get("DEPLOYLENS_SEARCH_BENCH")
    cmd = [binary] if binary else ["cargo", "run", "-q", "--release", "-p", "deploylens-knowledge", "--example", "search_bench", "--"]
    out = subprocess.run(cmd + [str(n), "2000"], cwd=ROOT, capture_output=True, check=True).stdout
    return json.loads(out)


# --- report --------------------------------------------------------------------------------


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    import duckdb

    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    version = subprocess.run([BIN, "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(), "rustc": rustc, "deploylens": version, "duckdb": duckdb.__version__, "date": datetime.date.today().isoformat()}


def write_report(res, path):
    m = res["machine"]
    L = ["# Benchmarks", "", f"Produced by `python3 bench/run.py` on {m['date']}: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}; {m['deploylens']} ({m['rustc']}, release profile), DuckDB {m['duckdb']} (Python package, default threads). Medians of {res['repeat']} runs; the machine is shared and noisy, so read ratios rather than absolutes. Rerun: `python3 bench/run.py`.", ""]
    L += ["## Ingest: JSONL to Parquet", "", "deploylens validates every line (rejects kept with file, line and reason), drops repeated events and commits atomically; DuckDB's `read_json(..., ignore_errors=true)` coerces or skips what it cannot read. `cat` is the cost of reading the files.", "",
          "| events | size | deploylens | DuckDB | cat | deploylens / DuckDB (throughput) | deploylens peak RSS | DuckDB peak RSS |", "|---|---|---|---|---|---|---|---|"]
    for n, r in sorted(res["ingest"].items(), key=lambda kv: int(kv[0])):
        d, k, c = r["deploylens"], r["duckdb"], r["cat"]
        L.append(f"| {int(n):,} | {r['bytes']/1e6:.0f} MB | {d['seconds']:.2f} s ({d['mb_per_s']:.0f} MB/s, {d['lines_per_s']/1e3:.0f}k lines/s) | {k['seconds']:.2f} s ({k['mb_per_s']:.0f} MB/s) | {c['seconds']:.2f} s ({c['mb_per_s']:.0f} MB/s) | {k['seconds']/d['seconds']:.2f}x | {d['peak_rss_mib']:.0f} MiB | {k['peak_rss_mib']:.0f} MiB |")
    r = res["refresh"]
    agree = sum(1 for v in r["checks"].values() if v == "agree")
    L += ["", "## Dashboard refresh: every canned query", "", f"`deploylens report --all --window 30d` (one process, {r['queries']} queries, including start-up and opening the store) against the same SQL run by DuckDB over the same Parquet files ({r['duckdb_ran']} of the queries; the others use a construct DuckDB spells differently).", "",
          "| deploylens | DuckDB | DuckDB / deploylens |", "|---|---|---|", f"| {r['deploylens_seconds']:.2f} s | {r['duckdb_seconds']:.2f} s | {r['duckdb_seconds']/r['deploylens_seconds']:.2f}x |", "",
          f"Cross-check of the answers (row sets equal, numbers within 1e-9, exact percentiles included): {agree} of {len(r['checks'])} queries agree.", ""]
    for name, v in sorted(r["checks"].items()):
        L.append(f"- `{name}`: {v}")
    lv = res["live"]
    L += ["", "## Live collection and scrape", "", f"`deploylens serve` watching {lv['repositories']:,} repositories (3 environments each).", "",
          "| figure | value | target |", "|---|---|---|",
          f"| append -> visible in `/metrics`, p50 | {lv['append_visible_p50_ms']:.0f} ms | |",
          f"| append -> visible in `/metrics`, p99 ({lv['appends']} appends) | {lv['append_visible_p99_ms']:.0f} ms | < 1 s |",
          f"| idle CPU while watching | {lv['idle_cpu_percent']:.2f} % of one core | |",
          f"| `/metrics` scrape, p50 | {lv['scrape_p50_ms']:.1f} ms | |",
          f"| `/metrics` scrape, p99 | {lv['scrape_p99_ms']:.1f} ms | < 50 ms |",
          f"| scrape size | {lv['scrape_bytes']/1e6:.1f} MB, {lv['series']:,} series | |",
          f"| start to ready (initial scan) | {lv['ready_seconds']:.1f} s | |"]
    ld = lv["load"]
    L += ["", f"### Mixed load ({ld['seconds']} s, {ld['clients']} clients on loopback, same server)", "",
          "| route | requests | p50 | p99 |", "|---|---|---|---|"]
    for k, route in [("metrics", "GET /metrics"), ("sql", "POST /api/sql"), ("fixes", "GET /api/fixes")]:
        L.append(f"| `{route}` | {ld[k + '_requests']:,} | {ld[k + '_p50_ms']:.1f} ms | {ld[k + '_p99_ms']:.1f} ms |")
    L += ["", f"Errors: {ld['errors']} (answers other than 200 and 429); answered 429 by the concurrency cap: {ld.get('shed_429', 'not counted apart')}."]
    s = res["search"]
    L += ["", "## Search of past fixes", "", f"`Index::search` over {s['failures']:,} past failures ({s['templates']} fingerprints), {s['queries']} queries (half reworded):", "",
          "| p50 | p99 | max | index build | target |", "|---|---|---|---|---|", f"| {s['p50_ms']:.2f} ms | {s['p99_ms']:.2f} ms | {s['max_ms']:.2f} ms | {s['build_seconds']:.1f} s | p99 < 50 ms |", ""]
    L += [kept_analysis(path)]
    L += ["## Raw figures", "", "```json", json.dumps(res, indent=1, default=str), "```", ""]
    open(path, "w").write("\n".join(L))


def kept_analysis(path):
    """The hand-written "What limits it" section of the previous report, kept across reruns."""
    try:
        text = open(path).read()
    except OSError:
        return ""
    m = re.search(r"^## What limits it.*?(?=^## Raw figures)", text, re.S | re.M)
    return m.group(0) if m else ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000,10000000")
    ap.add_argument("--refresh-size", type=int, default=1_000_000, help="events of the ecosystem the refresh runs on")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="small sizes, one run: checks the script")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--no-build", action="store_true", help="use the release binary as it is")
    a = ap.parse_args()
    if a.quick:
        a.sizes, a.repeat, a.refresh_size = "20000", 1, 20000
    if not a.no_build:
        sh(["cargo", "build", "--release", "-q", "-p", "deploylens-cli"], cwd=ROOT)
    work = tempfile.mkdtemp(prefix="deploylens-bench-")
    res = {"machine": machine(), "repeat": a.repeat, "ingest": {}}
    try:
        ecos = {}
        for n in [int(x) for x in a.sizes.split(",")]:
            eco = os.path.join(work, f"eco-{n}")
            sh([BIN, "--quiet", "demo", eco, "--repos", "50", "--events", str(n), "--seed", "1", "--end", AS_OF], stdout=subprocess.DEVNULL)
            ecos[n] = eco
            res["ingest"][str(n)] = bench_ingest(eco, a.repeat, work)
            print("ingest", n, json.dumps(res["ingest"][str(n)]), flush=True)
            if n != a.refresh_size:
                shutil.rmtree(eco, ignore_errors=True)  # 10M events take 2 GB
        if a.refresh_size not in ecos:
            sys.exit(f"--refresh-size {a.refresh_size} is not one of --sizes")
        res["refresh"] = bench_refresh(ecos[a.refresh_size], a.repeat, work)
        print("refresh", json.dumps({k: v for k, v in res["refresh"].items() if k != "checks"}), flush=True)
        res["live"] = bench_live(work, repos=100 if a.quick else 1000, appends=20 if a.quick else 100, load_seconds=10 if a.quick else 60)
        print("live", json.dumps(res["live"]), flush=True)
        res["search"] = bench_search(20000 if a.quick else 1_000_000)
        print("search", json.dumps(res["search"]), flush=True)
        write_report(res, a.out)
        bad = {k: v for k, v in res["refresh"]["checks"].items() if v != "agree" and not v.startswith("not run")}
        if bad:
            print("CROSS-CHECK FAILED:", bad, file=sys.stderr)
            sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
