/**
 * Where a request's workerd CPU goes, by telemetry cost category, from a V8 CPU profile of a
 * bundle that wrangler built (its `// path` module markers name the source file of each line).
 *
 * Each sample is charged to one category:
 *   1. the innermost frame on its stack that claims what it calls: one of an export category
 *      (span encoding, metric export, the aggregator object) — work done by the flush, whatever
 *      it calls — or of the log queue (the flush writing the request lines held for it: the JSON
 *      log line);
 *   2. else the category of the innermost JavaScript frame of the bundle (a native call such as
 *      JSON.stringify or `new Response` is charged to the JavaScript that called it; code that a
 *      span wraps is charged to itself, not to the span);
 *   3. else "app and runtime (not telemetry)". GC and V8's "(program)" are their own rows: they
 *      cannot be attributed to a frame.
 *
 * @example
 * const split = categorize(profile, bundleLines, 'bench-ours');
 * // { samples: 9000, busy: 8200, shares: { 'span creation + attributes': 0.12, ... } }
 */

/** The rows, in print order. */
export const CATEGORIES = [
  'span creation + attributes',
  'span buffer + OTLP encoding',
  'metric recording (incl. attribute hashing)',
  'metric export (collect, RPC)',
  'aggregator object (merge, OTLP push)',
  'JSON log line',
  'AsyncLocalStorage context',
  'Content-Length rewrite',
  'flush scheduling',
  'telemetry middleware (other)',
  'app and runtime (not telemetry)',
  'GC',
  '(program)',
];

/** Categories whose frames claim everything they call (rule 1 above). */
const EXPORT = new Set(['span buffer + OTLP encoding', 'metric export (collect, RPC)', 'aggregator object (merge, OTLP push)']);
/** The log queue's frames claim what they call too (only the flush writes through it). */
const LOG_QUEUE = /lib\/telemetry\/log-queue\.ts$/;

