import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ociIndexType,
  ociManifestType,
  pushImage,
  putManifest,
  request,
  sha256,
  type PushedImage,
} from './oci-client.js';

/**
 * Helpers of the garbage collection tests: multi-arch images and referrers
 * pushed over HTTP, complete pulls that verify every digest, and the blob
 * files on disk.
 */

export const acceptAll = [
  ociManifestType,
  ociIndexType,
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

export interface PushedIndex {
  digest: string;
  bytes: Buffer;
  children: PushedImage[];
}

/** Pushes one image per platform by digest, then an OCI index of them under `reference`. */
export async function pushMultiArch(
  base: string,
  name: string,
  reference: string,
  platforms = ['amd64', 'arm64'],
  sharedLayer?: Buffer,
): Promise<PushedIndex> {
  const children: PushedImage[] = [];
  for (const architecture of platforms) {
    const layers = [randomBytes(300), ...(sharedLayer ? [sharedLayer] : [])];
    const image = await pushImage(base, name, 'untagged-child', { architecture }, layers);
    children.push(image);
  }
  const index = {
    schemaVersion: 2,
    mediaType: ociIndexType,
    manifests: children.map((child, i) => ({
      mediaType: ociManifestType,
      digest: child.digest,
      size: child.bytes.length,
      platform: { os: 'linux', architecture: platforms[i] },
    })),
  };
  const bytes = Buffer.from(JSON.stringify(index));
  const reply = await putManifest(base, name, reference, bytes, ociIndexType);
  assert.equal(reply.status, 201, reply.body.toString());
  // The children were pushed under a throwaway tag: only the index holds them now.
  await request(`${base}/v2/${name}/manifests/untagged-child`, { method: 'DELETE' });
  return { digest: sha256(bytes), bytes, children };
}

/** Pushes an artifact whose subject is `subject` (a signature, an SBOM), untagged. */
export async function pushReferrer(
  base: string,
  name: string,
  subject: { digest: string; bytes: Buffer; mediaType?: string },
  artifactType = 'application/vnd.dev.cosign.artifact.sig.v1+json',
): Promise<PushedImage> {
  const extra = {
    artifactType,
    subject: {
      mediaType: subject.mediaType ?? ociManifestType,
      digest: subject.digest,
      size: subject.bytes.length,
    },
  };
  const image = await pushImage(base, name, 'referrer-tmp', extra, [randomBytes(100)]);
  await request(`${base}/v2/${name}/manifests/referrer-tmp`, { method: 'DELETE' });
  return image;
}

interface Descriptor {
  digest: string;
}

/**
 * Pulls a reference completely, as a client would: the manifest, then for
 * an index every child, for an image its config and layers, each verified
 * against its digest. Fails with the first problem.
 */
export async function pullCompletely(base: string, name: string, reference: string) {
  const reply = await request(`${base}/v2/${name}/manifests/${reference}`, {
    headers: { Accept: acceptAll },
  });
  assert.equal(reply.status, 200, `GET ${name}:${reference}: ${reply.body.toString()}`);
  if (reference.includes(':')) assert.equal(sha256(reply.body), reference);
  const document = reply.json<{
    manifests?: Descriptor[];
    config?: Descriptor;
    layers?: Descriptor[];
  }>();
  for (const child of document.manifests ?? []) await pullCompletely(base, name, child.digest);
  const blobs = [...(document.config ? [document.config] : []), ...(document.layers ?? [])];
  for (const blob of blobs) {
    const got = await request(`${base}/v2/${name}/blobs/${blob.digest}`);
    assert.equal(got.status, 200, `GET blob ${blob.digest} of ${name}:${reference}`);
    assert.equal(sha256(got.body), blob.digest, `blob ${blob.digest} of ${name}:${reference}`);
  }
}

interface Document {
  manifests?: Descriptor[];
  config?: Descriptor;
  layers?: Descriptor[];
}

/**
 * Adds to `reachable` every digest a reference reaches, as garbage
 * collection must keep it: the manifest, an index's children, an image's
 * config and layers, and every referrer of each manifest, recursively.
 */
export async function addReachable(
  base: string,
  name: string,
  reference: string,
  reachable: Set<string>,
): Promise<void> {
  const reply = await request(`${base}/v2/${name}/manifests/${reference}`, {
    headers: { Accept: acceptAll },
  });
  assert.equal(reply.status, 200, `GET ${name}:${reference}`);
  const digest = sha256(reply.body);
  reachable.add(digest);
  const document = reply.json<Document>();
  for (const child of document.manifests ?? []) {
    await addReachable(base, name, child.digest, reachable);
  }
  if (document.config) reachable.add(document.config.digest);
  for (const layer of document.layers ?? []) reachable.add(layer.digest);
  const referrers = await request(`${base}/v2/${name}/referrers/${digest}`);
  for (const referrer of referrers.json<{ manifests: Descriptor[] }>().manifests) {
    await addReachable(base, name, referrer.digest, reachable);
  }
}

/** Every blob file under `<root>/blobs`, as digests. */
export async function blobFiles(root: string): Promise<string[]> {
  const digests: string[] = [];
  const top = join(root, 'blobs');
  for (const algorithm of await readdir(top)) {
    for (const prefix of await readdir(join(top, algorithm))) {
      for (const hex of await readdir(join(top, algorithm, prefix))) {
        digests.push(`${algorithm}:${hex}`);
      }
    }
  }
  return digests.sort();
}

/** The bytes the blob files take, summed from their sizes. */
export async function blobBytes(root: string): Promise<number> {
  let total = 0;
  for (const digest of await blobFiles(root)) total += (await stat(blobPath(root, digest))).size;
  return total;
}

export function blobPath(root: string, digest: string): string {
  const [algorithm, hex] = digest.split(':') as [string, string];
  return join(root, 'blobs', algorithm, hex.slice(0, 2), hex);
}
