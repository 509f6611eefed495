import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isRegistryError, RegistryError } from '../errors/registry-error.js';
import type { Logger } from '../log/logger.js';
import { requireRepositoryName } from '../registry/names.js';
import type { Registry } from '../registry/registry.js';
import { authorizeRequest } from './authorize.js';
import { RequestContext, type HttpOptions } from './context.js';
import { handleAdmin } from './admin/maintenance.js';
import { handleUsage } from './admin/usage.js';
import { handleBlob } from './handlers/blobs.js';
import { handleCatalog, handleReferrers, handleTags } from './handlers/listings.js';
import { handleManifest } from './handlers/manifests.js';
import { handleToken } from './handlers/token.js';
import { handleUpload, handleUploads } from './handlers/uploads.js';
import { apiVersionHeader, internalError, sendEmpty, sendError, sendJson } from './respond.js';
import { matchRoute, type Route } from './router.js';
import { createTlsServer, type RegistryServer } from './tls.js';

/**
 * The HTTP front of the registry: one async error boundary per request, one
 * log line when it completes, and the spec's error body for every failure.
 */
export function createRegistryServer(
  registry: Registry,
  options: HttpOptions,
  log: Logger,
): RegistryServer {
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    void handleRequest(registry, options, log, req, res);
  };
  if (options.tls) return createTlsServer(options.tls, listener);
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, listener);
  server.headersTimeout = 60_000;
  return server;
}

async function handleRequest(
  registry: Registry,
  options: HttpOptions,
  log: Logger,
  req: IncomingMessage,
  res: ServerResponse,
) {
  const started = process.hrtime.bigint();
  const url = req.url ?? '/';
  const queryStart = url.indexOf('?');
  const path = queryStart === -1 ? url : url.slice(0, queryStart);
  const rawQuery = queryStart === -1 ? '' : url.slice(queryStart + 1);
  const ctx = new RequestContext(req, res, rawQuery, registry, options, log);
  res.on('close', () => {
    if (!res.writableFinished) ctx.abort();
    if (options.accessLog || res.statusCode >= 500) logRequest(log, ctx, started);
  });
  setCommonHeaders(res, options);

  const route = matchRoute(path);
  if (route) ctx.route = route;
  try {
    if (!route) throw notFound(req.method, path);
    await dispatch(ctx, route);
  } catch (error) {
    fail(ctx, error);
  }
}

async function dispatch(ctx: RequestContext, route: Route): Promise<void> {
  if (route.kind === 'token') return handleToken(ctx);
  if (ctx.options.auth) await authorizeRequest(ctx, route);
  if (route.kind === 'base') return base(ctx);
  if (route.kind === 'catalog') return handleCatalog(ctx);
  if (route.kind === 'usage') return handleUsage(ctx, route.name);
  if (route.kind === 'admin') return handleAdmin(ctx, route);
  ctx.repository = route.name;
  ctx.reference = referenceOf(route);
  requireRepositoryName(route.name);
  switch (route.kind) {
    case 'manifest':
      return handleManifest(ctx, route.name, route.reference);
    case 'blob':
      return handleBlob(ctx, route.name, route.digest);
    case 'uploads':
      return handleUploads(ctx, route.name);
    case 'upload':
      return handleUpload(ctx, route.name, route.id);
    case 'tags':
      return handleTags(ctx, route.name);
    case 'referrers':
      return handleReferrers(ctx, route.name, route.digest);
  }
}

function referenceOf(route: Route): string | undefined {
  const value =
    'reference' in route
      ? route.reference
      : 'digest' in route
        ? route.digest
        : 'id' in route
          ? route.id
          : undefined;
  return value && value.length > 200 ? `${value.slice(0, 200)}...` : value;
}

/** `GET /v2/`: the API version check clients make first. */
function base(ctx: RequestContext) {
  if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') {
    throw new RegistryError(
      'UNSUPPORTED',
      `Method ${ctx.req.method ?? ''} is not supported on /v2/`,
    );
  }
  ctx.bytesOut = ctx.req.method === 'HEAD' ? sendEmpty(ctx.res, 200) : sendJson(ctx.res, 200, {});
}

/**
 * Before headers, a failure becomes the spec's error response; after them,
 * the response can only be cut short, so the socket is destroyed and the
 * client sees a truncated transfer rather than wrong bytes.
 */
function fail(ctx: RequestContext, error: unknown) {
  const { req, res } = ctx;
  if (res.headersSent) {
    if (!isClientGone(error))
      ctx.log.error({ err: error, path: req.url }, 'response failed after headers');
    res.destroy();
    return;
  }
  if (isRegistryError(error)) {
    ctx.bytesOut = sendError(res, error, req.method === 'HEAD');
  } else if (isClientGone(error) || ctx.clientGone) {
    res.destroy();
  } else {
    ctx.log.error({ err: error, method: req.method, path: req.url }, 'request failed');
    ctx.bytesOut = sendError(res, internalError(), req.method === 'HEAD');
  }
  drainUnreadBody(req);
}

/** A request body the handler never read would stall the keep-alive connection. */
function drainUnreadBody(req: IncomingMessage) {
  if (!req.complete && !req.destroyed) req.resume();
}

function isClientGone(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return (
    code === 'ECONNRESET' ||
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    code === 'ABORT_ERR' ||
    code === 'EPIPE' ||
    (error as Error | undefined)?.message === 'aborted'
  );
}

function notFound(method: string | undefined, path: string): RegistryError {
  const shown = path.length > 200 ? `${path.slice(0, 200)}...` : path;
  return new RegistryError('UNSUPPORTED', `No such endpoint: ${method ?? ''} ${shown}`, {
    status: 404,
  });
}

function setCommonHeaders(res: ServerResponse, options: HttpOptions) {
  res.setHeader(
    'Docker-Distribution-API-Version',
    apiVersionHeader['Docker-Distribution-API-Version'],
  );
  for (const [name, values] of Object.entries(options.headers)) res.setHeader(name, values);
}

/** One line per request (STYLE.md): no headers, no query string (it may carry a token). */
function logRequest(log: Logger, ctx: RequestContext, started: bigint) {
  const status = ctx.res.statusCode;
  const line = {
    method: ctx.req.method,
    route: ctx.route.kind,
    repository: ctx.repository,
    reference: ctx.reference,
    user: ctx.user,
    status,
    bytesIn: ctx.bytesIn,
    bytesOut: ctx.bytesOut,
    durationMs: Number(process.hrtime.bigint() - started) / 1e6,
    aborted: ctx.clientGone || undefined,
  };
  if (status >= 500) log.error(line, 'request');
  else log.info(line, 'request');
}
