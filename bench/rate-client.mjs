#!/usr/bin/env node
/**
 * Constant-rate load client (wrk2-style open model), run by bench/run.mjs as a separate process:
 *
 *   node bench/rate-client.mjs <url> <rate per s> <seconds> [max in flight=256]
 *   node bench/rate-client.mjs <url> closed <seconds> <connections>
 *
 * Sends POST <url> with the bench telemetry point at a fixed rate for a bounded time, never more
 * than `max in flight` at once (a request that cannot be sent on schedule is counted as
 * `skipped`, not queued). Latency is measured from each request's scheduled time, so a stalled
 * server is not hidden (no coordinated omission). Prints one JSON line and exits; only 127.0.0.1.
 *
 * `closed` mode is the fallback for the overhead part when wrk is not installed: `connections`
 * loops each send the next request when the previous one answered (like wrk), for `seconds`.
 */
import { Agent, request } from 'node:http';

const [url, rateArg, secondsArg, maxArg] = process.argv.slice(2);
const target = new URL(url ?? '');
if (target.hostname !== '127.0.0.1') {
  console.error('rate-client: load only to 127.0.0.1');
  process.exit(2);
}
const closed = rateArg === 'closed';
const rate = closed ? 1 : Math.min(Number(rateArg), 5000);
const seconds = Math.min(Number(secondsArg), 600);
const maxInFlight = Math.min(Number(maxArg ?? 256), 1024);
if (!(rate > 0) || !(seconds > 0)) {
  console.error('usage: rate-client.mjs <url> <rate> <seconds> [max in flight]');
  process.exit(2);
}
const body = '{"voltage":28.1,"temperature":24.5,"gyro":0.02,"satellite_id":"bench-1"}';
const agent = new Agent({ keepAlive: true, maxSockets: maxInFlight });
const latencies = [];
const stats = { scheduled: 0, sent: 0, ok: 0, non2xx: 0, errors: 0, skipped: 0 };
let inFlight = 0;
let openTimer;
let finishing = false;
process.once('SIGTERM', () => finish());
const start = performance.now();

function send(scheduledAt, then) {
  inFlight++;
  stats.sent++;
  const req = request(
    { host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent, timeout: 10_000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
    (res) => {
      res.resume();
      res.on('end', () => {
        inFlight--;
        latencies.push(performance.now() - scheduledAt);
        if (res.statusCode >= 200 && res.statusCode < 300) stats.ok++;
        else stats.non2xx++;
        then?.();
      });
    },
  );
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', () => {
    inFlight--;
    stats.errors++;
    then?.();
  });
  req.end(body);
}

if (closed) {
  const loop = () => {
    if (finishing || performance.now() - start >= seconds * 1000) return;
    const at = performance.now();
    stats.scheduled++;
    send(at, loop);
  };
  for (let i = 0; i < maxInFlight; i++) loop();
  setTimeout(finish, seconds * 1000);
} else startOpen();

function startOpen() {
const interval = 1000 / rate;
const timer = (openTimer = setInterval(() => {
  const now = performance.now();
  const due = Math.min(Math.floor((now - start) / interval), Math.floor(rate * seconds));
  while (stats.scheduled < due) {
    const scheduledAt = start + stats.scheduled * interval;
    stats.scheduled++;
    if (inFlight >= maxInFlight) stats.skipped++;
    else send(scheduledAt);
  }
  if (now - start >= seconds * 1000) {
    clearInterval(timer);
    finish();
  }
}, 2));
}

function finish() {
  if (finishing) return;
  finishing = true;
  clearInterval(openTimer);
  const deadline = performance.now() + 10_000;
  const wait = setInterval(() => {
    if (inFlight > 0 && performance.now() < deadline) return;
    clearInterval(wait);
    latencies.sort((a, b) => a - b);
    const q = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : null);
    const elapsed = (performance.now() - start) / 1000;
    process.stdout.write(JSON.stringify({ ...stats, unfinished: inFlight, rate, seconds, elapsedSeconds: elapsed, achievedRate: (stats.ok + stats.non2xx) / seconds, rps: (stats.ok + stats.non2xx) / seconds, p50: q(0.5), p99: q(0.99) }) + '\n');
    agent.destroy();
    process.exit(0);
  }, 20);
}
