#!/usr/bin/env python3
"""heraldctl decode of a large binlog in pieces on two threads must print
exactly what one decoder prints (HERALD_DECODE_THREADS=1): the same lines,
the same summary counts, and on a corrupt or truncated copy the same lines
before the same error. Uses the sandbox MariaDB to make a ~30 MB binlog.
"""
import os
import re
import subprocess
import sys

BIN = os.environ.get("HERALD_BIN", "build/bin")
ENV = {}
with open(os.environ["HERALD_SANDBOX_ENV"]) as f:
    for line in f:
        k, _, v = line.strip().partition("=")
        ENV[k] = v


def sql(q):
    r = subprocess.run(["mariadb", "--no-defaults", "-uroot", "-S",
                        ENV["HERALD_MDB_SOCKET"], "-N", "--batch"],
                       input=q.encode(), capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


def decode(path, threads):
    env = dict(os.environ)
    if threads == 1:
        env["HERALD_DECODE_THREADS"] = "1"
    else:
        env.pop("HERALD_DECODE_THREADS", None)
    r = subprocess.run([os.path.join(BIN, "heraldctl"), "decode", "--ddl", path],
                       capture_output=True, env=env, timeout=300)
    # The summary without its timing.
    err = re.sub(rb", [0-9.]+ s( \([0-9]+ row changes/s\))?", b"", r.stderr)
    return r.returncode, r.stdout, err


def main():
    sql("DROP DATABASE IF EXISTS it_par; CREATE DATABASE it_par;"
        "CREATE TABLE it_par.t (id INT PRIMARY KEY, d DOUBLE, s TEXT);")
    stmts = []
    for i in range(12000):
        stmts.append("INSERT INTO it_par.t VALUES (%d, %d.%d, REPEAT('x%d', 900));"
                     % (i, i * 7, i % 1000, i % 10))
        if i % 3 == 0:
            stmts.append("UPDATE it_par.t SET d = -d WHERE id = %d;" % i)
    sql("".join(stmts))
    sql("FLUSH BINARY LOGS")
    logs = [l.split("\t") for l in sql("SHOW BINARY LOGS").splitlines()]
    name = logs[-2][0]  # the file the flush closed: it holds our rows
    path = os.path.join(ENV["HERALD_MDB_DATADIR"], name)
    size = os.path.getsize(path)
    assert size >= 24 << 20, "binlog of %d bytes is too small for pieces" % size
    tmp = os.environ.get("TMPDIR", "/tmp")
    data = open(path, "rb").read()
    cases = [("whole", data)]
    bad = bytearray(data)
    bad[size * 2 // 3] ^= 0x55
    cases.append(("corrupt", bytes(bad)))
    cases.append(("truncated", data[: size * 3 // 4]))
    passed = failed = 0
    for label, content in cases:
        copy = os.path.join(tmp, "herald-par-%d.%s" % (os.getpid(), name.split(".")[-1]))
        with open(copy, "wb") as f:
            f.write(content)
        try:
            one = decode(copy, 1)
            two = decode(copy, 2)
        finally:
            os.unlink(copy)
        if one == two and len(one[1]) > 0:
            passed += 1
            print("ok   %s: %d bytes of output, exit %d" % (label, len(one[1]), one[0]))
        else:
            failed += 1
            print("FAIL %s: exit %d vs %d, %d vs %d bytes\n%s\n%s"
                  % (label, one[0], two[0], len(one[1]), len(two[1]),
                     one[2].decode()[-400:], two[2].decode()[-400:]))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
