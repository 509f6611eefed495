import type { BlobRecord } from '../../src/metadata/metadata-store.js';
import assert from 'node:assert/strict';

import type { MetadataStore, NewManifest } from '../../src/metadata/metadata-store.js';
import { digestOf, type StoreTest } from './metadata-store-suite.js';

/**
 * The metadata store's conformance tests for usage, quotas, retention and
 * immutable tags; part of the suite every implementation runs
 * (metadata-store-suite.ts).
 */

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

interface Blob {
  label: string;
  size: number;
}

function manifest(label: string, blobs: Blob[], overrides: Partial<NewManifest> = {}) {
  return {
    digest: digestOf(label),
    mediaType: OCI_MANIFEST,
    size: 500,
    artifactType: null,
    subject: null,
    annotations: null,
    references: blobs.map((blob) => ({ digest: digestOf(blob.label), kind: 'blob' as const })),
    ...overrides,
  };
}

/** Links the blobs and pushes a manifest of them. */
async function push(
  store: MetadataStore,
  repository: string,
  image: NewManifest,
  blobs: Blob[],
  tag?: string,
) {
  for (const blob of blobs) {
    await store.linkBlob(repository, { digest: digestOf(blob.label), size: blob.size });
  }
  assert.deepEqual(await store.putManifest(repository, image, tag), { ok: true });
}

/** An index of child manifests already pushed. */
function index(label: string, children: string[], overrides: Partial<NewManifest> = {}) {
  return manifest(label, [], {
    mediaType: OCI_INDEX,
    size: 300,
    references: children.map((child) => ({ digest: digestOf(child), kind: 'manifest' as const })),
    ...overrides,
  });
}

async function inBatches<T>(items: T[], size: number, work: (item: T) => Promise<unknown>) {
  for (let start = 0; start < items.length; start += size) {
    await Promise.all(items.slice(start, start + size).map(work));
  }
}

