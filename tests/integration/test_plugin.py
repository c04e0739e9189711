#!/usr/bin/env python3
"""The plugin sink (sink.type: plugin, <herald/sink.h>) with the example
plugin (examples/sink_plugin_example.c, one JSON-lines file per partition
in a directory shared by the agents, exactly once by its own position):
a mixed workload through three agents arrives complete, in SCN order per
partition and without a duplicate, through a failure the plugin injects
(the partition stops, reopens and resumes), a destination down for a
while (every partition stops and retries with backoff, nothing
acknowledged meanwhile) and a kill -9 of an agent mid-stream. Plugins that cannot be used are refused at start, with a
clear message and a non-zero exit: another ABI version, a path that does
not exist, a shared object that is no plugin, options the plugin
refuses."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import BIN, Relay, free_port, master_scn, run, setup_db, setup_pos  # noqa: E402,E501
import test_agent as ta  # noqa: E402

LIB = os.path.normpath(os.path.join(BIN, "..", "lib"))
EXAMPLE = os.path.join(LIB, "libherald_sink_example.so")
ABI99 = os.path.join(LIB, "libherald_sink_abi99.so")


def plugin_sink(path, **options):
    lines = ["sink:", "  type: plugin", "  path: %s" % path,
             "  retry_max: 1s"]
    if options:
        lines.append("  options:")
        lines += ["    %s: '%s'" % kv for kv in options.items()]
    return lines


def log_lines(agent, word):
    try:
        with open(agent.log) as f:
            return [l for l in f if word in l]
    except OSError:
        return []


def at_head(ag, n):
    """Start standalone agent ag; wait until its n partitions have
    checkpointed the source's newest SCN."""
    ag.start()
    head = master_scn()
    ta.wait_for(lambda: len(ag.checkpoints()) == n and
                min(ag.checkpoints().values()) >= head,
                "every partition at the head: " + ag.logtail())


def drained(ag, out, n, start):
    """With the writer stopped: every checkpoint at the source's newest
    SCN, ag stopped with SIGTERM, and the plugin's files in out holding
    every change since start once, in order."""
    head = master_scn()
    ta.wait_for(lambda: min(ag.checkpoints().values()) >= head,
                "checkpoints at %d: %s %s" % (head, ag.checkpoints(),
                                              ag.logtail()), 60)
    ag.term()
    ta.check(out, n, ta.expected(start))


