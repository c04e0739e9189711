#!/usr/bin/env python3
"""Snapshots against the sandbox (docs/snapshots.md): groups started with
agent.start: snapshot on a source that already holds rows of every
column type, a composite key and a large table, while a writer keeps
changing the same rows. One group applies into the destination MariaDB,
which must equal the source afterwards; another writes file sinks, where
no key may show an older value after a newer one. Both read the same
chunks from the relays (the source reads each row about once).
Run by ctest with HERALD_SANDBOX_ENV, HERALD_BIN."""
import collections
import json
import os
import random
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import BIN, ENV, master_scn, run, sql  # noqa: E402
import test_agent as ta  # noqa: E402
# The snapshot tests sample a holder's progress mid-table: their relays
# start at the earliest position, as before, because one that starts at
# this process's own history is so quick that a snapshot can end between
# two samples (test_agent_killed_mid_snapshot then saw none).
ta.Group.relay_start = "earliest"
import test_db_sinks as tdb  # noqa: E402

BIG_ROWS = 20000
CHUNK = 500
# v only grows for a key (the writer adds to it): a smaller v after a
# larger one in a file sink is a stale overwrite.
BIG = tdb.Table("big", [("id", "BIGINT"), ("v", "BIGINT"),
                        ("pad", "VARCHAR(64) CHARACTER SET utf8mb4")],
                key=["id"])
TABLES = [tdb.TYPES, tdb.COMP, BIG, tdb.MARK]
WATERMARKS = ("window" if os.environ.get("HERALD_TEST_SNAPSHOT_WINDOW") == "1"
              else "snapshot")


class BigWriter(ta.Repeat):
    """Changes the big table's existing rows while the snapshot reads it:
    updates (v grows), deletes, inserts of new keys, and key moves to
    keys above every existing one."""

    def __init__(self, db, seed=11, rows=BIG_ROWS):
        self.db, self.rng, self.rows = db, random.Random(seed), rows
        self.next_id = rows * 10
        super().__init__(self.round, 0.005, "big writer")

    def round(self, i):
        r = self.rng
        ids = [r.randrange(1, self.rows + 1) for _ in range(6)]
        self.next_id += 2
        sql("BEGIN; UPDATE big SET v = v + 1 WHERE id IN (%d, %d, %d);"
            "UPDATE big SET v = v + 7, pad = CONCAT('u', %d) WHERE id = %d;"
            "DELETE FROM big WHERE id = %d;"
            "INSERT INTO big VALUES (%d, 1, 'new');"
            "UPDATE big SET id = %d, v = v + 1 WHERE id = %d; COMMIT;"
            % (ids[0], ids[1], ids[2], i, ids[3], ids[4], self.next_id,
               self.next_id + 1, ids[5]), db=self.db)


def fill(db):
    tdb.mixed_workload(db)
    for lo in range(0, BIG_ROWS, 2000):
        sql("INSERT INTO big VALUES " + ", ".join(
            "(%d, %d, 'p%d')" % (i, i % 97, i)
            for i in range(lo + 1, lo + 2001)), db=db)


def snap_agent(g, name, db, sink=None, file_out=None):
    """An agent of g's group that starts with a snapshot of db's tables."""
    if file_out:
        a = ta.Agent(g.tmp, name, zk=True, partitions=g.n, group=g.group,
                     per_agent_files=True, session_timeout=g.session_timeout)
    else:
        a = tdb.DbAgent(g.tmp, name, g.eng, db, g.group, g.n,
                        g.session_timeout)
    with open(a.conf) as f:
        text = f.read()
    tables = "[%s]" % ", ".join("'%s.%s'" % (db, t.name) for t in TABLES)
    text = text.replace("  start: latest",
                        "  start: snapshot\n  snapshot_chunk_rows: %d" % CHUNK)
    text = text.replace("  tables: ['%s.*']" % (db if not file_out
                                                 else ta.DB),
                        "  tables: %s" % tables)
    with open(a.conf, "w") as f:
        f.write(text)
    a.start()
    g.agents[name] = a
    return a


def relay_status(r):
    with urllib.request.urlopen("http://127.0.0.1:%d/status" % r.http,
                                timeout=5) as f:
        return json.loads(f.read())


