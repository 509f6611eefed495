import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startApiServer, type ApiServer } from '../support/api-server.js';
import {
  errorCode,
  ociIndexType,
  ociManifestType,
  pushBlob,
  pushImage,
  putManifest,
  randomBlob,
  request,
  sha256,
} from '../support/oci-client.js';

const dockerManifestType = 'application/vnd.docker.distribution.manifest.v2+json';
const dockerListType = 'application/vnd.docker.distribution.manifest.list.v2+json';

describe('manifests', () => {
  let server: ApiServer;
  before(async () => {
    server = await startApiServer();
  });
  after(() => server.close());

  const url = (name: string, reference: string) =>
    `${server.url}/v2/${name}/manifests/${reference}`;

  test('manifests: PUT by tag answers 201 and GET returns the exact bytes with their digest', async () => {
    const image = await pushImage(server.url, 'm/app', 'v1');
    const reply = await request(url('m/app', 'v1'), { headers: { Accept: ociManifestType } });
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.body, image.bytes);
    assert.equal(reply.headers.get('content-type'), ociManifestType);
    assert.equal(reply.headers.get('docker-content-digest'), image.digest);
    const byDigest = await request(url('m/app', image.digest));
    assert.deepEqual(byDigest.body, image.bytes);
  });

  test('manifests: HEAD answers the size, type and digest without a body', async () => {
    const image = await pushImage(server.url, 'm/head', 'v1');
    const reply = await request(url('m/head', 'v1'), { method: 'HEAD' });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers.get('content-length'), String(image.bytes.length));
    assert.equal(reply.headers.get('docker-content-digest'), image.digest);
    assert.equal(reply.body.length, 0);
  });

  test('manifests: PUT by digest checks the digest against the body', async () => {
    const image = await pushImage(server.url, 'm/digest', 'v1');
    const same = await putManifest(
      server.url,
      'm/digest',
      image.digest,
      image.bytes,
      ociManifestType,
    );
    assert.equal(same.status, 201);
    const wrong = await putManifest(
      server.url,
      'm/digest',
      sha256('x'),
      image.bytes,
      ociManifestType,
    );
    assert.equal(wrong.status, 400);
    assert.equal(errorCode(wrong), 'DIGEST_INVALID');
  });

  test('manifests: a manifest referencing a missing blob answers MANIFEST_BLOB_UNKNOWN', async () => {
    const config = await pushBlob(server.url, 'm/missing', Buffer.from('{}'));
    const manifest = {
      schemaVersion: 2,
      mediaType: ociManifestType,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256('nope'), size: 4 },
      ],
    };
    const reply = await putManifest(
      server.url,
      'm/missing',
      'v1',
      Buffer.from(JSON.stringify(manifest)),
      ociManifestType,
    );
    assert.equal(reply.status, 400);
    assert.equal(errorCode(reply), 'MANIFEST_BLOB_UNKNOWN');
    assert.equal((await request(url('m/missing', 'v1'))).status, 404);
  });

  test('manifests: a blob linked only in another repository counts as missing', async () => {
    const image = await pushImage(server.url, 'm/elsewhere', 'v1');
    const reply = await putManifest(server.url, 'm/here', 'v1', image.bytes, ociManifestType);
    assert.equal(errorCode(reply), 'MANIFEST_BLOB_UNKNOWN');
  });

  test('manifests: a descriptor size that differs from the blob answers MANIFEST_INVALID', async () => {
    const layer = randomBlob(100);
    const config = await pushBlob(server.url, 'm/size', Buffer.from('{}'));
    await pushBlob(server.url, 'm/size', layer.bytes);
    const manifest = {
      schemaVersion: 2,
      mediaType: ociManifestType,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: 99 },
      ],
    };
    const reply = await putManifest(
      server.url,
      'm/size',
      'v1',
      Buffer.from(JSON.stringify(manifest)),
      ociManifestType,
    );
    assert.equal(errorCode(reply), 'MANIFEST_INVALID');
  });

  test('manifests: an index is accepted only when every child is present', async () => {
    const child = await pushImage(server.url, 'm/index', 'child');
    const index = (digests: string[]) =>
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: ociIndexType,
          manifests: digests.map((digest) => ({
            mediaType: ociManifestType,
            digest,
            size: child.bytes.length,
            platform: { os: 'linux', architecture: 'amd64' },
          })),
        }),
      );
    const missing = await putManifest(
      server.url,
      'm/index',
      'multi',
      index([sha256('absent')]),
      ociIndexType,
    );
    assert.equal(errorCode(missing), 'MANIFEST_BLOB_UNKNOWN');
    const ok = await putManifest(
      server.url,
      'm/index',
      'multi',
      index([child.digest]),
      ociIndexType,
    );
    assert.equal(ok.status, 201);
    const got = await request(url('m/index', 'multi'), { headers: { Accept: ociIndexType } });
    assert.equal(got.headers.get('content-type'), ociIndexType);
  });

  test('manifests: a client accepting only image manifests gets the linux/amd64 child of a list', async () => {
    const child = await pushImage(server.url, 'm/list', 'child');
    const list = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: dockerListType,
        manifests: [
          {
            mediaType: ociManifestType,
            digest: child.digest,
            size: child.bytes.length,
            platform: { os: 'linux', architecture: 'amd64' },
          },
        ],
      }),
    );
    await putManifest(server.url, 'm/list', 'multi', list, dockerListType);
    const old = await request(url('m/list', 'multi'), { headers: { Accept: dockerManifestType } });
    assert.equal(old.headers.get('docker-content-digest'), child.digest);
    const modern = await request(url('m/list', 'multi'), {
      headers: { Accept: `${dockerListType}, ${dockerManifestType}` },
    });
    assert.equal(modern.headers.get('docker-content-digest'), sha256(list));
  });

  test('manifests: Docker schema 1 is refused with a message that says so', async () => {
    const body = Buffer.from(
      JSON.stringify({ schemaVersion: 1, name: 'x', tag: 'y', fsLayers: [] }),
    );
    const reply = await putManifest(
      server.url,
      'm/old',
      'v1',
      body,
      'application/vnd.docker.distribution.manifest.v1+prettyjws',
    );
    assert.equal(errorCode(reply), 'MANIFEST_INVALID');
    assert.match(reply.json<{ errors: { message: string }[] }>().errors[0]!.message, /schema 1/);
  });

  test('manifests: malformed JSON, unknown media types and non-objects answer MANIFEST_INVALID', async () => {
    for (const [body, type] of [
      ['{not json', ociManifestType],
      ['[1,2]', ociManifestType],
      ['{"schemaVersion":2,"mediaType":"text/plain"}', 'text/plain'],
      [
        '{"schemaVersion":2,"mediaType":"' + ociManifestType + '","config":{},"layers":[]}',
        ociManifestType,
      ],
    ] as const) {
      const reply = await putManifest(server.url, 'm/bad', 'v1', Buffer.from(body), type);
      assert.equal(reply.status, 400, body);
      assert.equal(errorCode(reply), 'MANIFEST_INVALID', body);
    }
  });

  test('manifests: a manifest over the size limit answers 413 without being read', async () => {
    const body = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    const reply = await putManifest(server.url, 'm/huge', 'v1', body, ociManifestType);
    assert.equal(reply.status, 413);
    assert.equal(errorCode(reply), 'MANIFEST_INVALID');
  });

  test('manifests: GET of an unknown tag or digest answers MANIFEST_UNKNOWN', async () => {
    await pushImage(server.url, 'm/known', 'v1');
    for (const reference of ['nope', sha256('nope')]) {
      const reply = await request(url('m/known', reference));
      assert.equal(reply.status, 404);
      assert.equal(errorCode(reply), 'MANIFEST_UNKNOWN');
    }
  });

  test('manifests: DELETE by tag removes only the tag', async () => {
    const image = await pushImage(server.url, 'm/deltag', 'v1');
    assert.equal((await request(url('m/deltag', 'v1'), { method: 'DELETE' })).status, 202);
    assert.equal((await request(url('m/deltag', 'v1'))).status, 404);
    assert.equal((await request(url('m/deltag', image.digest))).status, 200);
  });

  test('manifests: DELETE by digest removes the manifest and the tags pointing at it', async () => {
    const image = await pushImage(server.url, 'm/deldigest', 'v1');
    await putManifest(server.url, 'm/deldigest', 'v2', image.bytes, ociManifestType);
    assert.equal(
      (await request(url('m/deldigest', image.digest), { method: 'DELETE' })).status,
      202,
    );
    for (const reference of ['v1', 'v2', image.digest]) {
      assert.equal((await request(url('m/deldigest', reference))).status, 404);
    }
    const again = await request(url('m/deldigest', image.digest), { method: 'DELETE' });
    assert.equal(errorCode(again), 'MANIFEST_UNKNOWN');
  });

  test('manifests: pushing a tag again moves it to the new manifest', async () => {
    await pushImage(server.url, 'm/move', 'latest');
    const second = await pushImage(server.url, 'm/move', 'latest');
    const reply = await request(url('m/move', 'latest'));
    assert.equal(reply.headers.get('docker-content-digest'), second.digest);
  });

  test('manifests: If-None-Match with the digest answers 304', async () => {
    const image = await pushImage(server.url, 'm/etag', 'v1');
    const reply = await request(url('m/etag', 'v1'), {
      headers: { 'If-None-Match': `"${image.digest}"` },
    });
    assert.equal(reply.status, 304);
  });
});

