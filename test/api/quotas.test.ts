import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startApiServer, type ApiServer } from '../support/api-server.js';
import {
  errorCode,
  ociManifestType,
  pushBlob,
  putManifest,
  randomBlob,
  request,
  type Reply,
} from '../support/oci-client.js';

/** Quotas (configuration `quotas`): a push past a repository's quota is refused, keeping nothing. */

const QUOTA = 10_000;

let server: ApiServer;

before(async () => {
  server = await startApiServer({
    quotas: { rules: [{ repositories: ['team-a/**', 'solo'], bytes: QUOTA }] },
  });
});

after(() => server.close());

/** A monolithic upload of `size` random bytes. */
async function upload(name: string, size: number): Promise<{ reply: Reply; digest: string }> {
  const { bytes, digest } = randomBlob(size);
  const reply = await request(`${server.url}/v2/${name}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    body: bytes,
  });
  return { reply, digest };
}

async function storedBytes(name: string): Promise<number> {
  return (await server.registry.metadata.measureRepositoryUsage(name))?.storedBytes ?? 0;
}

function messageOf(reply: Reply): string {
  return reply.json<{ errors: { message: string }[] }>().errors[0]?.message ?? '';
}

describe('quotas', () => {
  it('quotas: a blob past the quota is refused with 403 DENIED and nothing is kept', async () => {
    const first = await upload('team-a/app', 6000);
    assert.equal(first.reply.status, 201);

    const refused = await upload('team-a/app', 5000);
    assert.equal(refused.reply.status, 403);
    assert.equal(errorCode(refused.reply), 'DENIED');
    assert.equal(
      messageOf(refused.reply),
      'Quota exceeded for repository "team-a/app": it stores 5.9 KiB (6000 bytes) ' +
        'of its 9.8 KiB (10000 bytes) quota, and the blob adds 4.9 KiB (5000 bytes)',
    );

    const head = await request(`${server.url}/v2/team-a/app/blobs/${refused.digest}`, {
      method: 'HEAD',
    });
    assert.equal(head.status, 404);
    assert.equal(await server.registry.blobStore.stat(refused.digest), undefined);
    assert.deepEqual(await readdir(join(server.root, 'uploads')), [], 'staged bytes discarded');
    assert.equal(await storedBytes('team-a/app'), 6000);
  });

  it('quotas: a smaller push still fits, up to the quota exactly', async () => {
    await upload('team-a/fits', 6000);
    assert.equal((await upload('team-a/fits', 5000)).reply.status, 403);
    assert.equal((await upload('team-a/fits', 4000)).reply.status, 201);
    assert.equal(await storedBytes('team-a/fits'), QUOTA);
    assert.equal((await upload('team-a/fits', 1)).reply.status, 403);
  });

  it('quotas: pushing a blob the repository holds succeeds even at the quota', async () => {
    const { bytes } = randomBlob(QUOTA);
    await pushBlob(server.url, 'team-a/full', bytes);
    await pushBlob(server.url, 'team-a/full', bytes);
    assert.equal(await storedBytes('team-a/full'), QUOTA);
  });

  it('quotas: a chunked upload past the quota is refused at its last PUT', async () => {
    await upload('solo', 9000);
    const { bytes, digest } = randomBlob(2000);
    const start = await request(`${server.url}/v2/solo/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location') ?? '';
    const patch = await request(`${server.url}${location}`, { method: 'PATCH', body: bytes });
    assert.equal(patch.status, 202);
    const put = await request(`${server.url}${location}?digest=${digest}`, { method: 'PUT' });
    assert.equal(put.status, 403);
    assert.equal(errorCode(put), 'DENIED');
    const status = await request(`${server.url}${location}`);
    assert.equal(status.status, 404, 'the session is gone');
    assert.equal(await storedBytes('solo'), 9000);
  });

  it('quotas: a mount past the quota is refused; one within it links', async () => {
    const { bytes: big } = randomBlob(6000);
    const bigDigest = await pushBlob(server.url, 'open/source', big);
    await upload('team-a/mounts', 5000);

    const refused = await request(
      `${server.url}/v2/team-a/mounts/blobs/uploads/?mount=${bigDigest}&from=open/source`,
      { method: 'POST' },
    );
    assert.equal(refused.status, 403);
    assert.match(messageOf(refused), /the blob adds 5\.9 KiB \(6000 bytes\)/);

    const small = await pushBlob(server.url, 'open/source', randomBlob(3000).bytes);
    const mounted = await request(
      `${server.url}/v2/team-a/mounts/blobs/uploads/?mount=${small}&from=open/source`,
      { method: 'POST' },
    );
    assert.equal(mounted.status, 201);
    assert.equal(await storedBytes('team-a/mounts'), 8000);
  });

  it('quotas: a manifest counts its own bytes against the quota', async () => {
    const layer = randomBlob(QUOTA - 400);
    const layerDigest = await pushBlob(server.url, 'team-a/manifests', layer.bytes);
    const manifestOf = (annotation: string) =>
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: ociManifestType,
          config: {
            mediaType: 'application/vnd.oci.empty.v1+json',
            digest: layerDigest,
            size: layer.bytes.length,
          },
          layers: [],
          annotations: { note: annotation },
        }),
      );
    const small = manifestOf('x');
    assert.ok(small.length < 400);
    const first = await putManifest(server.url, 'team-a/manifests', 'one', small, ociManifestType);
    assert.equal(first.status, 201);

    const large = manifestOf('y'.repeat(400));
    const refused = await putManifest(
      server.url,
      'team-a/manifests',
      'two',
      large,
      ociManifestType,
    );
    assert.equal(refused.status, 403);
    assert.match(messageOf(refused), /the manifest adds/);
    const again = await putManifest(
      server.url,
      'team-a/manifests',
      'again',
      small,
      ociManifestType,
    );
    assert.equal(again.status, 201, 'a manifest the repository holds adds nothing');
  });

  it('quotas: blobs pushed in parallel never pass the quota together', async () => {
    const replies = await Promise.all(
      Array.from({ length: 6 }, () => upload('team-a/parallel', 3000)),
    );
    const statuses = replies.map(({ reply }) => reply.status).sort();
    assert.deepEqual(statuses, [201, 201, 201, 403, 403, 403]);
    assert.equal(await storedBytes('team-a/parallel'), 9000);
  });

  it('quotas: a repository that matches no rule has no quota', async () => {
    assert.equal((await upload('team-b/app', 3 * QUOTA)).reply.status, 201);
    assert.equal((await upload('team-a', 3 * QUOTA)).reply.status, 201, '"team-a/**" is below');
  });
});
