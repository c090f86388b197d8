#!/usr/bin/env python3
"""Writes fixtures.json: small ecosystems for DORA's figures, each with figures computed by hand
and the reason they are what they are. The window of every fixture is `--window 30d --as-of
2025-01-31`: from 2025-01-01T00:00:00Z (included) to 2025-01-31T00:00:00Z (excluded), 30 days.
A window is cut to the history the store holds (it begins at the day of the first event), so
every fixture but one opens with a health check at the window's start: its history covers the
30 days.
Run it again after editing; crates/deploylens-cli/tests/dora.rs reads the JSON."""
import json
import pathlib


def t(day, hour=10, minute=0, month=1, year=2025):
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00Z"


def ev(kind, at, status, version="v1", env="production", repo="app", **more):
    e = {"timestamp": at, "event_type": kind, "repository": repo, "environment": env,
         "version": version, "status": status, "duration_seconds": 60}
    e.update(more)
    return e


def dep(at, status, version="v1", **more):
    return ev("deployment", at, status, version, **more)


def rollback(at, status="success", version="v0", **more):
    return ev("rollback", at, status, version, **more)


def health(at, status, **more):
    return ev("health_check", at, status, **more)


P = ("app", "production")
FIXTURES = []


HISTORY = health("2025-01-01T00:00:00Z", "success")


def fixture(name, reason, events, expected, rows=None, history=True):
    events = ([HISTORY] if history else []) + events
    FIXTURES.append({"name": name, "reason": reason, "events": events,
                     "expected": [{"repository": r, "environment": e, **f} for (r, e), f in expected],
                     **({"rows": [list(r) for r in rows]} if rows else {})})


fixture("single-success", "one successful production deployment in 30 days",
        [dep(t(10), "success")],
        [(P, {"deployments": 1, "successful_deployments": 1, "deployments_per_day": 1 / 30,
              "deployment_frequency_band": "medium", "failed_changes": 0, "change_failure_rate": 0.0,
              "change_failure_band": "elite", "restores": 0, "recovery_median_seconds": None,
              "rework_deployments": 0, "rework_rate": 0.0, "changes_with_commit_time": 0,
              "lead_time_median_seconds": None, "bands_from": "DORA 2023"})])

fixture("change-failure-rate-never-above-one",
        "three failed deployments each rolled back: three failed changes of three, not six",
        [dep(t(5), "failure", "v1"), rollback(t(5, 10, 10)),
         dep(t(6), "failure", "v2"), rollback(t(6, 10, 10)),
         dep(t(7), "failure", "v3"), rollback(t(7, 10, 10))],
        [(P, {"deployments": 3, "failed_changes": 3, "change_failure_rate": 1.0, "change_failure_band": "low",
              "restores": 3, "recovery_median_seconds": 600.0, "rework_deployments": 3, "rework_rate": 0.5})])

fixture("incidents-are-not-deployments",
        "failed health checks are incidents, not failed deployments: they do not enter the rate",
        [dep(t(3), "success", "v1"), dep(t(4), "success", "v2")] + [health(t(d, 12), "failure") for d in range(5, 10)],
        [(P, {"deployments": 2, "failed_changes": 0, "change_failure_rate": 0.0, "restores": 0})])

fixture("non-production-is-its-own-row",
        "staging and development deployments do not inflate production's frequency",
        [dep(t(10), "success")] + [dep(t(d), "success", f"v{d}", env="staging") for d in (2, 3, 4, 5)]
        + [dep(t(d), "success", f"v{d}", env="development") for d in (2, 3, 4)],
        [(P, {"deployments": 1, "deployments_per_day": 1 / 30}),
         (("app", "staging"), {"deployments": 4, "deployments_per_day": 4 / 30}),
         (("app", "development"), {"deployments": 3, "deployments_per_day": 3 / 30})],
        rows=[P, ("app", "staging"), ("app", "development")])

fixture("in-progress-then-success-once", "an in_progress record and its outcome are one deployment",
        [dep(t(10), "in_progress", trace_id="CHORA-DEPLOY-2025-001"), dep(t(10, 10, 5), "success", trace_id="CHORA-DEPLOY-2025-001")],
        [(P, {"deployments": 1, "successful_deployments": 1, "failed_changes": 0})])

