/**
 * The stack's binaries: built (or found in the cache) by collector/build.sh and
 * scripts/build-backends.sh.
 * @module
 */
import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { parseEnv, promisify } from 'node:util';
import { REPO_ROOT } from './paths.ts';

const execFileAsync = promisify(execFile);

/** Absolute paths of the stack binaries. */
export interface StackBinaries {
  /** `otelcol-astraguard`, from `collector/build.sh` (cached under ~/.cache/astraguard). */
  collector: string;
  /** Jaeger v2 (`jaeger`), from `scripts/build-backends.sh` (cached under ~/.cache/astraguard). */
  jaeger: string;
  /** Prometheus (Debian's `/usr/bin/prometheus` unless `PROMETHEUS_BIN` is set). */
  prometheus: string;
  /** Alertmanager (Debian's `/usr/bin/prometheus-alertmanager` unless `ALERTMANAGER_BIN` is set). */
  alertmanager: string;
}

/** Options of {@link stackBinaries}. */
export interface StackBinariesOptions {
  /**
   * Build nothing: only ask the scripts where the binaries are (`--print-path`,
   * `--print-paths`) and reject when one is missing (`npm start --skip-build`). Default false.
   */
  skipBuild?: boolean;
  /** Called with each script's command line before it runs (`npm start` prints it). */
  onRun?: (commandLine: string) => void;
}

const memo = new Map<boolean, Promise<StackBinaries>>();

/**
 * Paths of the stack binaries, building/installing what is missing by running
 * `bash collector/build.sh` and `bash scripts/build-backends.sh` (both return at once when
 * cached; a cold build takes minutes, so give the calling hook a long timeout). Their progress
 * (stderr) is shown live. Memoized per process. Rejects with the build script's output when a
 * build fails.
 *
 * @example
 * const { collector, jaeger, prometheus, alertmanager } = await stackBinaries();
 * const cached = await stackBinaries({ skipBuild: true }); // rejects if one was never built
 */
export function stackBinaries(options: StackBinariesOptions = {}): Promise<StackBinaries> {
  const skipBuild = options.skipBuild ?? false;
  let binaries = memo.get(skipBuild);
  if (!binaries) {
    binaries = findBinaries(skipBuild, options.onRun);
    memo.set(skipBuild, binaries);
    binaries.catch(() => memo.delete(skipBuild));
  }
  return binaries;
}

async function findBinaries(skipBuild: boolean, onRun: ((commandLine: string) => void) | undefined): Promise<StackBinaries> {
  const run = async (script: string, args: string[]): Promise<string> => {
    onRun?.(`bash ${[script, ...args].join(' ')}`);
    try {
      const running = execFileAsync('bash', [join(REPO_ROOT, script), ...args], {
        cwd: REPO_ROOT,
        maxBuffer: 64 * 1024 * 1024,
        timeout: 30 * 60_000,
      });
      // Show build progress live (a cold build is silent for minutes otherwise).
      running.child.stderr?.pipe(process.stderr);
      const { stdout } = await running;
      return stdout;
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      throw new Error(`bash ${script} failed: ${e.message}\n${(e.stderr ?? '').slice(-4000)}`, { cause: error });
    }
  };
  // Sequential on purpose: both builds are CPU-bound and CI has 2 cores.
  const collector = (await run('collector/build.sh', skipBuild ? ['--print-path'] : [])).trim().split('\n').at(-1) ?? '';
  const backends = parseEnv(await run('scripts/build-backends.sh', skipBuild ? ['--print-paths'] : []));
  const binaries: StackBinaries = {
    collector,
    jaeger: backends.JAEGER_BIN ?? '',
    prometheus: backends.PROMETHEUS_BIN ?? '',
    alertmanager: backends.ALERTMANAGER_BIN ?? '',
  };
  for (const [name, path] of Object.entries(binaries)) {
    if (!path) throw new Error(`build scripts did not report a path for ${name}`);
    try {
      await access(path);
    } catch {
      throw new Error(`${name} binary missing at ${path}`);
    }
  }
  return binaries;
}
