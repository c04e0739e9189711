/* Unit tests of the config loader: typed values, defaults, and one exact
 * FILE:LINE:COLUMN message for every kind of mistake. */
#include <string.h>

#include "hd_check.h"
#include "hd_confdefs.h"
#include "hd_err.h"

static const char relay_ok[] = "cluster: c1\n"
                               "zookeeper:\n"
                               "  hosts: [127.0.0.1:2181, '[::1]:2182']\n"
                               "relay:\n"
                               "  id: r1\n"
                               "  listen: 127.0.0.1:7400\n"
                               "  http: 127.0.0.1:7480\n"
                               "  data_dir: /tmp/x\n"
                               "  buffer_bytes: 64MiB\n"
                               "  retention: 1h30m\n"
                               "  fsync: window\n"
                               "source:\n"
                               "  name: s1\n"
                               "  host: 127.0.0.1\n"
                               "  user: repl\n"
                               "  password: secret\n"
                               "  server_id: 4294967295\n"
                               "  start: binlog.000003:120\n"
                               "  tables: [shop.*, '*.audit']\n";

/* Loads text as a relay config; returns rc and leaves the message in err. */
static int load(const char *text, hd_relay_conf_t *c, char *err) {
  return hd_config_load_string("t.yaml", text, strlen(text), &hd_relay_schema,
                               c, err, 512);
}

START_TEST(relay_values) {
  hd_relay_conf_t c;
  char err[512];
  ck_assert_int_eq(load(relay_ok, &c, err), 0);
  ck_assert_str_eq(c.cluster, "c1");
  ck_assert_str_eq(c.zk.hosts, "127.0.0.1:2181,[::1]:2182");
  ck_assert_uint_eq(c.zk.session_timeout_ms, 10000); /* default */
  ck_assert_str_eq(c.relay.listen.host, "127.0.0.1");
  ck_assert_uint_eq(c.relay.listen.port, 7400);
  ck_assert_uint_eq(c.relay.buffer_bytes, 64u << 20);
  ck_assert_uint_eq(c.relay.retention_ms, 5400000);
  ck_assert_int_eq(c.relay.fsync, HD_FSYNC_WINDOW);
  ck_assert_int_eq(c.relay.max_connections, 1024);
  /* advertise defaults to listen; the server's limits to their defaults */
  ck_assert_str_eq(c.relay.advertise.host, "127.0.0.1");
  ck_assert_uint_eq(c.relay.advertise.port, 7400);
  ck_assert_uint_eq(c.relay.handshake_timeout_ms, 10000);
  ck_assert_uint_eq(c.relay.inflight_bytes, 4u << 20);
  ck_assert_uint_eq(c.relay.disk_read_budget, 32u << 20);
  ck_assert_uint_eq(c.relay.stall_timeout_ms, 10000);
  ck_assert_int_eq(c.source.port, 3306);
  ck_assert_int_eq(c.source.server_id, 4294967295LL);
  ck_assert_int_eq(c.source.start.kind, HD_START_FILEPOS);
  ck_assert_str_eq(c.source.start.file, "binlog.000003");
  ck_assert_uint_eq(c.source.start.pos, 120);
  /* The file's list replaces the default "*.*". */
  ck_assert_uint_eq(c.source.tables.n, 2);
  ck_assert_str_eq(c.source.tables.v[0], "shop.*");
  ck_assert_str_eq(c.source.tables.v[1], "*.audit");
  hd_config_free(&hd_relay_schema, &c);
}
END_TEST

/* Replaces the first occurrence of `from` in relay_ok and loads it. */
static void expect_error(const char *from, const char *to, const char *msg) {
  char text[2048], err[512];
  const char *at = strstr(relay_ok, from);
  ck_assert_msg(at != NULL, "fixture lacks '%s'", from);
  size_t pre = (size_t)(at - relay_ok);
  snprintf(text, sizeof(text), "%.*s%s%s", (int)pre, relay_ok, to,
           at + strlen(from));
  hd_relay_conf_t c;
  ck_assert_int_eq(load(text, &c, err), HD_ECONFIG);
  ck_assert_str_eq(err, msg);
  hd_config_free(&hd_relay_schema, &c);
}

