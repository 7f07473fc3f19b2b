/**
 * The aggregation part of the bench on its own (about 1 min): builds the `ours` variant, measures
 * a shard, a leaf and an owner shard each alone (bench/lib/capacity.mjs), and prints the
 * per-object rates at 10, 1,000 and 10,000 isolates with the first wall of each design
 * (bench/lib/scale.mjs `tierOnPaper`). Writes bench/results/aggregation.json.
 *
 *   node bench/aggregation.mjs [--millis 5000] [--points 13] [--forward-points 150]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildVariant } from './lib/build.mjs';
import { measureAggregation } from './lib/capacity.mjs';
import { tierOnPaper } from './lib/scale.mjs';
import { formatReport } from './lib/table.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const option = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const t0 = Date.now();
const say = (msg) => process.stdout.write(`[aggregation ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);

const build = await buildVariant(ROOT, 'ours');
try {
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '?', loadavgAtStart: loadavg().map((x) => +x.toFixed(2)), node: process.version };
  const aggregatorCapacity = await measureAggregation({ root: ROOT, build, millis: option('--millis', 5000), pointsPerBatch: option('--points', 13), pointsPerForward: option('--forward-points', 150), say });
  const result = { schema: 'astraguard-bench-aggregation/1', startedAt: new Date(t0).toISOString(), machine, aggregatorCapacity };
  result.tier = tierOnPaper(result);
  machine.loadavgAtEnd = loadavg().map((x) => +x.toFixed(2));
  const out = join(ROOT, 'bench/results/aggregation.json');
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify(result, null, 2) + '\n');
  process.stdout.write('\n' + formatReport({ ...result, machine: { ...machine, memTotalGiB: '?', commit: '-', dirtyFiles: 0 } }) + '\n');
  say(`wrote ${out}`);
} finally {
  await build.dispose();
}
