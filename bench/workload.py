#!/usr/bin/env python3
"""bench/workload.py - the benchmarks' SQL workload, written to stdout.

usage: bench/workload.py [N] [SEED]     (N row changes, default 1000000;
                                         SEED default 42)

Database `bench` with three tables - narrow (3 columns), wide (22 columns
of mixed types: NULLs, utf8mb4 text, blobs, JSON, temporal types, BIT,
ENUM, SET) and orders (9 columns) - and transactions whose row changes in
a ROW-format binlog add up to exactly N: every UPDATE changes every row it
matches (each SET clause alters a column of every row) and every DELETE
removes live rows. By rows, about 78% inserts, 15% updates and 7% deletes;
narrow gets half of them, orders 30%, wide 20%. About 10% of the
transactions change one row, the rest 10; 15% of all transactions touch
the three tables at once (4 orders inserts, 3 narrow updates, 3 wide
inserts). A summary line goes to stderr.

The published reference figures (bench/README.md) were measured on this
workload as the earlier generator beside the repository wrote it. This one
draws its random numbers in the same order, so for the same N and SEED it
writes the same rows and statements, and figures from either stay
comparable: for N=1000000 and SEED=42, 783738 inserts, 150616 updates,
65646 deletes in 110044 transactions.

Python 3 standard library only; about 10 s for a million row changes.
"""
import argparse
import random
import sys
import time

# Text values mix ASCII with 2-, 3- and 4-byte UTF-8 so that utf8mb4
# columns carry realistic multi-byte data.
WORDS = ("alpha", "beta", "gamma", "delta", "épée", "naïve", "日本語",
         "данные", "zeta", "theta", "kappa", "lambda", "ÿ", "€uro", "😀",
         "omega", "sigma")
COLOURS = ("red", "green", "blue", "black")
STATUSES = ("new", "paid", "shipped", "delivered", "cancelled")
CURRENCIES = ("EUR", "USD", "GBP", "JPY")
SET_LABELS = "abcde"
# Timestamps fall in a 50-million-second span from late 2023.
TS_BASE, TS_SPAN = 1_700_000_000, 50_000_000
# A DELETE leaves at least this many live rows, so that range UPDATEs
# always find rows to change.
DELETE_FLOOR = 1000

# Share of row changes by table, as weights of a uniform pick among ten.
TABLE_WEIGHTS = (("narrow", 5), ("orders", 3), ("wide", 2))
TABLE_PICK = tuple(t for t, w in TABLE_WEIGHTS for _ in range(w))


def sql_str(s):
    """A MariaDB string literal (backslash escapes, the server default)."""
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Draw:
    """The random values the tables are made of, all from one seeded
    generator so that a workload is reproducible from (N, SEED)."""

    def __init__(self, seed):
        self.r = random.Random(seed)

    def null(self, p, literal):
        """literal, or NULL with probability p. The value is drawn before
        the NULL decision (the draw order the rows depend on)."""
        return "NULL" if self.r.random() < p else literal

    def words(self, lo, hi):
        return " ".join(self.r.choice(WORDS)
                        for _ in range(self.r.randrange(lo, hi)))

    def timestamp(self):
        t = TS_BASE + self.r.randrange(0, TS_SPAN)
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))

    def hex_bytes(self, lo, hi):
        return "".join("%02x" % self.r.getrandbits(8)
                       for _ in range(self.r.randrange(lo, hi)))


# ---- tables: each column's SQL type and how its values are made ----
#
# A value maker takes (Draw, row id) and returns an SQL literal. The wide
# table's makers return (p_null, literal) and the NULL draw follows the
# value's own draws.

def _narrow_k(d, i):
    return str(d.r.randrange(0, 1_000_000))


def _narrow_v(d, i):
    return sql_str("v%08x" % d.r.getrandbits(32))


NARROW = (
    ("id", "BIGINT NOT NULL PRIMARY KEY", lambda d, i: str(i)),
    ("k", "INT NOT NULL", _narrow_k),
    ("v", "VARCHAR(32) NOT NULL", _narrow_v),
)
NARROW_KEYS = ("KEY k_idx (k)",)


