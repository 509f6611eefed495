import assert from 'node:assert/strict';

import type {
  BlobRecord,
  CollectionRules,
  MetadataStore,
  NewManifest,
} from '../../src/metadata/metadata-store.js';
import { digestOf, type StoreTest } from './metadata-store-suite.js';

/**
 * The metadata store's conformance tests for deletes, garbage collection's
 * queries and maintenance leases; part of the suite every implementation
 * runs (metadata-store-suite.ts). The registry-level rules are tested
 * end to end in test/api/gc.test.ts.
 */

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** Everything that exists now counts as older than the grace window. */
function rulesNow(overrides: Partial<CollectionRules> = {}): CollectionRules {
  return { before: Date.now() + 60_000, untagged: true, dryRun: false, ...overrides };
}

function blob(label: string, size = 10): BlobRecord {
  return { digest: digestOf(label), size };
}

function image(label: string, overrides: Partial<NewManifest> = {}): NewManifest {
  return {
    digest: digestOf(label),
    mediaType: OCI_MANIFEST,
    size: 100,
    artifactType: null,
    subject: null,
    annotations: null,
    references: [{ digest: digestOf(`${label}/layer`), kind: 'blob' }],
    ...overrides,
  };
}

function index(label: string, children: string[], tag?: string) {
  return {
    manifest: image(label, {
      mediaType: OCI_INDEX,
      references: children.map((child) => ({ digest: digestOf(child), kind: 'manifest' as const })),
    }),
    tag,
  };
}

async function pushImage(
  store: MetadataStore,
  repository: string,
  label: string,
  tag?: string,
  overrides: Partial<NewManifest> = {},
) {
  await store.linkBlob(repository, blob(`${label}/layer`));
  assert.deepEqual(await store.putManifest(repository, image(label, overrides), tag), {
    ok: true,
  });
}

/** Every page of a paginated find. */
async function findAll<T>(
  find: (cursor: string | undefined) => Promise<{ items: T[]; cursor?: string }>,
): Promise<T[]> {
  const all: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await find(cursor);
    all.push(...page.items);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return all;
}

const digestsOf = (items: { digest: string }[]) => items.map((item) => item.digest).sort();

export function describeCollection(storeTest: StoreTest) {
  describeLinkTimes(storeTest);
  describeDeletes(storeTest);
  describeCollectableManifests(storeTest);
  describeCollectableBlobs(storeTest);
  describeLeases(storeTest);
}

function describeLinkTimes(storeTest: StoreTest) {
  storeTest('metadata: linking again and refreshBlobLink move the link time', async (store) => {
    await store.linkBlob('app', blob('layer'));
    const first = await store.getLinkedBlob('app', digestOf('layer'));
    assert.ok(first && first.linkedAt > Date.now() - 60_000);
    assert.equal(
      await store.refreshBlobLink('app', digestOf('layer'), first.linkedAt + 5000),
      true,
    );
    const later = await store.getLinkedBlob('app', digestOf('layer'));
    assert.equal(later?.linkedAt, first.linkedAt + 5000);
    assert.equal(await store.refreshBlobLink('app', digestOf('other'), Date.now()), false);
    assert.equal(await store.refreshBlobLink('nowhere', digestOf('layer'), Date.now()), false);
  });

  storeTest('metadata: mountBlob links only what a source links', async (store) => {
    await store.linkBlob('source', blob('layer', 42));
    assert.deepEqual(
      await store.mountBlob('target', digestOf('layer'), 'source'),
      blob('layer', 42),
    );
    assert.equal((await store.getLinkedBlob('target', digestOf('layer')))?.size, 42);
    assert.deepEqual(await store.mountBlob('any', digestOf('layer')), blob('layer', 42));
    assert.equal(await store.mountBlob('target', digestOf('layer'), 'elsewhere'), undefined);
    assert.equal(await store.mountBlob('target', digestOf('absent')), undefined);
  });

  storeTest('metadata: a claimed blob is recorded but served nowhere', async (store) => {
    await store.claimBlob(blob('claimed'));
    assert.equal(await store.findBlob(digestOf('claimed')), undefined);
    assert.deepEqual(await store.findUnknownDigests([digestOf('claimed'), digestOf('x')]), [
      digestOf('x'),
    ]);
  });
}

