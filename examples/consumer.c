/*
 * consumer.c - an example herald consumer built on libherald alone.
 *
 * It subscribes to a source's relays (a fixed list, or found in
 * ZooKeeper), prints one compact line per row change:
 *
 *   insert shop.orders key(id=42) id=42 total=19.90 note="gift" paid=NULL
 *
 * and a line per window, table definition and statement; after each
 * window it acknowledges the window's SCN (a real consumer would do so
 * once the window is applied, and store the SCN to restart after it).
 *
 * Build it against an installed libherald:
 *
 *   cc consumer.c $(pkg-config --cflags --libs herald) -o consumer
 *
 * and run it with --help.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <herald/herald.h>

static const char usage[] =
    "Usage: consumer --relays HOST:PORT[,...] [options]\n"
    "       consumer --zk HOSTS --cluster NAME --source NAME [options]\n"
    "\n"
    "Prints a line for every row change of a herald source.\n"
    "\n"
    "Options:\n"
    "  --relays HOST:PORT[,...]  the relays to stream from, in this order\n"
    "  --zk HOSTS --cluster NAME --source NAME\n"
    "                            find the source's relays in ZooKeeper\n"
    "  --tables PATTERNS         comma list of db.table patterns ('*')\n"
    "  --from SCN|earliest|latest  where to start (default latest)\n"
    "  --max N                   exit 0 after N row changes\n"
    "  -h, --help                this help\n"
    "\n"
    "Exit status: 0 after --max changes, 1 on a fatal error, 2 bad usage.\n";

typedef struct {
  herald_client_t *client;
  uint64_t max, seen;
} app_t;

/* ------------------------------------------------------------- values */

static void print_bytes(const char *p, size_t n) {
  const size_t shown = n < 16 ? n : 16;
  printf("x'");
  for (size_t i = 0; i < shown; i++)
    printf("%02x", (unsigned char)p[i]);
  if (n > shown)
    printf("...'(%zu bytes)", n);
  else
    putchar('\'');
}

static void print_text(const char *p, size_t n) {
  putchar('"');
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)p[i];
    if (ch == '"' || ch == '\\')
      printf("\\%c", ch);
    else if (ch == '\n')
      printf("\\n");
    else if (ch < 0x20)
      printf("\\x%02x", ch);
    else
      putchar(ch); /* UTF-8 as it is */
  }
  putchar('"');
}

/* The shortest %g that reads back as the same number. */
static void print_double(double d, int is_float) {
  char buf[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, sizeof(buf), "%.*g", prec, d);
    double back = strtod(buf, NULL);
    if (is_float ? (float)back == (float)d : back == d)
      break;
  }
  fputs(buf, stdout);
}

/* One value, by its type. */
static void print_value(const herald_value_t *v) {
  size_t len;
  const char *p;
  switch (herald_value_type(v)) {
  case HERALD_V_ABSENT:
    printf("-"); /* not in this row image */
    break;
  case HERALD_V_NULL:
    printf("NULL");
    break;
  case HERALD_V_INT:
    printf("%" PRId64, herald_value_int(v));
    break;
  case HERALD_V_UINT:
    printf("%" PRIu64, herald_value_uint(v));
    break;
  case HERALD_V_FLOAT:
    print_double(herald_value_double(v), 1);
    break;
  case HERALD_V_DOUBLE:
    print_double(herald_value_double(v), 0);
    break;
  case HERALD_V_DECIMAL:
  case HERALD_V_TEMPORAL:
  case HERALD_V_JSON:
    p = herald_value_data(v, &len); /* as text, unquoted */
    fwrite(p, 1, len, stdout);
    break;
  case HERALD_V_STRING:
    p = herald_value_data(v, &len);
    print_text(p, len);
    break;
  case HERALD_V_JSON_DIFF:
    p = herald_value_data(v, &len);
    printf("json-diff:");
    fwrite(p, 1, len, stdout);
    break;
  default: /* HERALD_V_BYTES, HERALD_V_BADTEXT */
    p = herald_value_data(v, &len);
    print_bytes(p, len);
    break;
  }
}

/* " name=value" for each column of one image. */
static void print_image(const herald_change_t *ch, int image) {
  for (size_t i = 0; i < herald_change_columns(ch, image); i++) {
    const char *name;
    const herald_value_t *v = herald_change_value(ch, image, i, &name);
    printf("%s%s=", i ? " " : "", name);
    print_value(v);
  }
}

/* ---------------------------------------------------------- callbacks */

static int on_window_begin(void *ud, const herald_window_t *w) {
  (void)ud;
  printf("begin scn=%" PRIu64 " gtid=%s\n", herald_window_scn(w),
         *herald_window_gtid(w) ? herald_window_gtid(w) : "-");
  return 0;
}