def _json_doc(d, i):
    r = d.r
    tag1, tag2 = r.choice(WORDS), r.choice(WORDS)
    whole, frac = r.randrange(1000), r.randrange(100)
    ok = r.choice(("true", "false", "null"))
    return '{"id": %d, "tags": ["%s", "%s"], "score": %d.%d, "ok": %s}' % (
        i, tag1, tag2, whole, frac, ok)


def _set_value(d, i):
    return ",".join(x for x in SET_LABELS if d.r.random() < 0.4)


def _time_value(d, i):
    r = d.r
    sign = r.choice(("", "-"))
    h, m, s, ms = r.randrange(0, 839), r.randrange(60), r.randrange(60), \
        r.randrange(1000)
    return "'%s%02d:%02d:%02d.%03d'" % (sign, h, m, s, ms)


def _date_value(d, i):
    r = d.r
    y, mo, day = r.randrange(1970, 2100), r.randrange(1, 13), r.randrange(1, 29)
    return "'%04d-%02d-%02d'" % (y, mo, day)


# These four are drawn before the row's other columns, in this order
# (TEXT, BLOB, JSON, SET): the draw order the reference rows came from.
WIDE_EARLY = {
    "c_text": lambda d, i: sql_str(d.words(0, 30)),
    "c_blob": lambda d, i: "x'" + d.hex_bytes(1, 48) + "'",
    "c_json": lambda d, i: sql_str(_json_doc(d, i)),
    "c_set": lambda d, i: sql_str(_set_value(d, i)),
}

# (column, SQL type, probability of NULL, value maker or None for an early
# column)
WIDE = (
    ("id", "BIGINT NOT NULL PRIMARY KEY", 0, lambda d, i: str(i)),
    ("c_uint", "INT UNSIGNED NOT NULL", 0,
     lambda d, i: str(d.r.getrandbits(32))),
    ("c_big", "BIGINT NULL", 0.1,
     lambda d, i: str(d.r.randrange(-2**62, 2**62))),
    ("c_dec", "DECIMAL(18,4) NULL", 0.1,
     lambda d, i: "%d.%04d" % (d.r.randrange(-10**13, 10**13),
                               d.r.randrange(10000))),
    ("c_dbl", "DOUBLE NULL", 0.1, lambda d, i: repr(d.r.uniform(-1e9, 1e9))),
    ("c_flt", "FLOAT NULL", 0.1, lambda d, i: "%.3f" % d.r.uniform(-1e4, 1e4)),
    ("c_vc", "VARCHAR(255) CHARACTER SET utf8mb4 NULL", 0.1,
     lambda d, i: sql_str(d.words(1, 12))),
    ("c_text", "TEXT NULL", 0.2, None),
    ("c_blob", "BLOB NULL", 0.2, None),
    ("c_dt", "DATETIME(6) NULL", 0.1,
     lambda d, i: "'%s.%06d'" % (d.timestamp(), d.r.randrange(10**6))),
    ("c_ts", "TIMESTAMP(3) NULL DEFAULT NULL", 0.1,
     lambda d, i: "'%s.%03d'" % (d.timestamp(), d.r.randrange(1000))),
    ("c_date", "DATE NULL", 0.1, _date_value),
    ("c_time", "TIME(3) NULL", 0.1, _time_value),
    ("c_year", "YEAR NULL", 0.1, lambda d, i: str(d.r.randrange(1901, 2156))),
    ("c_enum", "ENUM('red','green','blue','black') NULL", 0.1,
     lambda d, i: sql_str(d.r.choice(COLOURS))),
    ("c_set", "SET('a','b','c','d','e') NULL", 0.1, None),
    ("c_bit", "BIT(10) NULL", 0.1,
     lambda d, i: "b'%s'" % format(d.r.getrandbits(10), "010b")),
    ("c_json", "JSON NULL", 0.2, None),
    ("c_char", "CHAR(10) NULL", 0.1,
     lambda d, i: sql_str("c%04d" % d.r.randrange(10000))),
    ("c_tiny", "TINYINT NULL", 0.1, lambda d, i: str(d.r.randrange(-128, 128))),
    ("c_small", "SMALLINT UNSIGNED NULL", 0.1,
     lambda d, i: str(d.r.randrange(0, 65536))),
    ("c_medium", "MEDIUMINT NULL", 0.1,
     lambda d, i: str(d.r.randrange(-2**23, 2**23))),
)