export function describeUsage(storeTest: StoreTest) {
  storeTest('metadata: usage of two repositories sharing a layer is exact', async (store) => {
    const shared = { label: 'shared-layer', size: 1000 };
    const appBlobs = [{ label: 'app/config', size: 100 }, shared];
    const otherBlobs = [{ label: 'other/config', size: 200 }, shared];
    await push(store, 'app', manifest('app', appBlobs, { size: 500 }), appBlobs, 'v1');
    await push(store, 'other', manifest('other', otherBlobs, { size: 300 }), otherBlobs, 'v1');

    const app = {
      repository: 'app',
      objects: 3,
      storedBytes: 1600,
      uniqueBytes: 600,
      sharedBytes: 1000,
    };
    const other = {
      repository: 'other',
      objects: 3,
      storedBytes: 1500,
      uniqueBytes: 500,
      sharedBytes: 1000,
    };
    assert.deepEqual(await store.measureUsage(), {
      repositories: [app, other],
      total: { repositories: 2, objects: 5, storedBytes: 2100, sharedBytes: 1000 },
    });
    assert.deepEqual(await store.measureRepositoryUsage('app'), app);
    assert.deepEqual(await store.measureRepositoryUsage('other'), other);
  });

  storeTest(
    'metadata: usage counts each digest once, linked or referenced by any manifest',
    async (store) => {
      const layer = { label: 'layer', size: 1000 };
      await push(store, 'app', manifest('one', [layer], { size: 10 }), [layer], 'one');
      await push(store, 'app', manifest('two', [layer], { size: 20 }), [layer], 'two');
      await store.linkBlob('app', { digest: digestOf('loose'), size: 5 });
      assert.equal(await store.unlinkBlob('app', digestOf('layer')), true);

      const usage = await store.measureRepositoryUsage('app');
      assert.deepEqual(usage, {
        repository: 'app',
        objects: 4,
        storedBytes: 1035,
        uniqueBytes: 1035,
        sharedBytes: 0,
      });
    },
  );

  storeTest('metadata: one manifest pushed into two repositories is shared', async (store) => {
    const layer = { label: 'layer', size: 1000 };
    await push(store, 'a', manifest('same', [layer], { size: 50 }), [layer]);
    await push(store, 'b', manifest('same', [layer], { size: 50 }), [layer]);
    const usage = await store.measureUsage();
    assert.deepEqual(
      usage.repositories.map((each) => [each.repository, each.uniqueBytes, each.sharedBytes]),
      [
        ['a', 0, 1050],
        ['b', 0, 1050],
      ],
    );
    assert.deepEqual(usage.total, {
      repositories: 2,
      objects: 2,
      storedBytes: 1050,
      sharedBytes: 1050,
    });
  });

  storeTest('metadata: an unknown or emptied repository has no usage', async (store) => {
    assert.equal(await store.measureRepositoryUsage('unknown'), undefined);
    await store.linkBlob('app', { digest: digestOf('layer'), size: 1 });
    await store.unlinkBlob('app', digestOf('layer'));
    assert.equal(await store.measureRepositoryUsage('app'), undefined);
    assert.deepEqual(await store.measureUsage(), {
      repositories: [],
      total: { repositories: 0, objects: 0, storedBytes: 0, sharedBytes: 0 },
    });
  });

  storeTest('metadata: usage over thousands of blobs is exact', async (store) => {
    // Blob i has i + 1 bytes; "a" links 0..999, "b" links 500..1499.
    const link = (repository: string) => async (i: number) =>
      store.linkBlob(repository, { digest: digestOf(`blob-${i}`), size: i + 1 });
    const range = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => from + i);
    await inBatches(range(0, 1000), 50, link('a'));
    await inBatches(range(500, 1500), 50, link('b'));

    const usage = await store.measureUsage();
    const sum = (from: number, to: number) => ((to - from) * (from + 1 + to)) / 2;
    assert.deepEqual(usage.repositories, [
      {
        repository: 'a',
        objects: 1000,
        storedBytes: sum(0, 1000),
        uniqueBytes: sum(0, 500),
        sharedBytes: sum(500, 1000),
      },
      {
        repository: 'b',
        objects: 1000,
        storedBytes: sum(500, 1500),
        uniqueBytes: sum(1000, 1500),
        sharedBytes: sum(500, 1000),
      },
    ]);
    assert.deepEqual(usage.total, {
      repositories: 2,
      objects: 1500,
      storedBytes: sum(0, 1500),
      sharedBytes: sum(500, 1000),
    });
    assert.deepEqual(await store.measureRepositoryUsage('b'), usage.repositories[1]);
  });
}

