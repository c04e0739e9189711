#!/usr/bin/env python3
"""herald-agent against the sandbox: standalone (every partition, the
checkpoint file) and in a consumer group (ZooKeeper, coordinators): every
row change reaches exactly one partition's file sink (both partitions for
a key move), in SCN order per partition, none missing; a restart resumes
from the checkpoints."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import (BIN, ENV, Relay, Skip, master_scn, run, setup_db,  # noqa: E402
                        sql)

DB = "it_agent"
DDL = ("CREATE TABLE it_agent.a (id INT PRIMARY KEY, v VARCHAR(40));"
       "CREATE TABLE it_agent.b (k VARCHAR(20) PRIMARY KEY, n BIGINT)")


class Agent:
    """One herald-agent process with a file sink per partition."""

    def __init__(self, tmp, name, relays=None, zk=False, partitions=4,
                 group="g1", extra=""):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.name = name
        self.conf = os.path.join(self.dir, "agent.yaml")
        self.log = os.path.join(self.dir, "agent.log")
        self.out = os.path.join(tmp, "out")
        os.makedirs(self.out, exist_ok=True)
        lines = []
        if zk:
            lines.append("cluster: itest")
            lines.append('zookeeper: {hosts: "%s", session_timeout: 4s}'
                         % ENV["HERALD_ZK_HOSTS"])
        lines += ["agent:", "  id: %s" % name, "  group: %s" % group,
                  "  source: sandbox", "  partitions: %d" % partitions,
                  "  tables: ['%s.*']" % DB, "  start: latest",
                  "  checkpoint_interval: 200ms"]
        if relays:
            lines.append("  relays: %s" % ",".join(r.addr for r in relays))
        if not zk:
            lines.append("  checkpoint_file: %s/checkpoints.json" % self.dir)
        lines += ["sink:", "  type: file",
                  "  path: %s/p{partition}.jsonl" % self.out]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n" + extra)
        self.proc = None

    def start(self):
        logf = open(self.log, "a")
        self.proc = subprocess.Popen([os.path.join(BIN, "herald-agent"), "-c",
                                      self.conf, "-v"], stdout=logf,
                                     stderr=logf)
        logf.close()
        return self

    def term(self, timeout=20):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        assert rc == 0, "agent exited %d: %s" % (rc, self.logtail())

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def logtail(self, n=20):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def checkpoints(self):
        try:
            with open(os.path.join(self.dir, "checkpoints.json")) as f:
                return {int(p): c["scn"]
                        for p, c in json.load(f)["checkpoints"].items()}
        except (OSError, ValueError, KeyError):
            return {}


def identity(line):
    """A change without its place in the (filtered) transaction."""
    d = json.loads(line)
    d.pop("txn", None)
    return json.dumps(d, sort_keys=True)


def outputs(out, n):
    """{partition: [lines]} of the file sink."""
    res = {}
    for p in range(n):
        path = os.path.join(out, "p%d.jsonl" % p)
        try:
            with open(path) as f:
                res[p] = [l for l in f.read().splitlines() if l.strip()]
        except OSError:
            res[p] = []
    return res


def expected(after):
    """Every change of the test's tables after SCN `after`, as tail sees
    them from the relay (no partition filter)."""
    r = subprocess.run([os.path.join(BIN, "heraldctl"), "decode", "--tables",
                        DB + ".*"] + binlog_files_list(), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return [l for l in r.stdout.splitlines() if json.loads(l)["scn"] > after]


def binlog_files_list():
    from test_relay import binlog_files
    return binlog_files()


def workload(rounds, base=0):
    """Inserts, updates, deletes and key moves on two tables, several
    changes per transaction."""
    for r in range(rounds):
        i = base + r * 10
        sql("BEGIN;"
            + "".join("INSERT INTO it_agent.a VALUES (%d, 'v%d');" % (i + k, i + k)
                      for k in range(5))
            + "INSERT INTO it_agent.b VALUES ('k%d', %d);" % (i, i)
            + "UPDATE it_agent.a SET v = 'u%d' WHERE id = %d;" % (i, i)
            + "UPDATE it_agent.a SET id = %d WHERE id = %d;" % (i + 1000000, i + 1)
            + "DELETE FROM it_agent.a WHERE id = %d;" % (i + 2)
            + "UPDATE it_agent.b SET n = n + 1 WHERE k = 'k%d';" % i
            + "COMMIT", db=DB)


def check(out, n, exp, allow_dups_after=None):
    """Every expected change in exactly one partition (two for a key move),
    SCN order per partition; duplicates only after allow_dups_after."""
    got = outputs(out, n)
    where = {}
    for p, lines in got.items():
        last = 0
        seen = set()
        for l in lines:
            d = json.loads(l)
            assert d["scn"] >= last, "partition %d: SCN %d after %d" % (
                p, d["scn"], last)
            last = d["scn"]
            k = identity(l)
            if k in seen:
                assert allow_dups_after is not None and \
                    d["scn"] > allow_dups_after.get(p, 0), \
                    "partition %d: %s twice" % (p, k)
            seen.add(k)
            where.setdefault(k, set()).add(p)
    missing = [l for l in exp if identity(l) not in where]
    assert not missing, "%d of %d changes missing, first: %s" % (
        len(missing), len(exp), missing[0])
    for l in exp:
        ps = where[identity(l)]
        want = 2 if "old_key" in json.loads(l) else 1
        assert len(ps) <= want, "%s in partitions %s" % (l, sorted(ps))
        if want == 1:
            assert len(ps) == 1
    extra = set(where) - {identity(l) for l in exp}
    assert not extra, "unexpected changes: %s" % sorted(extra)[:3]


def wait_for(cond, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def test_standalone(tmp):
    """One agent without ZooKeeper: every partition into its own file,
    checkpoints in the file; SIGTERM checkpoints; a restart goes on with
    no gap and no duplicate."""
    start = setup_db(DB, DDL)
    relay = Relay(tmp, "r1", 9101).start()
    n = 4
    ag = Agent(tmp, "a1", relays=[relay], partitions=n)
    try:
        ag.start()
        head = master_scn()
        wait_for(lambda: len(ag.checkpoints()) == n and
                 min(ag.checkpoints().values()) >= head,
                 "every partition at the head: " + ag.logtail())
        workload(20)
        head = master_scn()
        wait_for(lambda: min(ag.checkpoints().values()) >= head,
                 "checkpoints at %d: %s %s" % (head, ag.checkpoints(), ag.logtail()))
        ag.term()
        first = ag.checkpoints()
        check(ag.out, n, expected(start))
        # a restart resumes from the checkpoints
        workload(10, base=5000)
        ag.start()
        head = master_scn()
        wait_for(lambda: min(ag.checkpoints().values()) >= head,
                 "checkpoints after the restart: " + ag.logtail())
        ag.term()
        check(ag.out, n, expected(start))
        assert all(ag.checkpoints()[p] >= first[p] for p in range(n))
    finally:
        ag.stop()
        relay.stop()


def coordinator_available():
    r = subprocess.run([os.path.join(BIN, "herald-coordinator"), "--help"],
                       capture_output=True, text=True)
    return "leader" in r.stdout or "elect" in r.stdout


if __name__ == "__main__":
    sys.exit(run([test_standalone], sys.argv[1:], prefix="herald-agent-"))
