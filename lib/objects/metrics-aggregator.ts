/**
 * MetricsAggregator: the Durable Object that turns the delta points of many short-lived isolates
 * into one cumulative stream per label set, and pushes those streams as cumulative OTLP to the
 * collector. Because the running totals live here (in SQLite), a collector restart loses nothing
 * and Prometheus sees no counter reset; because one object owns a stream and pushes it with one
 * `service.instance.id`, Prometheus sees exactly one series per label set.
 *
 *   isolates ──RPC ingest(batchId, points)──▶ MetricsAggregator (shard = hash(name) % N)
 *   (or MetricsLeaf ──RPC forward(leaf, seq)──▶)  │ SQLite: streams, batch ids (TTL), leaf sequences
 *                                               └─alarm ≤ 0.5 s─▶ OTLP/HTTP cumulative ─▶ collector
 *
 * - `ingest` is idempotent per batch id: a batch re-sent after a failed-looking send is ignored;
 *   `forward` (from the leaf tier, ./metrics-leaf.ts) once per (leaf, sequence).
 * - Counters add, histograms add bucket-wise, gauges keep the value with the latest time.
 * - UpDownCounters (in-flight requests, cache sizes) are kept per isolate and summed over the
 *   isolates heard from in the last `senderLiveMillis`: an isolate that dies mid-request or with a
 *   full cache stops counting, instead of leaving its +1 / its bytes in the sum forever.
 * - Every push carries ALL streams of the shard, stamped with a time strictly after the previous
 *   push (Prometheus rejects duplicate or out-of-order samples), and a fixed per-stream start time.
 * - A failed push is simply retried on the next alarm: the state is cumulative.
 * - Continuity, like a scrape target: a change is pushed at once after a quiet
 *   `pushIntervalMillis`, else that long after the last push, and while nothing changes the
 *   whole state is re-pushed every `keepaliveMillis`, with no idle
 *   stop, for as long as the shard holds a stream it owns. Counters keep their totals and gauges
 *   their newest value, so no series goes stale in Prometheus on a quiet night.
 * - Every push also carries the shard's heartbeat, astra_telemetry_push_timestamp_seconds
 *   {shard}: the push's own time, so the newest sample in Prometheus is the last push that
 *   arrived, and an alert can tell "pipeline silent" from "no traffic".
 * - An empty OTEL_EXPORTER_OTLP_ENDPOINT turns pushing off.
 *
 * Scaling out: streams are sharded by metric name over METRICS_AGGREGATOR_SHARDS objects
 * (`metrics-shard-N`); one stream always has one owner, so shards never write the same series.
 * Changing the shard count moves some metrics to a new owner, which starts them from 0 (one
 * counter reset in Prometheus, which rate()/increase() absorb); the old owner stops pushing them.
 */
import { DurableObject } from "cloudflare:workers";
import { alarmNoLaterThan, nextAfterQuiet } from "./alarms";
import { ValueType } from "@opentelemetry/api";
import { ExportResultCode, millisToHrTime, type ExportResult } from "@opentelemetry/core";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { AggregationTemporality, DataPointType, type MetricData, type ResourceMetrics } from "@opentelemetry/sdk-metrics";
import { SERVICE_NAME, serviceResource } from "../telemetry/meter-provider";
import { addHistograms, isValidPoint, shardCount, shardOf, streamKey, type HistogramValue, type MetricPoint, type PointKind } from "../telemetry/export/points";
import type { AggregatorStats } from "./aggregation-stats";

/** The fixed `service.instance.id` of every push: one Prometheus `instance` for the whole service. */
export const AGGREGATOR_INSTANCE_ID = SERVICE_NAME;

