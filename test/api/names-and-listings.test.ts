import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { startApiServer, type ApiServer } from '../support/api-server.js';
import {
  errorCode,
  pushBlob,
  pushImage,
  putManifest,
  ociManifestType,
  rawGet,
  request,
  sha256,
} from '../support/oci-client.js';

describe('base and names', () => {
  let server: ApiServer;
  before(async () => {
    server = await startApiServer();
  });
  after(() => server.close());

  test('base: GET /v2/ answers 200 with the API version header', async () => {
    const reply = await request(`${server.url}/v2/`);
    assert.equal(reply.status, 200);
    assert.equal(reply.headers.get('docker-distribution-api-version'), 'registry/2.0');
  });

  test('base: an unknown path answers 404 in the OCI error format', async () => {
    const reply = await request(`${server.url}/nothing/here`);
    assert.equal(reply.status, 404);
    assert.ok(errorCode(reply));
    assert.equal(reply.headers.get('docker-distribution-api-version'), 'registry/2.0');
  });

  test('names: malformed repository names answer NAME_INVALID, never 500', async () => {
    const names = ['UPPER', 'a//b', 'a%2Fb', '-a', 'a_', 'x'.repeat(256), 'a/.b', 'a/-b'];
    for (const name of names) {
      for (const path of ['tags/list', 'manifests/latest', `blobs/${sha256('x')}`]) {
        const reply = await request(`${server.url}/v2/${name}/${path}`);
        assert.equal(reply.status, 400, `${name}/${path}`);
        assert.equal(errorCode(reply), 'NAME_INVALID', `${name}/${path}`);
      }
    }
  });

  test('names: dot segments in a raw path answer NAME_INVALID', async () => {
    for (const path of [
      '/v2/../etc/tags/list',
      '/v2/a/../b/tags/list',
      '/v2/./a/manifests/v1',
      '/v2/../../blobs/uploads/',
      '/v2/%2E%2E/tags/list',
      '/v2/a%2F..%2Fb/tags/list',
    ]) {
      const reply = await rawGet(server.url, path);
      assert.equal(reply.status, 400, path);
      assert.match(reply.body, /NAME_INVALID/, path);
    }
  });

  test('names: a push with a malformed name writes nothing outside the data directory', async () => {
    const before = await readdir(server.root);
    const reply = await request(`${server.url}/v2/../../tmp/blobs/uploads/`, { method: 'POST' });
    assert.ok(reply.status === 400 || reply.status === 404);
    assert.deepEqual(await readdir(server.root), before);
  });

  test('names: nested names such as team/app/api work end to end', async () => {
    const image = await pushImage(server.url, 'team/app/api', '1.0');
    const reply = await request(`${server.url}/v2/team/app/api/manifests/1.0`);
    assert.equal(reply.headers.get('docker-content-digest'), image.digest);
  });

  test('names: malformed tags answer TAG_INVALID on push, 404 on pull, and malformed digests DIGEST_INVALID', async () => {
    const body = Buffer.from('{}');
    const tag = await putManifest(server.url, 'n/app', '.bad', body, ociManifestType);
    assert.equal(errorCode(tag), 'TAG_INVALID');
    const longTag = await putManifest(server.url, 'n/app', 't'.repeat(129), body, ociManifestType);
    assert.equal(errorCode(longTag), 'TAG_INVALID');
    const read = await request(`${server.url}/v2/n/app/manifests/.bad`);
    assert.equal(read.status, 404);
    assert.equal(errorCode(read), 'MANIFEST_UNKNOWN');
    for (const digest of [
      'sha256:abc',
      'md5:d41d8cd98f00b204e9800998ecf8427e',
      `sha256:${'G'.repeat(64)}`,
    ]) {
      const manifest = await request(`${server.url}/v2/n/app/manifests/${digest}`);
      assert.equal(errorCode(manifest), 'DIGEST_INVALID', digest);
      const blob = await request(`${server.url}/v2/n/app/blobs/${digest}`);
      assert.equal(errorCode(blob), 'DIGEST_INVALID', digest);
    }
  });

  test('names: an unsupported method answers 405 UNSUPPORTED', async () => {
    const reply = await request(`${server.url}/v2/n/app/tags/list`, { method: 'POST' });
    assert.equal(reply.status, 405);
    assert.equal(errorCode(reply), 'UNSUPPORTED');
  });
});

