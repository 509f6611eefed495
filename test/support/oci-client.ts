import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';

/**
 * A small client for the registry API, used by the API tests: every helper
 * consumes the response body so that no connection is left waiting.
 */

export interface Reply {
  status: number;
  headers: Headers;
  body: Buffer;
  json<T = unknown>(): T;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
}

export async function request(url: string, options: RequestOptions = {}): Promise<Reply> {
  const { body: payload, ...init } = options;
  // Node's fetch takes a Buffer; the DOM typings of this TypeScript version do not say so.
  const body = payload as unknown as BodyInit | undefined;
  const response = await fetch(url, { redirect: 'manual', ...init, ...(body ? { body } : {}) });
  const bytes = Buffer.from(await response.arrayBuffer());
  return {
    status: response.status,
    headers: response.headers,
    body: bytes,
    json: <T>() => JSON.parse(bytes.toString('utf8')) as T,
  };
}

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function randomBlob(size = 1024): { bytes: Buffer; digest: string } {
  const bytes = randomBytes(size);
  return { bytes, digest: sha256(bytes) };
}

/** The first error code of an OCI error body. */
export function errorCode(reply: Reply): string | undefined {
  return reply.json<{ errors: { code: string }[] }>().errors[0]?.code;
}

/** Pushes a blob in one POST and returns its digest; `headers` may carry credentials. */
export async function pushBlob(
  base: string,
  name: string,
  bytes: Buffer,
  headers: Record<string, string> = {},
): Promise<string> {
  const digest = sha256(bytes);
  const reply = await request(`${base}/v2/${name}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    body: bytes,
    headers: { 'Content-Type': 'application/octet-stream', ...headers },
  });
  if (reply.status !== 201) throw new Error(`push blob: ${reply.status} ${reply.body.toString()}`);
  return digest;
}

export const ociManifestType = 'application/vnd.oci.image.manifest.v1+json';
export const ociIndexType = 'application/vnd.oci.image.index.v1+json';

export interface PushedImage {
  digest: string;
  bytes: Buffer;
  config: string;
  layers: string[];
}

/** Pushes a config and layers, then an OCI image manifest under `reference`. */
export async function pushImage(
  base: string,
  name: string,
  reference: string,
  extra: Record<string, unknown> = {},
  layerBytes: Buffer[] = [randomBytes(512)],
  headers: Record<string, string> = {},
): Promise<PushedImage> {
  const configBytes = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', n: Math.random() }),
  );
  const config = await pushBlob(base, name, configBytes, headers);
  const layers = [];
  for (const layer of layerBytes) layers.push(await pushBlob(base, name, layer, headers));
  const manifest = {
    schemaVersion: 2,
    mediaType: ociManifestType,
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: config,
      size: configBytes.length,
    },
    layers: layers.map((digest, i) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest,
      size: layerBytes[i]!.length,
    })),
    ...extra,
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const reply = await putManifest(base, name, reference, bytes, ociManifestType, headers);
  if (reply.status !== 201)
    throw new Error(`push manifest: ${reply.status} ${reply.body.toString()}`);
  return { digest: sha256(bytes), bytes, config, layers };
}

export function putManifest(
  base: string,
  name: string,
  reference: string,
  bytes: Buffer,
  contentType: string,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return request(`${base}/v2/${name}/manifests/${reference}`, {
    method: 'PUT',
    body: bytes,
    headers: { 'Content-Type': contentType, ...headers },
  });
}

/** A GET whose path is sent exactly as written: fetch would resolve `..` segments first. */
export function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(base);
    const req = httpRequest({ hostname, port, path, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
