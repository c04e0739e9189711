#!/usr/bin/env python3
"""The redis sink (sink.type: redis) into the sandbox's redis-server
(scripts/sandbox start --redis: appendonly, fsync always), read back with
a small RESP client: a mixed workload arrives and the keys equal the
source tables, also across a kill -9 of the agent and a restart of
redis-server; a replay from an old checkpoint writes nothing (the SCN
guard); a stopped (SIGSTOP) redis-server stops the partitions without a
checkpoint moving, and after SIGCONT everything arrives; deletes, key
moves, TTLs and the JSON value; stream mode holds every change once per
partition, in order; a password (refused, then from sink.password_file)
and a database number; three agents of a group with a kill -9 under
load; config refusals exit non-zero."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import sandbox, BIN, ENV, SRC, Relay, Skip, free_port, master_scn, run, setup_db, sql  # noqa: E402,E501
import test_agent as ta  # noqa: E402

URL = ENV.get("HERALD_REDIS_URL")
PORT = int(ENV.get("HERALD_REDIS_PORT") or 0)
SOCK = ENV.get("HERALD_REDIS_SOCKET")
SBX_DIR = os.environ.get("HERALD_SANDBOX_DIR") or ENV.get("HERALD_SANDBOX_DIR")


def need_redis():
    if not URL:
        raise Skip("no redis-server in the sandbox (start --redis)")


def redis_pid():
    with open(os.path.join(SBX_DIR, "redis", "redis.pid")) as f:
        return int(f.read().strip())


class Redis:
    """A RESP client, enough for the test: one command, one reply."""

    def __init__(self, port=None):
        self.s = socket.create_connection(("127.0.0.1", port or PORT),
                                          timeout=10)
        self.f = self.s.makefile("rb")

    def close(self):
        self.f.close()
        self.s.close()

    def __call__(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self._reply()

    def _reply(self):
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise AssertionError("redis: " + rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data.decode()
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise AssertionError("redis: bad reply %r" % line)

    def keys(self, pattern):
        res, cur = [], "0"
        while True:
            cur, ks = self("SCAN", cur, "MATCH", pattern, "COUNT", 1000)
            res += ks
            if cur == "0":
                return res

    def stat(self, cmd):
        for l in self("INFO", "commandstats").splitlines():
            if l.startswith("cmdstat_%s:" % cmd):
                return int(l.split("calls=")[1].split(",")[0])
        return 0


def rcli():
    return Redis()


def flushall():
    r = rcli()
    r("FLUSHALL")
    r.close()


def redis_sink(*extra, url=None):
    return ["sink:", "  type: redis", "  url: %s" % (url or URL),
            "  retry_max: 1s", "  timeout: 2s", "  connect_timeout: 1s"] + \
        ["  " + e for e in extra]


def pk(v):
    return v.replace("\\", "\\\\").replace(":", "\\:")


def source_rows():
    """{redis key: {column: text}} of the source tables (none NULL in this
    workload)."""
    want = {}
    for l in sql("SELECT id, v FROM it_agent.a", db=ta.DB).splitlines():
        i, v = l.replace("\\\\", "\\").split("\t")
        want["it_agent:a:%s" % pk(i)] = {"id": i, "v": v}
    for l in sql("SELECT k, n FROM it_agent.b", db=ta.DB).splitlines():
        k, n = l.replace("\\\\", "\\").split("\t")
        want["it_agent:b:%s" % pk(k)] = {"k": k, "n": n}
    return want


def redis_rows(json_value=False):
    r = rcli()
    got = {}
    for k in r.keys("it_agent:*"):
        if json_value:
            got[k] = {c: str(v) for c, v in json.loads(r("GET", k)).items()}
        else:
            h = r("HGETALL", k)
            got[k] = dict(zip(h[0::2], h[1::2]))
    r.close()
    return got


def check_equal(json_value=False):
    want, got = source_rows(), redis_rows(json_value)
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    wrong = sorted(k for k in want if k in got and got[k] != want[k])
    assert not missing and not extra and not wrong, \
        "redis != source: %d missing %s, %d extra %s, %d wrong %s" % (
            len(missing), missing[:3], len(extra), extra[:3], len(wrong),
            [(k, got[k], want[k]) for k in wrong[:3]])
    return len(want)


def log_lines(agent, word):
    try:
        with open(agent.log) as f:
            return [l for l in f if word in l]
    except OSError:
        return []


def at_head(ag, n):
    ag.start()
    head = master_scn()
    ta.wait_for(lambda: len(ag.checkpoints()) == n and
                min(ag.checkpoints().values()) >= head,
                "every partition at the head: " + ag.logtail())


def drained(ag, term=True):
    head = master_scn()
    ta.wait_for(lambda: ag.checkpoints() and
                min(ag.checkpoints().values()) >= head,
                "checkpoints at %d: %s %s" % (head, ag.checkpoints(),
                                              ag.logtail()), 90)
    if term:
        ag.term()


def test_refused(tmp):
    """redis keys with another sink, a redis sink without url, a key
    without {pk}, maxlen in keys mode, ttl in stream mode: refused."""
    need_redis()
    ag = ta.Agent(tmp, "bad", partitions=2, sink=redis_sink())
    hc = os.path.join(BIN, "heraldctl")
    with open(ag.conf) as f:
        conf = f.read().replace("  checkpoint_file:",
                                "  relays: 127.0.0.1:1\n  checkpoint_file:")
    url = "  url: %s\n" % URL
    stdout = conf.replace("type: redis", "type: stdout").replace(url, "")
    cases = [(conf.replace(url, ""), "sink: type redis needs 'url'"),
             (conf + "  key: '{db}:{table}'\n", "sink.key: '{db}:{table}' lacks {pk}"),
             (conf + "  maxlen: 10\n", "sink.maxlen: only used with mode stream"),
             (conf + "  mode: stream\n  ttl: 10s\n",
              "sink.ttl: only used with mode keys"),
             (conf + "  value: xml\n", "xml"),
             (stdout + "  key: 'x:{pk}'\n", "sink.key: only used with type redis"),
             (stdout + "  ttl: 5s\n", "only used with type redis"),
             (stdout + "  stream: 's:{db}'\n",
              "sink.stream: only used with type redis")]
    for text, want in cases:
        with open(ag.conf, "w") as f:
            f.write(text)
        r = subprocess.run([hc, "validate-config", ag.conf],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and want in r.stdout + r.stderr, \
            "%s: %s" % (want, r.stdout + r.stderr)
    with open(ag.conf, "w") as f:
        f.write(conf + "  value: json\n  ttl: 1h\n")
    r = subprocess.run([hc, "validate-config", ag.conf], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


def test_standalone(tmp):
    """One agent, four partitions (the Unix socket), a mixed load, a kill -9
    mid-stream and a restart of redis-server: the keys equal the source.
    Then the checkpoints set back to the start and the agent run again:
    the replay of every window writes nothing (no HSET, DEL or HDEL; the
    guard refuses each) and the keys still equal the source."""
    need_redis()
    flushall()
    start = setup_db(ta.DB, ta.DDL)
    relay = Relay(tmp, "r1", 9321).start()
    relay.wait_scn(master_scn())
    ag = ta.Agent(tmp, "a1", relays=[relay], partitions=4,
                  sink=redis_sink(url=SOCK))
    try:
        at_head(ag, 4)
        ta.restart_under_load(ag, then=(lambda: sandbox("redis-stop"),
                                        lambda: sandbox("redis-start")),
                              settle=1)
        drained(ag)
        n = check_equal()
        assert n > 100, n
        # The replay: every partition from the start again.
        path = os.path.join(ag.dir, "checkpoints.json")
        with open(path) as f:
            cp = json.load(f)
        for c in cp["checkpoints"].values():
            c["scn"] = start
        with open(path, "w") as f:
            json.dump(cp, f)
        r = rcli()
        before = {c: r.stat(c) for c in ("hset", "del", "hdel", "evalsha")}
        ag.start()
        drained(ag)
        after = {c: r.stat(c) for c in before}
        r.close()
        assert after["evalsha"] > before["evalsha"] + n, (before, after)
        for c in ("hset", "del", "hdel"):
            assert after[c] == before[c], \
                "the replay wrote (%s): %s -> %s" % (c, before, after)
        check_equal()
        print("standalone: %d keys equal the source; the replay of %d "
              "writes wrote none" % (n, after["evalsha"] - before["evalsha"]))
    finally:
        ag.stop()
        relay.stop()


def test_outage(tmp):
    """redis-server stopped (SIGSTOP) under load: partitions fail after
    sink.timeout, no checkpoint moves while it is stopped; SIGCONT, then
    the keys equal the source."""
    need_redis()
    flushall()
    setup_db(ta.DB, ta.DDL)
    relay = Relay(tmp, "r1", 9322).start()
    relay.wait_scn(master_scn())
    ag = ta.Agent(tmp, "a1", relays=[relay], partitions=4, sink=redis_sink())
    w = None
    pid = redis_pid()
    stopped = False
    try:
        at_head(ag, 4)
        w = ta.Writer()
        time.sleep(1)
        os.kill(pid, signal.SIGSTOP)
        stopped = True
        ta.wait_for(lambda: log_lines(ag, "partition stops, retries"),
                    "a failing partition: " + ag.logtail(), 60)
        time.sleep(1)
        before = ag.checkpoints()
        time.sleep(3)
        assert ag.checkpoints() == before, "checkpoint moved while stopped"
        os.kill(pid, signal.SIGCONT)
        stopped = False
        time.sleep(1)
        w.stop()
        w = None
        drained(ag)
        n = check_equal()
        fails = [l for l in log_lines(ag, "partition stops, retries")
                 if "redis" in l]
        assert fails, "no redis failure named: " + ag.logtail()
        print("outage: %d keys equal the source; %d failures logged, e.g. %s"
              % (n, len(fails), fails[0].strip()[:200]))
    finally:
        if stopped:
            os.kill(pid, signal.SIGCONT)
        if w:
            w.stop_ev.set()
        ag.stop()
        relay.stop()


def test_json_ttl(tmp):
    """sink.value json with a TTL: deletes leave no key but a tombstone
    position, key moves delete the old key and write the new one, every
    key and position has a TTL, the values are the after images; a
    SCRIPT FLUSH fails the partitions (NOSCRIPT), which reload it."""
    need_redis()
    flushall()
    setup_db(ta.DB, ta.DDL)
    relay = Relay(tmp, "r1", 9323).start()
    relay.wait_scn(master_scn())
    ag = ta.Agent(tmp, "a1", relays=[relay], partitions=3,
                  sink=redis_sink("value: json", "ttl: 1h"))
    try:
        at_head(ag, 3)
        ta.workload(5)
        sql("UPDATE it_agent.b SET k = 'moved' WHERE k = 'k0';"
            "INSERT INTO it_agent.a VALUES (77, 'a:b\\\\c');"
            "INSERT INTO it_agent.b VALUES ('x:y', 5)", db=ta.DB)
        drained(ag, term=False)
        # The script gone: NOSCRIPT fails the partitions, the reopen loads
        # it again.
        r = rcli()
        r("SCRIPT", "FLUSH")
        r.close()
        ta.workload(2, base=100)
        drained(ag)
        assert [l for l in log_lines(ag, "NOSCRIPT")
                if "partition stops, retries" in l], ag.logtail()
        n = check_equal(json_value=True)
        r = rcli()
        # Moved: id 1 -> 1000000, k0 -> moved; deleted: id 2.
        assert r("EXISTS", "it_agent:a:1") == 0
        assert r("EXISTS", "it_agent:a:1000000") == 1
        assert r("EXISTS", "it_agent:b:k0") == 0
        assert r("EXISTS", "it_agent:b:moved") == 1
        assert r("EXISTS", "it_agent:a:2") == 0
        assert r("EXISTS", "herald:pos:it_agent:a:2") == 1, "no tombstone"
        assert r("EXISTS", "herald:pos:it_agent:b:k0") == 1, "no tombstone"
        assert r("EXISTS", "it_agent:b:x\\:y") == 1, r.keys("it_agent:b:*")
        assert json.loads(r("GET", "it_agent:a:77")) == {"id": 77,
                                                         "v": "a:b\\c"}
        for k in r.keys("*"):
            ttl = r("PTTL", k)
            assert 0 < ttl <= 3600 * 1000, "%s: pttl %d" % (k, ttl)
        r.close()
        print("json_ttl: %d keys equal the source, every key with a TTL" % n)
    finally:
        ag.stop()
        relay.stop()


def test_stream(tmp):
    """Stream mode: every change in its table's stream once per partition
    that receives it, per partition in SCN order, also across a kill -9
    of the agent (the replay appends nothing twice)."""
    need_redis()
    flushall()
    start = setup_db(ta.DB, ta.DDL)
    relay = Relay(tmp, "r1", 9324).start()
    relay.wait_scn(master_scn())
    ag = ta.Agent(tmp, "a1", relays=[relay], partitions=4,
                  sink=redis_sink("mode: stream", "maxlen: 1000000"))
    w = None
    try:
        at_head(ag, 4)
        w = ta.Writer()
        time.sleep(1.5)
        ag.kill9()
        time.sleep(0.5)
        ag.start()
        time.sleep(1)
        w.stop()
        w = None
        drained(ag)
        r = rcli()
        seen, where, total = set(), {}, 0
        for s in ("herald:it_agent:a", "herald:it_agent:b"):
            last = {}
            for _, f in r("XRANGE", s, "-", "+"):
                e = dict(zip(f[0::2], f[1::2]))
                d = json.loads(e["change"])
                p = e["partition"]
                assert e["scn"] == str(d["scn"]), e
                assert s == "herald:%s:%s" % (d["source"]["db"],
                                              d["source"]["table"])
                assert d["scn"] >= last.get(p, 0), "%s p%s: %d after %d" % (
                    s, p, d["scn"], last[p])
                last[p] = d["scn"]
                k = ta.identity(e["change"])
                assert (k, p) not in seen, "twice: %s" % e["change"]
                seen.add((k, p))
                where.setdefault(k, set()).add(p)
                total += 1
        r.close()
        exp = ta.expected(start)
        missing = [l for l in exp if ta.identity(l) not in where]
        assert not missing, "%d of %d missing, first %s" % (
            len(missing), len(exp), missing[0])
        print("stream: %d entries, every change once per partition" % total)
    finally:
        if w:
            w.stop_ev.set()
        ag.stop()
        relay.stop()


def test_group(tmp):
    """Three agents of a group (ZooKeeper, two relays, two coordinators),
    a mixed load throughout, a kill -9 of one agent mid-stream: its
    partitions move and replay under the guard; the keys equal the
    source."""
    need_redis()
    flushall()
    setup_db(ta.DB, ta.DDL)
    g = ta.Group(tmp, 6)
    try:
        for name in ("a1", "a2", "a3"):
            g.agent(name, sink=redis_sink())
        g.wait_settled()
        g.wait_head()
        g.kill_under_load()
        n = check_equal()
        print("group: %d keys equal the source" % n)
    finally:
        g.close()


def test_auth(tmp):
    """A redis-server of the test's own with a password: a wrong password
    in the URL fails the partitions with the server's error, and the
    agent retries; sink.password_file with the right one, and a database
    number in the URL: the keys arrive there."""
    need_redis()
    port = free_port()
    d = os.path.join(tmp, "redis-auth")
    os.makedirs(d)
    srv = subprocess.Popen(
        ["redis-server", "--daemonize", "no", "--bind", "127.0.0.1",
         "--port", str(port), "--dir", d, "--save", "", "--appendonly", "no",
         "--requirepass", "s3cret", "--logfile", os.path.join(d, "log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    relay = ag = None
    try:
        ta.wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port))
                    == 0, "redis-server on %d" % port, 10)
        setup_db(ta.DB, ta.DDL)
        relay = Relay(tmp, "r1", 9325).start()
        relay.wait_scn(master_scn())
        url = "redis://default:wrong@127.0.0.1:%d/3" % port
        ag = ta.Agent(tmp, "a1", relays=[relay], partitions=2,
                      sink=redis_sink(url=url)).start()
        ta.wait_for(lambda: len([l for l in log_lines(ag, "WRONGPASS")
                                 if "sink open failed" in l]) >= 3,
                    "AUTH refused, retried: " + ag.logtail(), 30)
        assert not [l for l in open(ag.log) if "wrong" in l], \
            "the password in the log"
        ag.stop()
        pw = os.path.join(tmp, "redis.pw")
        with open(pw, "w") as f:
            f.write("s3cret\n")
        ag = ta.Agent(tmp, "a2", relays=[relay], partitions=2,
                      sink=redis_sink("password_file: %s" % pw,
                                      url="redis://127.0.0.1:%d/3" % port))
        at_head(ag, 2)
        ta.workload(3)
        drained(ag)
        r = Redis(port)
        r("AUTH", "s3cret")
        r("SELECT", "3")
        n = len(r.keys("it_agent:*"))
        r("SELECT", "0")
        assert n == len(source_rows()) and not r.keys("it_agent:*"), n
        r.close()
    finally:
        if ag:
            ag.stop()
        if relay:
            relay.stop()
        srv.terminate()
        srv.wait(timeout=10)


TESTS = [test_refused, test_standalone, test_outage, test_json_ttl,
         test_stream, test_auth, test_group]

if __name__ == "__main__":
    sys.exit(run(TESTS, sys.argv[1:], prefix="herald-redis-"))
