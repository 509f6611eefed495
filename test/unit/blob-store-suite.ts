import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { test } from 'node:test';
import type { BlobStore } from '../../src/storage/blob-store.js';

/**
 * The conformance suite of the blob store contract (src/storage/blob-store.ts).
 * Every driver runs it: each test opens a fresh, empty store and cleans it up
 * afterwards, whatever the outcome.
 */

export interface OpenedBlobStore {
  store: BlobStore;
  cleanup(): Promise<void>;
}

type StoreTest = (store: BlobStore) => Promise<void>;

export function describeBlobStore(name: string, open: () => Promise<OpenedBlobStore>): void {
  const it: It = (behaviour, body, timeout = 30_000) => {
    test(`blob store (${name}): ${behaviour}`, { timeout }, async () => {
      const opened = await open();
      try {
        await body(opened.store);
      } finally {
        await opened.cleanup();
      }
    });
  };

  describeCommittedBlobs(it);
  describeUploads(it);
  describeFailedAppends(it);
  describeLargeUpload(it);
}

type It = (behaviour: string, body: StoreTest, timeout?: number) => void;

function describeCommittedBlobs(it: It): void {
  it('stat of an absent blob is undefined', async (store) => {
    assert.equal(await store.stat(digestOf(Buffer.from('absent'))), undefined);
  });

  it('write, readAll and stat round-trip the bytes', async (store) => {
    const bytes = Buffer.from('{"schemaVersion":2}');
    const digest = digestOf(bytes);
    await store.write(digest, bytes);

    assert.equal(await store.stat(digest), bytes.length);
    assert.deepEqual(await store.readAll(digest), bytes);
  });

  it('read streams the whole blob, or an inclusive byte range', async (store) => {
    const bytes = Buffer.from('0123456789abcdef');
    const digest = digestOf(bytes);
    await store.write(digest, bytes);

    assert.equal(await text(store.read(digest)), '0123456789abcdef');
    assert.equal(await text(store.read(digest, { start: 2, end: 5 })), '2345');
    assert.equal(await text(store.read(digest, { start: 15, end: 15 })), 'f');
  });

  it('read and readAll of an absent blob reject with code ENOENT', async (store) => {
    const digest = digestOf(Buffer.from('absent'));
    await assert.rejects(store.read(digest), { code: 'ENOENT' });
    await assert.rejects(store.read(digest, { start: 0, end: 1 }), { code: 'ENOENT' });
    await assert.rejects(store.readAll(digest), { code: 'ENOENT' });
  });

  it('delete removes a blob and is idempotent', async (store) => {
    const bytes = Buffer.from('to delete');
    const digest = digestOf(bytes);
    await store.write(digest, bytes);

    await store.delete(digest);
    assert.equal(await store.stat(digest), undefined);
    await store.delete(digest);
    await store.delete(digestOf(Buffer.from('never stored')));
  });

  it('list yields every committed sha256 and sha512 digest', async (store) => {
    const first = Buffer.from('first');
    const second = Buffer.from('second');
    const expected = [digestOf(first), digestOf(second, 'sha512')];
    await store.write(expected[0]!, first);
    await store.write(expected[1]!, second);
    await startWith(store, 'staged, not committed');

    assert.deepEqual((await listAll(store)).sort(), expected.sort());
  });

  it('list of an empty store yields nothing', async (store) => {
    assert.deepEqual(await listAll(store), []);
  });

  it('inspect tells the size of a blob and when it was written', async (store) => {
    const bytes = Buffer.from('inspected');
    const digest = digestOf(bytes);
    const before = Date.now() - 2000;
    await store.write(digest, bytes);

    const info = await store.inspect(digest);
    assert.equal(info?.size, bytes.length);
    assert.ok(info && info.modifiedAt >= before && info.modifiedAt <= Date.now() + 2000);
    assert.equal(await store.inspect(digestOf(Buffer.from('absent'))), undefined);
  });
}

