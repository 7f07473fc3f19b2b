/**
 * The one flush path of an isolate: metrics by RPC to a MetricsLeaf (one batch per export, the
 * next leaf each time; with METRICS_AGGREGATOR_LEAVES = 0 one batch per MetricsAggregator shard),
 * ended spans to the collector's OTLP/HTTP receiver. functions/telemetry.ts builds the isolate's
 * flusher with guarded transports; every request hands its flush to `waitUntil`
 * (`requestTelemetry({ flush: flushTelemetry, logQueue })`); each export first writes the request
 * log lines held for it (../log-queue.ts).
 *
 * Coalesced: at most one export in flight per isolate, and at most one export started per
 * `minIntervalMillis` (default 1000 ms). A call either joins the export that is scheduled but has
 * not collected yet (so it will contain the caller's data), or schedules the next one after the
 * export in flight. Every caller's promise therefore covers an export that contains its data.
 * Requests use `schedule()`, which answers a promise for `waitUntil` only to the call that
 * scheduled the export; a joiner's data leaves in that export without holding its request open.
 *
 * Retention: a batch whose send fails is kept and re-sent, with the SAME batch id, on the next
 * export, and batches to one destination go one at a time, oldest first; a leaf accepts only
 * sequences above the isolate's last one (a shard remembers batch ids), so a batch that did
 * arrive although the send looked failed (e.g. a timeout) is not counted twice. Retained batches are bounded by count, bytes and
 * age; beyond a bound the oldest batch is dropped and counted (`stats.droppedBatches`,
 * `stats.droppedPoints`). Retained batches are never merged: a batch id always names the same points.
 *
 * The flush never throws and never rejects.
 */
import type { MetricReader } from "@opentelemetry/sdk-metrics";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { sleep, systemClock, withTimeout, type Clock } from "../../support/async";
import { isolateId } from "../../support/isolate";
import { metricReader } from "../meter-provider";
import { leafCount, leafName, leafOf, shardCount, shardName, shardOf, toMetricPoints, type Destination, type MetricPoint, type PointBatch } from "./points";
import { spanBuffer, type BufferingSpanProcessor } from "../tracer-provider";
import { instruments } from "../instruments";
import { logQueue, type LogQueue } from "../log-queue";
import { createOtlpSpanSender } from "./otlp-spans";

/** Sends one batch to one leaf or owner shard; resolves when it acknowledged the batch. */
export type SendPoints = (env: Env, to: Destination, batch: PointBatch) => Promise<void>;
/** Exports spans; resolves `true` when the collector accepted them. */
export type ExportSpans = (env: Env, spans: ReadableSpan[]) => Promise<boolean>;

/** Options of {@link TelemetryFlusher}; every field has a default. */
export interface TelemetryFlusherOptions {
  /** The reader to collect. Default: the isolate's `metricReader`. */
  reader?: MetricReader;
  /** Where ended spans wait. Default: the isolate's `spanBuffer`. */
  spans?: BufferingSpanProcessor;
  /** Request log lines held for the flush, written first thing in each export. Default: the isolate's `logQueue`. */
  logs?: LogQueue;
  /** At most one export starts per this many ms in one isolate. Default 1000. */
  minIntervalMillis?: number;
  /**
   * While the flusher is young (its first `youngForMillis` since its first flush), the interval
   * is at most this: an isolate killed soon after it started loses at most this much of its
   * traffic, for a few extra exports per isolate. Default: `minIntervalMillis` (off). Not on in
   * the deployed flusher yet: with it, the Workers tests that fake `Date` (reliability/chaos)
   * put the aggregator's alarms in the past and it re-pushes without pause (README, Metrics).
   */
  youngIntervalMillis?: number;
  /** How long a flusher counts as young. Default 10000. */
  youngForMillis?: number;
  /** Retained (unsent) batches kept at most. Default 64. */
  maxRetainedBatches?: number;
  /** Retained batches' JSON size kept at most. Default 1 MiB. */
  maxRetainedBytes?: number;
  /** A retained batch older than this is dropped (must stay well under the aggregator's batch-id TTL). Default 30 min. */
  maxRetainedAgeMillis?: number;
  /** A send or span export not done by then counts as failed. Default 5000. */
  timeoutMillis?: number;
  /** Transport to the aggregator. Default: RPC `ingest()` on `env.METRICS_AGGREGATOR`. */
  sendPoints?: SendPoints;
  /** Transport for spans. Default: gzipped OTLP/HTTP to `${OTEL_EXPORTER_OTLP_ENDPOINT}/v1/traces` ({@link otlpExportSpans}). */
  exportSpans?: ExportSpans;
  /**
   * Time and timers: the wait for the next interval, the send and span-export timeouts, the wait
   * for the export in flight, and retained batches' ages. Default {@link systemClock}; tests pass
   * a manual clock so that no wait depends on the speed of the machine.
   */
  clock?: Clock;
}

