#!/usr/bin/env python3
"""heraldctl's operator commands against a real cluster in the sandbox:
relays registered in ZooKeeper, a coordinator, herald-agents with file
sinks.

- lag: exit 0 when every partition is within --max-seconds, 1 when one is
  not (an agent SIGSTOPped under a write load; every agent stopped, so the
  partitions are UNOWNED), 2 on an error (no ZooKeeper, an unknown group,
  no coordinator); status still prints everything without a leader;
- checkpoint: set refused while the group has live members, shown and
  not written without --execute, applied with --force --execute (the
  holding agent stops the partition at its next checkpoint write and
  applies again from the new checkpoint); --to earliest from which an
  agent resumes with the relay's oldest window (retention has deleted
  older ones); --to latest; reset; get;
- drain: an agent's partitions move to the other; refused for the only
  undrained member and for one that is not a member; --undo gives it
  partitions again.

Each run uses a cluster of its own (every node is removed at the end) and
stops every process it started, pass or fail.

Usage: test_ops.py [TEST...]   (default: all)
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import (BIN, ENV, Relay, binlog_pos, decode, master_scn,  # noqa: E402
                        run, setup_db, sql)
import test_agent as ta  # noqa: E402
import test_coordinator as tc  # noqa: E402

ZK = ENV["HERALD_ZK_HOSTS"]
CLUSTER = "ops-%d" % os.getpid()
DB = "it_ops"
DDL = "CREATE TABLE it_ops.t (id INT PRIMARY KEY, v VARCHAR(40), b MEDIUMBLOB)"
PROCS = []


def ctl(*args, cluster=CLUSTER, zk=ZK, timeout=90):
    """heraldctl COMMAND --zk --cluster ARGS: (exit code, stdout, stderr)."""
    argv = [os.path.join(BIN, "heraldctl"), args[0]]
    if zk:
        argv += ["--zk", zk]
    if cluster:
        argv += ["--cluster", cluster]
    r = subprocess.run(argv + list(args[1:]), capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def ctl_json(*args, **kw):
    rc, out, err = ctl(*args, "--json", **kw)
    assert rc in (0, 1), "heraldctl %s exited %d: %s" % (args, rc, err)
    return json.loads(out)


def wait_for(what, pred, timeout=30, step=0.2):
    return tc.wait_for(what, pred, timeout, step)


def relay(tmp, name, server_id, source="sandbox", extra=""):
    """A relay of CLUSTER for source, reading the test's table from the
    binlog's current end (not the sandbox's whole history)."""
    r = Relay(tmp, name, server_id, extra=extra, zk=True, tables=DB + ".*",
              start=binlog_pos())
    with open(r.conf) as f:
        conf = f.read()
    conf = conf.replace("cluster: itest", "cluster: " + CLUSTER, 1)
    conf = conf.replace("  name: sandbox", "  name: " + source, 1)
    with open(r.conf, "w") as f:
        f.write(conf)
    PROCS.append(r)
    r.start()
    # one window past where it starts, so that it has a newest SCN
    sql("REPLACE INTO it_ops.t VALUES (%d, 'relay', NULL)" % -server_id)
    r.wait_scn(master_scn())
    return r


def agent(tmp, name, group, n, source="sandbox", session_timeout="10s"):
    a = ta.Agent(tmp, name, zk=True, partitions=n, group=group,
                 per_agent_files=True, session_timeout=session_timeout)
    with open(a.conf) as f:
        conf = f.read()
    conf = conf.replace("cluster: itest", "cluster: " + CLUSTER, 1)
    conf = conf.replace("  source: sandbox", "  source: " + source, 1)
    conf = conf.replace("  tables: ['it_agent.*']", "  tables: ['%s.*']" % DB)
    with open(a.conf, "w") as f:
        f.write(conf)
    PROCS.append(a)
    return a.start()


def coordinator(tmp, cid):
    c = tc.Coordinator(tmp, cid, CLUSTER)
    PROCS.append(c)
    return c


def stop_all():
    for p in reversed(PROCS):
        try:
            if hasattr(p, "proc") and p.proc:
                p.proc.send_signal(signal.SIGCONT)
                if p.proc.poll() is None:
                    p.proc.kill()
                    p.proc.wait(timeout=10)
            elif hasattr(p, "p"):
                p.p.send_signal(signal.SIGCONT)
                p.kill9()
        except Exception as e:  # keep stopping the others
            print("stopping %s: %s" % (p, e))
    del PROCS[:]
    tc.zk_rmr("/herald/" + CLUSTER)


def zget(path):
    return tc.zk_get("/herald/%s/%s" % (CLUSTER, path))


def checkpoints(group, n):
    return {p: (zget("groups/%s/checkpoints/%d" % (group, p)) or {}).get("scn", 0)
            for p in range(n)}


def held(agents):
    return {a.name: a.held() for a in agents}


def settled(group, agents, n):
    """Every partition held by the live agent it is granted to."""
    asg = zget("groups/%s/assignment" % group)
    if asg is None or asg["pending"]:
        return None
    if set(asg["members"]) != {a.name for a in agents}:
        return None
    for a in agents:
        if a.held() != set(asg["members"][a.name]):
            return None
    if sorted(p for ps in asg["members"].values() for p in ps) != list(range(n)):
        return None
    return asg


def wait_head(group, n, timeout=60):
    head = master_scn()
    wait_for("every checkpoint of %s at %d" % (group, head),
             lambda: min(checkpoints(group, n).values()) >= head, timeout)


def writes(rounds, base):
    for r in range(rounds):
        i = base + r * 10
        sql("BEGIN;" + "".join("INSERT INTO it_ops.t VALUES (%d, 'v%d', NULL);"
                               % (i + k, i + k) for k in range(5))
            + "UPDATE it_ops.t SET v = 'u' WHERE id = %d;" % i + "COMMIT")


class Writer(ta.Repeat):
    """This test's writes until stopped."""

    def __init__(self, base=100000):
        super().__init__(lambda i: writes(1, base + i * 10), 0.02, "writer")


