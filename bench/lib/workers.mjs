/**
 * Runs a built variant directly on workerd through Miniflare (no wrangler dev proxy): one
 * Miniflare = one workerd process = one Worker isolate plus its Durable Objects, listening on
 * 127.0.0.1:<port>.
 */
import { readFile, readdir } from 'node:fs/promises';
import { Miniflare, NoOpLog, convertV4MiniflareOptions } from 'miniflare';
import { wranglerSettings } from './build.mjs';

/** Pids of this Node process's children whose command is workerd (Linux /proc; [] elsewhere). */
async function workerdChildren() {
  const out = [];
  for (const entry of await readdir('/proc').catch(() => [])) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && stat.includes('(workerd)')) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Starts `build` (from buildVariant). `bindings` go over wrangler.toml's [vars].
 * The ingest rate limiter is bound with a limit no bench reaches, so its cost is in every
 * variant but it never answers 429.
 */
export async function startVariant(root, build, { bindings = {}, port = 0, name = build.name, inspectorPort } = {}) {
  const { compatibilityDate, compatibilityFlags, vars, durableObjects } = await wranglerSettings(root);
  // The Worker's console output (ours logs one JSON line per request) is counted, not printed;
  // the last warnings/errors are kept for the report.
  const logs = { lines: 0, last: [] };
  const before = new Set(await workerdChildren());
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: '127.0.0.1',
      port,
      ...(inspectorPort && { inspectorPort, inspectorHost: '127.0.0.1' }),
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
  // The workerd process this Miniflare spawned (variants are started one after another), for
  // its CPU time per request.
  const pid = (await workerdChildren()).find((p) => !before.has(p));
  return {
    name,
    build: build.name,
    mf,
    url,
    logs,
    pid,
    /** The variant's `/__bench/stats` JSON. */
    async stats() {
      const r = await fetch(`${url}/__bench/stats`, { signal: AbortSignal.timeout(10_000) });
      if (!r.ok) throw new Error(`${build.name} /__bench/stats: ${r.status}`);
      return r.json();
    },
    dispose: () => mf.dispose(),
  };
}