def _order_note(d, i):
    return d.null(0.7, sql_str("gift " + d.r.choice(WORDS)))


def _money(d, i):
    whole = d.r.randrange(1, 100_000)
    return "%d.%02d" % (whole, d.r.randrange(100))


ORDERS = (
    ("id", "BIGINT NOT NULL PRIMARY KEY", lambda d, i: str(i)),
    ("customer_id", "INT UNSIGNED NOT NULL",
     lambda d, i: str(d.r.randrange(1, 200_000))),
    # New orders are only ever 'new' or 'paid'; UPDATEs move them on.
    ("status", "ENUM(%s) NOT NULL" % ",".join("'%s'" % s for s in STATUSES),
     lambda d, i: sql_str(d.r.choice(STATUSES[:2]))),
    ("amount", "DECIMAL(12,2) NOT NULL", _money),
    ("currency", "CHAR(3) NOT NULL", lambda d, i: sql_str(d.r.choice(CURRENCIES))),
    ("items", "SMALLINT NOT NULL", lambda d, i: str(d.r.randrange(1, 20))),
    ("note", "VARCHAR(200) NULL", _order_note),
    ("created_at", "DATETIME NOT NULL", lambda d, i: "'%s'" % d.timestamp()),
    ("updated_at", "DATETIME(3) NOT NULL",
     lambda d, i: "'%s.%03d'" % (d.timestamp(), d.r.randrange(1000))),
)
ORDERS_KEYS = ("KEY cust_idx (customer_id)",)


def narrow_row(d, i):
    return "(" + ",".join(make(d, i) for _, _, make in NARROW) + ")"


def wide_row(d, i):
    early = {c: make(d, i) for c, make in WIDE_EARLY.items()}
    vals = []
    for col, _, p_null, make in WIDE:
        lit = early[col] if make is None else make(d, i)
        vals.append(d.null(p_null, lit) if p_null else lit)
    return "(" + ",".join(vals) + ")"


def orders_row(d, i):
    return "(" + ",".join(make(d, i) for _, _, make in ORDERS) + ")"


ROW = {"narrow": narrow_row, "wide": wide_row, "orders": orders_row}

# UPDATE SET clauses; each changes a column of every matched row, so the
# binlog holds one row change per matched row. %d is a random tag.
UPDATE_SET = {
    "narrow": "k=k+1, v=CONCAT(LEFT(v,24),'u',%d)",
    "wide": "c_uint=c_uint+1, c_dbl=COALESCE(c_dbl,0)+1, "
            "c_vc=CONCAT('u%d ',LEFT(COALESCE(c_vc,''),200))",
    "orders": "status=ELT(1+MOD(id,5),'new','paid','shipped','delivered',"
              "'cancelled'), amount=amount+1, "
              "updated_at='2025-01-01 00:00:00.123', note='upd %d'",
}


def create_table(name, cols, keys):
    lines = ["  %s %s" % (c[0], c[1]) for c in cols] + ["  " + k for k in keys]
    return "CREATE TABLE %s (\n%s\n) ENGINE=InnoDB;\n" % (name, ",\n".join(lines))


def preamble():
    return ("SET NAMES utf8mb4;\n"
            "SET SESSION time_zone='+00:00';\n"
            "SET SESSION sql_mode='STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION';\n"
            "DROP DATABASE IF EXISTS bench;\n"
            "CREATE DATABASE bench CHARACTER SET utf8mb4 "
            "COLLATE utf8mb4_general_ci;\n"
            "USE bench;\n"
            + create_table("narrow", NARROW, NARROW_KEYS)
            + create_table("wide", WIDE, ())
            + create_table("orders", ORDERS, ORDERS_KEYS))


