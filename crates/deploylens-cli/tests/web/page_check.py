#!/usr/bin/env python3
"""Drives the deploylens dashboard page (GET / of `deploylens serve`) in Debian's headless
Chromium over the Chrome DevTools Protocol, and checks it against its contract (routes, DOM
ids, data attributes: notes/web-contract.md) and against the JSON API it is built on:

- every panel renders (body[data-state=ready]) with no console error, no uncaught exception,
  no failed request and no HTTP error: otherwise only a user would see a broken asset or a 500;
- the seven panels have rows, and the two chart panels hold a canvas;
- filtered to one repository, each of its table cells (data-value) is the API's number: the
  page formats, it never computes; the filter narrows the data; 30 days show no fewer failures;
- a failed deployment appended to a collected file appears without a reload (the page polls
  /api/status), and its source link leads back to that very line;
- the fix search lists a past fix; with --token, the page asks for the token and then works.

Prints one JSON object of what was checked (timings in ms) and exits 0; at the first failed
check it names the check on stderr and exits 1. bench/run.py's `page` section imports its
browser helpers (open_page, navigate, wait_render, choose, stop_browser).

    page_check.py --url http://127.0.0.1:PORT --append-file PATH --repository R
                  --screenshots DIR [--chromium /usr/bin/chromium] [--token T]
"""

import argparse, base64, datetime, json, math, os, secrets, shutil, signal, subprocess, sys, tempfile, time, traceback
import urllib.error, urllib.parse, urllib.request

try:
    import websocket  # PyPI: websocket-client
except ImportError:
    sys.exit("page_check.py needs the PyPI package websocket-client: run scripts/install-test-deps.sh")

PANELS = {"frequency": "deploy_frequency", "success": "success_rate", "durations": "environment_summary",
          "failures": "failed_deployments", "environments": "environment_summary",
          "repositories": "repository_comparison", "uptime": "uptime"}
CHART_PANELS = ("frequency", "durations")
# Injected into every document: the times (ms since navigation start) at which body[data-state]
# turns "ready", once per value of data-renders.
OBSERVER = """window.__dl = { ready: [], last: null };
new MutationObserver(() => { const b = document.body;
  if (b && b.dataset.state === "ready" && b.dataset.renders !== window.__dl.last) {
    window.__dl.last = b.dataset.renders; window.__dl.ready.push(performance.now()); }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state", "data-renders"] });"""
STATE = """({ old: !!window.__dlOld, state: document.body && document.body.dataset.state,
  renders: Number(document.body && document.body.dataset.renders || 0),
  status: (document.querySelector("#status") || {}).textContent || "" })"""
PANEL_INFO = """Object.fromEntries([...document.querySelectorAll("section.panel[data-panel]")].map(p => [p.dataset.panel,
  { query: p.dataset.query, rows: p.dataset.rows === undefined ? null : Number(p.dataset.rows),
    canvases: p.querySelectorAll("canvas").length }]))"""
ROWS = """[...document.querySelectorAll('section.panel[data-panel="%s"] tr:has(> td[data-column])')].map(tr => ({
  repository: tr.dataset.repository ?? null, environment: tr.dataset.environment ?? null,
  cells: Object.fromEntries([...tr.querySelectorAll("td[data-column][data-value]")].map(td => [td.dataset.column, td.dataset.value])),
  source: (tr.querySelector("a.source") || {}).href || null, text: tr.textContent }))"""


class Failed(Exception):
    """A check that did not hold; the message names it."""


def expect(ok, check, detail=""):
    if not ok:
        raise Failed(f"{check}: {detail}")


