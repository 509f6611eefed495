import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startApiServer, type ApiServer } from '../support/api-server.js';
import { errorCode, pushBlob, randomBlob, request, sha256 } from '../support/oci-client.js';

describe('uploads', () => {
  let server: ApiServer;
  before(async () => {
    server = await startApiServer();
  });
  after(() => server.close());

  async function open(name = 'up/app'): Promise<string> {
    const reply = await request(`${server.url}/v2/${name}/blobs/uploads/`, { method: 'POST' });
    assert.equal(reply.status, 202);
    assert.ok(reply.headers.get('docker-upload-uuid'));
    return reply.headers.get('location')!;
  }

  async function head(name: string, digest: string) {
    return request(`${server.url}/v2/${name}/blobs/${digest}`, { method: 'HEAD' });
  }

  test('uploads: monolithic POST with digest stores the blob and answers 201', async () => {
    const { bytes, digest } = randomBlob(4096);
    const reply = await request(`${server.url}/v2/up/mono/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      body: bytes,
    });
    assert.equal(reply.status, 201);
    assert.equal(reply.headers.get('docker-content-digest'), digest);
    assert.equal(reply.headers.get('location'), `/v2/up/mono/blobs/${digest}`);
    const check = await head('up/mono', digest);
    assert.equal(check.status, 200);
    assert.equal(check.headers.get('content-length'), '4096');
  });

  test('uploads: POST then PUT with the whole body commits the blob', async () => {
    const { bytes, digest } = randomBlob();
    const location = await open();
    const reply = await request(`${server.url}${location}?digest=${digest}`, {
      method: 'PUT',
      body: bytes,
    });
    assert.equal(reply.status, 201);
    assert.equal((await head('up/app', digest)).status, 200);
  });

  test('uploads: chunked PATCH in order, then an empty PUT, commits every byte', async () => {
    const { bytes, digest } = randomBlob(3000);
    const location = await open();
    const first = await request(`${server.url}${location}`, {
      method: 'PATCH',
      body: bytes.subarray(0, 1000),
      headers: { 'Content-Range': '0-999', 'Content-Type': 'application/octet-stream' },
    });
    assert.equal(first.status, 202);
    assert.equal(first.headers.get('range'), '0-999');
    const second = await request(`${server.url}${location}`, {
      method: 'PATCH',
      body: bytes.subarray(1000),
      headers: { 'Content-Range': '1000-2999' },
    });
    assert.equal(second.headers.get('range'), '0-2999');
    const done = await request(`${server.url}${location}?digest=${digest}`, { method: 'PUT' });
    assert.equal(done.status, 201);
    const blob = await request(`${server.url}/v2/up/app/blobs/${digest}`);
    assert.deepEqual(blob.body, bytes);
  });

  test('uploads: PATCH out of order returns 416 with the current range and keeps the bytes', async () => {
    const { bytes } = randomBlob(200);
    const location = await open();
    await request(`${server.url}${location}`, {
      method: 'PATCH',
      body: bytes.subarray(0, 100),
      headers: { 'Content-Range': '0-99' },
    });
    const skipped = await request(`${server.url}${location}`, {
      method: 'PATCH',
      body: bytes.subarray(0, 50),
      headers: { 'Content-Range': '150-199' },
    });
    assert.equal(skipped.status, 416);
    assert.equal(skipped.headers.get('range'), '0-99');
    const status = await request(`${server.url}${location}`);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-99');
  });

  test('uploads: streamed PATCH without Content-Range, as docker sends it, appends', async () => {
    const { bytes, digest } = randomBlob(5000);
    const location = await open();
    const patch = await request(`${server.url}${location}`, { method: 'PATCH', body: bytes });
    assert.equal(patch.status, 202);
    assert.equal(patch.headers.get('range'), '0-4999');
    const put = await request(`${server.url}${location}?digest=${digest}`, { method: 'PUT' });
    assert.equal(put.status, 201);
  });

  test('uploads: GET status of a new session answers 204 with Range 0-0 and Location', async () => {
    const location = await open();
    const reply = await request(`${server.url}${location}`);
    assert.equal(reply.status, 204);
    assert.equal(reply.headers.get('range'), '0-0');
    assert.equal(reply.headers.get('location'), location);
  });

  test('uploads: PUT with a wrong digest answers DIGEST_INVALID and stores nothing', async () => {
    const { bytes } = randomBlob();
    const wrong = sha256('something else');
    const location = await open();
    const reply = await request(`${server.url}${location}?digest=${wrong}`, {
      method: 'PUT',
      body: bytes,
    });
    assert.equal(reply.status, 400);
    assert.equal(errorCode(reply), 'DIGEST_INVALID');
    assert.equal((await head('up/app', wrong)).status, 404);
    assert.equal((await head('up/app', sha256(bytes))).status, 404);
    assert.equal((await request(`${server.url}${location}`)).status, 404);
  });

  test('uploads: PUT without a digest or with a malformed one answers DIGEST_INVALID', async () => {
    const location = await open();
    const missing = await request(`${server.url}${location}`, { method: 'PUT' });
    assert.equal(errorCode(missing), 'DIGEST_INVALID');
    const malformed = await request(`${server.url}${location}?digest=sha256:xyz`, {
      method: 'PUT',
    });
    assert.equal(errorCode(malformed), 'DIGEST_INVALID');
  });

  test('uploads: a chunk whose Content-Length disagrees with Content-Range answers SIZE_INVALID', async () => {
    const location = await open();
    const reply = await request(`${server.url}${location}`, {
      method: 'PATCH',
      body: Buffer.alloc(10),
      headers: { 'Content-Range': '0-19' },
    });
    assert.equal(reply.status, 400);
    assert.equal(errorCode(reply), 'SIZE_INVALID');
    assert.equal((await request(`${server.url}${location}`)).headers.get('range'), '0-0');
  });

  test('uploads: PATCH after the upload finished answers BLOB_UPLOAD_UNKNOWN', async () => {
    const { bytes, digest } = randomBlob();
    const location = await open();
    await request(`${server.url}${location}?digest=${digest}`, { method: 'PUT', body: bytes });
    const late = await request(`${server.url}${location}`, { method: 'PATCH', body: bytes });
    assert.equal(late.status, 404);
    assert.equal(errorCode(late), 'BLOB_UPLOAD_UNKNOWN');
  });

  test('uploads: DELETE cancels the session', async () => {
    const location = await open();
    assert.equal((await request(`${server.url}${location}`, { method: 'DELETE' })).status, 204);
    const gone = await request(`${server.url}${location}`);
    assert.equal(gone.status, 404);
    assert.equal(errorCode(gone), 'BLOB_UPLOAD_UNKNOWN');
  });

  test('uploads: a session is bound to its repository', async () => {
    const location = await open('up/one');
    const other = location.replace('/up/one/', '/up/two/');
    const reply = await request(`${server.url}${other}`);
    assert.equal(errorCode(reply), 'BLOB_UPLOAD_UNKNOWN');
  });

  test('uploads: unknown and malformed session ids answer BLOB_UPLOAD_UNKNOWN', async () => {
    for (const id of ['00000000-0000-0000-0000-000000000000', 'nope', '..%2F..%2Fetc']) {
      const reply = await request(`${server.url}/v2/up/app/blobs/uploads/${id}`);
      assert.equal(reply.status, 404, id);
      assert.equal(errorCode(reply), 'BLOB_UPLOAD_UNKNOWN');
    }
  });

  test('uploads: mount from a repository holding the blob answers 201 and links it', async () => {
    const { bytes } = randomBlob();
    const digest = await pushBlob(server.url, 'mount/source', bytes);
    const reply = await request(
      `${server.url}/v2/mount/target/blobs/uploads/?mount=${digest}&from=mount/source`,
      { method: 'POST' },
    );
    assert.equal(reply.status, 201);
    assert.equal(reply.headers.get('docker-content-digest'), digest);
    assert.equal((await head('mount/target', digest)).status, 200);
  });

  test('uploads: mount from a repository without the blob opens an ordinary upload', async () => {
    const { digest } = randomBlob();
    const reply = await request(
      `${server.url}/v2/mount/target/blobs/uploads/?mount=${digest}&from=mount/source`,
      { method: 'POST' },
    );
    assert.equal(reply.status, 202);
    assert.ok(reply.headers.get('location'));
    assert.equal((await head('mount/target', digest)).status, 404);
  });

  test('uploads: mount without from links a blob present elsewhere in the registry', async () => {
    const { bytes } = randomBlob();
    const digest = await pushBlob(server.url, 'mount/any', bytes);
    const reply = await request(`${server.url}/v2/mount/other/blobs/uploads/?mount=${digest}`, {
      method: 'POST',
    });
    assert.equal(reply.status, 201);
  });

  test('uploads: a blob pushed to one repository is not readable from another', async () => {
    const { bytes } = randomBlob();
    const digest = await pushBlob(server.url, 'iso/one', bytes);
    const reply = await request(`${server.url}/v2/iso/two/blobs/${digest}`);
    assert.equal(reply.status, 404);
    assert.equal(errorCode(reply), 'BLOB_UNKNOWN');
  });

  test('uploads: a truncated monolithic upload stores nothing', async () => {
    const { bytes, digest } = randomBlob(1000);
    const reply = await request(`${server.url}/v2/up/short/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      body: bytes.subarray(0, 10),
      headers: { 'Content-Range': '0-999' },
    });
    assert.equal(reply.status, 400);
    assert.equal((await head('up/short', digest)).status, 404);
  });

  test('uploads: a body above the in-memory size goes through the staging area and is verified', async () => {
    const { bytes, digest } = randomBlob(200_000);
    const location = await open('up/large');
    const wrong = await request(`${server.url}${location}?digest=${sha256('other')}`, {
      method: 'PUT',
      body: bytes,
    });
    assert.equal(errorCode(wrong), 'DIGEST_INVALID');
    assert.equal((await request(`${server.url}${location}`)).status, 404);

    const again = await open('up/large');
    const reply = await request(`${server.url}${again}?digest=${digest}`, {
      method: 'PUT',
      body: bytes,
    });
    assert.equal(reply.status, 201);
    assert.deepEqual((await request(`${server.url}/v2/up/large/blobs/${digest}`)).body, bytes);
    const staged = await readdir(join(server.root, 'uploads'));
    for (const id of [location, again].map((url) => url.split('/').pop()!)) {
      assert.ok(!staged.includes(id), `staging area ${id} was left`);
    }
  });

  test('uploads: a small PUT after an empty PATCH leaves no staging area behind', async () => {
    const { bytes, digest } = randomBlob(100);
    const location = await open('up/empty-patch');
    const patch = await request(`${server.url}${location}`, {
      method: 'PATCH',
      body: Buffer.alloc(0),
    });
    assert.equal(patch.status, 202);
    const reply = await request(`${server.url}${location}?digest=${digest}`, {
      method: 'PUT',
      body: bytes,
    });
    assert.equal(reply.status, 201);
    assert.deepEqual(
      (await request(`${server.url}/v2/up/empty-patch/blobs/${digest}`)).body,
      bytes,
    );
    const id = location.split('/').pop()!;
    assert.ok(!(await readdir(join(server.root, 'uploads'))).includes(id));
  });

  test('uploads: a PUT without a body on a new session stores the empty blob', async () => {
    const digest = sha256(Buffer.alloc(0));
    const location = await open('up/empty');
    const reply = await request(`${server.url}${location}?digest=${digest}`, { method: 'PUT' });
    assert.equal(reply.status, 201);
    const blob = await head('up/empty', digest);
    assert.equal(blob.status, 200);
    assert.equal(blob.headers.get('content-length'), '0');
  });

  test('uploads: sha512 digests are verified and accepted', async () => {
    const { bytes } = randomBlob();
    const { createHash } = await import('node:crypto');
    const digest = `sha512:${createHash('sha512').update(bytes).digest('hex')}`;
    const location = await open();
    const reply = await request(`${server.url}${location}?digest=${digest}`, {
      method: 'PUT',
      body: bytes,
    });
    assert.equal(reply.status, 201);
    const blob = await request(`${server.url}/v2/up/app/blobs/${digest}`);
    assert.deepEqual(blob.body, bytes);
  });
});

describe('uploads across a restart', () => {
  test('uploads: a session survives a restart of the server and can be resumed', async () => {
    const { bytes, digest } = randomBlob(2048);
    let server = await startApiServer();
    const opened = await request(`${server.url}/v2/resume/app/blobs/uploads/`, { method: 'POST' });
    const location = opened.headers.get('location')!;
    await request(`${server.url}${location}`, {
      method: 'PATCH',
      body: bytes.subarray(0, 1024),
      headers: { 'Content-Range': '0-1023' },
    });
    await server.close(true);

    server = await startApiServer({}, server.root);
    try {
      const status = await request(`${server.url}${location}`);
      assert.equal(status.status, 204);
      assert.equal(status.headers.get('range'), '0-1023');
      await request(`${server.url}${location}`, {
        method: 'PATCH',
        body: bytes.subarray(1024),
        headers: { 'Content-Range': '1024-2047' },
      });
      const done = await request(`${server.url}${location}?digest=${digest}`, { method: 'PUT' });
      assert.equal(done.status, 201);
    } finally {
      await server.close();
    }
  });
});
