/**
 * COLLECTORS IN PARALLEL: every metric stream has one writer (its owner shard) pushing cumulative
 * values, so the collector tier holds no metric state and any collector can take any push. Two
 * collector processes behind a round-robin balancer take the pushes in turn (and, while one is
 * stopped, the other takes them all); every count in Prometheus equals what was sent, with one
 * series per label set, one `instance`, and no counter reset.
 *
 *   3 isolates ─▶ MetricsLeaf ×2 ─▶ MetricsAggregator ×2 ─OTLP─▶ balancer ─┬▶ collector A ─┬▶ Prometheus
 *                                                                         └▶ collector B ─┘
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { buildBundle, startIsolates, type Bundle, type Isolates } from "../support/miniflare-isolates";
import { compare, dropTarget, freshness, load, Tally } from "../support/metrics-tally";
import { promSeries, sleep, startBalancer, startCollector, startStack, stopAll, type BalancerHandle, type CollectorHandle, type Stack } from "../support/stack";

const TOKEN = `parallel-${randomBytes(8).toString("hex")}`;
const ISOLATES = 3;
const LOAD_MILLIS = 24_000;
const LOAD_RATE_PER_SECOND = 30;
/** Collector A is stopped for a while in the middle: B takes every push, then they alternate again. */
const A_DOWN_AT_MILLIS = 8_000;
const A_DOWN_MILLIS = 6_000;

let stack: Stack;
let second: CollectorHandle;
let balancer: BalancerHandle;
let bundle: Bundle;
let edge: Isolates;

beforeAll(async () => {
  [stack, bundle] = await Promise.all([startStack({ token: TOKEN, scrapeInterval: "2s" }), buildBundle()]);
  second = await startCollector({ token: TOKEN, remoteWriteUrl: stack.prometheus.remoteWriteUrl, jaegerOtlpGrpcEndpoint: stack.jaeger.otlpGrpcEndpoint });
  balancer = await startBalancer([stack.collector.urls.otlpHttp, second.urls.otlpHttp]);
  edge = await startIsolates({
    bundle,
    count: ISOLATES,
    bindings: {
      OTEL_EXPORTER_OTLP_ENDPOINT: balancer.url,
      OTEL_EXPORTER_OTLP_TOKEN: TOKEN,
      METRICS_AGGREGATOR_SHARDS: "2",
      METRICS_AGGREGATOR_LEAVES: "2",
      DEPLOYMENT_ENVIRONMENT: "test",
    },
  });
}, 20 * 60_000);

afterAll(async () => {
  await edge?.dispose();
  await balancer?.close();
  await bundle?.dispose();
  await stopAll();
}, 120_000);

describe("two collectors taking the pushes in turn", () => {
  test("counts exact, one series per label set, no counter reset", async () => {
    const tally = new Tally();
    const outage = (async () => {
      await sleep(A_DOWN_AT_MILLIS);
      await stack.collector.stop();
      const answeredBefore = [...balancer.answered];
      await sleep(A_DOWN_MILLIS);
      const during = balancer.answered.map((n, i) => n - answeredBefore[i]!);
      await stack.collector.start();
      return during;
    })();
    await load(edge, tally, { millis: LOAD_MILLIS, rate: LOAD_RATE_PER_SECOND, concurrency: 8, offset: 0 });
    const duringOutage = await outage;
    // A last quiet stretch with both collectors up, so both take pushes after the outage too.
    const answeredAfterOutage = [...balancer.answered];
    const { millis, comparison } = await freshness(stack.prometheus.url, tally);
    await sleep(3_000);
    const final = await compare(stack.prometheus.url, tally);

    const series = await promSeries(stack.prometheus.url, '{__name__=~"astra_.+"}');
    const seen = new Map<string, number>();
    for (const s of series) {
      expect(s.instance, JSON.stringify(s)).toBe("astraguard-edge");
      const { name, rest } = dropTarget(s);
      const key = Tally.key(name, rest);
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    const accepted = await Promise.all([stack.collector, second].map((c) => c.selfMetric("otelcol_receiver_accepted_metric_points")));
    const report = {
      requests_sent: tally.requests,
      pushes_answered_by_collector: [...balancer.answered],
      pushes_answered_while_a_was_down: duringOutage,
      pushes_answered_after_the_outage: balancer.answered.map((n, i) => n - answeredAfterOutage[i]!),
      balancer_failed: balancer.failed,
      accepted_metric_points_by_collector_since_last_start: accepted,
      freshness_millis: millis,
      counts_expected: final.expected,
      counts_matched: final.matched,
      counter_resets_seen: final.resets,
      series: series.length,
      label_sets: seen.size,
    };
    console.log(`\nPARALLEL COLLECTORS REPORT\n${JSON.stringify(report, null, 2)}\n`);

    expect(comparison.mismatches, `collector A log:\n${stack.collector.logs().slice(-1500)}\ncollector B log:\n${second.logs().slice(-1500)}`).toEqual([]);
    expect(final.mismatches).toEqual([]);
    expect(final.resets).toBe(0);
    expect([...seen].filter(([, n]) => n > 1)).toEqual([]);
    expect(tally.requests).toBeGreaterThanOrEqual(500);
    // Both collectors took pushes, in turn; B alone while A was down.
    expect(balancer.answered.every((n) => n > 5), JSON.stringify(balancer.answered)).toBe(true);
    expect(duringOutage[0]).toBe(0);
    expect(duringOutage[1]).toBeGreaterThan(0);
    expect(accepted.every((n) => n > 0)).toBe(true);
  });
});
