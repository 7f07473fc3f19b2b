import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** The one error body every endpoint answers with. `field` names the offending input, when there is one. */
export interface ErrorBody {
  error: {
    status: number;
    code: string;
    message: string;
    field?: string;
    details?: Array<{ field: string; message: string }>;
  };
}

/** An error a handler throws to answer with a clear JSON body; `onError` turns it into the response. */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly details?: Array<{ field: string; message: string }>,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ApiError";
  }

  toBody(): ErrorBody {
    return {
      error: {
        status: this.status,
        code: this.code,
        message: this.message,
        ...(this.field !== undefined && { field: this.field }),
        ...(this.details !== undefined && { details: this.details }),
      },
    };
  }
}

export function errorResponse(c: Context, err: ApiError): Response {
  return c.json(err.toBody(), err.status);
}
