/** Request log lines held for the flush: which are held, the order and console method they are written with, the bound. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { LogQueue } from "../../../lib/telemetry/log-queue";
import { configureLogLevel, logRequest } from "../../../lib/telemetry/logger";

function capture() {
  const out: Array<{ method: string; line: string }> = [];
  const spies = (["debug", "log", "warn", "error"] as const).map((m) => vi.spyOn(console, m).mockImplementation((text: unknown) => void out.push({ method: m, line: String(text) })));
  return { out, restore: () => spies.forEach((s) => s.mockRestore()) };
}

let restore: (() => void) | undefined;
afterEach(() => {
  restore?.();
  configureLogLevel(undefined);
});

const fields = (status: number) => ({ method: "GET", route: "/health", status, duration_ms: 0.5, request_id: `r-${status}` });

describe("LogQueue", () => {
  it("holds request lines below warn and writes them in order with their level's console method; warn and error lines are written at once", () => {
    const c = capture();
    restore = c.restore;
    configureLogLevel("debug");
    const queue = new LogQueue();
    logRequest("info", fields(200), undefined, queue);
    logRequest("warn", fields(404), undefined, queue);
    logRequest("debug", fields(204), undefined, queue);
    logRequest("error", fields(503), undefined, queue);
    expect(c.out.map((o) => [o.method, JSON.parse(o.line).status])).toEqual([
      ["warn", 404],
      ["error", 503],
    ]);
    expect(queue.size).toBe(2);
    expect(queue.write()).toBe(2);
    expect(c.out.slice(2).map((o) => [o.method, JSON.parse(o.line).status])).toEqual([
      ["log", 200],
      ["debug", 204],
    ]);
    expect(queue.write()).toBe(0);
    configureLogLevel("warn"); // a line below the level in force is not even built
    logRequest("info", fields(201), undefined, queue);
    expect(queue.size).toBe(0);
  });

  it("writes the same text a line written at once has", () => {
    const c = capture();
    restore = c.restore;
    vi.useFakeTimers({ now: new Date("2026-12-01T10:00:00.000Z"), toFake: ["Date"] });
    const queue = new LogQueue();
    try {
      logRequest("info", fields(200));
      logRequest("info", fields(200), undefined, queue);
    } finally {
      vi.useRealTimers();
    }
    queue.write();
    expect(c.out).toHaveLength(2);
    expect(c.out[1]).toEqual(c.out[0]);
  });

  it("is bounded: at maxLines it writes what it holds", () => {
    const c = capture();
    restore = c.restore;
    const queue = new LogQueue({ maxLines: 3 });
    for (let i = 0; i < 7; i++) queue.hold("info", `line ${i}`);
    expect(c.out.map((o) => o.line)).toEqual(["line 0", "line 1", "line 2", "line 3", "line 4", "line 5"]);
    expect(queue.size).toBe(1);
  });

  it("never throws, and a throwing console loses only its own line", () => {
    const written: string[] = [];
    let calls = 0;
    const spy = vi.spyOn(console, "log").mockImplementation((line: unknown) => {
      if (calls++ === 0) throw new Error("console broken");
      written.push(String(line));
    });
    restore = () => spy.mockRestore();
    const queue = new LogQueue();
    queue.hold("info", "a");
    queue.hold("info", "b");
    expect(() => queue.write()).not.toThrow();
    expect(written).toEqual(["b"]);
  });
});
