import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AccessControl } from '../auth/access-control.js';
import type { Caller } from '../auth/caller.js';
import type { Logger } from '../log/logger.js';
import type { Registry } from '../registry/registry.js';
import type { Route } from './router.js';
import type { TlsOptions } from './tls.js';

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
  /** Authentication and access control (`auth`); every request is allowed without it. */
  auth?: AccessControl | undefined;
  /** HTTPS, with HTTP/2 unless disabled (`http.tls`). */
  tls?: TlsOptions | undefined;
}

/**
 * One request on its way through the HTTP layer. The query and the abort
 * signal are built on first use: most pulls need neither, and both cost
 * more than the tag lookup itself.
 */
export class RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly registry: Registry;
  readonly options: HttpOptions;
  readonly log: Logger;
  route: Route = { kind: 'base' };
  /** For the request log line: the repository and the tag, digest or upload id. */
  repository?: string;
  reference?: string | undefined;
  /** Who made the request, once authenticated; undefined when access control is off. */
  caller?: Caller;
  /** For the request log line: the user, robot or token subject. */
  user?: string | undefined;
  bytesIn = 0;
  bytesOut = 0;
  /** True once the client went away before the response was complete. */
  clientGone = false;
  readonly #rawQuery: string;
  #query: URLSearchParams | undefined;
  #controller: AbortController | undefined;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    rawQuery: string,
    registry: Registry,
    options: HttpOptions,
    log: Logger,
  ) {
    this.req = req;
    this.res = res;
    this.#rawQuery = rawQuery;
    this.registry = registry;
    this.options = options;
    this.log = log;
  }

  get query(): URLSearchParams {
    this.#query ??= new URLSearchParams(this.#rawQuery);
    return this.#query;
  }

  /** Aborted when the client goes away before the response is complete. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.clientGone) this.#controller.abort();
    }
    return this.#controller.signal;
  }

  /** Called when the connection closes before the response finished. */
  abort(): void {
    this.clientGone = true;
    this.#controller?.abort();
  }
}

export function locationOf(ctx: RequestContext, path: string): string {
  return ctx.options.baseUrl ? `${ctx.options.baseUrl}${path}` : path;
}