/** Function-level rules first (module + function name), then module rules; first match wins. */
const FUNCTION_RULES = [
  // The request id rides in the OpenTelemetry context: context work, not the log line (bare runs them too).
  [/lib\/telemetry\/logger\.ts$/, /^(withRequestId|activeRequestId)$/, 'AsyncLocalStorage context'],
  // The response rebuilt to set Content-Length (before issue 15), and what replaced it: the size
  // taken from the body c.json serialized (json-size.ts).
  [/lib\/(telemetry|http)\/[\w/-]*\.ts$/, /^withContentLength$/, 'Content-Length rewrite'],
  [/lib\/telemetry\/request-telemetry\.ts$/, /^(startServerSpan|endServerSpan|cfColo|spanName|serverSpanAttributes)$/, 'span creation + attributes'],
  [/lib\/telemetry\/request-telemetry\.ts$/, /^(recordMetrics|requestBodySize|contentLength)$/, 'metric recording (incl. attribute hashing)'],
  [/lib\/telemetry\/export\/flush\.ts$/, /^(flush|get senderId)$/, 'flush scheduling'],
  [/lib\/telemetry\/export\/flush\.ts$/, /^(#sendSpans|otlpExportSpans)$/, 'span buffer + OTLP encoding'],
  [/lib\/support\/async\.ts$/, /^(sleep|withTimeout|setTimeout|clearTimeout|now)$/, 'flush scheduling'],
  [/functions\/telemetry\.ts$/, /^flushTelemetry$/, 'flush scheduling'],
  // The bench's counting wrapper of the aggregator (bench/variants/ours.ts), not its fetch entry.
  [/bench\/variants\/ours\.ts$/, /^(ingest|benchReceived)$/, 'aggregator object (merge, OTLP push)'],
];
const MODULE_RULES = [
  [/lib\/telemetry\/(logger|log-queue)\.ts$/, 'JSON log line'],
  [/lib\/telemetry\/json-size\.ts$/, 'Content-Length rewrite'],
  [/lib\/telemetry\/(request-telemetry|labels)\.ts$/, 'telemetry middleware (other)'],
  [/@opentelemetry\/context-async-hooks\//, 'AsyncLocalStorage context'],
  [/@opentelemetry\/api\/build\/(src|esm|esnext)\/(context|api\/context)/, 'AsyncLocalStorage context'],
  [/@opentelemetry\/(otlp-transformer|otlp-exporter-base|exporter-trace-otlp-http)\//, 'span buffer + OTLP encoding'],
  [/lib\/telemetry\/export\/otlp-spans\.ts$/, 'span buffer + OTLP encoding'],
  [/lib\/telemetry\/export\/(flush|points)\.ts$/, 'metric export (collect, RPC)'],
  [/lib\/objects\/metrics-aggregator\.ts$/, 'aggregator object (merge, OTLP push)'],
  [/@opentelemetry\/exporter-metrics-otlp-http\//, 'aggregator object (merge, OTLP push)'],
  [/@opentelemetry\/(sdk-trace|sdk-trace-base)\//, 'span creation + attributes'],
  [/@opentelemetry\/api\/build\/(src|esm|esnext)\/trace/, 'span creation + attributes'],
  [/@opentelemetry\/core\/build\/(src|esm|esnext)\/(trace|common\/time|common\/attributes)/, 'span creation + attributes'],
  [/lib\/telemetry\/span-buffer\.ts$/, 'span buffer + OTLP encoding'],
  [/lib\/telemetry\/(spans|tracer-provider|object-spans)\.ts$/, 'span creation + attributes'],
  [/@opentelemetry\/sdk-metrics\//, 'metric recording (incl. attribute hashing)'],
  [/@opentelemetry\/api\/build\/(src|esm|esnext)\/metrics/, 'metric recording (incl. attribute hashing)'],
  [/lib\/telemetry\/(instruments|gauge-samples|bound-attributes)\.ts$|lib\/mission\/known-series\.ts$/, 'metric recording (incl. attribute hashing)'],
];

/** Category of one profile frame, or undefined (not telemetry, or native). */
export function frameCategory(module, functionName) {
  for (const [m, f, cat] of FUNCTION_RULES) if (m.test(module) && f.test(functionName)) return cat;
  for (const [m, cat] of MODULE_RULES) if (m.test(module)) return cat;
  return undefined;
}

/** The bundle's module markers: [[line, 'lib/telemetry/logger.ts'], ...], sorted by line. */
export function moduleMarkers(bundleLines) {
  const markers = [];
  bundleLines.forEach((line, i) => {
    const m = /^\/\/ ((?:\.\.\/)*[\w@./-]+\.(?:ts|js|mjs|cjs))$/.exec(line);
    if (m) markers.push([i, m[1].replace(/^(\.\.\/)+/, '')]);
  });
  return markers;
}

function moduleAt(markers, line) {
  let lo = 0;
  let hi = markers.length - 1;
  let best = '(runtime)';
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (markers[mid][0] <= line) {
      best = markers[mid][1];
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best;
}

/**
 * Splits a V8 CPU profile (`Profiler.stop`'s `profile`) of `scriptMatch`'s bundle into the
 * categories above. Answers sample counts and shares of the busy (non-idle) samples, plus self
 * time by module and function for the curious.
 */
export function categorize(profile, bundleLines, scriptMatch) {
  const markers = moduleMarkers(bundleLines);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const info = new Map();
  for (const n of profile.nodes) {
    const cf = n.callFrame;
    const inBundle = cf.url && cf.url.includes(scriptMatch);
    const module = inBundle ? moduleAt(markers, cf.lineNumber) : cf.functionName === '(idle)' || cf.functionName === '(program)' || cf.functionName === '(garbage collector)' ? cf.functionName : '(native/runtime)';
    info.set(n.id, { module, inBundle, fn: cf.functionName || '(anonymous)', category: inBundle ? frameCategory(module, cf.functionName || '') : undefined });
  }
  // One category per node (its stack is fixed), computed once.
  const nodeCategory = new Map();
  const categoryOf = (id) => {
    if (nodeCategory.has(id)) return nodeCategory.get(id);
    const self = info.get(id);
    let cat;
    if (self.module === '(garbage collector)') cat = 'GC';
    else if (self.module === '(program)') cat = '(program)';
    else if (self.module === '(idle)') cat = '(idle)';
    else {
      let innermost;
      let claim;
      for (let at = id; at !== undefined && claim === undefined; at = parent.get(at)) {
        const frame = info.get(at);
        if (!frame) break;
        if (innermost === undefined && frame.inBundle) innermost = frame.category ?? 'app and runtime (not telemetry)';
        if (frame.category && (EXPORT.has(frame.category) || LOG_QUEUE.test(frame.module))) claim = frame.category;
      }
      cat = claim ?? innermost ?? 'app and runtime (not telemetry)';
    }
    nodeCategory.set(id, cat);
    return cat;
  };
  const counts = Object.fromEntries([...CATEGORIES, '(idle)'].map((c) => [c, 0]));
  const byModule = new Map();
  const byFunction = new Map();
  const byCategoryFunction = new Map();
  for (const s of profile.samples) {
    if (!byId.has(s)) continue;
    const cat = categoryOf(s);
    counts[cat]++;
    const { module, fn } = info.get(s);
    byModule.set(module, (byModule.get(module) ?? 0) + 1);
    byFunction.set(`${fn} ${module}`, (byFunction.get(`${fn} ${module}`) ?? 0) + 1);
    const key = `${cat}\t${fn} ${module}`;
    byCategoryFunction.set(key, (byCategoryFunction.get(key) ?? 0) + 1);
  }
  const samples = profile.samples.length;
  const busy = samples - counts['(idle)'];
  const shares = Object.fromEntries(CATEGORIES.map((c) => [c, busy ? counts[c] / busy : 0]));
  const top = (m, k) =>
    [...m]
      .filter(([name]) => !name.includes('(idle)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([name, n]) => ({ name, share: busy ? n / busy : 0 }));
  // The heaviest self-time functions inside each category (what a change should look at).
  const byCategory = {};
  for (const { name, share } of top(byCategoryFunction, 400)) {
    const [cat, fn] = name.split('\t');
    if ((byCategory[cat] ??= []).length < 6) byCategory[cat].push({ name: fn, share });
  }
  return { samples, busy, counts, shares, topModules: top(byModule, 25), topFunctions: top(byFunction, 25), byCategory };
}
