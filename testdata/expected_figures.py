#!/usr/bin/env python3
"""Compute the expected figures of the deploylens test ecosystem.

Reads testdata/ecosystem/ on its own (it does not import make_ecosystem.py), applies the
rules written in testdata/README.md and writes testdata/ecosystem.expected.json.

Needs Python 3.9+ and numpy (percentiles use numpy.percentile(..., method="linear")).
"""

import json
import os
import re
import sys
from datetime import datetime, timedelta, timezone

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "ecosystem")
OUT = os.path.join(HERE, "ecosystem.expected.json")

EVENTS_REL = (".chora", "memory", "events", "deployment.jsonl")
SKIP_DIRS = {".git", "node_modules", "target"}
MAX_LINE_BYTES = 1 << 20  # 1 MiB, without the line terminator

EVENT_TYPES = {"deployment", "rollback", "health_check", "backup", "configuration_change"}
ENVIRONMENTS = {"development", "staging", "production"}
STATUSES = {"success", "failure", "in_progress"}
DEPLOYED_BY = {"agent", "human", "ci_cd"}
TRACE_RE = re.compile(r"^(CHORA|COORD|MULTI)-(DEPLOY|COORD)-[0-9]{4}-[0-9]{3}$")
TS_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)
KNOWN = {
    "timestamp", "event_type", "repository", "environment", "version", "status",
    "duration_seconds", "errors", "notes", "deployed_by", "trace_id", "services",
    "metadata", "resolution_time_seconds",
}
REQUIRED_CURRENT = ["timestamp", "event_type", "repository", "environment", "version",
                    "status", "duration_seconds"]
REQUIRED_LEGACY = ["timestamp", "event_type", "environment", "version", "status"]


class Reject(Exception):
    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------- discovery
def find_files(root):
    """Return sorted [(relative path, repository)] of event files, skipping SKIP_DIRS."""
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        if ".chora" in dirnames:
            path = os.path.join(dirpath, *EVENTS_REL)
            if os.path.isfile(path):
                found.append((os.path.relpath(path, root).replace(os.sep, "/"),
                              os.path.basename(dirpath)))
    return sorted(found)


def all_event_files(root):
    out = []
    for dirpath, _, filenames in os.walk(root):
        if "deployment.jsonl" in filenames and dirpath.endswith(os.path.join(*EVENTS_REL[:-1])):
            out.append(os.path.relpath(os.path.join(dirpath, "deployment.jsonl"), root).replace(os.sep, "/"))
    return sorted(out)


# ---------------------------------------------------------------- parsing
def parse_ts(s):
    """RFC 3339 -> (aware UTC datetime). Raises ValueError."""
    m = TS_RE.match(s)
    if not m:
        raise ValueError("pattern")
    y, mo, d, h, mi, se, frac, z, sign, oh, om = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(se), micro)
    if z:
        off = timedelta(0)
    else:
        if int(oh) > 23 or int(om) > 59:
            raise ValueError("offset")
        off = timedelta(hours=int(oh), minutes=int(om))
        if sign == "-":
            off = -off
    return (dt - off).replace(tzinfo=timezone.utc)


