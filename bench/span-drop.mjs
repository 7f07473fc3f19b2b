#!/usr/bin/env node
/**
 * What a span costs when the isolate's span buffer is full (issue 15: overload without collapse):
 * the real BufferingSpanProcessor (lib/telemetry/span-buffer.ts, bundled with esbuild, drops the
 * new span) against two alternatives written out here: drop-oldest with `splice` (the code before)
 * and drop-oldest with a ring buffer. 8,192 entries, filled first; `--spans` ended spans each
 * (default 2 M), 3 rounds. Prints ns per span; deterministic enough on a shared machine because
 * the differences are orders of magnitude or nothing.
 *
 *   node bench/span-drop.mjs [--spans 2000000]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const i = process.argv.indexOf('--spans');
const N = Math.min(Number(i > 0 ? process.argv[i + 1] : 2_000_000) || 2_000_000, 20_000_000);
const MAX = 8192;

const dir = mkdtempSync(join(tmpdir(), 'astraguard-span-drop-'));
try {
  const out = join(dir, 'span-buffer.mjs');
  execFileSync(join(ROOT, 'node_modules/.bin/esbuild'), [join(ROOT, 'lib/telemetry/span-buffer.ts'), '--bundle', '--platform=node', '--format=esm', `--outfile=${out}`, '--log-level=warning']);
  const { BufferingSpanProcessor } = await import(pathToFileURL(out).href);
  const sampled = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 };
  const span = { spanContext: () => sampled };
  const policies = {
    'drop-new (BufferingSpanProcessor)': () => {
      const b = new BufferingSpanProcessor({ maxBufferedSpans: MAX });
      return (s) => b.onEnd(s);
    },
    'drop-old, splice (before)': () => {
      const a = [];
      return (s) => {
        if ((s.spanContext().traceFlags & 1) === 0) return;
        a.push(s);
        if (a.length > MAX) a.splice(0, a.length - MAX);
      };
    },
    'drop-old, ring buffer': () => {
      const a = new Array(MAX);
      let head = 0;
      let size = 0;
      return (s) => {
        if ((s.spanContext().traceFlags & 1) === 0) return;
        if (size === MAX) {
          a[head] = s;
          head = (head + 1) % MAX;
          return;
        }
        a[(head + size++) % MAX] = s;
      };
    },
  };
  for (let round = 1; round <= 3; round++) {
    const row = [];
    for (const [name, make] of Object.entries(policies)) {
      const onEnd = make();
      for (let k = 0; k < MAX; k++) onEnd(span);
      const n = name.includes('splice') ? Math.min(N, 50_000) : N; // O(buffer) per span: fewer
      const t = performance.now();
      for (let k = 0; k < n; k++) onEnd(span);
      row.push(`${name}: ${(((performance.now() - t) * 1e6) / n).toFixed(1)} ns/span`);
    }
    console.log(`round ${round}: ${row.join('   ')}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
