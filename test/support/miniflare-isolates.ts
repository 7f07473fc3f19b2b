/**
 * Several independent Worker isolates of the built bundle in ONE Miniflare (Node side, vitest
 * `stack` project): each `workers` entry is its own isolate with its own module globals (meter
 * provider, flusher, caches), and the Durable Objects are defined by the first worker and bound
 * by `scriptName` in the others, so every isolate shares one MissionState and one
 * MetricsAggregator — as one deployed Worker with many isolates does.
 *
 * @example
 * const bundle = await buildBundle();
 * const edge = await startIsolates({ bundle, count: 3, bindings: { OTEL_EXPORTER_OTLP_ENDPOINT: url } });
 * const res = await edge.fetch(1, "/health");
 * await edge.dispose();
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { REPO_ROOT, freePort, waitFor } from "./stack";

const execFileAsync = promisify(execFile);

/** A built Worker bundle (`wrangler deploy --dry-run --outdir`), in a temp dir of its own. */
export interface Bundle {
  dir: string;
  /** The entry module, `${dir}/index.js`. */
  script: string;
  dispose(): Promise<void>;
}

/**
 * Builds the Worker exactly as it deploys: `npx wrangler deploy --dry-run --outdir <tmp>` (a temp
 * dir rather than dist/, so it never races another build in the same checkout).
 */
export async function buildBundle(): Promise<Bundle> {
  const dir = await mkdtemp(join(tmpdir(), "astraguard-bundle-"));
  try {
    await execFileAsync("npx", ["wrangler", "deploy", "--dry-run", "--outdir", dir], {
      cwd: REPO_ROOT,
      timeout: 180_000,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
    });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    await rm(dir, { recursive: true, force: true });
    throw new Error(`wrangler build failed: ${e.message}\n${(e.stdout ?? "").slice(-2000)}\n${(e.stderr ?? "").slice(-2000)}`);
  }
  return { dir, script: join(dir, "index.js"), dispose: () => rm(dir, { recursive: true, force: true }) };
}

