/**
 * The bench harness cannot rot: `node bench/run.mjs --quick` runs end to end (builds the four
 * variants with wrangler, runs them on workerd, starts the real collector, Prometheus and Jaeger,
 * checks that bare and ours answer identical bytes, profiles the cost by category, runs every
 * part for a few seconds) and writes a well-formed result. No figure is asserted: on a
 * shared CI machine they mean nothing; only the shape and that every part produced numbers.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, test } from 'vitest';
import { REPO_ROOT } from '../support/stack';

const execFileAsync = promisify(execFile);
let dir: string | undefined;

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const finite = (x: unknown) => typeof x === 'number' && Number.isFinite(x);

test(
  'npm run bench -- --quick writes a well-formed result',
  async () => {
    dir = await mkdtemp(join(tmpdir(), 'astraguard-bench-quick-'));
    const out = join(dir, 'quick.json');
    const { stdout } = await execFileAsync(process.execPath, [join(REPO_ROOT, 'bench/run.mjs'), '--quick', '--out', out], {
      cwd: REPO_ROOT,
      timeout: 12 * 60_000,
      killSignal: 'SIGTERM', // run.mjs stops what it started on SIGTERM
      maxBuffer: 32 * 1024 * 1024,
    });
    expect(stdout).toContain('### 1. Overhead');
    const r = JSON.parse(await readFile(out, 'utf8'));

    expect(r.schema).toBe('astraguard-bench/1');
    expect(r.quick).toBe(true);
    expect(r.machine.cpus).toBeGreaterThan(0);
    expect(r.variants).toEqual(['bare', 'ours', 'hono-otel', 'otel-cf-workers']);

    // Fair bare: identical responses, headers included (the run fails before measuring otherwise)
    expect(r.fairness.identical).toBe(true);
    expect(r.fairness.headers.length).toBeGreaterThan(5);
    // (0) the cost profile: every category priced for bare, ours and ours at 10 % sampling
    expect(stdout).toContain('### 0. Cost profile');
    for (const name of ['bare', 'ours', 'ours-sampled-0.1']) {
      const p = r.profile.variants[name];
      expect(p.busySamples).toBeGreaterThan(0);
      expect(Object.keys(p.microsPerRequest)).toEqual(expect.arrayContaining(['span creation + attributes', 'span buffer + OTLP encoding', 'metric recording (incl. attribute hashing)', 'JSON log line', 'AsyncLocalStorage context', 'Content-Length rewrite', 'flush scheduling', 'app and runtime (not telemetry)']));
      expect(Object.values(p.microsPerRequest).every(finite)).toBe(true);
      // The categories split the whole CPU per request, no more.
      const sum = Object.values(p.microsPerRequest as Record<string, number>).reduce((a, b) => a + b, 0);
      expect(Math.abs(sum - p.cpuMicrosPerRequest)).toBeLessThan(p.cpuMicrosPerRequest * 0.01);
    }
    // bare makes no telemetry of its own: no encoding, no log line, no flush
    expect(r.profile.variants.bare.microsPerRequest['JSON log line']).toBe(0);
    // (1) every variant measured more than once, with numbers and the run's noise next to each ratio
    for (const name of r.variants) {
      const v = r.overhead.variants[name];
      expect(v.runs.length).toBeGreaterThan(1);
      expect(finite(v.rps) && finite(v.p50) && finite(v.p99) && finite(v.ratioToBare)).toBe(true);
      expect(finite(v.ratioMin) && finite(v.ratioMax) && finite(v.cpuRatioMin) && finite(v.cpuRatioMax)).toBe(true);
    }
    // (2) export economy for the telemetry variants, metrics and traces apart
    for (const name of ['ours', 'hono-otel', 'otel-cf-workers']) {
      const e = r.economy.variants[name];
      expect(e.requests).toBeGreaterThan(0);
      expect(finite(e.exportsPerRequest)).toBe(true);
      expect(finite(e.metricsPushes.bytesPerRequest) && finite(e.spanExports.bytesPerRequest)).toBe(true);
    }
    // CPU per request at the constant rate, next to part 1's saturated figure
    expect(finite(r.economy.variants.ours.workerdCpuMicrosPerRequest)).toBe(true);
    // (3) freshness probes ran
    expect(r.freshness.probes).toBeGreaterThan(0);
    // (4) collector down vs up, per variant
    for (const name of r.variants) {
      expect(finite(r.collectorDown.variants[name].up.p99) && finite(r.collectorDown.variants[name].down.p99)).toBe(true);
    }
    // (5) scale on paper for 1k/10k/100k req/s, with a named first bottleneck
    expect(r.scale.rows.map((row: { rps: number }) => row.rps)).toEqual([1_000, 10_000, 100_000]);
    expect(typeof r.scale.firstBottleneck.part).toBe('string');
    // (5c) each aggregation object measured alone, and the per-object rates at 10/1k/10k isolates
    for (const part of [r.aggregatorCapacity, r.aggregatorCapacity.leaf, r.aggregatorCapacity.ownerForwards]) expect(part.batchesPerSecond).toBeGreaterThan(0);
    expect(r.tier.rows.map((row: { isolates: number }) => row.isolates)).toEqual([10, 1_000, 10_000]);
  },
  15 * 60_000,
);
