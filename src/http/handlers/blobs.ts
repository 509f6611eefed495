import { RegistryError } from '../../errors/registry-error.js';
import { requireDigest } from '../../registry/digest.js';
import type { ByteRange } from '../../storage/blob-store.js';
import type { RequestContext } from '../context.js';
import { sendBlob } from '../send-blob.js';
import { sendEmpty, type Headers } from '../respond.js';
import { methodNotAllowed, requireDeleteEnabled, requireWritable } from './guards.js';

/** `GET`, `HEAD` and `DELETE /v2/<name>/blobs/<digest>` (OCI spec, "Pulling blobs", "Deleting blobs"). */
export async function handleBlob(ctx: RequestContext, name: string, digest: string) {
  requireDigest(digest);
  switch (ctx.req.method) {
    case 'GET':
    case 'HEAD':
      return getBlob(ctx, name, digest);
    case 'DELETE':
      requireDeleteEnabled(ctx);
      requireWritable(ctx);
      await ctx.registry.blobs.unlink(name, digest);
      ctx.bytesOut = sendEmpty(ctx.res, 202);
      return;
    default:
      throw methodNotAllowed(ctx);
  }
}

async function getBlob(ctx: RequestContext, name: string, digest: string) {
  const { size } = await ctx.registry.blobs.stat(name, digest);
  const headers: Headers = {
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': digest,
    ETag: `"${digest}"`,
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'max-age=31536000',
  };
  if (ctx.req.headers['if-none-match'] === `"${digest}"`) {
    ctx.bytesOut = sendEmpty(ctx.res, 304, headers);
    return;
  }
  const range = parseRange(ctx.req.headers.range, size);
  if (range) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${size}`;
  const length = range ? range.end - range.start + 1 : size;

  if (ctx.req.method === 'HEAD' || length === 0) {
    ctx.res.writeHead(range ? 206 : 200, { ...headers, 'Content-Length': length });
    ctx.res.end();
    return;
  }
  ctx.bytesOut = length;
  const whole = { start: 0, end: size - 1 };
  await sendBlob(ctx, digest, range ?? whole, range ? 206 : 200, {
    ...headers,
    'Content-Length': length,
  });
}

/**
 * A single `bytes=` range (RFC 9110, section 14.2); several ranges are
 * answered with the whole blob, which the RFC allows. Undefined means the
 * whole blob; a range outside it answers 416.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  const [first, last] = [match[1] as string, match[2] as string];
  const range =
    first === ''
      ? { start: Math.max(size - Number(last), 0), end: size - 1 }
      : { start: Number(first), end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
  if (range.start > range.end || range.start >= size) {
    throw new RegistryError(
      'RANGE_INVALID',
      `Range "${header}" is outside the blob of ${size} bytes`,
      {
        headers: { 'Content-Range': `bytes */${size}` },
      },
    );
  }
  return range;
}
