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
 * Each backend's command line, env and generated config come from tools/stack/ — the same
 * functions the stack tests and the benchmark use, here with the fixed ports (NPM_START_PORTS).
 * The generated Prometheus and Alertmanager configs go to .stack/config/.
 *
 * Options: `--skip-build` (use the cached binaries; fail if missing), `--no-worker` (backends
 * only, e.g. to run `wrangler dev` yourself).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { concurrently } from 'concurrently';
import {
  NPM_START_PORTS as P,
  REPO_ROOT as root,
  alertWebhookCommand,
  alertmanagerCommand,
  collectorCommand,
  ensureDevVars,
  httpStatus,
  jaegerCommand,
  portFree,
  prometheusCommand,
  readDevVars,
  shellCommand,
  stackBinaries,
  waitFor,
} from '../tools/stack/index.ts';

const args = new Set(process.argv.slice(2));
const withWorker = !args.has('--no-worker');
const READY_TIMEOUT_MILLIS = 180_000;

const say = (message) => process.stdout.write(`[start] ${message}\n`);
const fail = (message) => {
  process.stderr.write(`[start] ERROR: ${message}\n`);
  process.exit(1);
};

let stopping = false;
let readinessFailed = false;
const stopped = new AbortController();

/** Polls `url` every 500 ms until `accept(status)`; gives up when the stack is stopping. */
async function waitHttp(url, accept, timeoutMillis) {
  try {
    return await waitFor(
      async () => {
        const status = await httpStatus(url);
        return status !== undefined && accept(status) ? status : undefined;
      },
      { timeoutMillis, intervalMillis: 500, signal: stopped.signal },
    );
  } catch {
    throw new Error(stopping ? `${url}: stack stopping` : `${url} not ready after ${timeoutMillis / 1000}s`);
  }
}

// --- 1. secrets ------------------------------------------------------------------------------
if (ensureDevVars(root)) say('created .dev.vars from .dev.vars.example (change the tokens in it)');
const otlpToken = readDevVars(root).OTEL_EXPORTER_OTLP_TOKEN ?? '';
if (!otlpToken) say('warning: OTEL_EXPORTER_OTLP_TOKEN is empty in .dev.vars: the collector accepts OTLP without a token');

// --- 2. binaries -----------------------------------------------------------------------------
let bin;
try {
  bin = await stackBinaries({ skipBuild: args.has('--skip-build'), onRun: say });
} catch (error) {
  const hint = args.has('--skip-build') ? ' (run without --skip-build, or npm run stack:build)' : '; see its output above';
  fail(`${error.message.split('\n')[0]}${hint}`);
}

// --- 3. ports --------------------------------------------------------------------------------
const ports = {
  collector: Object.values(P.collector),
  prometheus: [P.prometheus],
  alertmanager: [P.alertmanager, P.alertWebhook],
  jaeger: Object.values(P.jaeger),
  worker: withWorker ? [P.worker] : [],
};
const busy = [];
for (const [name, list] of Object.entries(ports)) {
  for (const port of list) if (!(await portFree(port))) busy.push(`${port} (${name})`);
}
if (busy.length) fail(`ports already in use on 127.0.0.1: ${busy.join(', ')}. Is another \`npm start\` running?`);

// --- 4. processes ----------------------------------------------------------------------------
// Generated configs (copies of the repository's with absolute paths) and the persistent data.
const configDir = join(root, '.stack', 'config');
const prometheusData = join(root, '.stack', 'prometheus');
const alertmanagerData = join(root, '.stack', 'alertmanager');
for (const dir of [configDir, prometheusData, alertmanagerData]) await mkdir(dir, { recursive: true });

// The same commands the stack tests run (tools/stack/), on the fixed ports.
const specs = [
  { spec: jaegerCommand({ binary: bin.jaeger, ports: P.jaeger }), prefixColor: 'yellow' },
  {
    spec: await prometheusCommand({
      binary: bin.prometheus,
      port: P.prometheus,
      dir: configDir,
      dataDir: prometheusData,
      scrapeCollector: `127.0.0.1:${P.collector.metrics}`,
      alertmanager: `127.0.0.1:${P.alertmanager}`,
      retention: '15d',
      logLevel: 'info',
    }),
    prefixColor: 'red',
  },
  {
    spec: await alertmanagerCommand({
      binary: bin.alertmanager,
      port: P.alertmanager,
      dir: configDir,
      dataDir: alertmanagerData,
      webhookUrl: `http://127.0.0.1:${P.alertWebhook}/alerts`,
      logLevel: 'info',
    }),
    prefixColor: 'magenta',
  },
  { spec: { ...alertWebhookCommand({ port: P.alertWebhook }), name: 'alerts' }, prefixColor: 'white' },
  {
    spec: collectorCommand({
      binary: bin.collector,
      ports: P.collector,
      token: otlpToken || undefined,
      remoteWriteUrl: `http://127.0.0.1:${P.prometheus}/api/v1/write`,
      jaegerOtlpGrpcEndpoint: `127.0.0.1:${P.jaeger.otlpGrpc}`,
    }),
    prefixColor: 'blue',
  },
];
const commands = specs.map(({ spec, prefixColor }) => ({ name: spec.name, prefixColor, command: shellCommand(spec), env: spec.env }));
if (withWorker) {
  commands.push({ name: 'worker', prefixColor: 'green', command: `npx wrangler dev --ip 127.0.0.1 --port ${P.worker}` });
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
  stopped.abort();
  say(`${why}: stopping all`);
  for (const command of running) if (command.pid) command.kill('SIGTERM');
};

// --- 5. readiness ----------------------------------------------------------------------------
const LABELS = { jaeger: 'Jaeger', prometheus: 'Prometheus', alertmanager: 'Alertmanager', alerts: 'Alert webhook', collector: 'Collector' };
const checks = specs.map(({ spec }) => [LABELS[spec.name], spec.readyUrl, (s) => s === 200]);
if (withWorker) checks.push(['Worker', `http://127.0.0.1:${P.worker}/health`, (s) => s > 0]);

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
