import type { ServerResponse } from 'node:http';
import { errorCodes, RegistryError } from '../errors/registry-error.js';

/** Response helpers: every answer of the API leaves through these. */

export type Headers = Record<string, string | number>;

/** Sent on every response, as the Docker Registry HTTP API V2 asks. */
export const apiVersionHeader = { 'Docker-Distribution-API-Version': 'registry/2.0' } as const;

export function sendEmpty(res: ServerResponse, status: number, headers: Headers = {}): number {
  res.writeHead(status, { ...headers, 'Content-Length': 0 });
  res.end();
  return 0;
}

export function sendBytes(
  res: ServerResponse,
  status: number,
  body: Buffer,
  headers: Headers,
): number {
  res.writeHead(status, { ...headers, 'Content-Length': body.length });
  res.end(body);
  return body.length;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Headers = {},
): number {
  const body = Buffer.from(JSON.stringify(value));
  return sendBytes(res, status, body, { 'Content-Type': 'application/json', ...headers });
}

/** The OCI error body: `{"errors":[{"code","message","detail"}]}`. */
export function sendError(res: ServerResponse, error: RegistryError, head = false): number {
  const body = {
    errors: [{ code: error.code, message: error.message, detail: error.detail ?? null }],
  };
  if (!head) return sendJson(res, error.status, body, error.headers);
  return sendEmpty(res, error.status, error.headers);
}

/** A failure that is not the client's: the message stays in the log, not in the response. */
export function internalError(): RegistryError {
  return new RegistryError('UNKNOWN', errorCodes.UNKNOWN.message);
}
