#!/usr/bin/env python3
"""Generate the hand-checked deploylens test ecosystem under testdata/ecosystem/.

Deterministic: every event is written out by hand below; running the script again
rewrites byte-identical files. After changing it, regenerate the expected figures:

    python3 testdata/make_ecosystem.py && python3 testdata/expected_figures.py

Layout written (repository = name of the folder holding .chora):

    ecosystem/chora-compose/.chora/memory/events/deployment.jsonl    current format,
        one blank line, one CRLF-terminated line, one line appended twice
    ecosystem/chora-workspace/.chora/memory/events/deployment.jsonl  current format,
        starts with a UTF-8 byte order mark
    ecosystem/chora-base/.chora/memory/events/deployment.jsonl       legacy format
        (no repository, no duration_seconds on any line)
    ecosystem/chora-indexer/.chora/memory/events/deployment.jsonl    current format,
        good lines mixed with 12 bad lines (one per reject reason)
    ecosystem/chora-workspace/node_modules/pkg/.chora/...            must be ignored
    ecosystem/chora-search/target/.chora/...                         must be ignored
"""

import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "ecosystem")
EVENTS = os.path.join(".chora", "memory", "events", "deployment.jsonl")


def cur(repo, ts, event_type, env, version, status, duration, **rest):
    """A current-format record; keys in the order the standard lists them."""
    rec = {
        "timestamp": ts,
        "event_type": event_type,
        "repository": repo,
        "environment": env,
        "version": version,
        "status": status,
        "duration_seconds": duration,
    }
    rec.update(rest)
    return rec


def legacy(ts, event_type, env, version, status, **rest):
    """A legacy record: no repository, no duration_seconds."""
    rec = {
        "timestamp": ts,
        "event_type": event_type,
        "environment": env,
        "version": version,
        "status": status,
    }
    rec.update(rest)
    return rec