fixture("retry-counted-once",
        "a failed attempt retried with the same version is one deployment, a failed change, and a restore",
        [dep(t(10), "failure"), dep(t(10, 10, 30), "success")],
        [(P, {"deployments": 1, "successful_deployments": 1, "failed_changes": 1, "change_failure_rate": 1.0,
              "restores": 1, "recovery_median_seconds": 1800.0, "rework_deployments": 0, "rework_rate": 0.0})])

fixture("retry-by-trace-id",
        "attempts share a trace_id; another trace_id of the same version is another deployment",
        [dep(t(10), "failure", trace_id="CHORA-DEPLOY-2025-001"), dep(t(10, 10, 20), "success", trace_id="CHORA-DEPLOY-2025-001"),
         dep(t(11), "success", trace_id="CHORA-DEPLOY-2025-002")],
        [(P, {"deployments": 2, "successful_deployments": 2, "failed_changes": 1, "change_failure_rate": 0.5,
              "restores": 1, "recovery_median_seconds": 1200.0})])

fixture("window-start-included", "an event exactly at the window's start is in it",
        [dep("2025-01-01T00:00:00Z", "success")],
        [(P, {"deployments": 1, "successful_deployments": 1})])

fixture("window-end-excluded", "an event exactly at the window's end belongs to the next window",
        [dep("2025-01-31T00:00:00Z", "success")],
        [(P, {"deployments": 0, "successful_deployments": 0, "deployments_per_day": 0.0,
              "deployment_frequency_band": "low", "change_failure_rate": None, "change_failure_band": None,
              "rework_rate": None})])

fixture("timestamps-with-offsets", "offsets are converted to UTC before the window is applied",
        [dep("2025-01-01T00:30:00+01:00", "success", "v1"), dep("2025-01-30T23:30:00-01:00", "success", "v2"),
         dep("2025-01-15T12:00:00+05:30", "success", "v3")],
        [(P, {"deployments": 1, "successful_deployments": 1})])

fixture("empty-days-count-as-zero", "3 deployments in 30 days are 0.1 a day, not 1 a day over the 3 active days",
        [dep(t(d), "success", f"v{d}") for d in (2, 3, 4)],
        [(P, {"deployments_per_day": 0.1, "deployment_frequency_band": "medium"})])

fixture("no-deployments-is-null",
        "a window with no production deployment has null rates, not 0; health checks alone change nothing",
        [dep(t(20, month=12, year=2024), "success"), health(t(10), "failure"), health(t(11), "success")],
        [(P, {"deployments": 0, "deployments_per_day": 0.0, "change_failure_rate": None,
              "recovery_median_seconds": None, "rework_rate": None, "lead_time_median_seconds": None,
              "lead_time_band": None, "recovery_band": None})])

fixture("rollback-after-success-is-a-failed-change",
        "a successful deployment undone by a rollback failed as a change; the rollback is rework",
        [dep(t(10), "success"), rollback(t(10, 11))],
        [(P, {"deployments": 1, "failed_changes": 1, "change_failure_rate": 1.0, "restores": 0,
              "rework_deployments": 1, "rework_rate": 0.5})])

fixture("failed-rollback-passed-over", "a rollback that failed undid nothing and is not counted as rework",
        [dep(t(10), "success"), rollback(t(10, 11), "failure")],
        [(P, {"failed_changes": 0, "change_failure_rate": 0.0, "rework_deployments": 0, "rework_rate": 0.0})])

fixture("recovery-by-rollback", "a failure restored by a rollback 15 minutes later",
        [dep(t(10), "failure", "v2"), rollback(t(10, 10, 15), version="v1")],
        [(P, {"failed_changes": 1, "restores": 1, "recovery_median_seconds": 900.0, "recovery_band": "elite"})])

fixture("recovery-by-new-deployment", "a failure restored by a new version two hours later, a hotfix",
        [dep(t(10), "failure", "v2"), dep(t(10, 12), "success", "v3")],
        [(P, {"deployments": 2, "successful_deployments": 1, "failed_changes": 1, "change_failure_rate": 0.5,
              "restores": 1, "recovery_median_seconds": 7200.0, "recovery_band": "high",
              "rework_deployments": 1, "rework_rate": 0.5})])

