"""Prints, as JSON, every PromQL expression of the shipped rules and Grafana dashboard, with
Grafana's variables replaced by values that select everything, for the real-Prometheus test."""

import json
import re
import sys

import yaml

rules_path, dashboard_path = sys.argv[1], sys.argv[2]
out = {"rules": [], "dashboard": []}
with open(rules_path) as f:
    for group in yaml.safe_load(f)["groups"]:
        for rule in group["rules"]:
            out["rules"].append({"name": rule.get("alert") or rule.get("record"), "expr": rule["expr"]})


def panels(items):
    for p in items:
        yield p
        yield from panels(p.get("panels", []))


with open(dashboard_path) as f:
    dashboard = json.load(f)
for p in panels(dashboard.get("panels", [])):
    for t in p.get("targets", []):
        ds = (t.get("datasource") or p.get("datasource") or {})
        if "expr" not in t or "infinity" in json.dumps(ds).lower():
            continue
        expr = t["expr"]
        for var, value in [("$__rate_interval", "5m"), ("$__interval", "1m"), ("$__range", "1h"), ("${window}", "24h"), ("$window", "24h")]:
            expr = expr.replace(var, value)
        expr = re.sub(r"\$\{?(repository|environment)(:[a-z]+)?\}?", ".*", expr)
        out["dashboard"].append({"panel": p.get("title", ""), "expr": expr})
print(json.dumps(out))