def line(rec):
    return (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")


BLANK = b"\n"


class CRLF:
    """Marks a record to be written with a \\r\\n terminator."""

    def __init__(self, rec):
        self.rec = rec


def render(items):
    out = []
    for it in items:
        if isinstance(it, bytes):
            out.append(it)
        elif isinstance(it, CRLF):
            out.append(line(it.rec)[:-1] + b"\r\n")
        else:
            out.append(line(it))
    return b"".join(out)


# --------------------------------------------------------------------------
# chora-compose: MCP server, current format
# --------------------------------------------------------------------------
def compose():
    R = "chora-compose"
    mcp = ["chora-compose-mcp"]
    dup = cur(R, "2025-11-10T09:00:00Z", "deployment", "production", "v1.9.2", "success", 128.9,
              deployed_by="ci_cd", trace_id="CHORA-DEPLOY-2025-006", services=mcp,
              notes="Routine release, no downtime")
    return [
        cur(R, "2025-11-01T09:12:04Z", "deployment", "development", "v1.9.0", "success", 41.2,
            deployed_by="ci_cd", services=mcp),
        cur(R, "2025-11-01T09:40:10Z", "health_check", "development", "v1.9.0", "success", 3.4,
            deployed_by="agent", metadata={"levels_passed": 5}),
        cur(R, "2025-11-01T14:02:00Z", "deployment", "staging", "v1.9.0", "in_progress", 1.5,
            deployed_by="agent", trace_id="CHORA-DEPLOY-2025-001", services=mcp),
        cur(R, "2025-11-01T14:04:37.250Z", "deployment", "staging", "v1.9.0", "success", 157.25,
            deployed_by="agent", trace_id="CHORA-DEPLOY-2025-001", services=mcp),
        cur(R, "2025-11-02T14:29:00Z", "deployment", "production", "v1.9.1", "in_progress", 1.1,
            deployed_by="agent", trace_id="CHORA-DEPLOY-2025-002", services=mcp),
        cur(R, "2025-11-02T14:30:00Z", "deployment", "production", "v1.9.1", "failure", 62.4,
            errors=["Health check timeout after 30s"],
            notes="Solution: Increased start_period to 45s in docker-compose.yml",
            deployed_by="agent", trace_id="CHORA-DEPLOY-2025-002", services=mcp,
            resolution_time_seconds=300),
        cur(R, "2025-11-02T14:36:10Z", "rollback", "production", "v1.9.0", "success", 48.9,
            notes="Rolled back to v1.9.0 after the health check timeout",
            deployed_by="agent", trace_id="CHORA-DEPLOY-2025-002", services=mcp),
        cur(R, "2025-11-02T16:45:00+02:00", "health_check", "production", "v1.9.0", "success", 2.1,
            deployed_by="human"),
        cur(R, "2025-11-03T10:15:00Z", "configuration_change", "staging", "v1.9.1", "success", 4.75,
            notes="Raised healthcheck start_period from 30s to 45s", deployed_by="human"),
        cur(R, "2025-11-03T10:22:31Z", "deployment", "staging", "v1.9.1", "success", 149.8,
            deployed_by="agent", trace_id="CHORA-DEPLOY-2025-003", services=mcp),
        cur(R, "2025-11-03T13:00:00Z", "deployment", "production", "v1.9.1", "in_progress", 1.2,
            deployed_by="ci_cd", trace_id="CHORA-DEPLOY-2025-004", services=mcp, runner="gh-actions"),
        cur(R, "2025-11-03T13:02:13.5Z", "deployment", "production", "v1.9.1", "success", 133.5,
            deployed_by="ci_cd", trace_id="CHORA-DEPLOY-2025-004", services=mcp, runner="gh-actions",
            commit_timestamp="2025-11-03T09:40:00Z"),
        cur(R, "2025-11-03T13:10:00Z", "health_check", "production", "v1.9.1", "success", 2.6,
            deployed_by="agent"),
        BLANK,
        cur(R, "2025-11-04T02:00:00Z", "backup", "production", "v1.9.1", "success", 412.35,
            deployed_by="ci_cd",
            metadata={"backup_dir": "/var/backups/chora-compose/2025-11-04", "size_bytes": 48213760}),
        cur(R, "2025-11-05T08:00:00Z", "health_check", "production", "v1.9.1", "failure", 30.05,
            errors=["Health check level 2 failed: http://localhost:8000/health returned 503"],
            notes="Transient: MCP server restarting after OOM kill", deployed_by="agent"),
        cur(R, "2025-11-05T08:05:00Z", "health_check", "production", "v1.9.1", "success", 2.9,
            deployed_by="agent"),
        cur(R, "2025-11-06T11:00:00Z", "deployment", "development", "v1.9.2", "failure", 22.7,
            errors=["Port 8000 already in use"],
            notes="Solution: stopped the stale chora-compose-mcp container before redeploying",
            deployed_by="human", services=mcp,
            metadata={"resolution_time_seconds": 240, "compose_file": "docker-compose.dev.yml"}),
        cur(R, "2025-11-06T11:03:10Z", "deployment", "development", "v1.9.2", "failure", 19.35,
            errors=["Port 8000 already in use"], deployed_by="human", services=mcp),
        cur(R, "2025-11-06T11:07:00Z", "deployment", "development", "v1.9.2", "success", 38.6,
            deployed_by="human", services=mcp),
        CRLF(cur(R, "2025-11-07T15:00:00Z", "deployment", "staging", "v1.9.2", "success", 151.45,
                 deployed_by="agent", trace_id="CHORA-DEPLOY-2025-005", services=mcp)),
        dup,
        dup,  # appended twice: an exact duplicate line
        cur(R, "2025-11-10T09:05:00Z", "health_check", "production", "v1.9.2", "success", 2.4,
            deployed_by="agent"),
        cur(R, "2025-11-12T12:00:00Z", "deployment", "production", "v1.9.3", "failure", 75.3,
            errors=["Image pull failed: ghcr.io/chora/chora-compose:v1.9.3 manifest unknown"],
            notes="Solution: re-ran the release workflow so the image was pushed before deploying",
            deployed_by="ci_cd", trace_id="CHORA-DEPLOY-2025-007", services=mcp,
            resolution_time_seconds=180),
        cur(R, "2025-11-12T12:04:30Z", "rollback", "production", "v1.9.2", "success", 51.2,
            deployed_by="agent", trace_id="CHORA-DEPLOY-2025-007", services=mcp),
        cur(R, "2025-11-13T07:30:00Z", "health_check", "staging", "v1.9.2", "success", 2.2,
            notes=None, trace_id=None, deployed_by="agent"),
    ]


# --------------------------------------------------------------------------
# chora-workspace: multi-service stack, current format, file starts with a BOM
# --------------------------------------------------------------------------
def workspace():
    R = "chora-workspace"
    svc = ["chora-gateway", "n8n", "postgres"]
    return [
        cur(R, "2025-11-01T10:00:00Z", "deployment", "development", "v0.4.0", "success", 212.6,
            deployed_by="human", services=svc),
        cur(R, "2025-11-01T10:05:00Z", "health_check", "development", "v0.4.0", "success", 5.25,
            deployed_by="human"),
        cur(R, "2025-11-02T09:00:00.125Z", "deployment", "staging", "v0.4.0", "in_progress", 2.0,
            deployed_by="agent", trace_id="CHORA-DEPLOY-2025-010", services=svc),
        cur(R, "2025-11-02T09:04:05.625Z", "deployment", "staging", "v0.4.0", "failure", 245.5,
            errors=["Health check timeout after 60s"],
            notes="Solution: increased start_period to 90s for n8n in docker-compose.yml",
            deployed_by="agent", trace_id="CHORA-DEPLOY-2025-010", services=svc,
            resolution_time_seconds=900),
        cur(R, "2025-11-02T09:20:00Z", "deployment", "staging", "v0.4.1", "success", 238.75,
            deployed_by="agent", trace_id="CHORA-DEPLOY-2025-011", services=svc),
        cur(R, "2025-11-03T12:00:00Z", "backup", "staging", "v0.4.1", "success", 96.4,
            deployed_by="ci_cd", metadata={"backup_dir": "/srv/backups/chora-workspace"}),
        # Written from a +02:00 clock: 07:30Z, i.e. BEFORE the 08:00Z success below,
        # although its local time string sorts after it.
        cur(R, "2025-11-04T09:30:00+02:00", "deployment", "production", "v0.4.1", "failure", 301.2,
            errors=["Volume mount failed: /srv/chora-workspace/data not found"],
            notes="Solution: created /srv/chora-workspace/data and fixed its owner (chown 1000:1000)",
            deployed_by="human", services=svc,
            metadata={"resolution_time_seconds": 1500, "host": "prod-1"}),
        cur(R, "2025-11-04T08:00:00Z", "deployment", "production", "v0.4.1", "success", 288.4,
            deployed_by="human", services=svc),
        cur(R, "2025-11-04T08:10:00Z", "health_check", "production", "v0.4.1", "success", 6.1,
            deployed_by="agent"),
        cur(R, "2025-11-05T10:00:00+02:00", "configuration_change", "production", "v0.4.1", "success", 12.5,
            notes="Rotated the POSTGRES_PASSWORD secret", deployed_by="human",
            metadata={"secrets_updated": True}),
        cur(R, "2025-11-06T06:00:00Z", "health_check", "production", "v0.4.1", "failure", 60.5,
            errors=["Health check timeout after 60s"], deployed_by="agent"),
        cur(R, "2025-11-06T06:15:00Z", "health_check", "production", "v0.4.1", "success", 7.35,
            deployed_by="agent"),
        cur(R, "2025-11-08T14:00:00Z", "deployment", "staging", "v0.5.0", "success", 251.3,
            deployed_by="ci_cd", services=svc, runner="self-hosted", ticket="OPS-112"),
        # One deployment without trace_id: records matched by version.
        cur(R, "2025-11-09T10:00:00Z", "deployment", "production", "v0.5.0", "in_progress", 1.8,
            deployed_by="human", services=svc),
        cur(R, "2025-11-09T10:04:36.05Z", "deployment", "production", "v0.5.0", "success", 276.05,
            deployed_by="human", services=svc, notes="Zero-downtime: n8n drained first",
            metadata={"commit_timestamp": "2025-11-07T16:30:00+01:00"}),
        cur(R, "2025-11-11T09:00:00Z", "deployment", "development", "v0.5.1", "success", 205.9,
            deployed_by="ci_cd", services=svc),
        cur(R, "2025-11-12T13:00:00Z", "deployment", "staging", "v0.5.1", "failure", 130.4,
            errors=["Port 5678 already in use"],
            notes="Solution: removed the orphaned n8n container (docker compose down --remove-orphans)",
            deployed_by="agent", trace_id="CHORA-DEPLOY-2025-012", services=svc,
            resolution_time_seconds=1200),
        cur(R, "2025-11-12T13:10:00Z", "deployment", "staging", "v0.5.1", "failure", 128.15,
            errors=["Port 5678 already in use"],
            deployed_by="agent", trace_id="CHORA-DEPLOY-2025-012", services=svc),
        cur(R, "2025-11-12T13:20:00Z", "rollback", "staging", "v0.5.0", "failure", 44.6,
            errors=["Rollback failed: image chora-workspace:v0.5.0 not present locally"],
            deployed_by="agent", trace_id="CHORA-DEPLOY-2025-012", services=svc),
        cur(R, "2025-11-12T13:30:00Z", "rollback", "staging", "v0.5.0", "success", 97.8,
            notes="Pulled v0.5.0 images again, then rolled back", deployed_by="human",
            trace_id="CHORA-DEPLOY-2025-012", services=svc),
        cur(R, "2025-11-14T23:10:00+02:00", "health_check", "staging", "v0.5.0", "success", 5.9,
            deployed_by="agent"),
        # Still running when the file was collected: no terminal record follows.
        cur(R, "2025-11-14T22:00:00Z", "deployment", "production", "v0.5.1", "in_progress", 2.3,
            deployed_by="ci_cd", trace_id="CHORA-DEPLOY-2025-013", services=svc),
    ]


# --------------------------------------------------------------------------
# chora-base: template repository, LEGACY format (no repository, no duration)
# --------------------------------------------------------------------------
def base():
    return [
        legacy("2025-11-01T08:00:00Z", "deployment", "development", "v3.2.0", "success"),
        legacy("2025-11-01T12:00:00Z", "deployment", "staging", "v3.2.0", "success",
               notes="First staging deployment from the SAP-015 template"),
        legacy("2025-11-03T09:00:00Z", "deployment", "production", "v3.2.0", "failure",
               errors=["Health check timeout after 30s"],
               notes="Solution: increased start_period to 45s (same fix as chora-compose)"),
        legacy("2025-11-03T09:20:00Z", "deployment", "production", "v3.2.0", "success"),
        legacy("2025-11-03T09:25:00Z", "health_check", "production", "v3.2.0", "success"),
        legacy("2025-11-04T09:00:00Z", "health_check", "production", "v3.2.0", "failure",
               errors=["Health check level 4 failed: process chora-base-worker not running"]),
        legacy("2025-11-04T09:10:00Z", "health_check", "production", "v3.2.0", "success"),
        legacy("2025-11-05T01:00:00Z", "backup", "production", "v3.2.0", "success",
               notes="Nightly backup to /var/backups/chora-base"),
        legacy("2025-11-06T10:00:00Z", "deployment", "staging", "v3.2.1", "in_progress"),
        legacy("2025-11-06T10:03:00Z", "deployment", "staging", "v3.2.1", "success"),
        legacy("2025-11-07T15:00:00Z", "deployment", "production", "v3.2.1", "failure",
               errors=["Image pull failed: ghcr.io/chora/chora-base:v3.2.1 manifest unknown"],
               host="ci-runner-3"),
        legacy("2025-11-07T15:12:30Z", "rollback", "production", "v3.2.0", "success",
               notes="Rolled back to v3.2.0"),
        legacy("2025-11-08T11:00:00Z", "configuration_change", "development", "v3.2.1", "success",
               notes="Switched the dev stack to docker compose v2"),
        legacy("2025-11-10T16:00:00Z", "deployment", "development", "v3.3.0", "failure",
               errors=["Volume mount failed: /var/lib/chora-base/templates not found"]),
        legacy("2025-11-10T16:30:00Z", "health_check", "development", "v3.2.1", "success"),
        legacy("2025-11-11T09:00:00+02:00", "deployment", "staging", "v3.2.2", "success",
               notes="Hotfix for the template rendering bug"),
    ]


# --------------------------------------------------------------------------
# chora-indexer: current format, good lines mixed with one bad line per reason
# --------------------------------------------------------------------------
def indexer():
    R = "chora-indexer"
    svc = ["chora-indexer", "redis"]
    return [
        cur(R, "2025-11-01T11:00:00Z", "deployment", "development", "v2.0.0", "success", 87.15,
            deployed_by="ci_cd", services=svc),
        # malformed_json: bare word where a value is expected
        b'{"timestamp": "2025-11-03T10:00:00Z", "event_type": deployment}\n',
        cur(R, "2025-11-02T10:00:00Z", "deployment", "staging", "v2.0.0", "success", 92.6,
            deployed_by="ci_cd", services=svc),
        # truncated_line: the writer stopped mid-string
        b'{"timestamp": "2025-11-03T10:00:00Z", "event_type": "deploy\n',
        cur(R, "2025-11-03T10:00:00Z", "deployment", "production", "v2.0.0", "in_progress", 0.9,
            deployed_by="agent", trace_id="CHORA-DEPLOY-2025-020", services=svc),
        cur(R, "2025-11-03T10:01:33.5Z", "deployment", "production", "v2.0.0", "failure", 93.5,
            errors=["Health check timeout after 45s"],
            notes="Solution: increased start_period to 60s in docker-compose.yml (index warm-up is slow)",
            deployed_by="agent", trace_id="CHORA-DEPLOY-2025-020", services=svc,
            resolution_time_seconds=600),
        # not_an_object
        b'[1,2,3]\n',
        cur(R, "2025-11-03T10:12:00Z", "deployment", "production", "v2.0.0", "failure", 95.25,
            errors=["Health check timeout after 45s"],
            deployed_by="agent", trace_id="CHORA-DEPLOY-2025-021", services=svc),
        # wrong_type: duration_seconds is a string
        b'{"timestamp": "2025-11-03T11:00:00Z", "event_type": "deployment", "repository": "chora-indexer", '
        b'"environment": "staging", "version": "v2.0.0", "status": "success", "duration_seconds": "12"}\n',
        cur(R, "2025-11-03T10:25:00Z", "rollback", "production", "v1.9.4", "success", 40.4,
            notes="Rolled back to v1.9.4 until the start_period fix is released",
            deployed_by="agent", trace_id="CHORA-DEPLOY-2025-021", services=svc),
        # bad_enum: "prod" is not an environment
        b'{"timestamp": "2025-11-03T12:00:00Z", "event_type": "deployment", "repository": "chora-indexer", '
        b'"environment": "prod", "version": "v2.0.0", "status": "success", "duration_seconds": 90.5}\n',
        cur(R, "2025-11-04T07:00:00Z", "health_check", "production", "v1.9.4", "success", 4.15,
            deployed_by="agent"),
        # bad_timestamp: no seconds, no time zone
        b'{"timestamp": "2025-11-03 10:00", "event_type": "health_check", "repository": "chora-indexer", '
        b'"environment": "production", "version": "v1.9.4", "status": "success", "duration_seconds": 3.5}\n',
        cur(R, "2025-11-05T09:00:00+02:00", "deployment", "production", "v2.0.1", "success", 97.75,
            notes="start_period raised to 60s", deployed_by="agent",
            trace_id="COORD-DEPLOY-2025-004", services=svc),
        # negative_duration
        b'{"timestamp": "2025-11-05T08:00:00Z", "event_type": "backup", "repository": "chora-indexer", '
        b'"environment": "production", "version": "v2.0.1", "status": "success", "duration_seconds": -5}\n',
        cur(R, "2025-11-06T12:00:00Z", "health_check", "production", "v2.0.1", "failure", 10.2,
            errors=["Health check level 3 failed: /srv/chora-indexer/config.yaml is invalid"],
            notes="Solution: restored config.yaml from the 2025-11-05 backup", deployed_by="agent",
            resolution_time_seconds=540),
        # missing_field: current format (has repository) but no status
        b'{"timestamp": "2025-11-06T12:30:00Z", "event_type": "deployment", "repository": "chora-indexer", '
        b'"environment": "production", "version": "v2.0.1", "duration_seconds": 88.0}\n',
        cur(R, "2025-11-06T12:20:00Z", "configuration_change", "production", "v2.0.1", "success", 6.45,
            notes="Restored config.yaml", deployed_by="human"),
        # bad_trace_id
        b'{"timestamp": "2025-11-07T09:00:00Z", "event_type": "deployment", "repository": "chora-indexer", '
        b'"environment": "staging", "version": "v2.0.1", "status": "success", "duration_seconds": 91.0, '
        b'"trace_id": "DEPLOY-1"}\n',
        cur(R, "2025-11-08T03:00:00Z", "backup", "production", "v2.0.1", "success", 188.6,
            deployed_by="ci_cd",
            metadata={"backup_dir": "/srv/backups/chora-indexer", "size_bytes": 1073741824}),
        # duplicate_field: "status" twice
        b'{"timestamp": "2025-11-09T09:00:00Z", "event_type": "deployment", "repository": "chora-indexer", '
        b'"environment": "staging", "version": "v2.1.0", "status": "success", "duration_seconds": 99.0, '
        b'"status": "failure"}\n',
        cur(R, "2025-11-10T09:00:00Z", "deployment", "staging", "v2.1.0", "failure", 14.35,
            errors=["Volume mount failed: /srv/chora-indexer/cache not found"],
            notes="Solution: added the cache volume to docker-compose.staging.yml",
            deployed_by="ci_cd", trace_id="CHORA-DEPLOY-2025-022", services=svc,
            metadata={"resolution_time_seconds": 420}),
        # invalid_utf8: bytes FF FE inside a string
        b'{"timestamp": "2025-11-10T09:05:00Z", "event_type": "deployment", "repository": "chora-indexer", '
        b'"environment": "staging", "version": "v2.1.0", "status": "success", "duration_seconds": 95.0, '
        b'"notes": "cache \xff\xfe warm"}\n',
        cur(R, "2025-11-10T09:15:00Z", "deployment", "staging", "v2.1.0", "success", 101.85,
            deployed_by="ci_cd", trace_id="CHORA-DEPLOY-2025-023", services=svc),
        # nul_byte: a NUL in the middle of the line
        b'{"timestamp": "2025-11-11T09:00:00Z", "event_type": "health_check", "repository": "chora-indexer", '
        b'"environment": "staging", "version": "v2.1.0", "status": "suc\x00cess", "duration_seconds": 3.0}\n',
        cur(R, "2025-11-12T10:00:00Z", "deployment", "production", "v2.1.0", "success", 104.3,
            notes="Deployed with chora-compose v1.9.2 and chora-search v3.0.0 → all healthy",
            deployed_by="agent", trace_id="MULTI-DEPLOY-2025-001", services=svc, orchestrator="inbox"),
        cur(R, "2025-11-12T10:05:00Z", "health_check", "production", "v2.1.0", "success", 3.85,
            deployed_by="agent", trace_id="MULTI-DEPLOY-2025-001"),
        cur(R, "2025-11-13T08:00:00Z", "deployment", "development", "v2.1.0", "success", 79.9,
            errors=[], notes=None, deployed_by="ci_cd", services=None, metadata=None),
        cur(R, "2025-11-13T08:02:00Z", "health_check", "development", "v2.1.0", "success", 3.05,
            deployed_by="ci_cd", resolution_time_seconds=None),
    ]


# --------------------------------------------------------------------------
# Files that a collector must NOT read (skipped directories)
# --------------------------------------------------------------------------
def vendored():
    R = "chora-workspace"
    return [
        cur(R, "2025-11-05T12:00:00Z", "deployment", "production", "v0.4.1", "success", 11.5,
            deployed_by="ci_cd"),
        cur(R, "2025-11-05T12:01:00Z", "deployment", "production", "v0.4.1", "failure", 12.5,
            errors=["Health check timeout after 30s"], deployed_by="ci_cd"),
    ]


def build_output():
    return [
        cur("chora-search", "2025-11-12T10:10:00Z", "deployment", "production", "v3.0.0", "success", 66.6,
            deployed_by="agent", trace_id="MULTI-DEPLOY-2025-001"),
    ]


BOM = b"\xef\xbb\xbf"

FILES = [
    ("chora-compose", compose, b""),
    ("chora-workspace", workspace, BOM),
    ("chora-base", base, b""),
    ("chora-indexer", indexer, b""),
    (os.path.join("chora-workspace", "node_modules", "pkg"), vendored, b""),
    (os.path.join("chora-search", "target"), build_output, b""),
]


def main():
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    for folder, make, prefix in FILES:
        path = os.path.join(ROOT, folder, EVENTS)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(prefix + render(make()))
        print(os.path.relpath(path, HERE))


if __name__ == "__main__":
    main()
