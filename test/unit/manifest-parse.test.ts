import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RegistryError } from '../../src/errors/registry-error.js';
import { parseManifest, type ParsedManifest } from '../../src/registry/manifest.js';
import { mediaTypes } from '../../src/registry/media-types.js';

const digest = (character: string): string => `sha256:${character.repeat(64)}`;

const ociConfigType = 'application/vnd.oci.image.config.v1+json';
const ociLayerType = 'application/vnd.oci.image.layer.v1.tar+gzip';
const dockerConfigType = 'application/vnd.docker.container.image.v1+json';
const dockerLayerType = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const dockerForeignType = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';

const dockerManifest = {
  schemaVersion: 2,
  mediaType: mediaTypes.dockerManifest,
  config: { mediaType: dockerConfigType, size: 1469, digest: digest('c') },
  layers: [
    { mediaType: dockerLayerType, size: 2_811_478, digest: digest('1') },
    { mediaType: dockerLayerType, size: 32, digest: digest('2') },
  ],
};

const dockerManifestList = {
  schemaVersion: 2,
  mediaType: mediaTypes.dockerManifestList,
  manifests: [
    {
      mediaType: mediaTypes.dockerManifest,
      size: 528,
      digest: digest('a'),
      platform: { architecture: 'amd64', os: 'linux' },
    },
    {
      mediaType: mediaTypes.dockerManifest,
      size: 528,
      digest: digest('b'),
      platform: { architecture: 'arm64', os: 'linux', variant: 'v8' },
    },
  ],
};

const ociManifest = {
  schemaVersion: 2,
  mediaType: mediaTypes.ociManifest,
  config: { mediaType: ociConfigType, size: 7023, digest: digest('c') },
  layers: [{ mediaType: ociLayerType, size: 32654, digest: digest('1') }],
  annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
};

const ociIndex = {
  schemaVersion: 2,
  mediaType: mediaTypes.ociIndex,
  manifests: [
    { mediaType: mediaTypes.ociManifest, size: 7143, digest: digest('a') },
    { mediaType: mediaTypes.ociManifest, size: 7682, digest: digest('b') },
  ],
};

function bytesOf(document: unknown): Buffer {
  return Buffer.from(JSON.stringify(document));
}

function parse(document: unknown, contentType?: string): ParsedManifest {
  return parseManifest(bytesOf(document), contentType);
}

/** Asserts MANIFEST_INVALID (status 400) with a message matching `message`. */
function refusesBytes(bytes: Buffer, contentType: string | undefined, message: RegExp): void {
  assert.throws(
    () => parseManifest(bytes, contentType),
    (error: unknown) => {
      assert.ok(error instanceof RegistryError, String(error));
      assert.equal(error.code, 'MANIFEST_INVALID');
      assert.equal(error.status, 400);
      assert.match(error.message, message);
      return true;
    },
  );
}

/** A copy of `document` without `key`. */
function without<T extends object>(document: T, key: keyof T): Partial<T> {
  const copy: Partial<T> = { ...document };
  delete copy[key];
  return copy;
}

function refuses(document: unknown, message: RegExp, contentType?: string): void {
  refusesBytes(bytesOf(document), contentType, message);
}

test('manifest: a Docker v2 manifest references its config and layers as blobs', () => {
  const parsed = parse(dockerManifest, mediaTypes.dockerManifest);

  assert.equal(parsed.kind, 'image');
  assert.equal(parsed.mediaType, mediaTypes.dockerManifest);
  assert.deepEqual(parsed.references, [
    { digest: digest('c'), kind: 'blob' },
    { digest: digest('1'), kind: 'blob' },
    { digest: digest('2'), kind: 'blob' },
  ]);
  assert.equal(parsed.descriptors.length, 3);
  assert.equal(parsed.artifactType, null);
  assert.equal(parsed.subject, null);
  assert.equal(parsed.annotations, null);
});

test('manifest: a Docker manifest list references its children as manifests', () => {
  const parsed = parse(dockerManifestList, mediaTypes.dockerManifestList);

  assert.equal(parsed.kind, 'index');
  assert.equal(parsed.mediaType, mediaTypes.dockerManifestList);
  assert.deepEqual(parsed.references, [
    { digest: digest('a'), kind: 'manifest' },
    { digest: digest('b'), kind: 'manifest' },
  ]);
  assert.deepEqual(parsed.descriptors[1]?.platform, dockerManifestList.manifests[1]?.platform);
  assert.equal(parsed.artifactType, null);
});

test('manifest: an OCI manifest takes its artifactType from its config', () => {
  const parsed = parse(ociManifest, mediaTypes.ociManifest);

  assert.equal(parsed.kind, 'image');
  assert.equal(parsed.mediaType, mediaTypes.ociManifest);
  assert.equal(parsed.artifactType, ociConfigType);
  assert.deepEqual(
    parsed.references.map((reference) => reference.digest),
    [digest('c'), digest('1')],
  );
  assert.deepEqual(JSON.parse(parsed.annotations ?? 'null'), ociManifest.annotations);
});

