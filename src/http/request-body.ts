import type { IncomingMessage } from 'node:http';
import { RegistryError } from '../errors/registry-error.js';

/** Reading and describing request bodies. */

/** True when the request carries a body (a declared length above zero, or chunked encoding). */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return Number(length) > 0;
  return req.headers['transfer-encoding'] !== undefined;
}

export function contentLength(req: IncomingMessage): number | undefined {
  const value = req.headers['content-length'];
  if (value === undefined) return undefined;
  const length = Number(value);
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RegistryError('SIZE_INVALID', `Invalid Content-Length "${value}"`);
  }
  return length;
}

/**
 * Reads a small body whole, refusing it with 413 as soon as it passes `limit`
 * bytes, so an oversize manifest is never buffered.
 */
export async function readLimitedBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = contentLength(req);
  if (declared !== undefined && declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > limit) throw tooLarge(limit);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, total);
}

function tooLarge(limit: number): RegistryError {
  return new RegistryError('MANIFEST_INVALID', `Manifest too large: the limit is ${limit} bytes`, {
    status: 413,
  });
}

export interface ContentRange {
  start: number;
  end: number;
}

/** `Content-Range` of a chunked upload: `start-end`, as the OCI spec writes it, or with `bytes `. */
export function parseContentRange(value: string | undefined): ContentRange | undefined {
  if (value === undefined) return undefined;
  const match = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(value.trim());
  if (!match) {
    throw new RegistryError(
      'BLOB_UPLOAD_INVALID',
      `Invalid Content-Range "${value}": expected <start>-<end>`,
    );
  }
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (end < start) {
    throw new RegistryError('RANGE_INVALID', `Invalid Content-Range "${value}": end before start`);
  }
  return { start, end };
}
