#!/usr/bin/env python3
"""Relay integration tests against the sandbox MariaDB and ZooKeeper.

Run by ctest (hd_sandbox_test): HERALD_SANDBOX_ENV names the sandbox's env
file, HERALD_BIN the programs, HERALD_SOURCE the source tree. Every relay a
test starts runs on free loopback ports in a temp dir and is stopped when
the test ends, pass or fail. Each test uses a database of its own, and
compares what `heraldctl tail` prints with what `heraldctl decode` reads
from the same binlog files, or with the rows written.

Usage: test_relay.py [TEST...]   (default: all)
"""
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

BIN = os.environ.get("HERALD_BIN", "build/bin")
SRC = os.environ.get("HERALD_SOURCE", ".")
ENV = {}
with open(os.environ["HERALD_SANDBOX_ENV"]) as f:
    for line in f:
        k, _, v = line.strip().partition("=")
        ENV[k] = v

TAIL_TIMEOUT = 30
SBX_DIR = os.environ.get("HERALD_SANDBOX_DIR") or ENV.get("HERALD_SANDBOX_DIR")


def sandbox(*args):
    """scripts/sandbox COMMAND on the test's sandbox (stop and start its
    servers)."""
    subprocess.run([os.path.join(SRC, "scripts", "sandbox")] + list(args)
                   + ["--dir", SBX_DIR], check=True, timeout=120,
                   stdout=subprocess.DEVNULL)


def sql(statements, db=None):
    cmd = ["mariadb", "--no-defaults", "--default-character-set=utf8mb4", "-uroot",
           "-S", ENV["HERALD_MDB_SOCKET"],
           "-N", "--batch"]
    if db:
        cmd.append(db)
    r = subprocess.run(cmd, input=statements, capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        raise AssertionError("sql failed: %s\n%s" % (r.stderr, statements[:300]))
    return r.stdout


def binlog_files():
    out = sql("SHOW BINARY LOGS")
    return [os.path.join(ENV["HERALD_MDB_DATADIR"], l.split("\t")[0])
            for l in out.splitlines() if l.strip()]


_GIVEN = set()


def free_port():
    """A loopback port free now, and never one handed out before in this
    process: the kernel may give a port just closed again at once, and
    two of them in one config (relay.listen and relay.http) are refused."""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p not in _GIVEN:
            _GIVEN.add(p)
            return p


class Relay:
    """One herald-relay process with its own config, ports and data dir."""

    def __init__(self, tmp, name, server_id, extra="", zk=False, tables="*.*",
                 listen_host="127.0.0.1", start=None, auth_file=None):
        # start None: where this process's first setup_db began
        # (setup_pos), not the sandbox's whole history, which later in a
        # suite (a lane's tests write gigabytes) takes minutes to read
        # under ASan.
        if start is None:
            start = setup_pos()
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port, self.http = free_port(), free_port()
        self.addr = "127.0.0.1:%d" % self.port  # what the tests dial
        self.conf = os.path.join(self.dir, "relay.yaml")
        self.log = os.path.join(self.dir, "relay.log")
        zkconf = 'zookeeper: {hosts: "%s"%s}\n' % (
            ENV["HERALD_ZK_HOSTS"],
            ", auth_file: '%s'" % auth_file if auth_file else "") if zk else ""
        with open(self.conf, "w") as f:
            f.write("cluster: itest\n%srelay:\n  id: %s\n  listen: '%s'\n"
                    "  http: 127.0.0.1:%d\n  data_dir: %s/data\n%s"
                    "source:\n  name: sandbox\n  host: 127.0.0.1\n  port: %s\n"
                    "  user: %s\n  password_file: %s\n  server_id: %d\n"
                    "  start: %s\n  tables: ['%s']\n"
                    % (zkconf, name, "%s:%d" % (listen_host, self.port),
                       self.http, self.dir, extra,
                       ENV["HERALD_MDB_PORT"], ENV["HERALD_MDB_REPL_USER"],
                       ENV["HERALD_MDB_REPL_PASSWORD_FILE"], server_id, start,
                       tables))
        self.proc = None

    def start(self):
        logf = open(self.log, "a")
        self.proc = subprocess.Popen([os.path.join(BIN, "herald-relay"), "-c",
                                      self.conf, "-v"], stdout=logf, stderr=logf)
        logf.close()
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("relay exited %d: %s" % (self.proc.returncode,
                                                             self.logtail()))
            try:
                self.status()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("relay did not start: " + self.logtail())

    def status(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/status" % self.http,
                                    timeout=2) as r:
            return json.loads(r.read())

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.http,
                                    timeout=2) as r:
            return r.read().decode()

    def wait_scn(self, scn, timeout=30):
        """Until the relay has read the source up to scn: its newest
        window, or a heartbeat's position (scn as SHOW MASTER STATUS gave
        it, just after a rotation, is in a file with no window yet)."""
        deadline = time.time() + timeout
        st = {}
        while time.time() < deadline:
            st = self.status()
            if max(st["newest_scn"], st.get("idle_scn", 0)) >= scn:
                return
            time.sleep(0.05)
        raise AssertionError("relay did not reach scn %d: newest_scn %s, "
                             "idle_scn %s" % (scn, st.get("newest_scn"),
                                              st.get("idle_scn")))

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("relay did not stop on SIGTERM")
            if rc != 0:
                raise AssertionError("relay exited %d on SIGTERM: %s"
                                     % (rc, self.logtail()))

    def logtail(self, n=15):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def tail(relay, args, maxn, expect_rc=0, idle_s=10, timeout=TAIL_TIMEOUT):
    """heraldctl tail's lines and stderr: --max maxn (None: args end it,
    e.g. with --until), --timeout idle_s."""
    cmd = [os.path.join(BIN, "heraldctl"), "tail", "--relay", relay.addr,
           "--timeout", str(idle_s)] + (["--max", str(maxn)] if maxn else []) + args
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != expect_rc:
        raise AssertionError("tail %s exited %d: %s\nrelay log:\n%s"
                             % (args, r.returncode, r.stderr, relay.logtail()))
    return r.stdout.splitlines(), r.stderr


