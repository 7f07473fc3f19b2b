/**
 * Builds each bench variant as it would deploy: `wrangler deploy --dry-run --outdir` with a
 * wrangler config generated from the repository's wrangler.toml (only `main` changes, plus an
 * `[alias]` where a variant needs one), into a temp dir of its own.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Per-variant wrangler `[alias]` entries (absolute paths). */
const ALIASES = (root) => ({
  // @microlabs/otel-cf-workers rc.52 imports ATTR_FAAS_TIME, gone from semconv's incubating entry.
  'otel-cf-workers': {
    '@opentelemetry/semantic-conventions/incubating': join(root, 'bench/variants/lib/semconv-incubating.ts'),
  },
});

/** compatibility_date, compatibility_flags, [vars] and Durable Object bindings of wrangler.toml (the simple forms it uses). */
export async function wranglerSettings(root) {
  const toml = await readFile(join(root, 'wrangler.toml'), 'utf8');
  const compatibilityDate = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(toml)?.[1] ?? '2026-11-01';
  const flags = /^compatibility_flags\s*=\s*\[([^\]]*)\]/m.exec(toml)?.[1] ?? '';
  const compatibilityFlags = [...flags.matchAll(/"([^"]+)"/g)].map((m) => m[1]);
  const vars = {};
  const section = /^\[vars\]\s*$([\s\S]*?)(?=^\[)/m.exec(toml)?.[1] ?? '';
  for (const m of section.matchAll(/^([A-Z0-9_]+)\s*=\s*"([^"]*)"/gm)) vars[m[1]] = m[2];
  const durableObjects = {};
  for (const m of toml.matchAll(/^\[\[durable_objects\.bindings\]\]\s*$([\s\S]*?)(?=^\[|(?![\s\S]))/gm)) {
    const name = /^name\s*=\s*"([^"]+)"/m.exec(m[1])?.[1];
    const className = /^class_name\s*=\s*"([^"]+)"/m.exec(m[1])?.[1];
    if (name && className) durableObjects[name] = className;
  }
  return { toml, compatibilityDate, compatibilityFlags, vars, durableObjects };
}

/**
 * Builds `variant` (bench/variants/<variant>.ts). Resolves `{ name, dir, script, bytes, millis }`.
 * Throws with wrangler's output tail when the build fails.
 */
export async function buildVariant(root, variant, { timeoutMillis = 180_000 } = {}) {
  const started = Date.now();
  const { toml } = await wranglerSettings(root);
  const dir = await mkdtemp(join(tmpdir(), `astraguard-bench-${variant}-`));
  const entry = join(root, 'bench/variants', `${variant}.ts`);
  let config = toml.replace(/^main\s*=.*$/m, `main = ${JSON.stringify(entry)}`);
  const alias = ALIASES(root)[variant];
  // Into wrangler.toml's own `alias = { ... }` line (its paths are relative to the repository).
  if (alias) {
    const entries = Object.entries(alias).map(([k, v]) => `${JSON.stringify(k)} = ${JSON.stringify(v)}`);
    config = /^alias = \{/m.test(config) ? config.replace(/^alias = \{/m, `alias = { ${entries.join(', ')},`) : config.replace(/^(compatibility_flags.*)$/m, `$1\nalias = { ${entries.join(', ')} }`);
  }
  // Relative alias paths in the generated config (it lives in a temp dir) point into the repository.
  config = config.replace(/^alias = .*$/m, (line) => line.replace(/"\.\/([^"]+)"/g, (_, rel) => JSON.stringify(join(root, rel))));
  const configPath = join(dir, 'wrangler.toml');
  await writeFile(configPath, config);
  const outdir = join(dir, 'out');
  try {
    await execFileAsync('npx', ['wrangler', 'deploy', '--dry-run', '--outdir', outdir, '--config', configPath], {
      cwd: root,
      timeout: timeoutMillis,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true', NO_COLOR: '1' },
    });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`wrangler build of ${variant} failed: ${error.message}\n${String(error.stdout ?? '').slice(-2000)}\n${String(error.stderr ?? '').slice(-3000)}`);
  }
  const files = await readdir(outdir);
  const main = files.find((f) => f.endsWith('.js'));
  if (!main) throw new Error(`wrangler build of ${variant}: no .js in ${outdir} (${files.join(', ')})`);
  const script = join(outdir, main);
  const bytes = (await readFile(script)).length;
  return { name: variant, dir, outdir, script, bytes, millis: Date.now() - started, dispose: () => rm(dir, { recursive: true, force: true }) };
}
