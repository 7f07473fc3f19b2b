/**
 * Prometheus with prometheus/prometheus.yml, and PromQL helpers.
 * @module
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stackBinaries } from './binaries.ts';
import { PROMETHEUS_CONFIG, PROMETHEUS_RULES } from './paths.ts';
import { launch, type ProcessCommand, type ProcessOptions, type StackProcess } from './processes.ts';
import { freePort } from './wait.ts';

/** What {@link prometheusCommand} needs: everything explicit. */
export interface PrometheusCommandOptions {
  binary: string;
  port: number;
  /** Where the generated prometheus.yml goes. */
  dir: string;
  /** TSDB directory. Default `${dir}/data`. */
  dataDir?: string;
  /** `host:port` of the collector's own metrics (job `otelcol`), replacing the file's 127.0.0.1:8888. */
  scrapeCollector: string;
  /** `host:port` of the Alertmanager, replacing the file's 127.0.0.1:9093; none cuts the `alerting` section. */
  alertmanager: string | undefined;
  /** Scrape interval, e.g. `'2s'` in tests. Default the file's (15s). */
  scrapeInterval?: string;
  /** Rule evaluation interval. Default the file's (15s). */
  evaluationInterval?: string;
  /** `--storage.tsdb.retention.time`. Default `1d`. */
  retention?: string;
  /** `--log.level`. Default `warn`. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

/**
 * How Prometheus is started, by `npm start` and the tests alike: writes `${dir}/prometheus.yml`,
 * a copy of prometheus/prometheus.yml with the given targets and intervals and the rules by
 * absolute path, and runs Prometheus on it with the remote-write receiver on.
 *
 * @example
 * const spec = await prometheusCommand({
 *   binary, port: 9090, dir: '.stack/config', dataDir: '.stack/prometheus',
 *   scrapeCollector: '127.0.0.1:8888', alertmanager: '127.0.0.1:9093', retention: '15d',
 * });
 */
export async function prometheusCommand(options: PrometheusCommandOptions): Promise<ProcessCommand> {
  let config = (await readFile(PROMETHEUS_CONFIG, 'utf8')).replaceAll('127.0.0.1:8888', options.scrapeCollector);
  if (options.scrapeInterval) config = config.replace(/scrape_interval: \S+/g, `scrape_interval: ${options.scrapeInterval}`);
  if (options.evaluationInterval) config = config.replace(/evaluation_interval: \S+/g, `evaluation_interval: ${options.evaluationInterval}`);
  // The copy lives elsewhere: the rules by absolute path.
  config = config.replace('- rules/*.yml', `- ${PROMETHEUS_RULES}`);
  config = options.alertmanager
    ? config.replaceAll('127.0.0.1:9093', options.alertmanager)
    : config.replace(/^alerting:[\s\S]*$/m, '');
  const configFile = join(options.dir, 'prometheus.yml');
  await writeFile(configFile, config);
  return {
    name: 'prometheus',
    command: options.binary,
    args: [
      `--config.file=${configFile}`,
      `--web.listen-address=127.0.0.1:${options.port}`,
      '--web.enable-remote-write-receiver',
      `--storage.tsdb.path=${options.dataDir ?? join(options.dir, 'data')}`,
      `--storage.tsdb.retention.time=${options.retention ?? '1d'}`,
      `--log.level=${options.logLevel ?? 'warn'}`,
    ],
    env: {},
    readyUrl: `http://127.0.0.1:${options.port}/-/ready`,
  };
}

/** Options of {@link startPrometheus}. */
export interface PrometheusOptions extends ProcessOptions {
  /** Listen port; a free one by default. */
  port?: number;
  /**
   * `host:port` of the collector's own metrics to scrape as job `otelcol` (replaces the
   * 127.0.0.1:8888 target of prometheus/prometheus.yml). Default: keep the file's target.
   */
  scrapeCollector?: string;
  /** Scrape interval for that job, e.g. `'2s'` in tests. Default the file's (15s). */
  scrapeInterval?: string;
  /** Rule evaluation interval, e.g. `'1s'` in the alerting test. Default the file's (15s). */
  evaluationInterval?: string;
  /**
   * `host:port` of the Alertmanager to send alerts to. Default: none (the file's `alerting`
   * section, which names `npm start`'s :9093, is cut out, so a test never alerts a user's stack).
   */
  alertmanager?: string;
}

/** A running Prometheus. */
export interface PrometheusHandle extends StackProcess {
  port: number;
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** `${url}/api/v1/write`, for the collector. */
  remoteWriteUrl: string;
}

/**
 * Starts Prometheus with the repository's prometheus/prometheus.yml (target and interval
 * adapted), the remote-write receiver on, its TSDB in the temp dir (kept across
 * `restart()`), and waits for `/-/ready`.
 *
 * @example
 * const prometheus = await startPrometheus({ scrapeCollector: '127.0.0.1:38888', scrapeInterval: '2s' });
 * await promQuery(prometheus.url, 'up{job="otelcol"}');
 */
export async function startPrometheus(options: PrometheusOptions = {}): Promise<PrometheusHandle> {
  const binary = options.binary ?? (await stackBinaries()).prometheus;
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const managed = await launch(
    'prometheus',
    (dir) =>
      prometheusCommand({
        binary,
        port,
        dir,
        scrapeCollector: options.scrapeCollector ?? '127.0.0.1:8888',
        alertmanager: options.alertmanager,
        scrapeInterval: options.scrapeInterval,
        evaluationInterval: options.evaluationInterval,
      }),
    options,
  );
  return Object.assign(managed, { port, url, remoteWriteUrl: `${url}/api/v1/write` });
}

/** One element of a PromQL instant-vector result. */
export interface PromSample {
  metric: Record<string, string>;
  /** `[unix seconds, value as string]`. */
  value: [number, string];
}

/**
 * Runs an instant PromQL query (`GET /api/v1/query`) and returns the vector result. Throws when
 * Prometheus answers with an error or a non-vector result.
 *
 * @example
 * const [row] = await promQuery(prometheus.url, 'sum(astra_requests_total)');
 * Number(row?.value[1]);
 */
export async function promQuery(url: string, expr: string, options: { time?: Date } = {}): Promise<PromSample[]> {
  const params = new URLSearchParams({ query: expr });
  if (options.time) params.set('time', String(options.time.getTime() / 1000));
  const response = await fetch(`${url}/api/v1/query?${params}`, { signal: AbortSignal.timeout(10_000) });
  const body = (await response.json()) as {
    status: string;
    error?: string;
    data?: { resultType: string; result: PromSample[] };
  };
  if (body.status !== 'success' || !body.data) throw new Error(`PromQL ${expr}: ${response.status} ${body.error ?? ''}`);
  if (body.data.resultType !== 'vector') throw new Error(`PromQL ${expr}: ${body.data.resultType} result, not vector`);
  return body.data.result;
}

/**
 * Label sets of all series matching `match` (`GET /api/v1/series`).
 *
 * @example
 * const series = await promSeries(prometheus.url, '{__name__=~"astra_.*"}');
 */
export async function promSeries(url: string, match: string): Promise<Record<string, string>[]> {
  const params = new URLSearchParams({ 'match[]': match });
  const response = await fetch(`${url}/api/v1/series?${params}`, { signal: AbortSignal.timeout(10_000) });
  const body = (await response.json()) as { status: string; error?: string; data?: Record<string, string>[] };
  if (body.status !== 'success' || !body.data) throw new Error(`series ${match}: ${response.status} ${body.error ?? ''}`);
  return body.data;
}