def decode(tables, after):
    """decode's lines for tables, of windows after SCN `after`."""
    r = subprocess.run([os.path.join(BIN, "heraldctl"), "decode", "--tables",
                        tables] + binlog_files(), capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        raise AssertionError("decode exited %d: %s" % (r.returncode, r.stderr))
    return [l for l in r.stdout.splitlines() if json.loads(l)["scn"] > after]


class Forwarder:
    """TCP from listen_host:listen_port (0: any free port, then .port) to
    127.0.0.1:to_port, a thread per direction: a server reached by another
    address (test_tls: one its certificate does not name), or a link that
    can be cut (chaos: cut() closes every connection through it)."""

    def __init__(self, listen_host, listen_port, to_port):
        self.host, self.to_port = listen_host, to_port
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((listen_host, listen_port))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.to_port), 5)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b),
                                 daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        """Every connection through it is closed (new ones still pass)."""
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def close(self):
        self.cut()
        try:
            self.ls.close()
        except OSError:
            pass


def master_scn():
    f, p = sql("SHOW MASTER STATUS").split("\t")[:2]
    return (int(f.rsplit(".", 1)[1]) << 32) | int(p)


def binlog_pos():
    """The source's binlog end as source.start takes it ("file:pos")."""
    f, p = sql("SHOW MASTER STATUS").split("\t")[:2]
    return "%s:%s" % (f, p)


_SETUP_POS = None


def setup_pos():
    """Where this process's first setup_db began, for a relay's
    source.start: a relay that starts there reads this process's own
    history, not the whole sandbox's, which later in a suite (and under
    ASan) can take longer than a test's bounds. "earliest" before any."""
    return _SETUP_POS or "earliest"


def setup_db(db, ddl):
    """A fresh database; returns the SCN of the source after it, so that a
    test sees only its own changes even when the binlog holds older runs."""
    global _SETUP_POS
    if _SETUP_POS is None:
        _SETUP_POS = binlog_pos()
    sql("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; %s" % (db, db, ddl), db=None)
    return master_scn()


# ------------------------------------------------------------------ tests

def test_live_equals_decode(tmp):
    """Live inserts/updates/deletes reach tail exactly as decode reads them."""
    db = "it_live"
    start = setup_db(db, "CREATE TABLE %s.t (id BIGINT UNSIGNED PRIMARY KEY, s VARCHAR(50) "
             "CHARACTER SET utf8mb4, d DECIMAL(12,4), f DOUBLE, ts TIMESTAMP(6) NULL, "
             "b BLOB, e ENUM('x','y','z'), j JSON);" % db)
    r = Relay(tmp, "live", 101, tables=db + ".*").start()
    try:
        stmts = []
        for i in range(1, 201):
            stmts.append("INSERT INTO %s.t VALUES (%d, 'h\u00e9llo %d \U0001F600', %d.125, "
                         "%d.5e-3, '2024-05-06 07:08:09.%06d', REPEAT('x', %d), '%s', "
                         "'{\"k\": %d}');" % (db, i, i, i, i, i, i * 3, "xyz"[i % 3], i))
        stmts.append("UPDATE %s.t SET s = CONCAT(s, '!'), d = -d WHERE id %% 7 = 0;" % db)
        stmts.append("DELETE FROM %s.t WHERE id %% 11 = 0;" % db)
        stmts.append("BEGIN; UPDATE %s.t SET f = NULL WHERE id < 5; "
                     "DELETE FROM %s.t WHERE id = 199; COMMIT;" % (db, db))
        sql("\n".join(stmts))
        expected = decode(db + ".*", start)
        assert len(expected) == 200 + 28 + 18 + 5, len(expected)
        got, _ = tail(r, ["--from", str(start), "--tables", db + ".*"], len(expected))
        assert got == expected, "tail differs from decode:\n%s\n%s" % (
            got[:2], expected[:2])
    finally:
        r.stop()


