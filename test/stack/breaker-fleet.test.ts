/**
 * The breaker state gauge across isolates: two isolates of the deploy bundle in one Miniflare
 * (each its own module globals, so its own breakers; the Durable Objects shared), exporting to a
 * real collector + Prometheus.
 *
 * Isolate A's storage breaker is opened (an injected outage), then only isolate B serves, with
 * its own breaker closed. The gauge must keep showing the fleet state — OPEN, because A reported
 * it — without flapping to B's CLOSED, until A has been silent for the board's TTL; then it
 * shows CLOSED. A then recovers through its own half-open probe.
 */
import { join } from 'node:path';
import { convertV4MiniflareOptions, Miniflare } from 'miniflare';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { buildBundle, wranglerSettings, type Bundle } from '../support/miniflare-isolates';
import { REPO_ROOT, devVars, promQuery, sleep, startStack, stopAll, waitFor, type Stack } from '../support/stack';

const BOARD_TTL_MS = 10_000;

let stack: Stack;
let bundle: Bundle;
let mf: Miniflare;
let vars: Record<string, string>;
let fetchA: (path: string, init?: RequestInit) => Promise<Response>;
let fetchB: (path: string, init?: RequestInit) => Promise<Response>;

beforeAll(async () => {
  vars = await devVars();
  stack = await startStack({ token: vars.OTEL_EXPORTER_OTLP_TOKEN, scrapeInterval: '1s' });
  bundle = await buildBundle();
  const settings = await wranglerSettings();
  const names = ['edge-a', 'edge-b'];
  const objects = { MISSION_STATE: 'MissionState', SATELLITE_STATE: 'SatelliteState', METRICS_AGGREGATOR: 'MetricsAggregator', CHAOS_CONTROL: 'ChaosControl' };
  mf = new Miniflare(
    convertV4MiniflareOptions({
      handleStructuredLogs: () => undefined,
      workers: names.map((name, i) => ({
        name,
        modules: true,
        scriptPath: bundle.script,
        modulesRoot: bundle.dir,
        compatibilityDate: settings.compatibilityDate,
        compatibilityFlags: settings.compatibilityFlags,
        bindings: {
          ...settings.vars,
          ADMIN_TOKEN: vars.ADMIN_TOKEN ?? '',
          OTEL_EXPORTER_OTLP_TOKEN: vars.OTEL_EXPORTER_OTLP_TOKEN ?? '',
          OTEL_EXPORTER_OTLP_ENDPOINT: stack.collector.urls.otlpHttp,
        },
        durableObjects: Object.fromEntries(
          Object.entries(objects).map(([binding, className]) => [binding, i === 0 ? { className, useSQLite: true } : { className, scriptName: names[0], useSQLite: true }]),
        ),
      })),
    }),
  );
  await mf.ready;
  const [a, b] = await Promise.all(names.map((n) => mf.getWorker(n)));
  fetchA = (path, init) => a!.fetch(`http://edge.test${path}`, init as never) as unknown as Promise<Response>;
  fetchB = (path, init) => b!.fetch(`http://edge.test${path}`, init as never) as unknown as Promise<Response>;
}, 20 * 60_000);

afterAll(async () => {
  await mf?.dispose().catch(() => undefined);
  await bundle?.dispose();
  await stopAll();
}, 60_000);

const admin = () => ({ authorization: `Bearer ${vars.ADMIN_TOKEN}`, 'content-type': 'application/json' });
const json = async (r: Promise<Response>) => {
  const res = await r;
  return { status: res.status, body: (await res.json()) as any };
};
const gauge = async (expr = 'astra_circuit_breaker_state{name="storage"}') => {
  const r = await promQuery(stack.prometheus.url, expr);
  return r.length ? Number(r[0]!.value[1]) : undefined;
};

test('the gauge shows the fleet state: no flapping to a closed isolate while another is open', { timeout: 180_000 }, async () => {
  // Both isolates have used storage (and so reported their breakers) before the fault.
  expect((await fetchA('/api/v1/phase')).status).toBe(200);
  expect((await fetchB('/api/v1/phase')).status).toBe(200);

  // An outage, seen by A only: two reads × 3 attempts open A's breaker.
  const injected = await json(fetchA('/api/v1/chaos', { method: 'POST', headers: admin(), body: JSON.stringify({ type: 'outage', target: 'storage', duration_s: 120 }) }));
  expect(injected.status).toBe(201);
  expect((await fetchA('/api/v1/phase')).status).toBe(503);
  expect((await fetchA('/api/v1/phase')).status).toBe(503);
  const seenByA = await json(fetchA('/api/v1/chaos', { headers: admin() }));
  expect(seenByA.body.circuit_breakers).toMatchObject({ isolate: { storage: 'OPEN' }, fleet: { storage: 'OPEN' } });
  const openedAt = Date.now();
  expect((await fetchB('/api/v1/chaos', { method: 'DELETE', headers: admin() })).status).toBe(200);

  // Only B serves now, its own breaker closed; the fleet view (and so the gauge) stays OPEN.
  await sleep(1100); // B's copy of the faults is at most 1 s old
  const samples: number[] = [];
  while (Date.now() - openedAt < BOARD_TTL_MS - 2000) {
    expect((await fetchB('/api/v1/phase')).status).toBe(200);
    const g = await gauge();
    if (g !== undefined) samples.push(g);
    await sleep(200);
  }
  const seenByB = await json(fetchB('/api/v1/chaos', { headers: admin() }));
  expect(seenByB.body.circuit_breakers).toMatchObject({ isolate: { storage: 'CLOSED' }, fleet: { storage: 'OPEN' } });
  // Once A's OPEN reached Prometheus, it never flapped back to B's 0 while A's report was live.
  const firstOpen = samples.indexOf(1);
  expect(firstOpen, `gauge samples ${samples.join(',')}`).toBeGreaterThanOrEqual(0);
  expect(samples.slice(firstOpen).every((v) => v === 1), `gauge samples ${samples.join(',')}`).toBe(true);

  // A stays silent past the board's TTL: B's syncs now give the fleet CLOSED, and the gauge 0.
  const closed = await waitFor(
    async () => {
      expect((await fetchB('/api/v1/phase')).status).toBe(200);
      const view = await json(fetchB('/api/v1/chaos', { headers: admin() }));
      return view.body.circuit_breakers.fleet.storage === 'CLOSED' && (await gauge()) === 0 ? Date.now() : undefined;
    },
    { timeoutMillis: 60_000, intervalMillis: 500, description: 'fleet CLOSED after A went silent' },
  );
  expect(closed - openedAt).toBeGreaterThanOrEqual(BOARD_TTL_MS);

  // A's own breaker is still OPEN until its cool-down; its probe then succeeds and closes it.
  const recovered = await waitFor(async () => ((await fetchA('/api/v1/phase')).status === 200 ? true : undefined), { timeoutMillis: 30_000, intervalMillis: 300, description: 'A recovers' });
  expect(recovered).toBe(true);
  const transitions = await waitFor(
    async () => {
      const v = await gauge('sum(astra_circuit_breaker_transitions_total{name="storage",from_state="HALF_OPEN",to_state="CLOSED"})');
      return v !== undefined && v >= 1 ? v : undefined;
    },
    { timeoutMillis: 30_000, description: 'HALF_OPEN → CLOSED in Prometheus' },
  );
  expect(transitions).toBe(1);
  expect(await gauge('sum(astra_circuit_breaker_transitions_total{name="storage",from_state="CLOSED",to_state="OPEN"})')).toBe(1);
});
