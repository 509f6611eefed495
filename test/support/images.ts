import { createHash, randomUUID } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { DockerDaemon } from './docker-daemon.js';
import { run } from './registry-process.js';

/**
 * Test images, made here without any network: root filesystems built from
 * the static busybox binary (Debian's busybox-static) plus a file of unique
 * content, turned into images by the clients themselves (`docker import`,
 * `docker build`, `podman import`), or written by hand as OCI image layouts
 * for skopeo. Every call makes new content, so no two tests share a blob by
 * accident.
 */

const busyboxPath = '/bin/busybox';

export const mediaTypes = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

/** The Accept header of a client that takes every manifest format the registry may hold. */
export const acceptAnyManifest = Object.values(mediaTypes)
  .filter((type) => !type.includes('config') && !type.includes('layer'))
  .join(', ');

export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Tars a directory reproducibly: sorted names, owner root, every time stamp at the epoch. */
async function tarDirectory(source: string, target: string): Promise<void> {
  const flags = ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner'];
  await run('tar', [...flags, '-C', source, '-cf', target, '.']);
}

/** Writes files (path relative to the root: content) below `root`. */
async function writeFiles(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

/**
 * Writes a tarball of a root filesystem holding `/bin/busybox` and the given
 * files into `workDir`, and returns its path.
 */
export async function writeBusyboxTar(
  workDir: string,
  files: Record<string, string> = {},
): Promise<string> {
  const name = randomUUID();
  const root = join(workDir, `rootfs-${name}`);
  await mkdir(join(root, 'bin'), { recursive: true });
  await copyFile(busyboxPath, join(root, 'bin', 'busybox'));
  await writeFiles(root, files);

  const tarPath = join(workDir, `rootfs-${name}.tar`);
  await tarDirectory(root, tarPath);
  await rm(root, { recursive: true, force: true });
  return tarPath;
}

export interface DockerImage {
  reference: string;
  /** The image ID, which is its config's digest: equal on both sides of a push and pull. */
  id: string;
  /** The layers' diff IDs, base first. */
  layers: string[];
}

export async function inspectDockerImage(
  daemon: DockerDaemon,
  reference: string,
): Promise<DockerImage> {
  const format = '{{json .Id}} {{json .RootFS.Layers}}';
  const output = await daemon.docker(['image', 'inspect', '--format', format, reference]);
  const [id, layers] = output
    .trim()
    .split(' ')
    .map((part) => JSON.parse(part) as unknown);
  return { reference, id: id as string, layers: layers as string[] };
}

/** `docker import` of a busybox root filesystem with one unique file: a one-layer image. */
export async function importBusyboxImage(
  daemon: DockerDaemon,
  workDir: string,
  reference: string,
): Promise<DockerImage> {
  const tarPath = await writeBusyboxTar(workDir, { 'etc/berth-e2e-id': randomUUID() });
  await daemon.docker(['import', tarPath, reference]);
  await rm(tarPath, { force: true });
  return inspectDockerImage(daemon, reference);
}

/**
 * Builds one image per reference, all `FROM` one imported busybox base with a
 * unique file on top: two layers each, the first one shared.
 */
export async function buildImagesSharingBase(
  daemon: DockerDaemon,
  workDir: string,
  references: readonly string[],
): Promise<DockerImage[]> {
  const base = await importBusyboxImage(daemon, workDir, `berth-e2e-base:${randomUUID()}`);
  const images: DockerImage[] = [];

  for (const reference of references) {
    const context = await mkdtemp(join(workDir, 'context-'));
    await writeFiles(context, {
      Dockerfile: `FROM ${base.reference}\nCOPY unique.txt /unique.txt\n`,
      'unique.txt': `${reference} ${randomUUID()}\n`,
    });
    await daemon.docker(['build', '--quiet', '--tag', reference, context]);
    await rm(context, { recursive: true, force: true });
    images.push(await inspectDockerImage(daemon, reference));
  }
  return images;
}

export interface OciPlatform {
  os: string;
  architecture: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface OciImage {
  platform: OciPlatform;
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
}

export interface OciLayout {
  dir: string;
  tag: string;
  /** The skopeo transport reference, `oci:DIR:TAG`. */
  reference: string;
  /** The tagged manifest: an image index when there are several platforms. */
  top: Descriptor;
  topBytes: Buffer;
  images: OciImage[];
}

/** Stores bytes as a blob of the layout and returns their descriptor. */
async function writeBlob(dir: string, mediaType: string, bytes: Buffer): Promise<Descriptor> {
  const digest = sha256Digest(bytes);
  await writeFile(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)), bytes);
  return { mediaType, digest, size: bytes.length };
}