def test_two_relays_identical(tmp):
    """Two relays on one source give identical windows and SCNs."""
    db = "it_two"
    start = setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY, v VARCHAR(20));" % db)
    a = Relay(tmp, "twoa", 102, tables=db + ".*").start()
    b = Relay(tmp, "twob", 103, tables=db + ".*").start()
    try:
        sql("".join("INSERT INTO %s.t VALUES (%d, 'v%d');" % (db, i, i)
                    for i in range(300)))
        sql("UPDATE %s.t SET v = 'u' WHERE id < 100" % db)
        ga, _ = tail(a, ["--from", str(start), "--tables", db + ".*"], 400)
        gb, _ = tail(b, ["--from", str(start), "--tables", db + ".*"], 400)
        assert ga == gb, "relays disagree"
        sa = [json.loads(l)["scn"] for l in ga]
        assert sa == sorted(sa) and len(set(sa)) == 301, "bad SCN sequence"
        assert a.status()["newest_scn"] == b.status()["newest_scn"]
    finally:
        a.stop()
        b.stop()


def test_kill9_resume(tmp):
    """kill -9 in the middle of a write load: every window stored once."""
    db = "it_kill"
    start = setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY, pad VARCHAR(200));" % db)
    n = 4000
    r = Relay(tmp, "kill", 104, extra="  fsync: window\n", tables=db + ".*").start()
    try:
        writer = subprocess.Popen(
            ["mariadb", "--no-defaults", "-uroot", "-S", ENV["HERALD_MDB_SOCKET"]],
            stdin=subprocess.PIPE, text=True)
        feeder = threading.Thread(target=lambda: (writer.stdin.write("".join(
            "INSERT INTO %s.t VALUES (%d, REPEAT('p', 150));\n" % (db, i)
            for i in range(n))), writer.stdin.close()))
        feeder.start()
        time.sleep(0.4)
        r.kill9()
        time.sleep(0.2)
        r.start()
        time.sleep(0.3)
        r.kill9()
        r.start()
        feeder.join(timeout=120)
        assert writer.wait(timeout=120) == 0
        got, _ = tail(r, ["--from", str(start), "--tables", db + ".*"], n)
        ids = [json.loads(l)["after"]["id"] for l in got]
        assert sorted(ids) == list(range(n)), "rows lost or doubled"
        scns = [json.loads(l)["scn"] for l in got]
        assert all(x < y for x, y in zip(scns, scns[1:])), "SCNs not increasing"
        # The store itself: a fresh relay reading it again agrees.
        r.stop()
        r.start()
        again, _ = tail(r, ["--from", str(start), "--tables", db + ".*"], n)
        assert again == got
    finally:
        r.stop()


def test_source_restart(tmp):
    """MariaDB restarts while the relay runs: no gap, no duplicate."""
    db = "it_restart"
    start = setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY);" % db)
    r = Relay(tmp, "restart", 105, tables=db + ".*").start()
    sb = [os.path.join(SRC, "scripts", "sandbox")]
    sbdir = ["--dir", ENV["HERALD_SANDBOX_DIR"]]
    try:
        sql("".join("INSERT INTO %s.t VALUES (%d);" % (db, i) for i in range(100)))
        r.wait_scn(master_scn())
        subprocess.run(sb + ["mdb-stop"] + sbdir, check=True, timeout=60)
        time.sleep(1.0)
        subprocess.run(sb + ["mdb-start"] + sbdir, check=True, timeout=60)
        sql("".join("INSERT INTO %s.t VALUES (%d);" % (db, i) for i in range(100, 200)))
        got, _ = tail(r, ["--from", str(start), "--tables", db + ".*"], 200)
        ids = [json.loads(l)["after"]["id"] for l in got]
        assert ids == list(range(200)), "gap or duplicate across the restart"
        assert "reconnect" in r.metrics() and r.status()["source_connected"]
        assert decode(db + ".*", start) == got
    finally:
        r.stop()


def subscribe_frame(mode=2, tables=()):
    """A Subscribe frame by hand: protocol_version=1, mode, tables."""
    body = b"\x08\x01" + bytes([0x18, mode])
    for t in tables:
        tb = t.encode()
        body += bytes([0x2a, len(tb)]) + tb
    frame = bytes([0x0a, len(body)]) + body
    return struct.pack(">I", len(frame)) + frame