/** Counters of what one flusher did (for tests, the bench and the exactness report). */
export interface FlushStats {
  /** Calls of `flush()`. */
  flushCalls: number;
  /** Exports run (one collection each). */
  exports: number;
  /** Batch sends attempted to an aggregator, and how many failed. */
  sends: number;
  sendFailures: number;
  /** Batches/points dropped because retention was full or too old. */
  droppedBatches: number;
  droppedPoints: number;
  /** Span exports attempted, and how many failed. */
  spanExports: number;
  spanExportFailures: number;
  /** Collections that failed (the reader reported errors or threw). */
  collectErrors: number;
}

/** An export that has not collected yet, and when it was scheduled. */
interface ScheduledExport {
  promise: Promise<void>;
  atMs: number;
  /** Replaced because it waited far longer than it can (its request's context is gone): if it ever wakes, it does nothing. */
  abandoned: boolean;
}

interface RetainedBatch extends PointBatch {
  to: Destination;
  bytes: number;
  createdMs: number;
}


/** True when export is configured (a non-empty endpoint). */
export const exportEnabled = (env: Partial<Env> | undefined): boolean => Boolean(env?.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());

const trimSlash = (s: string) => s.trim().replace(/\/+$/, "");

/**
 * How many leaves this deployment sends through: METRICS_AGGREGATOR_LEAVES when the METRICS_LEAF
 * binding exists, else 0 (isolates send straight to the owner shards).
 */
export const leavesOf = (env: Env): number => (env.METRICS_LEAF ? leafCount(env.METRICS_AGGREGATOR_LEAVES) : 0);

/** The default transport: RPC to the leaf's or the shard's Durable Object. */
export const rpcSendPoints: SendPoints = async (env, to, batch) => {
  if (to.tier === "leaf") {
    const ns = env.METRICS_LEAF;
    if (!ns) throw new Error("METRICS_LEAF binding missing");
    await ns.get(ns.idFromName(leafName(to.index))).ingest(batch.id, batch.points);
    return;
  }
  const ns = env.METRICS_AGGREGATOR;
  if (!ns) throw new Error("METRICS_AGGREGATOR binding missing");
  const stub = ns.get(ns.idFromName(shardName(to.index)));
  await stub.ingest(batch.id, batch.points, to.index);
};

const sendSpans = createOtlpSpanSender();

/**
 * The default span transport: one gzipped OTLP/HTTP request per export (./otlp-spans.ts),
 * bearer-authenticated, encoded once at flush time, never on the response path.
 */
export const otlpExportSpans: ExportSpans = (env, spans) =>
  sendSpans({ endpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT ?? "", token: env.OTEL_EXPORTER_OTLP_TOKEN ?? "" }, spans);

/**
 * Coalescing, retaining flusher of one isolate. Use the module's `flushTelemetry(env)`; build
 * your own instance only to test with another reader or transport.
 *
 * @example
 * const flusher = new TelemetryFlusher({ minIntervalMillis: 500 });
 * ctx.waitUntil(flusher.flush(env)); // or, per request: const p = flusher.schedule(env); if (p) ctx.waitUntil(p);
 */
let flushers = 0;