export function describeQuotaLinks(storeTest: StoreTest) {
  storeTest(
    'metadata: measureStoredBytes tells the bytes and whether a digest is held',
    async (store) => {
      const layer = { label: 'layer', size: 1000 };
      await push(store, 'app', manifest('one', [layer], { size: 10 }), [layer], 'one');
      assert.deepEqual(await store.measureStoredBytes('app', digestOf('layer')), {
        storedBytes: 1010,
        holds: true,
      });
      assert.deepEqual(await store.measureStoredBytes('app', digestOf('one')), {
        storedBytes: 1010,
        holds: true,
      });
      assert.deepEqual(await store.measureStoredBytes('app', digestOf('new')), {
        storedBytes: 1010,
        holds: false,
      });
      assert.deepEqual(await store.measureStoredBytes('unknown', digestOf('layer')), {
        storedBytes: 0,
        holds: false,
      });
    },
  );

  storeTest('metadata: linkBlobWithinQuota links up to the limit, then refuses', async (store) => {
    const blob = (label: string, size: number) => ({ digest: digestOf(label), size });
    const link = async (repository: string, record: BlobRecord, limit: number) => {
      await store.claimBlob(record);
      return store.linkBlobWithinQuota(repository, record, limit);
    };
    assert.deepEqual(await link('app', blob('x', 600), 1000), { ok: true });
    assert.deepEqual(await link('app', blob('y', 500), 1000), {
      ok: false,
      storedBytes: 600,
    });
    assert.equal(await store.getLinkedBlob('app', digestOf('y')), undefined);
    assert.equal(await store.findBlob(digestOf('y')), undefined);

    assert.deepEqual(await link('app', blob('x', 600), 100), { ok: true });
    assert.deepEqual(await link('app', blob('z', 400), 1000), { ok: true });
    assert.equal((await store.measureRepositoryUsage('app'))?.storedBytes, 1000);
    assert.deepEqual(await link('other', blob('y', 500), 1000), {
      ok: true,
    });
  });

  storeTest(
    'metadata: blobs linked at once within a quota never pass it together',
    async (store) => {
      const blobs = Array.from({ length: 10 }, (_, i) => ({
        digest: digestOf(`b${i}`),
        size: 300,
      }));
      for (const blob of blobs) await store.claimBlob(blob);
      const results = await Promise.all(
        blobs.map((blob) => store.linkBlobWithinQuota('app', blob, 1000)),
      );
      assert.equal(results.filter((result) => result.ok).length, 3);
      assert.equal((await store.measureRepositoryUsage('app'))?.storedBytes, 900);
    },
  );

  storeTest(
    'metadata: linkBlobWithinQuota of a blob whose record is gone links nothing',
    async (store) => {
      const gone = { digest: digestOf('collected'), size: 10 };
      assert.deepEqual(await store.linkBlobWithinQuota('app', gone, 1000), {
        ok: false,
        gone: true,
      });
      assert.equal(await store.getLinkedBlob('app', gone.digest), undefined);
    },
  );
}

export function describeRetentionQueries(storeTest: StoreTest) {
  storeTest(
    'metadata: listRepositoryContent lists tags, manifests, children and subjects',
    async (store) => {
      const layer = { label: 'layer', size: 10 };
      await push(store, 'app', manifest('amd64', [layer]), [layer]);
      await push(store, 'app', manifest('arm64', [layer]), [layer]);
      await push(store, 'app', index('multi', ['amd64', 'arm64']), [], 'latest');
      await push(store, 'app', manifest('sig', [layer], { subject: digestOf('multi') }), []);

      const content = await store.listRepositoryContent('app');
      assert.deepEqual(
        content.tags.map(({ name, digest }) => ({ name, digest })),
        [{ name: 'latest', digest: digestOf('multi') }],
      );
      assert.ok((content.tags[0]?.updatedAt ?? 0) > 0);
      const byDigest = new Map(content.manifests.map((node) => [node.digest, node]));
      assert.equal(byDigest.size, 4);
      assert.deepEqual(
        byDigest.get(digestOf('multi'))?.children.sort(),
        [digestOf('amd64'), digestOf('arm64')].sort(),
      );
      assert.equal(byDigest.get(digestOf('multi'))?.mediaType, OCI_INDEX);
      assert.equal(byDigest.get(digestOf('sig'))?.subject, digestOf('multi'));
      assert.deepEqual(byDigest.get(digestOf('amd64'))?.children, []);
      assert.deepEqual(await store.listRepositoryContent('unknown'), { tags: [], manifests: [] });
    },
  );

  storeTest(
    'metadata: deleteTagIfUnchanged leaves a tag that moved or was pushed again',
    async (store) => {
      const layer = { label: 'layer', size: 10 };
      await push(store, 'app', manifest('one', [layer]), [layer], 'latest');
      await push(store, 'app', manifest('two', [layer]), [layer], 'stable');
      const [read] = (await store.listRepositoryContent('app')).tags.filter(
        (tag) => tag.name === 'latest',
      );
      assert.ok(read);
      await store.putManifest('app', manifest('two', [layer]), 'latest');
      assert.equal(await store.deleteTagIfUnchanged('app', read), false);
      assert.equal((await store.resolveTag('app', 'latest'))?.digest, digestOf('two'));

      const [moved] = (await store.listRepositoryContent('app')).tags.filter(
        (tag) => tag.name === 'latest',
      );
      assert.ok(moved);
      assert.equal(await store.deleteTagIfUnchanged('app', moved), true);
      assert.equal(await store.resolveTag('app', 'latest'), undefined);
      assert.equal(await store.deleteTagIfUnchanged('app', moved), false);
    },
  );

  storeTest(
    'metadata: deleteUntaggedManifest keeps what a tag, an index or a subject needs',
    async (store) => {
      const layer = { label: 'layer', size: 10 };
      const later = Date.now() + 60_000;
      await push(store, 'app', manifest('child', [layer]), [layer]);
      await push(store, 'app', index('multi', ['child']), [], 'latest');
      await push(store, 'app', manifest('sig', [layer], { subject: digestOf('multi') }), []);
      await push(store, 'app', manifest('alone', [layer]), []);

      assert.equal(await store.deleteUntaggedManifest('app', digestOf('multi'), later), false);
      assert.equal(await store.deleteUntaggedManifest('app', digestOf('child'), later), false);
      assert.equal(await store.deleteUntaggedManifest('app', digestOf('sig'), later), false);
      assert.equal(await store.deleteUntaggedManifest('app', digestOf('alone'), 0), false);
      assert.equal(await store.deleteUntaggedManifest('app', digestOf('alone'), later), true);
      assert.equal(await store.getManifest('app', digestOf('alone')), undefined);

      await store.deleteTag('app', 'latest');
      assert.equal(await store.deleteUntaggedManifest('app', digestOf('child'), later), false);
      assert.equal(await store.deleteUntaggedManifest('app', digestOf('multi'), later), true);
      assert.equal(await store.deleteUntaggedManifest('app', digestOf('child'), later), true);
      assert.equal(await store.deleteUntaggedManifest('app', digestOf('sig'), later), true);
      assert.equal(await store.deleteUntaggedManifest('app', digestOf('sig'), later), false);
      assert.equal(await store.deleteUntaggedManifest('unknown', digestOf('sig'), later), false);
    },
  );
}

