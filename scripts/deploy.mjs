#!/usr/bin/env node
/**
 * `npm run deploy -- --env production|staging [--dry-run] [--var KEY:VALUE ...] [wrangler flags]`
 *
 * A thin wrapper over `wrangler deploy --env X` that refuses to deploy (exit 2, naming what is
 * missing) when:
 *   - no `--env` is given, or it is not an `[env.*]` of wrangler.toml (the top level is the
 *     local development config: its collector is http://127.0.0.1:4318);
 *   - that env's OTEL_EXPORTER_OTLP_ENDPOINT (from wrangler.toml, or a `--var
 *     OTEL_EXPORTER_OTLP_ENDPOINT:…` on the command line) is empty, not https, or points at a
 *     loopback/private address no Cloudflare Worker can reach, or has a port other than 443
 *     (deployed Workers ignore custom https ports);
 *   - a secret the env needs is not set on Cloudflare (`wrangler secret list --env X`):
 *     ADMIN_TOKEN, OPERATOR_TOKEN, OTEL_EXPORTER_OTLP_TOKEN always; INGEST_API_KEYS when the
 *     env's REQUIRE_INGEST_KEY is "true"; READ_TOKEN when REQUIRE_READ_TOKEN is "true".
 * Everything else is passed to `wrangler deploy` unchanged (`--dry-run`, `--outdir`, `--var`, …).
 *
 * The secret check needs Cloudflare auth (`npx wrangler login`, or CLOUDFLARE_API_TOKEN and
 * CLOUDFLARE_ACCOUNT_ID in CI); without it the wrapper refuses and says so. With `--dry-run`
 * (which needs no account) the secrets are not checked. The logic is plain functions with the
 * secret lister and the runner injectable; test/stack/deploy.test.ts tests them with a fake
 * lister and the real `wrangler deploy --dry-run`.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const WRANGLER_CONFIG = join(REPO_ROOT, 'wrangler.toml');
export const WRANGLER_BIN = join(REPO_ROOT, 'node_modules/.bin/wrangler');
/** Exit code of a refusal (wrangler's own failures keep their code). */
export const REFUSED = 2;

