#!/usr/bin/env python3
"""TLS to the source and to the mysql sink's destination, and the source
user's privileges (docs/relay.md, docs/sinks.md).

The test starts a sandbox of its own with TLS (scripts/sandbox start
--tls: a CA, and a server certificate it signed for 127.0.0.1 and
localhost, on the source and the destination MariaDB) in a temp dir, and
stops it at the end, pass or fail. Its replication user is made to
REQUIRE SSL, so that a relay that fell back to plain text could not
connect at all.

Tests:
  stream        source.tls with the sandbox's CA: changes stream (tail),
                the relay logs the TLS cipher, the minimal user gets no
                privilege warning, the password is in no log, /status or
                /metrics
  wrong_ca      a CA that did not sign the server's certificate: refused,
                the message names the source and the TLS error, nothing
                captured
  name_mismatch the server reached as 127.0.0.2 (a forwarder), which its
                certificate does not name: refused with verification on,
                accepted (with a warning) with source.tls_verify false
  client_cert   a user that REQUIRE X509 with source.cert_file/key_file
  privileges    a user with ALL PRIVILEGES ... WITH GRANT OPTION gets one
                warning naming them, and not its password
  mysql_sink    a standalone agent's mysql sink with sink.tls to the
                destination (its user REQUIRE SSL) applies the changes; a
                wrong CA is refused with the TLS error; no password in the
                agent's log or /status

Usage: test_tls.py [TEST...]   (default: all; with or without test_)
Run by ctest (hd_sandbox_test) with HERALD_BIN and HERALD_SOURCE.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

BIN = os.environ.get("HERALD_BIN", "build/bin")
SRC = os.environ.get("HERALD_SOURCE", ".")
SBX = tempfile.mkdtemp(prefix="herald-tls-sbx-")
SANDBOX = os.path.join(SRC, "scripts", "sandbox")


def start_sandbox():
    r = subprocess.run([SANDBOX, "start", "--zk", "1", "--dest", "--tls",
                        "--dir", SBX], capture_output=True, text=True,
                       timeout=180)
    if r.returncode != 0:
        raise SystemExit("sandbox start --tls failed: %s" % r.stderr)
    os.environ["HERALD_SANDBOX_ENV"] = os.path.join(SBX, "sandbox.env")
    os.environ["HERALD_SANDBOX_DIR"] = SBX


def stop_sandbox():
    subprocess.run([SANDBOX, "stop", "--dir", SBX], capture_output=True,
                   timeout=180)


start_sandbox()
try:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import test_relay as tr  # noqa: E402  (reads the env file at import)
except BaseException:
    stop_sandbox()
    raise
ENV = tr.ENV
CA = ENV["HERALD_TLS_CA"]
REPL_HOSTS = ("127.0.0.1", "localhost", "::1")


def dst_sql(statements):
    r = subprocess.run(["mariadb", "--no-defaults", "-uroot", "-S",
                        ENV["HERALD_DST_SOCKET"], "-N", "--batch"],
                       input=statements, capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise AssertionError("dst sql failed: %s" % r.stderr)
    return r.stdout


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def tls_relay(tmp, name, server_id, db, tls_lines, host="127.0.0.1",
              user=None, pwfile=None):
    """A tr.Relay whose source section gets tls_lines (and another host,
    user or password file)."""
    r = tr.Relay(tmp, name, server_id, tables=db + ".*")
    conf = read(r.conf)
    conf = conf.replace("  host: 127.0.0.1\n", "  host: %s\n" % host)
    if user:
        conf = conf.replace("user: %s" % ENV["HERALD_MDB_REPL_USER"],
                            "user: " + user)
    if pwfile:
        conf = conf.replace("password_file: %s"
                            % ENV["HERALD_MDB_REPL_PASSWORD_FILE"],
                            "password_file: " + pwfile)
    conf += "".join("  %s\n" % l for l in tls_lines)
    with open(r.conf, "w") as f:
        f.write(conf)
    return r


def start_bg(r):
    """The relay's process, not waiting for it to be ready (it may never
    connect)."""
    logf = open(r.log, "a")
    r.proc = subprocess.Popen([os.path.join(BIN, "herald-relay"), "-c",
                               r.conf, "-v"], stdout=logf, stderr=logf)
    logf.close()
    return r


def http_get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                timeout=2) as resp:
        return resp.read().decode()


def no_secrets(texts, secrets):
    for name, text in texts.items():
        for s in secrets:
            assert s not in text, "a password is in %s" % name


def other_ca(tmp):
    """A CA of the test's own, which signed nothing the servers have."""
    key, crt = os.path.join(tmp, "other.key"), os.path.join(tmp, "other.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-days", "1", "-subj", "/CN=not the sandbox CA",
                    "-keyout", key, "-out", crt], check=True,
                   capture_output=True, timeout=60)
    return crt


