#!/usr/bin/env python3
"""The snapshot reader (relay/relay_snapread.c) against the sandbox MariaDB.

test_types.py's table of every column type is filled with its edge rows;
the reader's rows (snapread_dump, chunk by chunk) must equal the decoder's
insert after-images of the same rows (heraldctl decode of the binlog) value
for value, as JSON text (so -0 and 0, 1 and 1.0 differ), with the same key
and the same schema line and version as the stream (the decoder's table
from the binlog's table map). Chunks of 1, 2 and 1000 rows must give every
row once in key order; so must a composite key of an INT and a VARCHAR in
a case- and accent-insensitive collation holding mixed case and accents,
either column first, and one-column keys of every other kind. A table without a primary key and a missing table are
refused with messages naming them. A chunk's SCN is at or after the
commits it saw, and before a commit made after it. The reader's connection
killed between chunks is replaced without losing or repeating a row. Under
binlog_row_metadata FULL, MINIMAL and NO_LOG, the schema and row a relay
streams (heraldctl tail) equal the reader's.

Run by ctest with HERALD_SANDBOX_ENV, HERALD_BIN.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_types as T  # noqa: E402  (reads the sandbox env at import)

BIN = T.BIN
ENV = T.ENV
DB = "it_snapread"
PROBLEMS = []


def check(cond, msg):
    if not cond:
        PROBLEMS.append(msg)
        print("FAIL " + msg)
    return cond


def master_scn():
    out = T.client("SHOW MASTER STATUS").decode().splitlines()[1].split("\t")
    return int(out[0].rsplit(".", 1)[1]) << 32 | int(out[1])


def binlog_files():
    return [os.path.join(ENV["HERALD_MDB_DATADIR"], l.split(b"\t")[0].decode())
            for l in T.client("SHOW BINARY LOGS").splitlines()[1:]]


def decode(table):
    r = subprocess.run([os.path.join(BIN, "heraldctl"), "decode", "--tables",
                        "%s.%s" % (DB, table)] + binlog_files(),
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    return [json.loads(l) for l in r.stdout.decode().splitlines()]


def dump(conf, table, chunk, expect_ok=True):
    r = subprocess.run([os.path.join(BIN, "snapread_dump"), "--config", conf,
                        "--table", "%s.%s" % (DB, table), "--chunk", str(chunk)],
                       capture_output=True, timeout=300)
    if expect_ok:
        assert r.returncode == 0, "snapread_dump %s: %s" % (table, r.stderr.decode())
    chunks, schemas, rows = [], [], []
    for line in r.stdout.decode().splitlines():
        o = json.loads(line)
        if "chunk" in o:
            o["rowlist"] = []
            chunks.append(o)
        elif o.get("op") == "schema":
            schemas.append(o)
        else:
            rows.append(o)
            chunks[-1]["rowlist"].append(o)
    return r.returncode, r.stderr.decode(), chunks, schemas, rows


def canon(o):
    return json.dumps(o, sort_keys=True)


def write_conf(tmp):
    conf = os.path.join(tmp, "relay.yaml")
    with open(conf, "w") as f:
        f.write("cluster: itest\nrelay:\n  id: snapread\n  listen: '127.0.0.1:1'\n"
                "  http: 127.0.0.1:2\n  data_dir: %s/data\nsource:\n"
                "  name: sandbox\n  host: 127.0.0.1\n  port: %s\n  user: %s\n"
                "  password_file: %s\n  server_id: 4242\n  start: earliest\n"
                "  tables: ['*.*']\n"
                % (tmp, ENV["HERALD_MDB_PORT"], ENV["HERALD_MDB_REPL_USER"],
                   ENV["HERALD_MDB_REPL_PASSWORD_FILE"]))
    return conf


def test_every_type(conf):
    cols = ", ".join("`%s` %s" % (n, t) for n, t, _ in T.COLS)
    names = ", ".join("`%s`" % n for n, _, _ in T.COLS)
    T.client("SET GLOBAL max_allowed_packet = 268435456;"
             "CREATE TABLE %s.t (%s) DEFAULT CHARSET utf8mb4;" % (DB, cols))
    start = master_scn()
    T.client("SET sql_mode = '';" + "".join(
        "INSERT INTO %s.t (%s) VALUES (%d, %s);" % (DB, names, rid, ", ".join(v))
        for rid, v in T.ROWS))
    end = master_scn()
    inserts = [l for l in decode("t") if l["op"] == "c" and start < l["scn"] <= end]
    check(len(inserts) == len(T.ROWS), "decoded %d inserts, want %d"
          % (len(inserts), len(T.ROWS)))
    by_id = {l["after"]["id"]: l for l in inserts}

    # The stream's schema of the table: the decoder's from the table map.
    r = subprocess.run([os.path.join(BIN, "snapread_dump"), "--binlog", "--table",
                        DB + ".t"] + binlog_files(), capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    stream_schema = json.loads(r.stdout.decode().splitlines()[-1])

    for size in (1, 2, 1000):
        rc, err, chunks, schemas, rows = dump(conf, "t", size)
        ids = [row["after"]["id"] for row in rows]
        check(ids == sorted(by_id), "chunk %d: ids %s, want %s" % (size, ids, sorted(by_id)))
        check(all(len(c["rowlist"]) <= size for c in chunks), "chunk %d: a chunk too big" % size)
        check([c["table_done"] for c in chunks] == [False] * (len(chunks) - 1) + [True],
              "chunk %d: table_done %s" % (size, [c["table_done"] for c in chunks]))
        check(len(chunks) == len(T.ROWS) // size + 1,
              "chunk %d: %d chunks for %d rows" % (size, len(chunks), len(T.ROWS)))
        for c in chunks:
            check(c["schema_version"] == stream_schema["schema_version"],
                  "chunk %d: schema_version %d, stream %d"
                  % (size, c["schema_version"], stream_schema["schema_version"]))
            check(start < c["scn"] and c["scn_low"] == c["scn_high"] == c["scn"],
                  "chunk %d: scn %d (low %d high %d) not after the table's creation %d"
                  % (size, c["scn"], c["scn_low"], c["scn_high"], start))
        check(schemas and schemas[0] == stream_schema,
              "chunk %d: schema %s\n  stream %s" % (size, schemas[:1], stream_schema))
        if size != 1000:
            continue
        checked = 0
        for row in rows:
            rid = row["after"]["id"]
            dec = by_id.get(rid)
            if not check(dec is not None, "row %d not decoded" % rid):
                continue
            check(row["op"] == "r" and row["before"] is None, "row %d op %s" % (rid, row["op"]))
            check(canon(row["key"]) == canon(dec["key"]), "row %d key %s, decoded %s"
                  % (rid, row["key"], dec["key"]))
            for name, _, _ in T.COLS:
                a, b = row["after"].get(name, "<missing>"), dec["after"].get(name, "<missing>")
                checked += 1
                check(canon(a) == canon(b), "row %d %s: snapshot %s, decoded %s"
                      % (rid, name, canon(a)[:120], canon(b)[:120]))
        print("every type: %d values compared" % checked)

    # The SCN: a commit after the chunk is after the chunk's SCN; the
    # inserts the chunk saw are at or before it.
    rc, err, chunks, _, rows = dump(conf, "t", 1000)
    scn = chunks[0]["scn"]
    last_insert = max(l["scn"] for l in inserts)
    check(last_insert <= scn, "chunk scn %d before the insert it saw (%d)" % (scn, last_insert))
    T.client("INSERT INTO %s.t (id) VALUES (100);" % DB)
    later = [l for l in decode("t")
             if l["op"] == "c" and l["after"]["id"] == 100 and l["scn"] > end]
    check(len(later) == 1 and later[0]["scn"] > scn,
          "chunk scn %d, commit after it at %s" % (scn, [l["scn"] for l in later]))
    check(100 not in [r["after"]["id"] for r in rows], "chunk has the later row")
    rc, err, chunks, _, rows = dump(conf, "t", 1000)
    check(chunks[0]["scn"] >= later[0]["scn"] and rows[-1]["after"]["id"] == 100,
          "a chunk after the commit at %d: scn %d" % (later[0]["scn"], chunks[0]["scn"]))


# Mixed case and accents, distinct under utf8mb4_general_ci (a binary
# comparison orders them otherwise, so a bytewise key would skip rows).
WORDS = ["a", "B", "c", "Àb", "ád", "Ae", "É", "ef", "Zz", "zy", "ñ", "o", "Ça",
         "Ü", "ub", "x'y", "back\\slash"]


def test_composite(conf):
    for table, key in (("k", "a, b"), ("k2", "b, a")):
        T.client("CREATE TABLE %s.%s (a INT NOT NULL, b VARCHAR(20) CHARACTER SET "
                 "utf8mb4 COLLATE utf8mb4_general_ci NOT NULL, v INT, "
                 "PRIMARY KEY (%s));" % (DB, table, key) + "".join(
                     "INSERT INTO %s.%s VALUES (%d, '%s', %d);"
                     % (DB, table, a, w.replace("\\", "\\\\").replace("'", "''"), i)
                     for a in (2, 1, 3) for i, w in enumerate(WORDS)))
        out = T.client("SELECT a, HEX(b) FROM %s.%s ORDER BY %s" % (DB, table, key))
        want = [(int(l.split(b"\t")[0]), bytes.fromhex(l.split(b"\t")[1].decode()).decode())
                for l in out.splitlines()[1:]]
        check(len(want) == 3 * len(WORDS), "%s: %d rows" % (table, len(want)))
        for size in (1, 2, 3, 7, 1000):
            rc, err, chunks, schemas, rows = dump(conf, table, size)
            got = [(r["after"]["a"], r["after"]["b"]) for r in rows]
            check(got == want, "%s chunk %d: rows %s\n  want %s" % (table, size, got, want))
            check(all(r["key"] == {"a": r["after"]["a"], "b": r["after"]["b"]}
                      if key == "a, b" else
                      r["key"] == {"b": r["after"]["b"], "a": r["after"]["a"]}
                      for r in rows), "%s chunk %d: keys" % (table, size))
            check(list(rows[0]["key"].keys()) == [k.strip() for k in key.split(",")],
                  "%s: key order %s" % (table, list(rows[0]["key"].keys())))
    print("composite keys: %d rows in chunks of 1, 2, 3, 7, 1000" % (3 * len(WORDS)))


# One-column keys of other types: paged in the column's own order, each
# value once (the key literal must compare as the column does).
KEY_TYPES = [
    ("DECIMAL(10,4)", ["-12.3400", "-0.0001", "0", "0.0001", "99.5", "999999.9999"]),
    ("DOUBLE", ["-1.7976931348623157e308", "-0.1", "0", "0.1", "0.30000000000000004",
                "3.141592653589793"]),
    ("FLOAT", ["-3.4028234e38", "-1.1", "0", "1.1", "16777217", "3.14159"]),
    ("BIGINT UNSIGNED", ["0", "1", "9223372036854775807", "9223372036854775808",
                         "18446744073709551615"]),
    ("DATETIME(6)", ["'1000-01-01 00:00:00'", "'2024-02-29 23:59:59.999999'",
                     "'2024-02-29 23:59:59.000001'", "'9999-12-31 23:59:59.999999'"]),
    ("TIMESTAMP(3)", ["'1970-01-01 00:00:01'", "'2001-09-09 01:46:40.123'",
                      "'2038-01-19 03:14:07.999'"]),
    ("TIME(3)", ["'-838:59:59'", "'-00:00:00.001'", "'00:00:00'", "'12:34:56.789'",
                 "'838:59:59'"]),
    ("DATE", ["'1000-01-01'", "'2024-02-29'", "'9999-12-31'"]),
    ("YEAR", ["1901", "2000", "2155"]),
    ("BIT(13)", ["b'0'", "b'1'", "b'1000000000000'", "b'1111111111111'"]),
    ("ENUM('z','a','m')", ["'z'", "'a'", "'m'"]),
    ("SET('z','a','m')", ["''", "'z'", "'a'", "'z,a'", "'m'", "'z,a,m'"]),
    ("BINARY(3)", ["X'000000'", "X'00FF00'", "X'7F'", "X'80'", "X'FFFFFF'"]),
    ("VARBINARY(8)", ["X''", "X'00'", "X'0000'", "X'41'", "X'61'", "X'C3A9'"]),
    ("CHAR(5) CHARACTER SET latin1", ["'a'", "'B'", "'é'", "'F'", "'ÿ'", "'x''y'"]),
    ("VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", ["'a'", "'B'", "'é'",
                                                                "'😀'", "'Z'"]),
]


def test_key_types(conf):
    for n, (typ, vals) in enumerate(KEY_TYPES):
        table = "kt%d" % n
        T.client("SET time_zone = '+00:00'; CREATE TABLE %s.%s (k %s NOT NULL PRIMARY KEY, "
                 "n INT);" % (DB, table, typ) + "".join(
                     "INSERT INTO %s.%s VALUES (%s, %d);" % (DB, table, v, i)
                     for i, v in enumerate(vals)))
        want = [int(l) for l in T.client("SELECT n FROM %s.%s ORDER BY k" % (DB, table))
                .split()[1:]]
        for size in (1, 2):
            rc, err, chunks, schemas, rows = dump(conf, table, size)
            got = [r["after"]["n"] for r in rows]
            check(got == want, "key %s chunk %d: rows %s, want %s" % (typ, size, got, want))
    print("key types: %d" % len(KEY_TYPES))


def test_reconnect(conf):
    """The reader's idle connection killed between chunks: the next chunk
    is read on a new connection, every row still once."""
    want = [r["after"]["b"] for r in dump(conf, "k2", 1000)[4]]
    p = subprocess.Popen([os.path.join(BIN, "snapread_dump"), "--config", conf,
                          "--table", DB + ".k2", "--chunk", "10", "--pause-ms", "1500"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killed = 0
    for _ in range(2):
        time.sleep(1.0)
        ids = T.client("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '%s' "
                       "AND COMMAND = 'Sleep'" % ENV["HERALD_MDB_REPL_USER"]).split()[1:]
        for i in ids:
            T.client("KILL CONNECTION %d;" % int(i))
            killed += 1
    out, err = p.communicate(timeout=120)
    got = [json.loads(l)["after"]["b"] for l in out.decode().splitlines()
           if json.loads(l).get("op") == "r"]
    check(p.returncode == 0, "reconnect: exit %d: %s" % (p.returncode, err.decode()))
    check(killed >= 2, "reconnect: %d connections killed" % killed)
    check(got == want, "reconnect: rows %s\n  want %s" % (got, want))
    print("reconnect: %d connections killed, %d rows" % (killed, len(got)))


def test_row_metadata(conf, tmp):
    """Under each binlog_row_metadata the source may run with, the schema
    and rows the relay streams (heraldctl tail --schemas) equal the
    reader's: FULL and MINIMAL table maps state signedness and charsets
    (binary 63), NO_LOG leaves all to the relay's information_schema
    lookup (no charset for binary columns, the key in column order)."""
    from test_relay import Relay, binlog_pos, tail  # noqa: E402
    cols = ("b VARCHAR(10) CHARACTER SET latin1 NOT NULL, a INT UNSIGNED NOT NULL, "
            "bn BINARY(3), vb VARBINARY(5), bl BLOB, g GEOMETRY, "
            "e ENUM('x','é') CHARACTER SET latin1, st SET('p','q'), "
            "d DECIMAL(6,2) UNSIGNED, f FLOAT, ts TIMESTAMP(2) NULL, "
            "PRIMARY KEY (a, b)")
    row = ("'Grüße', 7, X'0102', X'FF', X'41', ST_GeomFromText('POINT(1 2)'), "
           "'é', 'p,q', 12.5, -0.0, '2001-02-03 04:05:06.07'")
    start, pos = master_scn(), binlog_pos()
    modes = ("MINIMAL", "NO_LOG", "FULL")
    try:
        for mode in modes:
            T.client("SET GLOBAL binlog_row_metadata = %s;" % mode)
            T.client("SET time_zone = '+00:00'; CREATE TABLE %s.md_%s (%s); "
                     "INSERT INTO %s.md_%s VALUES (%s);" % (DB, mode, cols, DB, mode, row))
    finally:
        T.client("SET GLOBAL binlog_row_metadata = FULL;")
    relay = Relay(tmp, "snapread", 4243, tables=DB + ".md_*", start=pos).start()
    try:
        lines, _ = tail(relay, ["--from", str(start), "--schemas"], 2 * len(modes))
    finally:
        relay.stop()
    stream = [json.loads(l) for l in lines]
    for mode in modes:
        # The reader reads binlog_row_metadata when it connects: this mode.
        T.client("SET GLOBAL binlog_row_metadata = %s;" % mode)
        try:
            rc, err, chunks, schemas, rows = dump(conf, "md_" + mode, 10)
        finally:
            T.client("SET GLOBAL binlog_row_metadata = FULL;")
        sch = [o for o in stream if o.get("op") == "schema" and o["table"] == "md_" + mode]
        got = [o for o in stream if o.get("op") == "c" and o["source"]["table"] == "md_" + mode]
        check(len(sch) == 1 and schemas == sch,
              "%s: schema %s\n  stream %s" % (mode, schemas, sch))
        check(len(got) == 1 and len(rows) == 1 and canon(rows[0]["after"]) ==
              canon(got[0]["after"]) and canon(rows[0]["key"]) == canon(got[0]["key"]),
              "%s: row %s\n  stream %s" % (mode, rows, got))
    print("binlog_row_metadata: %s" % ", ".join(modes))


def test_refusals(conf):
    T.client("CREATE TABLE %s.nopk (x INT); INSERT INTO %s.nopk VALUES (1);"
             "CREATE VIEW %s.v AS SELECT * FROM %s.nopk;" % (DB, DB, DB, DB))
    rc, err, _, _, _ = dump(conf, "nopk", 10, expect_ok=False)
    check(rc == 1 and "%s.nopk" % DB in err and "no primary key" in err,
          "no primary key: exit %d, %r" % (rc, err))
    rc, err, _, _, _ = dump(conf, "gone", 10, expect_ok=False)
    check(rc == 1 and "%s.gone" % DB in err, "missing table: exit %d, %r" % (rc, err))
    r = subprocess.run([os.path.join(BIN, "snapread_dump"), "--config", conf, "--list",
                        DB + ".*"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    listed = [json.loads(l) for l in r.stdout.decode().splitlines()]
    names = [l["table"] for l in listed]
    want = ["k", "k2", "nopk", "t"] + ["kt%d" % i for i in range(len(KEY_TYPES))]
    check(names == sorted(names, key=lambda n: n.encode()) and "v" not in names
          and set(want) <= set(names), "listed %s (no view, sorted)" % names)
    check([l["has_pk"] for l in listed] == [n != "nopk" for n in names], "has_pk %s" % listed)


def main():
    T.client("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s;" % (DB, DB))
    with tempfile.TemporaryDirectory() as tmp:
        conf = write_conf(tmp)
        test_every_type(conf)
        test_composite(conf)
        test_key_types(conf)
        test_reconnect(conf)
        test_row_metadata(conf, tmp)
        test_refusals(conf)
    print("%d problems" % len(PROBLEMS))
    return 1 if PROBLEMS else 0


if __name__ == "__main__":
    sys.exit(main())
