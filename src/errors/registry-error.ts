/**
 * The registry's errors: one table of the error codes of the OCI Distribution
 * Specification (section "Error Codes") with the HTTP status each one answers
 * with, and one error class that carries a code through every layer.
 */

export const errorCodes = {
  BLOB_UNKNOWN: { status: 404, message: 'Blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'Blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'Blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'Provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'Manifest references a blob unknown here' },
  MANIFEST_INVALID: { status: 400, message: 'Manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'Manifest unknown' },
  NAME_INVALID: { status: 400, message: 'Invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'Repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'Provided length did not match content length' },
  TAG_INVALID: { status: 400, message: 'Manifest tag did not match URI' },
  UNAUTHORIZED: { status: 401, message: 'Authentication required' },
  DENIED: { status: 403, message: 'Requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'The operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'Too many requests' },
  RANGE_INVALID: { status: 416, message: 'Requested range not satisfiable' },
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'Invalid number of results requested' },
  UNKNOWN: { status: 500, message: 'Unknown error' },
} as const;

export type ErrorCode = keyof typeof errorCodes;

export interface RegistryErrorOptions {
  /** Extra structured detail for the client, in the error body's `detail`. */
  detail?: unknown;
  /** Overrides the code's usual status, e.g. 416 for an upload out of order. */
  status?: number;
  /** Extra response headers, e.g. `Range` on a 416 during an upload. */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class RegistryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message?: string, options: RegistryErrorOptions = {}) {
    super(message ?? errorCodes[code].message, { cause: options.cause });
    this.name = 'RegistryError';
    this.code = code;
    this.status = options.status ?? errorCodes[code].status;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }
}

export function isRegistryError(error: unknown): error is RegistryError {
  return error instanceof RegistryError;
}