export class TelemetryFlusher {
  readonly #instance = flushers++;
  #senderId: string | undefined;
  /**
   * Batch ids are `${senderId}-${sequence}`: the isolate's id for its first flusher (the one in
   * production), suffixed for any other one in the same isolate (tests, the bench), so no two
   * flushers ever mint the same batch id.
   */
  get senderId(): string {
    return (this.#senderId ??= this.#instance === 0 ? isolateId() : `${isolateId()}.${this.#instance}`);
  }
  readonly stats: FlushStats = {
    flushCalls: 0,
    exports: 0,
    sends: 0,
    sendFailures: 0,
    droppedBatches: 0,
    droppedPoints: 0,
    spanExports: 0,
    spanExportFailures: 0,
    collectErrors: 0,
  };
  readonly #reader: MetricReader;
  readonly #spans: BufferingSpanProcessor;
  readonly #logs: LogQueue;
  readonly #minIntervalMillis: number;
  readonly #youngIntervalMillis: number;
  readonly #youngForMillis: number;
  #firstFlushMs: number | undefined;
  readonly #maxRetainedBatches: number;
  readonly #maxRetainedBytes: number;
  readonly #maxRetainedAgeMillis: number;
  readonly #timeoutMillis: number;
  readonly #sendPoints: SendPoints;
  readonly #exportSpans: ExportSpans;
  readonly #clock: Clock;

  #sequence = 0;
  #leafTurn = 0;
  #retained: RetainedBatch[] = [];
  /** The export that has collected (or is collecting) and is sending. */
  #inFlight: Promise<void> | undefined;
  /** The export that will collect later; callers join it. */
  #scheduled: ScheduledExport | undefined;
  #lastStartMs = Number.NEGATIVE_INFINITY;

  constructor(options: TelemetryFlusherOptions = {}) {
    this.#reader = options.reader ?? metricReader;
    this.#spans = options.spans ?? spanBuffer;
    this.#logs = options.logs ?? logQueue;
    this.#minIntervalMillis = Math.max(0, options.minIntervalMillis ?? 1000);
    this.#youngIntervalMillis = Math.min(this.#minIntervalMillis, Math.max(0, options.youngIntervalMillis ?? this.#minIntervalMillis));
    this.#youngForMillis = Math.max(0, options.youngForMillis ?? 10_000);
    this.#maxRetainedBatches = Math.max(1, options.maxRetainedBatches ?? 64);
    this.#maxRetainedBytes = Math.max(1024, options.maxRetainedBytes ?? 1024 * 1024);
    this.#maxRetainedAgeMillis = options.maxRetainedAgeMillis ?? 30 * 60 * 1000;
    this.#timeoutMillis = options.timeoutMillis ?? 5000;
    this.#sendPoints = options.sendPoints ?? rpcSendPoints;
    this.#exportSpans = options.exportSpans ?? otlpExportSpans;
    this.#clock = options.clock ?? systemClock;
  }

  #droppedSpansReported = 0;
  /** Whether the last span export was accepted (the early "busy" export only helps then). */
  #lastSpanExportOk = true;

  /** Batches waiting to be re-sent. */
  get retainedBatches(): number {
    return this.#retained.length;
  }

  /**
   * Exports everything recorded before this call, coalesced with concurrent callers.
   * Resolves (never rejects) once an export containing the caller's data has finished.
   */
  flush(env: Env): Promise<void> {
    this.stats.flushCalls++;
    return this.#join() ?? this.#schedule(env);
  }

  /**
   * Like {@link flush}, for a request's `waitUntil`: answers the export's promise only when this
   * call scheduled it. A call that joins an export scheduled by another call answers undefined:
   * that caller's `waitUntil` already keeps the export alive, and the export collects
   * everything recorded until it starts, so the joiner's request need not stay open for it (a
   * `waitUntil` per request kept every request of the interval, with all it references, alive
   * until the export ended: bench/ab.mjs measured −166 µs of CPU per request without).
   *
   * @example
   * const pending = flusher.schedule(env);
   * if (pending) ctx.waitUntil(pending);
   */
  schedule(env: Env): Promise<void> | undefined {
    this.stats.flushCalls++;
    return this.#join() ? undefined : this.#schedule(env);
  }

  /**
   * The scheduled export's promise, unless there is none or it is stale: it waited longer than
   * any export can (the wait for the one in flight, bounded by its timeout, plus one interval,
   * twice over), so the request context whose timers it waits on is gone. A stale one is replaced
   * (callers get a new export, which collects everything) instead of holding every joiner.
   */
  #join(): Promise<void> | undefined {
    const scheduled = this.#scheduled;
    if (!scheduled) return undefined;
    const age = this.#clock.now() - scheduled.atMs;
    if (age <= 2 * (this.#timeoutMillis + 1000 + this.#minIntervalMillis)) return scheduled.promise;
    scheduled.abandoned = true;
    this.#scheduled = undefined;
    return undefined;
  }

  #schedule(env: Env): Promise<void> {
    const previous = this.#inFlight;
    const slot: ScheduledExport = { promise: Promise.resolve(), atMs: this.#clock.now(), abandoned: false };
    slot.promise = (async () => {
      try {
        // Always yield once, so `#scheduled` is set before it is cleared below. The wait for the
        // export in flight is bounded by a timer of THIS request: an export whose request context
        // was torn down (its promises never settle) must not stall the isolate's telemetry.
        await (previous ? withTimeout(previous, this.#timeoutMillis + 1000, this.#clock).catch(() => undefined) : Promise.resolve());
        // A busy isolate (span buffer a quarter full) exports at once rather than drop spans;
        // still one export in flight, so exports per request stay far below one. Not while span
        // exports fail (collector down): early exports would only re-fail, each with a metric
        // RPC, back to back (measured 35–50 exports/s at saturation instead of ~1).
        const busy = this.#lastSpanExportOk && this.#spans.size >= this.#spans.maxBufferedSpans / 4;
        // Never longer than one interval, even if the clock went back since the last export.
        const interval = this.#intervalMillis();
        const waitMs = busy ? 0 : Math.min(interval, this.#lastStartMs + interval - this.#clock.now());
        if (waitMs > 0) await sleep(waitMs, this.#clock);
      } catch {
        // A timer cannot fail. Proceed regardless.
      }
      if (slot.abandoned) return;
      if (this.#scheduled === slot) this.#scheduled = undefined;
      const run = this.#run(env);
      this.#inFlight = run;
      await run;
      if (this.#inFlight === run) this.#inFlight = undefined;
    })();
    this.#scheduled = slot;
    return slot.promise;
  }

  /** The interval now: shorter while the flusher is young (see `youngIntervalMillis`). */
  #intervalMillis(): number {
    const now = this.#clock.now();
    this.#firstFlushMs ??= now;
    return now - this.#firstFlushMs < this.#youngForMillis ? this.#youngIntervalMillis : this.#minIntervalMillis;
  }

  async #run(env: Env): Promise<void> {
    this.#lastStartMs = this.#clock.now();
    this.stats.exports++;
    // Every caller's lines are in by now (a caller joins only an export that has not run yet).
    this.#logs.write();
    let points: MetricPoint[] = [];
    try {
      const { resourceMetrics, errors } = await this.#reader.collect();
      if (errors.length) this.stats.collectErrors++;
      points = toMetricPoints(resourceMetrics);
    } catch (err) {
      this.stats.collectErrors++;
      console.warn("telemetry: metric collection failed", err);
    }
    if (!exportEnabled(env)) {
      // Export is off: nothing leaves the isolate, nothing accumulates in it.
      this.#spans.drain();
      return;
    }
    try {
      if (points.length) this.#enqueue(env, points);
      await Promise.all([this.#sendRetained(env), this.#sendSpans(env)]);
    } catch (err) {
      console.warn("telemetry: flush failed", err);
    }
  }

  /**
   * One batch per destination: with leaves, the whole collection to one leaf, the next leaf at
   * each export (starting from the isolate's own hash), so every leaf takes an equal share of
   * the batches whatever the number of isolates, and an unreachable leaf holds back only the
   * batches meant for it; without leaves, one batch per owner shard.
   */
  #enqueue(env: Env, points: MetricPoint[]): void {
    const now = this.#clock.now();
    const leaves = leavesOf(env);
    const batches = new Map<string, { to: Destination; points: MetricPoint[] }>();
    if (leaves > 0) batches.set("leaf", { to: { tier: "leaf", index: (leafOf(this.senderId, leaves) + this.#leafTurn++) % leaves }, points });
    else {
      const shards = shardCount(env.METRICS_AGGREGATOR_SHARDS);
      for (const p of points) {
        const index = shardOf(p.name, shards);
        let entry = batches.get(String(index));
        if (!entry) batches.set(String(index), (entry = { to: { tier: "shard", index }, points: [] }));
        entry.points.push(p);
      }
    }
    for (const { to, points: list } of batches.values()) {
      const id = `${this.senderId}-${this.#sequence++}`;
      this.#retained.push({ id, to, points: list, bytes: JSON.stringify(list).length, createdMs: now });
    }
    this.#bound(now);
  }

  /** Drops the oldest retained batches beyond count, bytes or age, counting them. */
  #bound(now: number): void {
    let bytes = this.#retained.reduce((n, b) => n + b.bytes, 0);
    while (
      this.#retained.length > 0 &&
      (this.#retained.length > this.#maxRetainedBatches ||
        bytes > this.#maxRetainedBytes ||
        now - this.#retained[0]!.createdMs > this.#maxRetainedAgeMillis)
    ) {
      const dropped = this.#retained.shift()!;
      bytes -= dropped.bytes;
      this.stats.droppedBatches++;
      this.stats.droppedPoints += dropped.points.length;
      console.warn(`telemetry: dropped metric batch ${dropped.id} (${dropped.points.length} points): retention full`);
    }
  }

  /**
   * Sends retained batches oldest first, per destination in order, one at a time; a destination
   * stops at its first failure. So a batch is sent only after every older one to the same place
   * was acknowledged (or dropped by the bounds): the order a leaf's sequence check relies on.
   */
  async #sendRetained(env: Env): Promise<void> {
    const where = (to: Destination) => `${to.tier} ${to.index}`;
    const destinations = [...new Set(this.#retained.map((b) => where(b.to)))];
    await Promise.all(
      destinations.map(async (destination) => {
        for (const batch of this.#retained.filter((b) => where(b.to) === destination)) {
          this.stats.sends++;
          try {
            await withTimeout(this.#sendPoints(env, batch.to, { id: batch.id, points: batch.points }), this.#timeoutMillis, this.#clock);
            this.#retained = this.#retained.filter((b) => b !== batch);
          } catch (err) {
            this.stats.sendFailures++;
            console.warn(`telemetry: send of batch ${batch.id} to ${destination} failed; kept for the next flush`, String(err));
            return;
          }
        }
      }),
    );
  }

  async #sendSpans(env: Env): Promise<void> {
    // Drops are counted with one integer each (O(1), in the buffer); here, once per export, they
    // become one counter add and at most one warning — never a line or a metric per span.
    const dropped = this.#spans.droppedSpans - this.#droppedSpansReported;
    if (dropped > 0) {
      this.#droppedSpansReported += dropped;
      try {
        instruments.spansDropped.add(dropped);
      } catch {
        // Recording never fails the export.
      }
      console.warn(`telemetry: span buffer full, ${dropped} span(s) dropped since the last export`);
    }
    const spans = this.#spans.drain();
    if (!spans.length) return;
    this.stats.spanExports++;
    let ok = false;
    try {
      ok = await withTimeout(this.#exportSpans(env, spans), this.#timeoutMillis, this.#clock);
    } catch (err) {
      console.warn("telemetry: span export failed", String(err));
    }
    this.#lastSpanExportOk = ok;
    if (!ok) {
      this.stats.spanExportFailures++;
      this.#spans.requeue(spans);
    }
  }
}
