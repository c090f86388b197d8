#!/usr/bin/env python3
"""deploylens benchmarks, side by side with DuckDB, in one run on the same files and cores.

Builds release, generates demo ecosystems with `deploylens demo`, then measures:
  ingest      JSONL -> the Delta table: deploylens (full validation) vs DuckDB COPY ... read_json
              to one Parquet file, and `cat` of the same files as the physical reference;
              events/s, MB/s, peak RSS; next to the figures of the folder store before it
  refresh     every canned query: deploylens `report --all` vs the same SQL in DuckDB over the
              table's current Parquet files (from the Delta log, via the `deltalake` package);
              the answers are cross-checked (counts, rates, exact percentiles)
  history     opening a table with 10,000 commits: `deploylens sql "SELECT count(*) ..."` vs
              the `deltalake` package opening the table and counting its rows
  collectors  four `serve` processes writing one table at once, each over its own roots, vs one
              `serve` over all of them with the same appends, vs one `ingest`; commit conflicts
  live        append -> visible in /metrics (p50/p99 over 100 appends); idle CPU of `serve`
              watching 1,000 repositories; /metrics scrape latency with 1,000 x 3 series sets
  wire        the dashboard panels' queries 1,000 times each over the Postgres protocol (psycopg)
              and over HTTP JSON (POST /api/sql): p50 and p99 side by side
  page        the dashboard page (GET /) in headless Chromium over 1,000 repositories: navigation
              start -> every panel rendered, median of 5 fresh loads; the same after a repository filter
  search      `fixes` search latency over one million past failures
  grouping    grouping accuracy on the labeled real log lines of testdata/logs, against Drain3
              (bench/grouping.py)
and writes docs/benchmarks.md. Medians of repeated runs; ratios against DuckDB, deltalake and cat.
Python packages: duckdb, deltalake, pyarrow, psycopg, drain3 and websocket-client (pip install duckdb deltalake pyarrow 'psycopg[binary]' drain3 websocket-client);
Debian's chromium for the page section (scripts/install-test-deps.sh installs chromium and websocket-client).

    python3 bench/run.py [--sizes 100000,1000000,10000000] [--refresh-size 1000000] [--repeat 5]
                         [--history-commits 10000] [--collectors-seconds 30] [--quick] [--no-build]
                         [--binary PATH] [--sections ingest,refresh,...] [--results FILE]
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
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
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


def delta_files(data_dir, table):
    """The Parquet files of the table's current version, as its Delta log lists them."""
    from deltalake import DeltaTable

    return DeltaTable(os.path.join(data_dir, table)).file_uris()


def delta_view(con, data_dir, table):
    """A DuckDB view over the current version of one of the store's Delta tables."""
    from deltalake import DeltaTable

    files = delta_files(data_dir, table)
    if files:
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({files!r})")
    else:  # a table without data files (no rejects): its empty Arrow table, with the schema
        empty = DeltaTable(os.path.join(data_dir, table)).to_pyarrow_table()
        con.register(f"{table}_empty", empty)
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM {table}_empty")


def duckdb_refresh(data_dir, names, start, end, days):
    """Runs the named canned queries in DuckDB over deploylens' Parquet; returns (seconds, rows)."""
    import duckdb

    views, qs = queries()
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    for table in ("events", "rejects"):
        delta_view(con, data_dir, table)
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


# The canned queries behind the dashboard's panels (docs/metrics.md#panels). deploy_frequency is
# left out: its days x repositories cross join is refused on the ad-hoc faces, both of them
# (it is served by GET /api/queries/deploy_frequency and by Prometheus).
PANEL_QUERIES = ("success_rate", "duration_percentiles", "failed_deployments", "environment_summary", "repository_comparison", "uptime")


def bind_literals(sql, start, end, days):
    """$start/$end/$window_days as the literals `deploylens` itself binds (engine.rs bind_window)."""
    ts = lambda t: f"arrow_cast('{t}', 'Timestamp(Microsecond, Some(\"UTC\"))')"
    return sql.replace("$window_days", f"CAST({float(days)!r} AS DOUBLE)").replace("$start", ts(start)).replace("$end", ts(end))