def snapshot_states(agents):
    out = {}
    for a in agents:
        st = a.status() or {}
        for e in st.get("partition_status", []):
            out[(a.name, e["partition"])] = e.get("snapshot", {})
    return out


def file_lines(out_dir):
    """Every line of every file sink in out_dir, per file, in order."""
    res = {}
    for name in sorted(os.listdir(out_dir)):
        with open(os.path.join(out_dir, name)) as f:
            res[name] = [json.loads(l) for l in f if l.strip()]
    return res


def check_files(out_dir, db):
    """Per key of big: v never goes down, nothing follows a delete but a
    new insert, and the last state equals the source's row."""
    last = {}
    ops = collections.Counter()
    for name, lines in file_lines(out_dir).items():
        for ch in lines:
            src = ch.get("source") or {}
            if ch.get("op") not in ("c", "u", "d", "r") or \
                    src.get("db") != db or src.get("table") != "big":
                continue
            ops[ch["op"]] += 1
            k = ch["key"]["id"]
            if ch["op"] == "d":
                last[k] = None
                continue
            v = ch["after"]["v"]
            if ch["op"] == "u" and ch.get("old_key"):
                last[ch["old_key"]["id"]] = None
            prev = last.get(k)
            assert prev is None or v >= prev[0], (
                "%s: key %s went from v=%s back to v=%s (op %s)"
                % (name, k, prev[0], v, ch["op"]))
            last[k] = (v, ch["after"]["pad"])
    src = {int(r[0]): (int(r[1]), r[2]) for r in tdb.mysql_rows(
        ENV["HERALD_MDB_SOCKET"], "SELECT id, v, pad FROM `%s`.big" % db)}
    got = {int(k): v for k, v in last.items() if v is not None}
    missing = sorted(set(src) - set(got))
    extra = sorted(set(got) - set(src))
    differ = sorted(k for k in set(src) & set(got) if src[k] != got[k])
    assert not missing and not extra and not differ, (
        "file sinks differ from the source: %d missing %s, %d extra %s, "
        "%d differ %s" % (len(missing), missing[:5], len(extra), extra[:5],
                          len(differ), [(k, src[k], got[k])
                                        for k in differ[:5]]))
    assert ops["r"] >= BIG_ROWS * 0.9, "only %d snapshot rows of big: %s" % (
        ops["r"], dict(ops))
    return ops


def test_snapshot_with_writer(tmp):
    """A group with the mysql sink and a group with file sinks, both
    started with a snapshot while a writer changes the rows."""
    eng = tdb.ENGINES["mysql"]
    db = tdb.prepare(eng, "snap", TABLES + [tdb.NOPK])
    sql("SET GLOBAL max_allowed_packet = 268435456")
    fill(db)
    g = tdb.DbGroup(tmp, eng, db, 6)
    fg = None
    writer = None
    try:
        writer = BigWriter(db)
        t0 = time.time()
        for n in ("a1", "a2", "a3"):
            snap_agent(g, n, db)
        # a second group on the same relays, file sinks
        fg = ta.Group.__new__(ta.Group)
        fg.tc, fg.tmp, fg.n = g.tc, os.path.join(tmp, "files"), 4
        os.makedirs(fg.tmp)
        fg.group = g.group + "-files"
        fg.session_timeout = g.session_timeout
        fg.relays, fg.coords, fg.agents = [], [], {}
        for n in ("f1", "f2"):
            snap_agent(fg, n, db, file_out=True)
        g.wait_settled(timeout=60)
        fg.wait_settled(timeout=60)

        def all_done():
            st = snapshot_states(list(g.agents.values()) +
                                 list(fg.agents.values()))
            return len(st) == g.n + fg.n and all(
                s.get("state") == "done" for s in st.values())
        ta.wait_for(all_done, "every partition's snapshot done: %s\n%s" % (
            snapshot_states(list(g.agents.values()) +
                            list(fg.agents.values())), g.logs()), 300)
        took = time.time() - t0
        time.sleep(1)
        writer.stop()
        writer = None
        scn = tdb.marker(db, 1)
        g.wait_applied(scn, timeout=120)
        tdb.compare(eng, db, TABLES)
        ta.wait_for(lambda: min(fg.checkpoints().values()) >= scn,
                    "file group at %d: %s" % (scn, fg.checkpoints()), 60)
        ops = check_files(os.path.join(fg.tmp, "out"), db)
        read = sum(relay_status(r)["snapshot"]["rows_read"]
                   for r in g.relays)
        sent = sum(e["snapshot"]["rows"] for a in g.agents.values()
                   for e in a.status()["partition_status"])
        total = sum(int(tdb.mysql_rows(ENV["HERALD_MDB_SOCKET"],
                                       "SELECT COUNT(*) FROM `%s`.`%s`"
                                       % (db, t.name))[0][0]) for t in TABLES)
        print("snapshot of %d rows (now) into mysql and files: %.1f s; "
              "source rows read %d, rows delivered to the mysql group %d "
              "(%.3f read per delivered, two groups sharing the chunks); "
              "file sinks: %s" % (total, took, read, sent, read / max(sent, 1),
                                  dict(ops)))
        # Ten connections in two groups: without sharing, the source
        # would read each row ten times. Chunks read before a connection
        # subscribed cannot be merged into its stream (it never got the
        # changes in between) and are read again for it.
        assert sent > 0 and read / sent < 5, (read, sent)
        # The watermarks the relays used: MariaDB's consistent snapshot,
        # or DBLog's window (as on MySQL) when the suite forces it.
        logs = []
        for r in g.relays:
            with open(r.log) as f:
                logs.append(f.read())
        said = {w for w in ("window", "snapshot") for t in logs
                if "watermarks=" + w in t}
        assert said == {WATERMARKS}, (said, WATERMARKS)
    finally:
        if writer:
            writer.err = None
            writer.stop_ev.set()
        if fg:
            for a in fg.agents.values():
                a.stop()
            g.tc.zk_rmr("/herald/itest/groups/%s" % fg.group)
        g.close()