describe('blobs', () => {
  let server: ApiServer;
  const bytes = Buffer.from('0123456789abcdefghij');
  let digest: string;
  before(async () => {
    server = await startApiServer();
    digest = await pushBlob(server.url, 'b/app', bytes);
  });
  after(() => server.close());

  test('blobs: GET answers the bytes with length, digest and ETag', async () => {
    const reply = await request(`${server.url}/v2/b/app/blobs/${digest}`);
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.body, bytes);
    assert.equal(reply.headers.get('content-length'), '20');
    assert.equal(reply.headers.get('docker-content-digest'), digest);
    assert.equal(reply.headers.get('etag'), `"${digest}"`);
  });

  test('blobs: a Range request answers 206 with the slice', async () => {
    const reply = await request(`${server.url}/v2/b/app/blobs/${digest}`, {
      headers: { Range: 'bytes=5-9' },
    });
    assert.equal(reply.status, 206);
    assert.equal(reply.body.toString(), '56789');
    assert.equal(reply.headers.get('content-range'), 'bytes 5-9/20');
    const tail = await request(`${server.url}/v2/b/app/blobs/${digest}`, {
      headers: { Range: 'bytes=-3' },
    });
    assert.equal(tail.body.toString(), 'hij');
  });

  test('blobs: concurrent GETs of a large blob, which share the read buffers, each answer every byte', async () => {
    const large = randomBytes(5 * 1024 * 1024 + 4321);
    const largeDigest = await pushBlob(server.url, 'b/large', large);
    const replies = await Promise.all(
      Array.from({ length: 9 }, () => request(`${server.url}/v2/b/large/blobs/${largeDigest}`)),
    );
    for (const reply of replies) {
      assert.equal(reply.status, 200);
      assert.equal(sha256(reply.body), largeDigest);
    }
  });

  test('blobs: buffers kept between pulls and uploads never mix two blobs, even after abandoned pulls', async () => {
    const first = randomBytes(3 * 1024 * 1024 + 17);
    const second = randomBytes(3 * 1024 * 1024 + 99);
    const firstUrl = `${server.url}/v2/b/pool/blobs/${await pushBlob(server.url, 'b/pool', first)}`;
    const secondUrl = `${server.url}/v2/b/pool/blobs/${await pushBlob(server.url, 'b/pool', second)}`;
    const abandoned = Array.from({ length: 4 }, async () => {
      const controller = new AbortController();
      const reply = await fetch(firstUrl, { signal: controller.signal });
      await reply.body?.getReader().read();
      controller.abort();
    });
    await Promise.all(abandoned);

    for (let wave = 0; wave < 3; wave++) {
      // Uploads copy into the same kept buffers.
      const pushed = randomBytes(3 * 1024 * 1024 + 5);
      const [a, b, slice, pushedDigest] = await Promise.all([
        Promise.all([request(firstUrl), request(firstUrl)]),
        Promise.all([request(secondUrl), request(secondUrl)]),
        request(secondUrl, { headers: { Range: `bytes=${(1 << 20) + 7}-` } }),
        pushBlob(server.url, 'b/pool', pushed),
      ]);
      for (const reply of a) assert.deepEqual(reply.body, first);
      for (const reply of b) assert.deepEqual(reply.body, second);
      assert.equal(slice.status, 206);
      assert.deepEqual(slice.body, second.subarray((1 << 20) + 7));
      const back = await request(`${server.url}/v2/b/pool/blobs/${pushedDigest}`);
      assert.deepEqual(back.body, pushed);
    }
  });

  test('blobs: a Range outside the blob answers 416', async () => {
    const reply = await request(`${server.url}/v2/b/app/blobs/${digest}`, {
      headers: { Range: 'bytes=50-60' },
    });
    assert.equal(reply.status, 416);
    assert.equal(reply.headers.get('content-range'), 'bytes */20');
  });

  test('blobs: DELETE unlinks the blob from the repository', async () => {
    const other = await pushBlob(server.url, 'b/del', Buffer.from('delete me'));
    assert.equal(
      (await request(`${server.url}/v2/b/del/blobs/${other}`, { method: 'DELETE' })).status,
      202,
    );
    const gone = await request(`${server.url}/v2/b/del/blobs/${other}`);
    assert.equal(gone.status, 404);
    assert.equal(errorCode(gone), 'BLOB_UNKNOWN');
    const again = await request(`${server.url}/v2/b/del/blobs/${other}`, { method: 'DELETE' });
    assert.equal(errorCode(again), 'BLOB_UNKNOWN');
  });
});

