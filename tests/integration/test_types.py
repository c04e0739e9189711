#!/usr/bin/env python3
"""Every column type through the sandbox MariaDB's binlog.

A table with a column of every type is filled with edge values (min/max of
every integer, negative and 65-digit decimals, every fractional precision,
NULLs, empty strings, 4-byte UTF-8, BLOBs of several MiB), then updated
and deleted. `heraldctl decode` of the binlog must give, for every row
change, exactly the values that SELECT returned for that row at that time
(read through the mariadb client in XML, binary columns as HEX()).
Run by ctest with HERALD_SANDBOX_ENV, HERALD_BIN.
"""
import base64
import json
import os
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET

BIN = os.environ.get("HERALD_BIN", "build/bin")
ENV = {}
with open(os.environ["HERALD_SANDBOX_ENV"]) as f:
    for line in f:
        k, _, v = line.strip().partition("=")
        ENV[k] = v
DB = "it_types"

# (name, SQL type, kind used to compare)
COLS = [
    ("id", "INT NOT NULL PRIMARY KEY", "int"),
    ("ti", "TINYINT", "int"), ("tiu", "TINYINT UNSIGNED", "int"),
    ("si", "SMALLINT", "int"), ("siu", "SMALLINT UNSIGNED", "int"),
    ("mi", "MEDIUMINT", "int"), ("miu", "MEDIUMINT UNSIGNED", "int"),
    ("i", "INT", "int"), ("iu", "INT UNSIGNED", "int"),
    ("bi", "BIGINT", "int"), ("biu", "BIGINT UNSIGNED", "int"),
    ("d65", "DECIMAL(65,30)", "str"), ("d104", "DECIMAL(10,4)", "str"),
    ("d50", "DECIMAL(5,0)", "str"), ("d11", "DECIMAL(1,1)", "str"),
    ("f", "FLOAT", "float"), ("dbl", "DOUBLE", "double"),
    ("b1", "BIT(1)", "bit"), ("b13", "BIT(13)", "bit"), ("b64", "BIT(64)", "bit"),
    ("e", "ENUM('a','bé','c d')", "str"), ("st", "SET('x','y','z')", "str"),
    ("c10", "CHAR(10) CHARACTER SET utf8mb4", "str"),
    ("vc", "VARCHAR(300) CHARACTER SET utf8mb4", "str"),
    ("vl", "VARCHAR(20) CHARACTER SET latin1", "str"),
    ("tt", "TINYTEXT", "str"), ("tx", "TEXT", "str"),
    ("mt", "MEDIUMTEXT", "str"), ("lt", "LONGTEXT", "str"),
    ("bn", "BINARY(4)", "hex"), ("vb", "VARBINARY(20)", "hex"),
    ("bl", "BLOB", "hex"), ("mb", "MEDIUMBLOB", "hex"), ("lb", "LONGBLOB", "hex"),
    ("dt", "DATE", "str"), ("yr", "YEAR", "int"),
    ("t0", "TIME", "str"), ("t3", "TIME(3)", "str"), ("t6", "TIME(6)", "str"),
    ("dt0", "DATETIME", "str"), ("dt1", "DATETIME(1)", "str"),
    ("dt2", "DATETIME(2)", "str"), ("dt3", "DATETIME(3)", "str"),
    ("dt4", "DATETIME(4)", "str"), ("dt5", "DATETIME(5)", "str"),
    ("dt6", "DATETIME(6)", "str"),
    ("ts0", "TIMESTAMP NULL", "str"), ("ts3", "TIMESTAMP(3) NULL", "str"),
    ("ts6", "TIMESTAMP(6) NULL", "str"),
    ("js", "JSON", "str"), ("g", "GEOMETRY", "hex"),
]

