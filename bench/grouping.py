#!/usr/bin/env python3
"""Grouping accuracy on the labeled log set (testdata/logs/labeled.jsonl): deploylens against
Drain3 on the same lines, tool by tool.

Grouping accuracy (GA) is the share of lines whose predicted group holds exactly the lines of
their true template. Each tool's lines of one split are one corpus, in file order: deploylens
reads them as one `deploylens fingerprint --format json` input, Drain3 as one miner. Both get
the lines as the tools wrote them, prefixes included.

    python3 bench/grouping.py [--binary target/release/deploylens] [--json]
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABELED = os.path.join(ROOT, "testdata", "logs", "labeled.jsonl")

# The masks of Drain3's own example configuration (examples/drain3.ini), its usual setting.
DRAIN3_MASKS = [
    (r"((?<=[^A-Za-z0-9])|^)(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))((?=[^A-Za-z0-9])|$)", "ID"),
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9a-f]{6,} ?){3,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9A-F]{4} ?){4,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
    (r"(?<=executed cmd )(\".+?\")", "CMD"),
]


def load(path=LABELED):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    for r in rows:
        if r.get("split") not in ("train", "heldout"):
            raise SystemExit(f"{path}: a row without a split: {r}")
    return rows


def accuracy(truth, predicted):
    """Grouping accuracy of `predicted` labels against `truth` labels, line by line."""
    members_true = collections.defaultdict(set)
    members_pred = collections.defaultdict(set)
    for i, (t, p) in enumerate(zip(truth, predicted)):
        members_true[t].add(i)
        members_pred[p].add(i)
    correct = sum(1 for i, (t, p) in enumerate(zip(truth, predicted)) if members_true[t] == members_pred[p])
    return correct / max(1, len(truth))


def deploylens_groups(binary, messages, per_line=False):
    cmd = [binary, "fingerprint", "--format", "json"] + (["--per-line"] if per_line else [])
    t0 = time.perf_counter()
    out = subprocess.run(cmd, input="\n".join(messages) + "\n", capture_output=True, text=True, check=True)
    secs = time.perf_counter() - t0
    groups = [json.loads(l)["fingerprint"] for l in out.stdout.splitlines()]
    if len(groups) != len(messages):
        raise SystemExit(f"deploylens fingerprint gave {len(groups)} lines for {len(messages)} messages")
    return groups, secs


def drain3_groups(messages):
    from drain3 import TemplateMiner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.masking_instructions = [MaskingInstruction(p, m) for p, m in DRAIN3_MASKS]
    config.drain_sim_th = 0.4
    config.drain_depth = 4
    config.profiling_enabled = False
    miner = TemplateMiner(config=config)
    t0 = time.perf_counter()
    ids = [miner.add_log_message(m)["cluster_id"] for m in messages]
    return ids, time.perf_counter() - t0


DEPLOY = os.path.join(ROOT, "testdata", "errors", "labeled.jsonl")


def evaluate_deployments(binary):
    """The deployment failures of testdata/errors (train split): look-alike failures that
    must stay apart, one corpus."""
    rows = [json.loads(l) for l in open(DEPLOY) if l.strip()]
    rows = [r for r in rows if r["split"] == "train"]
    truth = [r["group"] for r in rows]
    return {"lines": len(rows), "groups": len(set(truth)), **compare(binary, [r["message"] for r in rows], truth)}


def compare(binary, messages, truth):
    """Accuracy and group count of deploylens, deploylens --per-line and Drain3 on one corpus.
    A message is one input line of `fingerprint`: its line breaks become spaces."""
    messages = [m.replace("\n", " ") for m in messages]
    out = {}
    for name, groups in (("deploylens", deploylens_groups(binary, messages)[0]),
                         ("deploylens_per_line", deploylens_groups(binary, messages, per_line=True)[0]),
                         ("drain3", drain3_groups(messages)[0])):
        out[name] = accuracy(truth, groups)
        out[f"{name}_groups"] = len(set(groups))
    return out


def evaluate(binary):
    rows = load()
    by = collections.defaultdict(list)
    for r in rows:
        by[(r["split"], r["tool"])].append(r)
    result = {"lines": len(rows), "tools": len({r["tool"] for r in rows}), "templates": len({(r["tool"], r["template"]) for r in rows}), "splits": {}}
    for split in ("train", "heldout"):
        per_tool = {}
        for (s, tool), rs in sorted(by.items()):
            if s != split:
                continue
            truth = [r["template"] for r in rs]
            per_tool[tool] = {"lines": len(rs), "templates": len(set(truth)), **compare(binary, [r["message"] for r in rs], truth)}
        n = sum(t["lines"] for t in per_tool.values()) or 1
        mean = lambda k: sum(t[k] for t in per_tool.values()) / max(1, len(per_tool))
        weighted = lambda k: sum(t[k] * t["lines"] for t in per_tool.values()) / n
        result["splits"][split] = {
            "per_tool": per_tool,
            "mean": {k: mean(k) for k in ("deploylens", "deploylens_per_line", "drain3")},
            "by_line": {k: weighted(k) for k in ("deploylens", "deploylens_per_line", "drain3")},
        }
    result["deployments"] = evaluate_deployments(binary)
    result["speed"] = speed(binary)
    return result


def speed(binary, lines=1_000_000, drain3_lines=100_000, seed=11):
    """Lines per second on one core (taskset -c 0): `deploylens fingerprint` (the rules alone
    and with learning) and Drain3, over the labeled lines repeated with fresh numbers, so that
    templates repeat as they do in real logs while values change."""
    import random
    import re
    import tempfile
    rng = random.Random(seed)
    base = [r["message"].replace("\n", " ") for r in load()]
    fresh = lambda m: re.sub(r"\d+", lambda d: str(rng.randrange(10 ** len(d.group(0)))), m)
    corpus = [fresh(base[i % len(base)]) for i in range(lines)]
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
        f.write("\n".join(corpus) + "\n")
        path = f.name
    try:
        out = {"lines": lines, "bytes": os.path.getsize(path)}
        for name, extra in (("deploylens_per_line", ["--per-line"]), ("deploylens", [])):
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                with open(path) as inp:
                    subprocess.run(["taskset", "-c", "0", binary, "fingerprint", "--format", "json", *extra], stdin=inp, stdout=subprocess.DEVNULL, check=True)
                runs.append(time.perf_counter() - t0)
            out[name] = {"seconds": sorted(runs)[1], "lines_per_s": lines / sorted(runs)[1]}
        code = ("import sys, time; sys.path.insert(0, %r); import grouping\n"
                "lines = open(%r).read().splitlines()[:%d]\n"
                "ids, secs = grouping.drain3_groups(lines)\n"
                "print(secs)") % (os.path.dirname(os.path.abspath(__file__)), path, drain3_lines)
        secs = float(subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()[-1])
        out["drain3"] = {"lines": drain3_lines, "seconds": secs, "lines_per_s": drain3_lines / secs}
        return out
    finally:
        os.unlink(path)


def report(g):
    L = ["## Grouping real log lines", "",
         f"`testdata/logs/labeled.jsonl`: {g['lines']:,} lines from {g['tools']} tools, {g['templates']} templates, each line labeled with its template (sources in `testdata/logs/README.md`). Grouping accuracy: the share of lines whose group holds exactly the lines of their template. Each tool's lines of a split are one corpus: `deploylens fingerprint` (masking rules, then templates learned from the corpus), the same with `--per-line` (the rules alone: what ingest stores today), and Drain3 with the masks of its example configuration (similarity 0.4, depth 4). Held-out lines come from sources that were not looked at while the rules were written.", ""]
    for split in ("train", "heldout"):
        s = g["splits"][split]
        L += [f"### {split}", "", "| tool | lines | templates | deploylens | groups | rules alone | groups | Drain3 | groups |", "|---|---|---|---|---|---|---|---|---|"]
        for tool, t in sorted(s["per_tool"].items()):
            L.append(f"| {tool} | {t['lines']} | {t['templates']} | {t['deploylens']:.2f} | {t['deploylens_groups']} | {t['deploylens_per_line']:.2f} | {t['deploylens_per_line_groups']} | {t['drain3']:.2f} | {t['drain3_groups']} |")
        m, w = s["mean"], s["by_line"]
        L += [f"| **mean of tools** | | | **{m['deploylens']:.3f}** | | {m['deploylens_per_line']:.3f} | | **{m['drain3']:.3f}** | |",
              f"| weighted by lines | | | {w['deploylens']:.3f} | | {w['deploylens_per_line']:.3f} | | {w['drain3']:.3f} | |", ""]
    sp = g.get("speed")
    if sp:
        L += ["### Speed, one core", "", f"The labeled lines repeated to {sp['lines']:,} lines ({sp['bytes']/1e6:.0f} MB) with fresh numbers, so that templates repeat as in real logs while values change; each process pinned to one core (`taskset -c 0`). deploylens: `deploylens fingerprint --format json`, the whole process (reading, grouping, writing JSON), median of 3. Drain3: `add_log_message` over the first {sp['drain3']['lines']:,} lines, in-process (Python start-up not counted).", "",
              "| | lines/s | against Drain3 |", "|---|---|---|",
              f"| deploylens, rules alone (`--per-line`) | {sp['deploylens_per_line']['lines_per_s']:,.0f} | {sp['deploylens_per_line']['lines_per_s']/sp['drain3']['lines_per_s']:.1f}x |",
              f"| deploylens, learned templates | {sp['deploylens']['lines_per_s']:,.0f} | {sp['deploylens']['lines_per_s']/sp['drain3']['lines_per_s']:.1f}x |",
              f"| Drain3 | {sp['drain3']['lines_per_s']:,.0f} | 1x |", ""]
    d = g.get("deployments")
    if d:
        L += ["### Deployment failures that look alike", "", f"The train split of `testdata/errors/labeled.jsonl` ({d['lines']} messages of {d['groups']} failures, several of them alike on purpose: connection refused and timed out, exit codes 137 and 143) as one corpus. Learning templates must not merge them.", "",
              "| | deploylens | rules alone | Drain3 |", "|---|---|---|---|",
              f"| grouping accuracy | {d['deploylens']:.3f} | {d['deploylens_per_line']:.3f} | {d['drain3']:.3f} |",
              f"| groups | {d['deploylens_groups']} | {d['deploylens_per_line_groups']} | {d['drain3_groups']} |", ""]
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.environ.get("DEPLOYLENS_BIN", os.path.join(ROOT, "target", "release", "deploylens")))
    ap.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    a = ap.parse_args()
    g = evaluate(os.path.abspath(a.binary))
    print(json.dumps(g, indent=1) if a.json else report(g))


if __name__ == "__main__":
    sys.exit(main())
