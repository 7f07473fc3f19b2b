/**
 * Stack tooling shared by `npm start` (scripts/start.mjs), the stack tests (test/stack, through
 * test/support/stack.ts) and the benchmark (bench/): how each backend is started (the
 * AstraGuard collector, Prometheus, Jaeger v2, Alertmanager and the alert webhook), the local
 * secrets, and small helpers. Erasable-only TypeScript: Node 22 runs it as is (type stripping),
 * so `.mjs` scripts import it directly.
 *
 * One code path per backend: `xxxCommand({ ports, ... })` gives the command line, env and
 * readiness URL (and writes the generated config). `npm start` passes the fixed
 * {@link NPM_START_PORTS} and runs the commands with `concurrently`; the `startXxx` functions
 * pass free ports and run them as managed processes in a temp dir, so tests can run next to a
 * running `npm start`.
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
export * from './paths.ts';
export * from './wait.ts';
export * from './binaries.ts';
export * from './processes.ts';
export * from './collector.ts';
export * from './prometheus.ts';
export * from './jaeger.ts';
export * from './alertmanager.ts';
export * from './stack.ts';
export * from './dev-vars.ts';
export * from './balancer.ts';
