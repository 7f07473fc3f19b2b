/**
 * `npm run deploy` (scripts/deploy.mjs): the refusals (unknown env, empty / http / localhost OTLP
 * endpoint, missing secret, no Cloudflare auth) with a fake secret lister, and one passing case
 * that runs the real `wrangler deploy --dry-run --env production` with the endpoint given by
 * `--var`. The real secret check (`wrangler secret list --env X`) needs `wrangler login` and a
 * Cloudflare account, so it is not run here: the lister is injected.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import {
  DeployRefused,
  endpointProblem,
  main,
  planDeploy,
  REFUSED,
  REPO_ROOT,
  requiredSecrets,
} from '../../scripts/deploy.mjs';

const ENDPOINT = 'OTEL_EXPORTER_OTLP_ENDPOINT';
const GOOD = `--var=${ENDPOINT}:https://otel.example.com`;
const ALL_SECRETS = ['ADMIN_TOKEN', 'OPERATOR_TOKEN', 'OTEL_EXPORTER_OTLP_TOKEN', 'INGEST_API_KEYS'];
const secrets = (names: string[]) => async () => names;

/** Runs main() with a fake lister and a runner that records instead of deploying. */
async function attempt(argv: string[], listSecrets: (env: string) => Promise<string[]> = secrets(ALL_SECRETS)) {
  const lines: string[] = [];
  const ran: string[][] = [];
  const code = await main(argv, {
    listSecrets,
    log: (line) => lines.push(line),
    run: async (args) => {
      ran.push(args);
      return 0;
    },
  });
  return { code, output: lines.join('\n'), ran };
}

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('deploy wrapper refuses', () => {
  test('without --env, or with an env wrangler.toml does not have (exit 2, naming the known ones)', async () => {
    const none = await attempt([GOOD]);
    expect(none.code).toBe(REFUSED);
    expect(none.output).toMatch(/no environment given: use --env <name> \(one of: production, staging\)/);
    const unknown = await attempt(['--env', 'prod', GOOD]);
    expect(unknown.code).toBe(REFUSED);
    expect(unknown.output).toContain('unknown environment "prod": wrangler.toml has [env.*] sections for production, staging');
    expect([...none.ran, ...unknown.ran]).toEqual([]);
  });

  test('an empty endpoint: the one in wrangler.toml is an empty placeholder', async () => {
    for (const env of ['production', 'staging']) {
      const result = await attempt(['--env', env]);
      expect(result.code).toBe(REFUSED);
      expect(result.output).toContain(`${ENDPOINT} is empty`);
      expect(result.ran).toEqual([]);
    }
    const blank = await attempt(['--env', 'production', '--var', `${ENDPOINT}: `]);
    expect(blank.output).toContain(`${ENDPOINT} is empty`);
  });

  test('an http endpoint, and endpoints a Worker cannot reach (localhost, 127.x, ::1, private, a port other than 443)', async () => {
    const http = await attempt(['--env=production', `--var=${ENDPOINT}:http://otel.example.com`]);
    expect(http.code).toBe(REFUSED);
    expect(http.output).toContain('"http://otel.example.com" is not https');
    for (const url of ['https://localhost', 'https://127.0.0.1', 'https://[::1]', 'https://otel.localhost', 'https://0.0.0.0']) {
      const result = await attempt(['-e', 'production', '--var', `${ENDPOINT}:${url}`]);
      expect(result.code, url).toBe(REFUSED);
      expect(result.output, url).toContain('points at this machine');
      expect(result.ran).toEqual([]);
    }
    expect(endpointProblem('https://10.1.2.3')).toContain('private address');
    expect(endpointProblem('https://192.168.1.10')).toContain('private address');
    expect(endpointProblem('not a url')).toContain('is not a URL');
    // Deployed Workers ignore custom https ports: only 443 is accepted.
    expect(endpointProblem('https://otel.example.com:4318')).toContain('ignores custom ports');
    expect(endpointProblem('https://otel.example.com')).toBeUndefined();
    expect(endpointProblem('https://otel.example.com:443/')).toBeUndefined();
    expect(endpointProblem('https://203.0.113.7')).toBeUndefined();
  });

  test('a missing secret, naming each one and the command that sets it', async () => {
    const result = await attempt(['--env', 'production', GOOD], secrets(['ADMIN_TOKEN', 'OPERATOR_TOKEN']));
    expect(result.code).toBe(REFUSED);
    expect(result.output).toContain('secret OTEL_EXPORTER_OTLP_TOKEN is not set for env production: npx wrangler secret put OTEL_EXPORTER_OTLP_TOKEN --env production');
    expect(result.output).toContain('secret INGEST_API_KEYS is not set for env production');
    expect(result.output).not.toContain('secret ADMIN_TOKEN');
    expect(result.ran).toEqual([]);
    // Which secrets an env needs follows its vars.
    expect(requiredSecrets({ REQUIRE_INGEST_KEY: 'false', REQUIRE_READ_TOKEN: 'false' })).toEqual(['ADMIN_TOKEN', 'OPERATOR_TOKEN', 'OTEL_EXPORTER_OTLP_TOKEN']);
    expect(requiredSecrets({ REQUIRE_INGEST_KEY: 'true', REQUIRE_READ_TOKEN: 'true' })).toEqual([...ALL_SECRETS, 'READ_TOKEN']);
    // The lister is asked about the env being deployed.
    const asked: string[] = [];
    await attempt(['--env', 'staging', GOOD], async (env) => (asked.push(env), ALL_SECRETS));
    expect(asked).toEqual(['staging']);
  });

  test('every problem at once, and no Cloudflare auth is a refusal, not a pass', async () => {
    const error = await planDeploy({
      argv: ['--env', 'production'],
      listSecrets: async () => {
        throw new Error('Not logged in');
      },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeployRefused);
    const { problems } = error as DeployRefused;
    expect(problems).toHaveLength(2);
    expect(problems[0]).toContain(`${ENDPOINT} is empty`);
    expect(problems[1]).toContain('could not list the secrets of env production (needs Cloudflare auth: npx wrangler login');
  });

  test('the CLI exits 2 with the message on stderr', () => {
    const result = spawnSync(process.execPath, ['scripts/deploy.mjs', '--env', 'nope'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('deploy refused:');
    expect(result.stderr).toContain('unknown environment "nope"');
  });
});

describe('deploy wrapper passes', () => {
  test('with the endpoint and every secret: the arguments go to wrangler unchanged', async () => {
    const result = await attempt(['--env', 'production', GOOD, '--minify']);
    expect(result.code).toBe(0);
    expect(result.ran).toEqual([['deploy', '--env', 'production', GOOD, '--minify']]);
    expect(result.output).toContain('secrets present: ADMIN_TOKEN, OPERATOR_TOKEN, OTEL_EXPORTER_OTLP_TOKEN, INGEST_API_KEYS');
  });

  test('runs the real `wrangler deploy --dry-run --env production`', async () => {
    const outdir = await mkdtemp(join(tmpdir(), 'astraguard-deploy-'));
    dirs.push(outdir);
    const lines: string[] = [];
    const code = await main(['--env', 'production', '--dry-run', '--outdir', outdir, '--var', `${ENDPOINT}:https://otel.example.com`], {
      listSecrets: secrets(ALL_SECRETS),
      log: (line) => lines.push(line),
    });
    expect(code, lines.join('\n')).toBe(0);
    expect(lines.join('\n')).toContain('wrangler deploy --env production --dry-run --outdir');
    const files = await readdir(outdir);
    expect(files).toContain('index.js');
    expect(existsSync(join(outdir, 'index.js'))).toBe(true);
  }, 120_000);
});
