/**
 * wrk as the load generator (a separate process, bounded by `-d` and a kill timer), and the
 * parser of its `--latency` report.
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pinnedCommand } from './pin.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
export const POST_SCRIPT = join(HERE, 'post.lua');
/** The request body wrk sends (kept in step with post.lua). */
export const POST_BODY = '{"voltage":28.1,"temperature":24.5,"gyro":0.02,"satellite_id":"bench-1"}';

const UNIT_MS = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function toMillis(text) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2]] : NaN;
}

/** Parses wrk's output: requests/s, latency percentiles (ms), counts and errors. */
export function parseWrk(out) {
  const pct = {};
  for (const m of out.matchAll(/^\s+(50|75|90|99)%\s+(\S+)/gm)) pct[`p${m[1]}`] = toMillis(m[2]);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = sock ? sock.slice(1).reduce((n, x) => n + Number(x), 0) : 0;
  return { rps, requests, p50: pct.p50, p75: pct.p75, p90: pct.p90, p99: pct.p99, non2xx, socketErrors };
}

/** True when `wrk` is on PATH. */
export function haveWrk() {
  return new Promise((resolve) => execFile('wrk', ['--version'], (err, stdout, stderr) => resolve(/wrk/.test(String(stdout) + String(stderr)))));
}

/**
 * The bench's own setup of its load generator: when wrk is missing and this runs as root with
 * apt-get (our machines, CI), installs Debian's `wrk` package (bounded: 5 min). Resolves
 * `{ wrk: boolean, how }`; without wrk the bench falls back to its Node client, pinned away from
 * the measured workerd (./pin.mjs).
 */
export async function ensureWrk(log = () => {}) {
  if (await haveWrk()) return { wrk: true, how: 'found on PATH' };
  if (process.getuid?.() !== 0) return { wrk: false, how: 'wrk not found and not root: apt-get install -y wrk' };
  const run = (args) =>
    new Promise((resolve) =>
      execFile('apt-get', args, { timeout: 300_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, maxBuffer: 16 * 1024 * 1024 }, (error) => resolve(!error)),
    );
  log('wrk not found: installing Debian package wrk (apt-get)');
  if (!(await run(['install', '-y', '-qq', '--no-install-recommends', 'wrk']))) {
    await run(['update', '-qq']);
    await run(['install', '-y', '-qq', '--no-install-recommends', 'wrk']);
  }
  const ok = await haveWrk();
  return { wrk: ok, how: ok ? 'installed with apt-get (Debian package wrk)' : 'apt-get install wrk failed' };
}

/**
 * Runs wrk for `seconds` against `url` (POST script), `connections` connections, 1 thread; on
 * `cpus` (a taskset CPU list, see ./pin.mjs) when given.
 */
export function runWrk(url, { seconds, connections = 16, threads = 1, cpus = null }) {
  const [command, args] = pinnedCommand('wrk', [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '--latency', '-s', POST_SCRIPT, url], cpus);
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { timeout: (seconds + 20) * 1000, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && !stdout) return reject(new Error(`wrk failed: ${error.message} ${stderr}`));
        const parsed = parseWrk(String(stdout));
        if (!Number.isFinite(parsed.rps)) return reject(new Error(`wrk output not understood:\n${stdout}\n${stderr}`));
        resolve(parsed);
      },
    );
  });
}