/** Thrown by {@link planDeploy}; `problems` names each missing thing. */
export class DeployRefused extends Error {
  /** @param {string[]} problems */
  constructor(problems) {
    super(`deploy refused:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'DeployRefused';
    this.problems = problems;
  }
}

/**
 * Splits the command line: the env, `--dry-run`, `--var KEY:VALUE` overrides (wrangler splits
 * at the first colon, so URLs survive) and the arguments passed on to `wrangler deploy`.
 * @param {string[]} argv
 */
export function parseArgs(argv) {
  /** @type {string | undefined} */
  let env;
  let dryRun = false;
  /** @type {Record<string, string>} */
  const vars = {};
  /** @type {string[]} */
  const passthrough = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = /** @type {string} */ (argv[i]);
    if (arg === '--env' || arg === '-e') {
      env = argv[++i];
    } else if (arg.startsWith('--env=')) {
      env = arg.slice('--env='.length);
    } else {
      if (arg === '--dry-run') dryRun = true;
      let value;
      if (arg === '--var') value = argv[i + 1];
      else if (arg.startsWith('--var=')) value = arg.slice('--var='.length);
      if (value !== undefined) {
        const colon = value.indexOf(':');
        if (colon > 0) vars[value.slice(0, colon)] = value.slice(colon + 1);
      }
      passthrough.push(arg);
      if (arg === '--var' && argv[i + 1] !== undefined) passthrough.push(/** @type {string} */ (argv[++i]));
    }
  }
  return { env, dryRun, vars, passthrough };
}

/**
 * What is wrong with an OTLP endpoint a deployed Worker must reach, or undefined when fine.
 * @param {string | undefined} endpoint
 */
export function endpointProblem(endpoint) {
  const name = 'OTEL_EXPORTER_OTLP_ENDPOINT';
  if (!endpoint || endpoint.trim() === '') {
    return `${name} is empty: set it to your collector's public https URL (collector/production.yaml), e.g. https://otel.example.com (port 443)`;
  }
  let url;
  try {
    url = new URL(endpoint);
  } catch {
    return `${name} "${endpoint}" is not a URL`;
  }
  if (url.protocol !== 'https:') {
    return `${name} "${endpoint}" is not https: the OTLP bearer token must not travel in clear text`;
  }
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const loopback =
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    /^127\./.test(host) ||
    host === '0.0.0.0' ||
    host === '::1' ||
    host === '::';
  if (loopback) return `${name} "${endpoint}" points at this machine (${host}): a deployed Worker cannot reach it`;
  // Published Workers ignore a custom port on https subrequests (a known issue: wrangler's own
  // checked-fetch warns "the custom port will be ignored"), so :4318 would silently reach :443.
  if (url.port !== '' && url.port !== '443') {
    return `${name} "${endpoint}" has port ${url.port}: a deployed Worker's https fetch ignores custom ports and would connect to 443; serve the collector on 443 (e.g. https://${url.hostname})`;
  }
  const privateNet = /^10\./.test(host) || /^192\.168\./.test(host) || /^172\.(1[6-9]|2\d|3[01])\./.test(host) || /^169\.254\./.test(host);
  if (privateNet) return `${name} "${endpoint}" is a private address (${host}): Cloudflare's network cannot reach it`;
  return undefined;
}

/**
 * The secrets an environment needs, from its vars.
 * @param {Record<string, unknown>} vars
 */
export function requiredSecrets(vars) {
  const secrets = ['ADMIN_TOKEN', 'OPERATOR_TOKEN', 'OTEL_EXPORTER_OTLP_TOKEN'];
  if (String(vars.REQUIRE_INGEST_KEY) === 'true') secrets.push('INGEST_API_KEYS');
  if (String(vars.REQUIRE_READ_TOKEN) === 'true') secrets.push('READ_TOKEN');
  return secrets;
}

/**
 * The `[env.*]` names of a wrangler config and the resolved vars of one of them, read by
 * wrangler itself (so what is checked is what `wrangler deploy --env X` deploys).
 * @param {string} configPath
 */
export async function readWranglerEnvironments(configPath) {
  const wrangler = await import('wrangler');
  const { rawConfig } = wrangler.experimental_readRawConfig({ config: configPath });
  const names = Object.keys(rawConfig.env ?? {});
  return {
    names,
    /** @param {string} env */
    vars: (env) => ({ ...wrangler.unstable_readConfig({ config: configPath, env }, { hideWarnings: true }).vars }),
  };
}

/**
 * Lists the names of an env's secrets on Cloudflare (`wrangler secret list --env X --format json`).
 * Needs `wrangler login` (or CLOUDFLARE_API_TOKEN); throws with wrangler's output otherwise.
 * @param {string} env
 * @returns {Promise<string[]>}
 */
export function wranglerSecretList(env) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(WRANGLER_BIN, ['secret', 'list', '--env', env, '--format', 'json'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        // eslint-disable-next-line no-control-regex
        const text = (err || out).replace(/\u001b\[[0-9;]*m/g, '').split('\n').map((l) => l.trim()).filter(Boolean);
        return reject(new Error(`wrangler secret list --env ${env} exited ${code}: ${text.slice(0, 3).join(' ').slice(0, 400)}`));
      }
      try {
        const parsed = JSON.parse(out.slice(out.indexOf('[')));
        resolvePromise(parsed.map((/** @type {{name: string}} */ s) => s.name));
      } catch (error) {
        reject(new Error(`wrangler secret list --env ${env}: unreadable output: ${out.slice(0, 300)}`));
      }
    });
  });
}

/**
 * Checks everything and returns the `wrangler deploy` arguments, or throws {@link DeployRefused}
 * naming every problem found.
 * @param {{ argv: string[], configPath?: string, listSecrets?: (env: string) => Promise<string[]> }} options
 *   `listSecrets` defaults to {@link wranglerSecretList}, except with `--dry-run` (not checked).
 */