/** Timing and bounds of the aggregator (fixed per deployment). */
export const aggregatorConfig = {
  /**
   * Shortest time between pushes, and the delay of a change that arrives within it (one that
   * arrives later than this after the last push is pushed at once).
   */
  pushIntervalMillis: 500,
  /**
   * Re-push period while nothing changed, traffic or not: every series keeps a sample younger
   * than this (plus one push) in Prometheus, far inside its 5 min lookback. ≤ 30 s by contract.
   */
  keepaliveMillis: 15_000,
  /** Longest wait between retries of a failed push. */
  maxRetryMillis: 10_000,
  /** How long batch ids are remembered (must exceed the isolates' retention age). */
  batchIdTtlMillis: 2 * 60 * 60_000,
  /** Streams kept at most; points of new streams beyond it are dropped and counted. */
  maxStreams: 20_000,
  /** OTLP push timeout. */
  pushTimeoutMillis: 5000,
  /**
   * An isolate not heard from for this long counts as gone: its UpDownCounter contributions
   * (requests it had in flight, its cache size) leave the sums. Isolates that live on flush at
   * least this often while they serve traffic.
   */
  senderLiveMillis: 5 * 60_000,
  /** Contributions of isolates not heard from for this long are deleted (bounded storage). */
  senderForgetMillis: 60 * 60_000,
};

/** The isolate a batch came from: batch ids are `${isolateId}-${sequence}`. */
export const senderOf = (batchId: string): string => batchId.replace(/-\d+$/, "");

/** What the last push saw, for {@link nextPushDelayMillis}. */
export interface PushOutcome {
  /** The collector accepted the push. */
  ok: boolean;
  /** Consecutive failed pushes, this one included (0 after a success). */
  failures: number;
  /** Points arrived that no accepted push carries yet. */
  dirty: boolean;
}

/**
 * Milliseconds until the next push. There is no idle stop: how long the shard has been quiet
 * does not enter, so the keepalive runs for as long as the deployment exists.
 *
 * @example
 * nextPushDelayMillis({ ok: true, failures: 0, dirty: false }); // 15000: keepalive
 * nextPushDelayMillis({ ok: false, failures: 3, dirty: true }); // 4000: backoff
 */
export function nextPushDelayMillis(outcome: PushOutcome, config: Pick<typeof aggregatorConfig, "pushIntervalMillis" | "keepaliveMillis" | "maxRetryMillis"> = aggregatorConfig): number {
  if (!outcome.ok) return Math.min(config.maxRetryMillis, config.pushIntervalMillis * 2 ** Math.min(Math.max(outcome.failures, 1) - 1, 4));
  return outcome.dirty ? config.pushIntervalMillis : config.keepaliveMillis;
}

/** The heartbeat gauge every push carries: the push's own time, per shard. */
export const HEARTBEAT_METRIC = "astra_telemetry_push_timestamp_seconds";

/** What `ingest` answers. */
export interface BatchIngestResult {
  /** False when the batch id was seen before (nothing was added). */
  accepted: boolean;
  /** Points merged (0 for a duplicate). */
  merged: number;
}

interface StreamRow {
  key: string;
  name: string;
  description: string;
  unit: string;
  kind: PointKind;
  attributes: string;
  value: number | null;
  histogram: string | null;
  time_ms: number;
  start_ms: number;
  [column: string]: SqlStorageValue;
}


/**
 * One shard of cumulative metric state. Isolates call `ingest` by RPC (../telemetry/export/flush.ts).
 *
 * @example
 * const ns = env.METRICS_AGGREGATOR;
 * await ns.get(ns.idFromName("metrics-shard-0")).ingest("isolate-1-0", points);
 */
