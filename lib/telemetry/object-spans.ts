/**
 * Spans across a Durable Object RPC: the object runs a method in a SERVER span continuing the
 * caller's trace (`continueTrace`) and answers it with the result as plain data; the caller puts
 * it in its own span buffer (`adoptSpans`), so it leaves in the caller's flush — one flush path
 * whichever isolate the object runs in, and no export started from inside an object call (a
 * flush started there left the isolate's shared flusher waiting for workerd's 30 s cut-off).
 *
 */
import { context, createContextKey, INVALID_SPAN_CONTEXT, isSpanContextValid, SpanKind, trace, TraceFlags, type Attributes, type AttributeValue, type HrTime, type SpanStatus } from "@opentelemetry/api";
import { hrTimeDuration, TraceState } from "@opentelemetry/core";
import type { Resource } from "@opentelemetry/resources";
import { AlwaysOffSampler, BasicTracerProvider, ParentBasedSampler, type ReadableSpan, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { SERVICE_NAME, serviceResource } from "./meter-provider";
import { safely } from "../support/safely";
import { extractTraceContext, sampledOut, withDefaultTracer, withSpan, type TraceCarrier } from "./spans";
import { spanBuffer } from "./tracer-provider";

/** A finished span as plain data (structured-clone safe), to hand back over RPC. */
export interface WireSpan {
  name: string;
  kind: SpanKind;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  traceFlags: number;
  traceState?: string;
  startTime: HrTime;
  endTime: HrTime;
  status: SpanStatus;
  attributes: Attributes;
  events: Array<{ name: string; time: HrTime; attributes?: Attributes }>;
}

/** What a traced RPC answers: the method's result and the spans the object made for it. */
export interface TracedResult<T> {
  result: T;
  spans: WireSpan[];
}

/** Spans objects made, by span id, until their call hands them back (bounded; a leak cannot grow). */
class CollectingSpanProcessor implements SpanProcessor {
  static readonly MAX_SPANS = 256;
  readonly #spans = new Map<string, ReadableSpan>();
  onStart(): void {}
  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0 || this.#spans.size >= CollectingSpanProcessor.MAX_SPANS) return;
    this.#spans.set(span.spanContext().spanId, span);
  }
  /** The span `spanId` and every collected span below it (its children, theirs, ...), removed. */
  takeTree(spanId: string | undefined): ReadableSpan[] {
    if (spanId === undefined) return [];
    const ids = new Set([spanId]);
    for (let grew = true; grew; ) {
      grew = false;
      for (const [id, span] of this.#spans) {
        const parent = span.parentSpanContext?.spanId;
        if (!ids.has(id) && parent !== undefined && ids.has(parent)) {
          ids.add(id);
          grew = true;
        }
      }
    }
    const out: ReadableSpan[] = [];
    for (const id of ids) {
      const span = this.#spans.get(id);
      if (span) out.push(span);
      this.#spans.delete(id);
    }
    return out;
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {
    this.#spans.clear();
  }
}

const objectSpans = new CollectingSpanProcessor();
/** Where adoptSpans puts spans while an object's traced call runs (see continueTrace). */
const PASSED_ON = createContextKey("astra.object.passed-on-spans");
/** The tracer of Durable Object methods: it never starts a trace, it only continues the caller's. */
const objectTracer = new BasicTracerProvider({
  sampler: new ParentBasedSampler({ root: new AlwaysOffSampler() }),
  spanProcessors: [objectSpans],
}).getTracer(SERVICE_NAME);

function toWire(span: ReadableSpan): WireSpan {
  const sc = span.spanContext();
  return {
    name: span.name,
    kind: span.kind,
    traceId: sc.traceId,
    spanId: sc.spanId,
    ...(span.parentSpanContext && { parentSpanId: span.parentSpanContext.spanId }),
    traceFlags: sc.traceFlags,
    ...(sc.traceState && { traceState: sc.traceState.serialize() }),
    startTime: span.startTime,
    endTime: span.endTime,
    status: span.status,
    attributes: span.attributes,
    events: span.events.map((e) => ({ name: e.name, time: e.time, ...(e.attributes && { attributes: e.attributes }) })),
  };
}

/**
 * The receiving side of a traced RPC (a Durable Object method): runs `fn` in a SERVER span that
 * continues the caller's trace from `carrier`, and answers the result with that span as data.
 * The caller hands the spans to {@link adoptSpans}, so they leave in the CALLER's flush: one
 * flush path whether or not the object shares the caller's isolate, and no export started from
 * inside an object call. Without a valid `traceparent`, `fn` runs untraced (`spans: []`, and no
 * span made inside it is recorded).
 *
 * Spans that `fn` starts with `withSpan` are made by the object's tracer too and travel back with
 * this one: nothing made inside an object waits in a buffer of the object's isolate. A caller
 * sampled out gets no span made (`spans: []`), as untraced; `fn` still runs under its context.
 *
 * @example
 * async traced(carrier, op, args) {
 *   return continueTrace(carrier, `MissionState.${op}`, { "db.operation.name": op }, () => this[op](...args));
 * }
 */
export async function continueTrace<T>(carrier: TraceCarrier | undefined, name: string, attributes: Record<string, AttributeValue | undefined>, fn: () => T | Promise<T>): Promise<TracedResult<T>> {
  // Spans of objects this one calls in turn (adoptSpans inside fn) travel back with this call.
  const passedOn: WireSpan[] = [];
  const parent = extractTraceContext(carrier).setValue(PASSED_ON, passedOn);
  // Untraced: the object's tracer never starts a trace, so spans inside stay unrecorded. Sampled
  // out (a valid caller span without the sampled flag): every span here would be non-recording
  // (parent-based sampling), so none is made; `fn` runs under the caller's span, whose trace id
  // its log lines carry.
  const caller = trace.getSpanContext(parent) ?? INVALID_SPAN_CONTEXT;
  if (!isSpanContextValid(caller) || sampledOut(caller))
    return { result: await context.with(withDefaultTracer(parent, objectTracer), fn), spans: [] };
  let spanId: string | undefined;
  try {
    const result = await withSpan(
      name,
      attributes,
      async (span) => {
        spanId = span.spanContext().spanId;
        return await fn();
      },
      { kind: SpanKind.SERVER, parent: withDefaultTracer(parent, objectTracer), tracer: objectTracer },
    );
    const spans: WireSpan[] = [];
    safely(() => {
      for (const span of objectSpans.takeTree(spanId)) spans.push(toWire(span));
      spans.push(...passedOn.slice(0, CollectingSpanProcessor.MAX_SPANS));
    });
    return { result, spans };
  } catch (err) {
    objectSpans.takeTree(spanId);
    throw err;
  }
}

/**
 * Puts spans an object handed back (see {@link continueTrace}) into this isolate's span buffer,
 * under the service resource, so the next flush exports them with the caller's spans. Never throws.
 */
export function adoptSpans(spans: readonly WireSpan[] | undefined): void {
  if (!spans?.length) return;
  // Inside an object's traced call: hand them on to that call's caller instead.
  const passedOn = context.active().getValue(PASSED_ON) as WireSpan[] | undefined;
  if (passedOn) return void passedOn.push(...spans);
  safely(() => {
    const active = trace.getSpan(context.active()) as Partial<ReadableSpan> | undefined;
    const resource = active?.resource ?? fallbackResource();
    for (const w of spans) {
      const spanContext = { traceId: w.traceId, spanId: w.spanId, traceFlags: w.traceFlags, ...(w.traceState && { traceState: new TraceState(w.traceState) }) };
      const readable: ReadableSpan = {
        name: w.name,
        kind: w.kind,
        spanContext: () => spanContext,
        ...(w.parentSpanId && { parentSpanContext: { traceId: w.traceId, spanId: w.parentSpanId, traceFlags: w.traceFlags, isRemote: true } }),
        startTime: w.startTime,
        endTime: w.endTime,
        duration: hrTimeDuration(w.startTime, w.endTime),
        status: w.status,
        attributes: w.attributes,
        links: [],
        events: w.events.map((e) => ({ name: e.name, time: e.time, ...(e.attributes && { attributes: e.attributes }), droppedAttributesCount: 0 })),
        ended: true,
        resource,
        instrumentationScope: { name: SERVICE_NAME },
        droppedAttributesCount: 0,
        droppedEventsCount: 0,
        droppedLinksCount: 0,
      };
      spanBuffer.onEnd(readable);
    }
  });
}

let defaultResource: Resource | undefined;
function fallbackResource(): Resource {
  defaultResource ??= serviceResource(undefined);
  return defaultResource;
}
