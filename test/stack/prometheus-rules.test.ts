/**
 * Prometheus rules stay valid and tested: `promtool check rules` accepts every file in
 * prometheus/rules/ (the directory Prometheus loads with `rule_files: [rules/*.yml]`), every
 * promtool unit test file in prometheus/tests/ passes, and, read from the files themselves:
 * every alert has a severity, summary, description and a runbook_url pointing at its README
 * section, and every alert is tested both firing and not firing.
 *
 * Needs only promtool (Debian's prometheus package, 2.42; `PROMTOOL_BIN` overrides it); when it
 * is missing, scripts/build-backends.sh installs it. No process is left running.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, test } from 'vitest';
import { parseDocument } from 'yaml';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const RULES_DIR = join(ROOT, 'prometheus/rules');
const TESTS_DIR = join(ROOT, 'prometheus/tests');
const RUNBOOK_BASE = 'https://github.com/astraguard/astraguard-edge/blob/main/README.md#';
const SEVERITIES = ['page', 'ticket', 'info'];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** execFile that resolves with the exit code instead of rejecting on a non-zero one. */
function run(file: string, args: string[], timeout = 60_000): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    execFile(file, args, { cwd: ROOT, timeout, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err); // could not start, or killed
      resolvePromise({ code: err ? Number(err.code) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

async function findPromtool(): Promise<string | undefined> {
  if (process.env.PROMTOOL_BIN) return process.env.PROMTOOL_BIN;
  const which = await run('sh', ['-c', 'command -v promtool || true']);
  const found = which.stdout.trim();
  if (found) return found;
  return existsSync('/usr/bin/promtool') ? '/usr/bin/promtool' : undefined;
}

// --- YAML, read with the `yaml` package; scalars as the text promtool reads them ---------------

type Yaml = string | null | Yaml[] | { [key: string]: Yaml };

function toYaml(value: unknown): Yaml {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return value.map(toYaml);
  if (typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toYaml(v)]));
  return String(value);
}

function parseYaml(text: string, file: string): Yaml {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
  return toYaml(doc.toJS());
}

const asMap = (y: Yaml | undefined): { [key: string]: Yaml } =>
  y !== null && y !== undefined && typeof y === 'object' && !Array.isArray(y) ? y : {};
const asList = (y: Yaml | undefined): Yaml[] => (Array.isArray(y) ? y : []);
const str = (y: Yaml | undefined): string | undefined => (typeof y === 'string' ? y : undefined);

// --- the files -----------------------------------------------------------------------------

interface RuleFile {
  path: string;
  groups: { name: string; rules: { [key: string]: Yaml }[] }[];
}
interface TestFile {
  path: string;
  doc: { [key: string]: Yaml };
}

let promtool: string;
let ruleFiles: RuleFile[];
let testFiles: TestFile[];

const ymlIn = async (dir: string) =>
  (await readdir(dir))
    .filter((f) => f.endsWith('.yml'))
    .sort()
    .map((f) => join(dir, f));

beforeAll(async () => {
  let found = await findPromtool();
  if (!found) {
    // Installs Debian's prometheus package (promtool with it); builds Jaeger too, so it can be slow.
    const built = await run('bash', [join(ROOT, 'scripts/build-backends.sh')], 30 * 60_000);
    if (built.code !== 0) throw new Error(`scripts/build-backends.sh failed:\n${built.stderr}`);
    found = await findPromtool();
  }
  if (!found) throw new Error('promtool not found: install Debian/Ubuntu package "prometheus" or set PROMTOOL_BIN');
  promtool = found;

  ruleFiles = await Promise.all(
    (await ymlIn(RULES_DIR)).map(async (path) => {
      const doc = asMap(parseYaml(await readFile(path, 'utf8'), path));
      const groups = asList(doc.groups).map((g) => ({
        name: str(asMap(g).name) ?? '',
        rules: asList(asMap(g).rules).map(asMap),
      }));
      return { path, groups };
    }),
  );
  testFiles = await Promise.all(
    (await ymlIn(TESTS_DIR)).map(async (path) => ({ path, doc: asMap(parseYaml(await readFile(path, 'utf8'), path)) })),
  );
}, 35 * 60_000);

const allRules = () => ruleFiles.flatMap((f) => f.groups.flatMap((g) => g.rules));
const alerts = () => allRules().filter((r) => str(r.alert));
const recordings = () => allRules().filter((r) => str(r.record));

describe('prometheus rules', () => {
  test('prometheus/rules/ holds only rule files, and promtool check rules accepts them all', async () => {
    const entries = (await readdir(RULES_DIR)).sort();
    expect(entries.filter((f) => !f.endsWith('.yml'))).toEqual([]);
    expect(entries).toEqual(expect.arrayContaining(['astraguard.rules.yml', 'astraguard.alerts.yml']));

    const files = entries.map((f) => join(RULES_DIR, f));
    const r = await run(promtool, ['check', 'rules', ...files]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const file of files) {
      const rules = ruleFiles.find((f) => f.path === file)!.groups.reduce((n, g) => n + g.rules.length, 0);
      expect(rules).toBeGreaterThan(0);
      expect(r.stdout + r.stderr).toContain(`SUCCESS: ${rules} rules found`);
    }
  });

  test('every promtool unit test file passes (promtool test rules)', async () => {
    const files = testFiles.map((f) => f.path);
    expect(files.length).toBeGreaterThan(0);
    // One promtool per file, all at once: the files are independent, and this halves the time.
    const runs = await Promise.all(files.map((file) => run(promtool, ['test', 'rules', relative(ROOT, file)])));
    runs.forEach((r, k) => {
      const out = r.stdout + r.stderr;
      const file = relative(ROOT, files[k]!);
      expect(r.code, out).toBe(0);
      expect(out, out).toContain(`Unit Testing:  ${file}`);
      expect(out, out).toMatch(/^\s*SUCCESS\s*$/m);
      expect(out, out).not.toMatch(/FAILED/);
    });
  });

  test('every alert has a severity, summary, description and a runbook_url to its README section', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const names = alerts().map((a) => str(a.alert)!);
    for (const name of names) expect(readme, `README section for ${name}`).toContain(`\n#### ${name}\n`);
    expect(names.length).toBeGreaterThan(0);
    expect(new Set(names).size).toBe(names.length);
    for (const a of alerts()) {
      const name = str(a.alert)!;
      const labels = asMap(a.labels);
      const annotations = asMap(a.annotations);
      expect(SEVERITIES, `${name} severity`).toContain(str(labels.severity));
      for (const key of ['summary', 'description', 'runbook_url']) {
        expect(str(annotations[key])?.trim(), `${name} annotation ${key}`).toBeTruthy();
      }
      expect(str(annotations.runbook_url), `${name} runbook_url`).toBe(RUNBOOK_BASE + name.toLowerCase());
    }
  });

  test('every alert is tested firing and not firing; test files name only existing alerts', () => {
    const names = new Set(alerts().map((a) => str(a.alert)!));
    const firing = new Set<string>();
    const silent = new Set<string>();
    for (const { path, doc } of testFiles) {
      for (const t of asList(doc.tests)) {
        for (const c of asList(asMap(t).alert_rule_test).map(asMap)) {
          const name = str(c.alertname);
          expect(name && names.has(name), `${relative(ROOT, path)}: unknown alertname ${name}`).toBe(true);
          expect(str(c.eval_time), `${relative(ROOT, path)}: ${name} without eval_time`).toBeTruthy();
          (asList(c.exp_alerts).length > 0 ? firing : silent).add(name!);
        }
      }
    }
    const missing = [...names].flatMap((n) => [
      ...(firing.has(n) ? [] : [`${n}: no firing case`]),
      ...(silent.has(n) ? [] : [`${n}: no exp_alerts: [] case`]),
    ]);
    expect(missing).toEqual([]);
  });

  test('recording rules are named level:metric:operation and each is tested or used by an alert', () => {
    const exprs = testFiles.flatMap(({ doc }) =>
      asList(doc.tests).flatMap((t) => asList(asMap(t).promql_expr_test).map((p) => str(asMap(p).expr) ?? '')),
    );
    const alertExprs = alerts().map((a) => str(a.expr) ?? '');
    const uses = (text: string, name: string) => new RegExp(`(^|[^a-zA-Z0-9_:])${name}([^a-zA-Z0-9_:]|$)`).test(text);
    const untested: string[] = [];
    for (const r of recordings()) {
      const name = str(r.record)!;
      expect(name).toMatch(/^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$/);
      if (![...exprs, ...alertExprs].some((e) => uses(e, name))) untested.push(name);
    }
    expect(untested).toEqual([]);
    // the key ones are checked by value, not only through the alerts on them
    for (const name of [
      'astra:ingest_errors:ratio_rate5m',
      'astra:ingest_slow:ratio_rate5m',
      'astra:http_5xx:ratio_rate5m',
      'astra:retry:ratio_rate5m',
      'astra:false_positives:ratio_rate1h',
      'astra:telemetry_push:age_seconds',
    ]) {
      expect(exprs.some((e) => uses(e, name)), `${name} in a promql_expr_test`).toBe(true);
    }
  });

  test('test files load both rule files and evaluate every group, recording groups first', () => {
    const groups = ruleFiles.flatMap((f) => f.groups.map((g) => ({ name: g.name, recording: g.rules.every((r) => str(r.record)) })));
    const expectedFiles = ruleFiles.map((f) => relative(TESTS_DIR, f.path)).sort();
    for (const { path, doc } of testFiles) {
      const where = relative(ROOT, path);
      expect(asList(doc.rule_files).map(String).sort(), `${where} rule_files`).toEqual(expectedFiles);
      // promtool evaluates groups in map order unless told: an alert could read a recording one
      // evaluation late, and a test pass or fail by chance.
      const order = asList(doc.group_eval_order).map(String);
      expect([...order].sort(), `${where} group_eval_order`).toEqual(groups.map((g) => g.name).sort());
      const lastRecording = Math.max(...groups.filter((g) => g.recording).map((g) => order.indexOf(g.name)));
      const firstAlerting = Math.min(...groups.filter((g) => !g.recording).map((g) => order.indexOf(g.name)));
      expect(lastRecording, `${where}: recording groups before alerting groups`).toBeLessThan(firstAlerting);
    }
  });
});