function describeDeletes(storeTest: StoreTest) {
  storeTest('metadata: deleteRepository removes all of it', async (store) => {
    await pushImage(store, 'app', 'one', 'v1');
    await pushImage(store, 'app', 'two', 'v2');
    await store.linkBlob('app', blob('loose'));
    await store.createUpload({ id: 'session', repository: 'app', startedAt: 1, updatedAt: 1 });
    await pushImage(store, 'other', 'one', 'v1');

    const deleted = await store.deleteRepository('app');
    assert.deepEqual(deleted, { manifests: 2, tags: 2, blobLinks: 3, uploads: ['session'] });
    assert.deepEqual(await store.listRepositories({ limit: 10 }), ['other']);
    assert.equal(await store.listTags('app', { limit: 10 }), undefined);
    assert.equal(await store.repositoryExists('app'), false);
    assert.equal(await store.getUpload('session'), undefined);
    assert.equal((await store.resolveTag('other', 'v1'))?.digest, digestOf('one'));
    assert.equal(await store.deleteRepository('app'), undefined);
    await pushImage(store, 'app', 'three', 'v3');
    assert.deepEqual(await store.listTags('app', { limit: 10 }), ['v3']);
  });

  storeTest('metadata: deleteManifestTree takes referrers along, recursively', async (store) => {
    await pushImage(store, 'app', 'subject', 'v1');
    await pushImage(store, 'app', 'signature', undefined, { subject: digestOf('subject') });
    await pushImage(store, 'app', 'countersign', 'sig', { subject: digestOf('signature') });
    await pushImage(store, 'app', 'unrelated', 'v2');

    const alone = await store.deleteManifestTree('app', digestOf('unrelated'), {
      referrers: true,
    });
    assert.deepEqual(alone, { ok: true, manifests: [digestOf('unrelated')], tags: 1 });
    const tree = await store.deleteManifestTree('app', digestOf('subject'), { referrers: true });
    assert.ok(tree.ok);
    assert.deepEqual(
      tree.manifests.sort(),
      digestsOf([image('subject'), image('signature'), image('countersign')]),
    );
    assert.equal(tree.tags, 2);
    assert.deepEqual(
      await store.deleteManifestTree('app', digestOf('subject'), { referrers: false }),
      {
        ok: false,
        reason: 'unknown',
      },
    );
  });

  storeTest('metadata: deleteManifestTree refuses a child an index still lists', async (store) => {
    await pushImage(store, 'app', 'amd64');
    const { manifest } = index('list', ['amd64']);
    assert.deepEqual(await store.putManifest('app', manifest, 'v1'), { ok: true });

    const refused = await store.deleteManifestTree('app', digestOf('amd64'), { referrers: false });
    assert.deepEqual(refused, {
      ok: false,
      reason: 'referenced',
      digest: digestOf('amd64'),
      index: digestOf('list'),
    });
    assert.ok(await store.getManifest('app', digestOf('amd64')));
    assert.ok((await store.deleteManifestTree('app', digestOf('list'), { referrers: false })).ok);
    assert.ok((await store.deleteManifestTree('app', digestOf('amd64'), { referrers: false })).ok);
  });
}

function describeCollectableManifests(storeTest: StoreTest) {
  storeTest(
    'metadata: collectable manifests are found top down, all at once in a dry run',
    async (store) => {
      await pushImage(store, 'app', 'amd64');
      await pushImage(store, 'app', 'arm64');
      const list = index('list', ['amd64', 'arm64']);
      assert.deepEqual(await store.putManifest('app', list.manifest), { ok: true });
      await pushImage(store, 'app', 'sbom', undefined, { subject: digestOf('list') });
      await pushImage(store, 'app', 'tagged', 'v1');
      await pushImage(store, 'app', 'orphan-sig', undefined, { subject: digestOf('gone') });

      const rules = rulesNow();
      const find = (r: CollectionRules) =>
        findAll((cursor) => store.findCollectableManifests(r, cursor, 2));
      assert.deepEqual(
        digestsOf(await find(rules)),
        digestsOf([image('list'), image('orphan-sig')]),
      );
      const everything = digestsOf(
        ['amd64', 'arm64', 'list', 'sbom', 'orphan-sig'].map((label) => image(label)),
      );
      assert.deepEqual(digestsOf(await find({ ...rules, dryRun: true })), everything);
      assert.deepEqual(await find({ ...rules, untagged: false }), []);
      assert.deepEqual(await find({ ...rules, before: Date.now() - 60_000 }), []);

      const removed: string[] = [];
      for (let round = 0; round < 5; round++) {
        const found = await find(rules);
        removed.push(...digestsOf(await store.removeCollectableManifests(rules, found)));
      }
      assert.deepEqual(removed.sort(), everything);
      assert.ok(await store.resolveTag('app', 'v1'));
    },
  );

  storeTest('metadata: removal checks again and keeps a manifest tagged since', async (store) => {
    await pushImage(store, 'app', 'one');
    const rules = rulesNow();
    const found = (await store.findCollectableManifests(rules, undefined, 10)).items;
    assert.equal(found.length, 1);
    assert.deepEqual(await store.putManifest('app', image('one'), 'now-tagged'), { ok: true });
    assert.deepEqual(await store.removeCollectableManifests(rules, found), []);
    await assert.rejects(store.removeCollectableManifests({ ...rules, dryRun: true }, found));
  });
}