def test_slow_consumer(tmp):
    """A consumer that reads nothing does not hold up a fast one."""
    db = "it_slow"
    start = setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY, b MEDIUMBLOB);" % db)
    r = Relay(tmp, "slow", 106, extra="  buffer_bytes: 8MiB\n", tables=db + ".*").start()
    slow = socket.socket()
    try:
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", r.port))
        slow.sendall(subscribe_frame(mode=1))  # earliest; then never read
        n = 400
        fast = subprocess.Popen(
            [os.path.join(BIN, "heraldctl"), "tail", "--relay", r.addr,
             "--from", "latest", "--tables", db + ".*", "--max", str(n),
             "--timeout", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        time.sleep(0.5)
        sql("".join("INSERT INTO %s.t VALUES (%d, REPEAT('b', 65536));" % (db, i)
                    for i in range(n)))
        out, err = fast.communicate(timeout=60)
        assert fast.returncode == 0, err
        assert len(out.splitlines()) == n
        # The stalled consumer is still connected, and still stalled (the
        # fast one's close may take the relay a moment to see).
        wait_for(lambda: r.status()["consumers"] == 1, 10,
                 "one consumer left: %s" % r.status())
        slow.setblocking(False)
        got = slow.recv(1 << 16)
        assert len(got) > 0
        # Twelve consumers read the same from the start: the ring has
        # evicted most of it, so they share the disk-read budget; all
        # finish, while the stalled one holds its share.
        # (Their output goes to files: a reader blocked on a full pipe
        # would be a stalled consumer itself.)
        outs = [os.path.join(tmp, "reader%d" % i) for i in range(12)]
        readers = []
        for path in outs:
            with open(path, "w") as f:
                readers.append(subprocess.Popen(
                    [os.path.join(BIN, "heraldctl"), "tail", "--relay", r.addr,
                     "--from", str(start), "--tables", db + ".*", "--max", str(n),
                     "--timeout", "20"], stdout=f, stderr=subprocess.PIPE,
                    text=True))
        for p, path in zip(readers, outs):
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            with open(path) as f:
                assert sum(1 for _ in f) == n
    finally:
        slow.close()
        r.stop()


def test_partitions(tmp):
    """Partition filters give every row to exactly one of N partitions."""
    db = "it_part"
    start = setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY, k VARCHAR(10));"
             "CREATE TABLE %s.nopk (v INT);" % (db, db))
    r = Relay(tmp, "part", 107, tables=db + ".*").start()
    try:
        sql("".join("INSERT INTO %s.t VALUES (%d, 'k%d');" % (db, i, i) for i in range(600))
            + "INSERT INTO %s.nopk VALUES (1),(2),(3);" % db)
        total = 603
        end = master_scn()
        for fn in ("hash", "mod"):
            seen = []
            for p in range(4):
                # each partition: read until the end marker (the nopk rows
                # are in partition 0 only); use --timeout to end the others
                cmd = [os.path.join(BIN, "heraldctl"), "tail", "--relay", r.addr,
                       "--from", str(start), "--tables", db + ".*",
                       "--partitions", "4:%d" % p, "--partition-fn", fn,
                       "--timeout", "10", "--until", str(end)]
                res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
                assert res.returncode == 0, res.stderr
                lines = res.stdout.splitlines()
                seen += [(json.loads(l)["source"]["table"],
                          json.dumps(json.loads(l)["after"], sort_keys=True))
                         for l in lines]
                if fn == "mod":
                    for l in lines:
                        o = json.loads(l)
                        if o["key"]:
                            assert o["key"]["id"] % 4 == p, (fn, p, o["key"])
            assert len(seen) == total and len(set(seen)) == total, (fn, len(seen))
    finally:
        r.stop()