export async function planDeploy({ argv, configPath = WRANGLER_CONFIG, listSecrets }) {
  const args = parseArgs(argv);
  const environments = await readWranglerEnvironments(configPath);
  const known = environments.names.join(', ') || '(none)';
  if (!args.env) {
    throw new DeployRefused([`no environment given: use --env <name> (one of: ${known}); the top level of wrangler.toml is the local development config`]);
  }
  if (!environments.names.includes(args.env)) {
    throw new DeployRefused([`unknown environment "${args.env}": wrangler.toml has [env.*] sections for ${known}`]);
  }
  const vars = { ...environments.vars(args.env), ...args.vars };
  /** @type {string[]} */
  const problems = [];
  const endpoint = endpointProblem(typeof vars.OTEL_EXPORTER_OTLP_ENDPOINT === 'string' ? vars.OTEL_EXPORTER_OTLP_ENDPOINT : undefined);
  if (endpoint) problems.push(`${endpoint} ([env.${args.env}.vars] in wrangler.toml, or --var OTEL_EXPORTER_OTLP_ENDPOINT:https://…)`);

  const needed = requiredSecrets(vars);
  const lister = listSecrets ?? (args.dryRun ? undefined : wranglerSecretList);
  let secretsChecked = false;
  if (lister) {
    try {
      const have = new Set(await lister(args.env));
      const missing = needed.filter((name) => !have.has(name));
      for (const name of missing) problems.push(`secret ${name} is not set for env ${args.env}: npx wrangler secret put ${name} --env ${args.env}`);
      secretsChecked = true;
    } catch (error) {
      problems.push(
        `could not list the secrets of env ${args.env} (needs Cloudflare auth: npx wrangler login, or CLOUDFLARE_API_TOKEN): ${/** @type {Error} */ (error).message}`,
      );
    }
  }
  if (problems.length > 0) throw new DeployRefused(problems);
  return {
    env: args.env,
    dryRun: args.dryRun,
    secretsChecked,
    requiredSecrets: needed,
    wranglerArgs: ['deploy', '--env', args.env, ...args.passthrough],
  };
}

/**
 * Runs `wrangler <args>` with the terminal attached; resolves with its exit code.
 * @param {string[]} args
 * @returns {Promise<number>}
 */
export function runWrangler(args) {
  return new Promise((resolvePromise, reject) => {
    if (!existsSync(WRANGLER_BIN)) return reject(new Error(`${WRANGLER_BIN} missing: run npm ci`));
    const child = spawn(WRANGLER_BIN, args, { cwd: REPO_ROOT, stdio: 'inherit' });
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise(code ?? (signal ? 1 : 0)));
  });
}

/**
 * The command: plan, then run wrangler. Resolves with the exit code (2 on a refusal).
 * @param {string[]} argv
 * @param {{ configPath?: string, listSecrets?: (env: string) => Promise<string[]>, run?: (args: string[]) => Promise<number>, log?: (line: string) => void }} [deps]
 */
export async function main(argv, deps = {}) {
  const log = deps.log ?? ((line) => process.stderr.write(`${line}\n`));
  let plan;
  try {
    plan = await planDeploy({ argv, configPath: deps.configPath, listSecrets: deps.listSecrets });
  } catch (error) {
    if (error instanceof DeployRefused) {
      log(error.message);
      return REFUSED;
    }
    throw error;
  }
  log(
    plan.secretsChecked
      ? `deploy: env ${plan.env}, secrets present: ${plan.requiredSecrets.join(', ')}`
      : `deploy: env ${plan.env} (--dry-run: secrets ${plan.requiredSecrets.join(', ')} not checked)`,
  );
  log(`deploy: wrangler ${plan.wranglerArgs.join(' ')}`);
  return (deps.run ?? runWrangler)(plan.wranglerArgs);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => {
      process.stderr.write(`deploy: ${error instanceof Error ? error.stack : String(error)}\n`);
      process.exit(1);
    },
  );
}
