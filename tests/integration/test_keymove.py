#!/usr/bin/env python3
"""Primary-key moves under partitioned consumers, against the sandbox.

An UPDATE that changes the primary key must reach the partition of its old
key and that of its new key (once where they are the same), so that the
owner of the old key can delete it. For HASH and MOD over 4 partitions,
one tail per partition applies its changes to a copy of the rows it owns,
as docs/change-format.md says a consumer should; the copies together must
equal the source table, and each copy must hold only keys of its own
partition. Partitions are computed here independently of the relay (an
XXH64 in Python over the canonical key of docs/relay.md).

Run by ctest like test_relay.py (same environment).
"""
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import Relay, decode, run, setup_db, sql, tail  # noqa: E402

N = 4
M64 = (1 << 64) - 1
P1, P2, P3 = 11400714785074694791, 14029467366897019727, 1609587929392839161
P4, P5 = 9650029242287828579, 2870177450012600261


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def xxh64_short(b):
    """XXH64, seed 0, for inputs under 32 bytes (all a key here is)."""
    assert len(b) < 32
    h, i, n = (P5 + len(b)) & M64, 0, len(b)
    while i + 8 <= n:
        k = (_rotl((struct.unpack_from("<Q", b, i)[0] * P2) & M64, 31) * P1) & M64
        h = (_rotl(h ^ k, 27) * P1 + P4) & M64
        i += 8
    if i + 4 <= n:
        h = (_rotl(h ^ ((struct.unpack_from("<I", b, i)[0] * P1) & M64), 23) * P2 + P3) & M64
        i += 4
    while i < n:
        h = (_rotl(h ^ ((b[i] * P5) & M64), 11) * P1) & M64
        i += 1
    h ^= h >> 33
    h = (h * P2) & M64
    h ^= h >> 29
    h = (h * P3) & M64
    return h ^ (h >> 32)


def partition(fn, key_id):
    if fn == "mod":
        return key_id % N
    # The canonical key of one signed integer column: kind 2, 8 bytes LE.
    return xxh64_short(bytes([2]) + struct.pack("<q", key_id)) % N


def strip_txn(line):
    c = json.loads(line)
    c.pop("txn")
    return json.dumps(c, sort_keys=True)


def test_key_moves(tmp):
    db = "it_keymove"
    start = setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY, v VARCHAR(20));" % db)
    sql("INSERT INTO %s.t SELECT seq, CONCAT('v', seq) FROM %s.seq_1_to_60;" % (db, db))
    stmts = [
        # moves: to another partition or (mod: +1000 keeps id % 4) the same
        "UPDATE %s.t SET id = id + 1000 WHERE id <= 20;" % db,
        "UPDATE %s.t SET id = id + 1001, v = 'moved1' WHERE id BETWEEN 21 AND 30;" % db,
        # a plain update, a delete of a moved row, a move back
        "UPDATE %s.t SET v = 'plain' WHERE id BETWEEN 31 AND 40;" % db,
        "DELETE FROM %s.t WHERE id = 1005;" % db,
        "UPDATE %s.t SET id = 3 WHERE id = 1003;" % db,
        # a transaction moving one key twice and another onto a freed key
        "BEGIN; UPDATE %s.t SET id = 5000 WHERE id = 41; "
        "UPDATE %s.t SET id = 5001 WHERE id = 5000; "
        "UPDATE %s.t SET id = 41 WHERE id = 42; COMMIT;" % (db, db, db),
    ]
    sql("\n".join(stmts))
    want = {int(l.split("\t")[0]): l.split("\t")[1]
            for l in sql("SELECT id, v FROM %s.t" % db).splitlines()}
    expected = decode(db + ".*", start)
    moves = [json.loads(l) for l in expected if "old_key" in json.loads(l)]
    assert len(moves) == 20 + 10 + 1 + 3, len(moves)
    r = Relay(tmp, "keymove", 401, tables=db + ".*").start()
    try:
        for fn in ("hash", "mod"):
            union = {}
            seen = {}
            for p in range(N):
                # The lines this partition must get: by the keys, old and new.
                mine = []
                for l in expected:
                    c = json.loads(l)
                    parts = {partition(fn, c["key"]["id"])}
                    if "old_key" in c:
                        parts.add(partition(fn, c["old_key"]["id"]))
                    if p in parts:
                        mine.append(l)
                lines, _ = tail(r, ["--from", str(start), "--partitions",
                                    "%d:%d" % (N, p), "--partition-fn", fn],
                                len(mine))
                # txn.index and last count what this consumer was sent.
                lines = [strip_txn(l) for l in lines]
                mine = [strip_txn(l) for l in mine]
                diff = [(a, b) for a, b in zip(lines, mine) if a != b][:1]
                assert lines == mine, "%s partition %d: %d lines, want %d: %s" % (
                    fn, p, len(lines), len(mine), diff)
                # Apply as a consumer that owns partition p.
                copy = {}
                for l in lines:
                    c = json.loads(l)
                    k = c["key"]["id"]
                    if c["op"] == "d":
                        copy.pop(k, None)
                        continue
                    if "old_key" in c:
                        copy.pop(c["old_key"]["id"], None)
                    if partition(fn, k) == p:
                        copy[k] = c["after"]["v"]
                for k, v in copy.items():
                    assert partition(fn, k) == p, (fn, p, k)
                    assert k not in union, (fn, k)
                    union[k] = v
                for l in lines:
                    seen[l] = seen.get(l, 0) + 1
            assert union == want, "%s: copies differ from the source:\n%s\n%s" % (
                fn, sorted(union.items())[:10], sorted(want.items())[:10])
            # A move within one partition is delivered once, not twice.
            same = [strip_txn(l) for l in expected if "old_key" in json.loads(l) and
                    partition(fn, json.loads(l)["key"]["id"]) ==
                    partition(fn, json.loads(l)["old_key"]["id"])]
            assert all(seen[l] == 1 for l in same), fn
            if fn == "mod":
                assert len(same) >= 20, len(same)
    finally:
        r.stop()


TESTS = [test_key_moves]


if __name__ == "__main__":
    sys.exit(run(TESTS, sys.argv[1:], "herald-keymove-"))