def pb_fields(b):
    """(field number, wire type, value) of a protobuf message; value is an
    int for varints and bytes for length-delimited fields. Raises
    ValueError on anything else or on a cut-off field."""
    def varint(i):
        v = shift = 0
        while True:
            if i >= len(b) or shift > 63:
                raise ValueError("bad varint")
            v |= (b[i] & 0x7f) << shift
            shift += 7
            i += 1
            if not b[i - 1] & 0x80:
                return v, i
    out, i = [], 0
    while i < len(b):
        key, i = varint(i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(i)
        elif wt == 2:
            n, i = varint(i)
            if i + n > len(b):
                raise ValueError("field %d cut off" % num)
            v, i = b[i:i + n], i + n
        else:
            raise ValueError("wire type %d" % wt)
        out.append((num, wt, v))
    return out


def error_frames(data):
    """The relay's bytes on a refused connection as [(code, message)]:
    every frame must be a whole Frame holding an Error (field 4)."""
    errs, i = [], 0
    while i < len(data):
        assert i + 4 <= len(data), "cut-off frame header: %r" % data[i:]
        n = struct.unpack(">I", data[i:i + 4])[0]
        body = data[i + 4:i + 4 + n]
        assert len(body) == n, "cut-off frame: %r" % data[i:]
        i += 4 + n
        fields = pb_fields(body)
        assert [f[0] for f in fields] == [4], "not an Error frame: %r" % body
        err = dict((f[0], f[2]) for f in pb_fields(fields[0][2]))
        errs.append((err.get(1, 0), err.get(2, b"").decode()))
    return errs


GARBAGE_CLOSE_S = 10


def test_garbage(tmp):
    """Garbage on the port: the relay closes that connection by itself,
    after an Error frame saying why, and goes on serving."""
    db = "it_garbage"
    start = setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY);" % db)
    r = Relay(tmp, "garbage", 108, tables=db + ".*").start()
    rnd = random.Random(42)
    # (what, bytes, text the Error must hold). Each is complete as sent:
    # the relay must act on it without waiting for more input, so the
    # socket is not half-closed (the relay would then close on EOF, and
    # that is not what is tested).
    payloads = [
        ("HTTP request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "exceeds the maximum"),
        ("4 GiB frame length", b"\xff\xff\xff\xff", "exceeds the maximum"),
        ("empty frame", b"\x00\x00\x00\x00", "frame length is 0"),
        ("not a protobuf", b"\x00\x00\x00\x03\x0f\x01\x02", "not a valid"),
        ("heartbeat first", struct.pack(">I", 2) + b"\x1a\x00",
         "first frame must be Subscribe"),
        # A Subscribe whose length says one byte more than the frame holds.
        ("Subscribe cut short inside its frame",
         struct.pack(">I", 5) + b"\x0a\x04\x08\x01\x18", "not a valid"),
        # Starts 0xa31c06bd: a length far over the limit.
        ("5000 random bytes", bytes(rnd.getrandbits(8) for _ in range(5000)),
         "exceeds the maximum"),
    ]
    try:
        for what, p, want in payloads:
            s = socket.create_connection(("127.0.0.1", r.port), timeout=5)
            data, how = b"", None
            deadline = time.time() + GARBAGE_CLOSE_S
            try:
                s.sendall(p)
                while how is None:
                    s.settimeout(max(0.01, deadline - time.time()))
                    try:
                        chunk = s.recv(65536)
                    except socket.timeout:
                        raise AssertionError(
                            "%s: the relay left the connection open for %d s "
                            "(got %r)" % (what, GARBAGE_CLOSE_S, data[:200]))
                    except ConnectionResetError:
                        # Closing with unread input resets: still the relay.
                        how = "reset"
                        break
                    if not chunk:
                        how = "EOF"
                    data += chunk
            finally:
                s.close()
            errs = error_frames(data)
            # A reset may discard the Error before it is read; an orderly
            # close must come after one.
            assert how == "reset" or errs, "%s: closed without an Error" % what
            for code, msg in errs:
                assert code == 1 and want in msg, \
                    "%s: Error %d %r, want ERR_BAD_REQUEST with %r" % (
                        what, code, msg, want)
            assert r.proc.poll() is None, "%s: the relay exited" % what
        sql("INSERT INTO %s.t VALUES (1),(2);" % db)
        got, _ = tail(r, ["--from", str(start), "--tables", db + ".*"], 2)
        assert len(got) == 2
        with open(r.log) as f:
            log = f.read()
        assert "malformed frame" in log and "exceeds the maximum" in log
        assert "unexpected frame" in log
        assert r.proc.poll() is None
    finally:
        r.stop()


def test_retention_bootstrap_error(tmp):
    """An SCN older than the retention gets the explicit bootstrap error."""
    db = "it_ret"
    start = setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY, b MEDIUMBLOB);" % db)
    r = Relay(tmp, "ret", 109, extra="  segment_bytes: 1MiB\n  retention_bytes: 2MiB\n",
              tables=db + ".*").start()
    try:
        first = start
        sql("".join("INSERT INTO %s.t VALUES (%d, REPEAT('r', 200000));" % (db, i)
                    for i in range(40)))
        r.wait_scn(master_scn())
        deadline = time.time() + 20
        while r.status()["oldest_scn"] <= first and time.time() < deadline:
            time.sleep(0.1)
        assert r.status()["oldest_scn"] > first, r.status()
        _, err = tail(r, ["--from", str(first)], 1, expect_rc=1)
        assert "older than the relay's retention" in err and "bootstrap" in err, err
        assert "relay error HD_ESCN_TOO_OLD:" in err, err
        # Starting at what is retained works.
        got, _ = tail(r, ["--from", "earliest", "--tables", db + ".*"], 1)
        assert len(got) == 1
    finally:
        r.stop()


def zkcli():
    return ["/usr/share/zookeeper/bin/zkCli.sh", "-server",
            ENV["HERALD_ZK_HOSTS"].split(",")[0]]


def zk_get(path):
    """The data of a znode as zkCli prints it (the line that is the JSON),
    or None when there is no such node."""
    out = subprocess.run(zkcli() + ["get", path], capture_output=True,
                         text=True, timeout=60).stdout
    lines = [l for l in out.splitlines() if l.startswith("{")]
    return lines[0] if lines else None


# Fields the table marks "optional": written only when they say something.
OPTIONAL_NODE_FIELDS = set()


