/**
 * Per-request log lines held for the isolate's next flush and then written together, one console
 * call per line, in the order they were logged (the flusher writes them first thing in each
 * export, before it collects: ./export/flush.ts).
 *
 * Why: on workerd the first console call of an invocation costs far more than the next ones
 * (34–70 µs against ~7 µs in two runs, `node bench/primitives.mjs --ops request.none,request.log,request.log.held`):
 * written one per request, every request pays it; written by the flush, one invocation pays it
 * for all the lines of that interval (README, Benchmarks). A line keeps the `time` it was built
 * with, so it reads the same; it is written at most one flush interval later (~1 s), like the
 * request's metrics and spans, and it is lost with them if the isolate dies in between.
 *
 * Only lines below warn are held: a line that reports a problem is written at once. Bounded: at
 * {@link LogQueue.maxLines} lines it writes what it holds. Never throws.
 */
import { writeLine, type LineHold, type LogLevel } from "./logger";

/** Options of {@link LogQueue}. */
export interface LogQueueOptions {
  /** Lines held at most before they are written at once. Default 1024 (a few seconds of a busy isolate). */
  maxLines?: number;
}

/**
 * @example
 * const queue = new LogQueue();
 * logRequest("info", { method: "GET", route: "/health", status: 200, duration_ms: 0.4 }, span, queue);
 * queue.write(); // the flusher does this at each export
 */
export class LogQueue implements LineHold {
  readonly maxLines: number;
  #levels: LogLevel[] = [];
  #lines: string[] = [];

  constructor(options: LogQueueOptions = {}) {
    this.maxLines = Math.max(1, options.maxLines ?? 1024);
  }

  /** Lines waiting. */
  get size(): number {
    return this.#lines.length;
  }

  /** Holds `line` for the next {@link write}; writes everything held once the queue is full. */
  hold(level: LogLevel, line: string): void {
    this.#levels.push(level);
    this.#lines.push(line);
    if (this.#lines.length >= this.maxLines) this.write();
  }

  /** Writes every held line, oldest first; returns how many. */
  write(): number {
    const levels = this.#levels;
    const lines = this.#lines;
    if (!lines.length) return 0;
    this.#levels = [];
    this.#lines = [];
    for (let i = 0; i < lines.length; i++) writeLine(levels[i]!, lines[i]!);
    return lines.length;
  }
}

/** The isolate's queue: `requestTelemetry()` holds request lines in it, the isolate's flusher writes it. */
export const logQueue = new LogQueue();
