"""benchlib - what the benchmarks under bench/ share: a sandbox with a
relay, a coordinator and agents, started and stopped as whole processes.

Imported by bench/groups, bench/apply and bench/snapshot (they run from
bench/ or with it on sys.path)."""
import json
import os
import signal
import subprocess
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("HERALD_BIN", os.path.join(ROOT, "build", "bin"))


def sh(*a, **kw):
    return subprocess.run(list(a), check=True, **kw)


class Bench:
    """A sandbox (MariaDB source, one ZooKeeper node, and with
    dest/pg/nats/redis the destination MariaDB, PostgreSQL, nats-server,
    redis-server), one relay reading the source from
    its end, one coordinator; agents on demand. close() stops them all."""

    def __init__(self, work, dest=False, pg=False, nice=0, nats=False,
                 redis=False):
        self.work = work
        self.procs = []
        # The niceness of every process start() runs (bench/snapshot: so
        # that they take less of a shared host's CPU than the source).
        self.nice = nice
        sb = os.path.join(work, "sandbox")
        sh(os.path.join(ROOT, "scripts", "sandbox"), "start", "--zk", "1",
           *(["--dest"] if dest else []), *(["--pg"] if pg else []),
           *(["--nats"] if nats else []), *(["--redis"] if redis else []),
           "--dir", sb, stdout=subprocess.DEVNULL)
        self.sb = sb
        self.env = {}
        with open(os.path.join(sb, "sandbox.env")) as f:
            for line in f:
                if "=" in line:
                    k, v = line.strip().split("=", 1)
                    self.env[k] = v.strip("'\"")
        self.zk = self.env["HERALD_ZK_HOSTS"]
        self.port = int(self.env["HERALD_MDB_PORT"])
        self.relay_port, self.relay_http = self.port + 5, self.port + 6
        self.write("relay.yaml", """cluster: bench
zookeeper: {hosts: "%s"}
relay:
  id: r1
  listen: 127.0.0.1:%d
  http: 127.0.0.1:%d
  data_dir: %s/relay
  buffer_bytes: 1GiB
  fsync: interval
source:
  name: sandbox
  host: 127.0.0.1
  port: %d
  user: %s
  password_file: %s
  server_id: 778
  start: latest
""" % (self.zk, self.relay_port, self.relay_http, work, self.port,
       self.env["HERALD_MDB_REPL_USER"], self.env["HERALD_MDB_REPL_PASSWORD_FILE"]))
        self.relay = self.start("relay", [os.path.join(BIN, "herald-relay"), "-c",
                                          os.path.join(work, "relay.yaml")])
        self.wait(lambda: self.get(self.relay_http, "/status"), "the relay")
        self.write("coord.yaml", "cluster: bench\nzookeeper: {hosts: \"%s\"}\n"
                   "coordinator:\n  id: c1\n  http: 127.0.0.1:%d\n"
                   % (self.zk, self.port + 7))
        self.start("coord", [os.path.join(BIN, "herald-coordinator"), "-c",
                             os.path.join(work, "coord.yaml")])
        self.wait(lambda: self.get(self.port + 7, "/status"), "the coordinator")
        self.next_http = self.port + 20

    def write(self, name, text):
        with open(os.path.join(self.work, name), "w") as f:
            f.write(text)

    def start(self, name, argv, stdout=None):
        log = open(os.path.join(self.work, name + ".log"), "a")
        p = subprocess.Popen(argv, stdout=stdout or log, stderr=log,
                             preexec_fn=(lambda: os.nice(self.nice))
                             if self.nice else None)
        p.name = name
        self.procs.append(p)
        return p

    def get(self, port, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                        timeout=2) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def wait(self, cond, what, timeout=60, step=0.01):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = cond()
            if v:
                return v
            time.sleep(step)
        raise SystemExit("bench/groups: timed out waiting for " + what)

    def sql(self, q):
        return subprocess.run(["mariadb", "--no-defaults", "-uroot", "-S",
                               self.env["HERALD_MDB_SOCKET"], "-N", "-e", q],
                              capture_output=True, text=True, check=True).stdout

    def scn(self):
        f, p = self.sql("SHOW MASTER STATUS").split("\t")[:2]
        return (int(f.rsplit(".", 1)[1]) << 32) | int(p)

    def agent(self, name, group, n, sink="stdout", path=None, tables="bench.*",
              start="latest", standalone=False, sink_conf=(), agent_conf=()):
        http = self.next_http
        self.next_http += 1
        conf = ["agent:", "  id: %s" % name, "  group: %s" % group,
                "  source: sandbox", "  partitions: %d" % n,
                "  tables: ['%s']" % tables, "  start: %s" % start,
                "  http: 127.0.0.1:%d" % http] + ["  " + l for l in agent_conf]
        if standalone:
            conf += ["  relays: 127.0.0.1:%d" % self.relay_port,
                     "  checkpoint_file: %s/%s.ckpt" % (self.work, name)]
        else:
            conf = ["cluster: bench", "zookeeper: {hosts: \"%s\"}" % self.zk] + conf
        conf += ["sink:", "  type: %s" % sink]
        if path:
            conf.append("  path: %s" % path)
        conf += ["  " + l for l in sink_conf]
        self.write(name + ".yaml", "\n".join(conf) + "\n")
        p = self.start(name, [os.path.join(BIN, "herald-agent"), "-c",
                              os.path.join(self.work, name + ".yaml")],
                       stdout=subprocess.DEVNULL if sink == "stdout" else None)
        p.http = http
        return p

    def status(self, a):
        return self.get(a.http, "/status")

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait()
        subprocess.run([os.path.join(ROOT, "scripts", "sandbox"), "stop", "--dir",
                        self.sb], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
