/**
 * The stack tooling (tools/stack/: starts the real collector, Prometheus and Jaeger) for the
 * benchmark, and per-process CPU accounting.
 */
import { readFile } from 'node:fs/promises';

/**
 * The tools/stack/ module as one object (bench/run.mjs passes it around as `stack.helpers`).
 * Node runs its TypeScript directly (type stripping): nothing is transpiled.
 */
export function loadStackHelpers() {
  return import('../../tools/stack/index.ts');
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
