/**
 * The import rules of lib/ and functions/, checked by `npm run lint:deps` (part of `npm test`).
 * Layers, bottom up; each may import only the layers below it (README, "The layout"):
 *   lib/support, lib/domain, lib/env.ts → lib/telemetry (recording) → lib/telemetry/export →
 *   lib/http, lib/reliability → lib/objects (Durable Objects) → lib/mission → functions/ (root).
 * Type-only imports count: a circle through types is still a circle.
 */
const forbid = (name, from, to, comment) => ({ name, comment, severity: "error", from: { path: from }, to: { path: to } });

module.exports = {
  forbidden: [
    { name: "no-circular", comment: "No import circle, type-only ones included.", severity: "error", from: {}, to: { circular: true } },
    {
      name: "no-orphans",
      comment: "Every module of lib/ and functions/ is imported by something (dead files go).",
      severity: "error",
      from: { orphan: true, path: "^(lib|functions)/", pathNot: ["^functions/index\\.ts$", "\\.d\\.ts$"] },
      to: {},
    },
    forbid("lib-not-functions", "^lib/", "^functions/", "lib/ never imports the composition root."),
    forbid("support-is-a-leaf", "^lib/support/", "^(lib|functions)/(?!support/)", "Small helpers import nothing of ours."),
    forbid("domain-is-pure", "^lib/domain/", "^lib/(?!domain/|support/)", "The detector and the policy know nothing of transport, telemetry or state."),
    forbid("recording-below-export", "^lib/telemetry/(?!export/)", "^lib/(telemetry/export|http|reliability|objects|mission)/", "Recording knows nothing of how telemetry leaves the isolate."),
    forbid("export-below-reliability", "^lib/telemetry/export/", "^lib/(http|reliability|objects|mission)/", "The flusher gets guarded transports from functions/, it does not import reliability."),
    forbid("http-guards", "^lib/http/", "^lib/(reliability|objects|mission|telemetry/export)/", "Request guards stand below state and reliability."),
    forbid("reliability-below-objects", "^lib/reliability/", "^lib/(objects|mission|http|telemetry/export)/", "Breakers, retries and chaos know no Durable Object class."),
    forbid("objects-below-mission", "^lib/objects/", "^lib/(mission|http)/", "Durable Objects do not call the request-side mission code."),
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default", "types"] },
  },
};
