/**
 * Real telemetry backends for integration tests (Node side, vitest `stack` project; never in
 * workerd): the AstraGuard collector (otel-collector.yaml), Prometheus, Jaeger v2, and for the
 * alerting tests Alertmanager and the alert webhook (scripts/alert-webhook.mjs), each
 * started from its real binary on free 127.0.0.1 ports in a temp dir, so tests can run next to
 * a running `npm start` (which owns 4317/4318/13133/8888/9090/16686/4327/4328).
 *
 * Every process this module starts is tracked: `stop()`/`dispose()` end it (SIGTERM, then
 * SIGKILL after `stopTimeoutMillis`), `stopAll()` ends all of them (call it in `afterAll`), and a
 * process `exit` hook SIGKILLs any that are still running. Only pids this module spawned are
 * ever signalled.
 *
 * @example
 * ```ts
 * import { afterAll, beforeAll, expect, test } from 'vitest';
 * import { startStack, stopAll, promQuery, waitFor, type Stack } from '../support/stack';
 *
 * let stack: Stack;
 * beforeAll(async () => { stack = await startStack({ token: 'test-token' }); }, 600_000);
 * afterAll(stopAll);
 *
 * test('a pushed counter reaches Prometheus', async () => {
 *   await fetch(`${stack.collector.urls.otlpHttp}/v1/metrics`, {
 *     method: 'POST',
 *     headers: { 'content-type': 'application/json', authorization: 'Bearer test-token' },
 *     body: JSON.stringify(otlpJson),
 *   });
 *   const series = await waitFor(async () => {
 *     const r = await promQuery(stack.prometheus.url, 'my_counter_total');
 *     return r.length > 0 ? r : undefined;
 *   });
 *   expect(series[0]!.metric.job).toBe('astraguard-edge');
 * });
 * ```
 *
 * Environment: `ASTRAGUARD_STACK_LOGS=1` echoes every process line to stderr with a prefix;
 * `ASTRAGUARD_KEEP_STACK_TMP=1` keeps the temp dirs (configs, logs, TSDB) after `dispose()`.
 * @module
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Repository root (this file is test/support/stack.ts). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The collector config and its bearer-token overlay, as `npm start` uses them. */
export const COLLECTOR_CONFIG = join(REPO_ROOT, 'otel-collector.yaml');
export const COLLECTOR_AUTH_OVERLAY = join(REPO_ROOT, 'collector/auth.yaml');
export const PROMETHEUS_CONFIG = join(REPO_ROOT, 'prometheus/prometheus.yml');
export const JAEGER_CONFIG = join(REPO_ROOT, 'jaeger/config.yaml');
export const PROMETHEUS_RULES = join(REPO_ROOT, 'prometheus/rules/*.yml');
export const ALERTMANAGER_CONFIG = join(REPO_ROOT, 'alertmanager/alertmanager.yml');
export const ALERT_WEBHOOK_SCRIPT = join(REPO_ROOT, 'scripts/alert-webhook.mjs');

// ---------------------------------------------------------------------------------------------
// Binaries
// ---------------------------------------------------------------------------------------------

/** Absolute paths of the three binaries. */
export interface StackBinaries {
  /** `otelcol-astraguard`, from `collector/build.sh` (cached under ~/.cache/astraguard). */
  collector: string;
  /** Jaeger v2 (`jaeger`), from `scripts/build-backends.sh` (cached under ~/.cache/astraguard). */
  jaeger: string;
  /** Prometheus (Debian's `/usr/bin/prometheus` unless `PROMETHEUS_BIN` is set). */
  prometheus: string;
  /** Alertmanager (Debian's `/usr/bin/prometheus-alertmanager` unless `ALERTMANAGER_BIN` is set). */
  alertmanager: string;
}

let binariesPromise: Promise<StackBinaries> | undefined;

/**
 * Paths of the stack binaries, building/installing what is missing by running
 * `bash collector/build.sh` and `bash scripts/build-backends.sh` (both return at once when
 * cached; a cold build takes minutes, so give the calling hook a long timeout). Memoized per
 * process. Rejects with the build script's output when a build fails.
 *
 * @example
 * const { collector, jaeger, prometheus } = await stackBinaries();
 */