ROWS = [
    # id, then SQL expressions in column order (after id)
    (1, ["-128", "255", "-32768", "65535", "-8388608", "16777215",
         "-2147483648", "4294967295", "-9223372036854775808",
         "18446744073709551615",
         "'-12345678901234567890123456789012345.123456789012345678901234567891'",
         "'-12.3400'", "'-99999'", "'-0.9'", "-3.4028234e38", "-1.7976931348623157e308",
         "b'1'", "b'1010101010101'", "b'1111111111111111111111111111111111111111111111111111111111111111'",
         "'bé'", "'x,z'", "'😀é'", "REPEAT('ü', 300)", "'Grüße'",
         "''", "'line1\\nline2\\t\"quoted\" \\\\ back'", "REPEAT('m', 70000)",
         "REPEAT('😀', 1000)", "X'00FF0A0D'", "X''", "X'00'",
         "REPEAT(X'00FFAB', 100000)", "REPEAT(X'0102030405', 1000000)",
         "'1000-01-01'", "1901", "'-838:59:59'", "'-838:59:58.999'",
         "'-00:00:00.000001'", "'1000-01-01 00:00:00'", "'2024-02-29 23:59:59.9'",
         "'2024-02-29 23:59:59.99'", "'2024-02-29 23:59:59.999'",
         "'2024-02-29 23:59:59.9999'", "'2024-02-29 23:59:59.99999'",
         "'9999-12-31 23:59:59.999999'", "'1970-01-01 00:00:01'",
         "'2038-01-19 03:14:07.999'", "'2001-09-09 01:46:40.123456'",
         "'{\"a\": [1, 2.5, \"x\", null, true], \"b\": {\"c\": \"😀\"}}'",
         "ST_GeomFromText('POINT(1 2)')"]),
    (2, ["127", "0", "32767", "0", "8388607", "0", "2147483647", "0",
         "9223372036854775807", "0", "'0.000000000000000000000000000001'",
         "'999999.9999'", "'0'", "'0.0'", "1.5", "0.1", "b'0'", "b'0'", "b'0'",
         "'a'", "''", "''", "''", "''", "''", "''", "''", "''", "X'00000000'",
         "X'FF'", "X''", "X''", "X''", "'9999-12-31'", "2155", "'838:59:59'",
         "'838:59:59.999'", "'00:00:00.000001'", "'9999-12-31 23:59:59'",
         "'0000-00-00 00:00:00.0'", "'1000-01-01 00:00:00.01'",
         "'1000-01-01 00:00:00.001'", "'1000-01-01 00:00:00.0001'",
         "'1000-01-01 00:00:00.00001'", "'1000-01-01 00:00:00.000001'",
         "'2038-01-19 03:14:07'", "'1970-01-01 00:00:01.000'",
         "'1970-01-01 00:00:01.000001'", "'[]'",
         "ST_GeomFromText('LINESTRING(0 0,1 1,2 5)')"]),
    (3, ["NULL"] * (len(COLS) - 1)),
    (4, ["0", "1", "-1", "1", "-1", "1", "-1", "1", "-1", "1", "'-0.5'",
         "'0.0001'", "'1'", "'0.1'", "-0.0", "3.141592653589793", "b'1'",
         "b'1000000000000'", "b'1000000000000000000000000000000000000000000000000000000000000000'",
         "'c d'", "'x,y,z'", "'é'", "'a'", "'ÿ'", "'t'", "'😀'", "'m'", "'l'",
         "X'01'", "X'0102'", "X'03'", "X'04'", "X'05'", "'0000-00-00'", "0",
         "'00:00:00'", "'12:34:56.789'", "'-12:34:56.000789'",
         "'0000-00-00 00:00:00'", "'2000-01-01 00:00:00.5'",
         "'2000-01-01 00:00:00.05'", "'2000-01-01 00:00:00.005'",
         "'2000-01-01 00:00:00.0005'", "'2000-01-01 00:00:00.00005'",
         "'2000-01-01 00:00:00.000005'", "NULL", "NULL", "NULL", "'\"s\"'",
         "NULL"]),
]


def client(sql, xml=False):
    cmd = ["mariadb", "--no-defaults", "--default-character-set=utf8mb4", "-uroot",
           "-S", ENV["HERALD_MDB_SOCKET"], "--max-allowed-packet=256M"]
    if xml:
        cmd.append("--xml")
    r = subprocess.run(cmd, input=("SET time_zone = '+00:00';\n" + sql).encode(),
                       capture_output=True, timeout=300)
    if r.returncode != 0:
        raise AssertionError("sql failed: " + r.stderr.decode()[:500])
    return r.stdout


