#!/usr/bin/env node
/**
 * `npm start`: the whole local stack in the foreground, no Docker.
 *
 *   Worker      http://127.0.0.1:8787   (npx wrangler dev)
 *   Collector   OTLP gRPC 127.0.0.1:4317, OTLP/HTTP http://127.0.0.1:4318,
 *               health http://127.0.0.1:13133, own metrics http://127.0.0.1:8888/metrics
 *   Prometheus  http://127.0.0.1:9090   (remote-write receiver; TSDB in .stack/prometheus)
 *   Jaeger      http://127.0.0.1:16686  (OTLP in on 127.0.0.1:4327/4328; in-memory)
 *   Alertmanager http://127.0.0.1:9093  (alerts of prometheus/rules/; data in .stack/alertmanager)
 *   Alert webhook http://127.0.0.1:9095/alerts (scripts/alert-webhook.mjs: prints each alert)
 *
 * Steps: build what is missing (collector/build.sh, scripts/build-backends.sh; both cached under
 * ~/.cache/astraguard), create .dev.vars from .dev.vars.example if missing, read
 * OTEL_EXPORTER_OTLP_TOKEN from .dev.vars (the collector then requires it; collector/auth.yaml),
 * check the ports are free, start the six processes with `concurrently` (prefixed log lines;
 * when one exits the others are stopped; Ctrl-C stops all; it kills only the process trees it
 * started, by pid), wait until each answers over HTTP, print the URLs.
 *
 * Options: `--skip-build` (use the cached binaries; fail if missing), `--no-worker` (backends
 * only, e.g. to run `wrangler dev` yourself).
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, access } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { concurrently } from 'concurrently';

const execFileAsync = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const withWorker = !args.has('--no-worker');
const READY_TIMEOUT_MILLIS = 180_000;

const say = (message) => process.stdout.write(`[start] ${message}\n`);
const fail = (message) => {
  process.stderr.write(`[start] ERROR: ${message}\n`);
  process.exit(1);
};

/** Runs a build script; its progress (stderr) is shown, its stdout returned. */
async function runBuild(script, extraArgs = []) {
  say(`bash ${script} ${extraArgs.join(' ')}`.trim());
  const child = execFileAsync('bash', [join(root, script), ...extraArgs], { cwd: root, maxBuffer: 16 << 20 });
  child.child.stderr.pipe(process.stderr);
  try {
    return (await child).stdout;
  } catch (error) {
    fail(`${script} failed (exit ${error.code ?? '?'}); see its output above`);
  }
}

