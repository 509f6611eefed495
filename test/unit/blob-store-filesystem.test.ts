import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { FilesystemBlobStore } from '../../src/storage/filesystem-blob-store.js';
import { describeBlobStore } from './blob-store-suite.js';

describeBlobStore('filesystem', async () => {
  const root = await mkdtemp(join(tmpdir(), 'berth-blob-store-'));
  const store = new FilesystemBlobStore(root);
  await store.init();
  return { store, cleanup: () => rm(root, { recursive: true, force: true }) };
});

/** A fresh store in its own temporary directory, removed after `body`. */
async function withStore(
  body: (store: FilesystemBlobStore, root: string) => Promise<void>,
): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'berth-blob-store-fs-'));
  try {
    const store = new FilesystemBlobStore(root);
    await store.init();
    await body(store, root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

test('blob store (filesystem): a blob lands at blobs/<algorithm>/<2 hex>/<hex>', async () => {
  await withStore(async (store, root) => {
    const written = Buffer.from('written');
    const sha256 = hexOf(written, 'sha256');
    await store.write(`sha256:${sha256}`, written);
    const path256 = join(root, 'blobs', 'sha256', sha256.slice(0, 2), sha256);
    assert.deepEqual(await readFile(path256), written);

    const committed = Buffer.from('committed');
    const sha512 = hexOf(committed, 'sha512');
    const id = randomUUID();
    await store.appendUpload(id, 0, Readable.from([committed]));
    await store.commitUpload(id, `sha512:${sha512}`);
    const path512 = join(root, 'blobs', 'sha512', sha512.slice(0, 2), sha512);
    assert.deepEqual(await readFile(path512), committed);
  });
});

test('blob store (filesystem): no file is left in tmp/ or uploads/ after writes', async () => {
  await withStore(async (store, root) => {
    const bytes = Buffer.from('twice');
    const digest = `sha256:${hexOf(bytes, 'sha256')}`;
    await store.write(digest, bytes);
    await store.write(digest, bytes);
    await store.write(`sha512:${hexOf(bytes, 'sha512')}`, bytes);
    for (const id of [randomUUID(), randomUUID()]) {
      await store.appendUpload(id, 0, Readable.from([bytes]));
      await store.commitUpload(id, digest);
    }
    const aborted = randomUUID();
    await store.appendUpload(aborted, 0, Readable.from([]));
    await store.abortUpload(aborted);

    assert.deepEqual(await readdir(join(root, 'tmp')), []);
    assert.deepEqual(await readdir(join(root, 'uploads')), []);
  });
});

test('blob store (filesystem): init is idempotent and keeps stored blobs', async () => {
  await withStore(async (store, root) => {
    const bytes = Buffer.from('kept');
    const digest = `sha256:${hexOf(bytes, 'sha256')}`;
    await store.write(digest, bytes);

    const reopened = new FilesystemBlobStore(root);
    await reopened.init();
    assert.equal(await reopened.stat(digest), bytes.length);
    assert.match(reopened.description, /^filesystem /);
  });
});

const badDigests = [
  '../x',
  'sha256:../../etc',
  'sha256:../../../victim',
  `sha256:..${'a'.repeat(62)}`,
  `sha256:${'a'.repeat(63)}/`,
  'sha256:',
  '',
];
const badIds = ['../x', '../../victim', '..', '', `${randomUUID()}/../../victim`];

test('blob store (filesystem): invalid digests are refused and touch nothing', async () => {
  await withEscapeWatch(async (store, snapshot) => {
    const id = randomUUID();
    await store.appendUpload(id, 0, Readable.from([Buffer.from('staged')]));
    const before = await snapshot();

    for (const digest of badDigests) {
      await refuses(() => store.stat(digest), /Not a digest/);
      await refuses(() => store.read(digest), /Not a digest/);
      await refuses(() => store.readAll(digest), /Not a digest/);
      await refuses(() => store.write(digest, Buffer.from('x')), /Not a digest/);
      await refuses(() => store.delete(digest), /Not a digest/);
      await refuses(() => store.commitUpload(id, digest), /Not a digest/);
    }
    assert.deepEqual(await snapshot(), before);
    assert.equal(await store.uploadSize(id), 6);
  });
});

test('blob store (filesystem): invalid upload ids are refused and touch nothing', async () => {
  await withEscapeWatch(async (store, snapshot) => {
    const digest = `sha256:${hexOf(Buffer.from('x'), 'sha256')}`;
    const before = await snapshot();

    for (const id of badIds) {
      await refuses(() => store.uploadSize(id), /Not an upload id/);
      const source = Readable.from([Buffer.from('x')]);
      await refuses(() => store.appendUpload(id, 0, source), /Not an upload id/);
      source.destroy();
      await refuses(() => store.readUpload(id), /Not an upload id/);
      await refuses(() => store.commitUpload(id, digest), /Not an upload id/);
      await refuses(() => store.abortUpload(id), /Not an upload id/);
    }
    assert.deepEqual(await snapshot(), before);
  });
});

/**
 * Runs `body` on a store whose root sits in a directory that also holds
 * victim files where a path traversal would land (`<parent>/x`,
 * `<parent>/victim`, `<parent>/etc`), then checks they are intact.
 */
async function withEscapeWatch(
  body: (store: FilesystemBlobStore, snapshot: () => Promise<Tree>) => Promise<void>,
): Promise<void> {
  const parent = await mkdtemp(join(tmpdir(), 'berth-blob-store-escape-'));
  try {
    const root = join(parent, 'nested', 'root');
    await mkdir(root, { recursive: true });
    const victims = ['x', 'victim', 'etc', join('nested', 'x'), join('nested', 'victim')];
    for (const victim of victims) await writeFile(join(parent, victim), 'victim');
    const store = new FilesystemBlobStore(root);
    await store.init();

    await body(store, () => snapshotTree(parent));
    for (const victim of victims) {
      assert.equal(await readFile(join(parent, victim), 'utf8'), 'victim', victim);
    }
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
}

type Tree = Record<string, string>;

/** Every file and directory under `parent`, with each file's contents. */
async function snapshotTree(parent: string): Promise<Tree> {
  const entries: Tree = {};
  for (const entry of await readdir(parent, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    const key = relative(parent, path);
    entries[key] = entry.isDirectory() ? '<dir>' : await readFile(path, 'utf8');
  }
  return entries;
}

/** The call must return a rejected promise, never throw synchronously. */
async function refuses(call: () => Promise<unknown>, message: RegExp): Promise<void> {
  let promise: Promise<unknown>;
  try {
    promise = call();
  } catch (error) {
    assert.fail(`threw synchronously instead of rejecting: ${String(error)}`);
  }
  await assert.rejects(promise, message);
}

function hexOf(bytes: Uint8Array, algorithm: 'sha256' | 'sha512'): string {
  return createHash(algorithm).update(bytes).digest('hex');
}

test('blob store (filesystem): sweepTemporaryFiles removes only old files of tmp/', async () => {
  await withStore(async (store, root) => {
    await writeFile(join(root, 'tmp', 'old'), 'crashed write');
    await writeFile(join(root, 'tmp', 'new'), 'in flight');
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(join(root, 'tmp', 'old'), hourAgo, hourAgo);
    const before = Date.now() - 60_000;

    assert.deepEqual(await store.sweepTemporaryFiles(before, true), { files: 1, bytes: 13 });
    assert.deepEqual((await readdir(join(root, 'tmp'))).sort(), ['new', 'old']);
    assert.deepEqual(await store.sweepTemporaryFiles(before, false), { files: 1, bytes: 13 });
    assert.deepEqual(await readdir(join(root, 'tmp')), ['new']);
  });
});
