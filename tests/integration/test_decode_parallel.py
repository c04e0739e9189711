#!/usr/bin/env python3
"""heraldctl decode of a large binlog in pieces on two threads must print
exactly what one decoder prints (HERALD_DECODE_THREADS=1): the same lines,
the same summary counts, and on a corrupt or truncated copy the same lines
before the same error, also for the same large file four times in one
run. Uses the sandbox MariaDB to make a ~30 MB binlog.

Equal output alone would also pass if the pieces were never used, so both
runs are made with -v -v and their reports are checked: two threads
decoded several pieces, one decoder read the file in one piece for the
reason given.
"""
import os
import re
import subprocess
import tempfile
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


LOG_TS = re.compile(rb"^ts=\S+ ")
PIECES = re.compile(rb'comp=decode msg="decoded in pieces" file="[^"]*" '
                    rb"bytes=(\d+) pieces=(\d+) decoded=(\d+) threads=(\d+) "
                    rb"per_thread=([\d,]+)$")
ONE_PIECE = re.compile(rb'comp=decode msg="one piece" file="[^"]*" '
                       rb'reason="([^"]*)"$')


def decode(paths, threads):
    """(exit status, stdout, stderr to compare, [pieces reports],
    [one-piece reasons]). The reports are taken out of what is compared:
    they differ by design."""
    env = dict(os.environ)
    if threads == 1:
        env["HERALD_DECODE_THREADS"] = "1"
    else:
        env.pop("HERALD_DECODE_THREADS", None)
    # Freed and reused heap memory filled with a pattern rather than the
    # zeros of fresh pages: state a piece must set is then never set by
    # luck (the table of pieces grows by realloc past 16 pieces).
    env["MALLOC_PERTURB_"] = "165"
    # Output to a file, not a pipe: a fast reader lets the printing loop
    # run as far ahead of the workers as it can.
    with tempfile.TemporaryFile() as out:
        r = subprocess.run([os.path.join(BIN, "heraldctl"), "-v", "-v", "decode",
                            "--ddl"] + paths, stdout=out, stderr=subprocess.PIPE,
                           env=env, timeout=300)
        out.seek(0)
        stdout = out.read()
    keep, pieces, one = [], [], []
    for line in r.stderr.splitlines(keepends=True):
        line = LOG_TS.sub(b"", line)
        m, o = PIECES.search(line.rstrip(b"\n")), ONE_PIECE.search(line.rstrip(b"\n"))
        if m:
            pieces.append(tuple(int(x) for x in m.groups()[:4]) +
                          (tuple(int(x) for x in m.group(5).split(b",")),))
        elif o:
            one.append(o.group(1).decode())
        else:
            keep.append(line)
    # The summary without its timing.
    err = re.sub(rb", [0-9.]+ s( \([0-9]+ row changes/s\))?", b"", b"".join(keep))
    return r.returncode, stdout, err, pieces, one


def pieces_used(label, size, one, two, nfiles=1):
    """Why the two-thread run did not use pieces, or None."""
    if one[3] or one[4] != ["HERALD_DECODE_THREADS=1"] * nfiles:
        return "one decoder: pieces %r, one-piece reasons %r" % (one[3], one[4])
    if len(two[3]) != nfiles or two[4]:
        return "two threads: pieces %r, one-piece reasons %r" % (two[3], two[4])
    for rep_ in two[3][1:]:
        if rep_[:2] != two[3][0][:2] or rep_[2] != rep_[1]:
            return "two threads: reports differ between copies %r" % (two[3],)
    nbytes, npieces, decoded, threads, per = two[3][0]
    if nbytes != size or threads != 2 or len(per) != 2 or sum(per) != decoded:
        return "two threads: report %r for %d bytes" % (two[3][0], size)
    # A 2 MiB piece at least: a 24 MiB file makes a dozen. An error stops
    # the decoding early, but not before the pieces that come before it.
    if npieces < 8 or decoded > npieces or (label in ("whole", "again") and
                                            decoded != npieces):
        return "two threads: %d pieces, %d decoded" % (npieces, decoded)
    if label != "whole" and decoded < 2:
        return "two threads: only %d piece decoded before the error" % decoded
    return None


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
    # The file four times in one run: the later copies' pieces reuse the
    # earlier ones' memory. Whether a piece left unset is taken for
    # finished depends on timing, so this runs a few times.
    cases += [("again", data)] * 3
    passed = failed = 0
    for label, content in cases:
        copy = os.path.join(tmp, "herald-par-%d.%s" % (os.getpid(), name.split(".")[-1]))
        with open(copy, "wb") as f:
            f.write(content)
        try:
            paths = [copy] * 4 if label == "again" else [copy]
            one = decode(paths, 1)
            two = decode(paths, 2)
        finally:
            os.unlink(copy)
        why = pieces_used(label, len(content), one, two, len(paths))
        if why:
            failed += 1
            print("FAIL %s: %s" % (label, why))
        elif one[:3] == two[:3] and len(one[1]) > 0:
            passed += 1
            _, npieces, decoded, _, per = two[3][0]
            print("ok   %s: %d bytes of output, exit %d; %d pieces, %d decoded "
                  "by 2 threads (%s)" % (label, len(one[1]), one[0], npieces,
                                         decoded, "+".join(map(str, per))))
        else:
            failed += 1
            print("FAIL %s: exit %d vs %d, %d vs %d bytes\n%s\n%s"
                  % (label, one[0], two[0], len(one[1]), len(two[1]),
                     one[2].decode(errors="replace")[-400:],
                     two[2].decode(errors="replace")[-400:]))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