function describeCollectableBlobs(storeTest: StoreTest) {
  storeTest('metadata: links and blobs nothing references are collectable', async (store) => {
    await pushImage(store, 'app', 'kept', 'v1');
    await store.linkBlob('app', blob('loose'));
    await store.linkBlob('other', blob('kept/layer'));
    await store.claimBlob(blob('claimed'));
    const rules = rulesNow({ untagged: false });

    const links = await findAll((cursor) => store.findCollectableLinks(rules, cursor, 1));
    assert.deepEqual(links, [
      { repository: 'app', digest: digestOf('loose') },
      { repository: 'other', digest: digestOf('kept/layer') },
    ]);
    const dry = await findAll((cursor) =>
      store.findCollectableBlobs({ ...rules, dryRun: true }, cursor, 1),
    );
    assert.deepEqual(digestsOf(dry), digestsOf([blob('loose'), blob('claimed')]));
    assert.deepEqual(
      digestsOf(await findAll((cursor) => store.findCollectableBlobs(rules, cursor, 5))),
      [digestOf('claimed')],
    );

    assert.equal((await store.removeCollectableLinks(rules, links)).length, 2);
    const blobs = await findAll((cursor) => store.findCollectableBlobs(rules, cursor, 5));
    assert.deepEqual(digestsOf(blobs), digestsOf(dry));
    const removedBytes: string[] = [];
    const removed = await store.removeCollectableBlobs(rules, blobs, (gone) => {
      removedBytes.push(...gone.map((each) => each.digest));
      return Promise.resolve();
    });
    assert.deepEqual(digestsOf(removed), digestsOf(dry));
    assert.deepEqual(removedBytes.sort(), digestsOf(dry));
    assert.equal((await store.getLinkedBlob('app', digestOf('kept/layer')))?.size, 10);
  });

  storeTest('metadata: a failed byte removal keeps the blob records', async (store) => {
    await store.claimBlob(blob('claimed'));
    const rules = rulesNow();
    const blobs = (await store.findCollectableBlobs(rules, undefined, 5)).items;
    await assert.rejects(
      store.removeCollectableBlobs(rules, blobs, () => Promise.reject(new Error('disk'))),
      /disk/,
    );
    assert.equal((await store.findCollectableBlobs(rules, undefined, 5)).items.length, 1);
  });

  storeTest('metadata: a link made young again is not removed', async (store) => {
    await store.linkBlob('app', blob('layer'));
    const rules = { ...rulesNow(), before: Date.now() + 1000 };
    const links = (await store.findCollectableLinks(rules, undefined, 5)).items;
    await store.refreshBlobLink('app', digestOf('layer'), Date.now() + 5000);
    assert.deepEqual(await store.removeCollectableLinks(rules, links), []);
  });

  storeTest('metadata: a link collection and a manifest push never both win', async (store) => {
    const rules = rulesNow();
    for (let i = 0; i < 10; i++) {
      await store.linkBlob('app', blob(`race-${i}/layer`));
      const [pushed, removed] = await Promise.all([
        store.putManifest('app', image(`race-${i}`), `t${i}`),
        store.removeCollectableLinks(rules, [
          { repository: 'app', digest: digestOf(`race-${i}/layer`) },
        ]),
      ]);
      const linked = await store.getLinkedBlob('app', digestOf(`race-${i}/layer`));
      if (pushed.ok) assert.ok(linked && removed.length === 0, `round ${i}`);
      else assert.ok(!linked && removed.length === 1, `round ${i}`);
    }
  });

  storeTest('metadata: removeUnknownDigests removes only what is still unknown', async (store) => {
    await store.claimBlob(blob('known'));
    const digests = [digestOf('known'), digestOf('stray')];
    const seen: string[] = [];
    const removed = await store.removeUnknownDigests(digests, (unknown) => {
      seen.push(...unknown);
      return Promise.resolve();
    });
    assert.deepEqual(removed, [digestOf('stray')]);
    assert.deepEqual(seen, [digestOf('stray')]);
  });
}

function describeLeases(storeTest: StoreTest) {
  storeTest('metadata: a lease has one holder until it expires or is given up', async (store) => {
    const now = Date.now();
    assert.equal(await store.acquireLease('gc', 'a', now + 1000, { now }), true);
    assert.equal(await store.acquireLease('gc', 'b', now + 1000, { now }), false);
    assert.equal(await store.acquireLease('gc', 'a', now + 2000, { now }), true);
    assert.equal(await store.renewLease('gc', 'a', now + 3000), true);
    assert.equal(await store.renewLease('gc', 'b', now + 3000), false);
    assert.equal(await store.acquireLease('gc', 'b', now + 1000, { now: now + 3000 }), true);
    assert.equal(await store.acquireLease('gc', 'c', now + 1000, { now, replacing: 'b' }), true);

    await store.releaseLease('gc', 'c', now + 10);
    assert.deepEqual(await store.getLease('gc'), {
      name: 'gc',
      holder: '',
      expiresAt: 0,
      completedAt: now + 10,
    });
    assert.equal(await store.acquireLease('gc', 'd', now + 1000, { now }), true);
    assert.equal(await store.getLease('other'), undefined);
  });
}
