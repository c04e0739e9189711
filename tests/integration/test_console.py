#!/usr/bin/env python3
"""The coordinator's console (GET / of coordinator.http) in Debian's
headless Chromium, against the sandbox: one relay, a leader and a follower
coordinator, two herald-agents (file sinks) in a group of 4 partitions and
a writer on a database of its own.

Asserted on the rendered page: the relay is listed; the 4 partition rows
show owners and SCNs, and the SCNs move while the writer runs; the lag
plot has a line of at least 2 samples; with one agent SIGSTOPped (the
writer goes on, so its lag grows) one of its partitions is marked `worst`
and its status leaves OK in bounded time, and comes back after SIGCONT;
the page loads nothing from another origin, and its three files are
served as they are in coordinator/console/; a follower's page renders
(groups, owners, a link to the leader's console) without errors, and
shows the failing /status once that coordinator is stopped. A snapshot
asked with heraldctl snapshot shows as the group's snapshot line, done,
with the leader's rows, a full bar and each partition done. No JS
error anywhere (#jserrors, which console.js fills from window.onerror, and
the browser's log). A screenshot of the leader's page with the stopped
agent is kept: console_chromium.png in $HERALD_TEST_OUT, else in the
working directory (ctest's: the build's tests/integration), and the
follower's and the snapshot's beside it.

Exits 77 (skipped) only when /usr/bin/chromium or /usr/bin/chromedriver is
missing (scripts/setup installs both); any other problem fails.

Usage: test_console.py [TEST...]   (default: all)
"""
import os
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import (BIN, SRC, Relay, run,  # noqa: E402
                        setup_db, sql)
import test_agent as ta  # noqa: E402
import test_coordinator as tc  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DB = "it_console"
DDL = ("CREATE TABLE it_console.t (id INT PRIMARY KEY, n BIGINT,"
       " s VARCHAR(40))")
CLUSTER = "itest"     # the relays' cluster (test_relay.Relay)
PARTITIONS = 4
AGENT_SESSION = "20s"  # longer than the SIGSTOP: the partitions stay put
STOP_BOUND_S = 15      # the stopped agent's partition non-OK within this
BAD = ("WARN", "STALL", "STOP", "UNOWNED")


def out_dir():
    d = os.environ.get("HERALD_TEST_OUT") or os.getcwd()
    os.makedirs(d, exist_ok=True)
    return d


def config_keys(program):
    """The keys `heraldctl config-doc PROGRAM` documents."""
    r = subprocess.run([os.path.join(BIN, "heraldctl"), "config-doc",
                        program], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, "config-doc %s: %s" % (program, r.stderr)
    return {l.split("`")[1] for l in r.stdout.splitlines()
            if l.startswith("| `")}


class Coordinator(tc.Coordinator):
    """test_coordinator's coordinator, with lines of its own in the
    coordinator: section (coordinator.lag_window)."""

    def __init__(self, tmp, cid, extra):
        super().__init__(tmp, cid, CLUSTER,
                         extra="".join("  %s\n" % l for l in extra))

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.http, path)


class Agent(ta.Agent):
    """test_agent's herald-agent, applying this test's database."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        with open(self.conf) as f:
            text = f.read()
        want = text.replace("['%s.*']" % ta.DB, "['%s.*']" % DB)
        assert want != text, "agent config without tables: " + text
        with open(self.conf, "w") as f:
            f.write(want)


class Writer(ta.Repeat):
    """Transactions on it_console.t until stopped: 8 keys each, so that
    every partition gets changes all the time."""

    def __init__(self):
        super().__init__(self.txn, 0.02, "writer")

    @staticmethod
    def txn(i):
        sql("BEGIN;" + "".join(
            "INSERT INTO t VALUES (%d, %d, 'v%d') ON DUPLICATE KEY "
            "UPDATE n = n + 1, s = 'u%d';" % (k, i, i, i)
            for k in range((i * 8) % 64, (i * 8) % 64 + 8))
            + "COMMIT", db=DB)

    @property
    def txns(self):
        return self.n

    def stop(self):
        super().stop()
        assert self.n > 0, "the writer wrote nothing"


# What the page shows, read in one go in the browser (no element can go
# stale between two reads). Hooks: console.js's opening comment.
SNAPSHOT_JS = r"""
const g = arguments[0];
const txt = (e) => e ? e.textContent.trim() : null;
const cell = (tr, f) => tr.querySelector('[data-field="' + f + '"]');
const rows = {};
for (const tr of document.querySelectorAll('tr[data-group]')) {
  if (tr.getAttribute('data-group') !== g) continue;
  const v = (f) => { const c = cell(tr, f); return c ? c.getAttribute('data-value') : null; };
  rows[tr.getAttribute('data-partition')] = {
    cls: tr.className, owner: txt(cell(tr, 'owner')),
    scn: v('scn') ? Number(v('scn')) : 0, scn_text: txt(cell(tr, 'scn')),
    lag: v('lag') === '' ? null : Number(v('lag')),
    status: txt(cell(tr, 'status'))};
}
const svg = Array.from(document.querySelectorAll('svg[data-group]'))
  .find((s) => s.getAttribute('data-group') === g);