def insert_rows(db, n, base=0):
    tr.sql("".join("INSERT INTO %s.t VALUES (%d, 'row %d');" % (db, base + i,
                                                                 base + i)
                   for i in range(1, n + 1)))


# ------------------------------------------------------------------ tests

def test_stream(tmp):
    db = "tls_stream"
    start = tr.setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY, s VARCHAR(40));"
                % db)
    r = tls_relay(tmp, "stream", 301, db, ["tls: true", "ca_file: " + CA])
    r.start()
    try:
        insert_rows(db, 20)
        lines, _ = tr.tail(r, ["--from", str(start)], 20)
        rows = [json.loads(l) for l in lines]
        assert [x["after"]["id"] for x in rows] == list(range(1, 21)), lines
        log = read(r.log)
        assert "source connection encrypted" in log and "cipher=" in log, log
        assert "conn=dump" in log, log
        assert "more privileges than needed" not in log, log
        no_secrets({"relay log": log, "/status": json.dumps(r.status()),
                    "/metrics": r.metrics()},
                   [ENV["HERALD_MDB_REPL_PASSWORD"]])
    finally:
        r.stop()


def test_wrong_ca(tmp):
    db = "tls_wrongca"
    start = tr.setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY, s VARCHAR(40));"
                % db)
    r = tls_relay(tmp, "wrongca", 302, db,
                  ["tls: true", "ca_file: " + other_ca(tmp)])
    start_bg(r)
    try:
        wait_for(lambda: "cannot connect to the source" in read(r.log), 20,
                 "the refusal")
        insert_rows(db, 3)
        time.sleep(1.5)
        line = [l for l in read(r.log).splitlines()
                if "cannot connect to the source" in l][0]
        assert "source=sandbox" in line and "tls=verify" in line, line
        assert "TLS" in line or "SSL" in line, line
        print(line)
        st = r.status()
        assert not st["source_connected"] and st["newest_scn"] == 0, st
        no_secrets({"relay log": read(r.log)},
                   [ENV["HERALD_MDB_REPL_PASSWORD"]])
    finally:
        r.stop()


def test_name_mismatch(tmp):
    db = "tls_name"
    start = tr.setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY, s VARCHAR(40));"
                % db)
    # 127.0.0.2 -> MariaDB: an address its certificate does not name.
    fw = tr.Forwarder("127.0.0.2", 0, int(ENV["HERALD_MDB_PORT"]))
    r = tls_relay(tmp, "name", 303, db, ["tls: true", "ca_file: " + CA],
                  host="127.0.0.2")
    r2 = None
    try:
        with open(r.conf) as f:
            conf = f.read().replace("  port: %s\n" % ENV["HERALD_MDB_PORT"],
                                    "  port: %d\n" % fw.port)
        with open(r.conf, "w") as f:
            f.write(conf)
        start_bg(r)
        wait_for(lambda: "cannot connect to the source" in read(r.log), 20,
                 "the refusal")
        line = [l for l in read(r.log).splitlines()
                if "cannot connect to the source" in l][0]
        assert "127.0.0.2" in line and "tls=verify" in line, line
        print(line)
        assert r.status()["newest_scn"] == 0
        r.stop()
        # Encrypted but unverified: it connects, and says what that means.
        r2 = tls_relay(tmp, "name2", 304, db,
                       ["tls: true", "tls_verify: false"], host="127.0.0.2")
        with open(r2.conf) as f:
            conf = f.read().replace("  port: %s\n" % ENV["HERALD_MDB_PORT"],
                                    "  port: %d\n" % fw.port)
        with open(r2.conf, "w") as f:
            f.write(conf)
        r2.start()
        insert_rows(db, 5)
        lines, _ = tr.tail(r2, ["--from", str(start)], 5)
        assert len(lines) == 5, lines
        log = read(r2.log)
        assert "source certificate not verified" in log, log
        assert "source connection encrypted" in log, log
        no_secrets({"relay log": log}, [ENV["HERALD_MDB_REPL_PASSWORD"]])
    finally:
        r.stop()
        if r2:
            r2.stop()
        fw.close()