def lag_rc(*args):
    rc, out, err = ctl("lag", *args)
    return rc, out, err


# ------------------------------------------------------------------ tests

def test_lag(tmp):
    """lag's exit codes and status with and without a leader."""
    setup_db(DB, DDL)
    g, n = "lag", 4
    try:
        r = relay(tmp, "r1", 9401)
        r.wait_scn(master_scn())
        c = coordinator(tmp, "c1")
        a1 = agent(tmp, "a1", g, n)
        a2 = agent(tmp, "a2", g, n)
        wait_for("a settled group", lambda: settled(g, [a1, a2], n))
        writes(5, 0)
        wait_head(g, n)
        # within: 0, table and JSON
        wait_for("lag within 30 s",
                 lambda: lag_rc("--max-seconds", "30")[0] == 0, 20)
        rc, out, err = lag_rc("--group", g, "--max-seconds", "30")
        assert rc == 0, (rc, out, err)
        lines = out.splitlines()
        assert lines[0].split() == ["GROUP", "PARTITION", "OWNER", "SCN", "LAG",
                                    "STATUS"], out
        assert len(lines) == 1 + n, out
        assert {l.split()[2] for l in lines[1:]} == {"a1", "a2"}, out
        j = ctl_json("lag", "--group", g, "--max-seconds", "30")
        assert j["coordinator"] == "c1" and j["over"] == [], j
        lag = j["groups"][g]["lag"]
        assert [e["partition"] for e in lag] == list(range(n)), j
        assert all(e["status"] == "OK" and not e["over"] for e in lag), j
        # status: everything, with lag from the leader
        s = ctl_json("status")
        assert set(s) >= {"relays", "coordinators", "groups"}, s
        assert [x["id"] for x in s["relays"]] == ["r1"], s["relays"]
        assert s["relays"][0]["advertise"] == r.addr, s["relays"]
        assert s["relays"][0]["behind_seconds"] == 0, s["relays"]
        assert [(x["id"], x["leader"]) for x in s["coordinators"]] == \
            [("c1", True)], s["coordinators"]
        sg = s["groups"][g]
        assert sg["members"] == ["a1", "a2"] and sg["partitions"] == n, sg
        assert sg["assignment_version"] >= 1 and sg["status"] == "OK", sg
        assert all(e["owner"] in ("a1", "a2") and e["scn"] > 0 and
                   e["status"] == "OK" and e["lag_seconds"] is not None
                   for e in sg["lag"]), sg["lag"]
        assert s["lag_from"]["id"] == "c1" and s["lag_error"] is None, s
        rc, out, err = ctl("status")
        assert rc == 0 and "GROUP %s: 4 partitions" % g in out, out + err
        assert "lag: from coordinator c1" in out, out
        # --config: the cluster and ZooKeeper of any herald config
        rc, out, err = ctl("status", "--config", os.path.join(tmp, "c1.yaml"),
                           zk=None, cluster=None)
        assert rc == 0 and "GROUP %s: 4 partitions" % g in out, out + err
        # over: a1 stopped under a write load; its partitions fall behind
        w = Writer()
        try:
            mine = set(settled(g, [a1, a2], n)["members"]["a1"])
            a1.proc.send_signal(signal.SIGSTOP)
            res = wait_for("lag over 2 s", lambda: (lambda x: x if x[0] == 1
                                                    else None)(
                lag_rc("--max-seconds", "2")), 30)
            _, out, err = res
            over = {int(p.split("/")[1].split()[0])
                    for p in err.split(": ", 2)[2].split(", ") if "/" in p}
            assert over and over <= mine, (mine, err)
            # the worst line first within the group
            first = out.splitlines()[1].split()
            assert int(first[1]) in mine, out
            j = ctl_json("lag", "--max-seconds", "2")
            jover = {o["partition"] for o in j["over"]}
            assert jover and jover <= mine, (mine, j["over"])
            assert all(e["over"] == (e["partition"] in jover)
                       for e in j["groups"][g]["lag"]), j
            # without --max-seconds: a report, exit 0
            assert lag_rc()[0] == 0
        finally:
            a1.proc.send_signal(signal.SIGCONT)
            w.stop()
        wait_head(g, n)
        wait_for("lag within 30 s again",
                 lambda: lag_rc("--max-seconds", "30")[0] == 0, 30)
        # every agent stopped: UNOWNED, exit 1 whatever the bound
        a1.term()
        a2.term()
        res = wait_for("UNOWNED", lambda: (lambda x: x if x[0] == 1 else None)(
            lag_rc("--max-seconds", "100000")), 30)
        assert "UNOWNED" in res[1] and "status UNOWNED" in res[2], res
        # errors: 2
        rc, out, err = lag_rc("--group", "nosuch")
        assert rc == 2 and "no group 'nosuch'" in err, (rc, err)
        rc, out, err = ctl("lag", "--max-seconds", "5", zk="127.0.0.1:1",
                           cluster=CLUSTER)
        rc2 = ctl("lag", "--connect-timeout", "1", zk="127.0.0.1:1")[0]
        assert rc == 2 and rc2 == 2 and "cannot reach ZooKeeper" in err, err
        rc, out, err = lag_rc("--max-seconds", "x")
        assert rc == 2 and len(err.splitlines()) == 1, err
        # no coordinator: lag is an error, status still prints, exit 0
        c.stop()
        rc, out, err = lag_rc("--max-seconds", "5")
        assert rc == 2 and "leading coordinator" in err, (rc, err)
        rc, out, err = ctl("status")
        assert rc == 0, err
        assert "lag: needs a leading coordinator" in out, out
        assert "GROUP %s" % g in out and "r1" in out, out
        s = ctl_json("status")
        assert s["coordinators"] == [] and s["lag_error"], s
        assert all(e["status"] is None and e["scn"] > 0
                   for e in s["groups"][g]["lag"]), s["groups"][g]
    finally:
        stop_all()


