#!/usr/bin/env python3
"""Builds labeled.jsonl from the collected parts (parts/*.jsonl) and checks them.

Each line of a part is {"tool", "template", "message", "source"}: a log or error line as a
tool printed it, the template it was printed from (`<*>` for every variable part) and the
public page it was taken from. The split is by source: the lines of one issue thread or page
are all `train` or all `heldout` (a third of the sources, by a hash of the URL), so held-out
lines come from threads never looked at while the masking rules were written.

    python3 testdata/logs/assemble.py
"""

import collections
import glob
import hashlib
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def split_of(source):
    return "heldout" if int(hashlib.sha256(source.encode()).hexdigest(), 16) % 3 == 0 else "train"


def check(rows):
    problems = []
    for r in rows:
        for k in ("tool", "template", "message", "source"):
            if not isinstance(r.get(k), str) or not r[k]:
                problems.append(f"{r.get('_part')}: missing {k}: {r}")
        pattern = "^" + ".+?".join(re.escape(p) for p in r["template"].split("<*>")) + "$"
        if not re.match(pattern, r["message"], re.S):
            problems.append(f"{r['_part']}: template does not match: {r['template']!r} / {r['message']!r}")
    return problems


def main():
    rows, seen = [], set()
    for part in sorted(glob.glob(os.path.join(HERE, "parts", "*.jsonl"))):
        for n, line in enumerate(open(part), 1):
            if not line.strip():
                continue
            r = json.loads(line)
            key = (r["tool"], r["message"])
            if key in seen:
                continue
            seen.add(key)
            r["_part"] = f"{os.path.basename(part)}:{n}"
            rows.append(r)
    problems = check(rows)
    if problems:
        print("\n".join(problems[:20]), file=sys.stderr)
        return 1
    with open(os.path.join(HERE, "labeled.jsonl"), "w") as out:
        for r in rows:
            out.write(json.dumps({"tool": r["tool"], "split": split_of(r["source"]), "template": r["template"], "message": r["message"], "source": r["source"]}, ensure_ascii=False) + "\n")
    tools = collections.Counter(r["tool"] for r in rows)
    splits = collections.Counter(split_of(r["source"]) for r in rows)
    print(f"{len(rows)} lines, {len(tools)} tools, {len({(r['tool'], r['template']) for r in rows})} templates; {dict(splits)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
