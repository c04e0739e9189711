#!/usr/bin/env python3
"""Lag as the coordinator leader computes it from ZooKeeper, against the
sandbox: one relay, two coordinators, two agents of a 4-partition group
(a file sink, and a command sink whose behaviour the test switches), a
write load. Each partition state the leader reports is brought about for
real and read back from /status, /metrics (parsed with Debian's
python3-prometheus-client) and /history:

  caught up   the load flows: every partition OK, lag known and small
  idle        no load: lag 0, OK throughout
  filtered    changes only to a database the agents filter out: the
              relays move, the partitions keep up (OK, lag <= 2 s)
  lagging     the command sink slowed down: lag grows while the
              checkpoint moves
  stalled     the command sink fails: its partitions retry, their
              checkpoints are rewritten unchanged: STALL
  stopped     SIGSTOP of the file-sink agent (its session outlives the
              window): STOP, the worst partition is one of its
  unowned     both agents stopped: UNOWNED

The follower shows no lag of its own. Every process started is stopped,
pass or fail.

Usage: test_lag.py [TEST...]   (default: all)
"""
import json
import os
import signal
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prometheus_client.parser import text_string_to_metric_families  # noqa
from test_relay import run, setup_db, sql  # noqa: E402
import test_agent as ta  # noqa: E402
import test_coordinator as tc  # noqa: E402

WINDOW = 5  # coordinator.lag_window: 5 readings, one a second


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                timeout=5) as r:
        return r.read().decode()


def status(coord):
    return json.loads(get(coord.http, "/status"))


def group_status(coord, group):
    return status(coord)["groups"].get(group)


def wait_for(what, pred, timeout, step=0.25):
    return tc.wait_for(what, pred, timeout, step)


def parts(gs):
    return {e["partition"]: e for e in gs.get("lag", [])}


def other_load():
    """Changes the agents filter out (another database): the relays'
    newest SCN moves, the group has nothing to apply."""
    sql("DROP DATABASE IF EXISTS it_lag_other; CREATE DATABASE it_lag_other;"
        "CREATE TABLE it_lag_other.t (id INT PRIMARY KEY AUTO_INCREMENT,"
        " v INT)")
    return ta.Repeat(lambda i: sql("INSERT INTO it_lag_other.t (v) VALUES (1)"),
                     0.1, "other load")


def check_metrics(coord, group, n):
    """/metrics parses as the Prometheus text format, with the lag series
    labelled by group and partition, and the relays'."""
    fams = {f.name: f for f in text_string_to_metric_families(
        get(coord.http, "/metrics"))}
    for name in ("herald_partition_lag_seconds", "herald_partition_status",
                 "herald_partition_checkpoint_scn"):
        got = sorted(int(s.labels["partition"]) for s in fams[name].samples
                     if s.labels.get("group") == group)
        assert got == list(range(n)), "%s: partitions %s" % (name, got)
    for name in ("herald_group_max_lag_seconds", "herald_group_status",
                 "herald_group_members", "herald_group_unowned_partitions"):
        assert any(s.labels.get("group") == group
                   for s in fams[name].samples), "%s lacks %s" % (name, group)
    relays = [s for s in fams["herald_relay_newest_scn"].samples]
    assert relays and all(s.labels["source"] == "sandbox" and s.labels["relay"]
                          for s in relays), relays
    t = [s.value for s in
         fams["herald_relay_newest_commit_time_seconds"].samples]
    assert t and all(abs(v - time.time()) < 3600 for v in t), t
    return fams


