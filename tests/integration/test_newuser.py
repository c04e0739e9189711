#!/usr/bin/env python3
"""What a new user hit: the relay against the sandbox MariaDB, one test per
surprise.

- a DDL stream must never carry the passwords of account statements
  (MariaDB logs CREATE USER ... IDENTIFIED BY with the plain password);
- a consumer with table patterns gets the schema changes of its tables, a
  qualified ALTER TABLE db.t run from another database included, by the
  same rule in the relay, tail and decode;
- a lost source is retried with a backoff that grows to
  source.reconnect_max, and starts over only after a dump that streamed
  for a while;
- two relays with the same source.server_id say so and back off instead
  of kicking each other off five times a second;
- a data_dir records the identity of its source and refuses another one
  instead of resuming at positions of a different server's binlog.

Run by ctest like test_relay.py (same environment).

Usage: test_newuser.py [TEST...]   (default: all)
"""
import json
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import (BIN, ENV, SRC, Relay, binlog_files,  # noqa: E402
                        master_scn, run, setup_db, sql, tail, wait_for)


def tail_until(relay, args, until):
    """tail's lines for everything the relay sends up to SCN `until`. The
    relay reads the sandbox's binlog from its start: with a long history
    (earlier tests) that takes longer than tail's idle timeout, so it is
    awaited first."""
    relay.wait_scn(until, timeout=120)
    return tail(relay, args + ["--until", str(until)], None)[0]


def ddl_statements(lines):
    return [json.loads(l)["statement"] for l in lines
            if json.loads(l)["op"] == "ddl"]


def files_holding(top, needle):
    """Files under top whose bytes contain needle."""
    found = []
    pat = needle.encode()
    for d, _, names in os.walk(top):
        for n in names:
            p = os.path.join(d, n)
            # In pieces (a relay's store of a long history is gigabytes),
            # each with the end of the one before, where a match may begin.
            with open(p, "rb") as f:
                tail = b""
                while True:
                    piece = f.read(1 << 22)
                    if not piece:
                        break
                    if pat in tail + piece:
                        found.append(p)
                        break
                    tail = piece[-len(pat):]
    return found


def source_conf(relay, lines):
    """Appends lines to the relay's source: section (the last one)."""
    with open(relay.conf, "a") as f:
        f.write(lines)


def sandbox(cmd):
    subprocess.run([os.path.join(SRC, "scripts", "sandbox"), cmd, "--dir",
                    ENV["HERALD_SANDBOX_DIR"]], check=True, timeout=60)


def log_from(relay, offset):
    with open(relay.log) as f:
        f.seek(offset)
        return f.read()


def reconnects(text):
    """(in_ms, streamed_ms) of each "reconnecting" line of a relay log."""
    out = []
    for l in text.splitlines():
        if "msg=reconnecting" in l:
            kv = dict(w.split("=", 1) for w in l.split() if "=" in w)
            out.append((int(kv["in_ms"]), int(kv.get("streamed_ms", 0))))
    return out


# A consumer by hand, to see what the relay itself sends (tail applies the
# DDL rule too, so its output alone would not show the relay's filter).

def pb_varint(n):
    out = b""
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def pb_read_varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7f) << shift
        shift += 7
        if not c & 0x80:
            return v, i


def pb_fields(b):
    i = 0
    while i < len(b):
        key, i = pb_read_varint(b, i)
        fn, wt = key >> 3, key & 7
        if wt == 0:
            v, i = pb_read_varint(b, i)
        elif wt == 2:
            n, i = pb_read_varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise AssertionError("bad wire type %d" % wt)
        yield fn, wt, v


def pb_len(fn, data):
    return pb_varint(fn << 3 | 2) + pb_varint(len(data)) + data


