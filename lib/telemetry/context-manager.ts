/**
 * The OpenTelemetry ContextManager of the isolate: the active context lives in an
 * `AsyncLocalStorage` (workerd implements it under `nodejs_compat`), so a span made active in a
 * middleware stays active across every `await` of that request, and concurrent requests of one
 * isolate never see each other's spans.
 *
 * It is what `AsyncLocalStorageContextManager` of `@opentelemetry/context-async-hooks` does, in
 * the few lines Workers need (no EventEmitter patching: Workers have no emitters to bind).
 */
import { ROOT_CONTEXT, type Context, type ContextManager } from "@opentelemetry/api";
import { AsyncLocalStorage } from "node:async_hooks";

/**
 * @example
 * import { context } from "@opentelemetry/api";
 * context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
 */
export class AsyncLocalStorageContextManager implements ContextManager {
  #storage = new AsyncLocalStorage<Context>();

  /** The active context, or the root context outside any `with`. */
  active(): Context {
    return this.#storage.getStore() ?? ROOT_CONTEXT;
  }

  /** Runs `fn` with `context` active for it and everything it awaits. */
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(context: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    const cb = thisArg === undefined ? fn : fn.bind(thisArg);
    return this.#storage.run(context, cb as never, ...args) as ReturnType<F>;
  }

  /** A function that runs `target` with `context` active; other values are returned as they are. */
  bind<T>(context: Context, target: T): T {
    if (typeof target !== "function") return target;
    const manager = this;
    const fn = target as unknown as (...args: unknown[]) => unknown;
    return function (this: unknown, ...args: unknown[]) {
      return manager.with(context, () => fn.apply(this, args));
    } as unknown as T;
  }

  /** Nothing to set up: the storage exists from construction. */
  enable(): this {
    return this;
  }

  /** Forgets the active context of every pending task (a fresh storage; nothing else to release). */
  disable(): this {
    this.#storage = new AsyncLocalStorage<Context>();
    return this;
  }
}
