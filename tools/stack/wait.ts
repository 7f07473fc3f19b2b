/**
 * Waiting: `sleep`, bounded polling, HTTP readiness probes, free ports.
 * @module
 */
import { createServer } from 'node:net';
import { NPM_START_PORTS } from './paths.ts';

/**
 * Resolves after `millis`.
 *
 * @example
 * await sleep(1_000);
 */
export function sleep(millis: number): Promise<void> {
  return new Promise((r) => setTimeout(r, millis));
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

/**
 * HTTP status of a GET of `url` (body drained), or `undefined` when nothing answers within 2 s.
 *
 * @example
 * const status = await httpStatus('http://127.0.0.1:9090/-/ready'); // 200 once ready
 */
export async function httpStatus(url: string): Promise<number | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return undefined;
  }
}

/** Ports `npm start` uses (and Alertmanager's default gossip port); never handed out by {@link freePort}. */
const RESERVED_PORTS = new Set<number>([
  NPM_START_PORTS.worker,
  ...Object.values(NPM_START_PORTS.collector),
  NPM_START_PORTS.prometheus,
  NPM_START_PORTS.alertmanager,
  9094,
  NPM_START_PORTS.alertWebhook,
  ...Object.values(NPM_START_PORTS.jaeger),
]);
const handedOut = new Set<number>();

/**
 * A TCP port that is free on 127.0.0.1 right now (the OS picks it), never one of the
 * `npm start` ports and never one this process handed out before.
 *
 * @example
 * const port = await freePort();
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

/**
 * True when nothing listens on 127.0.0.1:`port` (we could bind it).
 *
 * @example
 * if (!(await portFree(9090))) throw new Error('9090 is busy');
 */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const server = createServer();
    server.once('error', () => resolvePort(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolvePort(true)));
  });
}
