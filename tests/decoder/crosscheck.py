#!/usr/bin/env python3
"""Cross-check heraldctl decode against mariadb-binlog, an independent
decoder, value by value.

Usage: crosscheck.py HERALDCTL BINLOG [BINLOG...]

For each file, `mariadb-binlog --no-defaults -v --base64-output=DECODE-ROWS`
prints every row image as "###   @N=value" lines; heraldctl's JSON lines are
turned into the same shape (column N of the table, before and after images)
and both sides are normalised into one notation per type, since the two
tools print some types differently on purpose:

  mariadb-binlog            heraldctl
  -5 (251)   signed/unsig.  -5 or 251 (per signedness metadata)
  'text'     escaped        "text"; binary as base64
  b'0101'    BIT and SET    integer / labels
  1650493084 TIMESTAMP      "2022-04-20 22:18:04" (UTC)
  '2001:02:03' DATE         "2001-02-03"
  1900       YEAR 0         0

Exits 1 and prints the first differences when the files disagree.
mariadb-binlog cannot read MySQL 8 transaction payloads and stops at MySQL
JSON columns, so the caller passes only files it reads completely.
"""
import base64
import datetime
import gzip
import json
import re
import shutil
import subprocess
import sys
import tempfile

ROW_START = re.compile(r"^### (INSERT INTO|UPDATE|DELETE FROM) `(.*)`\.`(.*)`$")
VALUE = re.compile(r"^###   @(\d+)=(.*)$")


def unquote(s):
    """mariadb-binlog's quoted string to bytes. MariaDB escapes only bytes
    below 0x20, as \\xNN; quotes and backslashes are written as they are
    (so a literal "\\x41" in the data would be misread: none of the
    fixtures has one)."""
    assert s[0] == "'" and s[-1] == "'", s[:80]
    b = s[1:-1].encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    while i < len(b):
        if b[i] == 0x5C and b[i + 1:i + 2] == b"x" and i + 4 <= len(b):
            try:
                out.append(int(b[i + 2:i + 4], 16))
                i += 4
                continue
            except ValueError:
                pass
        out.append(b[i])
        i += 1
    return bytes(out)


def parse_mysqlbinlog(path):
    """[(op, db, table, {col: text} before, {col: text} after)]"""
    if path.endswith(".gz"):
        # mariadb-binlog reads plain files only
        with tempfile.NamedTemporaryFile(suffix=".bin") as tmp:
            with gzip.open(path, "rb") as f:
                shutil.copyfileobj(f, tmp)
            tmp.flush()
            return parse_mysqlbinlog(tmp.name)
    out = subprocess.run(
        ["mariadb-binlog", "--no-defaults", "-v", "--base64-output=DECODE-ROWS",
         path], capture_output=True, check=True).stdout.decode(
             "utf-8", "surrogateescape")
    rows, cur, image = [], None, None
    for line in out.split("\n"):
        m = ROW_START.match(line)
        if m:
            op = {"INSERT INTO": "c", "UPDATE": "u", "DELETE FROM": "d"}[m[1]]
            cur = [op, m[2], m[3], None, None]
            rows.append(cur)
            image = None
            continue
        if cur is None:
            continue
        if line == "### SET":
            image = 4 if cur[0] != "d" else 3
            if cur[0] == "c":
                image = 4
            cur[image] = {}
            continue
        if line == "### WHERE":
            image = 3
            cur[image] = {}
            continue
        m = VALUE.match(line)
        if m and image is not None:
            cur[image][int(m[1])] = m[2]
        elif not line.startswith("###"):
            cur = None
    return [tuple(r) for r in rows]


def parse_herald(heraldctl, path):
    out = subprocess.run([heraldctl, "decode", path], capture_output=True)
    if out.returncode != 0:
        sys.exit("heraldctl decode %s failed:\n%s" % (path, out.stderr.decode()))
    rows = []
    for line in out.stdout.decode().splitlines():
        j = json.loads(line)
        rows.append((j["op"], j["source"]["db"], j["source"]["table"],
                     j["before"], j["after"]))
    return rows


def norm_ours(v):
    """heraldctl value to the comparison notation."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return "i:%d" % v
    if isinstance(v, float):
        return "f:%r" % v
    if isinstance(v, dict):
        return "b:" + base64.b64decode(v["base64"]).hex()
    return "s:" + v


def mysql_latin1(raw):
    """MySQL's latin1: cp1252 with its five holes as C1 controls."""
    return "".join(chr(b) if b in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
                   else bytes([b]).decode("cp1252") for b in raw)


def text_matches(raw, ours):
    """Whether heraldctl's string is raw's bytes in some character set the
    test data uses, or (binary columns) raw in base64, or BINARY(n) raw
    padded with zero bytes."""
    decoders = [lambda r: r.decode("utf-8"), mysql_latin1,
                lambda r: r.decode("cp1251"), lambda r: r.decode("shift_jis"),
                lambda r: r.decode("utf-16-be"), lambda r: r.decode("gbk")]
    for dec in decoders:
        try:
            if dec(raw) == ours:
                return True
        except (UnicodeDecodeError, ValueError):
            pass
    try:
        b = base64.b64decode(ours, validate=True)
    except Exception:
        return False
    return b.startswith(raw) and b[len(raw):].strip(b"\0") == b""