START_TEST(relay_errors) {
  expect_error("64MiB", "64XB",
               "t.yaml:9:17: relay.buffer_bytes: expected a size such as "
               "512KiB, 256MiB or 1GiB, got '64XB'");
  expect_error("64MiB", "512KiB",
               "t.yaml:9:17: relay.buffer_bytes: below the minimum of 1MiB");
  expect_error("1h30m", "90",
               "t.yaml:10:14: relay.retention: expected a duration such as "
               "500ms, 30s, 72h or 1h30m, got '90'");
  expect_error("fsync: window", "fsync: always",
               "t.yaml:11:10: relay.fsync: expected one of window, interval, "
               "none, got 'always'");
  expect_error("4294967295", "4294967296",
               "t.yaml:17:14: source.server_id: 4294967296 is out of range "
               "[1, 4294967295]");
  expect_error("4294967295", "x1",
               "t.yaml:17:14: source.server_id: expected an integer, got "
               "'x1'");
  expect_error("127.0.0.1:7400", "127.0.0.1:0",
               "t.yaml:6:11: relay.listen: expected host:port (port 1-65535, "
               "IPv6 in brackets), got '127.0.0.1:0'");
  expect_error("  data_dir: /tmp/x\n", "  data_dir: /tmp/x\n  bogus: 1\n",
               "t.yaml:9:3: unknown key 'relay.bogus' in a relay config");
  expect_error("  id: r1\n", "  id: r1\n  id: r2\n",
               "t.yaml:6:3: duplicate key 'relay.id'");
  expect_error("  id: r1\n", "", "t.yaml:4:1: missing required key 'relay.id'");
  expect_error("cluster: c1\n", "",
               "t.yaml:1:1: missing required key 'cluster'");
  expect_error("  password: secret\n", "",
               "t.yaml:12:1: source: set exactly one of password and "
               "password_file");
  expect_error("  password: secret\n",
               "  password: secret\n  password_file: /p\n",
               "t.yaml:17:3: source: set exactly one of password and "
               "password_file");
  expect_error("binlog.000003:120", "binlog.000003:3",
               "t.yaml:18:10: source.start: expected earliest, latest, "
               "FILE:POS (e.g. binlog.000003:4) or a GTID (0-1-42 or "
               "uuid:1-5), got 'binlog.000003:3'");
  expect_error("shop.*", "shop",
               "t.yaml:19:3: source.tables: 'shop' is not a db.table pattern "
               "(use '*' as wildcard, e.g. shop.* or *.orders)");
  expect_error("id: r1", "id: r/1",
               "t.yaml:5:3: relay.id: 'r/1' may hold only letters, digits, "
               "'-', '_' and '.'");
  expect_error("id: r1", "id: [a]",
               "t.yaml:5:7: relay.id: expected a scalar, got a list");
  expect_error("id: r1", "id:", "t.yaml:5:6: relay.id: missing value");
  expect_error("relay:\n", "relay: 5\nx:\n",
               "t.yaml:4:8: relay: expected a mapping, got a scalar");
  expect_error("127.0.0.1:2181, ", "127.0.0.1, ",
               "t.yaml:3:11: zookeeper.hosts: '127.0.0.1' is not host:port");
  expect_error("  listen: 127.0.0.1:7400\n  http: 127.0.0.1:7480\n",
               "  listen: 127.0.0.1:7400\n  http: 127.0.0.1:7400\n",
               "t.yaml:7:3: relay.http: same address as relay.listen");
}
END_TEST

/* relay_ok with its relay: section's listen line replaced by `lines`. */
static int load_listen(const char *lines, hd_relay_conf_t *c, char *err) {
  char text[2048];
  const char *from = "  listen: 127.0.0.1:7400\n";
  const char *at = strstr(relay_ok, from);
  snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - relay_ok), relay_ok,
           lines, at + strlen(from));
  return load(text, c, err);
}