def raw_statements(relay, start, until, tables=()):
    """The statements the relay sends a consumer subscribed with tables,
    for the windows after SCN start up to SCN until."""
    sub = pb_varint(1 << 3) + pb_varint(1) + pb_varint(3 << 3) + pb_varint(0)
    sub += pb_varint(4 << 3) + pb_varint(start)
    for t in tables:
        sub += pb_len(5, t.encode())
    frame = pb_len(1, sub)
    s = socket.create_connection(("127.0.0.1", relay.port), timeout=10)
    stmts, last = [], 0
    try:
        s.sendall(struct.pack(">I", len(frame)) + frame)
        buf = b""
        while last < until:
            while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
                got = s.recv(1 << 16)
                if not got:
                    raise AssertionError("the relay closed the connection")
                buf += got
            n = struct.unpack(">I", buf[:4])[0]
            fr, buf = buf[4:4 + n], buf[4 + n:]
            for fn, _, v in pb_fields(fr):
                if fn == 4:
                    raise AssertionError("relay error: %r" % v)
                if fn != 2:
                    continue
                for bfn, _, win in pb_fields(v):
                    if bfn != 1:
                        continue
                    for wfn, _, wv in pb_fields(win):
                        if wfn == 1:
                            last = wv
                        elif wfn == 8:
                            st = [x for f2, _, x in pb_fields(wv) if f2 == 2]
                            stmts.append(st[0].decode() if st else "")
    finally:
        s.close()
    return stmts


# ------------------------------------------------------------------ tests

def test_ddl_passwords_redacted(tmp):
    """CREATE/ALTER USER, GRANT ... IDENTIFIED BY and SET PASSWORD reach
    tail --ddl, the log store and decode --ddl with '<redacted>' in place of
    the password."""
    db = "nu_pw"
    start = setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY);" % db)
    secret = "Nu-s3cret-%d" % os.getpid()
    # The sandbox's own account statements (binlog.000001) are looked for
    # too, while that file is there: a test before this one may have purged
    # it (relay_bigtxn does, to spare later tests its 1 GiB).
    first = [l.split("\t") for l in sql("SHOW BINARY LOGS").splitlines()
             if l.split("\t")[0].endswith(".000001")]
    r = Relay(tmp, "pw", 201, start="earliest" if first else None).start()
    try:
        sql("DROP USER IF EXISTS 'nu_pw'@'localhost';"
            "CREATE USER 'nu_pw'@'localhost' IDENTIFIED BY '%s';"
            "ALTER USER 'nu_pw'@'localhost' IDENTIFIED BY '%s-it''s\\\\';"
            "GRANT SELECT ON nu_pw.* TO 'nu_pw'@'localhost' IDENTIFIED BY '%s2';"
            "SET PASSWORD FOR 'nu_pw'@'localhost' = PASSWORD('%s3');"
            "INSERT INTO nu_pw.t VALUES (1);" % (secret, secret, secret, secret))
        end = master_scn()
        lines = tail_until(r, ["--from", str(start), "--ddl"], end)
        out = "\n".join(lines)
        assert secret not in out, "a password reached tail: %s" % out
        stmts = [s for s in ddl_statements(lines) if "nu_pw'@" in s]
        assert len(stmts) >= 4, stmts
        assert sum("IDENTIFIED BY '<redacted>'" in s for s in stmts) == 3, stmts
        # Only that first file: a suite's history is gigabytes, more than
        # a list of its lines should hold.
        if first:
            early = tail_until(r, ["--from", "earliest", "--ddl"],
                               1 << 32 | int(first[0][1]))
            assert ENV["HERALD_MDB_REPL_PASSWORD"] not in "\n".join(early)
            assert any("herald_repl" in s and "<redacted>" in s
                       for s in ddl_statements(early)), ddl_statements(early)[:5]
        # Nothing on the relay's disk, nothing in decode's output (of the
        # files this test wrote to, and the first, read into a file).
        assert files_holding(os.path.join(r.dir, "data"), secret) == []
        files = [f for f in binlog_files()
                 if int(f.rsplit(".", 1)[1]) in (1, start >> 32)
                 or int(f.rsplit(".", 1)[1]) > start >> 32]
        os.mkdir(os.path.join(tmp, "decode"))
        out = os.path.join(tmp, "decode", "out")
        with open(out, "w") as o:
            d = subprocess.run([os.path.join(BIN, "heraldctl"), "decode",
                                "--ddl"] + files, stdout=o,
                               stderr=subprocess.PIPE, text=True, timeout=120)
        assert d.returncode == 0, d.stderr
        assert files_holding(os.path.dirname(out), secret) == []
        assert files_holding(os.path.dirname(out), "'<redacted>'") == [out]
    finally:
        r.stop()
        sql("DROP USER IF EXISTS 'nu_pw'@'localhost'")