describe('listings', () => {
  let server: ApiServer;
  before(async () => {
    server = await startApiServer();
    const image = await pushImage(server.url, 'list/app', 'base');
    for (const name of ['zeta', 'alpha', 'list/app', 'mid/dle', 'beta']) {
      if (name !== 'list/app') await pushImage(server.url, name, 'v1');
    }
    for (const tag of ['v3', 'v1', 'A', 'v2', '_x']) {
      await putManifest(server.url, 'list/app', tag, image.bytes, ociManifestType);
    }
  });
  after(() => server.close());

  test('catalog: lists repositories sorted', async () => {
    const reply = await request(`${server.url}/v2/_catalog`);
    assert.deepEqual(reply.json(), {
      repositories: ['alpha', 'beta', 'list/app', 'mid/dle', 'zeta'],
    });
  });

  test('catalog: pages by n and last with a Link to the next page', async () => {
    const first = await request(`${server.url}/v2/_catalog?n=2`);
    assert.deepEqual(first.json(), { repositories: ['alpha', 'beta'] });
    assert.equal(first.headers.get('link'), '</v2/_catalog?last=beta&n=2>; rel="next"');
    const second = await request(`${server.url}/v2/_catalog?n=2&last=beta`);
    assert.deepEqual(second.json(), { repositories: ['list/app', 'mid/dle'] });
    const last = await request(`${server.url}/v2/_catalog?n=2&last=mid/dle`);
    assert.deepEqual(last.json(), { repositories: ['zeta'] });
    assert.equal(last.headers.get('link'), null);
  });

  test('catalog: a malformed n answers PAGINATION_NUMBER_INVALID', async () => {
    const reply = await request(`${server.url}/v2/_catalog?n=abc`);
    assert.equal(reply.status, 400);
    assert.equal(errorCode(reply), 'PAGINATION_NUMBER_INVALID');
  });

  test('tags: lists tags sorted in byte order', async () => {
    const reply = await request(`${server.url}/v2/list/app/tags/list`);
    assert.deepEqual(reply.json(), {
      name: 'list/app',
      tags: ['A', '_x', 'base', 'v1', 'v2', 'v3'],
    });
  });

  test('tags: pages by n and last with a Link to the next page', async () => {
    const first = await request(`${server.url}/v2/list/app/tags/list?n=2`);
    assert.deepEqual(first.json(), { name: 'list/app', tags: ['A', '_x'] });
    assert.equal(first.headers.get('link'), '</v2/list/app/tags/list?last=_x&n=2>; rel="next"');
    const next = await request(`${server.url}/v2/list/app/tags/list?n=3&last=_x`);
    assert.deepEqual(next.json(), { name: 'list/app', tags: ['base', 'v1', 'v2'] });
  });

  test('tags: an unknown repository answers NAME_UNKNOWN', async () => {
    const reply = await request(`${server.url}/v2/nobody/here/tags/list`);
    assert.equal(reply.status, 404);
    assert.equal(errorCode(reply), 'NAME_UNKNOWN');
  });
});