def test_refused(tmp):
    """Each plugin that cannot be used stops the agent at start: exit 1,
    and the error names the path and what is wrong."""
    out = os.path.join(tmp, "out")
    os.makedirs(out, exist_ok=True)
    nobody = "127.0.0.1:%d" % free_port()
    cases = [
        (ABI99, {"dir": out},
         "built for ABI version 99, this agent speaks 1"),
        (os.path.join(tmp, "no-such-plugin.so"), {"dir": out},
         "cannot load %s" % os.path.join(tmp, "no-such-plugin.so")),
        (os.path.join(LIB, "..", "libherald", "libherald.so"), {"dir": out},
         "does not export herald_sink_plugin()"),
        (EXAMPLE, {"dir": os.path.join(tmp, "missing")},
         "init refused the options: dir '%s': not a directory"
         % os.path.join(tmp, "missing")),
        (EXAMPLE, {"dir": out, "colour": "red"},
         "unknown option 'colour'"),
    ]
    for i, (path, opts, want) in enumerate(cases):
        ag = ta.Agent(tmp, "bad%d" % i, partitions=2,
                      extra="", sink=plugin_sink(path, **opts))
        # standalone, relays that nobody serves: the sink is made first
        with open(ag.conf) as f:
            conf = f.read().replace("  checkpoint_file:",
                                    "  relays: %s\n  checkpoint_file:" % nobody)
        with open(ag.conf, "w") as f:
            f.write(conf)
        ag.start()
        try:
            rc = ag.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            ag.stop()
            raise AssertionError("%s: the agent did not exit: %s"
                                 % (path, ag.logtail()))
        assert rc == 1, "%s: exit %d, not 1" % (path, rc)
        assert log_lines(ag, want), "%s: no '%s' in the log: %s" % (
            path, want, ag.logtail())
    # sink.options without a plugin is a config error too
    r = subprocess.run([os.path.join(BIN, "heraldctl"), "validate-config",
                        ag.conf], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(ag.conf) as f:
        conf = f.read().replace("type: plugin", "type: file")
    with open(ag.conf, "w") as f:
        f.write(conf)
    r = subprocess.run([os.path.join(BIN, "heraldctl"), "validate-config",
                        ag.conf], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0 and "sink.options: only used with type plugin" \
        in r.stdout + r.stderr, r.stdout + r.stderr


def test_standalone(tmp):
    """One agent, four partitions: a failure injected after 20 windows
    stops its partition, which reopens and resumes; a kill -9 mid-stream
    and a restart. Every change once, in order."""
    start = setup_db(ta.DB, ta.DDL)
    relay = Relay(tmp, "r1", 9301, start=setup_pos()).start()
    relay.wait_scn(master_scn())
    n = 4
    out = os.path.join(tmp, "out")
    os.makedirs(out, exist_ok=True)
    ag = ta.Agent(tmp, "a1", relays=[relay], partitions=n,
                  sink=plugin_sink(EXAMPLE, dir=out, fail_after_windows=20))
    w = None
    try:
        at_head(ag, n)
        w = ta.Writer()
        ta.wait_for(lambda: log_lines(ag, "injected failure"),
                    "the injected failure: " + ag.logtail(), 60)
        time.sleep(1)
        ag.kill9()
        time.sleep(0.5)
        ag.start()
        time.sleep(1)
        w.stop()
        w = None
        drained(ag, out, n, start)
    finally:
        if w:
            w.stop_ev.set()
        ag.stop()
        relay.stop()


def test_group(tmp):
    """Three agents of a group (two relays, two coordinators) into one
    directory, a mixed write load throughout: each agent's plugin fails
    once, a kill -9 of one agent moves its partitions to the others. Every
    change in exactly one partition (two for a key move), SCN order per
    partition, none missing, none twice."""
    start = setup_db(ta.DB, ta.DDL)
    n = 6
    g = ta.Group(tmp, n)
    out = os.path.join(tmp, "out")
    os.makedirs(out, exist_ok=True)
    try:
        for name in ("a1", "a2", "a3"):
            g.agent(name, sink=plugin_sink(EXAMPLE, dir=out,
                                           fail_after_windows=15))
        g.wait_settled()
        g.wait_head()
        g.kill_under_load(before=1, ready=lambda: all(
            log_lines(a, "injected failure") for a in g.live()))
        ta.check(out, n, ta.expected(start))
        for a in g.agents.values():
            assert log_lines(a, "partition stops, retries"), \
                "%s: the failed partition was not retried: %s" % (
                    a.name, a.logtail())
    finally:
        g.close()


def test_outage(tmp):
    """A destination down under a write load: every partition stops and
    retries with backoff, no position or checkpoint moves; back up, every change
    arrives once, in order."""
    start = setup_db(ta.DB, ta.DDL)
    relay = Relay(tmp, "r1", 9302, start=setup_pos()).start()
    relay.wait_scn(master_scn())
    n = 4
    out = os.path.join(tmp, "out")
    os.makedirs(out, exist_ok=True)
    flag = os.path.join(tmp, "down")
    ag = ta.Agent(tmp, "a1", relays=[relay], partitions=n,
                  sink=plugin_sink(EXAMPLE, dir=out, down_while=flag))
    w = None

    def acked():
        """What the destination acknowledged: the plugin's positions and
        the agent's checkpoints."""
        pos = {}
        for f in os.listdir(out):
            if f.endswith(".pos"):
                with open(os.path.join(out, f)) as fh:
                    pos[f] = fh.read()
        return pos, ag.checkpoints()

    def failures(p):
        return len([l for l in log_lines(ag, "destination down")
                    if "partition=%d " % p in l])
    try:
        at_head(ag, n)
        w = ta.Writer()
        time.sleep(0.5)
        open(flag, "w").close()
        # a flush in flight when it went down may still land: compared
        # from each partition's first failure on
        ta.wait_for(lambda: all(failures(p) >= 1 for p in range(n)),
                    "every partition failing: " + ag.logtail(), 60)
        before = acked()
        # retried with backoff, and each retry fails again
        ta.wait_for(lambda: all(failures(p) >= 3 for p in range(n)),
                    "every partition failing three times: " + ag.logtail(),
                    60)
        assert acked() == before, "acknowledged while down: %s, %s" % (
            before, acked())
        os.unlink(flag)
        time.sleep(1)
        w.stop()
        w = None
        drained(ag, out, n, start)
    finally:
        if w:
            w.stop_ev.set()
        ag.stop()
        relay.stop()


TESTS = [test_refused, test_standalone, test_outage, test_group]

if __name__ == "__main__":
    sys.exit(run(TESTS, sys.argv[1:], prefix="herald-plugin-"))
