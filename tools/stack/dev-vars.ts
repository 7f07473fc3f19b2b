/**
 * The local secrets `wrangler dev` reads: .dev.vars (git-ignored), else .dev.vars.example.
 * The one reader for `npm start`, the drill, the simulator and the stack tests.
 * @module
 */
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { REPO_ROOT } from './paths.ts';

/**
 * The variables of `root`/.dev.vars, or of .dev.vars.example when there is no .dev.vars (dotenv
 * syntax, parsed by `node:util` `parseEnv`); `{}` when neither exists.
 *
 * @example
 * const { ADMIN_TOKEN, INGEST_API_KEYS = '' } = readDevVars();
 */
export function readDevVars(root: string = REPO_ROOT): Record<string, string> {
  for (const file of ['.dev.vars', '.dev.vars.example']) {
    let text: string;
    try {
      text = readFileSync(join(root, file), 'utf8');
    } catch {
      continue;
    }
    return { ...parseEnv(text) } as Record<string, string>;
  }
  return {};
}

/**
 * Secrets as `wrangler dev` reads them (.dev.vars, created from the example by `npm start`;
 * else .dev.vars.example). Rejects when neither file exists.
 *
 * @example
 * const vars = await devVars();
 * fetch(url, { headers: { authorization: `Bearer ${vars.ADMIN_TOKEN}` } });
 */
export async function devVars(): Promise<Record<string, string>> {
  if (!existsSync(join(REPO_ROOT, '.dev.vars')) && !existsSync(join(REPO_ROOT, '.dev.vars.example'))) {
    throw new Error('no .dev.vars or .dev.vars.example');
  }
  return readDevVars(REPO_ROOT);
}

/**
 * Creates `root`/.dev.vars from .dev.vars.example when it is missing; true when it did.
 *
 * @example
 * if (ensureDevVars()) console.log('created .dev.vars (change the tokens in it)');
 */
export function ensureDevVars(root: string = REPO_ROOT): boolean {
  const file = join(root, '.dev.vars');
  if (existsSync(file)) return false;
  copyFileSync(join(root, '.dev.vars.example'), file);
  return true;
}