def fmt_utc(dt):
    """RFC 3339 in UTC with Z; fraction shown with 0, 3 or 6 digits."""
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond == 0:
        return base + "Z"
    if dt.microsecond % 1000 == 0:
        return "%s.%03dZ" % (base, dt.microsecond // 1000)
    return "%s.%06dZ" % (base, dt.microsecond)


def no_dup_pairs(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise Reject("duplicate_field")
        obj[k] = v
    return obj


def bad_constant(name):
    raise ValueError("not JSON: " + name)


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def present(obj, key):
    return key in obj and obj[key] is not None


def classify(raw):
    """raw: bytes of one line without its terminator. Returns a dict or raises Reject."""
    if len(raw) > MAX_LINE_BYTES:
        raise Reject("line_too_long")
    if b"\x00" in raw:
        raise Reject("nul_byte")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Reject("invalid_utf8")
    try:
        obj = json.loads(text, object_pairs_hook=no_dup_pairs, parse_constant=bad_constant)
    except Reject:
        raise
    except json.JSONDecodeError as e:
        # Ran out of input in the middle of a value: the line was cut short.
        if e.pos >= len(text.rstrip()) or e.msg.startswith("Unterminated string"):
            raise Reject("truncated_line")
        raise Reject("malformed_json")
    except ValueError:
        raise Reject("malformed_json")
    if not isinstance(obj, dict):
        raise Reject("not_an_object")

    legacy = not present(obj, "repository") and not present(obj, "duration_seconds")
    required = REQUIRED_LEGACY if legacy else REQUIRED_CURRENT
    # 1. missing_field
    for k in required:
        if not present(obj, k):
            raise Reject("missing_field")
    if not legacy and obj["repository"] == "":
        raise Reject("missing_field")
    # 2. wrong_type
    for k in ("timestamp", "event_type", "repository", "environment", "version", "status",
              "notes", "deployed_by", "trace_id"):
        if present(obj, k) and not isinstance(obj[k], str):
            raise Reject("wrong_type")
    for k in ("duration_seconds", "resolution_time_seconds"):
        if present(obj, k) and not is_num(obj[k]):
            raise Reject("wrong_type")
    for k in ("errors", "services"):
        if present(obj, k) and not (isinstance(obj[k], list) and all(isinstance(x, str) for x in obj[k])):
            raise Reject("wrong_type")
    if present(obj, "metadata") and not isinstance(obj["metadata"], dict):
        raise Reject("wrong_type")
    # 3. bad_enum
    if obj["event_type"] not in EVENT_TYPES or obj["environment"] not in ENVIRONMENTS \
            or obj["status"] not in STATUSES \
            or (present(obj, "deployed_by") and obj["deployed_by"] not in DEPLOYED_BY):
        raise Reject("bad_enum")
    # 4. bad_timestamp
    try:
        ts = parse_ts(obj["timestamp"])
    except ValueError:
        raise Reject("bad_timestamp")
    # 5. negative_duration
    for k in ("duration_seconds", "resolution_time_seconds"):
        if present(obj, k) and obj[k] < 0:
            raise Reject("negative_duration")
    # 6. bad_trace_id
    if present(obj, "trace_id") and not TRACE_RE.match(obj["trace_id"]):
        raise Reject("bad_trace_id")
    return {"obj": obj, "ts": ts, "legacy": legacy}


def read_lines(path):
    data = open(path, "rb").read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the file ends with a terminator
    out = []
    for raw in lines:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        out.append(raw)
    return out


# ---------------------------------------------------------------- figures
def percentiles(values):
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    a = np.array(values, dtype=float)
    return {k: float(np.percentile(a, q, method="linear")) for k, q in (("p50", 50), ("p95", 95), ("p99", 99))}


def main():
    files = find_files(ROOT)
    ignored = sorted(set(all_event_files(ROOT)) - {f for f, _ in files})

    events = []          # unique good events
    seen = {}            # (repository, canonical content) -> (file, line)
    duplicate_lines = []
    rejects = []
    physical_lines = 0
    blank_lines = 0

    for rel, folder_repo in files:
        for n, raw in enumerate(read_lines(os.path.join(ROOT, rel)), start=1):
            physical_lines += 1
            if raw.strip(b" \t") == b"":
                blank_lines += 1
                continue
            try:
                rec = classify(raw)
            except Reject as r:
                rejects.append({"file": rel, "line": n, "reason": r.reason})
                continue
            obj = rec["obj"]
            repo = folder_repo if rec["legacy"] else obj["repository"]
            key = (repo, json.dumps(obj, sort_keys=True, ensure_ascii=False))
            if key in seen:
                f0, l0 = seen[key]
                duplicate_lines.append({"file": rel, "line": n, "duplicate_of_line": l0})
                continue
            seen[key] = (rel, n)
            res = obj.get("resolution_time_seconds")
            res_src = "top_level" if res is not None else None
            if res is None and isinstance(obj.get("metadata"), dict) \
                    and is_num(obj["metadata"].get("resolution_time_seconds")):
                res = obj["metadata"]["resolution_time_seconds"]
                res_src = "metadata"
            events.append({
                "file": rel, "line": n, "repository": repo, "legacy": rec["legacy"],
                "ts": rec["ts"], "event_type": obj["event_type"], "environment": obj["environment"],
                "version": obj["version"], "status": obj["status"],
                "duration": obj.get("duration_seconds"), "trace_id": obj.get("trace_id"),
                "errors": obj.get("errors") or [], "resolution": res, "resolution_source": res_src,
                "extra": sorted(k for k in obj if k not in KNOWN),
            })

    events.sort(key=lambda e: (e["ts"], e["file"], e["line"]))

    by_repo = {}
    by_reason = {}
    for e in events:
        by_repo[e["repository"]] = by_repo.get(e["repository"], 0) + 1
    for r in rejects:
        by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + 1
    by_type = {}
    for e in events:
        by_type[e["event_type"]] = by_type.get(e["event_type"], 0) + 1

    groups = {}
    for e in events:
        groups.setdefault((e["repository"], e["environment"]), []).append(e)

    by_re = {}
    for (repo, env), evs in sorted(groups.items()):
        deps = [e for e in evs if e["event_type"] == "deployment" and e["status"] in ("success", "failure")]
        succ = sum(1 for e in deps if e["status"] == "success")
        durs = [e["duration"] for e in deps if e["duration"] is not None]
        hcs = [e for e in evs if e["event_type"] == "health_check"]
        hc_ok = sum(1 for e in hcs if e["status"] == "success")

        # in_progress records: matched to the next later terminal record of the same
        # repository, environment and trace_id (version when there is no trace_id).
        in_prog = [e for e in evs if e["event_type"] == "deployment" and e["status"] == "in_progress"]
        matched = 0
        for p in in_prog:
            for d in deps:
                if d["ts"] <= p["ts"]:
                    continue
                if p["trace_id"] is not None:
                    same = d["trace_id"] == p["trace_id"]
                else:
                    same = d["trace_id"] is None and d["version"] == p["version"]
                if same:
                    matched += 1
                    break

        # time to restore
        ttr = []
        streak_start = None
        for e in evs:
            if e["event_type"] == "deployment" and e["status"] == "failure":
                if streak_start is None:
                    streak_start = e["ts"]
            elif e["event_type"] in ("deployment", "rollback") and e["status"] == "success":
                if streak_start is not None:
                    ttr.append((e["ts"] - streak_start).total_seconds())
                    streak_start = None

        first = [e["ts"] for e in evs if e["event_type"] == "deployment"]
        entry = {
            "events": len(evs),
            "deployments": len(deps),
            "successes": succ,
            "failures": len(deps) - succ,
            "success_ratio": (succ / len(deps)) if deps else None,
            "durations_counted": len(durs),
        }
        entry.update(percentiles(durs))
        entry.update({
            "in_progress_records": len(in_prog),
            "in_progress_matched": matched,
            "health_checks": len(hcs),
            "health_checks_ok": hc_ok,
            "uptime": (hc_ok / len(hcs)) if hcs else None,
            "rollbacks": sum(1 for e in evs if e["event_type"] == "rollback"),
            "time_to_restore_seconds": ttr,
            "time_to_restore_median": float(np.median(ttr)) if ttr else None,
            "open_failure_streak_since": fmt_utc(streak_start) if streak_start is not None else None,
            "first_deployment": fmt_utc(min(first)) if first else None,
        })
        by_re.setdefault(repo, {})[env] = entry

    result = {
        "description": "Expected figures for testdata/ecosystem; rules in testdata/README.md.",
        "files": [f for f, _ in files],
        "ignored_files": ignored,
        "lines_total": physical_lines,
        "blank_lines": blank_lines,
        "events_total": len(events),
        "legacy_events": sum(1 for e in events if e["legacy"]),
        "duplicates": len(duplicate_lines),
        "duplicate_lines": duplicate_lines,
        "rejects_total": len(rejects),
        "rejects_by_reason": dict(sorted(by_reason.items())),
        "rejects": rejects,
        "events_by_repository": dict(sorted(by_repo.items())),
        "events_by_type": dict(sorted(by_type.items())),
        "deployments_total": sum(v["deployments"] for r in by_re.values() for v in r.values()),
        "events_with_extra_fields": [
            {"file": e["file"], "line": e["line"], "repository": e["repository"], "keys": e["extra"]}
            for e in sorted(events, key=lambda e: (e["file"], e["line"])) if e["extra"]
        ],
        "resolution_times": [
            {"repository": e["repository"], "environment": e["environment"], "timestamp": fmt_utc(e["ts"]),
             "event_type": e["event_type"], "seconds": e["resolution"], "source": e["resolution_source"]}
            for e in events if e["resolution"] is not None
        ],
        "error_messages": [
            {"repository": e["repository"], "environment": e["environment"], "timestamp": fmt_utc(e["ts"]),
             "event_type": e["event_type"], "message": m}
            for e in events for m in e["errors"]
        ],
        "by_repository_environment": by_re,
    }
    assert physical_lines == blank_lines + len(rejects) + len(events) + len(duplicate_lines)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print("wrote %s: events_total=%d duplicates=%d rejects_total=%d %s"
          % (os.path.relpath(OUT, os.getcwd()), len(events), len(duplicate_lines), len(rejects),
             json.dumps(result["events_by_repository"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
