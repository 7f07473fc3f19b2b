/**
 * CPU pinning for the bench (Linux `taskset`): the measured workerd on one core, the load
 * generator on the other, so the client never competes with the isolate it measures for a core.
 * Without taskset, or on a single core, nothing is pinned and the plan says so.
 */
import { execFile, execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

const haveTaskset = (() => {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/**
 * The pinning plan: `worker` and `client` are CPU lists for taskset, or null when not pinned.
 *
 * @example
 * const plan = pinPlan(); // { worker: '0', client: '1', reason: 'taskset, 2 cores' }
 */
export function pinPlan({ enabled = true } = {}) {
  const n = cpus().length;
  if (!enabled) return { worker: null, client: null, reason: 'pinning off (--no-pin)' };
  if (!haveTaskset) return { worker: null, client: null, reason: 'taskset not found: not pinned' };
  if (n < 2) return { worker: null, client: null, reason: 'one core: not pinned' };
  return { worker: '0', client: n === 2 ? '1' : `1-${n - 1}`, reason: `taskset, ${n} cores: workerd on cpu 0, load generator on cpu ${n === 2 ? '1' : `1-${n - 1}`}` };
}

/** Pins every thread of `pid` to `cpuList` (no-op when null). Resolves true when pinned. */
export async function pinProcess(pid, cpuList) {
  if (!cpuList || !pid) return false;
  try {
    await execFileAsync('taskset', ['-a', '-p', '-c', cpuList, String(pid)]);
    return true;
  } catch {
    return false;
  }
}

/** `[command, args]` that runs `command args` on `cpuList` (unchanged when null). */
export function pinnedCommand(command, args, cpuList) {
  return cpuList ? ['taskset', ['-c', cpuList, command, ...args]] : [command, args];
}