def select_rows():
    """The table as SELECT sees it: {id: {col: value}} in JSON terms."""
    exprs = []
    for name, _, kind in COLS:
        if kind == "hex":
            exprs.append("HEX(`%s`) AS `%s`" % (name, name))
        elif kind == "bit":
            exprs.append("`%s` + 0 AS `%s`" % (name, name))
        elif kind == "float":
            # SELECT prints FLOAT with 6 digits; as a DOUBLE it is exact.
            exprs.append("`%s` + 0e0 AS `%s`" % (name, name))
        else:
            exprs.append("`%s`" % name)
    out = client("SELECT %s FROM %s.t ORDER BY id" % (", ".join(exprs), DB), xml=True)
    rows = {}
    for row in ET.fromstring(out).iter("row"):
        vals = {}
        for fld in row.iter("field"):
            nil = fld.get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true"
            vals[fld.get("name")] = None if nil else (fld.text or "")
        rows[int(vals["id"])] = vals
    return rows


def same(kind, decoded, selected):
    if selected is None or decoded is None:
        return decoded is None and selected is None
    if kind in ("int", "bit"):
        return isinstance(decoded, int) and decoded == int(selected)
    if kind == "hex":
        return base64.b64decode(decoded).hex().upper() == selected
    if kind == "float":
        # FLOAT: the shortest decimal that reads back to the same float.
        f32 = lambda x: struct.unpack("f", struct.pack("f", float(x)))[0]
        mant = repr(float(decoded)).lstrip("-").split("e")[0].replace(".", "")
        return f32(decoded) == f32(selected) and len(mant.strip("0")) <= 9
    if kind == "double":
        return float(decoded) == float(selected)
    if kind == "str" and isinstance(decoded, str):
        return decoded == selected
    return False


def check_image(where, img, sel, problems):
    for name, _, kind in COLS:
        if not same(kind, img.get(name, "<missing>"), sel.get(name)):
            d = repr(img.get(name, "<missing>"))
            problems.append("%s %s: decoded %s, SELECT %r" % (where, name, d[:120],
                                                              (sel.get(name) or "")[:120]))


def main():
    cols = ", ".join("`%s` %s" % (n, t) for n, t, _ in COLS)
    client("SET GLOBAL max_allowed_packet = 268435456;"
           "DROP DATABASE IF EXISTS %s; CREATE DATABASE %s; "
           "CREATE TABLE %s.t (%s) DEFAULT CHARSET utf8mb4;" % (DB, DB, DB, cols))
    names = ", ".join("`%s`" % n for n, _, _ in COLS)
    client("SET sql_mode = '';" + "".join(
        "INSERT INTO %s.t (%s) VALUES (%d, %s);" % (DB, names, rid, ", ".join(v))
        for rid, v in ROWS))
    after_insert = select_rows()
    client("SET sql_mode = ''; UPDATE %s.t SET vc = CONCAT(vc, '!'), ti = ti DIV 2, "
           "d104 = -d104, dt6 = '2020-02-02 02:02:02.020202', "
           "mb = X'FEED' WHERE id IN (1, 2, 4);" % DB)
    after_update = select_rows()
    client("DELETE FROM %s.t WHERE id IN (2, 3);" % DB)

    files = [os.path.join(ENV["HERALD_MDB_DATADIR"], l.split(b"\t")[0].decode())
             for l in client("SHOW BINARY LOGS").splitlines()[1:]]
    r = subprocess.run([os.path.join(BIN, "heraldctl"), "decode", "--tables",
                        DB + ".t"] + files, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    lines = [json.loads(l) for l in r.stdout.decode().splitlines()]
    # Only this run's changes: the last 4 inserts, 3 updates, 2 deletes.
    lines = lines[-9:]
    ops = [l["op"] for l in lines]
    problems = []
    if ops != ["c"] * 4 + ["u"] * 3 + ["d"] * 2:
        problems.append("ops %s" % ops)
    for l in lines[:4]:
        rid = l["after"]["id"]
        check_image("insert %d" % rid, l["after"], after_insert[rid], problems)
        if l["key"] != {"id": rid}:
            problems.append("insert %d key %s" % (rid, l["key"]))
    for l in lines[4:7]:
        rid = l["after"]["id"]
        check_image("update %d before" % rid, l["before"], after_insert[rid], problems)
        check_image("update %d after" % rid, l["after"], after_update[rid], problems)
    for l in lines[7:]:
        rid = l["before"]["id"]
        check_image("delete %d" % rid, l["before"], after_update[rid], problems)
        if l["after"] is not None:
            problems.append("delete %d has an after image" % rid)
    checked = 9 * len(COLS)
    for p in problems:
        print("MISMATCH " + p)
    print("%d values of %d types checked: %d passed, %d failed"
          % (checked, len(COLS), checked - len(problems), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