/** KEY=VALUE lines of a dotenv-style file (comments and blanks skipped, quotes removed). */
function parseDotenv(text) {
  const vars = {};
  for (const line of text.split('\n')) {
    const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!match || line.trimStart().startsWith('#')) continue;
    vars[match[1]] = match[2].replace(/^(['"])(.*)\1$/, '$2');
  }
  return vars;
}

function portFree(port) {
  return new Promise((resolvePort) => {
    const server = createServer();
    server.once('error', () => resolvePort(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolvePort(true)));
  });
}

let stopping = false;
let readinessFailed = false;

async function waitHttp(url, accept, timeoutMillis) {
  const deadline = Date.now() + timeoutMillis;
  while (Date.now() < deadline && !stopping) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (accept(response.status)) return response.status;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(stopping ? `${url}: stack stopping` : `${url} not ready after ${timeoutMillis / 1000}s`);
}

const q = (s) => `'${String(s).replaceAll("'", `'\\''`)}'`; // POSIX shell quoting

// --- 1. secrets ------------------------------------------------------------------------------
const devVarsPath = join(root, '.dev.vars');
try {
  await access(devVarsPath);
} catch {
  await copyFile(join(root, '.dev.vars.example'), devVarsPath);
  say('created .dev.vars from .dev.vars.example (change the tokens in it)');
}
const devVars = parseDotenv(await readFile(devVarsPath, 'utf8'));
const otlpToken = devVars.OTEL_EXPORTER_OTLP_TOKEN ?? '';
if (!otlpToken) say('warning: OTEL_EXPORTER_OTLP_TOKEN is empty in .dev.vars: the collector accepts OTLP without a token');

// --- 2. binaries -----------------------------------------------------------------------------
const buildArgs = args.has('--skip-build') ? ['--print-path'] : [];
const collectorBin = (await runBuild('collector/build.sh', buildArgs)).trim().split('\n').at(-1);
const backendPaths = parseDotenv(
  await runBuild('scripts/build-backends.sh', args.has('--skip-build') ? ['--print-paths'] : []),
);
const jaegerBin = backendPaths.JAEGER_BIN;
const prometheusBin = backendPaths.PROMETHEUS_BIN;
const alertmanagerBin = backendPaths.ALERTMANAGER_BIN;
for (const [name, bin] of [['collector', collectorBin], ['jaeger', jaegerBin], ['prometheus', prometheusBin], ['alertmanager', alertmanagerBin]]) {
  try {
    await access(bin);
  } catch {
    fail(`${name} binary missing at ${bin} (run without --skip-build, or npm run stack:build)`);
  }
}

// --- 3. ports --------------------------------------------------------------------------------
const ports = {
  collector: [4317, 4318, 13133, 8888],
  prometheus: [9090],
  alertmanager: [9093, 9095],
  jaeger: [16686, 16685, 4327, 4328, 13134, 8889],
  worker: withWorker ? [8787] : [],
};
const busy = [];
for (const [name, list] of Object.entries(ports)) {
  for (const port of list) if (!(await portFree(port))) busy.push(`${port} (${name})`);
}
if (busy.length) fail(`ports already in use on 127.0.0.1: ${busy.join(', ')}. Is another \`npm start\` running?`);

// --- 4. processes ----------------------------------------------------------------------------
const dataDir = join(root, '.stack', 'prometheus');
await mkdir(dataDir, { recursive: true });
const alertmanagerDir = join(root, '.stack', 'alertmanager');
await mkdir(alertmanagerDir, { recursive: true });
const collectorConfigs = [join(root, 'otel-collector.yaml')];
if (otlpToken) collectorConfigs.push(join(root, 'collector/auth.yaml'));

const commands = [
  { name: 'jaeger', prefixColor: 'yellow', command: `exec ${q(jaegerBin)} --config ${q(join(root, 'jaeger/config.yaml'))}` },
  {
    name: 'prometheus',
    prefixColor: 'red',
    command: [
      'exec',
      q(prometheusBin),
      `--config.file=${q(join(root, 'prometheus/prometheus.yml'))}`,
      '--web.listen-address=127.0.0.1:9090',
      '--web.enable-remote-write-receiver',
      `--storage.tsdb.path=${q(dataDir)}`,
      '--storage.tsdb.retention.time=15d',
    ].join(' '),
  },
  {
    name: 'alertmanager',
    prefixColor: 'magenta',
    command: [
      'exec',
      q(alertmanagerBin),
      `--config.file=${q(join(root, 'alertmanager/alertmanager.yml'))}`,
      '--web.listen-address=127.0.0.1:9093',
      `--storage.path=${q(alertmanagerDir)}`,
      // One Alertmanager, no cluster: nothing listens on the gossip port (9094 by default).
      '--cluster.listen-address=',
    ].join(' '),
  },
  { name: 'alerts', prefixColor: 'white', command: `exec node ${q(join(root, 'scripts/alert-webhook.mjs'))} --port 9095` },
  {
    name: 'collector',
    prefixColor: 'blue',
    command: `exec ${q(collectorBin)} ${collectorConfigs.map((c) => `--config ${q(c)}`).join(' ')}`,
    env: { OTEL_EXPORTER_OTLP_TOKEN: otlpToken },
  },
];
if (withWorker) {
  commands.push({ name: 'worker', prefixColor: 'green', command: 'npx wrangler dev --ip 127.0.0.1 --port 8787' });
}

say(`starting ${commands.map((c) => c.name).join(', ')} (Ctrl-C stops all)`);
const { result, commands: running } = concurrently(commands, {
  cwd: root,
  prefix: 'name',
  padPrefix: true,
  killOthersOn: ['failure', 'success'],
  killTimeout: 10_000,
});

const stopAll = (why) => {
  if (stopping) return;
  stopping = true;
  say(`${why}: stopping all`);
  for (const command of running) if (command.pid) command.kill('SIGTERM');
};

// --- 5. readiness ----------------------------------------------------------------------------
const checks = [
  ['Jaeger', 'http://127.0.0.1:16686/api/services', (s) => s === 200],
  ['Prometheus', 'http://127.0.0.1:9090/-/ready', (s) => s === 200],
  ['Alertmanager', 'http://127.0.0.1:9093/-/ready', (s) => s === 200],
  ['Alert webhook', 'http://127.0.0.1:9095/health', (s) => s === 200],
  ['Collector', 'http://127.0.0.1:13133/', (s) => s === 200],
];
if (withWorker) checks.push(['Worker', 'http://127.0.0.1:8787/health', (s) => s > 0]);

Promise.all(
  checks.map(async ([name, url, accept]) => {
    const status = await waitHttp(url, accept, READY_TIMEOUT_MILLIS);
    say(`${name} ready (${url} → ${status})`);
  }),
).then(
  () => {
    const lines = [
      '',
      'AstraGuard Edge local stack is up:',
      withWorker ? '  Worker      http://127.0.0.1:8787          (try /health)' : '  Worker      not started (--no-worker): run `npx wrangler dev`',
      '  Jaeger      http://127.0.0.1:16686/search  (API: /api/traces?service=astraguard-edge;',
      '              a Go-module build serves a placeholder page instead of the UI, see collector/README.md)',
      '  Prometheus  http://127.0.0.1:9090          (rules: /rules, alerts: /alerts)',
      '  Alertmanager http://127.0.0.1:9093         (alerts print below as [alerts] lines, from the webhook on :9095)',
      '  Collector   OTLP/HTTP http://127.0.0.1:4318, OTLP/gRPC 127.0.0.1:4317',
      `              ${otlpToken ? 'requires Authorization: Bearer $OTEL_EXPORTER_OTLP_TOKEN (.dev.vars)' : 'no token required'}`,
      '              health http://127.0.0.1:13133, own metrics http://127.0.0.1:8888/metrics',
      'Ctrl-C stops everything.',
      '',
    ];
    process.stdout.write(lines.join('\n') + '\n');
  },
  (error) => {
    readinessFailed = true;
    stopAll(error.message);
  },
);

try {
  await result;
  process.exitCode = readinessFailed ? 1 : 0;
} catch (closeEvents) {
  // Ctrl-C ends here too (the processes exit on SIGINT): report what exited how.
  const events = Array.isArray(closeEvents) ? closeEvents : [];
  const failed = events.filter((e) => e.exitCode !== 0 && e.exitCode !== 'SIGINT' && e.exitCode !== 'SIGTERM' && !e.killed);
  for (const e of failed) say(`${e.command.name} exited with ${e.exitCode}`);
  process.exitCode = failed.length || readinessFailed ? 1 : 0;
}
// All children are gone; don't wait for readiness polls still sleeping.
process.exit();
