import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApiServer, type ApiServer } from '../support/api-server.js';
import {
  errorCode,
  ociManifestType,
  pushImage,
  putManifest,
  request,
} from '../support/oci-client.js';

/** Immutable tags (configuration `immutability`): a matching tag never moves once pushed. */

let server: ApiServer;

before(async () => {
  server = await startApiServer({
    immutability: { tags: [{ repositories: 'prod/**', tags: ['v*', 'release-*'] }] },
  });
});

after(() => server.close());

async function digestOfTag(name: string, tag: string): Promise<string | null> {
  const reply = await request(`${server.url}/v2/${name}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { Accept: ociManifestType },
  });
  return reply.status === 200 ? reply.headers.get('docker-content-digest') : null;
}

describe('immutable tags', () => {
  it('immutability: pushing the same manifest under an immutable tag again succeeds', async () => {
    const image = await pushImage(server.url, 'prod/app', 'v1.0');
    const again = await putManifest(server.url, 'prod/app', 'v1.0', image.bytes, ociManifestType);
    assert.equal(again.status, 201);
    assert.equal(await digestOfTag('prod/app', 'v1.0'), image.digest);
  });

  it('immutability: moving an immutable tag answers 409 DENIED naming the digest', async () => {
    const first = await pushImage(server.url, 'prod/api/server', 'release-7');
    const second = await pushImage(server.url, 'prod/api/server', 'scratch');

    const reply = await putManifest(
      server.url,
      'prod/api/server',
      'release-7',
      second.bytes,
      ociManifestType,
    );
    assert.equal(reply.status, 409);
    assert.equal(errorCode(reply), 'DENIED');
    const body = reply.json<{ errors: { message: string; detail: unknown }[] }>();
    assert.equal(
      body.errors[0]?.message,
      `Tag "prod/api/server:release-7" is immutable: it already points at ${first.digest}`,
    );
    assert.deepEqual(body.errors[0]?.detail, { tag: 'release-7', digest: first.digest });
    assert.equal(await digestOfTag('prod/api/server', 'release-7'), first.digest);
  });

  it('immutability: tags and repositories that match no rule move freely', async () => {
    await pushImage(server.url, 'prod/app', 'latest');
    const moved = await pushImage(server.url, 'prod/app', 'latest');
    assert.equal(await digestOfTag('prod/app', 'latest'), moved.digest);

    await pushImage(server.url, 'dev/app', 'v1');
    const devMoved = await pushImage(server.url, 'dev/app', 'v1');
    assert.equal(await digestOfTag('dev/app', 'v1'), devMoved.digest);
  });

  it('immutability: a manifest refused under an immutable tag may be pushed by digest', async () => {
    await pushImage(server.url, 'prod/app', 'v2');
    const other = await pushImage(server.url, 'prod/app', 'other');
    const refused = await putManifest(server.url, 'prod/app', 'v2', other.bytes, ociManifestType);
    assert.equal(refused.status, 409);
    const byDigest = await putManifest(
      server.url,
      'prod/app',
      other.digest,
      other.bytes,
      ociManifestType,
    );
    assert.equal(byDigest.status, 201);
  });

  it('immutability: of two pushes racing to create an immutable tag one wins', async () => {
    const images = await Promise.all(
      ['a', 'b', 'c'].map((label) => pushImage(server.url, 'prod/race', `scratch-${label}`)),
    );
    const replies = await Promise.all(
      images.map((image) =>
        putManifest(server.url, 'prod/race', 'v9', image.bytes, ociManifestType),
      ),
    );
    assert.deepEqual(replies.map((reply) => reply.status).sort(), [201, 409, 409]);
    const winner = images[replies.findIndex((reply) => reply.status === 201)];
    assert.equal(await digestOfTag('prod/race', 'v9'), winner?.digest);
  });
});
