/**
 * Processes: how one backend is started (a {@link ProcessCommand}, the same for `npm start` and
 * the tests), and the managed child processes the tests and the benchmark run.
 *
 * Every process {@link launch} starts is tracked: `stop()`/`dispose()` end it (SIGTERM, then
 * SIGKILL after `stopTimeoutMillis`), {@link stopAll} ends all of them (call it in `afterAll`),
 * and a process `exit` hook SIGKILLs any that are still running. Only pids this module spawned
 * are ever signalled.
 *
 * Environment: `ASTRAGUARD_STACK_LOGS=1` echoes every process line to stderr with a prefix;
 * `ASTRAGUARD_KEEP_STACK_TMP=1` keeps the temp dirs (configs, logs, TSDB) after `dispose()`.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpStatus, sleep, waitFor } from './wait.ts';

/**
 * How to start one backend: built by `collectorCommand`, `prometheusCommand`, ... (which also
 * write any generated config), run by {@link launch} in tests and by `concurrently` in
 * `npm start` (see {@link shellCommand}).
 */
export interface ProcessCommand {
  /** Short name used in log prefixes and errors (`collector`, `prometheus`, `jaeger`, ...). */
  name: string;
  /** Executable (absolute path). */
  command: string;
  args: string[];
  /** Environment on top of the parent's. */
  env: Record<string, string>;
  /** A GET answers 200 once the process is ready. */
  readyUrl: string;
}

/**
 * `exec 'command' 'arg' ...`: a {@link ProcessCommand} as one POSIX shell command line (for
 * `concurrently`, which runs commands through a shell; `exec` so the signal reaches the process).
 *
 * @example
 * shellCommand({ name: 'x', command: '/usr/bin/prometheus', args: ['--log.level=info'], env: {}, readyUrl: '' });
 * // "exec '/usr/bin/prometheus' '--log.level=info'"
 */
export function shellCommand(spec: ProcessCommand): string {
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  return ['exec', ...[spec.command, ...spec.args].map(quote)].join(' ');
}

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
  /** Binary to run; default from `stackBinaries()`. */
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

const isOk = (status: number | undefined) => status !== undefined && status >= 200 && status < 300;

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

// Fields instead of constructor parameter properties: Node's type stripping only erases types.
class ManagedProcess implements StackProcess {
  readonly name: string;
  readonly dir: string;
  readonly logFile: string;
  private readonly spec: ProcessCommand;
  private readonly options: ProcessOptions;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private tail: string[] = [];
  private log: WriteStream;
  private stopping = false;
  private disposed = false;

  constructor(spec: ProcessCommand, dir: string, options: ProcessOptions) {
    this.spec = spec;
    this.options = options;
    this.name = spec.name;
    this.dir = dir;
    this.logFile = join(dir, `${spec.name}.log`);
    this.log = createWriteStream(this.logFile, { flags: 'a' });
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
      env: { ...process.env, ...this.spec.env, ...this.options.env },
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
      await waitFor(async () => isOk(await httpStatus(this.spec.readyUrl)), {
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

const created = new Set<ManagedProcess>();

/**
 * Stops and disposes every process this module started (in parallel). Use as `afterAll(stopAll)`.
 * Also stops processes whose start failed half way.
 *
 * @example
 * afterAll(stopAll);
 */
export async function stopAll(): Promise<void> {
  await Promise.all([...created].map((p) => p.dispose()));
  created.clear();
}

/**
 * Makes a temp dir, lets `build` write its config there and describe the process, starts it
 * and waits until its `readyUrl` answers 2xx. On failure the process is stopped, the temp dir
 * removed, and the error carries the log tail.
 *
 * @example
 * const port = await freePort();
 * const webhook = await launch('alert-webhook', () => alertWebhookCommand({ port }), {});
 */
export async function launch(
  name: string,
  build: (dir: string) => Promise<ProcessCommand> | ProcessCommand,
  options: ProcessOptions,
): Promise<StackProcess> {
  const dir = await mkdtemp(join(tmpdir(), `astraguard-${name}-`));
  let managed: ManagedProcess;
  try {
    managed = new ManagedProcess(await build(dir), dir, options);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
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
