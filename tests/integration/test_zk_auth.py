#!/usr/bin/env python3
"""ZooKeeper digest authentication (zookeeper.auth_file, docs/zookeeper.md
Security): relays, coordinators and agents with credentials work end to
end (every change in the file sinks); every znode of the cluster gives all
permissions to the credentials' user and none to the world; a client
without credentials, or with wrong ones, can neither read nor move a
checkpoint or the assignment (ZNOAUTH), nor join the group; the
credentials survive a reconnection to another ZooKeeper server (the
leader's server stopped: it rewrites the assignment for a join from
another); heraldctl with
--zk-auth works, without it is refused with a message that says so; the
password is in no log, no /status, no /metrics and no znode."""
import json
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import BIN, ENV, run, setup_db  # noqa: E402
import test_agent as ta  # noqa: E402

ZK = ENV["HERALD_ZK_HOSTS"]
PASSWORD = "Zk-s3cret-%d" % os.getpid()  # unique: a grep finds only leaks
NOAUTH = "not authorized (ZNOAUTH"


def zk(cmd, *args, auth=None, timeout=60):
    argv = [os.path.join(BIN, "zk_member"), cmd, "--zk", ZK]
    if auth:
        argv += ["--auth-file", auth]
    r = subprocess.run(argv + list(args), capture_output=True, text=True,
                       timeout=timeout)
    assert "Sanitizer" not in r.stderr, r.stderr
    return r


def dump(path, auth):
    r = zk("dump", path, auth=auth)
    assert r.returncode == 0, "dump %s: %s" % (path, r.stderr)
    return [json.loads(line) for line in r.stdout.splitlines()]


def refused(r, what):
    assert r.returncode != 0 and NOAUTH in r.stderr, \
        "%s not refused with ZNOAUTH: rc=%d %s" % (what, r.returncode, r.stderr)