const path = svg ? svg.querySelector('path') : null;
const note = document.getElementById('follower');
const link = document.getElementById('leader-link');
const origin = location.origin;
return {
  updated_ms: Number(document.getElementById('updated').getAttribute('data-ms') || 0),
  jserrors: txt(document.getElementById('jserrors')),
  errors: txt(document.getElementById('errors')),
  relays: Array.from(document.querySelectorAll('tr[data-relay]')).map((tr) => ({
    key: tr.getAttribute('data-relay'), connected: txt(cell(tr, 'connected')),
    scn: txt(cell(tr, 'scn'))})),
  rows: rows,
  svg: !!svg,
  points: path ? Number(path.getAttribute('data-points') || 0) : 0,
  path_d: path ? path.getAttribute('d') : null,
  group_status: (() => { const s = Array.from(document.querySelectorAll('section.group'))
    .find((x) => x.getAttribute('data-group') === g);
    return s ? txt(s.querySelector('[data-field="status"]')) : null; })(),
  snap: (() => { const s = Array.from(document.querySelectorAll('section.group'))
    .find((x) => x.getAttribute('data-group') === g);
    const d = s ? s.querySelector('div.snapshot') : null;
    if (!d || d.hidden) return null;
    const f = (n) => d.querySelector('[data-field="' + n + '"]');
    return {state: f('snap_state').getAttribute('data-value'),
      text: txt(d), done: Number(f('snap_parts').getAttribute('data-value')),
      rows: Number(f('snap_rows').getAttribute('data-value')),
      bar: Number(d.querySelector('div.bar').getAttribute('data-value')),
      cells: Array.from(s.querySelectorAll('td[data-field="snapshot"]'))
        .map((c) => [txt(c), getComputedStyle(c).display])}; })(),
  follower_note: note && !note.hidden ? txt(note) : null,
  leader_link: link ? link.getAttribute('href') : null,
  foreign: performance.getEntriesByType('resource').map((e) => e.name)
    .filter((u) => !u.startsWith(origin + '/')),
};
"""


class Browser:
    """Debian's Chromium, headless, through chromedriver (Selenium)."""

    def __init__(self, log):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        # --no-sandbox: Chromium refuses to run as root with its sandbox
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
                  "--window-size=1280,1000"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        try:  # Selenium 4.11 renamed log_path (Debian 12 has 4.8)
            service = Service(CHROMEDRIVER, log_output=log)
        except TypeError:
            service = Service(CHROMEDRIVER, log_path=log)
        self.d = webdriver.Chrome(service=service, options=opts)
        self.d.set_page_load_timeout(30)
        self.d.set_script_timeout(10)

    def open(self, url):
        self.d.get(url)

    def snap(self, group):
        return self.d.execute_script(SNAPSHOT_JS, group)

    def severe(self):
        """The browser log's errors since the last call (a failed request,
        an uncaught exception)."""
        return [e for e in self.d.get_log("browser")
                if e.get("level") == "SEVERE"]

    def shot(self, name):
        path = os.path.join(out_dir(), name)
        assert self.d.save_screenshot(path), "screenshot %s failed" % path
        print("screenshot: %s" % path, flush=True)
        return path

    def quit(self):
        self.d.quit()


def wait_page(br, group, what, pred, timeout):
    """pred(snapshot) true within timeout, else a failure with the last
    snapshot."""
    last = {}

    def ok():
        last["s"] = br.snap(group)
        return pred(last["s"])
    try:
        tc.wait_for(what, ok, timeout, step=0.25)
    except AssertionError as e:
        raise AssertionError("%s; the page: %s" % (e, last.get("s")))
    return last["s"]


