#!/usr/bin/env python3
"""examples/consumer.c against a real relay on the sandbox MariaDB.

Rows of many column types are written (inserts, updates, deletes, a
multi-row transaction, a composite key, a statement that changes a
table); the example consumer, built on libherald alone, must print one
line per row change naming the operation, the table, the key and every
value as its type prints it, a schema line per table definition, the
statement, and a begin/end pair per window.

Run by ctest like test_relay.py (same environment).
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import BIN, Relay, run, setup_db, sql  # noqa: E402

DB = "it_lhex"


def text(s):
    """A string value as the example prints it."""
    out = ""
    for ch in s:
        if ch in '"\\':
            out += "\\" + ch
        elif ch == "\n":
            out += "\\n"
        elif ord(ch) < 0x20:
            out += "\\x%02x" % ord(ch)
        else:
            out += ch
    return '"%s"' % out


def row_t(id_, i, s, d, f, fl, dt, b, e, n):
    """The line's columns of a row of it_lhex.t, in table order."""
    return ("id=%d i=%d s=%s d=%s f=%s fl=%s dt=%s b=x'%s' e=%s n=%s"
            % (id_, i, text(s), d, f, fl, dt, b.hex(), text(e),
               "NULL" if n is None else n))


def consumer(relay, start, n, tables="%s.t,%s.k" % (DB, DB)):
    r = subprocess.run([os.path.join(BIN, "consumer"), "--relays", relay.addr,
                        "--from", str(start), "--tables", tables, "--max", str(n)],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("consumer exited %d: %s\nrelay log:\n%s"
                             % (r.returncode, r.stderr, relay.logtail()))
    return r.stdout.splitlines()


def test_example_consumer(tmp):
    """Every change once, with its values by type, in order."""
    start = setup_db(DB, (
        "CREATE TABLE {0}.t (id BIGINT UNSIGNED PRIMARY KEY, i INT, "
        "s VARCHAR(40) CHARACTER SET utf8mb4, d DECIMAL(10,3), f DOUBLE, "
        "fl FLOAT, dt DATETIME(3), b VARBINARY(8), e ENUM('x','y','z'), n INT);"
        "CREATE TABLE {0}.k (a INT, c VARCHAR(10), v INT, PRIMARY KEY (a, c));"
        "CREATE TABLE {0}.skipped (id INT PRIMARY KEY);").format(DB))
    r = Relay(tmp, "lhex", 401, tables=DB + ".*").start()
    try:
        rows = [
            (1, -5, 'h\u00e9llo "q" \\', "12.500", "0.125", "1.5",
             "2024-05-06 07:08:09.123", b"\x00\xffA", "y", None),
            (18446744073709551615, 2147483647, "\U0001F600", "-0.001", "1e+300",
             "-2.25", "1999-12-31 23:59:59.000", b"", "x", 7),
            (3, 0, "", "0.000", "-0.5", "0", "2000-01-01 00:00:00.500",
             b"\x01\x02\x03\x04\x05\x06\x07\x08", "z", -1),
        ]
        stmts = []
        for (id_, i, s, d, f, fl, dt, b, e, n) in rows:
            stmts.append("INSERT INTO %s.t VALUES (%d, %d, '%s', %s, %s, %s, '%s', "
                         "X'%s', '%s', %s);" % (
                             DB, id_, i, s.replace("\\", "\\\\").replace("'", "''"),
                             d, f, fl, dt, b.hex(), e,
                             "NULL" if n is None else n))
        stmts.append("UPDATE %s.t SET s = 'new', n = NULL WHERE id = 3;" % DB)
        stmts.append("DELETE FROM %s.t WHERE id = 1;" % DB)
        # One window of three changes; a table the filter leaves out.
        stmts.append("BEGIN; INSERT INTO %s.k VALUES (1, 'a', 10), (1, 'b', 11); "
                     "INSERT INTO %s.skipped VALUES (1); "
                     "UPDATE %s.k SET v = 12 WHERE a = 1 AND c = 'a'; COMMIT;"
                     % (DB, DB, DB))
        stmts.append("ALTER TABLE %s.k ADD COLUMN w VARCHAR(5) DEFAULT 'dw';" % DB)
        stmts.append("INSERT INTO %s.k (a, c, v) VALUES (2, 'z', 20);" % DB)
        sql("\n".join(stmts))

        u3 = list(rows[2])
        u3[2], u3[9] = "new", None
        want = [
            "insert %s.t key(id=1) %s" % (DB, row_t(*rows[0])),
            "insert %s.t key(id=18446744073709551615) %s" % (DB, row_t(*rows[1])),
            "insert %s.t key(id=3) %s" % (DB, row_t(*rows[2])),
            "update %s.t key(id=3) %s" % (DB, row_t(*u3)),
            "delete %s.t key(id=1) %s" % (DB, row_t(*rows[0])),
            'insert %s.k key(a=1 c="a") a=1 c="a" v=10' % DB,
            'insert %s.k key(a=1 c="b") a=1 c="b" v=11' % DB,
            'update %s.k key(a=1 c="a") a=1 c="a" v=12' % DB,
            'insert %s.k key(a=2 c="z") a=2 c="z" v=20 w="dw"' % DB,
        ]
        out = consumer(r, start, len(want))
        changes = [l for l in out if l.split(" ", 1)[0] in ("insert", "update",
                                                            "delete")]
        assert changes == want, "changes differ:\n%s\n--- want:\n%s" % (
            "\n".join(changes), "\n".join(want))
        # A window per transaction: begin/end around its changes, SCNs
        # rising, each acknowledged (the example stops on a refused ack).
        begins = [l for l in out if l.startswith("begin ")]
        ends = [int(l.split("=")[1]) for l in out if l.startswith("end ")]
        assert len(ends) == 7 and ends == sorted(set(ends)), out
        assert len(begins) == 8, out  # the last one ends at --max
        assert out[0].startswith("begin scn=") and " gtid=0-1-" in out[0], out[0]
        # The definitions once each (k twice: before and after the ALTER),
        # before their first row; the statement where it was logged.
        schemas = [l for l in out if l.startswith("schema ")]
        assert [l.split(":")[0].rsplit(" ", 1)[0] for l in schemas] == [
            "schema %s.t" % DB, "schema %s.k" % DB, "schema %s.k" % DB], schemas
        assert schemas[0].endswith(
            ": id bigint unsigned pk, i int, s varchar(40), d decimal(10,3), "
            "f double, fl float, dt datetime(3), b varbinary(8), "
            "e enum('x','y','z'), n int"), schemas[0]
        assert schemas[2].endswith(", w varchar(5)"), schemas[2]
        assert out.index(schemas[0]) < out.index(changes[0])
        ddl = [l for l in out if l.startswith("ddl ")]
        assert ddl == ["ddl ALTER TABLE %s.k ADD COLUMN w VARCHAR(5) DEFAULT 'dw'"
                       % DB], ddl
        assert out.index(ddl[0]) < out.index(schemas[2]) < out.index(changes[-1])
        # Starting after the ALTER's window: the row after it, then one
        # written now.
        sql("INSERT INTO %s.t (id) VALUES (9);" % DB)
        out = consumer(r, ends[-1], 2)
        assert [l for l in out if l.startswith("insert")] == [
            want[-1],
            "insert %s.t key(id=9) id=9 i=NULL s=NULL d=NULL f=NULL fl=NULL "
            "dt=NULL b=NULL e=NULL n=NULL" % DB], out
    finally:
        r.stop()


TESTS = [test_example_consumer]

if __name__ == "__main__":
    sys.exit(run(TESTS, sys.argv[1:], "herald-lhex-"))