fixture("only-failures", "nothing succeeds: the streak stays open, so there is no recovery time",
        [dep(t(5), "failure", "v1"), dep(t(6), "failure", "v2"), dep(t(7), "failure", "v3")],
        [(P, {"deployments": 3, "successful_deployments": 0, "deployments_per_day": 0.0,
              "deployment_frequency_band": "low", "failed_changes": 3, "change_failure_rate": 1.0,
              "restores": 0, "recovery_median_seconds": None, "rework_deployments": 2,
              "rework_rate": 2 / 3})])

fixture("streak-spanning-the-window-start",
        "the streak began before the window: its recovery is not this window's, the deployments made during it are rework",
        [dep(t(30, month=12, year=2024), "failure", "v1"), dep(t(2), "failure", "v2"), dep(t(3), "success", "v3")],
        [(P, {"deployments": 2, "failed_changes": 1, "change_failure_rate": 0.5, "restores": 0,
              "recovery_median_seconds": None, "rework_deployments": 2, "rework_rate": 1.0})])

fixture("lead-time-top-level", "two changes, 2 h and 24 h from commit to production",
        [dep(t(10, 12), "success", "v1", commit_timestamp=t(10, 10)),
         dep(t(12, 12), "success", "v2", commit_timestamp=t(11, 12))],
        [(P, {"changes_with_commit_time": 2, "lead_time_median_seconds": 46800.0,
              "lead_time_p95_seconds": 82440.0, "lead_time_band": "elite"})])

fixture("lead-time-from-metadata", "the commit time may be written in metadata",
        [dep(t(10, 12), "success", metadata={"commit_timestamp": t(8, 12)})],
        [(P, {"changes_with_commit_time": 1, "lead_time_median_seconds": 172800.0,
              "lead_time_p95_seconds": 172800.0, "lead_time_band": "high"})])

fixture("lead-time-null-without-commit", "no event carries a commit time: lead time is null, not 0",
        [dep(t(10), "success", "v1"), dep(t(11), "success", "v2")],
        [(P, {"changes_with_commit_time": 0, "lead_time_median_seconds": None,
              "lead_time_p95_seconds": None, "lead_time_band": None})])

fixture("lead-time-of-successful-deployments-only", "a failed deployment delivered no change",
        [dep(t(10, 10), "failure", "v1", commit_timestamp=t(10, 9)),
         dep(t(10, 11), "success", "v2", commit_timestamp=t(10, 8))],
        [(P, {"changes_with_commit_time": 1, "lead_time_median_seconds": 10800.0})])

fixture("lead-time-commit-after-deployment-ignored", "a commit time after the deployment is a clock's error",
        [dep(t(10, 10), "success", commit_timestamp=t(10, 11))],
        [(P, {"changes_with_commit_time": 0, "lead_time_median_seconds": None})])

fixture("lead-time-with-offsets", "the commit's offset is taken into account: 12:00+02:00 is 10:00Z",
        [dep(t(10, 11), "success", commit_timestamp="2025-01-10T12:00:00+02:00")],
        [(P, {"changes_with_commit_time": 1, "lead_time_median_seconds": 3600.0})])

fixture("hotfix-while-failing-is-rework", "a new version deployed while production fails is unplanned work",
        [dep(t(5), "success", "v1"), dep(t(10, 10), "failure", "v2"), dep(t(10, 11), "success", "v3")],
        [(P, {"deployments": 3, "failed_changes": 1, "change_failure_rate": 1 / 3, "restores": 1,
              "recovery_median_seconds": 3600.0, "recovery_band": "high", "rework_deployments": 1,
              "rework_rate": 1 / 3})])

fixture("rework-rate-never-above-one", "rollbacks enter the denominator as well as the numerator",
        [dep(t(10), "failure"), rollback(t(10, 10, 10))],
        [(P, {"deployments": 1, "rework_deployments": 1, "rework_rate": 0.5})])