test('manifest: an OCI manifest without mediaType takes it from Content-Type', () => {
  const document = without(ociManifest, 'mediaType');

  const parsed = parse(document, `${mediaTypes.ociManifest}; charset=utf-8`);
  assert.equal(parsed.mediaType, mediaTypes.ociManifest);
  assert.equal(parsed.kind, 'image');
  const index = parse({ ...ociIndex, mediaType: undefined }, mediaTypes.ociIndex);
  assert.equal(index.kind, 'index');
});

test('manifest: a mediaType field is enough without a Content-Type', () => {
  assert.equal(parse(ociManifest).mediaType, mediaTypes.ociManifest);
});

test('manifest: a generic Content-Type does not conflict with the mediaType field', () => {
  assert.equal(parse(ociManifest, 'application/json').mediaType, mediaTypes.ociManifest);
});

test('manifest: an OCI index references its children as manifests', () => {
  const parsed = parse(ociIndex, mediaTypes.ociIndex);

  assert.equal(parsed.kind, 'index');
  assert.equal(parsed.mediaType, mediaTypes.ociIndex);
  assert.deepEqual(parsed.references, [
    { digest: digest('a'), kind: 'manifest' },
    { digest: digest('b'), kind: 'manifest' },
  ]);
  assert.equal(parsed.artifactType, null);
  assert.equal(parsed.subject, null);
});

test('manifest: an artifact keeps its artifactType and subject', () => {
  const artifact = {
    schemaVersion: 2,
    mediaType: mediaTypes.ociManifest,
    artifactType: 'application/vnd.example.sbom.v1+json',
    config: { mediaType: mediaTypes.ociEmpty, size: 2, digest: digest('e') },
    layers: [{ mediaType: 'application/spdx+json', size: 100, digest: digest('3') }],
    subject: { mediaType: mediaTypes.ociManifest, size: 7023, digest: digest('f') },
  };

  const parsed = parse(artifact, mediaTypes.ociManifest);
  assert.equal(parsed.artifactType, 'application/vnd.example.sbom.v1+json');
  assert.equal(parsed.subject, digest('f'));
  assert.ok(!parsed.references.some((reference) => reference.digest === digest('f')));
});

test('manifest: an artifact with a custom config mediaType has it as artifactType', () => {
  const signatureType = 'application/vnd.example.signature.v1';
  const signature = {
    schemaVersion: 2,
    mediaType: mediaTypes.ociManifest,
    config: { mediaType: signatureType, size: 10, digest: digest('c') },
    layers: [],
  };

  const parsed = parse(signature, mediaTypes.ociManifest);
  assert.equal(parsed.artifactType, signatureType);
  assert.deepEqual(parsed.references, [{ digest: digest('c'), kind: 'blob' }]);
});

test('manifest: an index keeps its artifactType and subject', () => {
  const index = {
    ...ociIndex,
    artifactType: 'application/vnd.example.bundle',
    subject: { mediaType: mediaTypes.ociManifest, size: 1, digest: digest('f') },
  };

  const parsed = parse(index, mediaTypes.ociIndex);
  assert.equal(parsed.artifactType, 'application/vnd.example.bundle');
  assert.equal(parsed.subject, digest('f'));
});

test('manifest: foreign layers with urls are not references', () => {
  const foreign = {
    mediaType: dockerForeignType,
    size: 1000,
    digest: digest('9'),
    urls: ['https://example.com/layer.tar.gz'],
  };
  const withUrls = { mediaType: dockerLayerType, size: 5, digest: digest('8'), urls: ['x'] };
  const document = { ...dockerManifest, layers: [foreign, ...dockerManifest.layers, withUrls] };

  const parsed = parse(document, mediaTypes.dockerManifest);
  const referenced = parsed.references.map((reference) => reference.digest);
  assert.deepEqual(referenced, [digest('c'), digest('1'), digest('2'), digest('8')]);
  assert.equal(parsed.descriptors.length, 5);
});

test('manifest: a foreign layer type without urls is still a reference', () => {
  const layer = { mediaType: dockerForeignType, size: 1000, digest: digest('9') };
  const parsed = parse({ ...dockerManifest, layers: [layer] });

  assert.deepEqual(
    parsed.references.map((reference) => reference.digest),
    [digest('c'), digest('9')],
  );
});

test('manifest: duplicate references are listed once, in document order', () => {
  const layer = { mediaType: ociLayerType, size: 1, digest: digest('1') };
  const sameAsConfig = { mediaType: ociLayerType, size: 1, digest: digest('c') };
  const image = parse({ ...ociManifest, layers: [layer, sameAsConfig, layer] });
  assert.deepEqual(image.references, [
    { digest: digest('c'), kind: 'blob' },
    { digest: digest('1'), kind: 'blob' },
  ]);

  const child = ociIndex.manifests[0];
  const index = parse({ ...ociIndex, manifests: [child, child, ociIndex.manifests[1]] });
  assert.deepEqual(
    index.references.map((reference) => reference.digest),
    [digest('a'), digest('b')],
  );
});