/** compatibility_date, compatibility_flags and [vars] of wrangler.toml (the simple forms it uses). */
export async function wranglerSettings(): Promise<{ compatibilityDate: string; compatibilityFlags: string[]; vars: Record<string, string> }> {
  const toml = await readFile(join(REPO_ROOT, "wrangler.toml"), "utf8");
  const compatibilityDate = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(toml)?.[1] ?? "2026-11-01";
  const flags = /^compatibility_flags\s*=\s*\[([^\]]*)\]/m.exec(toml)?.[1] ?? "";
  const compatibilityFlags = [...flags.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
  const vars: Record<string, string> = {};
  const section = /^\[vars\]\s*$([\s\S]*?)(?=^\[)/m.exec(toml)?.[1] ?? "";
  for (const m of section.matchAll(/^([A-Z0-9_]+)\s*=\s*"([^"]*)"/gm)) vars[m[1]!] = m[2]!;
  return { compatibilityDate, compatibilityFlags, vars };
}

/** Options of {@link startIsolates}. */
export interface IsolatesOptions {
  bundle: Bundle;
  /** Number of isolates (workers), ≥ 1. */
  count: number;
  /** Bindings over wrangler.toml's [vars] (endpoint, token, secrets). */
  bindings?: Record<string, string>;
  /** Log lines to count (over the whole run, not only the kept tail), by name. */
  countLogs?: Record<string, RegExp>;
}

/** Running isolates. */
export interface Isolates {
  mf: Miniflare;
  names: string[];
  /** Sends a request to isolate `i` (its own `fetch` handler, its own globals). */
  fetch(i: number, path: string, init?: RequestInit): Promise<Response>;
  /** The last ~500 log lines of the isolates. */
  logs(): string;
  /** How many log lines matched each of `countLogs` so far. */
  logCounts(): Record<string, number>;
  /** Evicts a MetricsAggregator shard's instance (its SQLite storage stays): in-flight RPCs fail. */
  evictAggregator(shard?: number): Promise<void>;
  /** RPC to a MetricsAggregator shard (`metrics-shard-N`), from Node. */
  aggregator(shard?: number): Promise<any>;
  /** Evicts a MetricsLeaf's instance (its SQLite storage stays): in-flight RPCs fail. */
  evictLeaf(leaf?: number): Promise<void>;
  /** RPC to a MetricsLeaf (`metrics-leaf-N`), from Node. */
  leaf(leaf?: number): Promise<any>;
  dispose(): Promise<void>;
}

/** Starts `count` isolates of `bundle` sharing the Durable Objects of the first. */
export async function startIsolates(options: IsolatesOptions): Promise<Isolates> {
  const { compatibilityDate, compatibilityFlags, vars } = await wranglerSettings();
  const names = Array.from({ length: Math.max(1, options.count) }, (_, i) => `astraguard-edge-${i}`);
  const owner = names[0]!;
  // Miniflare 5 takes a new option shape; the v4 shape (the documented one) converts to it.
  const recent: string[] = [];
  const counts: Record<string, number> = Object.fromEntries(Object.keys(options.countLogs ?? {}).map((k) => [k, 0]));
  const mf = new Miniflare(
    convertV4MiniflareOptions({
    // The Worker logs a line per request: keep the last ones for diagnostics instead of flooding the test output.
    handleStructuredLogs: (log: { level: string; message: string }) => {
      for (const [name, re] of Object.entries(options.countLogs ?? {})) if (re.test(log.message)) counts[name] = (counts[name] ?? 0) + 1;
      recent.push(`${log.level} ${log.message}`);
      if (recent.length > 500) recent.splice(0, recent.length - 500);
    },
    workers: names.map((name, i) => ({
      name,
      modules: true,
      scriptPath: options.bundle.script,
      // Module names are relative to this root (the bundle lives in a temp dir).
      modulesRoot: options.bundle.dir,
      compatibilityDate,
      compatibilityFlags,
      bindings: { ...vars, ...options.bindings },
      durableObjects:
        i === 0
          ? {
              MISSION_STATE: { className: "MissionState", useSQLite: true },
              METRICS_AGGREGATOR: { className: "MetricsAggregator", useSQLite: true },
              CHAOS_CONTROL: { className: "ChaosControl", useSQLite: true },
              SATELLITE_STATE: { className: "SatelliteState", useSQLite: true },
              METRICS_LEAF: { className: "MetricsLeaf", useSQLite: true },
            }
          : {
              MISSION_STATE: { className: "MissionState", scriptName: owner, useSQLite: true },
              METRICS_AGGREGATOR: { className: "MetricsAggregator", scriptName: owner, useSQLite: true },
              CHAOS_CONTROL: { className: "ChaosControl", scriptName: owner, useSQLite: true },
              SATELLITE_STATE: { className: "SatelliteState", scriptName: owner, useSQLite: true },
              METRICS_LEAF: { className: "MetricsLeaf", scriptName: owner, useSQLite: true },
            },
    })),
    }),
  );
  await mf.ready;
  const fetchers = await Promise.all(names.map((n) => mf.getWorker(n)));
  return {
    mf,
    names,
    logs: () => recent.join("\n"),
    logCounts: () => ({ ...counts }),
    evictAggregator: (shard = 0) => mf.unsafeEvictDurableObject(owner, "MetricsAggregator", { name: `metrics-shard-${shard}` }),
    evictLeaf: (leaf = 0) => mf.unsafeEvictDurableObject(owner, "MetricsLeaf", { name: `metrics-leaf-${leaf}` }),
    leaf: async (leaf = 0) => {
      const ns = await mf.getDurableObjectNamespace("METRICS_LEAF", owner);
      return ns.get(ns.idFromName(`metrics-leaf-${leaf}`));
    },
    fetch: (i, path, init) => fetchers[i % fetchers.length]!.fetch(`http://astraguard.test${path}`, init as never) as unknown as Promise<Response>,
    aggregator: async (shard = 0) => {
      const ns = await mf.getDurableObjectNamespace("METRICS_AGGREGATOR", owner);
      return ns.get(ns.idFromName(`metrics-shard-${shard}`));
    },
    dispose: () => mf.dispose(),
  };
}

/** One Worker (the deploy bundle) on an HTTP port of its own. */
export interface WorkerHandle {
  url: string;
  logs: string[];
  stop(): Promise<void>;
}

/**
 * The Worker as it deploys (`wrangler deploy --dry-run` bundle) in Miniflare, listening on a free
 * port: a fixed snapshot, so edits to the checkout during the run (which `wrangler dev` would
 * hot-reload, dropping in-flight requests and the isolate's breakers) cannot disturb the drill.
 */
export async function startWorker(collectorUrl: string, secrets: Record<string, string>): Promise<WorkerHandle> {
  const bundle = await buildBundle();
  const { compatibilityDate, compatibilityFlags, vars } = await wranglerSettings();
  const port = await freePort();
  const logs: string[] = [];
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: '127.0.0.1',
      port,
      handleStructuredLogs: (log: { level: string; message: string }) => {
        logs.push(`${log.level} ${log.message}`);
        if (logs.length > 2000) logs.splice(0, logs.length - 2000);
      },
      modules: true,
      scriptPath: bundle.script,
      modulesRoot: bundle.dir,
      compatibilityDate,
      compatibilityFlags,
      bindings: {
        ...vars,
        ADMIN_TOKEN: secrets.ADMIN_TOKEN ?? '',
        OPERATOR_TOKEN: secrets.OPERATOR_TOKEN ?? '',
        OTEL_EXPORTER_OTLP_TOKEN: secrets.OTEL_EXPORTER_OTLP_TOKEN ?? '',
        OTEL_EXPORTER_OTLP_ENDPOINT: collectorUrl,
      },
      durableObjects: {
        MISSION_STATE: { className: 'MissionState', useSQLite: true },
        METRICS_AGGREGATOR: { className: 'MetricsAggregator', useSQLite: true },
        CHAOS_CONTROL: { className: 'ChaosControl', useSQLite: true },
        SATELLITE_STATE: { className: 'SatelliteState', useSQLite: true },
        METRICS_LEAF: { className: 'MetricsLeaf', useSQLite: true },
      },
    }),
  );
  const stop = async () => {
    await mf.dispose().catch(() => undefined);
    await bundle.dispose();
  };
  try {
    const url = (await mf.ready).toString().replace(/\/$/, '');
    await waitFor(async () => (await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined))?.status === 200, {
      timeoutMillis: 60_000,
      description: 'Worker /health',
    });
    return { url, logs, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
