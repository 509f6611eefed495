import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { openSqliteMetadataStore } from '../../src/metadata/sql/sqlite.js';
import { describeMetadataStore, digestOf } from './metadata-store-suite.js';

describeMetadataStore('SQLite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-metadata-'));
  const store = await openSqliteMetadataStore(join(dir, 'metadata.db'));
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

/** Two stores on one file, as two `berth serve` processes of one machine have. */
async function openTwice() {
  const dir = await mkdtemp(join(tmpdir(), 'berth-metadata-'));
  const path = join(dir, 'metadata.db');
  const stores = [await openSqliteMetadataStore(path), await openSqliteMetadataStore(path)];
  const cleanup = async () => {
    await Promise.all(stores.map((store) => store.close()));
    await rm(dir, { recursive: true, force: true });
  };
  return { stores, cleanup };
}

describe('metadata store on SQLite, shared by two processes', () => {
  it('metadata: two stores on one file migrate at the same time', async () => {
    const { stores, cleanup } = await openTwice();
    try {
      await Promise.all(stores.map((store) => store.migrate()));
      await stores[0]?.linkBlob('app', { digest: digestOf('layer'), size: 1 });
      assert.equal(await stores[1]?.repositoryExists('app'), true);
    } finally {
      await cleanup();
    }
  });

  it('metadata: two stores on one file interleave writes without SQLITE_BUSY', async () => {
    const { stores, cleanup } = await openTwice();
    try {
      await stores[0]?.migrate();
      const labels = Array.from({ length: 100 }, (_, i) => `image-${i}`);
      await Promise.all(labels.map((label, i) => pushFrom(stores[i % 2], label)));

      for (const store of stores) {
        const tags = await store?.listTags('app', { limit: 1000 });
        assert.equal(tags?.length, labels.length + 1);
      }
    } finally {
      await cleanup();
    }
  });
});

describe('metadata store on SQLite, remembered pull lookups', () => {
  it('metadata: a tag, manifest or link read again reflects every write since, from either store', async () => {
    await withReaderAndWriter(async (reader, writer) => {
      await pushFrom(writer, 'one');
      assert.equal((await reader.resolveTag('app', 'latest'))?.digest, digestOf('one'));
      assert.equal((await reader.resolveTag('app', 'latest'))?.digest, digestOf('one'));

      // Another connection moves the tag, then deletes the first manifest.
      await pushFrom(writer, 'two');
      assert.equal((await reader.resolveTag('app', 'latest'))?.digest, digestOf('two'));
      assert.ok(await reader.getManifest('app', digestOf('one')));
      assert.equal(await writer.deleteManifest('app', digestOf('one')), true);
      assert.equal(await reader.getManifest('app', digestOf('one')), undefined);
      assert.equal(await reader.resolveTag('app', 'one'), undefined);

      // The reader's own writes: a tag it moves, a link it removes.
      await pushFrom(reader, 'three');
      assert.equal((await reader.resolveTag('app', 'latest'))?.digest, digestOf('three'));
      const layer = digestOf('three/layer');
      assert.ok(await reader.getLinkedBlob('app', layer));
      await reader.linkBlob('other', { digest: layer, size: 1 });
      assert.ok(await reader.getLinkedBlob('other', layer));
      assert.equal(await reader.unlinkBlob('other', layer), true);
      assert.equal(await reader.getLinkedBlob('other', layer), undefined);
      assert.ok(await writer.getLinkedBlob('app', layer));
    });
  });

  it('metadata: a tag list read again reflects tags added and removed since, from either store', async () => {
    await withReaderAndWriter(async (reader, writer) => {
      await pushFrom(writer, 'one');
      const page = { limit: 100 };
      assert.deepEqual(await reader.listTags('app', page), ['latest', 'one']);
      const answer = await reader.listTags('app', page);
      answer?.push('changed by the caller');
      assert.deepEqual(await reader.listTags('app', page), ['latest', 'one']);
      assert.deepEqual(await reader.listTags('app', { limit: 100, last: 'latest' }), ['one']);

      await pushFrom(writer, 'two');
      assert.deepEqual(await reader.listTags('app', page), ['latest', 'one', 'two']);
      assert.equal(await reader.deleteTag('app', 'one'), true);
      assert.deepEqual(await reader.listTags('app', page), ['latest', 'two']);
      assert.equal(await reader.listTags('nothing-here', page), undefined);
    });
  });
});

/** Two migrated stores on one file: one reads, the other writes. */
async function withReaderAndWriter(
  body: (reader: SqliteStore, writer: SqliteStore) => Promise<void>,
): Promise<void> {
  const { stores, cleanup } = await openTwice();
  const [reader, writer] = stores;
  assert.ok(reader && writer);
  try {
    await reader.migrate();
    await body(reader, writer);
  } finally {
    await cleanup();
  }
}

type SqliteStore = Awaited<ReturnType<typeof openSqliteMetadataStore>>;

/** Links an image's blob and pushes it, tagged twice: five writes, three in transactions. */
async function pushFrom(
  store: Awaited<ReturnType<typeof openSqliteMetadataStore>> | undefined,
  label: string,
) {
  assert.ok(store);
  await store.linkBlob('app', { digest: digestOf(`${label}/layer`), size: 1 });
  const manifest = {
    digest: digestOf(label),
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: 100,
    artifactType: null,
    subject: null,
    annotations: null,
    references: [{ digest: digestOf(`${label}/layer`), kind: 'blob' as const }],
  };
  assert.deepEqual(await store.putManifest('app', manifest, label), { ok: true });
  assert.deepEqual(await store.putManifest('app', manifest, 'latest'), { ok: true });
  await store.createUpload({ id: label, repository: 'app', startedAt: 1, updatedAt: 1 });
  await store.touchUpload(label, 2);
}