static int on_schema(void *ud, const herald_schema_t *s) {
  (void)ud;
  printf("schema %s.%s version=%" PRIu32 ":", herald_schema_db(s),
         herald_schema_table(s), herald_schema_version(s));
  for (size_t i = 0; i < herald_schema_columns(s); i++) {
    const herald_column_t *col = herald_schema_column(s, i);
    printf(" %s %s%s", col->name, col->sql_type, col->pk_position ? " pk" : "");
    if (i + 1 < herald_schema_columns(s))
      putchar(',');
  }
  putchar('\n');
  return 0;
}

static int on_change(void *ud, const herald_window_t *w,
                     const herald_change_t *ch) {
  app_t *app = ud;
  (void)w;
  int op = herald_change_op(ch);
  printf("%s %s.%s key(",
         op == HERALD_OP_INSERT   ? "insert"
         : op == HERALD_OP_UPDATE ? "update"
         : op == HERALD_OP_READ   ? "read"
                                  : "delete",
         herald_change_db(ch), herald_change_table(ch));
  print_image(ch, HERALD_IMAGE_KEY);
  printf(") ");
  /* The row as it is now; a delete shows what was removed. */
  print_image(ch, op == HERALD_OP_DELETE ? HERALD_IMAGE_BEFORE
                                         : HERALD_IMAGE_AFTER);
  putchar('\n');
  if (app->max && ++app->seen >= app->max)
    return HERALD_ERR_CALLBACK; /* stop: herald_dispatch() returns it */
  return 0;
}

static int on_ddl(void *ud, const herald_window_t *w, const herald_ddl_t *d) {
  (void)ud;
  (void)w;
  /* the session's database, when it had one */
  const char *db = herald_ddl_db(d);
  printf("ddl %s%s%s\n", db, *db ? ": " : "", herald_ddl_statement(d));
  return 0;
}

static int on_window_end(void *ud, const herald_window_t *w) {
  app_t *app = ud;
  printf("end scn=%" PRIu64 "\n", herald_window_scn(w));
  fflush(stdout);
  /* Everything up to this window is applied (printed). */
  return herald_ack(app->client, herald_window_scn(w));
}

/* Relay failures the client works around, and the fatal error. */
static void on_error(void *ud, int status, const char *message) {
  (void)ud;
  fprintf(stderr, "consumer: %s: %s\n", herald_strerror(status), message);
}

/* --------------------------------------------------------------- main */

/* A command-line option and the conf key it sets. */
static const struct {
  const char *opt, *key;
} keys[] = {{"--relays", "relays"},   {"--zk", "zookeeper.hosts"},
            {"--cluster", "cluster"}, {"--source", "source"},
            {"--tables", "tables"},   {"--from", "start"}};

int main(int argc, char **argv) {
  herald_conf_t *conf = herald_conf_new();
  app_t app = {NULL, 0, 0};
  char err[512];
  int rc = 2;
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i];
    if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
      fputs(usage, stdout);
      rc = 0;
      goto out;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "consumer: %s: needs a value (see --help)\n", opt);
      goto out;
    }
    const char *val = argv[++i];
    if (strcmp(opt, "--max") == 0) {
      char *end;
      app.max = strtoull(val, &end, 10);
      if (*end || app.max == 0) {
        fprintf(stderr, "consumer: --max: '%s' is not a positive number\n",
                val);
        goto out;
      }
      continue;
    }
    size_t k = 0;
    while (k < sizeof(keys) / sizeof(keys[0]) && strcmp(keys[k].opt, opt))
      k++;
    if (k == sizeof(keys) / sizeof(keys[0])) {
      fprintf(stderr, "consumer: unknown option '%s' (see --help)\n", opt);
      goto out;
    }
    if (herald_conf_set(conf, keys[k].key, val, err, sizeof(err)) !=
        HERALD_OK) {
      fprintf(stderr, "consumer: %s: %s\n", opt, err);
      goto out;
    }
  }
  herald_conf_set(conf, "client_id", "example-consumer", NULL, 0);
  herald_conf_set_error_cb(conf, on_error, NULL);
  app.client = herald_client_new(conf, err, sizeof(err));
  if (app.client == NULL) {
    fprintf(stderr, "consumer: %s\n", err);
    goto out;
  }

  const herald_callbacks_t cb = {on_window_begin, on_schema, on_change, on_ddl,
                                 on_window_end};
  for (;;) {
    int s = herald_dispatch(app.client, &cb, &app, 1000);
    if (s == HERALD_OK || s == HERALD_TIMED_OUT)
      continue;
    fflush(stdout);
    if (s == HERALD_ERR_CALLBACK) { /* on_change: --max reached */
      rc = 0;
    } else {
      /* A fatal status (the error callback has said why), or the ack of
       * on_window_end refused. */
      fprintf(stderr, "consumer: stopped: %s\n", herald_strerror(s));
      rc = 1;
    }
    break;
  }
out:
  herald_client_free(app.client);
  herald_conf_free(conf);
  return rc;
}