export function stackBinaries(): Promise<StackBinaries> {
  binariesPromise ??= (async () => {
    const run = async (script: string): Promise<string> => {
      try {
        const running = execFileAsync('bash', [join(REPO_ROOT, script)], {
          cwd: REPO_ROOT,
          maxBuffer: 64 * 1024 * 1024,
          timeout: 30 * 60_000,
        });
        // Show build progress live (a cold build is silent for minutes otherwise).
        running.child.stderr?.pipe(process.stderr);
        const { stdout } = await running;
        return stdout;
      } catch (error) {
        const e = error as { stderr?: string; message: string };
        throw new Error(`bash ${script} failed: ${e.message}\n${(e.stderr ?? '').slice(-4000)}`, {
          cause: error,
        });
      }
    };
    // Sequential on purpose: both builds are CPU-bound and CI has 2 cores.
    const collector = (await run('collector/build.sh')).trim().split('\n').at(-1) ?? '';
    const backends = Object.fromEntries(
      (await run('scripts/build-backends.sh'))
        .trim()
        .split('\n')
        .map((line) => line.split('=', 2) as [string, string]),
    );
    const binaries = {
      collector,
      jaeger: backends.JAEGER_BIN ?? '',
      prometheus: backends.PROMETHEUS_BIN ?? '',
      alertmanager: backends.ALERTMANAGER_BIN ?? '',
    };
    for (const [name, path] of Object.entries(binaries)) {
      if (!path) throw new Error(`build scripts did not report a path for ${name}`);
    }
    return binaries;
  })();
  binariesPromise.catch(() => (binariesPromise = undefined));
  return binariesPromise;
}

// ---------------------------------------------------------------------------------------------
// Ports and waiting
// ---------------------------------------------------------------------------------------------

/** Ports `npm start` uses; never handed out by {@link freePort}. */
const RESERVED_PORTS = new Set([4317, 4318, 13133, 8888, 8889, 9090, 9093, 9094, 9095, 16686, 16685, 4327, 4328, 13134, 8787]);
const handedOut = new Set<number>();

/**
 * A TCP port that is free on 127.0.0.1 right now (the OS picks it), never one of the
 * `npm start` ports and never one this process handed out before.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolvePort, reject) => {
      const server = createServer();
      server.unref();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        const p = typeof address === 'object' && address ? address.port : 0;
        server.close(() => resolvePort(p));
      });
    });
    if (port && !RESERVED_PORTS.has(port) && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free 127.0.0.1 port found in 50 attempts');
}

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this long. Default 30 000. */
  timeoutMillis?: number;
  /** Pause between attempts. Default 250. */
  intervalMillis?: number;
  /** Used in the timeout error. Default `'condition'`. */
  description?: string;
  /** Stops waiting at once (rejects with the signal's reason) when aborted. */
  signal?: AbortSignal;
}