class Tables:
    """Live id ranges [low, next) per table, and what was written."""

    def __init__(self, draw):
        self.d = draw
        self.low = {t: 1 for t in ROW}
        self.next = {t: 1 for t in ROW}
        self.rows = {"insert": 0, "update": 0, "delete": 0}
        self.statements = 0

    def live(self, t):
        return self.next[t] - self.low[t]

    def insert(self, t, n):
        first = self.next[t]
        self.next[t] += n
        self.rows["insert"] += n
        self.statements += 1
        return "INSERT INTO %s VALUES %s;" % (
            t, ",".join(ROW[t](self.d, i) for i in range(first, first + n)))

    def update(self, t, n):
        """n consecutive live rows anywhere in the range, or None."""
        if self.live(t) < n:
            return None
        first = self.low[t] + self.d.r.randrange(0, self.live(t) - n + 1)
        self.rows["update"] += n
        self.statements += 1
        return "UPDATE %s SET %s WHERE id BETWEEN %d AND %d;" % (
            t, UPDATE_SET[t] % self.d.r.randrange(10**6), first, first + n - 1)

    def delete(self, t, n):
        """The n oldest rows, or None when that would go below the floor."""
        if self.live(t) < DELETE_FLOOR + n:
            return None
        first = self.low[t]
        self.low[t] += n
        self.rows["delete"] += n
        self.statements += 1
        return "DELETE FROM %s WHERE id BETWEEN %d AND %d;" % (
            t, first, first + n - 1)

    def one_table(self, n, p_insert, p_insert_or_update):
        """One statement of n rows on a table picked by weight: an insert,
        update or delete by the two cumulative probabilities (an insert
        where an update or delete finds too few rows)."""
        t = self.d.r.choice(TABLE_PICK)
        r = self.d.r.random()
        if r < p_insert:
            stmt = self.insert(t, n)
        elif r < p_insert_or_update:
            stmt = self.update(t, n)
        else:
            stmt = self.delete(t, n)
        return stmt if stmt is not None else self.insert(t, n)

    def three_tables(self):
        """4 orders inserts, 3 narrow updates (inserts while narrow has too
        few rows), 3 wide inserts."""
        parts = [self.insert("orders", 4)]
        upd = self.update("narrow", 3)
        parts.append(upd if upd is not None else self.insert("narrow", 3))
        parts.append(self.insert("wide", 3))
        return parts


def generate(n_changes, seed, out):
    d = Draw(seed)
    tabs = Tables(d)
    out.write(preamble())
    txns = single = 0
    left = n_changes
    while left > 0:
        pick = d.r.random()
        if left < 10 or pick < 0.10:
            # Single-row transactions: 80% inserts, 13% updates, 7% deletes.
            parts, n = [tabs.one_table(1, 0.80, 0.93)], 1
            single += 1
        elif pick < 0.25:
            parts, n = tabs.three_tables(), 10
        else:
            # Ten rows in one statement: 80% inserts, 12% updates, 8% deletes.
            parts, n = [tabs.one_table(10, 0.80, 0.92)], 10
        out.write("BEGIN;\n" + "\n".join(parts) + "\nCOMMIT;\n")
        txns += 1
        left -= n
    total = sum(tabs.rows.values())
    if total != n_changes:
        raise SystemExit("workload.py: wrote %d row changes instead of %d"
                         % (total, n_changes))
    sys.stderr.write(
        "rows=%d inserts=%d updates=%d deletes=%d txns=%d single_row_txns=%d "
        "stmts=%d live: narrow=%d wide=%d orders=%d\n" % (
            total, tabs.rows["insert"], tabs.rows["update"],
            tabs.rows["delete"], txns, single, tabs.statements,
            tabs.live("narrow"), tabs.live("wide"), tabs.live("orders")))


def main():
    ap = argparse.ArgumentParser(
        prog="bench/workload.py",
        description="Write the benchmarks' SQL workload to stdout.")
    ap.add_argument("n", nargs="?", type=int, default=1_000_000, metavar="N",
                    help="row changes in the binlog (default 1000000)")
    ap.add_argument("seed", nargs="?", type=int, default=42, metavar="SEED",
                    help="random seed (default 42)")
    a = ap.parse_args()
    if a.n < 1:
        ap.error("N must be at least 1")
    try:
        generate(a.n, a.seed, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        sys.stderr.write("workload.py: output closed early\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