export function describeImmutableTags(storeTest: StoreTest) {
  const layer = { label: 'layer', size: 10 };
  const immutable = { immutableTag: true };

  storeTest('metadata: an immutable tag is created, pushed again, never moved', async (store) => {
    await push(store, 'app', manifest('one', [layer]), [layer]);
    await push(store, 'app', manifest('two', [layer]), [layer]);
    await store.deleteManifest('app', digestOf('two'));

    const one = manifest('one', [layer]);
    assert.deepEqual(await store.putManifest('app', one, 'v1', immutable), { ok: true });
    assert.deepEqual(await store.putManifest('app', one, 'v1', immutable), { ok: true });
    const two = manifest('two', [layer]);
    assert.deepEqual(await store.putManifest('app', two, 'v1', immutable), {
      ok: false,
      tagDigest: digestOf('one'),
    });
    assert.equal(await store.getManifest('app', digestOf('two')), undefined, 'rolled back');
    assert.equal((await store.resolveTag('app', 'v1'))?.digest, digestOf('one'));

    assert.deepEqual(await store.putManifest('app', two, 'v1'), { ok: true }, 'a mutable push');
  });

  storeTest('metadata: of pushes racing to create an immutable tag one wins', async (store) => {
    await store.linkBlob('app', { digest: digestOf('layer'), size: 10 });
    const labels = Array.from({ length: 10 }, (_, i) => `image-${i}`);
    const results = await Promise.all(
      labels.map((label) => store.putManifest('app', manifest(label, [layer]), 'v1', immutable)),
    );
    const winner = (await store.resolveTag('app', 'v1'))?.digest;
    assert.equal(results.filter((result) => result.ok).length, 1);
    for (const result of results) {
      if (!result.ok) assert.equal(result.tagDigest, winner);
    }
  });
}
