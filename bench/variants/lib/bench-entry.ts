/**
 * The bench's thin wrapper around a variant's fetch handler: one extra path, `GET /__bench/stats`,
 * answers the variant's own counters as JSON (never routed into the app, so never measured).
 * Every other request goes straight to the variant's handler, in every variant alike.
 */

type FetchHandler = (request: Request, env: Env, ctx: ExecutionContext) => Response | Promise<Response>;

/** The bench entry: `fetch` of the variant plus `/__bench/stats`. */
export function benchEntry(
  handler: FetchHandler,
  stats: (env: Env) => Promise<Record<string, unknown>> = async () => ({}),
  wrapEnv: (env: Env) => Env = (env) => env,
): ExportedHandler<Env> {
  return {
    async fetch(request, env, ctx) {
      if (request.url.endsWith("/__bench/stats")) return Response.json(await stats(env));
      return handler(request as unknown as Request, wrapEnv(env), ctx);
    },
  };
}