def test_lag_statuses(tmp):
    setup_db(ta.DB, ta.DDL)
    n = 4
    mode = os.path.join(tmp, "mode")
    with open(mode, "w") as f:
        f.write("ok\n")
    # Per line: "slow" sleeps, "fail" exits: the partition's command dies.
    cmd = ("while IFS= read -r l; do case $(cat %s) in slow) sleep 0.05;; "
           "fail) exit 3;; esac; done" % mode)
    g = ta.Group(tmp, n, nrelays=1, ncoords=0, session_timeout="30s")
    w = other = None
    try:
        lead = tc.Coordinator(tmp, "c0-" + g.group, "itest",
                              extra="  lag_window: %d\n" % WINDOW)
        g.coords.append(lead)
        wait_for("c0 to lead", lead.leading, 20)
        follower = tc.Coordinator(tmp, "c1-" + g.group, "itest",
                                  extra="  lag_window: %d\n" % WINDOW)
        g.coords.append(follower)
        a1 = g.agent("a1")
        a2 = g.agent("a2", sink=["sink:", "  type: command",
                                 "  command: '%s'" % cmd.replace("'", "''"),
                                 "  retry_max: 1s"])
        g.wait_settled()
        asg = g.assignment()
        p1, p2 = set(asg["members"]["a1"]), set(asg["members"]["a2"])
        assert p1 and p2, asg

        # caught up: the load flows, every partition OK with a small lag
        w = ta.Writer()

        def flowing():
            gs = group_status(lead, g.group)
            ps = parts(gs) if gs else {}
            return gs if len(ps) == n and all(
                e["status"] == "OK" and e["lag_seconds"] is not None and
                e["lag_seconds"] < 10 and e["owner"] in ("a1", "a2")
                for e in ps.values()) and gs["status"] == "OK" else None
        gs = wait_for("every partition OK while the load flows", flowing, 60)
        assert gs["worst_partition"] in range(n), gs
        assert gs["relay_newest_scn"] > 0 and gs["relays"] == 1, gs
        for e in parts(gs).values():
            assert e["scn"] > 0 and e["lead_files"] is not None, e
            assert not e["out_of_retention"], e
        st = status(lead)
        assert st["lag_sampled_ms"] and st["relays"][0]["source"] == "sandbox"
        cs = st["coordinators"]
        assert cs[0]["leader"] and cs[0]["id"] == lead.id and \
            not any(c["leader"] for c in cs[1:]) and \
            follower.id in [c["id"] for c in cs], cs
        check_metrics(lead, g.group, n)
        time.sleep(WINDOW + 1)
        assert flowing(), group_status(lead, g.group)

        # the follower computes no lag, and its console data says so
        fs = status(follower)
        assert fs["lag_sampled_ms"] is None and not fs["leader"], fs
        assert "lag" not in fs["groups"].get(g.group, {}), fs["groups"]
        assert json.loads(get(follower.http, "/history"))["groups"] == {}

        # idle: nothing written at all: lag exactly 0, OK throughout
        w.stop()
        w = None
        wait_for("every partition at lag 0", lambda: all(
            e["lag_seconds"] == 0 and e["status"] == "OK"
            for e in parts(group_status(lead, g.group)).values()), 60)
        for _ in range(WINDOW + 2):
            gs = group_status(lead, g.group)
            assert gs["status"] == "OK" and gs["max_lag_seconds"] == 0, gs
            time.sleep(1)
        # filtered: changes the group does not take; the relays move and
        # their heartbeats keep the partitions up with them. Commit times
        # have whole seconds, and the relays and checkpoints are read a
        # moment apart: a partition in step can read up to about 1 s.
        other = other_load()
        scn0 = group_status(lead, g.group)["relay_newest_scn"]
        for _ in range(WINDOW + 3):
            time.sleep(1)
            gs = group_status(lead, g.group)
            assert gs["status"] == "OK" and gs["max_lag_seconds"] <= 2.0, gs
        assert gs["relay_newest_scn"] > scn0, "the relays did not move"
        other.stop()
        other = None

        # lagging: a2's command reads slowly; its lag grows as it moves
        with open(mode, "w") as f:
            f.write("slow\n")
        w = ta.Writer(base=10000000)  # keys of its own
        seen = {}

        def lagging():
            for e in parts(group_status(lead, g.group)).values():
                if e["partition"] in p2 and e["lag_seconds"] is not None:
                    seen.setdefault(e["partition"], []).append(
                        (e["scn"], e["lag_seconds"], e["status"]))
            for p, v in seen.items():
                scns = {s for s, _, _ in v}
                if len(scns) >= 2 and v[-1][1] > 3 and v[-1][1] > v[0][1]:
                    return p
            return None
        p = wait_for("a lag growing on a moving partition of a2", lagging, 90,
                     step=1)
        statuses = sorted({s for _, _, s in seen[p]})
        tc.FIGURES.append("lagging partition %d: lag %.1f s, statuses %s"
                          % (p, seen[p][-1][1], statuses))

        # stalled: a2's command fails; checkpoints rewritten, not moving
        with open(mode, "w") as f:
            f.write("fail\n")
        wait_for("a2's partitions STALL", lambda: all(
            parts(group_status(lead, g.group))[q]["status"] == "STALL"
            for q in p2), 60)
        gs = group_status(lead, g.group)
        assert gs["status"] == "STALL", gs
        assert all(parts(gs)[q]["status"] == "OK" for q in p1), gs
        assert gs["worst_partition"] in p2, gs
        with open(mode, "w") as f:
            f.write("ok\n")
        t0 = time.time()
        wait_for("a2's partitions OK again", lambda: all(
            e["status"] == "OK"
            for e in parts(group_status(lead, g.group)).values()), 90)
        tc.FIGURES.append("stalled partitions back to OK in %.1f s"
                          % (time.time() - t0))

        # stopped: a1 hangs (its session outlives the window)
        a1.proc.send_signal(signal.SIGSTOP)
        try:
            wait_for("a1's partitions STOP", lambda: all(
                parts(group_status(lead, g.group))[q]["status"] == "STOP"
                for q in p1), 30)
            gs = group_status(lead, g.group)
            assert gs["status"] == "STOP" and gs["worst_partition"] in p1, gs
            assert gs["max_lag_seconds"] > 0, gs
            fams = check_metrics(lead, g.group, n)
            codes = {int(s.labels["partition"]): s.value
                     for s in fams["herald_partition_status"].samples
                     if s.labels["group"] == g.group}
            assert all(codes[q] == 3 for q in p1), codes
        finally:
            a1.proc.send_signal(signal.SIGCONT)
        wait_for("every partition OK after SIGCONT", lambda: all(
            e["status"] == "OK"
            for e in parts(group_status(lead, g.group)).values()), 60)
        hist = json.loads(get(lead.http, "/history"))["groups"][g.group]
        assert len(hist) >= 20 and {"STOP", "STALL"} <= {h[2] for h in hist}, \
            hist[-30:]
        assert all(hist[i][0] < hist[i + 1][0] for i in range(len(hist) - 1))

        # unowned: no agent left
        w.stop()
        w = None
        a1.term()
        a2.term()
        wait_for("every partition UNOWNED", lambda: all(
            e["status"] == "UNOWNED" and e["owner"] is None
            for e in parts(group_status(lead, g.group)).values()), 30)
        gs = group_status(lead, g.group)
        assert gs["status"] == "UNOWNED" and gs["unowned"] == n, gs
        # Both coordinators stop cleanly (under ASan: nothing leaked).
        for c in (lead, follower):
            c.signal(signal.SIGTERM)
            rc = c.p.wait(timeout=30)
            assert rc == 0, "%s exited %d" % (c.id, rc)
    finally:
        try:
            for x in (w, other):
                if x:
                    x.stop_ev.set()
        finally:
            g.close()
    for f in tc.FIGURES:
        print("figure: " + f)


TESTS = [test_lag_statuses]

if __name__ == "__main__":
    sys.exit(run(TESTS, sys.argv[1:], prefix="herald-lag-"))