def test_checkpoint_set(tmp):
    """set refused while live, shown without --execute, applied with
    --force --execute: the holder stops and applies again from there."""
    setup_db(DB, DDL)
    g, n = "ckpt", 2
    try:
        relay(tmp, "r1", 9411)
        coordinator(tmp, "c1")
        a1 = agent(tmp, "a1", g, n)
        wait_for("a1 holds all", lambda: settled(g, [a1], n))
        wait_head(g, n)
        writes(10, 0)
        mid = master_scn()
        writes(10, 1000)
        wait_head(g, n)
        before = checkpoints(g, n)
        # refused while a1 is a member: exit 1, nothing written
        rc, out, err = ctl("checkpoint", "set", "--group", g, "--partition",
                           "all", "--scn", str(mid), "--execute")
        assert rc == 1 and "live member" in err and "a1" in err, (rc, err)
        assert len(err.splitlines()) == 1, err
        assert checkpoints(g, n) == before
        # --force without --execute: shown, not written
        rc, out, err = ctl("checkpoint", "set", "--group", g, "--partition",
                           "all", "--scn", str(mid), "--force")
        assert rc == 0, err
        assert "dry run" in out and out.count("old: {") == n, out
        assert ('"scn":%d' % mid) in out and '"owner":"heraldctl"' in out, out
        assert checkpoints(g, n) == before
        j = ctl_json("checkpoint", "set", "--group", g, "--partition", "0",
                     "--scn", str(mid), "--force")
        assert [w["result"] for w in j["writes"]] == ["dry run"], j
        assert j["writes"][0]["new"]["epoch"] == j["writes"][0]["old"]["epoch"]
        assert j["live_members"] == ["a1"], j
        # --force --execute: written (each a CAS on the version read)
        out_dir = os.path.join(tmp, "out")
        sizes = {f: os.path.getsize(os.path.join(out_dir, f))
                 for f in os.listdir(out_dir)}
        rc, out, err = ctl("checkpoint", "set", "--group", g, "--partition",
                           "all", "--scn", str(mid), "--force", "--execute")
        assert rc == 0 and out.count(": written ") == n, (out, err)
        # the holder's next checkpoint write fails (ZBADVERSION): it stops
        # the partition, takes it again and applies everything after mid
        wait_for("a1 to notice", lambda: open(a1.log).read().count(
            "partition taken: checkpoint moved by another") >= n, 30)
        wait_head(g, n)
        again = []
        for f in os.listdir(out_dir):
            with open(os.path.join(out_dir, f)) as fh:
                fh.seek(sizes.get(f, 0))
                again += [l for l in fh.read().splitlines() if l.strip()]
        exp = [l for l in decode(DB + ".*", mid)]
        got = {ta.identity(l) for l in again}
        missing = [l for l in exp if ta.identity(l) not in got]
        assert not missing, "%d of %d changes after %d not applied again" % (
            len(missing), len(exp), mid)
        assert all(json.loads(l)["scn"] > mid for l in again), again[:2]
        assert a1.proc.poll() is None and a1.held() == set(range(n))
        ck = ctl_json("checkpoint", "get", "--group", g)["checkpoints"]
        assert all(c["checkpoint"]["owner"] == "a1" and
                   c["checkpoint"]["scn"] >= master_scn() for c in ck), ck
        # the compare-and-swap: a1 writes the checkpoints (its heartbeat,
        # at most 5 intervals of 200 ms) while heraldctl waits between its
        # read and its write: nothing written, reported, exit 1
        r2 = subprocess.run(
            [os.path.join(BIN, "heraldctl"), "checkpoint", "set", "--zk", ZK,
             "--cluster", CLUSTER, "--group", g, "--partition", "0", "--scn",
             str(mid), "--force", "--execute"], capture_output=True,
            text=True, timeout=60,
            env=dict(os.environ,
                     HERALD_TEST_FAULT="checkpoint_write_delay_ms=2500"))
        if "built without HD_TEST_HOOKS" in r2.stderr:
            print("the compare-and-swap failure not checked: %s"
                  % r2.stderr.strip())
        else:
            assert r2.returncode == 1, (r2.returncode, r2.stdout, r2.stderr)
            assert "NOT written" in r2.stdout and \
                "moved meanwhile" in r2.stdout, r2.stdout
            assert zget("groups/%s/checkpoints/0" % g)["owner"] == "a1"
            assert a1.held() == set(range(n))
        # usage errors: 2 and one line
        for args in (["set", "--group", g, "--partition", "all"],
                     ["set", "--group", g, "--scn", "5"],
                     ["set", "--group", g, "--partition", "9", "--scn", "5"],
                     ["reset", "--group", g, "--partition", "0", "--scn", "1"],
                     ["frob", "--group", g]):
            rc, out, err = ctl("checkpoint", *args)
            assert rc == 2 and len(err.splitlines()) == 1, (args, rc, err)
        rc, out, err = ctl("checkpoint", "get", "--group", "nosuch")
        assert rc == 2 and "no group" in err, err
    finally:
        stop_all()