START_TEST(relay_advertise) {
  hd_relay_conf_t c;
  char err[512];
  /* A wildcard listen with zookeeper needs advertise... */
  ck_assert_int_eq(load_listen("  listen: 0.0.0.0:7400\n", &c, err),
                   HD_ECONFIG);
  ck_assert_str_eq(err, "t.yaml:6:3: relay.listen: 0.0.0.0:7400 is a wildcard "
                        "address, which no client can dial: with zookeeper, "
                        "set relay.advertise to the host:port clients use");
  hd_config_free(&hd_relay_schema, &c);
  ck_assert_int_eq(load_listen("  listen: '[::]:7400'\n", &c, err), HD_ECONFIG);
  ck_assert_str_eq(err, "t.yaml:6:3: relay.listen: [::]:7400 is a wildcard "
                        "address, which no client can dial: with zookeeper, "
                        "set relay.advertise to the host:port clients use");
  hd_config_free(&hd_relay_schema, &c);
  /* ...and with it, it is what the relay registers. */
  ck_assert_int_eq(load_listen("  listen: 0.0.0.0:7400\n"
                               "  advertise: relay1.example.com:17400\n",
                               &c, err),
                   0);
  ck_assert_str_eq(c.relay.advertise.host, "relay1.example.com");
  ck_assert_uint_eq(c.relay.advertise.port, 17400);
  ck_assert_str_eq(c.relay.listen.host, "0.0.0.0");
  hd_config_free(&hd_relay_schema, &c);
  /* Without zookeeper a wildcard listen is fine, and advertised as is. */
  char text[2048];
  const char *zk = strstr(relay_ok, "zookeeper:");
  const char *rel = strstr(relay_ok, "relay:");
  snprintf(text, sizeof(text), "%.*s%s", (int)(zk - relay_ok), relay_ok, rel);
  char *l = strstr(text, "127.0.0.1:7400");
  memcpy(l, "0.0.0.0:7400  ", 14);
  ck_assert_int_eq(load(text, &c, err), 0);
  ck_assert_str_eq(c.relay.advertise.host, "0.0.0.0");
  hd_config_free(&hd_relay_schema, &c);
  /* An advertise address is one a client can dial. */
  ck_assert_int_eq(load_listen("  listen: 127.0.0.1:7400\n"
                               "  advertise: 0.0.0.0:7400\n",
                               &c, err),
                   HD_ECONFIG);
  ck_assert_str_eq(err, "t.yaml:7:3: relay.advertise: 0.0.0.0:7400 is a "
                        "wildcard address, which no client can dial: give "
                        "the host name or address clients use");
  hd_config_free(&hd_relay_schema, &c);
  ck_assert_int_eq(load_listen("  listen: 127.0.0.1:7400\n"
                               "  advertise: 'a\"b:7400'\n",
                               &c, err),
                   HD_ECONFIG);
  ck_assert_str_eq(err, "t.yaml:7:3: relay.advertise: 'a\"b' is not a host "
                        "name or IP address");
  hd_config_free(&hd_relay_schema, &c);
  ck_assert_int_eq(load_listen("  listen: 127.0.0.1:7400\n"
                               "  advertise: relay1\n",
                               &c, err),
                   HD_ECONFIG);
  ck_assert_str_eq(err, "t.yaml:7:14: relay.advertise: expected host:port "
                        "(port 1-65535, IPv6 in brackets), got 'relay1'");
  hd_config_free(&hd_relay_schema, &c);
}
END_TEST

