/**
 * Alertmanager with alertmanager/alertmanager.yml, and the alert webhook
 * (scripts/alert-webhook.mjs) it posts to.
 * @module
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stackBinaries } from './binaries.ts';
import { ALERT_WEBHOOK_SCRIPT, ALERTMANAGER_CONFIG } from './paths.ts';
import { launch, type ProcessCommand, type ProcessOptions, type StackProcess } from './processes.ts';
import { freePort } from './wait.ts';

/** One alert as scripts/alert-webhook.mjs records it (GET /alerts). */
export interface ReceivedAlert {
  received_at: string;
  status: 'firing' | 'resolved';
  alertname: string;
  severity?: string;
  labels: Record<string, string>;
  summary?: string;
}

/**
 * How the alert webhook is started, by `npm start` and the tests alike (with this Node).
 *
 * @example
 * const spec = alertWebhookCommand({ port: 9095 }); // POST http://127.0.0.1:9095/alerts
 */
export function alertWebhookCommand(options: { port: number; node?: string }): ProcessCommand {
  return {
    name: 'alert-webhook',
    command: options.node ?? process.execPath,
    args: [ALERT_WEBHOOK_SCRIPT, '--port', String(options.port)],
    env: {},
    readyUrl: `http://127.0.0.1:${options.port}/health`,
  };
}

/** A running alert webhook. */
export interface AlertWebhookHandle extends StackProcess {
  /** `http://127.0.0.1:port/alerts`: where Alertmanager posts. */
  url: string;
  /** The alerts received so far (the last 100). */
  received(): Promise<ReceivedAlert[]>;
}

/**
 * Starts scripts/alert-webhook.mjs (the receiver `npm start` runs) on a free port.
 *
 * @example
 * const webhook = await startAlertWebhook();
 * const alertmanager = await startAlertmanager({ webhookUrl: webhook.url, groupWait: '1s' });
 * await webhook.received(); // [] until Alertmanager posts
 */
export async function startAlertWebhook(options: ProcessOptions = {}): Promise<AlertWebhookHandle> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const managed = await launch('alert-webhook', () => alertWebhookCommand({ port, node: options.binary }), options);
  const received = async (): Promise<ReceivedAlert[]> => {
    const response = await fetch(`${base}/alerts`, { signal: AbortSignal.timeout(5000) });
    return ((await response.json()) as { alerts: ReceivedAlert[] }).alerts;
  };
  return Object.assign(managed, { url: `${base}/alerts`, received });
}

/** What {@link alertmanagerCommand} needs: everything explicit. */
export interface AlertmanagerCommandOptions {
  binary: string;
  port: number;
  /** Where the generated alertmanager.yml goes. */
  dir: string;
  /** `--storage.path`. Default `${dir}/data`. */
  dataDir?: string;
  /** Where the webhook receiver posts (replaces the file's http://127.0.0.1:9095/alerts). */
  webhookUrl: string;
  /** Route timings over the file's (10s / 1m), e.g. `'1s'` in tests. */
  groupWait?: string;
  groupInterval?: string;
  /** `--log.level`. Default `warn`. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

/**
 * How Alertmanager is started, by `npm start` and the tests alike: writes
 * `${dir}/alertmanager.yml`, a copy of alertmanager/alertmanager.yml with the webhook URL and
 * timings given, and runs one Alertmanager on it with clustering off.
 *
 * @example
 * const spec = await alertmanagerCommand({
 *   binary, port: 9093, dir: '.stack/config', dataDir: '.stack/alertmanager',
 *   webhookUrl: 'http://127.0.0.1:9095/alerts',
 * });
 */
export async function alertmanagerCommand(options: AlertmanagerCommandOptions): Promise<ProcessCommand> {
  let config = (await readFile(ALERTMANAGER_CONFIG, 'utf8')).replace('http://127.0.0.1:9095/alerts', options.webhookUrl);
  if (options.groupWait) config = config.replace(/group_wait: \S+/, `group_wait: ${options.groupWait}`);
  if (options.groupInterval) config = config.replace(/group_interval: \S+/, `group_interval: ${options.groupInterval}`);
  const configFile = join(options.dir, 'alertmanager.yml');
  await writeFile(configFile, config);
  return {
    name: 'alertmanager',
    command: options.binary,
    args: [
      `--config.file=${configFile}`,
      `--web.listen-address=127.0.0.1:${options.port}`,
      `--storage.path=${options.dataDir ?? join(options.dir, 'data')}`,
      // One Alertmanager, no cluster: nothing listens on the gossip port (9094 by default).
      '--cluster.listen-address=',
      `--log.level=${options.logLevel ?? 'warn'}`,
    ],
    env: {},
    readyUrl: `http://127.0.0.1:${options.port}/-/ready`,
  };
}

/** Options of {@link startAlertmanager}. */
export interface AlertmanagerOptions extends ProcessOptions {
  /** Where the webhook receiver posts (replaces the file's http://127.0.0.1:9095/alerts). */
  webhookUrl: string;
  /** Route timings over the file's (10s / 1m), e.g. `'1s'` in tests. */
  groupWait?: string;
  groupInterval?: string;
}

/** A running Alertmanager. */
export interface AlertmanagerHandle extends StackProcess {
  port: number;
  url: string;
  /** `127.0.0.1:port`, for Prometheus's `alerting` section. */
  target: string;
}

/**
 * Starts Alertmanager with the repository's alertmanager/alertmanager.yml (webhook URL and
 * timings adapted), clustering off, its data in the temp dir; waits for `/-/ready`.
 *
 * @example
 * const alertmanager = await startAlertmanager({ webhookUrl: webhook.url, groupWait: '1s', groupInterval: '1s' });
 * const prometheus = await startPrometheus({ alertmanager: alertmanager.target, evaluationInterval: '1s' });
 */
export async function startAlertmanager(options: AlertmanagerOptions): Promise<AlertmanagerHandle> {
  const binary = options.binary ?? (await stackBinaries()).alertmanager;
  const port = await freePort();
  const managed = await launch(
    'alertmanager',
    (dir) =>
      alertmanagerCommand({
        binary,
        port,
        dir,
        webhookUrl: options.webhookUrl,
        groupWait: options.groupWait,
        groupInterval: options.groupInterval,
      }),
    options,
  );
  return Object.assign(managed, { port, url: `http://127.0.0.1:${port}`, target: `127.0.0.1:${port}` });
}