def test_checkpoint_to(tmp):
    """--to earliest against a relay whose retention deleted older
    windows: an agent resumes with the oldest window the relay holds (no
    ERR_SCN_TOO_OLD) and applies everything from it; --to latest; reset."""
    setup_db(DB, DDL)
    g, n = "to", 2
    try:
        r = relay(tmp, "small", 9421, source="small",
                  extra="  segment_bytes: 1MiB\n  retention_bytes: 2MiB\n")
        coordinator(tmp, "c1")
        a1 = agent(tmp, "a1", g, n, source="small")
        wait_for("a1 holds all", lambda: settled(g, [a1], n))
        wait_head(g, n)
        a1.term()
        first = master_scn()
        for i in range(40):
            sql("INSERT INTO it_ops.t VALUES (%d, 'big', REPEAT('r', 200000))"
                % (100000 + i))
        r.wait_scn(master_scn())
        wait_for("retention to delete the first windows",
                 lambda: r.status()["oldest_scn"] > first, 30)
        oldest = r.status()["oldest_scn"]
        # what the relay's registration says is what --to uses
        wait_for("the registration to show it",
                 lambda: ctl_json("status")["relays"][0]["oldest_scn"] >= oldest)
        oldest = ctl_json("status")["relays"][0]["oldest_scn"]
        rc, out, err = ctl("checkpoint", "set", "--group", g, "--partition",
                           "all", "--to", "earliest", "--execute")
        assert rc == 0, err
        ck = ctl_json("checkpoint", "get", "--group", g)["checkpoints"]
        assert all(c["checkpoint"]["scn"] == oldest - 1 and
                   c["checkpoint"]["owner"] == "heraldctl" and
                   c["checkpoint"]["ts_ms"] == 0 and c["version"] >= 1
                   for c in ck), (oldest, ck)
        out_dir = os.path.join(tmp, "out")
        sizes = {f: os.path.getsize(os.path.join(out_dir, f))
                 for f in os.listdir(out_dir)}
        a1 = agent(tmp, "a1", g, n, source="small")
        wait_head(g, n)
        got = []
        for f in os.listdir(out_dir):
            with open(os.path.join(out_dir, f)) as fh:
                fh.seek(sizes.get(f, 0))
                got += [json.loads(l) for l in fh.read().splitlines() if l]
        scns = sorted({d["scn"] for d in got})
        assert scns and scns[0] == oldest, (oldest, scns[:3])
        exp = [json.loads(l) for l in decode(DB + ".*", oldest - 1)]
        assert len(got) == len(exp), (len(got), len(exp))
        log = open(a1.log).read()
        assert "SCN_TOO_OLD" not in log and "older than" not in log, log[-2000:]
        a1.term()
        # --to latest: the relay's newest SCN, with its commit time
        st = ctl_json("status")["relays"][0]
        rc, out, err = ctl("checkpoint", "set", "--group", g, "--partition",
                           "1", "--to", "latest", "--execute")
        assert rc == 0, err
        c = ctl_json("checkpoint", "get", "--group", g, "--partition",
                     "1")["checkpoints"]
        assert len(c) == 1 and c[0]["checkpoint"]["scn"] == st["newest_scn"] \
            and c[0]["checkpoint"]["ts_ms"] == st["newest_ts_ms"], (st, c)
        # reset: no position
        rc, out, err = ctl("checkpoint", "reset", "--group", g, "--partition",
                           "0,1", "--execute")
        assert rc == 0, err
        assert checkpoints(g, n) == {0: 0, 1: 0}
        rc, out, err = ctl("checkpoint", "get", "--group", g)
        assert rc == 0 and out.splitlines()[0].split()[:2] == ["PARTITION",
                                                               "SCN"], out
        # --to with no relay of the source: an error
        r.stop()
        wait_for("the relay's node to go", lambda: not ctl_json("status")["relays"])
        rc, out, err = ctl("checkpoint", "set", "--group", g, "--partition",
                           "all", "--to", "latest")
        assert rc == 2 and "no relay" in err, (rc, err)
    finally:
        stop_all()


