import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log/logger.js';
import type { Registry } from '../registry/registry.js';
import type { Route } from './router.js';

/** What the HTTP layer needs from the configuration. */
export interface HttpOptions {
  deleteEnabled: boolean;
  readOnly: boolean;
  manifestMaxBytes: number;
  /** Absolute base for Location headers, e.g. `https://registry.example.com`; relative when absent. */
  baseUrl: string | undefined;
  /** Extra headers on every response. */
  headers: Record<string, string[]>;
  /** One log line per request; Distribution's `log.accesslog.disabled` turns it off. */
  accessLog: boolean;
}

/** One request on its way through the HTTP layer. */
export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  route: Route;
  query: URLSearchParams;
  registry: Registry;
  options: HttpOptions;
  log: Logger;
  /** Aborted when the client goes away before the response is complete. */
  signal: AbortSignal;
  /** For the request log line: the repository and the tag, digest or upload id. */
  repository?: string;
  reference?: string | undefined;
  bytesIn: number;
  bytesOut: number;
}

export function locationOf(ctx: RequestContext, path: string): string {
  return ctx.options.baseUrl ? `${ctx.options.baseUrl}${path}` : path;
}