def documented_node_fields():
    """{field: python type} from the table of docs/zookeeper.md, so that
    the node and its documentation cannot drift apart."""
    types = {"string": str, "integer": int, "boolean": bool}
    fields = {}
    with open(os.path.join(SRC, "docs", "zookeeper.md")) as f:
        for line in f:
            cells = [c.strip() for c in line.split("|")]
            if len(cells) > 3 and cells[1].startswith("`") and cells[1].endswith("`"):
                kind = cells[2].split(",")[0]
                if kind in types:
                    fields[cells[1].strip("`")] = types[kind]
                    if "optional" in cells[2]:
                        OPTIONAL_NODE_FIELDS.add(cells[1].strip("`"))
    assert len(fields) >= 12, fields
    return fields


def test_zk_registration(tmp):
    """The relay registers in ZooKeeper where clients dial it (advertise),
    with every documented field of its type, and leaves on a clean stop."""
    adv = "localhost:%d" % free_port()  # not the listen address: it must show
    r = Relay(tmp, "zkreg", 110, zk=True, tables="it_zk.*", listen_host="0.0.0.0",
              extra="  advertise: %s\n" % adv).start()
    path = "/herald/itest/relays/sandbox/zkreg"
    try:
        deadline = time.time() + 20
        node = None
        while time.time() < deadline:
            data = zk_get(path)
            # Registered at once; the SCNs follow within a refresh (1 s).
            if data and '"newest_scn":0,' not in data and \
                    '"source_server_id":0,' not in data:
                node = json.loads(data)
                break
            time.sleep(0.5)
        assert node, "registration not found: %s" % zk_get(path)
        for name, typ in documented_node_fields().items():
            if name in OPTIONAL_NODE_FIELDS and name not in node:
                continue
            assert name in node, "field %s missing: %s" % (name, node)
            assert type(node[name]) is typ, "field %s is %r, not %s" % (
                name, node[name], typ.__name__)
        assert node["advertise"] == adv, node
        assert node["listen"] == "0.0.0.0:%d" % r.port, node
        assert node["http"] == "127.0.0.1:%d" % r.http, node
        assert node["id"] == "zkreg" and node["source"] == "sandbox", node
        assert node["source_server_id"] == int(sql("SELECT @@server_id").strip()), node
        assert node["connected"] is True and node["newest_scn"] > 0, node
        assert node["oldest_scn"] <= node["newest_scn"], node
        assert abs(node["updated_ms"] - time.time() * 1000) < 60000, node
        out = subprocess.run([os.path.join(BIN, "herald-relay"), "--version"],
                             capture_output=True, text=True).stdout
        assert out.split()[-1] == node["version"], (out, node)
        st = r.status()
        assert st["advertise"] == adv and \
            st["source_server_id"] == node["source_server_id"], st
        # The node moves: updated_ms is rewritten about every second.
        wait_for(lambda: json.loads(zk_get(path))["updated_ms"] > node["updated_ms"],
                 15, "the registration to be refreshed")
    finally:
        r.stop()
    # Gone on a clean stop. A follower may serve the read a moment before it
    # has applied the delete, so look again for a while.
    def gone():
        out = subprocess.run(zkcli() + ["stat", path], capture_output=True,
                             text=True, timeout=60)
        return "Node does not exist" in out.stdout + out.stderr
    wait_for(gone, 15, "the registration to go")


def read_frames(sock, timeout, t0=None):
    """Frames (payload bytes) read until the peer closes or timeout;
    returns (frames, closed, seconds since t0, by default since now)."""
    t0 = t0 or time.time()
    buf = b""
    sock.settimeout(0.2)
    closed = False
    while time.time() - t0 < timeout:
        try:
            b = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
        if not b:
            closed = True
            break
        buf += b
    frames = []
    while len(buf) >= 4:
        n = struct.unpack(">I", buf[:4])[0]
        if len(buf) < 4 + n:
            break
        frames.append(buf[4:4 + n])
        buf = buf[4 + n:]
    return frames, closed, time.time() - t0


def pb_dict(b):
    """A protobuf message's fields: {number: value} (varints and bytes)."""
    out, i = {}, 0
    def varint():
        nonlocal i
        v = shift = 0
        while True:
            c = b[i]
            i += 1
            v |= (c & 0x7f) << shift
            shift += 7
            if not c & 0x80:
                return v
    while i < len(b):
        key = varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            out[num] = varint()
        elif wt == 2:
            n = varint()
            out[num] = b[i:i + n]
            i += n
        else:
            raise AssertionError("unexpected wire type %d" % wt)
    return out