/**
 * Polls `probe` until it returns something other than `undefined`/`false`, and returns that.
 * Bounded: throws after `timeoutMillis` with the last error the probe threw (if any).
 *
 * @example
 * const rows = await waitFor(async () => {
 *   const r = await promQuery(url, 'up');
 *   return r.length ? r : undefined;
 * }, { timeoutMillis: 20_000, description: 'up in Prometheus' });
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  options: WaitForOptions = {},
): Promise<T> {
  const { timeoutMillis = 30_000, intervalMillis = 250, description = 'condition', signal } = options;
  const deadline = Date.now() + timeoutMillis;
  let lastError: unknown;
  for (;;) {
    signal?.throwIfAborted();
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMillis} ms waiting for ${description}${why}`, { cause: lastError });
    }
    await sleep(intervalMillis);
  }
}

/** Resolves after `millis`. */
export function sleep(millis: number): Promise<void> {
  return new Promise((r) => setTimeout(r, millis));
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/** What every started backend returns. */
export interface StackProcess {
  /** Short name used in log prefixes and errors (`collector`, `prometheus`, `jaeger`). */
  readonly name: string;
  /** Pid of the running process; `undefined` while stopped. */
  readonly pid: number | undefined;
  /** True between a successful start and stop (or an unexpected exit). */
  readonly running: boolean;
  /** Temp dir holding the generated config, the log file and any data. */
  readonly dir: string;
  /** Path of the log file (stdout and stderr of every run, appended). */
  readonly logFile: string;
  /** The last ~400 log lines, for assertion messages. */
  logs(): string;
  /** Stops the process (SIGTERM, SIGKILL after `stopTimeoutMillis`). Idempotent. */
  stop(): Promise<void>;
  /** Starts it again with the same binary, ports, config and env; waits until ready. */
  start(): Promise<void>;
  /** `stop()`, wait `downMillis` (default 0), `start()`. Ports and config stay the same. */
  restart(options?: { downMillis?: number }): Promise<void>;
  /** `stop()` and remove the temp dir (unless ASTRAGUARD_KEEP_STACK_TMP=1). Idempotent. */
  dispose(): Promise<void>;
}

/** Options every `startXxx` takes. */
export interface ProcessOptions {
  /** Binary to run; default from {@link stackBinaries}. */
  binary?: string;
  /** Extra environment for the process (merged over the parent's). */
  env?: Record<string, string>;
  /** How long to wait for readiness. Default 60 000. */
  readyTimeoutMillis?: number;
  /** How long to wait after SIGTERM before SIGKILL. Default 10 000. */
  stopTimeoutMillis?: number;
  /** Called with every log line (default: echo to stderr only when ASTRAGUARD_STACK_LOGS=1). */
  onLog?: (line: string) => void;
}

const live = new Set<ManagedProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killLive = () => {
    for (const p of live) p.killNow();
  };
  // Last resort (a test run that never called stopAll): synchronous SIGKILL of our own pids.
  process.once('exit', killLive);
  // A signal ends Node without 'exit' (e.g. vitest killed by a timeout or Ctrl-C):
  // kill our children, then let the signal do what it would have done.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killLive();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/** Spec of a process to manage (a plain object: this file uses only erasable TypeScript). */
interface ProcessSpec {
  name: string;
  dir: string;
  command: string;
  args: readonly string[];
  env: Record<string, string>;
  readyUrl: string;
  options: ProcessOptions;
}

class ManagedProcess implements StackProcess {
  readonly name: string;
  readonly dir: string;
  readonly logFile: string;
  private readonly spec: ProcessSpec;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private tail: string[] = [];
  private log: WriteStream;
  private stopping = false;
  private disposed = false;

  constructor(spec: ProcessSpec) {
    this.spec = spec;
    this.name = spec.name;
    this.dir = spec.dir;
    this.logFile = join(spec.dir, `${spec.name}.log`);
    this.log = createWriteStream(this.logFile, { flags: 'a' });
  }

  private get options(): ProcessOptions {
    return this.spec.options;
  }

  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  get running(): boolean {
    return this.pid !== undefined;
  }

  logs(): string {
    return this.tail.join('\n');
  }

  private line(text: string): void {
    this.tail.push(text);
    if (this.tail.length > 400) this.tail.splice(0, this.tail.length - 400);
    // A killed child's last buffered output can arrive after dispose() ended the log file.
    if (!this.log.writableEnded) this.log.write(text + '\n');
    if (this.options.onLog) this.options.onLog(text);
    else if (process.env.ASTRAGUARD_STACK_LOGS === '1') process.stderr.write(`[${this.name}] ${text}\n`);
  }

  async start(): Promise<void> {
    if (this.disposed) throw new Error(`${this.name}: start() after dispose()`);
    if (this.running) return;
    installExitHook();
    this.stopping = false;
    this.line(`--- starting: ${this.spec.command} ${this.spec.args.join(' ')}`);
    const child = spawn(this.spec.command, this.spec.args, {
      cwd: this.dir,
      env: { ...process.env, ...this.spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    live.add(this);
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) this.line(l);
      });
      stream?.on('end', () => partial && this.line(partial));
    }
    this.exited = new Promise((resolveExit) => {
      child.once('exit', (code, signal) => {
        live.delete(this);
        if (!this.stopping) this.line(`--- exited unexpectedly: code=${code} signal=${signal}`);
        resolveExit();
      });
      child.once('error', (error) => {
        live.delete(this);
        this.line(`--- spawn error: ${error.message}`);
        resolveExit();
      });
    });
    const timeoutMillis = this.options.readyTimeoutMillis ?? 60_000;
    const exitedEarly = new AbortController();
    void this.exited.then(() =>
      exitedEarly.abort(new Error(`${this.name} exited (code ${child.exitCode}, signal ${child.signalCode}) before it was ready`)),
    );
    try {
      await waitFor(() => httpOk(this.spec.readyUrl), {
        timeoutMillis,
        intervalMillis: 200,
        description: `${this.name} ready at ${this.spec.readyUrl}`,
        signal: exitedEarly.signal,
      });
    } catch (error) {
      await this.stop();
      throw new Error(`${(error as Error).message}\n--- last lines of ${this.logFile}:\n${this.logs().slice(-3000)}`, {
        cause: error,
      });
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.stopping = true;
    const timeout = this.options.stopTimeoutMillis ?? 10_000;
    child.kill('SIGTERM');
    const killed = await Promise.race([this.exited.then(() => true), sleep(timeout).then(() => false)]);
    if (!killed) {
      this.line(`--- no exit ${timeout} ms after SIGTERM: SIGKILL`);
      child.kill('SIGKILL');
      await this.exited;
    }
    this.line('--- stopped');
  }

  async restart(options: { downMillis?: number } = {}): Promise<void> {
    await this.stop();
    if (options.downMillis) await sleep(options.downMillis);
    await this.start();
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    await this.stop();
    this.disposed = true;
    await new Promise<void>((r) => this.log.end(r));
    if (process.env.ASTRAGUARD_KEEP_STACK_TMP !== '1') await rm(this.dir, { recursive: true, force: true });
  }

  /** Synchronous SIGKILL, for the process exit hook only. */
  killNow(): void {
    try {
      if (this.pid !== undefined) this.child?.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

/**
 * Stops and disposes every process this module started (in parallel). Use as `afterAll(stopAll)`.
 * Also stops processes whose start failed half way.
 */
export async function stopAll(): Promise<void> {
  await Promise.all([...created].map((p) => p.dispose()));
  created.clear();
}
const created = new Set<ManagedProcess>();

async function launch(
  name: string,
  command: string,
  args: (dir: string) => Promise<string[]> | string[],
  env: Record<string, string>,
  readyUrl: string,
  options: ProcessOptions,
): Promise<ManagedProcess> {
  const dir = await mkdtemp(join(tmpdir(), `astraguard-${name}-`));
  const managed = new ManagedProcess({
    name,
    dir,
    command,
    args: await args(dir),
    env: { ...env, ...options.env },
    readyUrl,
    options,
  });
  created.add(managed);
  try {
    await managed.start();
  } catch (error) {
    created.delete(managed);
    await managed.dispose(); // the error already carries the log tail
    throw error;
  }
  return managed;
}

// ---------------------------------------------------------------------------------------------
// Collector
// ---------------------------------------------------------------------------------------------

/** Ports of a test collector. */
export interface CollectorPorts {
  otlpGrpc: number;
  otlpHttp: number;
  health: number;
  /** The collector's own metrics (Prometheus text format at /metrics). */
  metrics: number;
}

/** Options of {@link startCollector}. */
export interface CollectorOptions extends ProcessOptions {
  /**
   * Bearer token the OTLP receiver requires (adds collector/auth.yaml). Default: none, the
   * receiver is open.
   */
  token?: string;
  /** Where metrics go. Default `http://127.0.0.1:1/api/v1/write` (nowhere: set it). */
  remoteWriteUrl?: string;
  /** Jaeger's OTLP/gRPC `host:port`. Default `127.0.0.1:1` (nowhere: set it). */
  jaegerOtlpGrpcEndpoint?: string;
  /** Fixed ports (e.g. chosen before Prometheus was told where to scrape); free ones otherwise. */
  ports?: Partial<CollectorPorts>;
  /** Config files, in merge order. Default otel-collector.yaml (+ auth.yaml with a token). */
  configFiles?: string[];
  /** Collector log level. Default `info`. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

/** A running test collector. */
export interface CollectorHandle extends StackProcess {
  ports: CollectorPorts;
  urls: {
    /** Base URL for OTLP/HTTP: POST `${otlpHttp}/v1/metrics`, `/v1/traces`. */
    otlpHttp: string;
    /** `127.0.0.1:port` for OTLP/gRPC. */
    otlpGrpc: string;
    /** health_check endpoint (200 when ready). */
    health: string;
    /** The collector's own metrics, Prometheus text format. */
    metrics: string;
  };
  /** The token the receiver requires, if any. */
  token: string | undefined;
  /** Parsed own metrics: `selfMetric('otelcol_receiver_refused_metric_points')` sums the samples of that name. */
  selfMetric(name: string, labels?: Record<string, string>): Promise<number>;
}

/**
 * Starts `otelcol-astraguard` with the repository's otel-collector.yaml (and collector/auth.yaml
 * when `token` is set) on free ports, and waits until its health_check answers 200.
 * `stop()`/`start()`/`restart({ downMillis })` keep the same ports and config.
 *
 * @example
 * const collector = await startCollector({
 *   token: 't0ken',
 *   remoteWriteUrl: prometheus.remoteWriteUrl,
 *   jaegerOtlpGrpcEndpoint: jaeger.otlpGrpcEndpoint,
 * });
 * await collector.restart({ downMillis: 10_000 }); // same ports afterwards
 */
export async function startCollector(options: CollectorOptions = {}): Promise<CollectorHandle> {
  const binary = options.binary ?? (await stackBinaries()).collector;
  const ports: CollectorPorts = {
    otlpGrpc: options.ports?.otlpGrpc ?? (await freePort()),
    otlpHttp: options.ports?.otlpHttp ?? (await freePort()),
    health: options.ports?.health ?? (await freePort()),
    metrics: options.ports?.metrics ?? (await freePort()),
  };
  const configFiles =
    options.configFiles ?? (options.token ? [COLLECTOR_CONFIG, COLLECTOR_AUTH_OVERLAY] : [COLLECTOR_CONFIG]);
  const env: Record<string, string> = {
    OTELCOL_OTLP_GRPC_ENDPOINT: `127.0.0.1:${ports.otlpGrpc}`,
    OTELCOL_OTLP_HTTP_ENDPOINT: `127.0.0.1:${ports.otlpHttp}`,
    OTELCOL_HEALTH_ENDPOINT: `127.0.0.1:${ports.health}`,
    OTELCOL_METRICS_HOST: '127.0.0.1',
    OTELCOL_METRICS_PORT: String(ports.metrics),
    PROMETHEUS_REMOTE_WRITE_URL: options.remoteWriteUrl ?? 'http://127.0.0.1:1/api/v1/write',
    JAEGER_OTLP_GRPC_ENDPOINT: options.jaegerOtlpGrpcEndpoint ?? '127.0.0.1:1',
    OTELCOL_LOG_LEVEL: options.logLevel ?? 'info',
    OTEL_EXPORTER_OTLP_TOKEN: options.token ?? '',
  };
  const urls = {
    otlpHttp: `http://127.0.0.1:${ports.otlpHttp}`,
    otlpGrpc: `127.0.0.1:${ports.otlpGrpc}`,
    health: `http://127.0.0.1:${ports.health}/`,
    metrics: `http://127.0.0.1:${ports.metrics}/metrics`,
  };
  const managed = await launch(
    'collector',
    binary,
    () => configFiles.flatMap((file) => ['--config', file]),
    env,
    urls.health,
    options,
  );
  return Object.assign(managed, {
    ports,
    urls,
    token: options.token,
    selfMetric: (name: string, labels: Record<string, string> = {}) => scrapeSum(urls.metrics, name, labels),
  });
}

/**
 * Sum of the samples named `name` (exactly; no suffix matching) in a Prometheus text-format
 * page whose labels include `labels`. 0 when there are none.
 */
export async function scrapeSum(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
  const text = await response.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries(
      [...(match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(match[4]);
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Prometheus
// ---------------------------------------------------------------------------------------------

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

/** A running test Prometheus. */
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
    binary,
    async (dir) => {
      let config = await readFile(PROMETHEUS_CONFIG, 'utf8');
      if (options.scrapeCollector) config = config.replaceAll('127.0.0.1:8888', options.scrapeCollector);
      if (options.scrapeInterval) config = config.replace(/scrape_interval: \S+/g, `scrape_interval: ${options.scrapeInterval}`);
      if (options.evaluationInterval) config = config.replace(/evaluation_interval: \S+/g, `evaluation_interval: ${options.evaluationInterval}`);
      // The copy lives in a temp dir: the rules by absolute path.
      config = config.replace('- rules/*.yml', `- ${PROMETHEUS_RULES}`);
      config = options.alertmanager
        ? config.replaceAll('127.0.0.1:9093', options.alertmanager)
        : config.replace(/^alerting:[\s\S]*$/m, '');
      await writeFile(join(dir, 'prometheus.yml'), config);
      return [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--web.enable-remote-write-receiver',
        `--storage.tsdb.path=${join(dir, 'data')}`,
        '--storage.tsdb.retention.time=1d',
        '--log.level=warn',
      ];
    },
    {},
    `${url}/-/ready`,
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

/** Names of all series matching `match` (`GET /api/v1/series`), e.g. `{__name__=~"astra_.*"}`. */
export async function promSeries(url: string, match: string): Promise<Record<string, string>[]> {
  const params = new URLSearchParams({ 'match[]': match });
  const response = await fetch(`${url}/api/v1/series?${params}`, { signal: AbortSignal.timeout(10_000) });
  const body = (await response.json()) as { status: string; error?: string; data?: Record<string, string>[] };
  if (body.status !== 'success' || !body.data) throw new Error(`series ${match}: ${response.status} ${body.error ?? ''}`);
  return body.data;
}

// ---------------------------------------------------------------------------------------------
// Alertmanager and the alert webhook
// ---------------------------------------------------------------------------------------------

/** One alert as scripts/alert-webhook.mjs records it (GET /alerts). */
export interface ReceivedAlert {
  received_at: string;
  status: 'firing' | 'resolved';
  alertname: string;
  severity?: string;
  labels: Record<string, string>;
  summary?: string;
}

/** A running alert webhook. */
export interface AlertWebhookHandle extends StackProcess {
  /** `http://127.0.0.1:port/alerts`: where Alertmanager posts. */
  url: string;
  /** The alerts received so far (the last 100). */
  received(): Promise<ReceivedAlert[]>;
}

/** Starts scripts/alert-webhook.mjs (the receiver `npm start` runs) on a free port. */
export async function startAlertWebhook(options: ProcessOptions = {}): Promise<AlertWebhookHandle> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const managed = await launch('alert-webhook', options.binary ?? process.execPath, () => [ALERT_WEBHOOK_SCRIPT, '--port', String(port)], {}, `${base}/health`, options);
  const received = async (): Promise<ReceivedAlert[]> => {
    const response = await fetch(`${base}/alerts`, { signal: AbortSignal.timeout(5000) });
    return ((await response.json()) as { alerts: ReceivedAlert[] }).alerts;
  };
  return Object.assign(managed, { url: `${base}/alerts`, received });
}

/** Options of {@link startAlertmanager}. */
export interface AlertmanagerOptions extends ProcessOptions {
  /** Where the webhook receiver posts (replaces the file's http://127.0.0.1:9095/alerts). */
  webhookUrl: string;
  /** Route timings over the file's (10s / 1m), e.g. `'1s'` in tests. */
  groupWait?: string;
  groupInterval?: string;
}

/** A running test Alertmanager. */
export interface AlertmanagerHandle extends StackProcess {
  port: number;
  url: string;
  /** `127.0.0.1:port`, for Prometheus's `alerting` section. */
  target: string;
}

/**
 * Starts Alertmanager with the repository's alertmanager/alertmanager.yml (webhook URL and
 * timings adapted), clustering off, its data in the temp dir; waits for `/-/ready`.
 */
export async function startAlertmanager(options: AlertmanagerOptions): Promise<AlertmanagerHandle> {
  const binary = options.binary ?? (await stackBinaries()).alertmanager;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const managed = await launch(
    'alertmanager',
    binary,
    async (dir) => {
      let config = (await readFile(ALERTMANAGER_CONFIG, 'utf8')).replace('http://127.0.0.1:9095/alerts', options.webhookUrl);
      if (options.groupWait) config = config.replace(/group_wait: \S+/, `group_wait: ${options.groupWait}`);
      if (options.groupInterval) config = config.replace(/group_interval: \S+/, `group_interval: ${options.groupInterval}`);
      await writeFile(join(dir, 'alertmanager.yml'), config);
      return [
        `--config.file=${join(dir, 'alertmanager.yml')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        `--storage.path=${join(dir, 'data')}`,
        '--cluster.listen-address=',
        '--log.level=warn',
      ];
    },
    {},
    `${url}/-/ready`,
    options,
  );
  return Object.assign(managed, { port, url, target: `127.0.0.1:${port}` });
}

// ---------------------------------------------------------------------------------------------
// Jaeger
// ---------------------------------------------------------------------------------------------

/** Ports of a test Jaeger. */
export interface JaegerPorts {
  otlpGrpc: number;
  otlpHttp: number;
  queryHttp: number;
  queryGrpc: number;
  health: number;
  metrics: number;
}

/** Options of {@link startJaeger}. */
export interface JaegerOptions extends ProcessOptions {
  ports?: Partial<JaegerPorts>;
}

/** A running test Jaeger. */
export interface JaegerHandle extends StackProcess {
  ports: JaegerPorts;
  /** Query UI/API base URL, e.g. `http://127.0.0.1:41235`. */
  url: string;
  /** `127.0.0.1:port` of its OTLP/gRPC receiver, for the collector. */
  otlpGrpcEndpoint: string;
}

/**
 * Starts Jaeger v2 with the repository's jaeger/config.yaml (in-memory storage) on free ports and
 * waits until its query API answers. Its traces are lost on `restart()` (in-memory).
 */
export async function startJaeger(options: JaegerOptions = {}): Promise<JaegerHandle> {
  const binary = options.binary ?? (await stackBinaries()).jaeger;
  const ports: JaegerPorts = {
    otlpGrpc: options.ports?.otlpGrpc ?? (await freePort()),
    otlpHttp: options.ports?.otlpHttp ?? (await freePort()),
    queryHttp: options.ports?.queryHttp ?? (await freePort()),
    queryGrpc: options.ports?.queryGrpc ?? (await freePort()),
    health: options.ports?.health ?? (await freePort()),
    metrics: options.ports?.metrics ?? (await freePort()),
  };
  const url = `http://127.0.0.1:${ports.queryHttp}`;
  const env = {
    JAEGER_OTLP_GRPC_ENDPOINT: `127.0.0.1:${ports.otlpGrpc}`,
    JAEGER_OTLP_HTTP_ENDPOINT: `127.0.0.1:${ports.otlpHttp}`,
    JAEGER_QUERY_HTTP_ENDPOINT: `127.0.0.1:${ports.queryHttp}`,
    JAEGER_QUERY_GRPC_ENDPOINT: `127.0.0.1:${ports.queryGrpc}`,
    JAEGER_HEALTH_ENDPOINT: `127.0.0.1:${ports.health}`,
    JAEGER_METRICS_HOST: '127.0.0.1',
    JAEGER_METRICS_PORT: String(ports.metrics),
  };
  const managed = await launch('jaeger', binary, () => ['--config', JAEGER_CONFIG], env, `${url}/api/services`, options);
  return Object.assign(managed, { ports, url, otlpGrpcEndpoint: env.JAEGER_OTLP_GRPC_ENDPOINT });
}

/** A span as Jaeger's HTTP API (`/api/traces`) returns it. */
export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  startTime: number;
  duration: number;
  processID: string;
  references: { refType: string; traceID: string; spanID: string }[];
  tags: { key: string; type: string; value: unknown }[];
}

/** A trace as Jaeger's HTTP API returns it. */
export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string; tags: { key: string; type: string; value: unknown }[] }>;
}

/**
 * Traces of `service` (`GET /api/traces?service=...`), newest first as Jaeger returns them.
 * An unknown service gives `[]`.
 *
 * @example
 * const traces = await jaegerTraces(jaeger.url, 'astraguard-edge', { operation: 'GET /health' });
 */
export async function jaegerTraces(
  url: string,
  service: string,
  options: { operation?: string; limit?: number; lookback?: string } = {},
): Promise<JaegerTrace[]> {
  const params = new URLSearchParams({ service, limit: String(options.limit ?? 100), lookback: options.lookback ?? '1h' });
  if (options.operation) params.set('operation', options.operation);
  const response = await fetch(`${url}/api/traces?${params}`, { signal: AbortSignal.timeout(10_000) });
  const body = (await response.json()) as { data: JaegerTrace[] | null; errors?: { msg: string }[] | null };
  // Jaeger answers an unknown service with 404 / an error entry: that is "no traces yet".
  if (!response.ok && !(response.status === 404 || body.errors?.some((e) => /not found/i.test(e.msg)))) {
    throw new Error(`GET /api/traces?service=${service}: ${response.status} ${JSON.stringify(body.errors)}`);
  }
  return body.data ?? [];
}

// ---------------------------------------------------------------------------------------------
// All three, wired
// ---------------------------------------------------------------------------------------------

/** The three backends, wired like `npm start` wires them, on free ports. */
export interface Stack {
  collector: CollectorHandle;
  prometheus: PrometheusHandle;
  jaeger: JaegerHandle;
  /** Disposes all three. */
  stop(): Promise<void>;
}

/** Options of {@link startStack}. */
export interface StackOptions {
  /** Bearer token the collector requires (recommended: the Worker side sends one). */
  token?: string;
  /** Prometheus scrape interval for the collector's own metrics. Default `'2s'`. */
  scrapeInterval?: string;
  collector?: Omit<CollectorOptions, 'token' | 'remoteWriteUrl' | 'jaegerOtlpGrpcEndpoint'>;
  prometheus?: Omit<PrometheusOptions, 'scrapeCollector' | 'scrapeInterval'>;
  jaeger?: JaegerOptions;
}

/**
 * Builds what is missing, then starts Prometheus and Jaeger, then the collector exporting to
 * them (Prometheus scrapes the collector's own metrics as job `otelcol`). On failure, whatever
 * did start is disposed.
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  await stackBinaries();
  const collectorPorts: CollectorPorts = {
    otlpGrpc: await freePort(),
    otlpHttp: await freePort(),
    health: await freePort(),
    metrics: await freePort(),
    ...options.collector?.ports,
  };
  const started: StackProcess[] = [];
  try {
    const [p, j] = await Promise.allSettled([
      startPrometheus({
        ...options.prometheus,
        scrapeCollector: `127.0.0.1:${collectorPorts.metrics}`,
        scrapeInterval: options.scrapeInterval ?? '2s',
      }),
      startJaeger(options.jaeger),
    ]);
    if (p.status === 'fulfilled') started.push(p.value);
    if (j.status === 'fulfilled') started.push(j.value);
    if (p.status === 'rejected') throw p.reason;
    if (j.status === 'rejected') throw j.reason;
    const prometheus = p.value;
    const jaeger = j.value;
    const collector = await startCollector({
      ...options.collector,
      ports: collectorPorts,
      token: options.token,
      remoteWriteUrl: prometheus.remoteWriteUrl,
      jaegerOtlpGrpcEndpoint: jaeger.otlpGrpcEndpoint,
    });
    started.push(collector);
    return {
      collector,
      prometheus,
      jaeger,
      stop: async () => {
        await Promise.all([collector.dispose(), prometheus.dispose(), jaeger.dispose()]);
      },
    };
  } catch (error) {
    await Promise.all(started.map((p) => p.dispose()));
    throw error;
  }
}

/** Secrets as `wrangler dev` reads them (.dev.vars, created from the example by `npm start`). */
export async function devVars(): Promise<Record<string, string>> {
  for (const file of ['.dev.vars', '.dev.vars.example']) {
    try {
      const vars: Record<string, string> = {};
      for (const line of (await readFile(join(REPO_ROOT, file), 'utf8')).split('\n')) {
        const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
        if (m && !line.trimStart().startsWith('#')) vars[m[1]!] = m[2]!.replace(/^(['"])(.*)\1$/, '$2');
      }
      return vars;
    } catch {
      // next
    }
  }
  throw new Error('no .dev.vars or .dev.vars.example');
}