fixture("in-progress-without-outcome-not-counted", "a deployment still in progress has no outcome yet",
        [dep(t(10), "in_progress", "v1"), dep(t(11), "success", "v2")],
        [(P, {"deployments": 1, "successful_deployments": 1})])

fixture("repositories-apart", "each repository's figures are its own",
        [dep(t(10), "success", "v1", repo="a"), dep(t(11), "success", "v2", repo="a"),
         dep(t(10), "failure", "v1", repo="b")],
        [(("a", "production"), {"deployments": 2, "change_failure_rate": 0.0}),
         (("b", "production"), {"deployments": 1, "change_failure_rate": 1.0})],
        rows=[("a", "production"), ("b", "production")])

fixture("staging-failure-does-not-touch-production",
        "a failure in staging opens a streak in staging only: production's deployment is no hotfix",
        [dep(t(10, 10), "failure", env="staging"), dep(t(10, 11), "success")],
        [(P, {"deployments": 1, "failed_changes": 0, "rework_deployments": 0}),
         (("app", "staging"), {"deployments": 1, "failed_changes": 1, "change_failure_rate": 1.0, "restores": 0})])

fixture("daily-deployments-are-elite", "one successful deployment every day of the window",
        [dep(t(d, 12), "success", f"v{d}") for d in range(1, 31)],
        [(P, {"successful_deployments": 30, "deployments_per_day": 1.0, "deployment_frequency_band": "elite"})])

fixture("weekly-deployments-are-high", "5 deployments in 30 days: more than one a week",
        [dep(t(d), "success", f"v{d}") for d in (3, 9, 15, 21, 27)],
        [(P, {"deployments_per_day": 5 / 30, "deployment_frequency_band": "high"})])

fixture("recovery-is-the-median-of-streaks", "restores of 10 and 60 minutes: median 35 minutes",
        [dep(t(5, 10), "failure", "v1"), dep(t(5, 10, 10), "success", "v2"),
         dep(t(6, 10), "failure", "v3"), dep(t(6, 11), "success", "v4")],
        [(P, {"restores": 2, "recovery_median_seconds": 2100.0, "recovery_band": "elite",
              "failed_changes": 2, "change_failure_rate": 0.5, "rework_deployments": 2, "rework_rate": 0.5})])

fixture("consecutive-failures-are-one-streak", "two failures in a row, then a success: one restore of an hour",
        [dep(t(10, 10), "failure", "v1"), dep(t(10, 10, 30), "failure", "v2"), dep(t(10, 11), "success", "v3")],
        [(P, {"deployments": 3, "failed_changes": 2, "change_failure_rate": 2 / 3, "restores": 1,
              "recovery_median_seconds": 3600.0, "rework_deployments": 2, "rework_rate": 2 / 3})])

fixture("rollback-after-the-window", "the change failed inside the window even though its rollback came after it",
        [dep("2025-01-30T23:00:00Z", "success"), rollback("2025-01-31T01:00:00Z")],
        [(P, {"deployments": 1, "failed_changes": 1, "change_failure_rate": 1.0, "rework_deployments": 0,
              "rework_rate": 0.0})])

fixture("duplicate-lines-counted-once", "the same line written twice is one event",
        [dep(t(10), "success"), dep(t(10), "success")],
        [(P, {"deployments": 1, "successful_deployments": 1})])

fixture("history-begins-inside-the-window",
        "the store's history begins on January 21: 1 deployment over its 10 days, not over 30",
        [dep(t(21, 0), "success"), dep(t(25), "success", "v2"), dep(t(26), "failure", "v3")],
        [(P, {"deployments": 3, "successful_deployments": 2, "deployments_per_day": 0.2,
              "deployment_frequency_band": "high"})], history=False)

fixture("empty-store-window-is-null",
        "the only deployment is after the window: no history inside it, so no frequency and no band",
        [dep("2025-02-10T10:00:00Z", "success")],
        [(P, {"deployments": 0, "deployments_per_day": None, "deployment_frequency_band": None,
              "change_failure_rate": None})], history=False)

if __name__ == "__main__":
    out = pathlib.Path(__file__).with_name("fixtures.json")
    out.write_text(json.dumps(FIXTURES, indent=1) + "\n")
    print(f"{len(FIXTURES)} fixtures -> {out}")
