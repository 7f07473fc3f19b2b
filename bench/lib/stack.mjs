/**
 * Loads test/support/stack.ts (helper functions that start the real collector, Prometheus and
 * Jaeger) from plain Node: esbuild strips its types into a temp .mjs (Node 22's own type stripping
 * refuses its constructor parameter properties); `import.meta.url` keeps pointing at the original,
 * so its repository paths resolve as in the tests.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { transform } from 'esbuild';

export async function loadStackHelpers(root) {
  const source = join(root, 'test/support/stack.ts');
  const { code } = await transform(await readFile(source, 'utf8'), { loader: 'ts', format: 'esm', target: 'node22' });
  const dir = await mkdtemp(join(tmpdir(), 'astraguard-bench-stack-'));
  const out = join(dir, 'stack.mjs');
  await writeFile(out, code.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(source).href)));
  return import(pathToFileURL(out).href);
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); NaN elsewhere. */
export async function cpuSeconds(pid) {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ=100)
  } catch {
    return NaN;
  }
}