class Cdp:
    """One DevTools websocket: a command waits for its answer; events meanwhile go to on_event."""

    def __init__(self, ws_url, on_event):
        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id, self.on_event = 0, on_event

    def send(self, method, params=None):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params or {}}))
        while True:
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.on_event(msg)
            elif msg.get("id") == self.next_id:
                expect("error" not in msg, f"DevTools command {method}", msg.get("error"))
                return msg.get("result", {})

    def pump(self, seconds):
        """Handles the events that arrive within `seconds`."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.ws.settimeout(left)
            try:
                msg = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                break
            if "method" in msg:
                self.on_event(msg)
        self.ws.settimeout(60)


class Recorder:
    """Console errors, exceptions, failed requests and HTTP errors, as CDP events report them.
    While `excusing` (with --token, until the first render) a 401 to an /api/ request sent without
    an Authorization header is the page asking for the token, not a fault."""

    def __init__(self):
        self.items, self.urls, self.excusable, self.excusing = [], {}, set(), False

    def __call__(self, msg):
        m, p = msg["method"], msg.get("params", {})
        if m == "Network.requestWillBeSent":
            self.urls[p["requestId"]] = p["request"]["url"]
            if (self.excusing and urllib.parse.urlsplit(p["request"]["url"]).path.startswith("/api/")
                    and not any(k.lower() == "authorization" for k in p["request"].get("headers", {}))):
                self.excusable.add(p["requestId"])
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            self.items.append({"kind": "console." + p["type"], "text": text})
        elif m == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            self.items.append({"kind": "exception", "text": (d.get("exception") or {}).get("description") or d.get("text")})
        elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
            e = p["entry"]
            self.items.append({"kind": "log." + e.get("source", ""), "text": e.get("text"), "url": e.get("url"), "request": e.get("networkRequestId")})
        elif m == "Network.loadingFailed":
            self.items.append({"kind": "request failed", "text": p.get("errorText"), "canceled": p.get("canceled", False),
                               "url": self.urls.get(p["requestId"]), "request": p["requestId"]})
        elif m == "Network.responseReceived" and p["response"]["status"] >= 400:
            self.items.append({"kind": "HTTP %d" % p["response"]["status"], "url": p["response"]["url"], "request": p["requestId"]})

    def excused(self, item):
        return item.get("request") in self.excusable and "401" in (item["kind"] + " " + str(item.get("text")))

    def expect_clean(self, when):
        bad = [i for i in self.items if not self.excused(i)]
        expect(not bad, f"no console errors or failed requests {when}", json.dumps(bad, indent=1))


def start_browser(binary="/usr/bin/chromium"):
    """Starts headless Chromium; returns (process, profile dir, websocket URL of its page)."""
    profile = tempfile.mkdtemp(prefix="deploylens-chromium-")
    log = open(os.path.join(profile, "chromium.log"), "wb")
    proc = subprocess.Popen([binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
                             f"--user-data-dir={profile}", "--window-size=1400,1000", "about:blank"],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                port = int(open(os.path.join(profile, "DevToolsActivePort")).read().split()[0])
                break
            except (OSError, ValueError, IndexError):
                tail = open(os.path.join(profile, "chromium.log"), errors="replace").read()[-2000:]
                expect(proc.poll() is None, "chromium starts", f"exited with {proc.returncode}: {tail}")
                expect(time.monotonic() < deadline, "chromium starts", f"no DevToolsActivePort after 30 s: {tail}")
                time.sleep(0.05)
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=10))
        pages = [t for t in targets if t.get("type") == "page"]
        expect(pages, "chromium has a page target", json.dumps(targets))
        return proc, profile, pages[0]["webSocketDebuggerUrl"]
    except BaseException:
        stop_browser(proc, profile)
        raise


def stop_browser(proc, profile):
    """Ends the browser's whole process group (it was started in a session of its own)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    shutil.rmtree(profile, ignore_errors=True)


