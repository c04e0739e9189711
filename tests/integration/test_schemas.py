#!/usr/bin/env python3
"""Column types on the wire, against the sandbox MariaDB.

A table with columns of every kind: the schema the relay sends
(`heraldctl tail --schemas`) must say for each column what
information_schema says (COLUMN_TYPE less integer display widths,
IS_NULLABLE, the primary key, the charset), DATE/TIME/DATETIME/TIMESTAMP/
YEAR must be distinct types, a schema must come before the first row of
its version on every connection (and only once per connection), and DDL
that changes the table must bring a new schema version.

Run by ctest like test_relay.py (same environment).
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import Relay, run, setup_db, sql, tail  # noqa: E402

COLUMNS = [
    ("id", "BIGINT UNSIGNED NOT NULL"),
    ("k2", "VARCHAR(10) CHARACTER SET utf8mb4 NOT NULL"),
    ("ti", "TINYINT"), ("tu", "TINYINT UNSIGNED"), ("si", "SMALLINT"),
    ("mi", "MEDIUMINT UNSIGNED"), ("i", "INT NOT NULL DEFAULT 0"),
    ("bi", "BIGINT"), ("f", "FLOAT"), ("d", "DOUBLE"),
    ("dec1", "DECIMAL(12,4)"), ("dec2", "DECIMAL(65,30) UNSIGNED"),
    ("dt", "DATE"), ("tm", "TIME"), ("tm3", "TIME(3)"),
    ("dtm", "DATETIME"), ("dtm6", "DATETIME(6)"), ("ts", "TIMESTAMP NULL"),
    ("ts2", "TIMESTAMP(2) NULL"), ("yr", "YEAR"),
    ("c1", "CHAR(5) CHARACTER SET latin1"), ("c4", "CHAR(20) CHARACTER SET utf8mb4"),
    ("c3", "CHAR(7) CHARACTER SET utf8mb3"), ("vc", "VARCHAR(300) CHARACTER SET utf8mb4"),
    ("vl", "VARCHAR(100) CHARACTER SET latin1"),
    ("bn", "BINARY(16)"), ("vb", "VARBINARY(200)"),
    ("tt", "TINYTEXT CHARACTER SET utf8mb4"), ("tx", "TEXT CHARACTER SET latin1"),
    ("mt", "MEDIUMTEXT CHARACTER SET utf8mb4"), ("lt", "LONGTEXT CHARACTER SET utf8mb4"),
    ("tb", "TINYBLOB"), ("bl", "BLOB"), ("mb", "MEDIUMBLOB"), ("lb", "LONGBLOB"),
    ("e", "ENUM('a','b''c','d e')"), ("st", "SET('x','y','z')"),
    ("b1", "BIT(1)"), ("b13", "BIT(13)"), ("j", "JSON"),
]


def norm(column_type):
    """information_schema's COLUMN_TYPE without integer display widths."""
    t = column_type.lower()
    t = re.sub(r"^(tinyint|smallint|mediumint|int|bigint|year)\(\d+\)", r"\1", t)
    return t


def schema_lines(lines):
    return [json.loads(l) for l in lines if json.loads(l).get("op") == "schema"]


def test_schemas(tmp):
    db = "it_schemas"
    cols = ", ".join("%s %s" % c for c in COLUMNS)
    start = setup_db(db, "CREATE TABLE %s.t (%s, PRIMARY KEY (id, k2)) "
                     "DEFAULT CHARSET=utf8mb4;" % (db, cols))
    info = {}
    for l in sql("SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY, "
                 "COALESCE(CHARACTER_SET_NAME, '') FROM information_schema.COLUMNS "
                 "WHERE TABLE_SCHEMA='%s' AND TABLE_NAME='t' ORDER BY ORDINAL_POSITION"
                 % db).splitlines():
        name, ctype, nullable, key, cs = l.split("\t")
        info[name] = (norm(ctype), nullable == "YES", key == "PRI", cs)
    sql("INSERT INTO %s.t (id, k2) VALUES (1, 'a'), (2, 'b');" % db)
    sql("UPDATE %s.t SET i = 5 WHERE id = 1;" % db)
    r = Relay(tmp, "schemas", 601, tables=db + ".*").start()
    try:
        lines, _ = tail(r, ["--from", str(start), "--schemas"], 4)
        sch = schema_lines(lines)
        assert len(sch) == 1, lines
        assert json.loads(lines[0])["op"] == "schema", lines[0]
        s = sch[0]
        assert (s["db"], s["table"]) == (db, "t")
        got = {c["name"]: c for c in s["columns"]}
        assert list(got) == [c[0] for c in COLUMNS], list(got)
        bad = []
        for name, (ctype, nullable, pk, cs) in info.items():
            c = got[name]
            if c["type"] != ctype:
                bad.append("%s: type %s, information_schema %s" % (name, c["type"], ctype))
            if c["nullable"] != nullable:
                bad.append("%s: nullable %s" % (name, c["nullable"]))
            if bool(c.get("pk")) != pk:
                bad.append("%s: pk %s" % (name, c.get("pk")))
            if cs and c.get("charset") != cs:
                bad.append("%s: charset %s, information_schema %s" % (name, c.get("charset"), cs))
        assert not bad, "\n".join(bad)
        assert got["id"]["pk"] == 1 and got["k2"]["pk"] == 2
        temporal = {got[n]["type"] for n in ("dt", "tm", "dtm", "ts", "yr")}
        assert len(temporal) == 5, temporal
        # A second connection gets the schema too, once.
        lines2, _ = tail(r, ["--from", str(start), "--schemas"], 4)
        assert schema_lines(lines2) == sch
        # DDL that changes the table: a new version before the next row.
        sql("ALTER TABLE %s.t ADD COLUMN extra VARCHAR(5) CHARACTER SET latin1;" % db)
        sql("INSERT INTO %s.t (id, k2, extra) VALUES (3, 'c', 'x');" % db)
        lines3, _ = tail(r, ["--from", str(start), "--schemas"], 6)
        sch3 = schema_lines(lines3)
        assert len(sch3) == 2, lines3
        assert sch3[1]["schema_version"] != sch3[0]["schema_version"]
        assert sch3[1]["columns"][-1]["name"] == "extra"
        assert sch3[1]["columns"][-1]["type"] == "varchar(5)"
        i = [json.loads(l).get("op") for l in lines3].index("schema", 1)
        assert json.loads(lines3[i + 1])["after"]["id"] == 3, lines3[i + 1]
        # Without --schemas nothing changes for a consumer that ignores them.
        plain, _ = tail(r, ["--from", str(start)], 3)
        assert all(json.loads(l)["op"] != "schema" for l in plain)
        # A restarted relay still has the versions it stored windows with.
        r.stop()
        r.start()
        lines4, _ = tail(r, ["--from", str(start), "--schemas"], 6)
        assert schema_lines(lines4) == sch3
    finally:
        r.stop()


TESTS = [test_schemas]


if __name__ == "__main__":
    sys.exit(run(TESTS, sys.argv[1:], "herald-schemas-"))