def clean(br, s, where):
    assert not s["jserrors"], "%s: JS errors: %s" % (where, s["jserrors"])
    sev = br.severe()
    assert not sev, "%s: browser log: %s" % (where, sev)


def ctl_snapshot(group):
    """heraldctl snapshot of the test's table, waiting until done."""
    r = subprocess.run([os.path.join(BIN, "heraldctl"), "snapshot", "--zk",
                        tc.ZK, "--cluster", CLUSTER, "--group", group,
                        "--tables", DB + ".t", "--timeout", "60"],
                       capture_output=True, text=True, timeout=90)
    return r.returncode, r.stdout, r.stderr


def check_assets(coord):
    """The three files are served as they are in the source tree."""
    for path, name, ctype in (("/", "index.html", "text/html"),
                              ("/console.js", "console.js",
                               "text/javascript"),
                              ("/console.css", "console.css", "text/css")):
        with urllib.request.urlopen(coord.url(path), timeout=5) as r:
            body = r.read()
            got = r.headers.get("Content-Type", "")
        with open(os.path.join(SRC, "coordinator", "console", name),
                  "rb") as f:
            assert body == f.read(), "%s differs from coordinator/console/%s" \
                % (path, name)
        assert got.startswith(ctype), "%s: Content-Type %s" % (path, got)


