#!/usr/bin/env node
/**
 * Checks that the whole dependency tree holds one workerd and one miniflare: wrangler (`wrangler
 * dev`, the deploy bundle), miniflare (the stack tests and the bench) and
 * @cloudflare/vitest-plugin (the Workers tests) then all run the same runtime. Run by .ci/run;
 * exits 1 when versions differ (pin wrangler and miniflare to what the Vitest plugin pins).
 */
import { execFileSync } from 'node:child_process';

const tree = JSON.parse(execFileSync('npm', ['ls', 'workerd', 'miniflare', '--all', '--json'], { encoding: 'utf8' }));
const versions = { workerd: new Set(), miniflare: new Set() };
(function walk(node, path) {
  for (const [name, child] of Object.entries(node.dependencies ?? {})) {
    if (name in versions) versions[name].add(child.version);
    walk(child, `${path} > ${name}`);
  }
})(tree, tree.name);
for (const [name, set] of Object.entries(versions)) console.log(`${name}: ${[...set].join(', ')}`);
if (Object.values(versions).some((set) => set.size !== 1)) {
  console.error('more than one runtime version in the tree (npm ls workerd miniflare --all shows where)');
  process.exit(1);
}