describe('referrers', () => {
  let server: ApiServer;
  before(async () => {
    server = await startApiServer();
  });
  after(() => server.close());

  test('referrers: a manifest with a subject answers OCI-Subject and is listed', async () => {
    const subject = await pushImage(server.url, 'r/app', 'v1');
    const descriptor = {
      mediaType: ociManifestType,
      digest: subject.digest,
      size: subject.bytes.length,
    };
    const signatureType = 'application/vnd.example.signature';
    const sbomType = 'application/vnd.example.sbom';
    const sig = await pushImage(server.url, 'r/app', 'sig', {
      artifactType: signatureType,
      subject: descriptor,
      annotations: { 'org.example.kind': 'signature' },
    });
    const sbom = await pushImage(server.url, 'r/app', 'sbom', {
      artifactType: sbomType,
      subject: descriptor,
    });

    const put = await putManifest(server.url, 'r/app', sig.digest, sig.bytes, ociManifestType);
    assert.equal(put.headers.get('oci-subject'), subject.digest);

    const all = await request(`${server.url}/v2/r/app/referrers/${subject.digest}`);
    assert.equal(all.status, 200);
    assert.equal(all.headers.get('content-type'), ociIndexType);
    const index = all.json<{
      manifests: { digest: string; artifactType: string; annotations?: object }[];
    }>();
    assert.deepEqual(index.manifests.map((m) => m.digest).sort(), [sig.digest, sbom.digest].sort());
    const listedSig = index.manifests.find((m) => m.digest === sig.digest)!;
    assert.equal(listedSig.artifactType, signatureType);
    assert.deepEqual(listedSig.annotations, { 'org.example.kind': 'signature' });

    const filtered = await request(
      `${server.url}/v2/r/app/referrers/${subject.digest}?artifactType=${encodeURIComponent(sbomType)}`,
    );
    assert.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
    assert.deepEqual(
      filtered.json<{ manifests: { digest: string }[] }>().manifests.map((m) => m.digest),
      [sbom.digest],
    );
  });

  test('referrers: an unknown digest gives an empty index', async () => {
    const reply = await request(`${server.url}/v2/r/none/referrers/${sha256('nothing')}`);
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json<{ manifests: unknown[] }>().manifests, []);
  });

  test('referrers: a malformed digest answers DIGEST_INVALID', async () => {
    const reply = await request(`${server.url}/v2/r/none/referrers/sha256:nothex`);
    assert.equal(errorCode(reply), 'DIGEST_INVALID');
  });
});

describe('deletes disabled', () => {
  test('deletes: with storage.delete.enabled false every delete answers 405 UNSUPPORTED', async () => {
    const server = await startApiServer({ storage: { delete: { enabled: false } } });
    try {
      const image = await pushImage(server.url, 'd/app', 'v1');
      for (const path of [`manifests/${image.digest}`, 'manifests/v1', `blobs/${image.config}`]) {
        const reply = await request(`${server.url}/v2/d/app/${path}`, { method: 'DELETE' });
        assert.equal(reply.status, 405, path);
        assert.equal(errorCode(reply), 'UNSUPPORTED');
      }
      assert.equal((await request(`${server.url}/v2/d/app/manifests/v1`)).status, 200);
    } finally {
      await server.close();
    }
  });
});