def test_console(tmp):
    start = setup_db(DB, DDL)
    assert start
    g = ta.Group(tmp, PARTITIONS, nrelays=0, ncoords=0,
                 session_timeout=AGENT_SESSION)
    w = br = None
    try:
        # a relay from the source's present (not its whole history)
        r = Relay(tmp, "console-r1", 9301, zk=True, start="latest")
        g.relays.append(r.start())
        # a short lag window, when the coordinator has that key: a stopped
        # agent shows in a few seconds
        extra = ["lag_window: 5"] if "coordinator.lag_window" in \
            config_keys("coordinator") else []
        lead = Coordinator(tmp, "console-c1", extra)
        g.coords.append(lead)
        tc.wait_for("console-c1 to lead", lead.leading, 30)
        follow = Coordinator(tmp, "console-c2", extra)
        g.coords.append(follow)
        check_assets(lead)
        for name in ("a1", "a2"):
            g.agents[name] = Agent(
                g.tmp, name, zk=True, partitions=PARTITIONS, group=g.group,
                per_agent_files=True, session_timeout=AGENT_SESSION).start()
        g.wait_settled()
        asg = g.assignment()
        w = Writer()

        br = Browser(os.path.join(tmp, "chromedriver.log"))
        br.open(lead.url())
        owners = {"a1", "a2"}
        s = wait_page(br, g.group, "the relay and 4 owned partitions with "
                      "SCNs", lambda s:
                      any(x["key"] == "sandbox/console-r1" and
                          x["connected"] == "yes" for x in s["relays"]) and
                      len(s["rows"]) == PARTITIONS and
                      all(v["owner"] in owners and v["scn"] > 0
                          for v in s["rows"].values()), 30)
        for p, v in s["rows"].items():
            want = asg["members"]
            assert v["owner"] in want and int(p) in want[v["owner"]], \
                "partition %s shown owned by %s, assigned %s" % (
                    p, v["owner"], want)
            scn = int(v["scn"])
            assert "%d (%d:%d)" % (scn, scn >> 32, scn & 0xffffffff) == \
                v["scn_text"], "SCN as file:offset: %s" % v["scn_text"]
        first = {p: v["scn"] for p, v in s["rows"].items()}
        time.sleep(3)
        wait_page(br, g.group, "every partition's SCN to move", lambda s:
                  all(s["rows"][p]["scn"] > first[p] for p in first), 20)
        s = wait_page(br, g.group, "a lag plot of 2 samples or more",
                      lambda s: s["svg"] and s["points"] >= 2, 30)
        assert s["path_d"].startswith("M"), s["path_d"]
        assert not s["foreign"], "loaded from elsewhere: %s" % s["foreign"]
        clean(br, s, "leader")

        # one agent stops; the writer goes on, so its lag grows
        victim = g.agents["a1"]
        mine = {str(p) for p in asg["members"]["a1"]}
        t0 = time.time()
        victim.proc.send_signal(signal.SIGSTOP)
        try:
            s = wait_page(
                br, g.group, "a partition of the stopped agent marked worst "
                "and not OK", lambda s: any(
                    "worst" in v["cls"].split() and p in mine and
                    v["status"] in BAD for p, v in s["rows"].items()),
                STOP_BOUND_S)
            took = time.time() - t0
            worst = [p for p, v in s["rows"].items()
                     if "worst" in v["cls"].split()]
            assert len(worst) == 1, "one worst row: %s" % s["rows"]
            best = [p for p, v in s["rows"].items()
                    if "best" in v["cls"].split()]
            assert len(best) == 1 and best[0] not in mine, \
                "the best row is one of a2's: %s" % s["rows"]
            assert s["group_status"] in BAD, s["group_status"]
            print("partition %s of the stopped agent: %s, marked worst, "
                  "%.1f s after SIGSTOP (lag %.1f s)"
                  % (worst[0], s["rows"][worst[0]]["status"], took,
                     s["rows"][worst[0]]["lag"]), flush=True)
            br.shot("console_chromium.png")
        finally:
            victim.proc.send_signal(signal.SIGCONT)
        s = wait_page(br, g.group, "every partition OK again after SIGCONT",
                      lambda s: all(v["status"] == "OK"
                                    for v in s["rows"].values()), 30)
        assert not s["errors"], "errors shown: %s" % s["errors"]
        assert s["snap"] is None, "a snapshot shown before any: %s" % s["snap"]
        clean(br, s, "leader")

        # a snapshot of the table, asked by heraldctl: the group's line
        # says done, 4 of 4, the leader's rows; the bar is full; each
        # partition's cell says done
        rc, out, err = ctl_snapshot(g.group)
        assert rc == 0, "heraldctl snapshot: %d %s %s" % (rc, out, err)
        s = wait_page(br, g.group, "the snapshot done on the page",
                      lambda s: s["snap"] and s["snap"]["state"] == "done" and
                      s["snap"]["done"] == PARTITIONS, 30)
        want = tc.wait_for("the leader's snapshot", lambda: (
            lead.status()["groups"][g.group].get("snapshot")), 10)
        snap = s["snap"]
        assert snap["rows"] == want["rows"] > 0, (snap, want)
        assert snap["bar"] == 1, snap
        assert "%d of %d done" % (PARTITIONS, PARTITIONS) in snap["text"], snap
        assert len(snap["cells"]) == PARTITIONS and all(
            t.startswith("done, ") and d != "none"
            for t, d in snap["cells"]), snap
        print("snapshot on the page: %s" % snap["text"], flush=True)
        br.shot("console_chromium_snapshot.png")
        clean(br, s, "leader")

        # the follower's page: no lag there, but groups, owners and the way
        # to the leader
        br.open(follow.url())
        s = wait_page(br, g.group, "the follower's page", lambda s:
                      s["updated_ms"] and s["follower_note"] and
                      len(s["rows"]) == PARTITIONS and
                      all(v["owner"] in owners for v in s["rows"].values()),
                      20)
        assert s["leader_link"] == lead.url(), \
            "follower links to %s, not the leader %s" % (s["leader_link"],
                                                         lead.url())
        assert "leader" in s["follower_note"], s["follower_note"]
        assert not any("worst" in v["cls"] or "best" in v["cls"]
                       for v in s["rows"].values()), s["rows"]
        time.sleep(1.5)  # a few more polls, of both /status and /history
        s = br.snap(g.group)
        assert not s["errors"], "follower: errors shown: %s" % s["errors"]
        clean(br, s, "follower")
        br.shot("console_chromium_follower.png")
        # a coordinator gone: the page says so, and keeps what it showed
        assert follow.stop() == 0, follow.logtail()
        s = wait_page(br, g.group, "the failing /status shown", lambda s:
                      "/status:" in (s["errors"] or ""), 15)
        assert len(s["rows"]) == PARTITIONS, s["rows"]
        w.stop()
        w = None
        for c in g.coords:
            rc = c.stop()
            assert rc == 0, "%s exited %d on SIGTERM: %s" % (c.id, rc,
                                                          c.logtail())
    finally:
        if w:
            w.stop_ev.set()
        try:
            if br:
                br.quit()
        finally:
            for c in g.coords:  # SIGTERM: their election nodes go at once
                try:
                    c.stop()
                except AssertionError as e:
                    print(e, flush=True)
            g.close()


TESTS = [test_console]

if __name__ == "__main__":
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        print("skipped: %s missing (Debian's chromium and chromium-driver; "
              "scripts/setup installs them)" % " and ".join(missing))
        sys.exit(77)
    sys.exit(run(TESTS, sys.argv[1:], prefix="herald-console-"))
