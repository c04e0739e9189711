// ZongJi as the latency peer: the same measure as relay_latency.c.
//
//   node zongji_latency.mjs COUNT RATE
// Env: MDB_PORT, MDB_SOCK, MDB_USER, MDB_PASSWORD (replication user).
// ZongJi streams from the end of the binlog; a writer connection in the
// same process makes COUNT single-row autocommit INSERTs into
// bench.latency at RATE per second. For each row: send time, commit-ack
// time, and the time ZongJi's row callback ran. Prints one JSON object with
// p50/p99/max of ack->output and send->output in milliseconds.
//
//   node zongji_latency.mjs --file PATH
// ZongJi as a sink, for relay_latency --follow PATH: no writer here; each
// row of bench.latency becomes a line {"after":{"run":R,"id":I}} appended
// to PATH (one write(2) per event, as herald's file sink does per window),
// and "ready" is printed once ZongJi streams. The writer and the clock are
// then relay_latency's, the same for ZongJi and herald: the in-process
// writer above takes its ack time in the event loop that runs the row
// callback, after it when both arrive together, which biases its
// ack->output low. Runs until killed.
import fs from 'node:fs';
import ZongJi from '@vlasky/zongji';
import mysql from 'mysql2';

const env = process.env;
if (process.argv[2] === '--file') {
  const fd = fs.openSync(process.argv[3], 'a');
  const zj = new ZongJi({ host: '127.0.0.1', port: Number(env.MDB_PORT),
    user: env.MDB_USER, password: env.MDB_PASSWORD });
  zj.on('binlog', (e) => {
    if (!e.rows || e.tableMap[e.tableId].tableName !== 'latency') return;
    let s = '';
    for (const r of e.rows) s += `{"after":{"run":${r.run},"id":${r.id}}}\n`;
    fs.writeSync(fd, s);
  });
  zj.on('error', (e) => { console.error('zongji:', e.stack); process.exit(1); });
  zj.on('ready', () => setTimeout(() => console.log('ready'), 500));
  process.on('SIGTERM', () => { zj.stop(); fs.closeSync(fd); process.exit(0); });
  zj.start({ serverId: 4344, startAtEnd: true, includeEvents: ['tablemap', 'writerows'],
    includeSchema: { bench: ['latency'] } });
} else {
  await inProcess();
}

async function inProcess() {
  const [count, rate] = [Number(process.argv[2] || 1000), Number(process.argv[3] || 1000)];
  const now = () => process.hrtime.bigint();
  const send = new Map(), ack = new Map(), out = new Map();

  const zj = new ZongJi({ host: '127.0.0.1', port: Number(env.MDB_PORT),
    user: env.MDB_USER, password: env.MDB_PASSWORD });
  const w = mysql.createConnection({ socketPath: env.MDB_SOCK, user: 'root' });
  const q = (sql, args) => new Promise((ok, bad) => w.query(sql, args, (e, r) => (e ? bad(e) : ok(r))));

  function pct(v, p) { return Number(v[Math.min(v.length - 1, Math.round(p * (v.length - 1)))]) / 1e6; }

  function finish() {
    const fa = [], fs = [];
    for (const [id, t] of out) {
      if (!ack.has(id)) continue;
      fa.push(t - ack.get(id)); fs.push(t - send.get(id));
    }
    fa.sort((a, b) => (a < b ? -1 : a > b)); fs.sort((a, b) => (a < b ? -1 : a > b));
    console.log(JSON.stringify({ peer: 'zongji', sent: count, seen: out.size, rate,
      ack_to_output_ms: { p50: pct(fa, 0.5), p99: pct(fa, 0.99), max: Number(fa[fa.length - 1]) / 1e6 },
      send_to_output_ms: { p50: pct(fs, 0.5), p99: pct(fs, 0.99), max: Number(fs[fs.length - 1]) / 1e6 } }));
    zj.stop(); w.end(); process.exit(out.size === count ? 0 : 1);
  }

  let run = 0;
  zj.on('binlog', (e) => {
    if (!e.rows || e.tableMap[e.tableId].tableName !== 'latency') return;
    const t = now();
    for (const r of e.rows) if (r.run === run && !out.has(r.id)) out.set(r.id, t);
  });
  zj.on('error', (e) => { console.error('zongji:', e.stack); process.exit(1); });

  await q('CREATE DATABASE IF NOT EXISTS bench');
  await q('CREATE TABLE IF NOT EXISTS bench.latency (run INT NOT NULL, id INT NOT NULL, PRIMARY KEY (run, id))');
  run = (await q('SELECT COALESCE(MAX(run), 0) + 1 AS r FROM bench.latency'))[0].r;
  zj.on('ready', async () => {
    await new Promise((ok) => setTimeout(ok, 500));
    const gap = 1e9 / rate, t0 = now();
    for (let i = 0; i < count; i++) {
      const wait = i * gap - Number(now() - t0);
      if (wait > 0) await new Promise((ok) => setTimeout(ok, wait / 1e6));
      send.set(i, now());
      await q('INSERT INTO bench.latency VALUES (?, ?)', [run, i]);
      ack.set(i, now());
    }
    // A row's event may arrive before its commit ack: finish only when the
    // writer is done and every row was seen (or 10 s have passed).
    const end = Date.now() + 10000;
    while (out.size < count && Date.now() < end) await new Promise((ok) => setTimeout(ok, 5));
    finish();
  });
  zj.start({ serverId: 4343, startAtEnd: true, includeEvents: ['tablemap', 'writerows'],
    includeSchema: { bench: ['latency'] } });
}