function describeUploads(it: It): void {
  it('an upload grows by appends and commits to its digest', async (store) => {
    const id = randomUUID();
    const head = Buffer.from('hello, ');
    const tail = Buffer.from('world');
    const digest = digestOf(Buffer.concat([head, tail]));
    assert.equal(await store.uploadSize(id), undefined, 'no staging area before the first append');

    assert.equal(await store.appendUpload(id, 0, Readable.from([head])), head.length);
    assert.equal(await store.uploadSize(id), head.length);
    const total = await store.appendUpload(id, head.length, Readable.from([tail]));
    assert.equal(total, head.length + tail.length);
    assert.equal(await text(store.readUpload(id)), 'hello, world');
    assert.equal(await store.stat(digest), undefined, 'staged bytes are not a blob yet');

    await store.commitUpload(id, digest);
    assert.equal(await store.uploadSize(id), undefined);
    assert.equal(await store.stat(digest), total);
    assert.equal(await text(store.read(digest)), 'hello, world');
  });

  it('an empty upload commits to the empty blob', async (store) => {
    const id = randomUUID();
    const digest = digestOf(Buffer.alloc(0));
    assert.equal(await store.appendUpload(id, 0, Readable.from([])), 0);
    assert.equal(await store.uploadSize(id), 0, 'an append without bytes makes the staging area');

    await store.commitUpload(id, digest);
    assert.equal(await store.stat(digest), 0);
    assert.deepEqual(await store.readAll(digest), Buffer.alloc(0));
  });

  it('uploadSize of an unknown session is undefined', async (store) => {
    assert.equal(await store.uploadSize(randomUUID()), undefined);
  });

  it('appendUpload at a wrong offset rejects and changes nothing', async (store) => {
    const id = await startWith(store, 'abc');

    for (const offset of [0, 2, 4]) {
      const source = Readable.from([Buffer.from('zzz')]);
      await assert.rejects(store.appendUpload(id, offset, source));
      source.destroy();
    }
    assert.equal(await store.uploadSize(id), 3);
    assert.equal(await text(store.readUpload(id)), 'abc');
  });

  it('committing the same digest from two sessions keeps one blob', async (store) => {
    const bytes = Buffer.from('same bytes twice');
    const digest = digestOf(bytes);
    const sessions = [randomUUID(), randomUUID()];
    for (const id of sessions) await store.appendUpload(id, 0, Readable.from([bytes]));

    for (const id of sessions) await store.commitUpload(id, digest);
    assert.equal(await store.stat(digest), bytes.length);
    assert.deepEqual(await store.readAll(digest), bytes);
    assert.deepEqual(await listAll(store), [digest]);
    for (const id of sessions) assert.equal(await store.uploadSize(id), undefined);
  });

  it('listUploads yields every staging area with its size', async (store) => {
    const empty = randomUUID();
    const grown = await startWith(store, 'staged');
    await store.appendUpload(empty, 0, Readable.from([]));

    const staged = [];
    for await (const upload of store.listUploads()) staged.push(upload);
    staged.sort((a, b) => a.size - b.size);
    assert.deepEqual(
      staged.map(({ id, size }) => ({ id, size })),
      [
        { id: empty, size: 0 },
        { id: grown, size: 6 },
      ],
    );
    assert.ok(staged.every((upload) => upload.modifiedAt > Date.now() - 60_000));
  });

  it('abortUpload removes the staged bytes and is idempotent', async (store) => {
    const id = await startWith(store, 'discard me');

    await store.abortUpload(id);
    assert.equal(await store.uploadSize(id), undefined);
    await store.abortUpload(id);
    await store.abortUpload(randomUUID());
    assert.deepEqual(await listAll(store), []);
  });
}

function describeFailedAppends(it: It): void {
  it('an append whose source errors midway leaves the old size', async (store) => {
    const id = await startWith(store, 'kept');
    const source = stalledSource(4);

    const append = store.appendUpload(id, 4, source.stream);
    await source.stalled;
    source.stream.destroy(new Error('client went away'));
    await assert.rejects(append, /client went away/);

    assert.equal(await store.uploadSize(id), 4);
    assert.equal(await text(store.readUpload(id)), 'kept');
    assert.equal(await store.appendUpload(id, 4, Readable.from([Buffer.from('!')])), 5);
  });

  it('an append aborted by its signal midway leaves the old size', async (store) => {
    const id = await startWith(store, 'kept');
    const source = stalledSource(4);
    const controller = new AbortController();

    const append = store.appendUpload(id, 4, source.stream, controller.signal);
    await source.stalled;
    controller.abort();
    await assert.rejects(append);

    assert.equal(await store.uploadSize(id), 4);
    assert.equal(await text(store.readUpload(id)), 'kept');
  });
}

function describeLargeUpload(it: It): void {
  const chunkSize = 1024 * 1024;
  const chunks = 64;

  it('a 64 MiB append round-trips with the right sha256', async (store) => {
    const id = randomUUID();
    const generated = generatedSource(chunks, chunkSize);

    const size = await store.appendUpload(id, 0, generated.stream);
    assert.equal(size, chunks * chunkSize);
    const digest = generated.digest();
    assert.deepEqual(await hashStream(await store.readUpload(id)), { digest, size });

    await store.commitUpload(id, digest);
    assert.equal(await store.stat(digest), size);
    assert.deepEqual(await hashStream(await store.read(digest)), { digest, size });
  }, 120_000);
}

async function startWith(store: BlobStore, text: string): Promise<string> {
  const id = randomUUID();
  await store.appendUpload(id, 0, Readable.from([Buffer.from(text)]));
  return id;
}

interface StalledSource {
  stream: Readable;
  stalled: Promise<void>;
}

/**
 * A client that sends some chunks and then goes quiet: `stalled` resolves a
 * little after the last chunk was taken, so the driver has had time to write
 * those bytes before the test fails the append.
 */
function stalledSource(count: number): StalledSource {
  let sent = 0;
  let markStalled: () => void = () => undefined;
  const stalled = new Promise<void>((resolve) => (markStalled = resolve));
  const stream = new Readable({
    read() {
      if (sent < count) {
        sent += 1;
        this.push(Buffer.alloc(64 * 1024, sent));
      } else {
        void delay(50).then(markStalled);
      }
    },
  });
  return { stream, stalled };
}

interface GeneratedSource {
  stream: Readable;
  /** The sha256 digest of every byte produced, once the stream has ended. */
  digest(): string;
}

/** Deterministic bytes made chunk by chunk, hashed as they are produced. */
function generatedSource(count: number, size: number): GeneratedSource {
  const hash = createHash('sha256');
  let index = 0;
  const stream = new Readable({
    read() {
      if (index === count) {
        this.push(null);
        return;
      }
      const chunk = Buffer.alloc(size, index * 7 + 1);
      chunk.writeUInt32BE(index, 0);
      index += 1;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, digest: () => `sha256:${hash.digest('hex')}` };
}

interface HashedSize {
  digest: string;
  size: number;
}

async function hashStream(stream: Readable): Promise<HashedSize> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

async function text(opening: Promise<Readable>): Promise<string> {
  return (await collect(await opening)).toString();
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function listAll(store: BlobStore): Promise<string[]> {
  const digests: string[] = [];
  for await (const digest of store.list()) digests.push(digest);
  return digests;
}

function digestOf(bytes: Uint8Array, algorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