def open_page(binary, recorder):
    """A browser with its page's Runtime, Log, Network and Page domains on and no HTTP cache."""
    proc, profile, ws_url = start_browser(binary)
    try:
        cdp = Cdp(ws_url, recorder)
        for domain in ("Runtime", "Log", "Network", "Page"):
            cdp.send(domain + ".enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        cdp.send("Page.addScriptToEvaluateOnNewDocument", {"source": OBSERVER})
        return proc, profile, cdp
    except BaseException:
        stop_browser(proc, profile)
        raise


def evaluate(cdp, expression):
    r = cdp.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
    expect("exceptionDetails" not in r, "page script runs", f"{expression[:200]}: {json.dumps(r.get('exceptionDetails'))[:1000]}")
    return r["result"].get("value")


def navigate(cdp, url):
    """Loads `url` afresh; the old document is marked so that it is never taken for the new one."""
    evaluate(cdp, "window.__dlOld = true")
    r = cdp.send("Page.navigate", {"url": url})
    expect(not r.get("errorText"), f"navigation to {url}", r.get("errorText"))


def wait_render(cdp, after, timeout=30.0, check="render", until_error=False):
    """Waits for data-state "ready" with data-renders above `after`; returns the page's state.
    data-state "error" fails the check, or ends the wait if `until_error`."""
    deadline = time.monotonic() + timeout
    while True:
        s = evaluate(cdp, STATE)
        if not s["old"] and s["state"] == "ready" and s["renders"] > after:
            return s
        if not s["old"] and s["state"] == "error":
            if until_error:
                return s
            raise Failed(f"{check}: the page shows an error: {s['status']!r}")
        expect(time.monotonic() < deadline, check, f"not ready after {timeout:.0f} s: {s}")
        time.sleep(0.02)


def choose(cdp, values, timeout=30.0, check="filter"):
    """Sets the selects (selector -> value), dispatches 'change' on the last one, waits for the
    render; returns ms from the change to data-state "ready"."""
    before = evaluate(cdp, STATE)["renders"]
    r = evaluate(cdp, """(() => { const want = %s; let last;
      for (const [sel, v] of Object.entries(want)) { const s = document.querySelector(sel);
        if (!s) return { missing: sel };
        if (![...s.options].some(o => o.value === v)) return { missing: sel + " option " + JSON.stringify(v), options: [...s.options].map(o => o.value) };
        s.value = v; last = s; }
      const t = performance.now(); last.dispatchEvent(new Event("change", { bubbles: true })); return { t }; })()""" % json.dumps(values))
    expect("missing" not in r, check, f"no {r.get('missing')} (options: {r.get('options')})")
    wait_render(cdp, before, timeout, check)
    return next((x - r["t"] for x in evaluate(cdp, "window.__dl.ready") if x >= r["t"]), None)


def wait_for(cdp, expression, timeout, check):
    deadline = time.monotonic() + timeout
    while not (value := evaluate(cdp, expression)):
        expect(time.monotonic() < deadline, check, f"not within {timeout:.0f} s")
        time.sleep(0.05)
    return value


def screenshot(cdp, path):
    with open(path, "wb") as f:
        f.write(base64.b64decode(cdp.send("Page.captureScreenshot", {"format": "png"})["data"]))
    return path


def click(cdp, selector):
    """A real mouse click in the middle of the element."""
    box = evaluate(cdp, """(() => { const e = document.querySelector(%s); if (!e) return null; e.scrollIntoView({ block: "center" });
      const r = e.getBoundingClientRect(); return { x: r.x + r.width / 2, y: r.y + r.height / 2 }; })()""" % json.dumps(selector))
    expect(box, f"click {selector}", "no such element")
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
        cdp.send("Input.dispatchMouseEvent", {"type": kind, **box, "button": "left", "clickCount": 1})


def api(base, path, token):
    req = urllib.request.Request(base + path, headers={"Accept": "application/json", **({"Authorization": "Bearer " + token} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        raise Failed(f"GET {path}: HTTP {e.code}: {e.read()[:500]!r}") from None


def same_value(shown, want):
    """A cell's data-value (String(v) of the API value) against the API value."""
    if want is None:
        return shown == ""
    if isinstance(want, bool):
        return shown == str(want).lower()
    if isinstance(want, (int, float)):
        try:
            return math.isclose(float(shown), want, rel_tol=1e-9)
        except ValueError:
            return False
    return shown == want if isinstance(want, str) else json.loads(shown or "null") == want


def compare_panel(cdp, base, token, panel, repo, window):
    """Every cell of `repo`'s rows in `panel` equals the API's value; returns cells compared."""
    rows = api(base, f"/api/queries/{PANELS[panel]}?" + urllib.parse.urlencode({"window": window, "repository": repo}), token)
    want = {(r.get("repository"), r.get("environment")): r for r in rows if r.get("repository") == repo}
    shown = [r for r in evaluate(cdp, ROWS % panel) if r["repository"] == repo]
    check = f"{panel} panel matches the API for {repo}"
    expect(shown, check, "the panel shows no row of it")
    expect(len(shown) == len(want), check, f"{len(shown)} rows shown, the API has {len(want)}")
    cells = 0
    for row in shown:
        key = (row["repository"], row["environment"])
        expect(key in want, check, f"row {key} is not in the API's answer")
        for col, value in row["cells"].items():
            expect(col in want[key], check, f"column {col} is not in the API's row {key}")
            expect(same_value(value, want[key][col]), check, f"{key} {col}: page {value!r}, API {want[key][col]!r}")
            cells += 1
    return cells


def check_panels(info, when):
    for name, query in PANELS.items():
        p = info.get(name)
        expect(p, f"panel {name} {when}", "missing")
        expect(p["query"] == query, f"panel {name} {when}", f"data-query {p['query']!r}, want {query!r}")
        expect((p["rows"] or 0) > 0, f"panel {name} has rows {when}", f"data-rows {p['rows']}")
        expect(name not in CHART_PANELS or p["canvases"] > 0, f"panel {name} has a chart {when}", "no <canvas>")


def first_render(a, rec, cdp, out, ms):
    """Loads the page (typing the token in when it asks for one); checks the panels."""
    rec.excusing = bool(a.token)
    navigate(cdp, a.url + "/")
    if a.token:
        s = wait_render(cdp, 0, 30, "the page asks for the token", until_error=True)
        asks = evaluate(cdp, '!!document.querySelector("#token-form") && !document.querySelector("#token-form").hidden')
        expect(s["state"] == "error" and asks, "the page asks for the token", f"state {s['state']!r}, token form shown: {asks}")
        evaluate(cdp, '(() => { document.querySelector("#token-input").value = %s; document.querySelector("#token-form").requestSubmit(); })()' % json.dumps(a.token))
    wait_render(cdp, 0, 30, "first render")
    rec.excusing = False
    ms["first_render"] = evaluate(cdp, "window.__dl.ready[0]")
    rec.expect_clean("after the first render")
    out["excused_401s"] = sum(1 for i in rec.items if rec.excused(i))
    expect(evaluate(cdp, 'document.querySelector("#filter-window").value') == "7d", "the window is 7d by default")
    out["panels"] = evaluate(cdp, PANEL_INFO)
    check_panels(out["panels"], "(7d, all repositories)")
    out["screenshots"] = [screenshot(cdp, os.path.join(a.screenshots, "dashboard.png"))]


def filters(a, cdp, out, ms):
    """One repository: its cells equal the API's, the data narrows; 30 days: no fewer failures."""
    ms["filter_render"] = choose(cdp, {"#filter-repository": a.repository}, check=f"filter by repository {a.repository}")
    out["screenshots"].append(screenshot(cdp, os.path.join(a.screenshots, "filtered.png")))
    for attempt in range(1, 4):  # the window ends "now": an event may leave it between the page's read and ours
        try:
            out["cells_compared"] = sum(compare_panel(cdp, a.url, a.token, p, a.repository, "7d") for p in ("repositories", "success"))
            out["compare_attempts"] = attempt
            break
        except Failed:
            if attempt == 3:
                raise
            choose(cdp, {"#filter-repository": a.repository}, check=f"render again for {a.repository}")
    out["panels_filtered"] = narrow = evaluate(cdp, PANEL_INFO)
    success_repos = {r["repository"] for r in evaluate(cdp, ROWS % "success")}
    full = out["panels"]["frequency"]["rows"]
    expect(narrow["frequency"]["rows"] < full or success_repos == {a.repository}, "the repository filter narrows the data",
           f"frequency rows {full} -> {narrow['frequency']['rows']}, success rows of {sorted(success_repos)}")
    ms["window_render"] = choose(cdp, {"#filter-window": "30d"}, check="window 30d")
    out["failures_rows"] = {"7d": narrow["failures"]["rows"], "30d": evaluate(cdp, PANEL_INFO)["failures"]["rows"]}
    expect(out["failures_rows"]["30d"] >= out["failures_rows"]["7d"], "30 days show no fewer failures than 7", json.dumps(out["failures_rows"]))


def live_refresh(a, cdp, out, ms):
    """A failed deployment appended to the file appears, without a reload, with its source."""
    choose(cdp, {"#filter-repository": "", "#filter-window": "24h"}, check="filters back to all repositories, 24h")
    evaluate(cdp, "window.__dlSameDocument = true")
    before = evaluate(cdp, "({ renders: Number(document.body.dataset.renders), generation: Number(document.body.dataset.generation ?? -1) })")
    # Markup in an error message is text to the page: it must show, never run or render.
    unique = (f"unique-{secrets.token_hex(8)} <img src=x onerror=\"window.__dlInjected=1\">"
              "<script>window.__dlInjected=2</script> connection refused")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    line = json.dumps({"timestamp": now, "event_type": "deployment", "repository": a.repository, "environment": "production",
                       "version": "9.9.9", "status": "failure", "duration_seconds": 12.5, "errors": [unique],
                       "notes": "restarted the pool", "deployed_by": "ci_cd"})
    t0 = time.monotonic()
    with open(a.append_file, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())
    wait_for(cdp, """[...document.querySelectorAll('section.panel[data-panel="failures"] td[data-column="error"]')].some(td => td.textContent.includes(%s))""" % json.dumps(unique),
             30, "an appended failure appears in the failures panel")
    ms["live_refresh"] = (time.monotonic() - t0) * 1e3
    injected = evaluate(cdp, """({ ran: window.__dlInjected ?? null,
        elements: document.querySelectorAll('section.panel img, section.panel script').length })""")
    expect(injected["ran"] is None and injected["elements"] == 0,
           "markup in an error message is shown as text, not run or rendered", json.dumps(injected))
    after = evaluate(cdp, "({ same: window.__dlSameDocument === true, renders: Number(document.body.dataset.renders), generation: Number(document.body.dataset.generation ?? -1) })")
    expect(after["same"], "the live refresh does not reload the page")
    expect(after["renders"] > before["renders"] and after["generation"] > before["generation"], "the live refresh re-renders a newer generation",
           f"data-renders {before['renders']} -> {after['renders']}, data-generation {before['generation']} -> {after['generation']}")
    row = next(r for r in evaluate(cdp, ROWS % "failures") if unique in r["text"])
    expect(row["cells"].get("error") == unique and row["cells"].get("fix", "restarted the pool") == "restarted the pool",
           "the new failure shows its error (and fix)", json.dumps(row["cells"]))
    expect(row["source"] and "/api/source?event_id=" in row["source"], "the new failure links its source", str(row["source"]))
    src = api(a.url, row["source"][row["source"].index("/api/source"):], a.token)
    expect(src.get("line") == line, "the source link leads to the appended line", f"{json.dumps(src)}, want line {line}")
    out["live_event"] = unique


def fix_search(cdp, out, ms):
    """Types the error of a failure that has a fix into the search box and clicks the button."""
    out["fix_query"] = query = next((r["cells"]["error"] for r in evaluate(cdp, ROWS % "failures")
                                     if r["cells"].get("fix") and "unique-" not in r["cells"].get("error", "")), "connection refused")
    evaluate(cdp, 'document.querySelector("#fix-query").value = ""; document.querySelector("#fix-query").focus()')
    cdp.send("Input.insertText", {"text": query})
    t0 = time.monotonic()
    click(cdp, "#fix-search")
    out["fix_results"] = wait_for(cdp, 'document.querySelectorAll("#fix-results li a.source").length', 30, "the fix search lists a past fix")
    ms["fix_search"] = (time.monotonic() - t0) * 1e3


def run(a, rec, cdp):
    out, ms = {"url": a.url, "repository": a.repository, "token": bool(a.token)}, {}
    os.makedirs(a.screenshots, exist_ok=True)
    first_render(a, rec, cdp, out, ms)
    filters(a, cdp, out, ms)
    live_refresh(a, cdp, out, ms)
    fix_search(cdp, out, ms)
    cdp.pump(0.5)
    rec.expect_clean("at the end")
    out["timings_ms"] = {k: round(v, 1) for k, v in ms.items() if v is not None}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--append-file", required=True)
    ap.add_argument("--repository", required=True)
    ap.add_argument("--screenshots", required=True)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--token")
    a = ap.parse_args(argv)
    a.url = a.url.rstrip("/")
    rec, proc, profile = Recorder(), None, None
    try:
        proc, profile, cdp = open_page(a.chromium, rec)
        print(json.dumps(run(a, rec, cdp), indent=1))
        return 0
    except Failed as e:
        print(f"page check failed: {e}", file=sys.stderr)
        return 1
    except Exception:  # the driver itself, or the browser connection, broke
        print(f"page check failed: unexpected error:\n{traceback.format_exc()}", file=sys.stderr)
        return 1
    finally:
        if proc:
            stop_browser(proc, profile)


if __name__ == "__main__":
    sys.exit(main())
