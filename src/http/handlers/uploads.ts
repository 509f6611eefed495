import { RegistryError } from '../../errors/registry-error.js';
import type { BlobRecord } from '../../metadata/metadata-store.js';
import { requireDigest } from '../../registry/digest.js';
import { requireRepositoryName } from '../../registry/names.js';
import type { ChunkOptions } from '../../registry/uploads.js';
import { locationOf, type RequestContext } from '../context.js';
import { mountSource } from '../visibility.js';
import { contentLength, hasBody, parseContentRange } from '../request-body.js';
import { sendEmpty } from '../respond.js';
import { methodNotAllowed, requireWritable } from './guards.js';

/**
 * Blob uploads (OCI spec, "Pushing blobs"): `POST /v2/<name>/blobs/uploads/`
 * opens a session, mounts, or takes a whole blob at once; the session's URL
 * takes `PATCH`, `PUT`, `GET` and `DELETE`.
 */

export async function handleUploads(ctx: RequestContext, name: string) {
  if (ctx.req.method !== 'POST') throw methodNotAllowed(ctx);
  requireWritable(ctx);
  const mount = ctx.query.get('mount');
  if (mount !== null && (await tryMount(ctx, name, mount))) return;

  const digest = ctx.query.get('digest');
  const session = await ctx.registry.uploads.start(name);
  if (digest !== null) return uploadWhole(ctx, name, session.id, digest);
  ctx.bytesOut = sendEmpty(ctx.res, 202, {
    Location: locationOf(ctx, `/v2/${name}/blobs/uploads/${session.id}`),
    Range: '0-0',
    'Docker-Upload-UUID': session.id,
  });
}

export async function handleUpload(ctx: RequestContext, name: string, id: string) {
  switch (ctx.req.method) {
    case 'GET':
      return reportProgress(ctx, name, id, 204);
    case 'PATCH': {
      requireWritable(ctx);
      const { size, received } = await ctx.registry.uploads.append(
        name,
        id,
        ctx.req,
        chunkOptions(ctx),
      );
      ctx.bytesIn = received;
      return reportProgress(ctx, name, id, 202, size);
    }
    case 'PUT': {
      requireWritable(ctx);
      const digest = ctx.query.get('digest');
      requireDigest(digest);
      const body = hasBody(ctx.req) ? ctx.req : undefined;
      const blob = await ctx.registry.uploads.complete(name, id, digest!, body, chunkOptions(ctx));
      return created(ctx, name, blob);
    }
    case 'DELETE':
      await ctx.registry.uploads.cancel(name, id);
      ctx.bytesOut = sendEmpty(ctx.res, 204);
      return;
    default:
      throw methodNotAllowed(ctx);
  }
}

/** The monolithic upload: the POST's body is the whole blob. A failed one leaves no session behind. */
async function uploadWhole(ctx: RequestContext, name: string, id: string, digest: string) {
  try {
    requireDigest(digest);
    const blob = await ctx.registry.uploads.complete(name, id, digest, ctx.req, chunkOptions(ctx));
    created(ctx, name, blob);
  } catch (error) {
    await ctx.registry.uploads.cancel(name, id).catch(() => undefined);
    throw error;
  }
}

/** A mount answers 201 when the blob can be linked; otherwise an ordinary upload opens. */
async function tryMount(ctx: RequestContext, name: string, digest: string): Promise<boolean> {
  requireDigest(digest);
  const from = ctx.query.get('from');
  if (from !== null) requireRepositoryName(from);
  const source = await mountSource(ctx, name, digest, from ?? undefined);
  if (!source) return false;
  const blob = await ctx.registry.uploads.mount(name, digest, source.from);
  if (!blob) return false;
  created(ctx, name, blob);
  return true;
}

async function reportProgress(
  ctx: RequestContext,
  name: string,
  id: string,
  status: number,
  knownSize?: number,
) {
  const size = knownSize ?? (await ctx.registry.uploads.status(name, id)).size;
  ctx.bytesOut = sendEmpty(ctx.res, status, {
    Location: locationOf(ctx, `/v2/${name}/blobs/uploads/${id}`),
    Range: `0-${Math.max(size - 1, 0)}`,
    'Docker-Upload-UUID': id,
  });
}

function created(ctx: RequestContext, name: string, blob: BlobRecord) {
  ctx.bytesIn = blob.size;
  ctx.bytesOut = sendEmpty(ctx.res, 201, {
    Location: locationOf(ctx, `/v2/${name}/blobs/${blob.digest}`),
    'Docker-Content-Digest': blob.digest,
  });
}

/** The chunk's position and exact length, from `Content-Range` and `Content-Length`. */
function chunkOptions(ctx: RequestContext): ChunkOptions {
  const range = parseContentRange(ctx.req.headers['content-range']);
  const length = contentLength(ctx.req);
  const options: ChunkOptions = { signal: ctx.signal };
  if (length !== undefined) options.length = length;
  if (!range) return options;
  const rangeLength = range.end - range.start + 1;
  if (length !== undefined && length !== rangeLength) {
    throw new RegistryError(
      'SIZE_INVALID',
      `Content-Length ${length} does not match Content-Range ${range.start}-${range.end}`,
    );
  }
  return { ...options, start: range.start, length: rangeLength };
}