def test_handshake_timeout(tmp):
    """A connection that does not subscribe within relay.handshake_timeout
    gets ERR_BAD_REQUEST and is closed; a subscribed idle one stays."""
    r = Relay(tmp, "handshake", 116, tables="it_hs.*",
              extra="  handshake_timeout: 1s\n").start()
    try:
        # Caught up first: while the relay reads the sandbox's history (long
        # by the ASan pass) the subscribed connection gets its windows, with
        # none of their rows, and no heartbeat to check for.
        r.wait_scn(master_scn(), timeout=120)
        t0 = time.time()
        silent = socket.create_connection(("127.0.0.1", r.port), timeout=5)
        partial = socket.create_connection(("127.0.0.1", r.port), timeout=5)
        partial.sendall(subscribe_frame(mode=2)[:5])  # half a Subscribe
        sub = socket.create_connection(("127.0.0.1", r.port), timeout=5)
        sub.sendall(subscribe_frame(mode=2))  # latest, then idle
        for s in (silent, partial):
            frames, closed, secs = read_frames(s, 6, t0)
            assert closed, "not closed after %.1f s" % secs
            # 1 s, checked every half second: closed within 1.5 s (some
            # slack for a loaded machine).
            assert 0.9 <= secs <= 3.0, secs
            assert len(frames) == 1, frames
            err = pb_dict(pb_dict(frames[0])[4])  # Frame.error
            assert err.get(1) == 1, err                # ERR_BAD_REQUEST
            assert err[2] == b"no Subscribe within 1 s", err
            s.close()
        # The subscribed one stays, and gets heartbeats (Frame.heartbeat =
        # 3), no Error.
        frames, closed, _ = read_frames(sub, 2.5)
        assert not closed, frames
        kinds = [min(pb_dict(f)) for f in frames]
        assert 3 in kinds and 4 not in kinds, kinds
        sub.close()
        with open(r.log) as f:
            log = f.read()
        assert log.count('msg="handshake timeout"') == 2, log[-2000:]
        assert 'error="no Subscribe within 1 s"' in log
        assert r.proc.poll() is None
    finally:
        r.stop()