def test_ddl_by_table(tmp):
    """Schema changes by the tables they name: a qualified ALTER TABLE
    nu_a.items run from database nu_b reaches a consumer of nu_a.*, nu_b's
    statements do not; the relay, tail and decode agree."""
    sql("DROP DATABASE IF EXISTS nu_a; DROP DATABASE IF EXISTS nu_b;"
        "CREATE DATABASE nu_a; CREATE DATABASE nu_b;")
    start = master_scn()
    r = Relay(tmp, "ddlt", 202).start()
    try:
        sql("CREATE TABLE nu_a.items (id INT PRIMARY KEY);"
            "CREATE TABLE nu_a.orders (id INT PRIMARY KEY);"
            "CREATE TABLE nu_b.items (id INT PRIMARY KEY);")
        sql("ALTER TABLE nu_a.items ADD COLUMN c INT", db="nu_b")
        sql("ALTER TABLE orders ADD COLUMN c INT; ALTER TABLE nu_b.items ADD "
            "COLUMN c INT; INSERT INTO items VALUES (1, 2);", db="nu_a")
        sql("RENAME TABLE nu_b.items TO nu_a.moved; DROP DATABASE nu_b;")
        end = master_scn()
        every = ["CREATE TABLE nu_a.items (id INT PRIMARY KEY)",
                 "CREATE TABLE nu_a.orders (id INT PRIMARY KEY)",
                 "CREATE TABLE nu_b.items (id INT PRIMARY KEY)",
                 "ALTER TABLE nu_a.items ADD COLUMN c INT",
                 "ALTER TABLE orders ADD COLUMN c INT",
                 "ALTER TABLE nu_b.items ADD COLUMN c INT",
                 "RENAME TABLE nu_b.items TO nu_a.moved",
                 "DROP DATABASE nu_b"]
        want = {
            "nu_a.*": [every[i] for i in (0, 1, 3, 4, 6)],
            "nu_a.items": [every[i] for i in (0, 3)],
            "nu_b.*": [every[i] for i in (2, 5, 6, 7)],
        }
        assert raw_statements(r, start, end) == every
        for pat, stmts in want.items():
            got = raw_statements(r, start, end, [pat])
            assert got == stmts, "relay, %s:\n%s\nwant\n%s" % (pat, got, stmts)
            lines = tail_until(r, ["--from", str(start), "--ddl", "--tables",
                                   pat], end)
            assert ddl_statements(lines) == stmts, (pat, ddl_statements(lines))
            d = subprocess.run([os.path.join(BIN, "heraldctl"), "decode", "--ddl",
                                "--tables", pat] + binlog_files(),
                               capture_output=True, text=True, timeout=120)
            assert d.returncode == 0, d.stderr
            dl = [l for l in d.stdout.splitlines() if json.loads(l)["scn"] > start]
            assert ddl_statements(dl) == stmts, (pat, ddl_statements(dl))
        # The row of nu_a.items still comes with its table's statements.
        lines = tail_until(r, ["--from", str(start), "--ddl", "--tables",
                               "nu_a.items"], end)
        assert [json.loads(l)["op"] for l in lines] == ["ddl", "ddl", "c"], lines
    finally:
        r.stop()
        sql("DROP DATABASE IF EXISTS nu_a; DROP DATABASE IF EXISTS nu_b;")


def test_reconnect_backoff(tmp):
    """The source gone for 5 s: attempts at 100, 200, 400 ms and then every
    source.reconnect_max (800 ms), not every 100 ms; after a dump that
    streamed for more than 10 s the backoff starts over at 100 ms."""
    r = Relay(tmp, "backoff", 203, tables="nu_bo.*")
    source_conf(r, "  reconnect_max: 800ms\n")
    r.start()
    try:
        wait_for(lambda: r.status()["source_connected"], 20, "the first dump")
        mark = os.path.getsize(r.log)
        t0 = time.time()
        sandbox("mdb-stop")
        try:
            time.sleep(5)
            gone = reconnects(log_from(r, mark))
            elapsed_ms = (time.time() - t0) * 1000
        finally:
            sandbox("mdb-start")
        waits = [w for w, _ in gone]
        # 100, 200, 400, then one per 800 ms, with two to spare (mdb-stop
        # takes a while, longer under sanitizers); 100 ms forever would be
        # ten a second.
        most = 4 + int((elapsed_ms - 700) / 800) + 2
        assert 4 <= len(waits) <= most, (elapsed_ms, waits)
        assert len(waits) < elapsed_ms / 200, (elapsed_ms, waits)
        assert waits[:4] == [100, 200, 400, 800], waits
        assert max(waits) == 800, waits
        wait_for(lambda: r.status()["source_connected"], 20, "reconnection")
        # A dump that streams for more than 10 s counts as healthy.
        time.sleep(11)
        mark = os.path.getsize(r.log)
        sandbox("mdb-stop")
        try:
            wait_for(lambda: reconnects(log_from(r, mark)), 10,
                     "a reconnect after the second stop")
        finally:
            sandbox("mdb-start")
        first = reconnects(log_from(r, mark))[0]
        assert first[0] == 100 and first[1] >= 10000, first
        wait_for(lambda: r.status()["source_connected"], 20, "reconnection")
    finally:
        r.stop()


