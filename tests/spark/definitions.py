"""Runs deploylens's own SQL definitions in Spark over a Delta table's current files.

usage: python3 tests/spark/definitions.py DATA_DIR QUERIES_DIR START END

The events table's current files come from the Delta log (the `deltalake` package), so Spark
reads each row exactly once whatever compactions left on disk. The `deployments` view and the
`success_rate` and `duration_percentiles` queries are read from QUERIES_DIR unchanged but for
their comments and `$start`/`$end`, which become timestamp literals. Prints JSON: for each
query, its rows.
"""
import json
import os
import re
import sys

import deltalake
from pyspark.sql import SparkSession


def definition(path):
    text = open(path).read()
    return "\n".join(line.split("--", 1)[0] for line in text.splitlines()).strip().rstrip(";")


def main():
    data, queries, start, end = sys.argv[1:5]
    files = deltalake.DeltaTable(f"{data}/events").file_uris()
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("deploylens-definitions")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    spark.read.parquet(*files).createOrReplaceTempView("events")
    spark.sql(definition(f"{queries}/views/deployments.sql")).createOrReplaceTempView("deployments")
    out = {"files": len(files), "events": spark.table("events").count()}
    for name in ["success_rate", "duration_percentiles"]:
        sql = definition(f"{queries}/{name}.sql")
        sql = sql.replace("$start", f"TIMESTAMP '{start}'").replace("$end", f"TIMESTAMP '{end}'")
        rows = spark.sql(sql).collect()
        out[name] = [r.asDict() for r in rows]
    spark.stop()
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
    # Past the interpreter's teardown, where the deltalake package's native threads can abort
    # the process after the answer was printed (delta-rs issue 2184).
    sys.stdout.flush()
    os._exit(0)
