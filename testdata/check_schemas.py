#!/usr/bin/env python3
"""Check the deploylens JSON schemas against the test ecosystem.

    pip install jsonschema
    python3 testdata/check_schemas.py

1. Both schemas in schemas/ are valid draft-07 schemas (Draft7Validator.check_schema).
2. Every good line of testdata/ecosystem (including the files in skipped directories,
   whose lines are valid too) validates against deployment-event.schema.json. Legacy
   lines (neither repository nor duration_seconds) are checked against the same schema
   with those two properties no longer required.
3. Every rejected line listed in ecosystem.expected.json that parses as a JSON object and
   whose reason the schema can express fails validation.
4. The task examples in testdata/tasks/ validate against deployment-task.schema.json, and
   a few broken tasks do not.
Prints OK and exits 0 when everything holds.
"""

import copy
import json
import os
import sys

from jsonschema import Draft7Validator

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ECO = os.path.join(HERE, "ecosystem")

# Reasons a JSON Schema validator can see (the others are about bytes or JSON syntax,
# or, for duplicate_field, lost when the object is parsed).
SCHEMA_VISIBLE = {"wrong_type", "bad_enum", "bad_timestamp", "negative_duration",
                  "missing_field", "bad_trace_id", "not_an_object"}


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def lines_of(path):
    data = open(path, "rb").read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    for n, raw in enumerate(parts, start=1):
        yield n, raw[:-1] if raw.endswith(b"\r") else raw


def main():
    failures = []
    event_schema = load(os.path.join(REPO, "schemas", "deployment-event.schema.json"))
    task_schema = load(os.path.join(REPO, "schemas", "deployment-task.schema.json"))
    for name, s in (("deployment-event", event_schema), ("deployment-task", task_schema)):
        Draft7Validator.check_schema(s)
        print("schema %s: well-formed draft-07" % name)

    fc = Draft7Validator.FORMAT_CHECKER
    current = Draft7Validator(event_schema, format_checker=fc)
    legacy_schema = copy.deepcopy(event_schema)
    legacy_schema["required"] = [k for k in legacy_schema["required"]
                                 if k not in ("repository", "duration_seconds")]
    legacy = Draft7Validator(legacy_schema, format_checker=fc)
    tasks = Draft7Validator(task_schema, format_checker=fc)

    expected = load(os.path.join(HERE, "ecosystem.expected.json"))
    rejects = {(r["file"], r["line"]): r["reason"] for r in expected["rejects"]}
    files = expected["files"] + expected["ignored_files"]

    good = legacy_good = bad_checked = 0
    for rel in files:
        for n, raw in lines_of(os.path.join(ECO, rel)):
            if not raw.strip():
                continue
            reason = rejects.get((rel, n))
            if reason is None:
                obj = json.loads(raw.decode("utf-8"))
                is_legacy = obj.get("repository") is None and obj.get("duration_seconds") is None
                v = legacy if is_legacy else current
                errs = [e.message for e in v.iter_errors(obj)]
                if errs:
                    failures.append("%s:%d should be valid: %s" % (rel, n, errs))
                good += 1
                legacy_good += is_legacy
            elif reason in SCHEMA_VISIBLE:
                obj = json.loads(raw.decode("utf-8"))
                if current.is_valid(obj):
                    failures.append("%s:%d (%s) should fail the event schema" % (rel, n, reason))
                bad_checked += 1
    print("event lines: %d good valid (%d legacy), %d rejected lines fail the schema"
          % (good, legacy_good, bad_checked))

    task_dir = os.path.join(HERE, "tasks")
    names = sorted(f for f in os.listdir(task_dir) if f.endswith(".json"))
    for name in names:
        errs = [e.message for e in tasks.iter_errors(load(os.path.join(task_dir, name)))]
        if errs:
            failures.append("tasks/%s should be valid: %s" % (name, errs))
    single = load(os.path.join(task_dir, "single-repository-task.json"))
    multi = load(os.path.join(task_dir, "multi-repository-task.json"))
    broken = {
        "bad trace_id": dict(single, trace_id="DEPLOY-1"),
        "bad urgency": dict(single, urgency="urgent"),
        "category not deployment": dict(single, category="backup"),
        "missing version": {k: v for k, v in single.items() if k != "version"},
        "negative downtime": dict(single, scope={"estimated_downtime_seconds": -1}),
        "verification object on single task": dict(single, verification={"health_checks": True}),
        "multi without deployments": {k: v for k, v in multi.items() if k != "deployments"},
        "multi step without order": dict(multi, deployments=[
            {"repository": "chora-compose", "version": "v1.9.1", "environment": "production"}]),
        "multi step bad environment": dict(multi, deployments=[
            {"repository": "chora-compose", "version": "v1.9.1", "environment": "prod", "order": 1}]),
    }
    for label, doc in broken.items():
        if tasks.is_valid(doc):
            failures.append("broken task accepted: " + label)
    multi_list = dict(multi, verification=["health check levels 1-5 pass on all three"])
    if not tasks.is_valid(multi_list):
        failures.append("multi task with a verification list rejected")
    print("tasks: %d examples valid, %d broken tasks rejected" % (len(names), len(broken)))

    if failures:
        for f in failures:
            print("FAIL", f)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