def test_client_cert(tmp):
    db = "tls_x509"
    start = tr.setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY, s VARCHAR(40));"
                % db)
    tr.sql("CREATE USER 'tls_x509'@'127.0.0.1' IDENTIFIED BY 'tls-x509-pw' "
           "REQUIRE X509; GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON "
           "*.* TO 'tls_x509'@'127.0.0.1';")
    pw = os.path.join(tmp, "pw")
    with open(pw, "w") as f:
        f.write("tls-x509-pw\n")
    r = tls_relay(tmp, "x509", 305, db,
                  ["tls: true", "ca_file: " + CA,
                   "cert_file: " + ENV["HERALD_TLS_CLIENT_CERT"],
                   "key_file: " + ENV["HERALD_TLS_CLIENT_KEY"]],
                  user="tls_x509", pwfile=pw)
    try:
        r.start()
        insert_rows(db, 4)
        lines, _ = tr.tail(r, ["--from", str(start)], 4)
        assert len(lines) == 4, lines
    finally:
        r.stop()
        tr.sql("DROP USER 'tls_x509'@'127.0.0.1'")


def test_privileges(tmp):
    db = "tls_priv"
    start = tr.setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY, s VARCHAR(40));"
                % db)
    tr.sql("CREATE USER 'tls_all'@'127.0.0.1' IDENTIFIED BY 'tls-all-pw' "
           "REQUIRE SSL; GRANT ALL PRIVILEGES ON *.* TO 'tls_all'@'127.0.0.1' "
           "WITH GRANT OPTION; GRANT INSERT, DELETE ON %s.* TO "
           "'tls_all'@'127.0.0.1';" % db)
    pw = os.path.join(tmp, "pw")
    with open(pw, "w") as f:
        f.write("tls-all-pw\n")
    r = tls_relay(tmp, "priv", 306, db, ["tls: true", "ca_file: " + CA],
                  user="tls_all", pwfile=pw)
    try:
        r.start()
        insert_rows(db, 3)
        tr.tail(r, ["--from", str(start)], 3)
        insert_rows(db, 3, base=10)  # a second session would not warn again
        log = read(r.log)
        warns = [l for l in log.splitlines()
                 if "more privileges than needed" in l]
        assert len(warns) == 1, warns
        w = warns[0]
        for p in ("ALL PRIVILEGES", "GRANT OPTION", "INSERT", "DELETE",
                  "user=tls_all"):
            assert p in w, (p, w)
        assert "WARN" in w.upper(), w
        # The grant lines carry a password hash: it is never copied.
        h = tr.sql("SELECT authentication_string FROM mysql.user WHERE "
                   "user = 'tls_all'").strip()
        no_secrets({"relay log": log, "/status": json.dumps(r.status())},
                   ["tls-all-pw", h])
    finally:
        r.stop()
        tr.sql("DROP USER 'tls_all'@'127.0.0.1'")