export class MetricsAggregator extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  #exporter: { key: string; exporter: OTLPMetricExporter } | undefined;
  /** When this instance last started a push (memory only: a fresh instance waits the full interval). */
  #lastPushStartMs: number | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS streams (
      key TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL, unit TEXT NOT NULL, kind TEXT NOT NULL,
      attributes TEXT NOT NULL, value REAL, histogram TEXT, time_ms REAL NOT NULL, start_ms INTEGER NOT NULL)`);
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS batches (id TEXT PRIMARY KEY, at_ms INTEGER NOT NULL)`);
    this.#sql.exec(`CREATE INDEX IF NOT EXISTS batches_at ON batches (at_ms)`);
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL NOT NULL)`);
    // UpDownCounters: each isolate's running contribution, summed over the isolates still alive.
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS senders (sender TEXT PRIMARY KEY, seen_ms INTEGER NOT NULL)`);
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS contributions (
      stream_key TEXT NOT NULL, sender TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (stream_key, sender))`);
    // Leaves: the last forward sequence accepted from each (one row per leaf, see forward()).
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS forwarders (leaf TEXT PRIMARY KEY, sequence INTEGER NOT NULL, at_ms INTEGER NOT NULL)`);
  }

  #meta(key: string): number {
    const row = this.#sql.exec<{ value: number }>(`SELECT value FROM meta WHERE key = ?`, key).toArray()[0];
    return row?.value ?? 0;
  }

  #setMeta(key: string, value: number): void {
    this.#sql.exec(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value);
  }

  #bumpMeta(key: string, by = 1): void {
    this.#sql.exec(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = value + excluded.value`, key, by);
  }

  /**
   * Merges one batch of delta points into the cumulative streams, once per batch id.
   * Invalid points are skipped and counted, never thrown on. `shard` is this object's shard
   * index (the sender knows it): remembered, so the object stops pushing streams it no longer
   * owns after METRICS_AGGREGATOR_SHARDS changes.
   */
  async ingest(batchId: string, points: MetricPoint[], shard?: number): Promise<BatchIngestResult> {
    const now = Date.now();
    const result = this.ctx.storage.transactionSync((): BatchIngestResult => {
      this.#noteShard(shard);
      const seen = this.#sql.exec(`SELECT 1 FROM batches WHERE id = ?`, batchId).toArray().length > 0;
      if (seen) {
        this.#bumpMeta("batches_duplicate");
        return { accepted: false, merged: 0 };
      }
      this.#sql.exec(`INSERT INTO batches (id, at_ms) VALUES (?, ?)`, batchId, now);
      const sender = senderOf(batchId);
      this.#noteSender(sender, now);
      const merged = this.#mergeAll(points, now, sender);
      this.#bumpMeta("batches_accepted");
      return { accepted: true, merged };
    });
    if (result.merged) await alarmNoLaterThan(this.ctx.storage, this.#nextPushAt(now));
    return result;
  }

  /**
   * Merges what a leaf aggregator (./metrics-leaf.ts) gathered for this shard since its last
   * forward, once per (leaf, sequence): a leaf sends its forwards to one shard one at a time, in
   * sequence order, re-sending a failed one with the same sequence, so a sequence not above the
   * leaf's last accepted one is a duplicate. That needs one row per leaf, not one per batch.
   * `senders` are the isolates the leaf heard from, with when (their UpDownCounter
   * contributions stay live); UpDownCounter points name their isolate in `sender`.
   *
   * @example
   * await owner.forward(leafId, 17, points, 0, [["isolate-a", Date.now()]]);
   */
  async forward(from: string, sequence: number, points: MetricPoint[], shard: number, senders: Array<[string, number]>): Promise<BatchIngestResult> {
    const now = Date.now();
    if (typeof from !== "string" || !from || !Number.isSafeInteger(sequence) || sequence < 0) return { accepted: false, merged: 0 };
    const result = this.ctx.storage.transactionSync((): BatchIngestResult => {
      this.#noteShard(shard);
      const last = this.#sql.exec<{ sequence: number }>(`SELECT sequence FROM forwarders WHERE leaf = ?`, from).toArray()[0]?.sequence;
      if (last !== undefined && sequence <= last) {
        this.#bumpMeta("forwards_duplicate");
        return { accepted: false, merged: 0 };
      }
      this.#sql.exec(
        `INSERT INTO forwarders (leaf, sequence, at_ms) VALUES (?, ?, ?) ON CONFLICT(leaf) DO UPDATE SET sequence = excluded.sequence, at_ms = excluded.at_ms`,
        from,
        sequence,
        now,
      );
      for (const entry of Array.isArray(senders) ? senders : []) {
        const [sender, seenMs] = Array.isArray(entry) ? entry : [];
        if (typeof sender === "string" && sender) this.#noteSender(sender, Math.min(now, Number.isFinite(seenMs) ? Number(seenMs) : now));
      }
      const merged = this.#mergeAll(points, now, from);
      this.#bumpMeta("forwards_accepted");
      return { accepted: true, merged };
    });
    if (result.merged) await alarmNoLaterThan(this.ctx.storage, this.#nextPushAt(now));
    return result;
  }

  #noteShard(shard: number | undefined): void {
    if (typeof shard === "number" && Number.isInteger(shard) && shard >= 0) this.#setMeta("shard", shard);
  }

  #noteSender(sender: string, seenMs: number): void {
    this.#sql.exec(`INSERT INTO senders (sender, seen_ms) VALUES (?, ?) ON CONFLICT(sender) DO UPDATE SET seen_ms = max(seen_ms, excluded.seen_ms)`, sender, seenMs);
  }

  /** Merges valid points (UpDownCounters under their own `sender`, else `sender`); counts the rest as dropped. */
  #mergeAll(points: MetricPoint[], now: number, sender: string): number {
    let merged = 0;
    for (const point of Array.isArray(points) ? points : []) {
      if (isValidPoint(point) && this.#merge(point, now, typeof point.sender === "string" && point.sender ? point.sender : sender)) merged++;
      else this.#bumpMeta("points_dropped");
    }
    if (merged) this.#bumpMeta("version");
    return merged;
  }

  #merge(p: MetricPoint, now: number, sender: string): boolean {
    const key = streamKey(p);
    if (p.kind === "updowncounter")
      this.#sql.exec(
        `INSERT INTO contributions (stream_key, sender, value) VALUES (?, ?, ?) ON CONFLICT(stream_key, sender) DO UPDATE SET value = value + excluded.value`,
        key,
        sender,
        p.value as number,
      );
    const row = this.#sql.exec<StreamRow>(`SELECT * FROM streams WHERE key = ?`, key).toArray()[0];
    if (!row) {
      const count = this.#sql.exec<{ n: number }>(`SELECT count(*) AS n FROM streams`).one().n;
      if (count >= aggregatorConfig.maxStreams) return false;
      this.#sql.exec(
        `INSERT INTO streams (key, name, description, unit, kind, attributes, value, histogram, time_ms, start_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        key,
        p.name,
        p.description ?? "",
        p.unit ?? "",
        p.kind,
        JSON.stringify(p.attributes),
        p.kind === "histogram" ? null : (p.value as number),
        p.kind === "histogram" ? JSON.stringify(p.histogram) : null,
        p.timeMs ?? now,
        // Fixed start of the cumulative stream; 1 ms before the first point so start < time.
        Math.floor(Math.min(p.timeMs ?? now, now)) - 1,
      );
      return true;
    }
    switch (p.kind) {
      case "counter":
      case "updowncounter":
        this.#sql.exec(`UPDATE streams SET value = value + ?, time_ms = max(time_ms, ?) WHERE key = ?`, p.value as number, p.timeMs ?? now, key);
        return true;
      case "gauge":
        if ((p.timeMs ?? now) >= row.time_ms)
          this.#sql.exec(`UPDATE streams SET value = ?, time_ms = ? WHERE key = ?`, p.value as number, p.timeMs ?? now, key);
        return true;
      case "histogram": {
        const current = JSON.parse(row.histogram ?? "null") as HistogramValue | null;
        const sum = current ? addHistograms(current, p.histogram!) : p.histogram!;
        if (!sum) {
          console.warn(`aggregator: ${p.name} changed its buckets; point dropped`);
          return false;
        }
        this.#sql.exec(`UPDATE streams SET histogram = ?, time_ms = max(time_ms, ?) WHERE key = ?`, JSON.stringify(sum), p.timeMs ?? now, key);
        return true;
      }
    }
  }

  /**
   * When a change should be pushed: at once when this instance has not pushed for a whole
   * `pushIntervalMillis` (a quiet shard adds no delay to freshness), else one interval after the
   * last push started (so pushes stay ≤ 1 per interval under load). A fresh instance waits the
   * interval, as before.
   */
  #nextPushAt(now: number): number {
    return nextAfterQuiet(this.#lastPushStartMs, now, aggregatorConfig.pushIntervalMillis);
  }

  /**
   * Pushes all streams, prunes old batch ids and forgotten isolates, and schedules the next
   * alarm. The next alarm is set whatever happens here (a failed push, a storage error), so the
   * keepalive chain never ends while the shard owns a stream; it ends only when pushing is off
   * (no endpoint) or the shard owns nothing (after a resharding), and the next ingest restarts it.
   */
  override async alarm(): Promise<void> {
    let delay: number | undefined = aggregatorConfig.maxRetryMillis;
    try {
      const now = Date.now();
      this.#sql.exec(`DELETE FROM batches WHERE at_ms < ?`, now - aggregatorConfig.batchIdTtlMillis);
      const forgetBefore = now - aggregatorConfig.senderForgetMillis;
      this.#sql.exec(`DELETE FROM contributions WHERE sender IN (SELECT sender FROM senders WHERE seen_ms < ?)`, forgetBefore);
      this.#sql.exec(`DELETE FROM senders WHERE seen_ms < ?`, forgetBefore);
      const version = this.#meta("version");
      const outcome = await this.#push();
      if (outcome === "off" || outcome === "nothing_owned") {
        delay = undefined;
        return;
      }
      const ok = outcome === "ok";
      const failures = ok ? 0 : this.#meta("consecutive_failures") + 1;
      if (failures !== this.#meta("consecutive_failures")) this.#setMeta("consecutive_failures", failures);
      const dirty = this.#meta("version") > (ok ? version : this.#meta("pushed_version"));
      delay = nextPushDelayMillis({ ok, failures, dirty });
    } finally {
      if (delay !== undefined) await this.ctx.storage.setAlarm(Date.now() + delay);
    }
  }

  /**
   * Pushes every stream now as cumulative OTLP. Resolves true when the collector accepted it.
   * Public for tests and operators; the alarm is its normal caller.
   */
  async pushNow(): Promise<boolean> {
    const outcome = await this.#push();
    return outcome === "ok" || outcome === "nothing_owned";
  }

  /** One push, tagged: export off, nothing this shard owns (nothing sent), accepted, or failed. */
  async #push(): Promise<"off" | "nothing_owned" | "ok" | "failed"> {
    this.#lastPushStartMs = Date.now();
    const endpoint = this.env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim().replace(/\/+$/, "");
    if (!endpoint) return "off";
    const version = this.#meta("version");
    // Strictly after the previous push (attempted or not), in whole milliseconds.
    const timeMs = Math.max(Math.floor(Date.now()), this.#meta("last_push_ms") + 1);
    this.#setMeta("last_push_ms", timeMs);
    const resourceMetrics = this.buildResourceMetrics(timeMs);
    if (!resourceMetrics.scopeMetrics[0]?.metrics.length) return "nothing_owned";
    let ok = false;
    try {
      const result = await new Promise<ExportResult>((resolve) => this.#metricExporter(endpoint).export(resourceMetrics, resolve));
      ok = result.code === ExportResultCode.SUCCESS;
      if (!ok) console.warn("aggregator: push failed", String(result.error ?? ""));
    } catch (err) {
      console.warn("aggregator: push failed", String(err));
    }
    this.#bumpMeta(ok ? "pushes" : "push_failures");
    if (ok) this.#setMeta("pushed_version", version);
    return ok ? "ok" : "failed";
  }

  #metricExporter(endpoint: string): OTLPMetricExporter {
    const url = `${endpoint}/v1/metrics`;
    const token = this.env.OTEL_EXPORTER_OTLP_TOKEN ?? "";
    const key = `${url} ${token}`;
    if (this.#exporter?.key !== key) {
      this.#exporter = {
        key,
        exporter: new OTLPMetricExporter({
          url,
          headers: token ? { Authorization: `Bearer ${token}` } : {},
          timeoutMillis: aggregatorConfig.pushTimeoutMillis,
        }),
      };
    }
    return this.#exporter.exporter;
  }

  /** The SDK data model of every stream, cumulative, stamped `timeMs`. */
  buildResourceMetrics(timeMs: number): ResourceMetrics {
    const rows = this.#ownedRows();
    const endTime = millisToHrTime(timeMs);
    const metrics = new Map<string, MetricData>();
    const live = this.#liveSums(timeMs);
    for (const row of rows) {
      const id = `${row.name}|${row.kind}`;
      let metric = metrics.get(id);
      if (!metric) {
        const descriptor = { name: row.name, description: row.description, unit: row.unit, valueType: ValueType.DOUBLE };
        metric =
          row.kind === "histogram"
            ? { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.HISTOGRAM, dataPoints: [] }
            : row.kind === "gauge"
              ? { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.GAUGE, dataPoints: [] }
              : {
                  descriptor,
                  aggregationTemporality: AggregationTemporality.CUMULATIVE,
                  dataPointType: DataPointType.SUM,
                  isMonotonic: row.kind === "counter",
                  dataPoints: [],
                };
        metrics.set(id, metric);
      }
      const base = { startTime: millisToHrTime(Math.min(row.start_ms, timeMs - 1)), endTime, attributes: JSON.parse(row.attributes) as Record<string, string> };
      if (metric.dataPointType === DataPointType.HISTOGRAM) {
        const h = JSON.parse(row.histogram ?? "null") as HistogramValue | null;
        if (!h) continue;
        metric.dataPoints.push({
          ...base,
          value: { buckets: { boundaries: h.boundaries, counts: h.bucketCounts }, sum: h.sum, count: h.count, min: h.min, max: h.max },
        });
      } else if (metric.dataPointType === DataPointType.SUM || metric.dataPointType === DataPointType.GAUGE) {
        metric.dataPoints.push({ ...base, value: row.kind === "updowncounter" ? (live.get(row.key) ?? 0) : (row.value ?? 0) });
      }
    }
    if (metrics.size)
      metrics.set(HEARTBEAT_METRIC, {
        descriptor: { name: HEARTBEAT_METRIC, description: "Unix time of the metrics aggregator shard's push that carried this sample", unit: "", valueType: ValueType.DOUBLE },
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.GAUGE,
        dataPoints: [{ startTime: endTime, endTime, attributes: { shard: String(this.#shard() ?? 0) }, value: timeMs / 1000 }],
      });
    return {
      resource: serviceResource(this.env, { "service.instance.id": AGGREGATOR_INSTANCE_ID }),
      scopeMetrics: [{ scope: { name: SERVICE_NAME }, metrics: [...metrics.values()] }],
    };
  }

  /** This object's shard index, as the senders told it (undefined before the first ingest said). */
  #shard(): number | undefined {
    return this.#sql.exec<{ value: number }>(`SELECT value FROM meta WHERE key = 'shard'`).toArray()[0]?.value;
  }

  /**
   * The streams this shard owns under the current shard count: after a resharding the new owner
   * starts them from 0 (one counter reset), and this object stops writing them.
   */
  #ownedRows(): StreamRow[] {
    const myShard = this.#shard();
    const shards = shardCount(this.env.METRICS_AGGREGATOR_SHARDS);
    return this.#sql
      .exec<StreamRow>(`SELECT * FROM streams ORDER BY name, kind, key`)
      .toArray()
      .filter((row) => myShard === undefined || shardOf(row.name, shards) === myShard);
  }

  /** UpDownCounter values: per stream, the sum of the contributions of isolates seen recently. */
  #liveSums(nowMs: number): Map<string, number> {
    const rows = this.#sql
      .exec<{ stream_key: string; total: number }>(
        `SELECT c.stream_key AS stream_key, sum(c.value) AS total FROM contributions c JOIN senders s ON s.sender = c.sender
         WHERE s.seen_ms >= ? GROUP BY c.stream_key`,
        nowMs - aggregatorConfig.senderLiveMillis,
      )
      .toArray();
    return new Map(rows.map((r) => [r.stream_key, r.total]));
  }

  /** Counters of this shard. */
  async stats(): Promise<AggregatorStats> {
    return {
      streams: this.#sql.exec<{ n: number }>(`SELECT count(*) AS n FROM streams`).one().n,
      senders: this.#sql.exec<{ n: number }>(`SELECT count(*) AS n FROM senders`).one().n,
      batchesAccepted: this.#meta("batches_accepted"),
      batchesDuplicate: this.#meta("batches_duplicate"),
      forwardsAccepted: this.#meta("forwards_accepted"),
      forwardsDuplicate: this.#meta("forwards_duplicate"),
      pointsDropped: this.#meta("points_dropped"),
      pushes: this.#meta("pushes"),
      pushFailures: this.#meta("push_failures"),
      lastPushMs: this.#meta("last_push_ms"),
      version: this.#meta("version"),
      pushedVersion: this.#meta("pushed_version"),
    };
  }

  /** The cumulative value of one stream (sum, gauge) or its histogram; for tests. */
  async read(name: string, kind: PointKind, attributes: Record<string, string>): Promise<{ value: number | null; histogram: HistogramValue | null } | null> {
    const key = streamKey({ name, kind, attributes });
    const row = this.#sql.exec<StreamRow>(`SELECT * FROM streams WHERE key = ?`, key).toArray()[0];
    if (!row) return null;
    const value = kind === "updowncounter" ? (this.#liveSums(Date.now()).get(key) ?? 0) : row.value;
    return { value, histogram: JSON.parse(row.histogram ?? "null") as HistogramValue | null };
  }
}