def test_duplicate_server_id(tmp):
    """Two relays with one server_id: MariaDB 10.11 ends the older dump
    with error 4052 ("A slave with the same server_uuid/server_id is
    already connected"); each relay logs that server_id must be unique,
    counts it, and backs off to reconnect_max instead of reconnecting
    every 100 ms."""
    relays = []
    for name in ("dupa", "dupb"):
        r = Relay(tmp, name, 204, tables="nu_dup.*")
        source_conf(r, "  reconnect_max: 1s\n")
        relays.append(r)
    try:
        for r in relays:
            r.start()
        time.sleep(8)
        counts = [len(reconnects(log_from(r, 0))) for r in relays]
        logs = [log_from(r, 0) for r in relays]
        # 5 a second would be about 40 each.
        assert all(c <= 12 for c in counts), counts
        said = [l for l in logs if "gave this relay's server_id to another "
                "replica" in l and "server_id=204" in l and
                "must be unique" in l]
        assert said, relays[0].logtail()
        assert any('errors_total{kind="server_id"} 0' not in r.metrics()
                   for r in relays)
        assert all(r.proc.poll() is None for r in relays)
    finally:
        for r in relays:
            r.stop()


def test_source_identity(tmp):
    """A fresh data_dir records the source's identity (MariaDB: server_id,
    hostname, port); a relay whose data_dir names another source exits 1
    with a message naming the data_dir and both identities, and stores
    nothing; with its own identity back it resumes."""
    db = "nu_ident"
    start = setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY);" % db)
    r = Relay(tmp, "ident", 205, tables=db + ".*")
    path = os.path.join(r.dir, "data", "source-identity")
    r.start()
    try:
        sql("INSERT INTO %s.t VALUES (1);" % db)
        r.wait_scn(master_scn())
    finally:
        r.stop()
    sid, host, port = sql("SELECT @@server_id, @@hostname, @@port").split()
    with open(path) as f:
        mine = f.read()
    assert mine == "mariadb server_id=%s hostname=%s port=%s\n" % (sid, host, port), mine
    # The same data_dir pointed at another server (the sandbox runs one
    # MariaDB: the recorded identity stands for the other server).
    other = "mariadb server_id=%d hostname=elsewhere port=3306" % (int(sid) + 7)
    with open(path, "w") as f:
        f.write(other + "\n")
    sql("INSERT INTO %s.t VALUES (2);" % db)
    logf = open(r.log, "a")
    mark = os.path.getsize(r.log)
    p = subprocess.run([os.path.join(BIN, "herald-relay"), "-c", r.conf],
                       stdout=logf, stderr=logf, timeout=60)
    logf.close()
    log = log_from(r, mark)
    assert p.returncode == 1, (p.returncode, log[-2000:])
    said = [l for l in log.splitlines() if "another source" in l]
    assert said, log[-2000:]
    msg = said[0]
    assert os.path.join(r.dir, "data") in msg and other in msg, msg
    assert mine.strip() in msg and "data_dir of its own" in msg, msg
    with open(path) as f:
        assert f.read() == other + "\n", "the identity file was changed"
    assert "msg=dump " not in log, "a dump started: " + log[-2000:]
    # Its own identity back: it resumes, and the row it missed arrives.
    with open(path, "w") as f:
        f.write(mine)
    r.start()
    try:
        end = master_scn()
        lines = tail_until(r, ["--from", str(start), "--tables", db + ".*"], end)
        assert [json.loads(l)["after"]["id"] for l in lines] == [1, 2], lines
    finally:
        r.stop()


TESTS = [test_ddl_passwords_redacted, test_ddl_by_table, test_reconnect_backoff,
         test_duplicate_server_id, test_source_identity]


if __name__ == "__main__":
    sys.exit(run(TESTS, sys.argv[1:], "herald-nu-"))