def agent_conf(tmp, name, relay, db, tls_lines, start="earliest"):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    http = tr.free_port()
    lines = ["agent:", "  id: %s" % name, "  group: g", "  source: sandbox",
             "  partitions: 1", "  tables: ['%s.*']" % db, "  start: %s" % start,
             "  checkpoint_interval: 200ms", "  http: 127.0.0.1:%d" % http,
             "  relays: %s" % relay.addr,
             "  checkpoint_file: %s/checkpoints.json" % d,
             "sink:", "  type: mysql", "  host: 127.0.0.1",
             "  port: %s" % ENV["HERALD_DST_PORT"],
             "  user: %s" % ENV["HERALD_DST_USER"],
             "  password_file: %s" % ENV["HERALD_DST_PASSWORD_FILE"],
             "  retry_max: 500ms"] + ["  " + l for l in tls_lines]
    conf = os.path.join(d, "agent.yaml")
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    return conf, os.path.join(d, "agent.log"), http


def run_agent(conf, log):
    logf = open(log, "a")
    p = subprocess.Popen([os.path.join(BIN, "herald-agent"), "-c", conf,
                          "-v"], stdout=logf, stderr=logf)
    logf.close()
    return p


def stop_proc(p):
    """SIGTERM, and the exit status (0 expected: a sanitizer's report makes
    it another)."""
    if p is None:
        return 0
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode


def test_mysql_sink(tmp):
    db = "tls_sink"
    start = tr.setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY, s VARCHAR(40));"
                % db)
    dst_sql("DROP DATABASE IF EXISTS %s; DROP DATABASE IF EXISTS herald;" % db)
    r = tls_relay(tmp, "sinkrelay", 307, db, ["tls: true", "ca_file: " + CA])
    r.start()
    a = bad = None
    try:
        # A wrong CA first: refused, and the message says why.
        conf, log, _ = agent_conf(tmp, "bad", r, db,
                                  ["tls: true", "ca_file: " + other_ca(tmp)])
        bad = run_agent(conf, log)
        wait_for(lambda: "tls=verify" in read(log), 30, "the sink's refusal")
        line = [l for l in read(log).splitlines() if "tls=verify" in l][0]
        assert "TLS" in line or "SSL" in line, line
        assert stop_proc(bad) == 0, read(log)[-2000:]
        # A snapshot of the rows there are (the relay's snapshot readers
        # connect over TLS too), then the stream.
        insert_rows(db, 10)
        conf, log, http = agent_conf(tmp, "good", r, db,
                                     ["tls: true", "ca_file: " + CA],
                                     start="snapshot")
        a = run_agent(conf, log)
        insert_rows(db, 15, base=10)
        tr.sql("UPDATE %s.t SET s = 'changed' WHERE id = 7;"
               "DELETE FROM %s.t WHERE id = 9;" % (db, db))

        def applied():
            try:
                out = dst_sql("SELECT COUNT(*), SUM(s = 'changed') FROM %s.t"
                              % db).split()
            except AssertionError:
                return False
            return out == ["24", "1"]
        wait_for(applied, 60, "the rows at the destination (agent log: %s)"
                 % log)
        assert "conn=snapshot" in read(r.log), r.logtail()
        st = http_get(http, "/status")
        no_secrets({"agent log": read(log), "agent /status": st,
                    "bad agent log": read(os.path.join(tmp, "bad",
                                                       "agent.log")),
                    "agent /metrics": http_get(http, "/metrics")},
                   [ENV["HERALD_DST_PASSWORD"]])
        assert stop_proc(a) == 0, read(log)[-2000:]
    finally:
        stop_proc(bad)
        stop_proc(a)
        r.stop()


TESTS = [test_stream, test_wrong_ca, test_name_mismatch, test_client_cert,
         test_privileges, test_mysql_sink]


def main():
    try:
        # The replication user over TLS only: a fall back to plain text
        # could not even log in.
        tr.sql("".join("ALTER USER '%s'@'%s' REQUIRE SSL;"
                       % (ENV["HERALD_MDB_REPL_USER"], h) for h in REPL_HOSTS))
        dst_sql("ALTER USER '%s'@'127.0.0.1' REQUIRE SSL;"
                % ENV["HERALD_DST_USER"])
        names = ["test_" + n if not n.startswith("test_") else n
                 for n in sys.argv[1:]]
        return tr.run(TESTS, names, prefix="herald-tls-")
    finally:
        stop_sandbox()


if __name__ == "__main__":
    sys.exit(main())
