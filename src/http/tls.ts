import { readFile } from 'node:fs/promises';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import {
  createSecureServer,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
} from 'node:http2';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Config } from '../config/schema.js';

/**
 * HTTPS (`http.tls`): HTTP/2 and HTTP/1.1 on one port, told apart by ALPN
 * (node:http2's `allowHTTP1`), TLS 1.2 at least, and optionally client
 * certificates that must chain to `http.tls.clientcas`. With
 * `http.http2.disabled`, HTTP/1.1 only, as in Distribution.
 *
 * HTTP/2 requests reach the handlers through node's compatibility API,
 * whose request and response objects mirror node:http's; the handlers use
 * only what both have.
 */

export type RegistryServer = HttpServer | HttpsServer | Http2SecureServer;

export interface TlsOptions {
  cert: Buffer;
  key: Buffer;
  /** CA certificates for client certificates; a client certificate is then required. */
  clientCas?: Buffer[];
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  http2: boolean;
}

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

const sessions = new WeakMap<Http2SecureServer, Set<Http2Session>>();

/** The TLS settings of the configuration, files read; undefined without `http.tls`. */
export async function readTlsOptions(config: Config): Promise<TlsOptions | undefined> {
  const tls = config.http.tls;
  if (!tls) return undefined;
  const read = (what: string, path: string) =>
    readFile(path).catch((error: Error) => {
      throw new Error(`Cannot read the TLS ${what} "${path}": ${error.message}`);
    });
  const options: TlsOptions = {
    cert: await read('certificate', tls.certificate),
    key: await read('key', tls.key),
    minVersion: tls.minimumtls === 'tls1.3' ? 'TLSv1.3' : 'TLSv1.2',
    http2: !config.http.http2.disabled,
  };
  if (tls.clientcas) {
    options.clientCas = await Promise.all(tls.clientcas.map((path) => read('client CA', path)));
  }
  return options;
}

export function createTlsServer(
  tls: TlsOptions,
  listener: Listener,
): HttpsServer | Http2SecureServer {
  const secure = {
    cert: tls.cert,
    key: tls.key,
    minVersion: tls.minVersion,
    ...(tls.clientCas ? { ca: tls.clientCas, requestCert: true, rejectUnauthorized: true } : {}),
  };
  if (!tls.http2) {
    const server = createHttpsServer(
      { ...secure, keepAliveTimeout: 65_000, requestTimeout: 0 },
      listener,
    );
    server.headersTimeout = 60_000;
    return server;
  }
  const compatible = listener as unknown as (
    req: Http2ServerRequest,
    res: Http2ServerResponse,
  ) => void;
  const server = createSecureServer({ ...secure, allowHTTP1: true }, compatible);
  const open = new Set<Http2Session>();
  sessions.set(server, open);
  server.on('session', (session: Http2Session) => {
    open.add(session);
    session.once('close', () => open.delete(session));
  });
  return server;
}

/**
 * Closes the connections that carry no request: keep-alive HTTP/1.1
 * connections, and HTTP/2 sessions, which finish their streams first.
 *
 * Limitation: on an HTTP/2 server, idle HTTP/1.1 connections (ALPN
 * fallback) are not closed here; a shutdown waits for them to time out or
 * for its 10 s deadline.
 */
export function closeIdleConnections(server: RegistryServer): void {
  if ('closeIdleConnections' in server) {
    server.closeIdleConnections();
    return;
  }
  for (const session of sessions.get(server) ?? []) session.close();
}

/** Closes every connection at once: for tests that stop a server. */
export function closeAllConnections(server: RegistryServer): void {
  if ('closeAllConnections' in server) {
    server.closeAllConnections();
    return;
  }
  for (const session of sessions.get(server) ?? []) session.destroy();
}
