"""Real Postgres clients (psycopg 3, SQLAlchemy 2) against `deploylens serve --pg-listen`.

Usage: clients.py PORT PASSWORD DASHBOARD_JSON

Prints one JSON object of what each client saw; the Rust test (crates/deploylens-cli/tests/
postgres.rs) asserts on it. Nothing here decides pass or fail except a client that cannot
connect at all.
"""

import json
import re
import sys
import threading
import time

import psycopg
import sqlalchemy

port, password, dashboard_path = sys.argv[1], sys.argv[2], sys.argv[3]
dsn = f"host=127.0.0.1 port={port} user=deploylens dbname=deploylens password={password}"
out = {}


def error_of(fn):
    """The SQLSTATE and first line of the error `fn` raises, or None."""
    try:
        fn()
    except psycopg.Error as e:
        return {"sqlstate": e.sqlstate, "message": str(e).splitlines()[0]}
    return None


with psycopg.connect(dsn, autocommit=True) as conn:
    cur = conn.cursor()
    # Server-side parameters ($1, $2) through the extended protocol, typed by the client.
    cur.execute(
        "SELECT repository, count(*) AS n FROM deployments WHERE environment = %s AND duration_seconds > %s "
        "GROUP BY repository ORDER BY n DESC, repository",
        ("production", 1.0),
    )
    out["params_rows"] = [list(r) for r in cur.fetchall()]
    out["params_types"] = [d.type_code for d in cur.description]
    # A statement prepared on the server (psycopg's prepare=True), executed with two values.
    q = "SELECT count(*) FROM deployments WHERE repository = %s"
    out["prepared"] = {
        repo: cur.execute(q, (repo,), prepare=True).fetchone()[0]
        for repo in ("chora-base", "chora-compose")
    }
    cur.execute("SELECT timestamp, errors, count(*) OVER () AS n FROM events WHERE cardinality(errors) > 0 LIMIT 1")
    row = cur.fetchone()
    out["types"] = {
        "timestamp": [cur.description[0].type_code, row[0].tzinfo is not None],
        "errors": [cur.description[1].type_code, isinstance(row[1], list)],
        "count": cur.description[2].type_code,
    }
    refused = {}
    for name, sql in [
        ("copy", "COPY events TO '/tmp/deploylens-copy'"),
        ("create", "CREATE TABLE t AS SELECT 1"),
        ("set_engine", "SET datafusion.execution.batch_size = 1"),
        ("set_timeout", "SET statement_timeout = 0"),
        ("read_file", "SELECT * FROM read_csv('/etc/passwd')"),
        ("external", "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'"),
        ("cross_join", "SELECT a.event_id, b.event_id FROM events a CROSS JOIN events b"),
        ("insert", "INSERT INTO events (event_id) VALUES ('x')"),
        ("too_long", "SELECT 1 -- " + "x" * 200_000),
    ]:
        refused[name] = error_of(lambda: cur.execute(sql))
    out["refused"] = refused
    out["after_refusals"] = cur.execute("SELECT count(*) FROM events").fetchone()[0]

    # A runaway query is stopped by the server's timeout while another session keeps answering.
    runaway = {}

    def run_away():
        with psycopg.connect(dsn, autocommit=True) as c2:
            started = time.monotonic()
            runaway["error"] = error_of(
                lambda: c2.execute("SELECT count(*) FROM range(1, 100000000000) WHERE value % 7 = 3")
            )
            runaway["seconds"] = time.monotonic() - started

    t = threading.Thread(target=run_away)
    t.start()
    time.sleep(0.5)
    started = time.monotonic()
    runaway["other_session"] = cur.execute("SELECT count(*) FROM events").fetchone()[0]
    runaway["other_seconds"] = time.monotonic() - started
    t.join()
    out["runaway"] = runaway

# A transaction, as psycopg opens one by default, with a savepoint inside.
with psycopg.connect(dsn) as conn:
    with conn.transaction():
        n = conn.execute("SELECT count(*) FROM rejects").fetchone()[0]
    out["transaction_rejects"] = n

# SQLAlchemy: connect (it reads version() and SHOW settings), list tables, query with binds.
engine = sqlalchemy.create_engine(f"postgresql+psycopg://deploylens:{password}@127.0.0.1:{port}/deploylens")
inspector = sqlalchemy.inspect(engine)
out["sqlalchemy_tables"] = sorted(inspector.get_table_names())
with engine.connect() as c:
    out["sqlalchemy_count"] = c.execute(
        sqlalchemy.text("SELECT count(*) FROM deployments WHERE status = :s"), {"s": "failure"}
    ).scalar()


# A time series shaped as Grafana wants it (time, metric, value), with $__timeFilter expanded
# as Grafana expands it (docs/sql-clients.md).
with psycopg.connect(dsn, autocommit=True) as conn:
    cur = conn.execute(
        "SELECT date_trunc('day', timestamp) AS time, repository AS metric, count(*) AS value FROM deployments "
        "WHERE timestamp BETWEEN '2000-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z' GROUP BY 1, 2 ORDER BY 1"
    )
    series = cur.fetchall()
    out["time_series"] = {
        "columns": [d.name for d in cur.description],
        "types": [d.type_code for d in cur.description],
        "rows": len(series),
        "total": sum(r[2] for r in series),
    }


# Every SQL panel of the dashboard, its macros expanded as Grafana's PostgreSQL data source
# expands them, over a range holding the whole ecosystem.
def expand(sql, start, end):
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", lambda m: f"{m.group(1)} BETWEEN '{start}' AND '{end}'", sql)
    sql = sql.replace("$__timeFrom()", f"'{start}'").replace("$__timeTo()", f"'{end}'")
    return re.sub(r"\$\{(repository|environment):regex\}", ".*", sql)


def panels(items):
    for p in items:
        yield p
        yield from panels(p.get("panels", []))


with open(dashboard_path) as f:
    dashboard = json.load(f)
out["panels"] = []
with psycopg.connect(dsn, autocommit=True) as conn:
    for p in panels(dashboard["panels"]):
        for target in p.get("targets", []):
            if "rawSql" not in target:
                continue
            sql = expand(target["rawSql"], "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z")
            entry = {"panel": p["title"], "raw": target["rawSql"]}
            try:
                cur = conn.execute(sql)
                entry["columns"] = [d.name for d in cur.description]
                entry["rows"] = len(cur.fetchall())
            except psycopg.Error as e:
                entry["error"] = str(e)
            out["panels"].append(entry)

print(json.dumps(out, default=str))