def norm_theirs(t, ours):
    """mariadb-binlog text to the notation, guided by heraldctl's value
    (which says what the column is)."""
    if t == "NULL":
        return "NULL"
    if t.startswith("b'"):
        bits = t[2:-1]
        if isinstance(ours, str):
            return norm_ours(ours)  # SET labels: checked by the manifest
        be = int(bits, 2)
        if len(bits) % 8 == 0 and len(bits) > 8:
            # SET is stored little-endian and printed byte by byte; BIT is
            # big-endian
            le = int.from_bytes(be.to_bytes(len(bits) // 8, "big"), "little")
            if ours == le:
                return "i:%d" % le
        return "i:%d" % be
    if t.startswith("'"):
        raw = unquote(t)
        if isinstance(ours, dict):
            return "b:" + raw.hex()
        if isinstance(ours, str) and text_matches(raw, ours):
            return "s:" + ours
        if isinstance(ours, str) and re.fullmatch(rb"\d{4}:\d\d:\d\d", raw):
            return "s:" + raw.decode().replace(":", "-")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return "b:" + raw.hex()
        if isinstance(ours, str) and ours != text:
            # binary column: heraldctl prints base64
            try:
                if base64.b64decode(ours, validate=True) == raw:
                    return norm_ours(ours)
            except Exception:
                pass
        return "s:" + text
    m = re.fullmatch(r"(-?\d+) \((\d+)\)", t)
    if m:  # signed (unsigned)
        if isinstance(ours, int) and ours >= 0 and int(m[1]) < 0:
            return "i:" + m[2]
        return "i:" + m[1]
    if re.fullmatch(r"-?\d+", t):
        n = int(t)
        if isinstance(ours, str) and re.fullmatch(r"\d{4}-.*", ours):
            # TIMESTAMP as epoch seconds
            if n == 0:
                return "s:0000-00-00 00:00:00"
            d = datetime.datetime.fromtimestamp(n, datetime.timezone.utc)
            return "s:" + d.strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(ours, str):
            # ENUM index where heraldctl knows the labels: the label is
            # checked against the manifest's values instead.
            return norm_ours(ours)
        if ours == 0 and n == 1900:
            return "i:0"  # YEAR 0
        return "i:%d" % n
    m = re.fullmatch(r"(\d+)\.(\d+)", t)
    if m and isinstance(ours, str) and re.fullmatch(r"\d{4}-.*", ours):
        # TIMESTAMP(f) as epoch seconds with a fraction
        n = int(m[1])
        if n == 0:
            return "s:0000-00-00 00:00:00." + m[2]
        d = datetime.datetime.fromtimestamp(n, datetime.timezone.utc)
        return "s:" + d.strftime("%Y-%m-%d %H:%M:%S") + "." + m[2]
    if re.fullmatch(r"-?\d+\.\d+", t) and isinstance(ours, str):
        return "s:" + t  # DECIMAL
    if re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", t):
        return "s:" + t  # old DATETIME, unquoted
    try:
        f = float(t)
        if isinstance(ours, float):
            # mariadb-binlog prints FLOAT with %g (6 digits), DOUBLE with
            # %.20g: equal within that precision
            return "f:%r" % (ours if abs(f - ours) <= abs(ours) * 1e-5 else f)
        if isinstance(ours, int):
            return "i:%d" % int(f)
    except ValueError:
        pass
    return "?:" + t


def main():
    heraldctl, files = sys.argv[1], sys.argv[2:]
    bad = 0
    for path in files:
        theirs = parse_mysqlbinlog(path)
        ours = parse_herald(heraldctl, path)
        if len(theirs) != len(ours):
            print("%s: mariadb-binlog has %d row changes, heraldctl %d" %
                  (path, len(theirs), len(ours)))
            bad += 1
            continue
        checked = 0
        for n, (t, o) in enumerate(zip(theirs, ours)):
            if t[:3] != o[:3]:
                print("%s: row %d: %r vs %r" % (path, n, t[:3], o[:3]))
                bad += 1
                break
            for ti, oi in ((3, 3), (4, 4)):
                tim, oim = t[ti], o[oi]
                if (tim is None) != (oim is None):
                    print("%s: row %d: image %d presence differs" % (path, n, ti))
                    bad += 1
                    continue
                if tim is None:
                    continue
                ovals = list(oim.items())
                # heraldctl omits absent columns; @N numbers count all.
                keys = list(oim.keys())
                for col, tv in tim.items():
                    name = keys[list(tim.keys()).index(col)]
                    ov = oim[name]
                    a, b = norm_theirs(tv, ov), norm_ours(ov)
                    checked += 1
                    if a != b:
                        print("%s: row %d (%s.%s) @%d: mariadb-binlog %s, "
                              "heraldctl %s" % (path, n, o[1], o[2], col, a, b))
                        bad += 1
                        if bad > 20:
                            sys.exit(1)
                if len(tim) != len(ovals):
                    print("%s: row %d: %d vs %d columns" % (path, n, len(tim), len(ovals)))
                    bad += 1
        print("%s: %d row changes, %d values agree" % (path, len(ours), checked))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