START_TEST(relay_server_limits) {
  hd_relay_conf_t c;
  char err[512];
  ck_assert_int_eq(load_listen("  listen: 127.0.0.1:7400\n"
                               "  handshake_timeout: 1s\n"
                               "  inflight_bytes: 256KiB\n"
                               "  disk_read_budget: 1GiB\n"
                               "  stall_timeout: 2m\n",
                               &c, err),
                   0);
  ck_assert_uint_eq(c.relay.handshake_timeout_ms, 1000);
  ck_assert_uint_eq(c.relay.inflight_bytes, 256u << 10);
  ck_assert_uint_eq(c.relay.disk_read_budget, 1u << 30);
  ck_assert_uint_eq(c.relay.stall_timeout_ms, 120000);
  hd_config_free(&hd_relay_schema, &c);
  static const struct {
    const char *line, *msg;
  } bad[] = {
      {"  handshake_timeout: 50ms\n",
       "t.yaml:7:22: relay.handshake_timeout: below the minimum of 100ms"},
      {"  handshake_timeout: 11m\n",
       "t.yaml:7:22: relay.handshake_timeout: above the maximum of 10m"},
      {"  inflight_bytes: 1KiB\n",
       "t.yaml:7:19: relay.inflight_bytes: below the minimum of 64KiB"},
      {"  inflight_bytes: 2GiB\n",
       "t.yaml:7:19: relay.inflight_bytes: above the maximum of 1GiB"},
      {"  disk_read_budget: 512KiB\n",
       "t.yaml:7:21: relay.disk_read_budget: below the minimum of 1MiB"},
      {"  stall_timeout: 2h\n",
       "t.yaml:7:18: relay.stall_timeout: above the maximum of 1h"},
      {"  stall_timeout: soon\n",
       "t.yaml:7:18: relay.stall_timeout: expected a duration such as "
       "500ms, 30s, 72h or 1h30m, got 'soon'"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char lines[256];
    snprintf(lines, sizeof(lines), "  listen: 127.0.0.1:7400\n%s", bad[i].line);
    ck_assert_int_eq(load_listen(lines, &c, err), HD_ECONFIG);
    ck_assert_str_eq(err, bad[i].msg);
    hd_config_free(&hd_relay_schema, &c);
  }
}
END_TEST

START_TEST(yaml_syntax) {
  hd_relay_conf_t c;
  char err[512];
  ck_assert_int_eq(load("cluster: x\nrelay: [\n", &c, err), HD_ECONFIG);
  ck_assert_str_eq(err, "t.yaml:3:1: YAML syntax error: did not find expected "
                        "node content while parsing a flow node");
  hd_config_free(&hd_relay_schema, &c);
  ck_assert_int_eq(load("a: 'unterminated\n", &c, err), HD_ECONFIG);
  ck_assert_msg(strncmp(err, "t.yaml:2:1: YAML syntax error: ", 31) == 0,
                "got: %s", err);
  hd_config_free(&hd_relay_schema, &c);
  ck_assert_int_eq(load("", &c, err), HD_ECONFIG);
  ck_assert_str_eq(err, "t.yaml:1:1: the file is empty");
  ck_assert_int_eq(load("- a\n- b\n", &c, err), HD_ECONFIG);
  ck_assert_str_eq(err, "t.yaml:1:1: the top level must be a mapping of "
                        "keys, got a list");
  ck_assert_int_eq(load("a: 1\n---\nb: 2\n", &c, err), HD_ECONFIG);
  ck_assert_str_eq(err, "t.yaml:3:1: only one YAML document is allowed");
  hd_config_free(&hd_relay_schema, &c);
}
END_TEST

START_TEST(aliases_refused) {
  hd_relay_conf_t c;
  char err[512];
  const char *t = "cluster: &a c1\nsource:\n  name: *a\n";
  ck_assert_int_eq(load(t, &c, err), HD_ECONFIG);
  ck_assert_str_eq(err,
                   "t.yaml:3:3: source.name: YAML aliases are not supported in "
                   "herald configs");
  hd_config_free(&hd_relay_schema, &c);
}
END_TEST

START_TEST(newline_in_value_stays_one_line) {
  hd_relay_conf_t c;
  char err[512];
  ck_assert_int_eq(load("relay:\n  id: \"a\\nb\"\n", &c, err), HD_ECONFIG);
  ck_assert_ptr_null(strchr(err, '\n'));
  hd_config_free(&hd_relay_schema, &c);
}
END_TEST

START_TEST(start_syntax) {
  hd_start_t s;
  ck_assert_int_eq(hd_parse_start("earliest", &s), 0);
  ck_assert_int_eq(s.kind, HD_START_EARLIEST);
  ck_assert_int_eq(hd_parse_start("latest", &s), 0);
  ck_assert_int_eq(s.kind, HD_START_LATEST);
  ck_assert_int_eq(hd_parse_start("0-1-42", &s), 0);
  ck_assert_int_eq(s.kind, HD_START_GTID);
  ck_assert_int_eq(hd_parse_start("0-1-42,1-2-7", &s), 0);
  ck_assert_int_eq(
      hd_parse_start("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7", &s), 0);
  ck_assert_int_eq(s.kind, HD_START_GTID);
  ck_assert_int_eq(hd_parse_start("mysql-bin.000001:4", &s), 0);
  ck_assert_int_eq(s.kind, HD_START_FILEPOS);
  ck_assert_int_lt(hd_parse_start("0-1", &s), 0);
  ck_assert_int_lt(hd_parse_start("bin:4294967296", &s), 0);
  ck_assert_int_lt(hd_parse_start("b/in:4", &s), 0);
  ck_assert_int_lt(hd_parse_start("", &s), 0);
}
END_TEST

START_TEST(agent_and_coordinator) {
  hd_agent_conf_t a;
  hd_coord_conf_t co;
  char err[512];
  const char *at = "cluster: c\nzookeeper: {hosts: 'h:1'}\n"
                   "agent: {id: a, group: g, source: s, partitions: 8}\n"
                   "sink: {type: file}\n";
  ck_assert_int_eq(hd_config_load_string("a.yaml", at, strlen(at),
                                         &hd_agent_schema, &a, err, 512),
                   HD_ECONFIG);
  ck_assert_str_eq(err, "a.yaml:4:8: sink: type file needs 'path'");
  hd_config_free(&hd_agent_schema, &a);
  const char *ct = "cluster: c\ncoordinator: {id: c1, http: '127.0.0.1:1'}\n";
  ck_assert_int_eq(hd_config_load_string("c.yaml", ct, strlen(ct),
                                         &hd_coord_schema, &co, err, 512),
                   HD_ECONFIG);
  ck_assert_str_eq(err, "c.yaml:1:1: missing required key 'zookeeper.hosts'");
  hd_config_free(&hd_coord_schema, &co);
}
END_TEST

/* zookeeper.auth_file: a path kept as given (read at start, not at
 * load), and only with zookeeper.hosts. */
START_TEST(zk_auth_file) {
  hd_coord_conf_t co;
  char err[512];
  const char *ok = "cluster: c\nzookeeper: {hosts: 'h:1', auth_file: "
                   "/etc/herald/zk.auth}\n"
                   "coordinator: {id: c1, http: '127.0.0.1:1'}\n";
  ck_assert_int_eq(hd_config_load_string("c.yaml", ok, strlen(ok),
                                         &hd_coord_schema, &co, err, 512),
                   0);
  ck_assert_str_eq(co.zk.auth_file, "/etc/herald/zk.auth");
  hd_config_free(&hd_coord_schema, &co);
  hd_agent_conf_t a;
  const char *alone = "zookeeper: {auth_file: /z}\n"
                      "agent: {id: a, group: g, source: s, partitions: 2, "
                      "relays: 'h:1', checkpoint_file: /c}\n"
                      "sink: {type: stdout}\n";
  ck_assert_int_eq(hd_config_load_string("a.yaml", alone, strlen(alone),
                                         &hd_agent_schema, &a, err, 512),
                   HD_ECONFIG);
  ck_assert_ptr_nonnull(strstr(err, "zookeeper"));
  hd_config_free(&hd_agent_schema, &a);
}
END_TEST

/* The database sinks' keys: a valid mysql sink with renames, and each
 * refusal names its key. */
static int load_agent(const char *sink, hd_agent_conf_t *a, char *err,
                      int partitions) {
  char text[1024];
  snprintf(text, sizeof(text),
           "agent: {id: a, group: g, source: s, partitions: %d, relays: "
           "'h:1'}\n%s",
           partitions, sink);
  return hd_config_load_string("a.yaml", text, strlen(text), &hd_agent_schema,
                               a, err, 512);
}

START_TEST(agent_db_sinks) {
  hd_agent_conf_t a;
  char err[512];
  ck_assert_int_eq(load_agent("sink:\n  type: mysql\n  host: db\n  user: u\n"
                              "  password: p\n  tables:\n    shop.a: copy.b\n"
                              "    shop.c: x.c\n  batch_rows: 5\n",
                              &a, err, 8),
                   0);
  ck_assert_int_eq(a.sink.type, HD_SINK_MYSQL);
  ck_assert_int_eq(a.sink.port, 3306);
  ck_assert_uint_eq(a.sink.tables.n, 4);
  ck_assert_str_eq(a.sink.tables.v[0], "shop.a");
  ck_assert_str_eq(a.sink.tables.v[1], "copy.b");
  ck_assert_str_eq(a.sink.tables.v[3], "x.c");
  ck_assert_str_eq(a.sink.offsets_table, "herald.herald_offsets");
  ck_assert_int_eq(a.sink.batch_rows, 5);
  ck_assert_int_eq(a.sink.schema_changes, HD_SCHEMA_EVOLVE);
  hd_config_free(&hd_agent_schema, &a);
  static const struct {
    const char *sink;
    int partitions;
    const char *err;
  } bad[] = {
      {"sink: {type: mysql, user: u}\n", 8,
       "a.yaml:2:8: sink: type mysql needs 'host' (or 'socket')"},
      {"sink: {type: mysql, host: h, user: u, dsn: x}\n", 8,
       "a.yaml:2:39: sink.dsn: only used with type postgresql"},
      {"sink: {type: postgresql, dsn: x, host: h}\n", 8,
       "a.yaml:2:34: sink.host: only used with type mysql"},
      {"sink: {type: postgresql}\n", 8,
       "a.yaml:2:8: sink: type postgresql needs 'dsn'"},
      {"sink: {type: file, path: p, tables: {a.b: c.d}}\n", 8,
       "a.yaml:2:29: sink.tables: only used with the database sinks"},
      {"sink: {type: mysql, host: h, user: u, tables: {ab: c.d}}\n", 8,
       "a.yaml:2:39: sink.tables: 'ab' is not db.table"},
      {"sink: {type: mysql, host: h, user: u, tables: {a.b: c.d, a.b: e.f}}\n",
       8, "a.yaml:2:58: sink.tables: 'a.b' twice"},
      {"sink: {type: mysql, host: h, user: u, tables: [a]}\n", 8,
       "a.yaml:2:47: sink.tables: expected a mapping, got a list"},
      {"sink: {type: mysql, host: h, user: u, ddl: apply}\n", 8,
       "a.yaml:2:39: sink.ddl: apply needs agent.partitions 1 (a statement "
       "must come after every row before it, and partitions go at their own "
       "pace)"},
      {"sink: {type: postgresql, dsn: x, ddl: apply}\n", 1,
       "a.yaml:2:34: sink.ddl: apply needs a mysql sink (a MariaDB or MySQL "
       "statement means nothing to PostgreSQL)"},
      {"sink: {type: mysql, host: h, user: u, ddl: apply, database: d}\n", 1,
       "a.yaml:2:39: sink.ddl: apply cannot rename: the statements name the "
       "source's tables (unset sink.database and sink.tables)"},
      {"sink: {type: mysql, host: h, user: u, offsets_table: nodot}\n", 8,
       "a.yaml:2:39: sink.offsets_table: 'nodot' is not db.table"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ck_assert_int_eq(load_agent(bad[i].sink, &a, err, bad[i].partitions),
                     HD_ECONFIG);
    ck_assert_msg(strcmp(err, bad[i].err) == 0, "case %zu: got '%s'", i, err);
    hd_config_free(&hd_agent_schema, &a);
  }
}
END_TEST

/* source.tls and the mysql sink's sink.tls: the files only with TLS on, a
 * certificate only with its key; sink.ca_file and sink.tls_verify are the
 * http sink's keys too. */
START_TEST(tls_keys) {
  hd_relay_conf_t c;
  char err[512], text[2048];
  snprintf(text, sizeof(text), "%s  tls: true\n  ca_file: /ca.pem\n", relay_ok);
  ck_assert_int_eq(load(text, &c, err), 0);
  ck_assert_int_eq(c.source.tls, 1);
  ck_assert_int_eq(c.source.tls_verify, 1);
  ck_assert_str_eq(c.source.ca_file, "/ca.pem");
  hd_config_free(&hd_relay_schema, &c);
  ck_assert_int_eq(load(relay_ok, &c, err), 0);
  ck_assert_int_eq(c.source.tls, 0);
  hd_config_free(&hd_relay_schema, &c);
  expect_error("  tables: [shop.*, '*.audit']\n",
               "  tables: [shop.*, '*.audit']\n  ca_file: /ca.pem\n",
               "t.yaml:20:3: source.ca_file: only used with source.tls true");
  expect_error("  tables: [shop.*, '*.audit']\n",
               "  tables: [shop.*, '*.audit']\n  tls_verify: false\n",
               "t.yaml:20:3: source.tls_verify: only used with source.tls "
               "true");
  expect_error("  tables: [shop.*, '*.audit']\n",
               "  tables: [shop.*, '*.audit']\n  tls: true\n"
               "  cert_file: /c.pem\n",
               "t.yaml:21:3: source.cert_file and source.key_file: set both "
               "or neither");
  hd_agent_conf_t a;
  ck_assert_int_eq(load_agent("sink: {type: mysql, host: h, user: u, tls: "
                              "true, ca_file: /ca, tls_verify: false, "
                              "cert_file: /c, key_file: /k}\n",
                              &a, err, 8),
                   0);
  ck_assert_int_eq(a.sink.tls, 1);
  ck_assert_int_eq(a.sink.tls_verify, 0);
  ck_assert_str_eq(a.sink.key_file, "/k");
  hd_config_free(&hd_agent_schema, &a);
  static const struct {
    const char *sink, *err;
  } bad[] = {
      {"sink: {type: mysql, host: h, user: u, ca_file: /ca}\n",
       "a.yaml:2:39: sink.ca_file: only used with sink.tls true"},
      {"sink: {type: file, path: p, ca_file: /ca}\n",
       "a.yaml:2:29: sink.ca_file: only used with type http or mysql"},
      {"sink: {type: postgresql, dsn: x, tls: true}\n",
       "a.yaml:2:34: sink.tls, sink.cert_file, sink.key_file: only used with "
       "type mysql"},
      {"sink: {type: mysql, host: h, user: u, tls: true, key_file: /k}\n",
       "a.yaml:2:50: sink.cert_file and sink.key_file: set both or neither"},
      {"sink: {type: mysql, socket: /s, user: u, tls: true}\n",
       "a.yaml:2:42: sink.tls: not with sink.socket (a Unix socket does not "
       "leave the machine)"},
      /* Another sink's key set to its default is still another sink's:
         refused as any other value. */
      {"sink: {type: file, path: p, tls_verify: true}\n",
       "a.yaml:2:29: sink.tls_verify: only used with type http or mysql"},
      {"sink: {type: file, path: p, subject: 'herald.{db}.{table}'}\n",
       "a.yaml:2:29: sink.subject: only used with type nats"},
      {"sink: {type: file, path: p, topic: 'herald.{db}.{table}'}\n",
       "a.yaml:2:29: sink.topic: only used with type kafka"},
      {"sink: {type: file, path: p, index: '{db}.{table}'}\n",
       "a.yaml:2:29: sink.index: only used with type http"},
      {"sink: {type: file, path: p, key: '{db}:{table}:{pk}'}\n",
       "a.yaml:2:29: sink.key: only used with type redis"},
      {"sink: {type: file, path: p, stream: 'herald:{db}:{table}'}\n",
       "a.yaml:2:29: sink.stream: only used with type redis"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ck_assert_int_eq(load_agent(bad[i].sink, &a, err, 8), HD_ECONFIG);
    ck_assert_msg(strcmp(err, bad[i].err) == 0, "case %zu: got '%s'", i, err);
    hd_config_free(&hd_agent_schema, &a);
  }
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("config");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, relay_values);
  tcase_add_test(tc, relay_errors);
  tcase_add_test(tc, relay_advertise);
  tcase_add_test(tc, relay_server_limits);
  tcase_add_test(tc, yaml_syntax);
  tcase_add_test(tc, aliases_refused);
  tcase_add_test(tc, newline_in_value_stays_one_line);
  tcase_add_test(tc, start_syntax);
  tcase_add_test(tc, agent_and_coordinator);
  tcase_add_test(tc, zk_auth_file);
  tcase_add_test(tc, tls_keys);
  tcase_add_test(tc, agent_db_sinks);
  suite_add_tcase(s, tc);
  return s;
}

HD_CHECK_MAIN(suite)
