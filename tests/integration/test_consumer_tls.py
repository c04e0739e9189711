#!/usr/bin/env python3
"""TLS on the relay's consumer port (relay.tls_cert_file), against the
sandbox: certificates made here with the openssl command (a CA, a server
certificate for 127.0.0.1, a client certificate, and a CA that signed
none of them). heraldctl tail over TLS prints what decode reads; a wrong
or missing CA, a plaintext client and a client without the certificate a
relay requires are refused with a message saying why, and the relay stays
up; an agent consumes over TLS into a file sink; the token goes over TLS
and appears in no log, /status or /metrics.

Usage: test_consumer_tls.py [TEST...]   (default: all)
"""
import json
import os
import socket
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import (BIN, ENV, Relay, decode, master_scn, run,  # noqa: E402
                        setup_db, setup_pos, sql, zk_get)
import test_agent as ta  # noqa: E402

TOKEN = "s3cret-t0ken-for-tls"


def openssl(args, cwd):
    r = subprocess.run(["openssl"] + args, cwd=cwd, capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("openssl %s: %s" % (" ".join(args), r.stderr))


def make_certs(tmp):
    """ca.crt signs srv.crt (127.0.0.1) and cli.crt; other.crt is a CA
    that signed nothing here. Returns the directory."""
    d = os.path.join(tmp, "pki")
    os.makedirs(d)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other"):
        openssl(["req", "-x509"] + ec + ["-keyout", ca + ".key", "-out",
                ca + ".crt", "-days", "2", "-subj", "/CN=herald test " + ca,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
    exts = {"srv": "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
            "cli": "extendedKeyUsage=clientAuth\n"}
    for name, ext in exts.items():
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext)
        openssl(["req"] + ec + ["-keyout", name + ".key", "-out", name + ".csr",
                                "-subj", "/CN=herald test " + name], d)
        openssl(["x509", "-req", "-in", name + ".csr", "-CA", "ca.crt",
                 "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                 "-out", name + ".crt", "-extfile", name + ".ext"], d)
    return d


def tls_relay(tmp, name, sid, pki, db, extra="", zk=False):
    tok = os.path.join(tmp, name + ".token")
    with open(tok, "w") as f:
        f.write(TOKEN + "\n")
    conf = ("  tls_cert_file: %s/srv.crt\n  tls_key_file: %s/srv.key\n"
            "  token_file: %s\n%s" % (pki, pki, tok, extra))
    return Relay(tmp, name, sid, extra=conf, tables=db + ".*", zk=zk,
                 start=setup_pos()).start(), tok


def tail_rc(args, timeout=60):
    """heraldctl tail args: (exit status, lines, stderr)."""
    r = subprocess.run([os.path.join(BIN, "heraldctl"), "tail"] + args,
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout.splitlines(), r.stderr


def must_fail(args, words, relay):
    rc, out, err = tail_rc(args + ["--timeout", "5", "--max", "1",
                                   "--connect-timeout", "5"])
    assert rc != 0 and not out, "tail %s: exit %d, %s" % (args, rc, out[:1])
    for w in words:
        assert w in err, "tail %s: no '%s' in: %s" % (args, w, err)
    relay.status()  # still up
    return err


def no_secret(relay, texts):
    with open(relay.log) as f:
        log = f.read()
    for where, t in [("relay log", log), ("/status", str(relay.status())),
                     ("/metrics", relay.metrics())] + texts:
        assert TOKEN not in t, "the token is in " + where


def test_tail_over_tls(tmp):
    """Tail with the CA equals decode, also for a transaction larger than
    relay.inflight_bytes; wrong CA, no CA, plaintext and a wrong token are
    refused with a clear message; the relay stays up, the token is in no
    log."""
    pki = make_certs(tmp)
    db = "it_tls"
    start = setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY, s TEXT);" % db)
    r, tok = tls_relay(tmp, "tls1", 141, pki, db,
                       extra="  inflight_bytes: 64KiB\n")
    try:
        stmts = ["INSERT INTO %s.t VALUES (%d, REPEAT('x', %d));" % (db, i, i)
                 for i in range(1, 301)]
        # one transaction of ~4 MiB: chunks, and many writes held back by
        # the 64 KiB in flight
        stmts.append("BEGIN;" + "".join(
            "INSERT INTO %s.t VALUES (%d, REPEAT('y', 2000));" % (db, 10000 + i)
            for i in range(2000)) + "COMMIT;")
        stmts.append("UPDATE %s.t SET s = 'u' WHERE id %% 3 = 0;" % db)
        sql("\n".join(stmts))
        expected = decode(db + ".*", start)
        r.wait_scn(master_scn())
        base = ["--relay", r.addr, "--from", str(start), "--tables", db + ".*",
                "--token-file", tok]
        rc, got, err = tail_rc(base + ["--tls", "--tls-ca", pki + "/ca.crt",
                                       "--max", str(len(expected)),
                                       "--timeout", "20"], timeout=120)
        assert rc == 0, "tail over TLS exited %d: %s\n%s" % (rc, err, r.logtail())
        assert got == expected, "tail over TLS differs from decode (%d/%d)" % (
            len(got), len(expected))
        errs = [must_fail(base + ["--tls", "--tls-ca", pki + "/other.crt"],
                          ["TLS handshake", "does not verify", "other.crt"], r),
                must_fail(base + ["--tls"], ["does not verify"], r),
                must_fail(base, ["speaks TLS only"], r)]
        bad = os.path.join(tmp, "bad.token")
        with open(bad, "w") as f:
            f.write("wrong\n")
        errs.append(must_fail(["--relay", r.addr, "--tls", "--tls-ca",
                               pki + "/ca.crt", "--token-file", bad],
                              ["token"], r))
        # a raw plaintext Subscribe-sized frame: refused, relay up, logged
        # with the peer
        s = socket.create_connection(("127.0.0.1", r.port), timeout=5)
        s.sendall(struct.pack(">I", 5) + b"\x0a\x03abc")
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        s.close()
        with open(r.log) as f:
            log = f.read()
        assert "tls handshake failed" in log and "peer=127.0.0.1:" in log, \
            r.logtail()
        assert "does not speak TLS" in log, r.logtail()
        rc, got, err = tail_rc(base + ["--tls", "--tls-ca", pki + "/ca.crt",
                                       "--max", "1", "--timeout", "20"])
        assert rc == 0 and got == expected[:1], "after the refusals: " + err
        no_secret(r, [("tail's stderr", e) for e in errs])
    finally:
        r.stop()


def test_client_certificate(tmp):
    """relay.tls_client_ca_file: a client without a certificate is
    refused, one with a certificate the CA signed is served."""
    pki = make_certs(tmp)
    db = "it_tls_cc"
    start = setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY);" % db)
    r, tok = tls_relay(tmp, "tlscc", 142, pki, db,
                       extra="  tls_client_ca_file: %s/ca.crt\n" % pki)
    try:
        sql("INSERT INTO %s.t VALUES (1),(2),(3);" % db)
        expected = decode(db + ".*", start)
        r.wait_scn(master_scn())
        base = ["--relay", r.addr, "--from", str(start), "--tables", db + ".*",
                "--token-file", tok, "--tls", "--tls-ca", pki + "/ca.crt"]
        must_fail(base, ["TLS"], r)
        with open(r.log) as f:
            assert "tls handshake failed" in f.read(), r.logtail()
        # the server's certificate is no client certificate of this CA's
        # clients only by its usage: a client key pair signed by the CA
        rc, got, err = tail_rc(base + ["--tls-cert", pki + "/cli.crt",
                                       "--tls-key", pki + "/cli.key",
                                       "--max", str(len(expected)),
                                       "--timeout", "20"])
        assert rc == 0 and got == expected, "with a client certificate: " + err
        rc, _, err = tail_rc(base + ["--tls-cert", pki + "/cli.crt"])
        assert rc != 0 and "tls_key_file" in err, err
        no_secret(r, [])
    finally:
        r.stop()


def test_zk_registration_says_tls(tmp):
    """A relay found in ZooKeeper whose registration says tls: the client
    uses TLS with it without being told (--tls-ca only gives the CA)."""
    pki = make_certs(tmp)
    db = "it_tls_zk"
    start = setup_db(db, "CREATE TABLE %s.t (id INT PRIMARY KEY);" % db)
    r, tok = tls_relay(tmp, "tlszk", 143, pki, db, zk=True)
    try:
        sql("INSERT INTO %s.t VALUES (1),(2);" % db)
        expected = decode(db + ".*", start)
        r.wait_scn(master_scn())
        rc, got, err = tail_rc(["--zk", ENV["HERALD_ZK_HOSTS"], "--cluster",
                                "itest", "--source", "sandbox", "--from",
                                str(start), "--tables", db + ".*",
                                "--token-file", tok, "--tls-ca",
                                pki + "/ca.crt", "--max", str(len(expected)),
                                "--timeout", "20"])
        assert rc == 0 and got == expected, "tail by ZooKeeper: %s\n%s" % (
            err, r.logtail())
        node = json.loads(zk_get("/herald/itest/relays/sandbox/tlszk"))
        assert node.get("tls") is True, node
    finally:
        r.stop()


def test_agent_over_tls(tmp):
    """An agent with agent.relay_tls and the CA consumes every change into
    its file sinks; the token is in none of its logs."""
    pki = make_certs(tmp)
    start = setup_db(ta.DB, ta.DDL)
    r, tok = tls_relay(tmp, "tlsag", 144, pki, ta.DB)
    r.wait_scn(master_scn())
    n = 2
    ag = ta.Agent(tmp, "a1", relays=[r], partitions=n)
    with open(ag.conf) as f:
        conf = f.read()
    conf = conf.replace("agent:\n", "agent:\n  relay_tls: true\n"
                        "  relay_tls_ca_file: %s/ca.crt\n  token_file: %s\n"
                        % (pki, tok), 1)
    with open(ag.conf, "w") as f:
        f.write(conf)
    try:
        ag.start()
        head = master_scn()
        ta.wait_for(lambda: len(ag.checkpoints()) == n and
                    min(ag.checkpoints().values()) >= head,
                    "every partition at the head: " + ag.logtail())
        ta.workload(15)
        head = master_scn()
        ta.wait_for(lambda: min(ag.checkpoints().values()) >= head,
                    "checkpoints at %d: %s" % (head, ag.logtail()))
        ag.term()
        ta.check(ag.out, n, ta.expected(start))
        with open(ag.log) as f:
            no_secret(r, [("agent log", f.read())])
    finally:
        ag.stop()
        r.stop()


def test_bad_tls_config(tmp):
    """Only one of tls_cert_file and tls_key_file, or a client CA without
    them: the config is refused. A key that is not the certificate's: the
    relay does not start, and says which files."""
    pki = make_certs(tmp)
    r = Relay(tmp, "badtls", 145, extra="  tls_cert_file: %s/srv.crt\n" % pki)
    with open(r.conf) as f:
        base = f.read()
    only_ca = base.replace("  tls_cert_file: %s/srv.crt\n" % pki,
                           "  tls_client_ca_file: %s/ca.crt\n" % pki)
    ta.refused(os.path.join(tmp, "c.yaml"), [
        (base, "set both of tls_cert_file and tls_key_file"),
        (only_ca, "relay.tls_client_ca_file: needs tls_cert_file")])
    with open(r.conf, "w") as f:
        f.write(base.replace("  tls_cert_file:", "  tls_key_file: %s/cli.key\n"
                             "  tls_cert_file:" % pki))
    p = subprocess.run([os.path.join(BIN, "herald-relay"), "-c", r.conf],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "the key of relay.tls_cert_file" in \
        p.stderr and "cli.key" in p.stderr, (p.returncode, p.stderr)


TESTS = [test_tail_over_tls, test_client_certificate,
         test_zk_registration_says_tls, test_agent_over_tls,
         test_bad_tls_config]

if __name__ == "__main__":
    sys.exit(run(TESTS, sys.argv[1:], prefix="herald-tls-"))