def test_drain(tmp):
    """drain moves an agent's partitions to the other, waits, and --undo
    gives it partitions again."""
    setup_db(DB, DDL)
    g, n = "drain", 4
    try:
        relay(tmp, "r1", 9431)
        coordinator(tmp, "c1")
        a1 = agent(tmp, "a1", g, n)
        # the only member: refused
        wait_for("a1 holds all", lambda: settled(g, [a1], n))
        rc, out, err = ctl("drain", "--group", g, "--agent", "a1")
        assert rc == 1 and "only" in err, (rc, err)
        a2 = agent(tmp, "a2", g, n)
        wait_for("a settled group", lambda: settled(g, [a1, a2], n))
        rc, out, err = ctl("drain", "--group", g, "--agent", "nosuch")
        assert rc == 1 and "not a live member" in err, (rc, err)
        w = Writer()
        try:
            t0 = time.time()
            rc, out, err = ctl("drain", "--group", g, "--agent", "a1",
                               "--timeout", "60")
            took = time.time() - t0
            assert rc == 0, (rc, out, err)
            assert "a1 holds no partition" in out, out
            assert a1.held() == set() and a2.held() == set(range(n))
            node = zget("groups/%s/drain/a1" % g)
            assert node and node["agent"] == "a1", node
            # a2 is now the only one not drained
            rc, out, err = ctl("drain", "--group", g, "--agent", "a2")
            assert rc == 1 and "only" in err, (rc, err)
            s = ctl_json("status", "--group", g)["groups"][g]
            assert [d["agent"] for d in s["drains"]] == ["a1"], s["drains"]
            assert not s["drains"][0]["stale"]
            # undo: a1 gets its share again
            rc, out, err = ctl("drain", "--group", g, "--agent", "a1", "--undo")
            assert rc == 0 and "undone" in out, (rc, out, err)
            wait_for("a1 to get partitions again",
                     lambda: len(a1.held()) == 2 and settled(g, [a1, a2], n))
            rc, out, err = ctl("drain", "--group", g, "--agent", "a1", "--undo")
            assert rc == 0 and "not drained" in out, (rc, out, err)
            # a drain node is its session's: a1 stopped while drained, the
            # leader deletes the node, and a1 restarted gets partitions
            rc, out, err = ctl("drain", "--group", g, "--agent", "a1",
                               "--no-wait")
            assert rc == 0 and "drain node written" in out, (rc, out, err)
            wait_for("a1 drained", lambda: a1.held() == set() and
                     settled(g, [a1, a2], n))
            a1.term()
            wait_for("the stale drain node deleted",
                     lambda: zget("groups/%s/drain/a1" % g) is None)
            a1 = agent(tmp, "a1", g, n)
            wait_for("a1 restarted to get partitions",
                     lambda: len(a1.held()) == 2 and settled(g, [a1, a2], n))
        finally:
            w.stop()
        wait_head(g, n)
        print("drain took %.2f s" % took)
    finally:
        stop_all()


TESTS = [test_lag, test_checkpoint_set, test_checkpoint_to, test_drain]

if __name__ == "__main__":
    sys.exit(run(TESTS, sys.argv[1:], prefix="herald-ops-"))