def bench_wire(work, events=100_000, rounds=1000):
    """The panels' queries, each `rounds` times, over the Postgres protocol (psycopg, text
    results, one connection) and over HTTP JSON (POST /api/sql, one keep-alive connection)."""
    import socket
    import psycopg

    eco = os.path.join(work, "eco-wire")
    data = os.path.join(work, "dl-wire")
    sh([BIN, "--quiet", "demo", eco, "--repos", "50", "--events", str(events), "--seed", "1", "--end", AS_OF], stdout=subprocess.DEVNULL)
    sh([BIN, "--quiet", "--data-dir", data, "ingest", eco], stdout=subprocess.DEVNULL)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        pg_port = s.getsockname()[1]
    proc = subprocess.Popen([BIN, "--quiet", "--data-dir", data, "serve", "--read-only", "--listen", "127.0.0.1:0",
                             "--pg-listen", f"127.0.0.1:{pg_port}", "--sql-timeout", "60s"], stdout=subprocess.PIPE, text=True)
    try:
        addr = proc.stdout.readline().split("http://")[1].split()[0]
        deadline = time.time() + 120
        while get(addr, "/readyz")[0] != 200:
            if time.time() > deadline:
                raise RuntimeError("serve did not become ready")
            time.sleep(0.2)
        _, canned = queries()
        end = AS_OF
        start = (datetime.datetime.fromisoformat(AS_OF.replace("Z", "+00:00")) - datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        sqls = {name: bind_literals(canned[name], start, end, 30) for name in PANEL_QUERIES}
        host, port = addr.split(":")
        http_conn = http.client.HTTPConnection(host, int(port), timeout=60)
        pg = psycopg.connect(f"host=127.0.0.1 port={pg_port} user=deploylens dbname=deploylens", autocommit=True)

        def over_http(sql):
            http_conn.request("POST", "/api/sql", body=sql.encode(), headers={"Content-Type": "text/plain"})
            r = http_conn.getresponse()
            body = r.read()
            if r.status != 200:
                raise RuntimeError(f"HTTP {r.status}: {body[:200]!r}")
            return len(json.loads(body))

        def over_pg(sql):
            return len(pg.execute(sql).fetchall())

        rows, lat = {}, {"pg": [], "http": []}
        for name, sql in sqls.items():  # warm the views once, and check both faces agree
            a, b = over_http(sql), over_pg(sql)
            if a != b:
                raise RuntimeError(f"{name}: {a} rows over HTTP, {b} over postgres")
            rows[name] = a
        for i in range(rounds):
            for name, sql in sqls.items():
                for face, run in (("pg", over_pg), ("http", over_http)) if i % 2 == 0 else (("http", over_http), ("pg", over_pg)):
                    t = time.perf_counter()
                    run(sql)
                    lat[face].append((time.perf_counter() - t) * 1e3)
        pg.close()
        http_conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        shutil.rmtree(eco, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)
    q = lambda v, x: sorted(v)[min(len(v) - 1, round((len(v) - 1) * x))]
    return {"events": events, "rounds": rounds, "queries": list(PANEL_QUERIES), "rows": rows,
            **{f"{f}_{k}_ms": q(v, x) for f, v in lat.items() for k, x in (("p50", 0.5), ("p99", 0.99))},
            **{f"{f}_requests": len(v) for f, v in lat.items()}}


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


def bench_search(n, binary=None):
    cmd = [binary] if binary else ["cargo", "run", "-q", "--release", "-p", "deploylens-knowledge", "--example", "search_bench", "--"]
    out = subprocess.run(cmd + [str(n), "2000"], cwd=ROOT, capture_output=True, check=True).stdout
    return json.loads(out)


def page_check_module():
    """The browser test driver (crates/deploylens-cli/tests/web/page_check.py): its DevTools helpers."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("page_check", os.path.join(ROOT, "crates", "deploylens-cli", "tests", "web", "page_check.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_page(work, repos=1000, events=200_000, days=30, loads=5):
    """The dashboard page in headless Chromium: navigation start -> body[data-state=ready] (every
    panel fetched and drawn) over `loads` fresh loads with the HTTP cache off, and after each the
    time from choosing a repository in the filter to the next ready."""
    pc = page_check_module()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(chromium):
        raise RuntimeError("no chromium: run scripts/install-test-deps.sh")
    eco, data = os.path.join(work, "eco-page"), os.path.join(work, "dl-page")
    shutil.rmtree(eco, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)
    sh([BIN, "--quiet", "demo", eco, "--repos", str(repos), "--events", str(events), "--days", str(days), "--seed", "11"], stdout=subprocess.DEVNULL)
    names = sorted({f.split(os.sep)[-5] for f in files_of(eco)})
    picks = [names[i * len(names) // loads] for i in range(loads)]
    server, rec, proc, profile = Server(data, [eco], "page", work), pc.Recorder(), None, None
    try:
        ready_seconds = server.wait_ready(timeout=300)
        proc, profile, cdp = pc.open_page(chromium, rec)
        first, filtered, panels = [], [], {}
        for repo in picks:
            pc.navigate(cdp, f"http://{server.addr}/")
            pc.wait_render(cdp, 0, 120, "first render")
            first.append(pc.evaluate(cdp, "window.__dl.ready[0]"))
            panels = pc.evaluate(cdp, pc.PANEL_INFO)
            filtered.append(pc.choose(cdp, {"#filter-repository": repo}, timeout=120, check=f"filter by {repo}"))
        cdp.pump(0.5)
        problems = [i for i in rec.items if not rec.excused(i)]
    finally:
        if proc:
            pc.stop_browser(proc, profile)
        server.stop()
        shutil.rmtree(eco, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)
    version = subprocess.run([chromium, "--version"], capture_output=True, text=True).stdout.split(" built on")[0].strip()
    return {"repositories": repos, "events": events, "days": days, "loads": loads, "chromium": version, "serve_ready_seconds": ready_seconds,
            "first_render_ms": first, "filtered_render_ms": filtered, "filtered_repositories": picks,
            "first_render_median_ms": statistics.median(first), "first_render_max_ms": max(first),
            "filtered_render_median_ms": statistics.median(filtered), "filtered_render_max_ms": max(filtered),
            "rows": {k: v["rows"] for k, v in panels.items()}, "console_problems": len(problems), "console_problem_examples": problems[:3]}


# --- a table with a long history ------------------------------------------------------------


DELTA_COUNT = """
import json, sys, time
t0 = time.perf_counter()
from deltalake import DeltaTable
t1 = time.perf_counter()
table = DeltaTable(sys.argv[1])
t2 = time.perf_counter()
if sys.argv[2] == "dataset":
    rows = table.to_pyarrow_dataset().count_rows()
else:  # the row counts of the log's statistics
    import pyarrow as pa, pyarrow.compute as pc
    rows = pc.sum(pa.table(table.get_add_actions(flatten=True)).column("num_records")).as_py()
t3 = time.perf_counter()
print(json.dumps({"rows": rows, "version": table.version(), "files": len(table.file_uris()), "import_s": t1 - t0, "open_s": t2 - t1, "count_s": t3 - t2}))
"""


def timed_output(cmd):
    """Runs a command; returns (seconds, peak RSS in MiB, stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        elapsed = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if status != 0:
            raise RuntimeError(f"{cmd} failed: {err.read().decode(errors='replace')}")
        return elapsed, usage.ru_maxrss / 1024.0, out.read()


def count_events(data):
    out = subprocess.run([BIN, "--data-dir", data, "--quiet", "sql", "-f", "json", "SELECT count(*) AS n FROM events"], capture_output=True, check=True).stdout
    return json.loads(out)[0]["n"]


def delta_log(table_dir):
    """Log entries, checkpoint files and the version of a Delta table, from its _delta_log/."""
    log = os.path.join(table_dir, "_delta_log")
    names = os.listdir(log)
    commits = [n for n in names if re.fullmatch(r"\d{20}\.json", n)]
    checkpoints = [n for n in names if ".checkpoint." in n and n.endswith(".parquet")]
    return {
        "log_entries": len(commits),
        "checkpoint_files": len(checkpoints),
        "version": max(int(n[:20]) for n in commits),
        "log_bytes": sum(os.path.getsize(os.path.join(log, n)) for n in commits),
        "last_checkpoint_bytes": max((os.path.getsize(os.path.join(log, n)) for n in checkpoints), default=0),
    }


def commit_stats(table_dir):
    """Commits per collector and retries recorded in the log's commitInfo entries."""
    log = os.path.join(table_dir, "_delta_log")
    per, ops, retries, metadata = {}, {}, 0, []
    for n in sorted(os.listdir(log)):
        if not re.fullmatch(r"\d{20}\.json", n):
            continue
        for line in open(os.path.join(log, n)):
            action = json.loads(line)
            if "metaData" in action:
                metadata.append({"version": int(n[:20]), "id": action["metaData"].get("id")})
            info = action.get("commitInfo")
            if info is None:
                continue
            ops[info.get("operation", "?")] = ops.get(info.get("operation", "?"), 0) + 1
            who = (info.get("deploylens") or {}).get("collector")
            if who:
                per[who] = per.get(who, 0) + 1
            retries += int((info.get("operationMetrics") or {}).get("numRetries") or 0)
    return {"commits_by_collector": per, "operations": ops, "recorded_retries": retries, "metadata_entries": metadata}


def build_history(data, repos, work):
    """One commit per event: one `ingest --commit-rows 1` per repository, all at once, each its
    own collector (the first one creates the table before the others start)."""
    procs, errs = [], []
    t0 = time.perf_counter()
    for i, repo in enumerate(repos):
        err = open(os.path.join(work, f"history-{i}.err"), "wb")
        errs.append(err)
        procs.append(subprocess.Popen([BIN, "--data-dir", data, "ingest", repo, "--commit-rows", "1", "--collector-id", f"h{i + 1}"], stdout=subprocess.DEVNULL, stderr=err))
        while i == 0 and not os.path.exists(os.path.join(data, "events", "_delta_log", f"{1:020}.json")):
            if procs[0].poll() is not None:
                break
            time.sleep(0.05)
    rss = 0.0
    for p in procs:
        _, status, usage = os.wait4(p.pid, 0)
        rss = max(rss, usage.ru_maxrss / 1024.0)
        if status != 0:
            raise RuntimeError(f"history ingest failed: {open(errs[procs.index(p)].name).read()[-2000:]}")
    secs = time.perf_counter() - t0
    for e in errs:
        e.close()
    text = re.sub(r"\x1b\[[0-9;]*m", "", "".join(open(e.name, errors="replace").read() for e in errs))
    conflicts = {k: sum(1 for l in text.splitlines() if mark in l) for k, mark in CONFLICT_MARKS.items()}
    # Wall time per commit along the history, from the commit timestamps of the log.
    log = os.path.join(data, "events", "_delta_log")
    stamps = {}
    for n in os.listdir(log):
        if re.fullmatch(r"\d{20}\.json", n):
            for line in open(os.path.join(log, n)):
                info = json.loads(line).get("commitInfo")
                if info:
                    stamps[int(n[:20])] = info["timestamp"]
    vs = sorted(stamps)
    step = max(1, len(vs) // 10)
    per_commit = [{"versions": f"{vs[a]}-{vs[min(a + step, len(vs) - 1)]}", "ms_per_commit": (stamps[vs[min(a + step, len(vs) - 1)]] - stamps[vs[a]]) / max(1, min(a + step, len(vs) - 1) - a)} for a in range(1, len(vs) - 1, step)]
    return {"writers": len(repos), "build_seconds": secs, "build_commits_per_s": (len(vs) - 1) / secs, "build_peak_rss_mib": rss, "build_conflicts": conflicts, "build_ms_per_commit": per_commit}


def bench_history(work, commits, repeat, writers=1):
    """Opening a table whose log has `commits` entries (one event each) against one commit of the
    same events; deploylens `sql` (start-up, opening, the query) vs the deltalake package."""
    eco = os.path.join(work, "eco-history")
    shutil.rmtree(eco, ignore_errors=True)
    sh([BIN, "--quiet", "demo", eco, "--repos", str(writers), "--events", str(commits), "--bad-fraction", "0", "--seed", "3", "--end", AS_OF], stdout=subprocess.DEVNULL)
    long_t = os.path.join(work, "dl-history")
    flat = os.path.join(work, "dl-flat")
    for d in (long_t, flat):
        shutil.rmtree(d, ignore_errors=True)
    build = build_history(long_t, sorted(glob.glob(os.path.join(eco, "*"))), work)
    flat_s, _ = measured([BIN, "--data-dir", flat, "--quiet", "ingest", eco])
    result = {"commits": commits, **build, "tables": {}}
    start_ours = statistics.median(measured([BIN, "--version"])[0] for _ in range(repeat))
    start_py = statistics.median(measured([sys.executable, "-c", "import deltalake, pyarrow.dataset"])[0] for _ in range(repeat))
    result["startup"] = {"deploylens_version_seconds": start_ours, "python_import_seconds": start_py}
    query = "SELECT count(*) AS n FROM events"
    for name, d in (("long", long_t), ("flat", flat)):
        table = os.path.join(d, "events")
        info = delta_log(table)
        ours, theirs, inner, stats = [], [], [], []
        n_ours = n_theirs = None
        for _ in range(repeat):  # interleaved
            s, rss, out = timed_output([BIN, "--data-dir", d, "--quiet", "sql", "-f", "json", query])
            ours.append((s, rss))
            n_ours = json.loads(out)[0]["n"]
            s, rss, out = timed_output([sys.executable, "-c", DELTA_COUNT, table, "dataset"])
            theirs.append((s, rss))
            inner.append(json.loads(out))
            n_theirs = inner[-1]["rows"]
            s, rss, out = timed_output([sys.executable, "-c", DELTA_COUNT, table, "stats"])
            stats.append({**json.loads(out), "process_s": s})
        result["tables"][name] = {
            **info,
            "data_files": inner[-1]["files"],
            "rows_deploylens": n_ours,
            "rows_deltalake": n_theirs,
            "deploylens_seconds": statistics.median(v[0] for v in ours),
            "deltalake_seconds": statistics.median(v[0] for v in theirs),
            "deltalake_open_seconds": statistics.median(v["open_s"] for v in inner),
            "deltalake_count_seconds": statistics.median(v["count_s"] for v in inner),
            "deltalake_stats_seconds": statistics.median(v["process_s"] for v in stats),
            "deltalake_stats_count_seconds": statistics.median(v["count_s"] for v in stats),
            "rows_deltalake_stats": stats[-1]["rows"],
            "deploylens_peak_rss_mib": max(v[1] for v in ours),
            "deltalake_peak_rss_mib": max(v[1] for v in theirs),
            "deploylens_runs": [v[0] for v in ours],
            "deltalake_runs": [v[0] for v in theirs],
        }
    result["flat_build_seconds"] = flat_s
    shutil.rmtree(eco, ignore_errors=True)
    shutil.rmtree(flat, ignore_errors=True)
    return result


# --- many collectors on one table ------------------------------------------------------------


CONFLICT_MARKS = {
    "table_updated": "table updated during transaction",
    "version_exists": "version already exists",
    "entry_exists": "commit entry already exists",
    "conflict_aborted": "conflict detected, aborting transaction",
    "commit_failed": "commit failed",
}


class Server:
    """A `deploylens serve` process; stdout and stderr go to files."""

    def __init__(self, data, roots, collector, work, env=None):
        self.name = collector
        self.out_path = os.path.join(work, f"serve-{collector}.out")
        self.err_path = os.path.join(work, f"serve-{collector}.err")
        self.out, self.err = open(self.out_path, "wb"), open(self.err_path, "wb")
        cmd = [BIN, "--data-dir", data, "serve", *roots, "--listen", "127.0.0.1:0", "--collector-id", collector]
        self.p = subprocess.Popen(cmd, stdout=self.out, stderr=self.err, env=env)
        self.addr = None

    def wait_ready(self, timeout=120):
        t0 = time.time()
        while self.addr is None:
            if self.p.poll() is not None:
                raise RuntimeError(f"serve {self.name} exited: {open(self.err_path).read()[-2000:]}")
            m = re.search(r"deploylens serving\S* http://(\S+)", open(self.out_path).read())
            if m:
                self.addr = m.group(1)
            elif time.time() - t0 > timeout:
                raise RuntimeError(f"serve {self.name} printed no address")
            else:
                time.sleep(0.05)
        while get(self.addr, "/readyz")[0] != 200:
            if time.time() - t0 > timeout:
                raise RuntimeError(f"serve {self.name} never ready")
            time.sleep(0.1)
        return time.time() - t0

    def metric(self, name):
        _, body = get(self.addr, "/metrics")
        m = re.search(rb"^" + name.encode() + rb" (\S+)$", body, re.M)
        return float(m.group(1)) if m else -1.0

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        self.out.close()
        self.err.close()
        return rc

    def stderr_counts(self):
        text = re.sub(r"\x1b\[[0-9;]*m", "", open(self.err_path, errors="replace").read())
        counts = {k: sum(1 for l in text.splitlines() if mark in l) for k, mark in CONFLICT_MARKS.items()}
        counts["stderr_lines"] = len(text.splitlines())
        counts["examples"] = [l[:300] for l in text.splitlines() if any(m in l for m in CONFLICT_MARKS.values())][:3]
        return counts


def line_maker(path, root_index):
    """Valid, distinct events for one file: its repository, an environment of the schema's enum,
    the time of writing (never in the future)."""
    repo = path.split(os.sep)[-5]
    envs = ("production", "staging", "development")
    state = {"i": 0, "ts": "", "at": 0.0}

    def make():
        i = state["i"]
        state["i"] += 1
        now = time.time()
        if now - state["at"] > 0.01:  # the clock read at most every 10 ms
            state["at"] = now
            state["ts"] = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        status = "failure" if i % 17 == 0 else "success"
        return (f'{{"timestamp":"{state["ts"]}","event_type":"deployment","repository":"{repo}","environment":"{envs[i % 3]}",'
                f'"version":"load-{root_index}-{i}","status":"{status}","duration_seconds":{10 + i % 300}.5,"deployed_by":"ci_cd"}}\n').encode()

    return make


def append_lines(files, root_index, stop_at, quota, counts, first, lock):
    """Appends lines round-robin to `files` as fast as one thread can, until `stop_at` or `quota`."""
    fds = [os.open(f, os.O_WRONLY | os.O_APPEND) for f in files]
    makers = [line_maker(f, root_index) for f in files]
    n = 0
    with lock:
        first.append(time.time())
    try:
        while (quota is None or n < quota) and (stop_at is None or (n % 64 or time.time() < stop_at)):
            k = n % len(fds)
            os.write(fds[k], makers[k]())
            n += 1
    finally:
        for fd in fds:
            os.close(fd)
        counts[root_index] = n


def run_collectors(data, roots, collectors, work, seconds, quotas, max_lines):
    """Starts one `serve` per group of roots, appends to every root at once, and times until
    every line is stored. `quotas` (lines per root) replaces `seconds` when given."""
    servers = [Server(data, group, cid, work) for cid, group in collectors]
    try:
        ready = [s.wait_ready() for s in servers]
        baseline = count_wait(servers)
        files = {i: files_of(r) for i, r in enumerate(roots)}
        counts, first, lock = {}, [], threading.Lock()
        per_root_cap = max_lines // len(roots)
        stop_at = None if quotas else time.time() + seconds
        threads = [threading.Thread(target=append_lines, args=(files[i], i, stop_at, quotas[i] if quotas else per_root_cap, counts, first, lock)) for i in range(len(roots))]
        t0 = time.time()
        for t in threads:
            t.start()
        timeline = []
        while any(t.is_alive() for t in threads):
            time.sleep(1)
            try:
                timeline.append((round(time.time() - t0, 1), sum(s.metric("deploylens_events_ingested_total") for s in servers) - baseline))
            except OSError:
                pass
        for t in threads:
            t.join()
        appended = sum(counts.values())
        t_appended = time.time()
        start = min(first)
        while True:
            stored = sum(s.metric("deploylens_events_ingested_total") for s in servers) - baseline
            if stored >= appended:
                break
            if time.time() - t_appended > 900:
                raise RuntimeError(f"only {stored} of {appended} appended lines stored after 15 minutes")
            time.sleep(0.1)
        t_stored = time.time()
        per_server = {s.name: {k: s.metric(k) for k in ("deploylens_commits_total", "deploylens_commit_errors_total", "deploylens_compactions_total", "deploylens_events_ingested_total")} for s in servers}
    finally:
        rcs = {s.name: s.stop() for s in servers}
    stderr = {s.name: s.stderr_counts() for s in servers}
    total = count_events(data)
    return {
        "collectors": len(servers),
        "ready_seconds": max(ready),
        "appended": appended,
        "appended_per_root": [counts[i] for i in range(len(roots))],
        "append_seconds": t_appended - start,
        "append_lines_per_s": appended / (t_appended - start),
        "stored_seconds": t_stored - start,
        "drain_seconds": t_stored - t_appended,
        "events_per_s": appended / (t_stored - start),
        "events_in_table": total,
        "events_before": baseline,
        "exit_codes": rcs,
        "per_collector": per_server,
        "conflicts": {k: sum(v[k] for v in stderr.values()) for k in CONFLICT_MARKS},
        "stderr": stderr,
        "log": {**delta_log(os.path.join(data, "events")), **commit_stats(os.path.join(data, "events"))},
        "timeline": timeline,
    }


def count_wait(servers, settle=2.0):
    """Events stored by the servers' initial scans, once the sum stops moving."""
    last, since = None, time.time()
    while True:
        n = sum(s.metric("deploylens_events_ingested_total") for s in servers)
        if n != last:
            last, since = n, time.time()
        elif n > 0 and time.time() - since >= settle:
            return n
        time.sleep(0.2)


def bench_collectors(work, seconds, max_lines, roots_n=4, repos=5, events=2000):
    """Four collectors writing one local table at once vs one collector with the same appends."""
    pristine = []
    end = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) - datetime.timedelta(minutes=1)
    for i in range(roots_n):
        r = os.path.join(work, f"roots-pristine-{i}")
        shutil.rmtree(r, ignore_errors=True)
        sh([BIN, "--quiet", "demo", r, "--repos", str(repos), "--events", str(events), "--days", "3", "--bad-fraction", "0", "--seed", str(20 + i), "--end", end.isoformat().replace("+00:00", "Z")], stdout=subprocess.DEVNULL)
        pristine.append(r)

    def fresh(tag):
        roots = []
        for i, p in enumerate(pristine):
            r = os.path.join(work, f"roots-{tag}-{i}")
            shutil.rmtree(r, ignore_errors=True)
            shutil.copytree(p, r)
            roots.append(r)
        data = os.path.join(work, f"dl-{tag}")
        shutil.rmtree(data, ignore_errors=True)
        return roots, data

    roots, data = fresh("four")
    four = run_collectors(data, roots, [(f"c{i + 1}", [r]) for i, r in enumerate(roots)], work, seconds, None, max_lines)
    print("collectors four", json.dumps({k: v for k, v in four.items() if k not in ("timeline", "stderr")}), flush=True)
    shutil.rmtree(data, ignore_errors=True)
    # The same appends, the same number per root, through one collector over all four roots.
    roots1, data1 = fresh("one")
    one = run_collectors(data1, roots1, [("c1", roots1)], work, None, four["appended_per_root"], max_lines)
    print("collectors one", json.dumps({k: v for k, v in one.items() if k not in ("timeline", "stderr")}), flush=True)
    shutil.rmtree(data1, ignore_errors=True)
    # One batch ingest of the resulting files (initial events and appends) into a fresh table.
    files = [f for r in roots1 for f in files_of(r)]
    lines = sum(1 for f in files for _ in open(f, "rb"))
    ing = os.path.join(work, "dl-one-ingest")
    secs, rss = measured([BIN, "--data-dir", ing, "--quiet", "ingest", *roots1])
    stored = count_events(ing)
    ingest = {"lines": lines, "events": stored, "seconds": secs, "events_per_s": stored / secs, "peak_rss_mib": rss}
    for r in roots + roots1 + pristine:
        shutil.rmtree(r, ignore_errors=True)
    shutil.rmtree(ing, ignore_errors=True)
    return {"roots": roots_n, "repositories_per_root": repos, "initial_events_per_root": events, "seconds": seconds, "max_lines": max_lines, "four": four, "one": one, "ingest": ingest}


# --- report --------------------------------------------------------------------------------


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    import duckdb

    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    version = subprocess.run([BIN, "--version"], capture_output=True, text=True).stdout.strip()
    import deltalake

    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(), "rustc": rustc, "deploylens": version, "binary": BIN, "duckdb": duckdb.__version__, "deltalake": deltalake.__version__, "date": datetime.date.today().isoformat()}


def write_report(res, path):
    m = res["machine"]
    L = ["# Benchmarks", "", f"Produced by `python3 bench/run.py` on {m['date']}: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}; {m['deploylens']} ({m['rustc']}, release profile), DuckDB {m['duckdb']} and deltalake {m['deltalake']} (Python packages, default threads). The store is two Delta Lake tables, `events/` and `rejects/`. Medians of {res['repeat']} runs; the machine is shared and noisy, so read ratios rather than absolutes. Rerun: `python3 bench/run.py`.{res.get('sizes_note', '')}{resumed_note(res)}", ""]
    L += ["## Ingest: JSONL to the Delta table", "", "deploylens validates every line (rejects kept with file, line and reason), drops repeated events and commits each batch of at most 100,000 rows as one Delta log entry; DuckDB's `read_json(..., ignore_errors=true)` coerces or skips what it cannot read and writes one Parquet file. `cat` is the cost of reading the files.", "",
          "| events | size | deploylens | DuckDB | cat | deploylens / DuckDB (throughput) | deploylens peak RSS | DuckDB peak RSS |", "|---|---|---|---|---|---|---|---|"]
    for n, r in sorted(res["ingest"].items(), key=lambda kv: int(kv[0])):
        d, k, c = r["deploylens"], r["duckdb"], r["cat"]
        L.append(f"| {int(n):,} | {r['bytes']/1e6:.0f} MB | {d['seconds']:.2f} s ({d['mb_per_s']:.0f} MB/s, {d['lines_per_s']/1e3:.0f}k lines/s) | {k['seconds']:.2f} s ({k['mb_per_s']:.0f} MB/s) | {c['seconds']:.2f} s ({c['mb_per_s']:.0f} MB/s) | {k['seconds']/d['seconds']:.2f}x | {d['peak_rss_mib']:.0f} MiB | {k['peak_rss_mib']:.0f} MiB |")
    b = res.get("before_delta")
    if b:
        L += ["", "### Before and after the Delta table", "",
              f"The \"before\" figures are those of the folder store (`store/commit-*/events.parquet`), from an earlier run ({b['date']}, {b['deploylens']}), not from this run, {same_machine(b, m)}. DuckDB did the same work both times, so its change between the two runs shows how much the machine itself moved.", "",
              "| events | deploylens before | deploylens now | now / before (time) | DuckDB before | DuckDB now | deploylens / DuckDB (throughput) before | now |", "|---|---|---|---|---|---|---|---|"]
        for n, r in sorted(res["ingest"].items(), key=lambda kv: int(kv[0])):
            old = b["ingest"].get(n)
            if not old:
                continue
            d, k = r["deploylens"]["seconds"], r["duckdb"]["seconds"]
            ok = old.get("duckdb_seconds")
            L.append(f"| {int(n):,} | {old['seconds']:.2f} s | {d:.2f} s | {d/old['seconds']:.2f}x | {ok:.2f} s | {k:.2f} s | {ok/old['seconds']:.2f}x | {k/d:.2f}x |" if ok else
                     f"| {int(n):,} | {old['seconds']:.2f} s | {d:.2f} s | {d/old['seconds']:.2f}x | | {k:.2f} s | | {k/d:.2f}x |")
    r = res["refresh"]
    agree = sum(1 for v in r["checks"].values() if v == "agree")
    L += ["", "## Dashboard refresh: every canned query", "", f"`deploylens report --all --window 30d` (one process, {r['queries']} queries, including start-up and opening the store) against the same SQL run by DuckDB over the Parquet files of the tables' current versions, as the `deltalake` package lists them from the Delta log ({r['duckdb_ran']} of the queries; the others use a construct DuckDB spells differently).", "",
          "| deploylens | DuckDB | DuckDB / deploylens |", "|---|---|---|", f"| {r['deploylens_seconds']:.2f} s | {r['duckdb_seconds']:.2f} s | {r['duckdb_seconds']/r['deploylens_seconds']:.2f}x |", "",
          f"Cross-check of the answers (row sets equal, numbers within 1e-9, exact percentiles included): {agree} of {len(r['checks'])} queries agree.", ""]
    for name, v in sorted(r["checks"].items()):
        L.append(f"- `{name}`: {v}")
    h = res.get("history")
    if h:
        lg, fl = h["tables"]["long"], h["tables"]["flat"]
        L += ["", f"## Opening a table with a long history", "",
              f"The same {h['commits']:,} events, stored once with one commit per event (`ingest --commit-rows 1`: {lg['log_entries']:,} log entries, {lg['checkpoint_files']} checkpoint files, {lg['data_files']:,} data files) and once in one commit. deploylens: `deploylens sql \"SELECT count(*) FROM events\"`, a whole process (start-up, opening both tables, planning, the query). deltalake: a Python process that imports `deltalake`, opens the table (`DeltaTable(path)`) and counts its rows through `to_pyarrow_dataset().count_rows()`.", "",
              "| table | deploylens `sql` | deltalake, whole process | of which open | of which count (dataset) | deltalake / deploylens | deltalake, count from the log's statistics (whole process) |", "|---|---|---|---|---|---|---|"]
        for name, t in (("one commit per event", lg), ("one commit", fl)):
            L.append(f"| {name} ({plural(t['log_entries'], 'log entry', 'log entries')}, {plural(t['checkpoint_files'], 'checkpoint')}, {plural(t['data_files'], 'data file')}) | {t['deploylens_seconds']*1e3:.0f} ms | {t['deltalake_seconds']*1e3:.0f} ms | {t['deltalake_open_seconds']*1e3:.0f} ms | {t['deltalake_count_seconds']*1e3:.0f} ms | {t['deltalake_seconds']/t['deploylens_seconds']:.2f}x | {t['deltalake_stats_seconds']*1e3:.0f} ms |")
        st = h["startup"]
        L += ["", f"Start-up alone: `deploylens --version` {st['deploylens_version_seconds']*1e3:.0f} ms; `python3 -c \"import deltalake, pyarrow.dataset\"` {st['python_import_seconds']*1e3:.0f} ms. Both counted {lg['rows_deploylens']:,} and {lg['rows_deltalake']:,} rows. Writing the {h['commits']:,} commits ({writers_phrase(h['writers'])}) took {h['build_seconds']:.0f} s: {h['build_commits_per_s']:.1f} commits/s, from {h['build_ms_per_commit'][0]['ms_per_commit']:.0f} ms per commit over versions {h['build_ms_per_commit'][0]['versions']} to {h['build_ms_per_commit'][-1]['ms_per_commit']:.0f} ms over versions {h['build_ms_per_commit'][-1]['versions']} (peak RSS {h['build_peak_rss_mib']:.0f} MiB; conflicts retried {h['build_conflicts']['table_updated']} + {h['build_conflicts']['version_exists']}, commits failed {h['build_conflicts']['commit_failed']}); the log is {lg['log_bytes']/1e6:.1f} MB of JSON and the last checkpoint {lg['last_checkpoint_bytes']/1e6:.1f} MB."]
    c = res.get("collectors")
    if c:
        f4, f1, ig = c["four"], c["one"], c["ingest"]
        L += ["", "## Four collectors writing one table", "",
              f"Four `deploylens serve ROOT_i --collector-id cI` processes on one local table, each over its own root ({c['repositories_per_root']} repositories, {c['initial_events_per_root']:,} events each to start with). One Python thread per root appends valid, distinct lines (one `write` each, round-robin over the root's files) as fast as it can for {c['seconds']} s; the same numbers of lines per root then go through one `serve` over all four roots, and the files as they end up through one `ingest` into a fresh table. Events per second: appended lines / time from the first append until every collector's `deploylens_events_ingested_total` counts them all. The appending threads share the {m['cores']} cores with the collectors.", "",
              "| | lines appended | appending took | all stored after | events/s | commits | conflicts retried (table updated + version taken) | events in the table |", "|---|---|---|---|---|---|---|---|"]
        for name, r in (("four collectors", f4), ("one collector", f1)):
            commits = sum(v["deploylens_commits_total"] for v in r["per_collector"].values())
            conf = r["conflicts"]
            L.append(f"| {name} | {r['appended']:,} | {r['append_seconds']:.1f} s | {r['stored_seconds']:.1f} s | {r['events_per_s']:,.0f} | {commits:,.0f} | {conf['table_updated']} + {conf['version_exists']} | {r['events_in_table']:,} of {r['events_before'] + r['appended']:,.0f} |")
        L.append(f"| one `ingest` of the same files | {ig['lines']:,} (all lines) | | {ig['seconds']:.1f} s | {ig['events_per_s']:,.0f} | | | {ig['events']:,} |")
        conf = f4["conflicts"]
        L += ["", f"Four collectors against one: {f4['events_per_s']/f1['events_per_s']:.2f}x the events per second. Conflicts are the warnings of the Delta commit: \"table updated during transaction\" (another collector committed since this one read the log: checked for conflicts and committed on top; {conf['table_updated']} with four collectors) + \"version already exists\" (two took the same version at once; the loser tries the next one; {conf['version_exists']}). Conflicts that aborted a commit: {conf['conflict_aborted']}; commits that failed: {conf['commit_failed']}; exit codes after SIGTERM: {', '.join(f'{k} {v}' for k, v in f4['exit_codes'].items())}. The events table has {f4['log']['log_entries']:,} log entries after the four-collector run ({', '.join(f'{k} {v}' for k, v in sorted(f4['log']['commits_by_collector'].items()))} commits; operations {', '.join(f'{k} {v}' for k, v in sorted(f4['log']['operations'].items()))})."]
        meta = f4["log"]["metadata_entries"]
        if len(meta) > 1:
            L.append(f"The events table was created {len(meta)} times: `metaData` entries at versions {', '.join(str(x['version']) for x in meta)}, with {len(set(x['id'] for x in meta))} distinct table ids. The collectors started at once; the ones that lost the race to create version 0 committed their own create as a later version.")
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
    w = res.get("wire")
    if w:
        L += ["", "## SQL over the Postgres protocol and over HTTP", "",
              f"The canned queries of the dashboard's panels ({', '.join('`' + q + '`' for q in w['queries'])}; not `deploy_frequency`, whose days x repositories cross join both ad-hoc faces refuse), bound to a 30-day window as literals, each run {w['rounds']:,} times over each face of one `deploylens serve --read-only` ({w['events']:,} events): psycopg on one connection (simple protocol, text results) and `POST /api/sql` with JSON results on one keep-alive connection, alternating. Both go through the same guarded runner; the difference is the protocol and the encoding. Latency per query, client side:", "",
              "| face | queries | p50 | p99 |", "|---|---|---|---|",
              f"| Postgres protocol (psycopg) | {w['pg_requests']:,} | {w['pg_p50_ms']:.2f} ms | {w['pg_p99_ms']:.2f} ms |",
              f"| HTTP JSON (`POST /api/sql`) | {w['http_requests']:,} | {w['http_p50_ms']:.2f} ms | {w['http_p99_ms']:.2f} ms |", "",
              f"HTTP / Postgres, p50: {w['http_p50_ms']/w['pg_p50_ms']:.2f}x; p99: {w['http_p99_ms']/w['pg_p99_ms']:.2f}x. Rows per query (equal on both faces, checked): {', '.join(f'{k} {v}' for k, v in w['rows'].items())}."]
    pg = res.get("page")
    if pg:
        L += ["", "## Dashboard page", "",
              f"`GET /` of `deploylens serve` over {pg['repositories']:,} repositories ({pg['events']:,} events over {pg['days']} days), loaded in headless {pg['chromium']} driven over the DevTools protocol (the helpers of `crates/deploylens-cli/tests/web/page_check.py`), the HTTP cache off, the browser on the same machine. First render: from navigation start to `body[data-state=ready]`, i.e. the page, its assets and every panel's queries (7 days, all repositories) fetched and drawn. Filtered: from choosing a repository to the next ready. {pg['loads']} fresh loads, each followed by one repository filter.", "",
              "| figure | median | max | target |", "|---|---|---|---|",
              f"| first render | {pg['first_render_median_ms']:.0f} ms | {pg['first_render_max_ms']:.0f} ms | < 2 s |",
              f"| filtered render (one repository) | {pg['filtered_render_median_ms']:.0f} ms | {pg['filtered_render_max_ms']:.0f} ms | < 2 s |", "",
              f"Rows the panels received: {', '.join(f'{k} {v:,}' for k, v in pg['rows'].items())}. Console errors and failed requests during the run: {pg['console_problems']}."]
    s = res.get("search")
    if s:
        carried = f" Not measured in this run (the release `search_bench` example was not built); these are the figures of the run of {s['carried_from']}. The search does not read the store." if s.get("carried_from") else ""
        L += ["", "## Search of past fixes", "", f"`Index::search` over {s['failures']:,} past failures ({s['templates']} fingerprints), {s['queries']} queries (half reworded):{carried}", "",
              "| p50 | p99 | max | index build | target |", "|---|---|---|---|---|", f"| {s['p50_ms']:.2f} ms | {s['p99_ms']:.2f} ms | {s['max_ms']:.2f} ms | {s['build_seconds']:.1f} s | p99 < 50 ms |", ""]
    if res.get("grouping"):
        import grouping
        L += ["", grouping.report(res["grouping"]), ""]
    L += [kept_analysis(path)]
    L += ["## Raw figures", "", "```json", json.dumps(res, indent=1, default=str), "```", ""]
    open(path, "w").write("\n".join(L))


def writers_phrase(n):
    if n == 1:
        return "one `ingest --commit-rows 1`"
    return f"{n} `ingest --commit-rows 1` at once, each over its own repository under its own collector id"


def resumed_note(res):
    if not res.get("resumed"):
        return ""
    names = res["resumed"]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f" The figures of {listed} come from an earlier invocation of this run on the same day (`--results`); the others were measured in a later one."


def plural(n, one, many=None):
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def same_machine(before, now):
    if before.get("cpu") == now["cpu"] and before.get("cores") == now["cores"]:
        return f"on the same machine ({now['cpu']}, {now['cores']} cores)"
    return f"on another machine: {before.get('cpu')}, {before.get('cores')} cores, Linux {before.get('kernel')} then; {now['cpu']}, {now['cores']} cores, Linux {now['kernel']} now"


def previous_raw(path):
    """The raw figures of the previous report, if any."""
    try:
        text = open(path).read()
    except OSError:
        return {}
    m = re.search(r"^## Raw figures\s*```json\n(.*?)\n```", text, re.S | re.M)
    try:
        return json.loads(m.group(1)) if m else {}
    except ValueError:
        return {}


# The last figures of the folder store, should no earlier report hold them.
FOLDER_STORE = {"date": "2026-11-27", "deploylens": "deploylens 0.1.0", "cpu": "AMD EPYC", "cores": 2, "kernel": "6.18.44-fc-v595", "ingest": {
    "100000": {"seconds": 0.2513, "duckdb_seconds": 0.3315},
    "1000000": {"seconds": 1.5360, "duckdb_seconds": 1.1343},
    "10000000": {"seconds": 14.13, "duckdb_seconds": 7.65}}}


def before_delta(prev):
    """The ingest figures of the folder store: carried from report to report."""
    if prev.get("before_delta"):
        return prev["before_delta"]
    if prev.get("ingest") and "history" not in prev:  # a report of the folder store itself
        return {**{k: prev["machine"].get(k) for k in ("date", "deploylens", "cpu", "cores", "kernel")}, "ingest": {
            n: {"seconds": r["deploylens"]["seconds"], "duckdb_seconds": r["duckdb"]["seconds"], "lines_per_s": r["deploylens"]["lines_per_s"], "peak_rss_mib": r["deploylens"]["peak_rss_mib"]}
            for n, r in prev["ingest"].items()},
            "refresh": {k: prev.get("refresh", {}).get(k) for k in ("deploylens_seconds", "duckdb_seconds")},
            "live": {k: prev.get("live", {}).get(k) for k in ("append_visible_p50_ms", "append_visible_p99_ms", "idle_cpu_percent")}}
    return FOLDER_STORE


def kept_analysis(path):
    """The hand-written "What limits it" section of the previous report, kept across reruns."""
    try:
        text = open(path).read()
    except OSError:
        return ""
    m = re.search(r"^## What limits it.*?(?=^## Raw figures)", text, re.S | re.M)
    # Without its trailing blank lines: the report adds its own, one rerun after another.
    return m.group(0).rstrip("\n") + "\n" if m else ""


SECTIONS = ("ingest", "refresh", "history", "collectors", "live", "wire", "page", "search", "grouping")


def search_binary(no_build):
    """The search benchmark: $DEPLOYLENS_SEARCH_BENCH, else the release example if built, else
    (unless --no-build) `cargo run`; None when there is none to run."""
    if os.environ.get("DEPLOYLENS_SEARCH_BENCH"):
        return os.environ["DEPLOYLENS_SEARCH_BENCH"]
    built = os.path.join(ROOT, "target", "release", "examples", "search_bench")
    if os.path.exists(built):
        return built
    return None if no_build else ""


def main():
    global BIN
    ap = argparse.ArgumentParser(description="deploylens benchmarks side by side with DuckDB and deltalake; writes docs/benchmarks.md")
    ap.add_argument("--sizes", default="100000,1000000,10000000", help="events of the ingest ecosystems")
    ap.add_argument("--refresh-size", type=int, default=1_000_000, help="events of the ecosystem the refresh runs on")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--history-commits", type=int, default=10_000, help="commits of the table with a long history")
    ap.add_argument("--collectors-seconds", type=float, default=30, help="how long the four collectors' roots are appended to")
    ap.add_argument("--collectors-max-lines", type=int, default=6_000_000, help="most lines appended in the collectors run")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"which to run, of {','.join(SECTIONS)}; the report needs all")
    ap.add_argument("--quick", action="store_true", help="small sizes, one run: checks the script")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--no-build", action="store_true", help="use the release binary as it is")
    ap.add_argument("--results", help="JSON file of the figures: sections it already holds are not run again, and each finished section is saved to it (to resume a long run)")
    ap.add_argument("--binary", default=BIN, help="the deploylens binary (default: target/release/deploylens, or $DEPLOYLENS_BIN)")
    a = ap.parse_args()
    BIN = os.path.abspath(a.binary)
    sections = set(a.sections.split(","))
    if sections - set(SECTIONS):
        sys.exit(f"unknown sections: {sorted(sections - set(SECTIONS))}")
    if a.quick:
        a.sizes, a.repeat, a.refresh_size = "20000", 1, 20000
        a.history_commits, a.collectors_seconds, a.collectors_max_lines = min(a.history_commits, 300), min(a.collectors_seconds, 5), min(a.collectors_max_lines, 40_000)
    if not a.no_build:
        sh(["cargo", "build", "--release", "-q", "-p", "deploylens-cli"], cwd=ROOT)
    prev = previous_raw(a.out)
    work = tempfile.mkdtemp(prefix="deploylens-bench-")
    res = {"machine": machine(), "repeat": a.repeat, "ingest": {}, "before_delta": before_delta(prev)}
    if a.results and os.path.exists(a.results):
        saved = json.load(open(a.results))
        for k in SECTIONS:
            if saved.get(k):
                res[k] = saved[k]
                sections.discard(k)
                print(f"{k}: figures of {a.results}", flush=True)
        res["resumed"] = sorted(k for k in SECTIONS if saved.get(k))

    def save():
        if a.results:
            json.dump(res, open(a.results, "w"), indent=1, default=str)

    try:
        ecos = {}
        if "ingest" in sections or "refresh" in sections:
            sizes = [int(x) for x in a.sizes.split(",")]
            if a.refresh_size not in sizes:
                sys.exit(f"--refresh-size {a.refresh_size} is not one of --sizes")
            for n in sizes if "ingest" in sections else [a.refresh_size]:
                eco = os.path.join(work, f"eco-{n}")
                sh([BIN, "--quiet", "demo", eco, "--repos", "50", "--events", str(n), "--seed", "1", "--end", AS_OF], stdout=subprocess.DEVNULL)
                ecos[n] = eco
                if "ingest" in sections:
                    res["ingest"][str(n)] = bench_ingest(eco, a.repeat, work)
                    print("ingest", n, json.dumps(res["ingest"][str(n)]), flush=True)
                    save()
                if n != a.refresh_size:
                    shutil.rmtree(eco, ignore_errors=True)  # 10M events take 2 GB
        if "refresh" in sections:
            res["refresh"] = bench_refresh(ecos[a.refresh_size], a.repeat, work)
            shutil.rmtree(res["refresh"].pop("data"), ignore_errors=True)
            print("refresh", json.dumps({k: v for k, v in res["refresh"].items() if k != "checks"}), json.dumps(res["refresh"]["checks"]), flush=True)
            save()
        shutil.rmtree(ecos.get(a.refresh_size, os.path.join(work, "none")), ignore_errors=True)
        if "history" in sections:
            res["history"] = bench_history(work, a.history_commits, a.repeat)
            print("history", json.dumps(res["history"]), flush=True)
            save()
            shutil.rmtree(os.path.join(work, "dl-history"), ignore_errors=True)
        if "collectors" in sections:
            res["collectors"] = bench_collectors(work, a.collectors_seconds, a.collectors_max_lines)
            print("collectors", json.dumps({k: v for k, v in res["collectors"].items() if k not in ("four", "one")}), flush=True)
            save()
        if "live" in sections:
            res["live"] = bench_live(work, repos=100 if a.quick else 1000, appends=20 if a.quick else 100, load_seconds=10 if a.quick else 60)
            print("live", json.dumps(res["live"]), flush=True)
            save()
        if "wire" in sections:
            res["wire"] = bench_wire(work, events=20000 if a.quick else 100_000, rounds=20 if a.quick else 1000)
            print("wire", json.dumps(res["wire"]), flush=True)
            save()
        if "page" in sections:
            res["page"] = bench_page(work, repos=100 if a.quick else 1000, events=10_000 if a.quick else 200_000, loads=2 if a.quick else 5)
            print("page", json.dumps({k: v for k, v in res["page"].items() if k != "console_problem_examples"}), flush=True)
            save()
        if "search" in sections:
            binary = search_binary(a.no_build)
            if binary is None and prev.get("search"):
                res["search"] = {**{k: v for k, v in prev["search"].items() if k != "carried_from"}, "carried_from": prev["search"].get("carried_from") or prev["machine"]["date"]}
                print("search: no release search_bench example; figures carried from", res["search"]["carried_from"], flush=True)
            elif binary is not None:
                res["search"] = bench_search(20000 if a.quick else 1_000_000, binary)
                print("search", json.dumps(res["search"]), flush=True)
        if "grouping" in sections:
            import grouping
            res["grouping"] = grouping.evaluate(BIN)
            print("grouping", json.dumps({k: v["mean"] for k, v in res["grouping"]["splits"].items()}), flush=True)
            save()
        if all(k in res for k in SECTIONS if k != "search") and res["ingest"]:
            write_report(res, a.out)
        else:
            print(json.dumps(res, default=str)[:20000])
        bad = {k: v for k, v in res.get("refresh", {}).get("checks", {}).items() if v != "agree" and not v.startswith("not run")}
        if bad:
            print("CROSS-CHECK FAILED:", bad, file=sys.stderr)
            sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
