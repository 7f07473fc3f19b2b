/**
 * Runs a built variant directly on workerd through Miniflare (no wrangler dev proxy): one
 * Miniflare = one workerd process = one Worker isolate plus its Durable Objects, listening on
 * 127.0.0.1:<port>.
 */
import { Miniflare, NoOpLog, convertV4MiniflareOptions } from 'miniflare';
import { wranglerSettings } from './build.mjs';

/**
 * Starts `build` (from buildVariant). `bindings` go over wrangler.toml's [vars].
 * The ingest rate limiter is bound with a limit no bench reaches, so its cost is in every
 * variant but it never answers 429.
 */
export async function startVariant(root, build, { bindings = {}, port = 0 } = {}) {
  const { compatibilityDate, compatibilityFlags, vars, durableObjects } = await wranglerSettings(root);
  // The Worker's console output (ours logs one JSON line per request) is counted, not printed;
  // the last warnings/errors are kept for the report.
  const logs = { lines: 0, last: [] };
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: '127.0.0.1',
      port,
      log: new NoOpLog(),
      handleStructuredLogs: (entry) => {
        logs.lines++;
        if (entry?.level === 'error' || entry?.level === 'warn') {
          logs.last.push(String(entry.message ?? '').slice(0, 300));
          if (logs.last.length > 10) logs.last.shift();
        }
      },
      workers: [
        {
          name: `bench-${build.name}`,
          modules: true,
          modulesRoot: build.outdir,
          scriptPath: build.script,
          compatibilityDate,
          compatibilityFlags,
          bindings: { ...vars, ...bindings },
          durableObjects: Object.fromEntries(Object.entries(durableObjects).map(([binding, className]) => [binding, { className, useSQLite: true }])),
          ratelimits: { INGEST_RATE_LIMITER: { namespace_id: '1001', simple: { limit: 1_000_000_000, period: 60 } } },
        },
      ],
    }),
  );
  const url = String(await mf.ready).replace(/\/$/, '');
  return {
    name: build.name,
    mf,
    url,
    logs,
    /** The variant's `/__bench/stats` JSON. */
    async stats() {
      const r = await fetch(`${url}/__bench/stats`, { signal: AbortSignal.timeout(10_000) });
      if (!r.ok) throw new Error(`${build.name} /__bench/stats: ${r.status}`);
      return r.json();
    },
    dispose: () => mf.dispose(),
  };
}
