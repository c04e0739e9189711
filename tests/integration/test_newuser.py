#!/usr/bin/env python3
"""What a new user hit: the relay against the sandbox MariaDB, one test per
surprise.

- a DDL stream must never carry the passwords of account statements
  (MariaDB logs CREATE USER ... IDENTIFIED BY with the plain password);

Run by ctest like test_relay.py (same environment).

Usage: test_newuser.py [TEST...]   (default: all)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import (BIN, ENV, Relay, binlog_files, master_scn,  # noqa: E402
                        setup_db, sql)


def tail_until(relay, args, until, timeout=30):
    """tail's lines for everything the relay sends up to SCN `until`."""
    cmd = [os.path.join(BIN, "heraldctl"), "tail", "--relay", relay.addr,
           "--timeout", "10", "--until", str(until)] + args
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("tail %s exited %d: %s\nrelay log:\n%s"
                             % (args, r.returncode, r.stderr, relay.logtail()))
    return r.stdout.splitlines()


def ddl_statements(lines):
    return [json.loads(l)["statement"] for l in lines
            if json.loads(l)["op"] == "ddl"]


def files_holding(top, needle):
    """Files under top whose bytes contain needle."""
    found = []
    for d, _, names in os.walk(top):
        for n in names:
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                if needle.encode() in f.read():
                    found.append(p)
    return found


# ------------------------------------------------------------------ tests

def test_ddl_passwords_redacted(tmp):
    """CREATE/ALTER USER, GRANT ... IDENTIFIED BY and SET PASSWORD reach
    tail --ddl, the log store and decode --ddl with '<redacted>' in place of
    the password."""
    db = "nu_pw"
    start = setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY);" % db)
    secret = "Nu-s3cret-%d" % os.getpid()
    r = Relay(tmp, "pw", 201).start()
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
        # The sandbox's own account statements (binlog.000001) too.
        early = tail_until(r, ["--from", "earliest", "--ddl"], start)
        assert ENV["HERALD_MDB_REPL_PASSWORD"] not in "\n".join(early)
        assert any("herald_repl" in s and "<redacted>" in s
                   for s in ddl_statements(early)), ddl_statements(early)[:5]
        # Nothing on the relay's disk, nothing in decode's output.
        assert files_holding(os.path.join(r.dir, "data"), secret) == []
        d = subprocess.run([os.path.join(BIN, "heraldctl"), "decode", "--ddl"]
                           + binlog_files(), capture_output=True, text=True,
                           timeout=120)
        assert d.returncode == 0, d.stderr
        assert secret not in d.stdout and "'<redacted>'" in d.stdout
    finally:
        r.stop()
        sql("DROP USER IF EXISTS 'nu_pw'@'localhost'")


TESTS = [test_ddl_passwords_redacted]


def main():
    names = sys.argv[1:]
    tests = [t for t in TESTS if not names or t.__name__ in names]
    passed = failed = 0
    for t in tests:
        tmp = tempfile.mkdtemp(prefix="herald-nu-")
        t0 = time.time()
        try:
            t(tmp)
            passed += 1
            print("ok   %-36s %.1f s" % (t.__name__, time.time() - t0), flush=True)
        except Exception:
            failed += 1
            print("FAIL %-36s %.1f s" % (t.__name__, time.time() - t0), flush=True)
            traceback.print_exc()
        finally:
            if not os.environ.get("HERALD_KEEP_TMP"):
                shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