function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

interface Layer {
  descriptor: Descriptor;
  diffId: string;
}

/** A gzipped tar layer of the given files, stored in the layout. */
async function writeLayer(dir: string, files: Record<string, string>): Promise<Layer> {
  const staging = await mkdtemp(join(tmpdir(), 'berth-e2e-layer-'));
  try {
    await mkdir(join(staging, 'root'));
    await writeFiles(join(staging, 'root'), files);
    await tarDirectory(join(staging, 'root'), join(staging, 'layer.tar'));
    const tar = await readFile(join(staging, 'layer.tar'));
    const descriptor = await writeBlob(dir, mediaTypes.ociLayerGzip, gzipSync(tar));
    return { descriptor, diffId: sha256Digest(tar) };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

async function writeImage(dir: string, platform: OciPlatform, shared: Layer): Promise<OciImage> {
  const name = `${platform.os}/${platform.architecture}`;
  const own = await writeLayer(dir, { 'platform.txt': `${name} ${randomUUID()}\n` });
  const layers = [shared, own];

  const configJson = {
    ...platform,
    config: { Cmd: ['/bin/busybox', 'cat', '/platform.txt'] },
    rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.diffId) },
  };
  const config = await writeBlob(dir, mediaTypes.ociConfig, jsonBytes(configJson));
  const manifestJson = {
    schemaVersion: 2,
    mediaType: mediaTypes.ociManifest,
    config,
    layers: layers.map((layer) => layer.descriptor),
  };
  const manifest = await writeBlob(dir, mediaTypes.ociManifest, jsonBytes(manifestJson));
  return { platform, manifest, config, layers: layers.map((layer) => layer.descriptor) };
}

function indexJson(images: readonly OciImage[]): Buffer {
  return jsonBytes({
    schemaVersion: 2,
    mediaType: mediaTypes.ociIndex,
    manifests: images.map((image) => ({ ...image.manifest, platform: image.platform })),
  });
}

/**
 * Writes an OCI image layout (image-layout.md of the OCI image spec) to `dir`,
 * tagged `tag`: one image per platform, each of a layer shared by all and a
 * layer of its own. With several platforms the tag names an image index.
 */
export async function writeOciLayout(
  dir: string,
  tag: string,
  platforms: readonly OciPlatform[],
): Promise<OciLayout> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const shared = await writeLayer(dir, { 'shared.txt': `${randomUUID()}\n` });

  const images: OciImage[] = [];
  for (const platform of platforms) images.push(await writeImage(dir, platform, shared));

  const single = images.length === 1 ? images[0] : undefined;
  const topBytes = single === undefined ? indexJson(images) : await readBlob(dir, single.manifest);
  const top = single?.manifest ?? (await writeBlob(dir, mediaTypes.ociIndex, topBytes));
  const annotations = { 'org.opencontainers.image.ref.name': tag };
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ ...top, annotations }] }),
  );
  return { dir, tag, reference: `oci:${dir}:${tag}`, top, topBytes, images };
}

export function readBlob(dir: string, descriptor: Pick<Descriptor, 'digest'>): Promise<Buffer> {
  return readFile(join(dir, 'blobs', 'sha256', descriptor.digest.slice('sha256:'.length)));
}
