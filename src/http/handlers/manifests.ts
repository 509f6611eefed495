import { isRegistryError, RegistryError } from '../../errors/registry-error.js';
import { parseReference, type Reference } from '../../registry/names.js';
import { locationOf, type RequestContext } from '../context.js';
import { readLimitedBody } from '../request-body.js';
import { sendBytes, sendEmpty, type Headers } from '../respond.js';
import { methodNotAllowed, requireDeleteEnabled, requireWritable } from './guards.js';

/** `/v2/<name>/manifests/<reference>` (OCI spec, "Pulling", "Pushing" and "Deleting manifests"). */
export async function handleManifest(ctx: RequestContext, name: string, rawReference: string) {
  const reference = referenceFor(ctx, name, rawReference);
  switch (ctx.req.method) {
    case 'GET':
    case 'HEAD':
      return getManifest(ctx, name, reference);
    case 'PUT':
      requireWritable(ctx);
      return putManifest(ctx, name, reference);
    case 'DELETE':
      requireDeleteEnabled(ctx);
      requireWritable(ctx);
      await ctx.registry.manifests.delete(name, reference);
      ctx.bytesOut = sendEmpty(ctx.res, 202);
      return;
    default:
      throw methodNotAllowed(ctx);
  }
}

async function getManifest(ctx: RequestContext, name: string, reference: Reference) {
  const accept = () => parseAccept(ctx.req.headers.accept);
  const { record, bytes } = await ctx.registry.manifests.get(name, reference, accept);
  const headers: Headers = {
    'Content-Type': record.mediaType,
    'Docker-Content-Digest': record.digest,
    ETag: `"${record.digest}"`,
  };
  if (ctx.req.headers['if-none-match'] === `"${record.digest}"`) {
    ctx.bytesOut = sendEmpty(ctx.res, 304, headers);
    return;
  }
  if (ctx.req.method === 'HEAD') {
    ctx.res.writeHead(200, { ...headers, 'Content-Length': record.size });
    ctx.res.end();
    return;
  }
  ctx.bytesOut = sendBytes(ctx.res, 200, bytes, headers);
}

async function putManifest(ctx: RequestContext, name: string, reference: Reference) {
  const bytes = await readLimitedBody(ctx.req, ctx.options.manifestMaxBytes);
  ctx.bytesIn = bytes.length;
  const contentType = ctx.req.headers['content-type'];
  const pushed = await ctx.registry.manifests.put(name, reference, bytes, contentType);
  const headers: Headers = {
    Location: locationOf(ctx, `/v2/${name}/manifests/${pushed.digest}`),
    'Docker-Content-Digest': pushed.digest,
  };
  if (pushed.subject) headers['OCI-Subject'] = pushed.subject;
  ctx.bytesOut = sendEmpty(ctx.res, 201, headers);
}

/**
 * A malformed tag is refused on PUT (TAG_INVALID); for reads and deletes no
 * manifest can have it, so the answer is 404 as for any unknown tag, which
 * the OCI conformance suite requires.
 */
function referenceFor(ctx: RequestContext, name: string, raw: string): Reference {
  try {
    return parseReference(raw);
  } catch (error) {
    if (ctx.req.method === 'PUT' || !isRegistryError(error) || error.code !== 'TAG_INVALID') {
      throw error;
    }
    throw new RegistryError(
      'MANIFEST_UNKNOWN',
      `Manifest "${name}:${raw.slice(0, 200)}" is unknown`,
      {
        detail: { tag: raw.slice(0, 200) },
      },
    );
  }
}

/** Media types from `Accept`, which clients send as several headers or one comma-separated list. */
function parseAccept(header: string | string[] | undefined): string[] {
  if (!header) return [];
  const values = Array.isArray(header) ? header : [header];
  return values.flatMap((value) =>
    value
      .split(',')
      .map((item) => item.split(';')[0]!.trim())
      .filter((item) => item !== ''),
  );
}
