// The bindings `env` from "cloudflare:test" carries: the Worker's own Env.
import type { Env as WorkerEnv } from "../../../lib/env";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {}
  }
}
