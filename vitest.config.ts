import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        // In-runtime tests: the Worker, its Durable Objects and lib/ run inside workerd.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                // A dead port: in-runtime tests never push into a collector that `npm start` runs.
                OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9",
                // Test secrets of their own: a fresh clone has no .dev.vars (it is git-ignored).
                ADMIN_TOKEN: "test-admin-token",
                OPERATOR_TOKEN: "test-operator-token",
                OTEL_EXPORTER_OTLP_TOKEN: "test-otlp-token",
                INGEST_API_KEYS: "test-ingest-key",
              },
            },
          }),
        ],
        test: {
          name: "workers",
          include: ["test/workers/**/*.test.ts"],
          setupFiles: ["test/workers/support/setup.ts"],
        },
      },
      {
        // Tests against real processes (collector, Prometheus, Jaeger, workerd) on 127.0.0.1.
        test: {
          name: "stack",
          include: ["test/stack/**/*.test.ts"],
          environment: "node",
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