def ctl(*args, timeout=60):
    r = subprocess.run([os.path.join(BIN, "heraldctl")] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    assert "Sanitizer" not in r.stderr, r.stderr
    return r


def http(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                timeout=5) as r:
        return r.read().decode()


def sandbox(cmd, node):
    subprocess.run([os.path.join(os.environ["HERALD_SOURCE"], "scripts",
                                 "sandbox"), cmd, str(node), "--dir",
                    os.environ["HERALD_SANDBOX_DIR"]], check=True, timeout=60,
                   stdout=subprocess.DEVNULL)


def secret_file(tmp, name, content, mode=0o600):
    p = os.path.join(tmp, name)
    with open(p, "w") as f:
        f.write(content)
    os.chmod(p, mode)
    return p


def logs_under(tmp):
    for d, _, files in os.walk(tmp):
        for f in files:
            if f.endswith(".log"):
                yield os.path.join(d, f)


def test_zk_auth(tmp):
    good = secret_file(tmp, "zk.auth", "herald:%s\n" % PASSWORD)
    wrong = secret_file(tmp, "zk-wrong.auth", "herald:not-%s\n" % PASSWORD)
    other = secret_file(tmp, "zk-other.auth", "intruder:%s\n" % PASSWORD)
    # Was /herald there before? If this test makes it, it is given back
    # open at the end (other tests of this sandbox run without credentials).
    herald_before = zk("get", "/herald").returncode == 0 or \
        NOAUTH in zk("get", "/herald").stderr
    itest_before = zk("get", "/herald/itest", auth=good).returncode == 0
    r = zk("dump", "/herald/itest")  # what exists (open) before the test
    before = {json.loads(line)["path"] for line in r.stdout.splitlines()}
    start = setup_db(ta.DB, ta.DDL)
    n = 4
    g = ta.Group(tmp, n, nrelays=2, ncoords=2, auth_file=good)
    gpath = "/herald/itest/groups/%s" % g.group
    bad_agent = stopped = w = None
    try:
        for name in ("a1", "a2"):
            g.agent(name)
        g.wait_settled()
        g.wait_head()
        w = ta.Writer()
        time.sleep(2)
        w.stop()
        w = None
        g.wait_head()

        # --- a reconnection keeps the credentials: the ZooKeeper server
        # of the leader's session is stopped, its session moves to another
        # server within the session timeout, and a join then needs the
        # leader to rewrite the (secured) assignment; the agents go on
        # writing their checkpoints meanwhile
        leader = ta.wait_for(lambda: ([c for c in g.coords if c.leading()]
                                      or [None])[0], "a leader", 20)
        s1 = leader.status()
        stopped = ZK.split(",").index(s1["zookeeper_server"]) + 1
        sandbox("zk-stop", stopped)
        w = ta.Writer(base=500000)
        ta.wait_for(lambda: (lambda st: st and st["connected"] and
                             st["zookeeper_server"] !=
                             s1["zookeeper_server"])(leader.try_status()),
                    "the leader on another ZooKeeper server", 20)
        g.agent("a3")
        g.wait_settled(timeout=40)
        time.sleep(1)
        w.stop()
        w = None
        g.wait_head()
        sandbox("zk-start", stopped)
        stopped = None

        # --- every node of the group is the credentials' user's alone
        nodes = dump(gpath, good)
        kinds = {x["path"][len(gpath):].split("/")[1] for x in nodes
                 if x["path"] != gpath}
        assert {"assignment", "members", "owners", "checkpoints"} <= kinds, \
            "group nodes: %s" % sorted(kinds)
        for x in nodes:
            assert x["acl"].startswith("digest:herald:") and \
                "world" not in x["acl"], "%s: acl %s" % (x["path"], x["acl"])
        made = [x for x in dump("/herald/itest", good)
                if x["path"] not in before]
        assert len(made) >= len(nodes) + 2, "nodes made: %s" % made
        for x in made:  # relays', coordinators' nodes too
            assert x["acl"].startswith("digest:herald:") and \
                "world" not in x["acl"], "%s: acl %s" % (x["path"], x["acl"])
        if not herald_before:
            top = dump("/herald", good)[0]
            acl = sorted(e.split(":")[0] + ":" + e.split(":")[-1]
                         for e in top["acl"].split(","))
            assert acl == ["digest:31", "world:4"] and \
                top["acl"].startswith("digest:herald:"), \
                "/herald: acl %s" % top["acl"]

        # --- a client without credentials, or with others, is refused
        ck = "%s/checkpoints/0" % gpath
        asg = "%s/assignment" % gpath
        fake_ck = json.dumps({"owner": "intruder", "epoch": 1, "scn": 1})
        for auth, who in ((None, "no credentials"), (wrong, "wrong password"),
                          (other, "another user")):
            refused(zk("set", ck, fake_ck, auth=auth),
                    "set checkpoint (%s)" % who)
            refused(zk("set", asg, "{}", auth=auth),
                    "set assignment (%s)" % who)
            refused(zk("get", ck, auth=auth), "read checkpoint (%s)" % who)
            refused(zk("get", asg, auth=auth), "read assignment (%s)" % who)
            refused(zk("create", "%s/members/intruder" % gpath, "{}",
                       auth=auth), "join (%s)" % who)
            refused(zk("rmr", ck, auth=auth), "delete checkpoint (%s)" % who)
        assert g.checkpoints()[0] > 0 and g.assignment() is not None, \
            "the group's nodes changed"

        # --- an agent with wrong credentials does not get in, and says why
        bad_agent = ta.Agent(tmp, "a9", zk=True, partitions=n, group=g.group,
                             per_agent_files=True, auth_file=wrong).start()
        ta.wait_for(lambda: "ZNOAUTH" in open(bad_agent.log).read(),
                    "a9 to log ZNOAUTH", 30)
        with open(bad_agent.log) as f:
            text = f.read()
        assert "zookeeper.auth_file" in text, text[-2000:]
        # (Only a9 is looked for: a member of the group may be between
        # two sessions on a loaded machine.)
        assert "a9" not in g.assignment()["members"], \
            "a9 joined: %s" % g.assignment()
        bad_agent.stop()

        # --- an auth file that is not user:password stops the program
        nocolon = secret_file(tmp, "zk-nocolon.auth", "justapassword\n")
        empty = secret_file(tmp, "zk-empty.auth", "")
        for f, why in ((nocolon, "no ':'"), (empty, "empty")):
            a = ta.Agent(tmp, "a8", zk=True, partitions=n, group=g.group,
                         auth_file=f).start()
            rc = a.proc.wait(timeout=30)
            with open(a.log) as lf:
                text = lf.read()
            assert rc != 0 and "zookeeper.auth_file" in text and why in text, \
                "agent with %s: rc=%d %s" % (f, rc, text[-1000:])
            assert "justapassword" not in text, "the file's content logged"

        # --- heraldctl: with the credentials it works, without refused
        r = ctl("lag", "--zk", ZK, "--cluster", "itest", "--group", g.group,
                "--zk-auth", good, "--json")
        assert r.returncode == 0, "lag --zk-auth: %d %s" % (r.returncode,
                                                           r.stderr)
        lag = json.loads(r.stdout)
        assert PASSWORD not in r.stdout
        r = ctl("checkpoint", "get", "--zk", ZK, "--cluster", "itest",
                "--group", g.group, "--zk-auth", good)
        assert r.returncode == 0, "checkpoint get --zk-auth: %d %s" % (
            r.returncode, r.stderr)
        conf = os.path.join(tmp, "a1", "agent.yaml")
        r = ctl("status", "--config", conf)
        assert r.returncode == 0, "status --config (auth_file): %d %s" % (
            r.returncode, r.stderr)
        assert PASSWORD not in r.stdout + r.stderr
        for args in (["lag", "--group", g.group], ["status"],
                     ["checkpoint", "set", "--group", g.group,
                      "--partition", "0", "--to", "earliest", "--force",
                      "--execute"]):
            for extra in ([], ["--zk-auth", wrong]):
                r = ctl(*(args + ["--zk", ZK, "--cluster", "itest"] + extra))
                assert r.returncode != 0 and "not authorized" in r.stderr, \
                    "heraldctl %s %s: rc=%d out=%s err=%s" % (
                        " ".join(args), extra, r.returncode, r.stdout,
                        r.stderr)
                if not extra:
                    assert "--zk-auth" in r.stderr, r.stderr
        assert g.checkpoints()[0] > 0, "checkpoint set went through"
        loose = secret_file(tmp, "zk-loose.auth", "herald:%s\n" % PASSWORD,
                            mode=0o644)
        r = ctl("-v", "lag", "--zk", ZK, "--cluster", "itest", "--group",
                g.group, "--zk-auth", loose)
        assert r.returncode == 0 and "readable by group or others" in \
            r.stderr and loose in r.stderr, "0644: %d %s" % (r.returncode,
                                                             r.stderr)
        assert PASSWORD not in r.stdout + r.stderr

        # --- the password: in no log, /status, /metrics, znode, output
        places = {}
        for r in g.relays:
            places["relay %s /status" % r.conf] = http(r.http, "/status")
            places["relay %s /metrics" % r.conf] = http(r.http, "/metrics")
        for c in g.coords:
            places["coordinator %s /status" % c.id] = http(c.http, "/status")
            places["coordinator %s /metrics" % c.id] = http(c.http, "/metrics")
        for a in g.live():
            places["agent %s /status" % a.name] = http(a.http, "/status")
            places["agent %s /metrics" % a.name] = http(a.http, "/metrics")
        for x in dump("/herald/itest", good):
            places["znode " + x["path"]] = x["data"]
        places["heraldctl lag"] = json.dumps(lag)
        for a in g.live():
            a.term()
        for c in g.coords:
            rc = c.stop()
            assert rc == 0, "%s exited %d: %s" % (c.id, rc, c.logtail())
        for r in g.relays:
            r.stop()
        for p in logs_under(tmp):
            with open(p, errors="replace") as f:
                places["log " + p] = f.read()
        sanitizer = [k for k, v in places.items() if k.startswith("log ") and
                     ("Sanitizer" in v or "runtime error:" in v)]
        assert not sanitizer, "sanitizer reports in %s" % sanitizer
        leaks = [k for k, v in places.items() if PASSWORD in v]
        assert not leaks, "the password appears in: %s" % leaks
        assert sum(k.startswith("log ") for k in places) >= 5, \
            "logs: %s" % [k for k in places if k.startswith("log ")]

        # --- and every change arrived
        ta.check(os.path.join(tmp, "out"), n, ta.expected(start))
    finally:
        if w:
            w.stop_ev.set()
        if stopped:
            sandbox("zk-start", stopped)
        if bad_agent:
            bad_agent.stop()
        g.close()
        cleanup(good, herald_before, itest_before)


def test_zk_secure(tmp):
    """heraldctl zk-secure: the nodes of a cluster made without
    credentials are given to them; a client without is refused after."""
    good = secret_file(tmp, "zk.auth", "herald:%s\n" % PASSWORD)
    root = "/herald/zks-%d" % os.getpid()
    paths = [root, root + "/groups", root + "/groups/g",
             root + "/groups/g/checkpoints", root + "/groups/g/checkpoints/0"]
    herald_before = zk("get", "/herald").returncode == 0
    try:
        for p in paths:
            r = zk("create", p, '{"scn":7}')
            assert r.returncode == 0, r.stderr
        base = ["zk-secure", "--zk", ZK, "--cluster", root.split("/")[2]]
        r = ctl(*base)
        assert r.returncode == 2 and "--zk-auth" in r.stderr, r.stderr
        r = ctl(*(base + ["--zk-auth", good]))
        assert r.returncode == 0 and r.stdout.count("open: ") == len(paths), \
            r.stdout + r.stderr
        assert zk("set", paths[-1], "x").returncode == 0, "dry run changed"
        r = ctl(*(base + ["--zk-auth", good, "--execute"]))
        assert r.returncode == 0 and \
            r.stdout.count("secured: ") == len(paths), r.stdout + r.stderr
        refused(zk("set", paths[-1], "y"), "set after zk-secure")
        refused(zk("get", paths[-1]), "read after zk-secure")
        assert zk("set", paths[-1], "z", auth=good).returncode == 0
        for x in dump(root, good):
            assert x["acl"].startswith("digest:herald:") and \
                "world" not in x["acl"], x
        r = ctl(*(base + ["--zk-auth", good]))
        assert r.returncode == 0 and "0 open" in r.stdout, r.stdout
    finally:
        zk("rmr", root, auth=good)
        if not herald_before:
            zk("rmr", "/herald")


def cleanup(good, herald_before, itest_before):
    """Give back what other tests of this sandbox use without credentials:
    the nodes this test made with them are removed, /herald made open."""
    if not itest_before:
        zk("rmr", "/herald/itest", auth=good)
    else:
        r = zk("dump", "/herald/itest", auth=good)
        done = []
        for line in r.stdout.splitlines():
            x = json.loads(line)
            if x["acl"].startswith("digest:") and \
                    not any(x["path"].startswith(d + "/") for d in done):
                zk("rmr", x["path"], auth=good)
                done.append(x["path"])
    if not herald_before:
        zk("open", "/herald", auth=good)


if __name__ == "__main__":
    sys.exit(run([test_zk_auth, test_zk_secure], sys.argv[1:],
                 prefix="herald-zkauth-"))
