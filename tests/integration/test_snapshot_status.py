#!/usr/bin/env python3
"""A group's snapshot progress where operators look (issue 11): the
leading coordinator's /status and /metrics and `heraldctl status` (text
and --json), against the sandbox.

A group of 4 partitions on two agents starts with agent.start: snapshot
of test_snapshot's tables (20000 rows in big). Each partition's sink is a
command that stops reading at GATE_ROWS rows of big while a first gate
file exists, and at twice as many while a second one does: the
partition's flushes wait on the pipe, so its checkpoint stays in the
middle of big. At the second hold every view must say running, 4
partitions running, the same rows; the coordinator, having seen the rows
go from the first hold to the second, a rate above 0 and a time left;
once its readings have seen no row for a while, a rate of 0 and the time
left unknown (null). Then the gate goes, and every view must say done, 4
partitions done, the rows the commands received (every one of them, each
once: the source's rows), a time left of 0 and a mean rate above 0.

Run by ctest (snapshot_status) with HERALD_SANDBOX_ENV and HERALD_BIN."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import BIN, ENV, run, sql  # noqa: E402
import test_agent as ta  # noqa: E402
# The snapshot tests sample a holder's progress mid-table: their relays
# start at the earliest position, as before, because one that starts at
# this process's own history is so quick that a snapshot can end between
# two samples (test_agent_killed_mid_snapshot then saw none).
ta.Group.relay_start = "earliest"
import test_coordinator as tc  # noqa: E402
import test_db_sinks as tdb  # noqa: E402
import test_snapshot as ts  # noqa: E402

PARTITIONS = 4
GATE_ROWS = 1000  # of big's ~5000 per partition
SESSION = "30s"
SETTLE_S = 2  # for the agents' last checkpoints (every 200 ms) to land

# The command sink of every partition: stores each line, counts the rows
# of big, and stops reading while the file gate1 exists once it has
# GATE_ROWS of them, and while gate2 exists once it has twice as many
# (creating gateK.<agent>-p<partition> to say so). The agent's last flush
# may still succeed after that (the pipe happened to be empty), so the
# checkpoint settles one checkpoint interval later.
GATE_PY = r'''
import json, os, sys, time
out, gate, most = sys.argv[1], sys.argv[2], int(sys.argv[3])
me = "%s-p%s" % (os.environ["HERALD_AGENT"], os.environ["HERALD_PARTITION"])
f = open(os.path.join(out, me + ".jsonl"), "ab")
buf, big = b"", 0
while True:
    data = os.read(0, 65536)
    if not data:
        break
    buf += data
    *lines, buf = buf.split(b"\n")
    for l in lines:
        f.write(l + b"\n")
        ch = json.loads(l)
        if ch.get("op") == "r" and (ch.get("source") or {}).get("table") == "big":
            big += 1
    f.flush()
    for k in (1, 2):
        g = "%s%d" % (gate, k)
        if big >= k * most and os.path.exists(g):
            open("%s.%s" % (g, me), "w").close()  # says it holds
            while os.path.exists(g):
                time.sleep(0.05)
'''


def ctl(*args):
    r = subprocess.run([os.path.join(BIN, "heraldctl"), args[0], "--zk",
                        ENV["HERALD_ZK_HOSTS"], "--cluster", "itest"] +
                       list(args[1:]), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, "heraldctl %s: exit %d: %s" % (
        args, r.returncode, r.stderr)
    return r.stdout


def ctl_group(g):
    return json.loads(ctl("status", "--group", g.group, "--json"))[
        "groups"][g.group]


def ctl_snapshot_line(g):
    out = ctl("status", "--group", g.group)
    lines = [l.strip() for l in out.splitlines()
             if l.strip().startswith("snapshot:")]
    assert len(lines) == 1, "one snapshot line: %s" % out
    return lines[0], out


def metrics(coord, group):
    """The snapshot families of /metrics for group."""
    m = {k: v for k, v in coord.metrics().items()
         if k.startswith("herald_group_snapshot_") and
         'group="%s"' % group in k}
    return {k.split("{")[0] + ("." + k.split('state="')[1].split('"')[0]
                               if 'state="' in k else ""): v
            for k, v in m.items()}


def coord_group(coord, group):
    return (coord.try_status() or {}).get("groups", {}).get(group) or {}


def delivered(out):
    """Rows of op r the commands received: (lines, distinct keys)."""
    lines, keys = 0, set()
    for name in os.listdir(out):
        with open(os.path.join(out, name)) as f:
            for l in f:
                ch = json.loads(l)
                if ch.get("op") != "r":
                    continue
                lines += 1
                keys.add((ch["source"]["table"],
                          json.dumps(ch["key"], sort_keys=True)))
    return lines, len(keys)


def logs(g):
    return "".join("--- %s\n%s" % (a.name, a.logtail(12))
                   for a in g.agents.values())


def gate_agent(g, name, db, out, gate):
    sink = ["sink:", "  type: command",
            "  command: '%s %s %s %s %d'" % (sys.executable,
                                             os.path.join(g.tmp, "hold_sink.py"),
                                             out, gate, GATE_ROWS)]
    a = ta.Agent(g.tmp, name, zk=True, partitions=g.n, group=g.group,
                 session_timeout=g.session_timeout, sink=sink)
    with open(a.conf) as f:
        text = f.read()
    tables = "[%s]" % ", ".join("'%s.%s'" % (db, t.name) for t in ts.TABLES)
    want = text.replace("  start: latest", "  start: snapshot\n"
                        "  snapshot_chunk_rows: %d" % ts.CHUNK)
    want = want.replace("  tables: ['%s.*']" % ta.DB, "  tables: %s" % tables)
    assert "start: snapshot" in want and tables in want, want
    with open(a.conf, "w") as f:
        f.write(want)
    g.agents[name] = a.start()
    return a


def check_running(coord, g, seen):
    """Every view agrees on the frozen snapshot; returns its rows."""
    cs = coord_group(coord, g.group)["snapshot"]
    cg = ctl_group(g)
    ks = cg["snapshot"]
    line, out = ctl_snapshot_line(g)
    m = metrics(coord, g.group)
    rows = cs["rows"]
    assert cs["state"] == "running" and ks["state"] == "running", (cs, ks)
    assert cs["partitions_running"] == PARTITIONS == ks["partitions_running"]
    assert cs["partitions_done"] == 0 == ks["partitions_done"], (cs, ks)
    assert cs["request"] == 0 == ks["request"], (cs, ks)  # agent.start
    assert ks["rows"] == rows and cs["chunks"] == ks["chunks"], (cs, ks)
    # each partition held in big, the first table by name
    assert 0 < rows < ts.BIG_ROWS, (rows, cs)
    assert cs["tables_total"] == PARTITIONS * len(ts.TABLES), cs
    assert cs["ended_ms"] is None and cs["started_ms"] > 0, cs
    assert cs["rows_left_estimate"] > 0, cs
    parts = coord_group(coord, g.group)["lag"]
    assert sum(e["snapshot"]["rows"] for e in parts) == rows, parts
    assert all(e["snapshot"]["state"] == "running" and
               e["snapshot"]["rows"] > 0 and e["snapshot"]["table_rows"] <
               e["snapshot"]["table_rows_estimate"] for e in parts), parts
    assert all(e["snapshot"]["state"] == "running"
               for e in cg["lag"]), cg["lag"]
    assert ("snapshot: running, request 0, 0 of %d partitions done, %d "
            "running, 0 cancelled, rows %d," % (PARTITIONS, PARTITIONS, rows)
            in line), line
    assert "SNAPSHOT" in out and "running " in out, out
    assert m["herald_group_snapshot_partitions.running"] == PARTITIONS, m
    assert m["herald_group_snapshot_partitions.done"] == 0, m
    assert m["herald_group_snapshot_rows"] == rows, m
    assert seen["rate"] > 0 and seen["eta"] > 0, seen
    return rows


def test_snapshot_status(tmp):
    eng = tdb.ENGINES["mysql"]
    db = tdb.prepare(eng, "snapst", ts.TABLES + [tdb.NOPK])  # fill() writes it
    sql("SET GLOBAL max_allowed_packet = 268435456")
    ts.fill(db)
    total = sum(int(tdb.mysql_rows(ENV["HERALD_MDB_SOCKET"],
                                   "SELECT COUNT(*) FROM `%s`.`%s`"
                                   % (db, t.name))[0][0]) for t in ts.TABLES)
    out, gate = os.path.join(tmp, "out"), os.path.join(tmp, "gate")
    os.makedirs(out)
    with open(os.path.join(tmp, "hold_sink.py"), "w") as f:
        f.write(GATE_PY)
    for k in (1, 2):
        open(gate + str(k), "w").close()
    g = ta.Group(tmp, PARTITIONS, nrelays=1, ncoords=0,
                 session_timeout=SESSION)
    try:
        coord = tc.Coordinator(tmp, "c-" + g.group, "itest")
        g.coords.append(coord)
        tc.wait_for("the coordinator to lead", coord.leading, 30)
        for name in ("a1", "a2"):
            gate_agent(g, name, db, out, gate)
        g.wait_settled(timeout=60)

        # The partitions hold in big, once at gate1 and once more at gate2.
        # The coordinator sees the first hold and then the rows go by to
        # the second, at a rate above 0 and with a time left. (The rows
        # before its first sight of a snapshot count for no rate: the
        # whole way to gate1 may lie between two of its readings.)
        seen = {"rate": 0, "eta": 0}

        def look():
            s = coord_group(coord, g.group).get("snapshot") or {}
            if s.get("state") == "running" and (s.get("rows_per_s") or 0) > 0:
                seen["rate"] = max(seen["rate"], s["rows_per_s"])
                seen["eta"] = max(seen["eta"], s.get("eta_seconds") or 0)
            return s

        def hold(k):
            def held():
                look()
                return len([n for n in os.listdir(tmp) if n.startswith(
                    "gate%d." % k)]) == PARTITIONS
            tc.wait_for("every partition's command to hold at gate%d: %s\n%s"
                        % (k, look(), logs(g)), held, 120, step=0.1)
            deadline = time.time() + SETTLE_S  # the last checkpoints land
            while time.time() < deadline:
                look()
                time.sleep(0.1)

            def agreed():
                s = look()
                return s.get("partitions_running") == PARTITIONS and \
                    s.get("rows") == (ctl_group(g).get("snapshot") or {}).get(
                        "rows") and (k == 1 or seen["eta"] > 0)
            tc.wait_for("the coordinator's reading of the held snapshot: "
                        "%s %s" % (look(), seen), agreed, 30, step=0.1)
            return look()["rows"]
        first = hold(1)
        os.unlink(gate + "1")
        hold(2)
        rows = check_running(coord, g, seen)
        assert rows > first, (first, rows)
        print("held: %d rows, then %d; the coordinator saw up to %.0f "
              "rows/s and %.1f s left" % (first, rows, seen["rate"],
                                          seen["eta"]), flush=True)
        # no row for 10 readings (10 s at lag_interval 1s): rate 0, the
        # time left unknown
        s = tc.wait_for("the rate to fall to 0", lambda: (lambda s:
                        s if s.get("rows_per_s") == 0 else None)(
            coord_group(coord, g.group)["snapshot"]), 60, step=0.2)
        assert s["eta_seconds"] is None and s["rows"] == rows, s
        line, _ = ctl_snapshot_line(g)
        assert line.endswith("0 rows/s, eta -"), line
        assert "herald_group_snapshot_eta_seconds" not in metrics(
            coord, g.group), metrics(coord, g.group)

        os.unlink(gate + "2")
        s = tc.wait_for("every partition's snapshot done: %s" % logs(g),
                        lambda: (
            lambda s: s if s and s["state"] == "done" else None)(
                coord_group(coord, g.group).get("snapshot")), 180, step=0.2)
        lines, keys = delivered(out)
        cg = ctl_group(g)
        ks = cg["snapshot"]
        line, text = ctl_snapshot_line(g)
        m = metrics(coord, g.group)
        assert lines == keys == total, (lines, keys, total)
        assert s["rows"] == total and ks["rows"] == total, (s, ks, total)
        assert s["partitions_done"] == PARTITIONS == ks["partitions_done"]
        assert s["partitions_running"] == 0 == ks["partitions_running"], s
        assert s["tables_done"] == s["tables_total"] == \
            PARTITIONS * len(ts.TABLES), s
        assert s["eta_seconds"] == 0 and s["rows_per_s"] > 0, s
        assert s["ended_ms"] >= s["started_ms"] > 0, s
        parts = coord_group(coord, g.group)["lag"]
        assert all(e["snapshot"]["state"] == "done" for e in parts), parts
        assert sum(e["snapshot"]["rows"] for e in cg["lag"]) == total
        assert ks["eta_seconds"] == 0 and ks["rows_per_s"] > 0, ks
        assert ("snapshot: done, request 0, %d of %d partitions done, 0 "
                "running, 0 cancelled, rows %d, tables %d/%d, " % (
                    PARTITIONS, PARTITIONS, total, s["tables_done"],
                    s["tables_total"]) in line), line
        assert line.endswith("eta 0.00s"), line
        assert m["herald_group_snapshot_partitions.done"] == PARTITIONS, m
        assert m["herald_group_snapshot_partitions.running"] == 0, m
        assert m["herald_group_snapshot_rows"] == total, m
        assert m["herald_group_snapshot_eta_seconds"] == 0, m
        assert m["herald_group_snapshot_rows_per_second"] > 0, m
        print("done: %d rows in %.1f s (%.0f rows/s mean), every view "
              "agrees" % (total, (s["ended_ms"] - s["started_ms"]) / 1000.0,
                          s["rows_per_s"]), flush=True)
        print(text, flush=True)
    finally:
        for k in (1, 2):  # the commands may end
            if os.path.exists(gate + str(k)):
                os.unlink(gate + str(k))
        g.close()


TESTS = [test_snapshot_status]

if __name__ == "__main__":
    sys.exit(run(TESTS, sys.argv[1:], prefix="herald-snapst-"))