def test_wildcard_listen_needs_advertise(tmp):
    """A wildcard listen address with zookeeper and no relay.advertise is
    refused by validate-config and by the relay (exit 2), naming the key."""
    for host in ("0.0.0.0", "[::]"):
        r = Relay(tmp, "wild", 117, zk=True, listen_host=host)
        v = subprocess.run([os.path.join(BIN, "heraldctl"), "validate-config",
                            r.conf], capture_output=True, text=True, timeout=30)
        assert v.returncode == 2, (v.returncode, v.stdout, v.stderr)
        assert "relay.advertise" in v.stderr and "wildcard" in v.stderr, v.stderr
        p = subprocess.run([os.path.join(BIN, "herald-relay"), "-c", r.conf],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, (p.returncode, p.stderr)
        assert "relay.advertise" in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert not os.path.exists(os.path.join(r.dir, "data")), "relay started"


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def test_source_not_row_format(tmp):
    """binlog_format not ROW: logged, counted, retried; capture resumes."""
    sql("SET GLOBAL binlog_format = 'STATEMENT'")
    r = None
    try:
        r = Relay(tmp, "fmt", 111, tables="it_fmt.*").start()
        wait_for(lambda: 'kind="source_config"} 0' not in r.metrics(), 20,
                 "a source_config error")
        assert not r.status()["source_connected"]
        with open(r.log) as f:
            assert "binlog_format is not ROW" in f.read()
    finally:
        sql("SET GLOBAL binlog_format = 'ROW'")
    try:
        wait_for(lambda: r.status()["source_connected"], 40, "reconnection")
    finally:
        r.stop()


def test_missing_privilege(tmp):
    """A user without REPLICATION SLAVE: a privilege error, clearly said."""
    sql("DROP USER IF EXISTS 'it_nopriv'@'127.0.0.1';"
        "CREATE USER 'it_nopriv'@'127.0.0.1' IDENTIFIED BY 'pw';"
        "GRANT BINLOG MONITOR, SELECT ON *.* TO 'it_nopriv'@'127.0.0.1';")
    pw = os.path.join(tmp, "pw")
    with open(pw, "w") as f:
        f.write("pw\n")
    r = Relay(tmp, "priv", 112, tables="it_priv.*")
    with open(r.conf) as f:
        conf = f.read()
    conf = conf.replace("user: %s" % ENV["HERALD_MDB_REPL_USER"], "user: it_nopriv")
    conf = conf.replace("password_file: %s" % ENV["HERALD_MDB_REPL_PASSWORD_FILE"],
                        "password_file: " + pw)
    with open(r.conf, "w") as f:
        f.write(conf)
    r.start()
    try:
        wait_for(lambda: 'kind="privilege"} 0' not in r.metrics(), 20,
                 "a privilege error")
        with open(r.log) as f:
            assert "REPLICATION SLAVE" in f.read()
    finally:
        r.stop()
        sql("DROP USER 'it_nopriv'@'127.0.0.1'")


def test_purged_binlog_is_fatal(tmp):
    """A start position the source no longer has stops the relay, exit 1."""
    r = Relay(tmp, "purged", 113, tables="it_purged.*", start="earliest")
    with open(r.conf) as f:
        conf = f.read().replace("start: earliest", "start: binlog.999999:4")
    with open(r.conf, "w") as f:
        f.write(conf)
    logf = open(r.log, "a")
    p = subprocess.run([os.path.join(BIN, "herald-relay"), "-c", r.conf],
                       stdout=logf, stderr=logf, timeout=60)
    logf.close()
    assert p.returncode == 1, p.returncode
    with open(r.log) as f:
        log = f.read()
    assert "binlog.999999" in log and "bootstrap" in log, log[-500:]


def test_schema_from_information_schema(tmp):
    """Without full table-map metadata, names and keys come from the schema."""
    db = "it_minimal"
    start = setup_db(db, "CREATE TABLE %s.t (id INT UNSIGNED PRIMARY KEY, "
                     "e ENUM('a','b'), name VARCHAR(10));" % db)
    sql("SET GLOBAL binlog_row_metadata = 'MINIMAL'")
    try:
        sql("INSERT INTO %s.t VALUES (4294967295, 'b', 'x');" % db)
    finally:
        sql("SET GLOBAL binlog_row_metadata = 'FULL'")
    r = Relay(tmp, "minimal", 114, tables=db + ".*").start()
    try:
        got, _ = tail(r, ["--from", str(start), "--tables", db + ".*"], 1)
        o = json.loads(got[0])
        assert o["after"] == {"id": 4294967295, "e": "b", "name": "x"}, o
        assert o["key"] == {"id": 4294967295}, o
    finally:
        r.stop()


def test_limits_token_projection(tmp):
    """Connection limit, shared token, and a column projection."""
    db = "it_limits"
    start = setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY, a INT, b VARCHAR(10), "
                     "c DOUBLE);" % db)
    tok = os.path.join(tmp, "token")
    with open(tok, "w") as f:
        f.write("s3cret\n")
    r = Relay(tmp, "limits", 115, extra="  max_connections: 2\n  token_file: %s\n" % tok,
              tables=db + ".*").start()
    held = []
    try:
        sql("INSERT INTO %s.t VALUES (1, 10, 'x', 1.5), (2, 20, 'y', 2.5);"
            "UPDATE %s.t SET b = 'z' WHERE id = 1;" % (db, db))
        # No token, a wrong token: refused with the reason.
        _, err = tail(r, ["--from", str(start)], 1, expect_rc=1)
        assert "relay error HD_EAUTH: bad or missing token" in err, err
        bad = os.path.join(tmp, "bad")
        with open(bad, "w") as f:
            f.write("nope\n")
        _, err = tail(r, ["--from", str(start), "--token-file", bad], 1, expect_rc=1)
        assert "bad or missing token" in err, err
        # The projection keeps the key and the named columns.
        got, _ = tail(r, ["--from", str(start), "--token-file", tok, "--tables",
                          db + ".*", "--columns", db + ".t:b"], 3)
        rows = [json.loads(l) for l in got]
        assert rows[0]["after"] == {"id": 1, "b": "x"}, rows[0]
        assert rows[2]["before"] == {"id": 1, "b": "x"} and \
            rows[2]["after"] == {"id": 1, "b": "z"}, rows[2]
        # Two connections held open: the third is refused.
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", r.port), timeout=5)
            held.append(s)
        time.sleep(0.3)
        _, err = tail(r, ["--from", str(start), "--token-file", tok], 1, expect_rc=1)
        assert "relay error HD_ETOO_MANY: connection limit" in err, err
    finally:
        for s in held:
            s.close()
        r.stop()


TESTS = [test_live_equals_decode, test_two_relays_identical, test_kill9_resume,
         test_source_restart, test_slow_consumer, test_partitions, test_garbage,
         test_retention_bootstrap_error, test_zk_registration,
         test_handshake_timeout, test_wildcard_listen_needs_advertise,
         test_source_not_row_format, test_missing_privilege,
         test_purged_binlog_is_fatal, test_schema_from_information_schema,
         test_limits_token_projection]


class Skip(Exception):
    """Raised by a test that cannot run here (the reason is printed and
    the file exits 77, which ctest counts as skipped)."""


def run(tests, names, prefix="herald-it-"):
    """Runs the tests named (all when none), each in a temp dir of its own
    that is removed afterwards (unless HERALD_KEEP_TMP is set); returns the
    exit status: 0, 1 when one failed, 77 when one was skipped."""
    tests = [t for t in tests if not names or t.__name__ in names]
    passed = failed = 0
    for t in tests:
        tmp = tempfile.mkdtemp(prefix=prefix)
        t0 = time.time()
        try:
            t(tmp)
            passed += 1
            print("ok   %-32s %.1f s" % (t.__name__, time.time() - t0), flush=True)
        except Skip as e:
            print("skipped: %s" % e, flush=True)
            return 77
        except Exception:
            failed += 1
            print("FAIL %-32s %.1f s" % (t.__name__, time.time() - t0), flush=True)
            traceback.print_exc()
        finally:
            if not os.environ.get("HERALD_KEEP_TMP"):
                shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run(TESTS, sys.argv[1:]))