test('manifest: bytes that are not JSON are refused', () => {
  refusesBytes(Buffer.from('{"schemaVersion": 2,'), mediaTypes.ociManifest, /not valid JSON/);
  refusesBytes(Buffer.from(''), mediaTypes.ociManifest, /not valid JSON/);
});

test('manifest: JSON that is not an object is refused', () => {
  for (const text of ['[]', '[{"schemaVersion":2}]', 'null', '2', '"manifest"']) {
    refusesBytes(Buffer.from(text), mediaTypes.ociManifest, /not a JSON object/);
  }
});

test('manifest: schema 1 is refused with a message that says so', () => {
  const schema1 = { schemaVersion: 1, name: 'a', tag: 'latest', fsLayers: [], history: [] };
  refuses(schema1, /schema 1 is not supported/);
  refuses(schema1, /schema 1/, mediaTypes.dockerSchema1Signed);
  refuses({ ...schema1, schemaVersion: 2 }, /schema 1/, mediaTypes.dockerSchema1);
});

test('manifest: an unknown media type is refused', () => {
  const document = { ...ociManifest, mediaType: 'application/vnd.example.thing+json' };
  refuses(document, /Unsupported manifest media type "application\/vnd.example/);
  const untyped = without(ociManifest, 'mediaType');
  refuses(untyped, /Unsupported manifest media type "application\/json"/, 'application/json');
});

test('manifest: no mediaType and no Content-Type is refused', () => {
  const untyped = without(ociManifest, 'mediaType');
  refuses(untyped, /no mediaType and the request no Content-Type/);
  refuses(untyped, /no mediaType/, '');
});

test('manifest: a mediaType that contradicts the Content-Type is refused', () => {
  const mismatch = /mediaType ".*oci.image.manifest.*" does not match Content-Type ".*docker/;
  refuses(ociManifest, mismatch, mediaTypes.dockerManifest);
  refuses(ociIndex, /does not match Content-Type/, mediaTypes.dockerManifestList);
  refuses(ociIndex, /does not match Content-Type/, mediaTypes.ociManifest);
});

test('manifest: a schemaVersion other than 2 is refused', () => {
  refuses({ ...ociManifest, schemaVersion: 3 }, /Invalid schemaVersion 3: expected 2/);
  refuses({ ...ociManifest, schemaVersion: '2' }, /Invalid schemaVersion "2"/);
  const missing = without(ociManifest, 'schemaVersion');
  refuses(missing, /Invalid schemaVersion/);
});

test('manifest: a descriptor with a bad digest is refused, naming it', () => {
  const layer = { mediaType: ociLayerType, size: 1, digest: 'sha256:zz' };
  refuses({ ...ociManifest, layers: [layer] }, /"layers\[0\]".*invalid digest/);
  const config = { ...ociManifest.config, digest: `md5:${'a'.repeat(32)}` };
  refuses({ ...ociManifest, config }, /"config".*invalid digest/);
  const child = { mediaType: mediaTypes.ociManifest, size: 1 };
  refuses({ ...ociIndex, manifests: [child] }, /"manifests\[0\]".*invalid digest/);
});

test('manifest: a descriptor with a negative or fractional size is refused', () => {
  for (const size of [-1, 1.5, '10', null, 2 ** 60]) {
    const layer = { mediaType: ociLayerType, size, digest: digest('1') };
    refuses({ ...ociManifest, layers: [layer] }, /"layers\[0\]".*invalid size/);
  }
});

test('manifest: a descriptor without a mediaType is refused', () => {
  const layer = { size: 1, digest: digest('1') };
  refuses({ ...ociManifest, layers: [layer] }, /"layers\[0\]" has no mediaType/);
  const config = { ...ociManifest.config, mediaType: '' };
  refuses({ ...ociManifest, config }, /"config" has no mediaType/);
});

test('manifest: layers, manifests and config of the wrong shape are refused', () => {
  refuses({ ...ociManifest, layers: {} }, /"layers" must be an array/);
  const noLayers = without(ociManifest, 'layers');
  refuses(noLayers, /"layers" must be an array/);
  refuses({ ...ociManifest, layers: ['x'] }, /"layers\[0\]" must be a descriptor/);
  refuses({ ...ociManifest, config: undefined }, /"config" must be a descriptor/);
  refuses({ ...ociIndex, manifests: 'none' }, /"manifests" must be an array/);
  refuses({ ...ociManifest, subject: 'x' }, /"subject" must be a descriptor/);
});

test('manifest: non-string artifactType or mediaType and bad annotations are refused', () => {
  refuses({ ...ociManifest, artifactType: 1 }, /"artifactType" must be a string/);
  refuses({ ...ociManifest, mediaType: 2 }, /"mediaType" must be a string/);
  refuses({ ...ociManifest, annotations: ['x'] }, /"annotations" must be an object/);
});