def ctl(*args, timeout=240):
    """heraldctl COMMAND --zk --cluster itest ARGS: (exit code, stdout,
    stderr)."""
    r = subprocess.run([os.path.join(BIN, "heraldctl"), args[0], "--zk",
                        ENV["HERALD_ZK_HOSTS"], "--cluster", "itest"] +
                       list(args[1:]), capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def checkpoints(g):
    return [g.tc.zk_get("/herald/itest/groups/%s/checkpoints/%d"
                        % (g.group, p)) or {} for p in range(g.n)]


class SessionHold:
    """Statements run as root by a client of its own on a MariaDB socket,
    whose session (and every lock it took) lives until release(). With
    wait, the constructor returns once they have run; without, at once
    (a lock another session has is then taken when it lets go)."""

    def __init__(self, socket, stmts, wait=True):
        self.p = subprocess.Popen(
            ["mariadb", "--no-defaults", "-uroot", "-S", socket, "-N",
             "--batch", "--unbuffered", "-e",
             "%s; SELECT 'locked'; SELECT SLEEP(300)" % stmts],
            stdout=subprocess.PIPE if wait else subprocess.DEVNULL,
            stderr=None if wait else subprocess.DEVNULL, text=True)
        if wait:
            assert self.p.stdout.readline().strip() == "locked", stmts

    def release(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(10)


def SourceLock(db, table):
    """LOCK TABLES ... WRITE on the source until released: the snapshot's
    chunk reads wait behind it."""
    return SessionHold(ENV["HERALD_MDB_SOCKET"],
                       "LOCK TABLES `%s`.`%s` WRITE" % (db, table))


def test_snapshot_requested(tmp):
    """heraldctl snapshot on a running group: a table whose rows predate
    the group arrives whole while a writer changes it; one partition
    restarted at the newest position gets its rows again; a snapshot
    held up at the source is cancelled and the streams go on."""
    eng = tdb.ENGINES["mysql"]
    db = tdb.prepare(eng, "snapreq", [BIG, tdb.COMP, tdb.MARK])
    for lo in range(0, 6000, 2000):
        sql("INSERT INTO big VALUES " + ", ".join(
            "(%d, %d, 'p%d')" % (i, i % 97, i)
            for i in range(lo + 1, lo + 2001)), db=db)
    sql("INSERT INTO comp VALUES ('a', 1, 'x', 1, '2026-01-01 00:00:00.5'), "
        "('b', 2, NULL, 18446744073709551615, NULL)", db=db)
    g = tdb.DbGroup(tmp, eng, db, 4)
    writer = lock = None
    try:
        tdb.start_agents(g, ["q1", "q2"])
        writer = BigWriter(db, seed=5)
        writer.next_id = 6000 * 10
        tables = "%s.big,%s.comp" % (db, db)
        t0 = time.time()
        rc, out, err = ctl("snapshot", "--group", g.group, "--tables", tables,
                           "--timeout", "180")
        assert rc == 0 and "finished" in out, (rc, out, err, g.logs())
        took = time.time() - t0
        cks = checkpoints(g)
        assert all(c.get("snapshot_id") == 1 and
                   c.get("snapshot_state") == "done" and
                   c.get("snapshot_tables") == tables for c in cks), cks
        rows = sum(c["snapshot_progress"]["rows"] for c in cks)
        assert rows >= 6000, cks
        time.sleep(0.5)
        writer.stop()
        writer = None
        scn = tdb.marker(db, 1)
        g.wait_applied(scn, timeout=120)
        tdb.compare(eng, db, [BIG, tdb.COMP])
        print("requested snapshot of %d rows into a running group of 4 "
              "partitions: %.1f s" % (rows, took))

        # Partition 0 starts again at the relays' newest position (as one
        # out of retention would); the others keep their snapshot done.
        sql("UPDATE big SET v = v + 100 WHERE id <= 50", db=db)
        rc, out, err = ctl("snapshot", "--group", g.group, "--tables",
                           "%s.big" % db, "--partitions", "0", "--restart",
                           "--timeout", "120")
        assert rc == 0, (rc, out, err, g.logs())
        cks = checkpoints(g)
        assert cks[0].get("snapshot_id") == 2 and \
            cks[0].get("snapshot_state") == "done" and cks[0]["scn"] > 0, cks
        assert all(c.get("snapshot_id") == 1 for c in cks[1:]), cks
        scn = tdb.marker(db, 2)
        g.wait_applied(scn, timeout=120)
        tdb.compare(eng, db, [BIG, tdb.COMP])

        # Held up behind a lock at the source, then cancelled: every
        # partition says so, and the streams go on.
        lock = SourceLock(db, "big")
        rc, out, err = ctl("snapshot", "--group", g.group, "--tables",
                           "%s.big" % db, "--no-wait")
        assert rc == 0 and "request 3" in out, (rc, out, err)
        ta.wait_for(lambda: all(c.get("snapshot_id") == 3 and
                                c.get("snapshot_state") == "running"
                                for c in checkpoints(g)),
                    "every partition running request 3: %s"
                    % checkpoints(g), 60)
        rc, out, err = ctl("snapshot", "--group", g.group, "--cancel",
                           "--timeout", "60")
        assert rc == 0 and "request 4" in out, (rc, out, err, g.logs())
        cks = checkpoints(g)
        assert all(c.get("snapshot_id") == 4 and
                   c.get("snapshot_state") == "cancelled" for c in cks), cks
        lock.release()
        lock = None
        sql("UPDATE comp SET v = 'after' WHERE k1 = 'a'", db=db)
        scn = tdb.marker(db, 3)
        g.wait_applied(scn, timeout=120)
        tdb.compare(eng, db, [tdb.COMP])
        for a in g.agents.values():
            for e in a.status()["partition_status"]:
                assert e["snapshot"]["state"] == "cancelled", e

        # Refusals: no such group, a partition the group does not have.
        rc, out, err = ctl("snapshot", "--group", g.group + "-none",
                           "--tables", "a.b", "--no-wait")
        assert rc == 2 and "no group" in err, (rc, out, err)
        rc, out, err = ctl("snapshot", "--group", g.group, "--tables", "a.b",
                           "--partitions", "9", "--no-wait")
        assert rc == 2 and "names none" in err, (rc, out, err)
    finally:
        if lock:
            lock.release()
        if writer:
            writer.err = None
            writer.stop_ev.set()
        g.close()


def settled_after_flush():
    """The binlog position once MariaDB has written the new file's own
    Binlog_checkpoint event, which it does on its own a moment after
    FLUSH BINARY LOGS (when the old file's transactions are all
    committed): 40 bytes that are no commit, but would move the position
    while the test checks that nothing does."""
    deadline = time.monotonic() + 20
    while True:
        f = sql("SHOW MASTER STATUS").split("\t")[0]
        ev = sql("SHOW BINLOG EVENTS IN '%s'" % f)
        if any(line.split("\t")[2:3] == ["Binlog_checkpoint"]
               and line.split("\t")[-1] == f for line in ev.splitlines()):
            return [f, sql("SHOW MASTER STATUS").split("\t")[1]]
        assert time.monotonic() < deadline, (
            "no Binlog_checkpoint naming %s after 20 s:\n%s" % (f, ev))
        time.sleep(0.05)


def test_snapshot_after_rotation(tmp):
    """A snapshot on a quiet source whose binlog was just rotated: the
    chunks are as of a position in the new file, which no window reaches
    until the next commit; the source's heartbeat tells the relay there
    is nothing in between, and the snapshot finishes with no commit at
    all (the suite's sandbox tests run one at a time: nothing else
    commits meanwhile, which the binlog position shows)."""
    eng = tdb.ENGINES["mysql"]
    db = tdb.prepare(eng, "snaprot", [BIG, tdb.MARK])
    sql("INSERT INTO big VALUES " + ", ".join(
        "(%d, %d, 'p%d')" % (i, i, i) for i in range(1, 1201)), db=db)
    g = tdb.DbGroup(tmp, eng, db, 2, nrelays=1, ncoords=1)
    try:
        sql("FLUSH BINARY LOGS")
        before = settled_after_flush()
        for n in ("r1",):
            snap_agent(g, n, db)
        g.wait_settled(timeout=60)

        def done():
            st = snapshot_states(g.agents.values())
            return len(st) == g.n and all(
                e.get("state") == "done" for e in st.values())
        ta.wait_for(done, "every partition's snapshot done with no commit: "
                    "%s\n%s" % (snapshot_states(g.agents.values()),
                                 g.logs()), 60)
        after = sql("SHOW MASTER STATUS").split("\t")[:2]
        assert after == before, (
            "something committed during the snapshot (%s, then %s): the "
            "test shows nothing" % (before, after))
        g.wait_applied(tdb.marker(db, 1), timeout=60)
        tdb.compare(eng, db, [BIG])
    finally:
        g.close()


def test_no_primary_key_refused(tmp):
    """A snapshot that takes a table without a primary key stops with a
    message naming the table; the partition's position does not move."""
    eng = tdb.ENGINES["mysql"]
    db = tdb.prepare(eng, "snapnopk", [tdb.NOPK, tdb.MARK])
    sql("INSERT INTO nopk VALUES (1, 'a', 1.5), (1, 'a', 1.5)", db=db)
    g = tdb.DbGroup(tmp, eng, db, 2, nrelays=1, ncoords=1)
    try:
        a = tdb.DbAgent(g.tmp, "n1", eng, db, g.group, g.n, g.session_timeout)
        with open(a.conf) as f:
            text = f.read().replace("  start: latest", "  start: snapshot")
        with open(a.conf, "w") as f:
            f.write(text)
        a.start()
        g.agents["n1"] = a

        def said():
            try:
                with open(a.log) as f:
                    for l in f:
                        if "without a primary key" in l and "%s.nopk" % db in l:
                            return l
            except OSError:
                pass
            return None
        line = ta.wait_for(said, "the refusal in the agent's log:\n%s"
                           % a.logtail(), 60)
        assert "primary key" in line
        # The stream's position may move meanwhile (heartbeats), but the
        # snapshot stays unfinished and no row reached the destination.
        for p in range(g.n):
            c = g.tc.zk_get("/herald/itest/groups/%s/checkpoints/%d"
                            % (g.group, p)) or {}
            assert c.get("snapshot_state") == "running", (p, c)
        assert not eng.table("SELECT 1 FROM information_schema.TABLES "
                             "WHERE TABLE_SCHEMA = '%s' AND TABLE_NAME = "
                             "'nopk'" % db) or \
            not eng.table("SELECT 1 FROM `%s`.nopk" % db)
    finally:
        g.close()


TESTS = [test_snapshot_with_writer, test_snapshot_requested,
         test_snapshot_after_rotation, test_no_primary_key_refused]

if __name__ == "__main__":
    sys.exit(run(TESTS, sys.argv[1:], prefix="herald-snap-"))
