import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';

import type {
  ManifestReference,
  MetadataStore,
  NewManifest,
} from '../../src/metadata/metadata-store.js';
import {
  describeImmutableTags,
  describeQuotaLinks,
  describeRetentionQueries,
  describeUsage,
} from './metadata-store-suite-rules.js';
import { describeCollection } from './metadata-store-suite-collection.js';

/**
 * The conformance suite of the metadata store: every implementation runs it
 * (metadata-sqlite.test.ts, metadata-postgres.test.ts). Each test opens a
 * fresh, empty store and migrates it.
 */

export interface OpenedStore {
  store: MetadataStore;
  /** Closes the store and removes what `open` made. */
  cleanup: () => Promise<void>;
}

export interface SuiteOptions {
  /** Asked as each test starts: why to skip it, e.g. a server that did not start. */
  skipReason?: () => string | undefined;
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const SIGNATURE = 'application/vnd.dev.cosign.artifact.sig.v1+json';
const SBOM = 'application/spdx+json';

/** A well-formed digest derived from a label, so that tests read by name. */
export function digestOf(label: string): string {
  return `sha256:${createHash('sha256').update(label).digest('hex')}`;
}

function blobRef(label: string): ManifestReference {
  return { digest: digestOf(label), kind: 'blob' };
}

function manifestRef(label: string): ManifestReference {
  return { digest: digestOf(label), kind: 'manifest' };
}

function imageManifest(label: string, overrides: Partial<NewManifest> = {}): NewManifest {
  return {
    digest: digestOf(label),
    mediaType: OCI_MANIFEST,
    size: 512,
    artifactType: null,
    subject: null,
    annotations: null,
    references: [blobRef(`${label}/config`), blobRef(`${label}/layer`)],
    ...overrides,
  };
}

/** Links the blobs an image manifest built by `imageManifest` references. */
async function linkImageBlobs(store: MetadataStore, repository: string, label: string) {
  await store.linkBlob(repository, { digest: digestOf(`${label}/config`), size: 100 });
  await store.linkBlob(repository, { digest: digestOf(`${label}/layer`), size: 1000 });
}

/** Pushes an image the way a client does: blobs first, then the manifest. */
async function pushImage(store: MetadataStore, repository: string, label: string, tag?: string) {
  await linkImageBlobs(store, repository, label);
  const result = await store.putManifest(repository, imageManifest(label), tag);
  assert.deepEqual(result, { ok: true });
}

async function listAll(
  list: (last: string | undefined) => Promise<string[] | undefined>,
): Promise<string[]> {
  const all: string[] = [];
  for (;;) {
    const page = (await list(all.at(-1))) ?? [];
    if (page.length === 0) return all;
    all.push(...page);
  }
}

export function describeMetadataStore(
  name: string,
  open: () => Promise<OpenedStore>,
  options: SuiteOptions = {},
): void {
  const storeTest: StoreTest = (title, body) => {
    it(title, async (t) => {
      const reason = options.skipReason?.();
      if (reason !== undefined) {
        t.skip(reason);
        return;
      }
      const { store, cleanup } = await open();
      try {
        await store.migrate();
        await body(store);
      } finally {
        await cleanup();
      }
    });
  };

  describe(`metadata store on ${name}`, () => {
    describeMigrations(storeTest);
    describeBlobs(storeTest);
    describeManifests(storeTest);
    describeTags(storeTest);
    describeRepositories(storeTest);
    describeReferrers(storeTest);
    describeUploads(storeTest);
    describeConcurrency(storeTest);
    describeRobots(storeTest);
    describeUsage(storeTest);
    describeQuotaLinks(storeTest);
    describeRetentionQueries(storeTest);
    describeImmutableTags(storeTest);
    describeCollection(storeTest);
  });
}

export type StoreTest = (title: string, body: (store: MetadataStore) => Promise<void>) => void;

function describeMigrations(storeTest: StoreTest) {
  storeTest('metadata: migrate again keeps the data', async (store) => {
    await pushImage(store, 'app', 'one', 'latest');
    await store.migrate();
    assert.equal((await store.resolveTag('app', 'latest'))?.digest, digestOf('one'));
  });
}

function describeBlobs(storeTest: StoreTest) {
  storeTest('metadata: a linked blob is found in its repository only', async (store) => {
    await store.linkBlob('app', { digest: digestOf('layer'), size: 42 });
    const linked = await store.getLinkedBlob('app', digestOf('layer'));
    assert.deepEqual(
      { digest: linked?.digest, size: linked?.size },
      {
        digest: digestOf('layer'),
        size: 42,
      },
    );
    assert.equal(await store.getLinkedBlob('other', digestOf('layer')), undefined);
    assert.equal(await store.getLinkedBlob('app', digestOf('unknown')), undefined);
  });

  storeTest('metadata: linkBlob twice is idempotent', async (store) => {
    await store.linkBlob('app', { digest: digestOf('layer'), size: 42 });
    await store.linkBlob('app', { digest: digestOf('layer'), size: 42 });
    assert.equal((await store.getLinkedBlob('app', digestOf('layer')))?.size, 42);
    assert.equal(await store.unlinkBlob('app', digestOf('layer')), true);
    assert.equal(await store.getLinkedBlob('app', digestOf('layer')), undefined);
  });

  storeTest('metadata: sizes beyond 32 bits come back exact', async (store) => {
    const size = 5 * 1024 ** 3 + 7;
    await store.linkBlob('app', { digest: digestOf('huge'), size });
    assert.equal((await store.getLinkedBlob('app', digestOf('huge')))?.size, size);
    assert.equal((await store.findBlob(digestOf('huge')))?.size, size);
  });

  storeTest('metadata: findBlob finds a blob while any repository links it', async (store) => {
    await store.linkBlob('one', { digest: digestOf('layer'), size: 42 });
    await store.linkBlob('two', { digest: digestOf('layer'), size: 42 });
    assert.deepEqual(await store.findBlob(digestOf('layer')), {
      digest: digestOf('layer'),
      size: 42,
    });
    await store.unlinkBlob('one', digestOf('layer'));
    assert.equal((await store.findBlob(digestOf('layer')))?.size, 42);
    await store.unlinkBlob('two', digestOf('layer'));
    assert.equal(await store.findBlob(digestOf('layer')), undefined);
    assert.equal(await store.findBlob(digestOf('unknown')), undefined);
  });

  storeTest(
    'metadata: listRepositoriesLinkingBlob pages the linking repositories by name',
    async (store) => {
      for (const name of ['c', 'a/x', 'b']) {
        await store.linkBlob(name, { digest: digestOf('layer'), size: 42 });
      }
      await store.linkBlob('d', { digest: digestOf('other'), size: 1 });
      const linking = (last?: string) =>
        store.listRepositoriesLinkingBlob(digestOf('layer'), {
          limit: 2,
          ...(last ? { last } : {}),
        });
      assert.deepEqual(await linking(), ['a/x', 'b']);
      assert.deepEqual(await linking('b'), ['c']);
      assert.deepEqual(
        await store.listRepositoriesLinkingBlob(digestOf('unknown'), { limit: 5 }),
        [],
      );
      await store.unlinkBlob('b', digestOf('layer'));
      assert.deepEqual(await linking(), ['a/x', 'c']);
    },
  );

  storeTest('metadata: unlinkBlob is true once, then false', async (store) => {
    await store.linkBlob('app', { digest: digestOf('layer'), size: 42 });
    assert.equal(await store.unlinkBlob('other', digestOf('layer')), false);
    assert.equal(await store.unlinkBlob('app', digestOf('layer')), true);
    assert.equal(await store.unlinkBlob('app', digestOf('layer')), false);
  });
}

function describeManifests(storeTest: StoreTest) {
  storeTest('metadata: a stored manifest is returned with its description', async (store) => {
    const before = Date.now();
    await linkImageBlobs(store, 'app', 'one');
    const manifest = imageManifest('one', {
      artifactType: SBOM,
      subject: digestOf('base'),
      annotations: '{"org.opencontainers.image.created":"2024-01-01T00:00:00Z"}',
      size: 1234,
    });
    assert.deepEqual(await store.putManifest('app', manifest), { ok: true });

    const record = await store.getManifest('app', digestOf('one'));
    assert.deepEqual(record && { ...record, createdAt: 0 }, {
      digest: manifest.digest,
      mediaType: manifest.mediaType,
      size: manifest.size,
      artifactType: manifest.artifactType,
      subject: manifest.subject,
      annotations: manifest.annotations,
      createdAt: 0,
    });
    assert.ok(record && record.createdAt >= before && record.createdAt <= Date.now());
    assert.equal(await store.getManifest('other', digestOf('one')), undefined);
    assert.equal(await store.getManifest('app', digestOf('two')), undefined);
  });

  storeTest('metadata: putManifest with a missing blob writes nothing', async (store) => {
    await store.linkBlob('app', { digest: digestOf('one/config'), size: 100 });
    const result = await store.putManifest('app', imageManifest('one'), 'latest');

    assert.deepEqual(result, { ok: false, missing: [blobRef('one/layer')] });
    assert.equal(await store.getManifest('app', digestOf('one')), undefined);
    assert.equal(await store.resolveTag('app', 'latest'), undefined);
    assert.deepEqual(await store.listTags('app', { limit: 10 }), []);
    assert.deepEqual(await store.listRepositories({ limit: 10 }), []);
  });

  storeTest(
    'metadata: putManifest in a new repository with missing blobs creates nothing',
    async (store) => {
      const result = await store.putManifest('new', imageManifest('one'), 'latest');
      assert.deepEqual(result, {
        ok: false,
        missing: [blobRef('one/config'), blobRef('one/layer')],
      });
      assert.equal(await store.repositoryExists('new'), false);
      assert.equal(await store.listTags('new', { limit: 10 }), undefined);
    },
  );

  storeTest('metadata: putManifest reports each missing reference once', async (store) => {
    await store.linkBlob('app', { digest: digestOf('present'), size: 1 });
    const index: NewManifest = {
      ...imageManifest('index'),
      mediaType: OCI_INDEX,
      references: [
        manifestRef('child'),
        blobRef('present'),
        blobRef('absent'),
        manifestRef('child'),
        blobRef('absent'),
      ],
    };
    assert.deepEqual(await store.putManifest('app', index), {
      ok: false,
      missing: [manifestRef('child'), blobRef('absent')],
    });
  });

  storeTest('metadata: a blob linked only elsewhere counts as missing', async (store) => {
    await linkImageBlobs(store, 'other', 'one');
    const result = await store.putManifest('app', imageManifest('one'));
    assert.equal(result.ok, false);
  });

  storeTest('metadata: a manifest is not a blob, nor a blob a manifest', async (store) => {
    await pushImage(store, 'app', 'child');
    await store.linkBlob('app', { digest: digestOf('blob-only'), size: 1 });
    const refs = [blobRef('child'), manifestRef('blob-only')];
    const result = await store.putManifest('app', { ...imageManifest('x'), references: refs });
    assert.deepEqual(result, { ok: false, missing: refs });
  });

  storeTest('metadata: an index is accepted once its children are stored', async (store) => {
    const index: NewManifest = {
      ...imageManifest('index'),
      mediaType: OCI_INDEX,
      references: [manifestRef('amd64'), manifestRef('arm64')],
    };
    await pushImage(store, 'app', 'amd64');
    assert.deepEqual(await store.putManifest('app', index), {
      ok: false,
      missing: [manifestRef('arm64')],
    });
    await pushImage(store, 'app', 'arm64');
    assert.deepEqual(await store.putManifest('app', index, 'latest'), { ok: true });
    assert.equal((await store.resolveTag('app', 'latest'))?.mediaType, OCI_INDEX);
  });

  storeTest(
    'metadata: a child manifest stored in another repository counts as missing',
    async (store) => {
      await pushImage(store, 'other', 'amd64');
      const index = { ...imageManifest('index'), references: [manifestRef('amd64')] };
      assert.deepEqual(await store.putManifest('app', index), {
        ok: false,
        missing: [manifestRef('amd64')],
      });
    },
  );

  storeTest('metadata: a manifest without references is accepted', async (store) => {
    const empty = { ...imageManifest('empty-index'), mediaType: OCI_INDEX, references: [] };
    assert.deepEqual(await store.putManifest('app', empty, 'empty'), { ok: true });
    assert.equal(await store.repositoryExists('app'), true);
    assert.deepEqual(await store.listRepositories({ limit: 10 }), ['app']);
  });

  storeTest('metadata: putManifest finds missing references among thousands', async (store) => {
    const labels = Array.from({ length: 1500 }, (_, i) => `layer-${i}`);
    const linked = new Set(['layer-0', 'layer-700', 'layer-1499']);
    for (const label of linked) await store.linkBlob('app', { digest: digestOf(label), size: 1 });
    const manifest = { ...imageManifest('wide'), references: labels.map(blobRef) };
    const result = await store.putManifest('app', manifest);
    assert.ok(!result.ok);
    assert.deepEqual(result.missing, labels.filter((label) => !linked.has(label)).map(blobRef));
  });

  storeTest('metadata: putManifest stores more than 500 references', async (store) => {
    const labels = Array.from({ length: 510 }, (_, i) => `layer-${i}`);
    for (const label of labels.slice(0, -1)) {
      await store.linkBlob('app', { digest: digestOf(label), size: 1 });
    }
    const manifest = { ...imageManifest('wide'), references: labels.map(blobRef) };
    assert.deepEqual(await store.putManifest('app', manifest), {
      ok: false,
      missing: [blobRef('layer-509')],
    });
    await store.linkBlob('app', { digest: digestOf('layer-509'), size: 1 });
    assert.deepEqual(await store.putManifest('app', manifest, 'wide'), { ok: true });
    assert.deepEqual(await store.putManifest('app', manifest, 'again'), { ok: true });
  });

  storeTest(
    'metadata: pushing the same manifest again is idempotent and keeps createdAt',
    async (store) => {
      await pushImage(store, 'app', 'one', 'v1');
      const first = await store.getManifest('app', digestOf('one'));
      await sleep(5);
      assert.deepEqual(await store.putManifest('app', imageManifest('one'), 'v1'), { ok: true });
      assert.deepEqual(await store.putManifest('app', imageManifest('one'), 'v2'), { ok: true });

      assert.deepEqual(await store.getManifest('app', digestOf('one')), first);
      assert.deepEqual(await store.listTags('app', { limit: 10 }), ['v1', 'v2']);
    },
  );

  storeTest('metadata: deleteManifest removes the manifest and every tag on it', async (store) => {
    await pushImage(store, 'app', 'one', 'v1');
    await store.putManifest('app', imageManifest('one'), 'latest');
    await pushImage(store, 'app', 'two', 'v2');

    assert.equal(await store.deleteManifest('app', digestOf('one')), true);
    assert.equal(await store.getManifest('app', digestOf('one')), undefined);
    assert.equal(await store.resolveTag('app', 'v1'), undefined);
    assert.equal(await store.resolveTag('app', 'latest'), undefined);
    assert.deepEqual(await store.listTags('app', { limit: 10 }), ['v2']);
    assert.equal(await store.deleteManifest('app', digestOf('one')), false);
    assert.equal(await store.deleteManifest('unknown', digestOf('one')), false);
  });

  storeTest('metadata: a deleted manifest can be pushed again', async (store) => {
    await pushImage(store, 'app', 'one', 'v1');
    await store.deleteManifest('app', digestOf('one'));
    assert.deepEqual(await store.putManifest('app', imageManifest('one'), 'v1'), { ok: true });
    assert.equal((await store.resolveTag('app', 'v1'))?.digest, digestOf('one'));
  });
}

function describeTags(storeTest: StoreTest) {
  storeTest('metadata: resolveTag returns the tagged manifest', async (store) => {
    await pushImage(store, 'app', 'one', 'latest');
    assert.equal((await store.resolveTag('app', 'latest'))?.digest, digestOf('one'));
    assert.equal(await store.resolveTag('app', 'missing'), undefined);
    assert.equal(await store.resolveTag('other', 'latest'), undefined);
  });

  storeTest('metadata: pushing a tag again moves it to the new manifest', async (store) => {
    await pushImage(store, 'app', 'one', 'latest');
    await pushImage(store, 'app', 'two', 'latest');
    assert.equal((await store.resolveTag('app', 'latest'))?.digest, digestOf('two'));
    assert.deepEqual(await store.listTags('app', { limit: 10 }), ['latest']);
    assert.ok(await store.getManifest('app', digestOf('one')), 'the untagged manifest stays');
  });

  storeTest('metadata: deleteTag leaves the manifest', async (store) => {
    await pushImage(store, 'app', 'one', 'latest');
    assert.equal(await store.deleteTag('app', 'latest'), true);
    assert.equal(await store.deleteTag('app', 'latest'), false);
    assert.equal(await store.deleteTag('unknown', 'latest'), false);
    assert.equal(await store.resolveTag('app', 'latest'), undefined);
    assert.ok(await store.getManifest('app', digestOf('one')));
    assert.deepEqual(await store.listTags('app', { limit: 10 }), []);
  });

  storeTest('metadata: listTags is undefined for an unknown repository', async (store) => {
    assert.equal(await store.listTags('unknown', { limit: 10 }), undefined);
    await store.linkBlob('blobs-only', { digest: digestOf('layer'), size: 1 });
    assert.deepEqual(await store.listTags('blobs-only', { limit: 10 }), []);
    await store.unlinkBlob('blobs-only', digestOf('layer'));
    assert.equal(await store.listTags('blobs-only', { limit: 10 }), undefined);
  });

  storeTest('metadata: listTags sorts byte-wise and pages after last', async (store) => {
    await pushImage(store, 'app', 'one');
    for (const tag of ['a', 'Z', '_x', 'A', 'a.1', 'a-1', '0', 'a_1']) {
      await store.putManifest('app', imageManifest('one'), tag);
    }
    const sorted = ['0', 'A', 'Z', '_x', 'a', 'a-1', 'a.1', 'a_1'];
    assert.deepEqual(await store.listTags('app', { limit: 100 }), sorted);
    assert.deepEqual(await store.listTags('app', { limit: 3 }), sorted.slice(0, 3));
    assert.deepEqual(await store.listTags('app', { last: 'Z', limit: 3 }), ['_x', 'a', 'a-1']);
    assert.deepEqual(await store.listTags('app', { last: 'Y', limit: 1 }), ['Z']);
    assert.deepEqual(await store.listTags('app', { last: 'a_1', limit: 3 }), []);
    assert.deepEqual(await store.listTags('app', { limit: 0 }), []);
    const paged = await listAll((last) =>
      store.listTags('app', { limit: 3, ...(last !== undefined && { last }) }),
    );
    assert.deepEqual(paged, sorted);
  });
}

function describeRepositories(storeTest: StoreTest) {
  storeTest('metadata: repositoryExists needs a manifest or a blob link', async (store) => {
    assert.equal(await store.repositoryExists('app'), false);
    await store.linkBlob('app', { digest: digestOf('layer'), size: 1 });
    assert.equal(await store.repositoryExists('app'), true);
    await store.unlinkBlob('app', digestOf('layer'));
    assert.equal(await store.repositoryExists('app'), false);
    await pushImage(store, 'app', 'one');
    assert.equal(await store.repositoryExists('app'), true);
  });

  storeTest('metadata: listRepositories lists only repositories with a manifest', async (store) => {
    await store.linkBlob('blobs-only', { digest: digestOf('layer'), size: 1 });
    await pushImage(store, 'app', 'one');
    await pushImage(store, 'gone', 'two');
    await store.deleteManifest('gone', digestOf('two'));
    assert.deepEqual(await store.listRepositories({ limit: 10 }), ['app']);
  });

  storeTest('metadata: listRepositories sorts byte-wise and pages after last', async (store) => {
    const names = ['b', 'ab', 'a_b', 'a0', 'a/b', 'a.b', 'a-b', 'a', 'a/b/c'];
    for (const name of names) await pushImage(store, name, 'image');
    const sorted = ['a', 'a-b', 'a.b', 'a/b', 'a/b/c', 'a0', 'a_b', 'ab', 'b'];

    assert.deepEqual(await store.listRepositories({ limit: 100 }), sorted);
    assert.deepEqual(await store.listRepositories({ limit: 2 }), ['a', 'a-b']);
    assert.deepEqual(await store.listRepositories({ last: 'a/b', limit: 2 }), ['a/b/c', 'a0']);
    assert.deepEqual(await store.listRepositories({ last: 'aa', limit: 5 }), ['ab', 'b']);
    assert.deepEqual(await store.listRepositories({ last: 'b', limit: 5 }), []);
    assert.deepEqual(await store.listRepositories({ limit: 0 }), []);
  });

  storeTest('metadata: listRepositories pages through many repositories', async (store) => {
    const names = Array.from({ length: 120 }, (_, i) => `team-${i % 7}/app-${i}`);
    for (const name of names) {
      const result = await store.putManifest(name, { ...imageManifest('index'), references: [] });
      assert.equal(result.ok, true);
    }
    const paged = await listAll((last) =>
      store.listRepositories({ limit: 25, ...(last !== undefined && { last }) }),
    );
    assert.deepEqual(paged, [...names].sort(byteOrder));
  });
}

function describeReferrers(storeTest: StoreTest) {
  const referrer = (label: string, artifactType: string, subject = digestOf('base')) =>
    imageManifest(label, { artifactType, subject, annotations: `{"label":"${label}"}` });

  storeTest(
    'metadata: listReferrers returns manifests with that subject, by digest',
    async (store) => {
      await pushImage(store, 'app', 'base');
      for (const label of ['sig', 'sbom', 'other-subject'])
        await linkImageBlobs(store, 'app', label);
      await store.putManifest('app', referrer('sig', SIGNATURE));
      await store.putManifest('app', referrer('sbom', SBOM));
      await store.putManifest('app', referrer('other-subject', SBOM, digestOf('elsewhere')));

      const referrers = await store.listReferrers('app', digestOf('base'));
      const expected = [digestOf('sig'), digestOf('sbom')].sort(byteOrder);
      assert.deepEqual(
        referrers.map((record) => record.digest),
        expected,
      );
      const sig = referrers.find((record) => record.digest === digestOf('sig'));
      assert.equal(sig?.artifactType, SIGNATURE);
      assert.equal(sig?.annotations, '{"label":"sig"}');
    },
  );

  storeTest('metadata: listReferrers filters by artifact type', async (store) => {
    for (const label of ['sig', 'sbom']) await linkImageBlobs(store, 'app', label);
    await store.putManifest('app', referrer('sig', SIGNATURE));
    await store.putManifest('app', referrer('sbom', SBOM));

    const sboms = await store.listReferrers('app', digestOf('base'), SBOM);
    assert.deepEqual(
      sboms.map((record) => record.digest),
      [digestOf('sbom')],
    );
    assert.deepEqual(await store.listReferrers('app', digestOf('base'), 'text/plain'), []);
  });

  storeTest('metadata: listReferrers keeps repositories apart', async (store) => {
    await linkImageBlobs(store, 'other', 'sig');
    await store.putManifest('other', referrer('sig', SIGNATURE));
    assert.deepEqual(await store.listReferrers('app', digestOf('base')), []);
    assert.equal((await store.listReferrers('other', digestOf('base'))).length, 1);
  });
}

function describeUploads(storeTest: StoreTest) {
  const session = (id: string, startedAt: number, updatedAt = startedAt) => ({
    id,
    repository: 'app',
    startedAt,
    updatedAt,
  });

  storeTest('metadata: an upload session is stored, touched and deleted', async (store) => {
    await store.createUpload(session('u1', 1_000));
    assert.deepEqual(await store.getUpload('u1'), session('u1', 1_000));
    await store.touchUpload('u1', 5_000);
    assert.deepEqual(await store.getUpload('u1'), session('u1', 1_000, 5_000));
    await store.deleteUpload('u1');
    assert.equal(await store.getUpload('u1'), undefined);
    await store.deleteUpload('u1');
    await store.touchUpload('u1', 6_000);
    assert.equal(await store.getUpload('u1'), undefined);
  });

  storeTest(
    'metadata: linkBlob ending an upload links the blob and deletes the session',
    async (store) => {
      await store.createUpload(session('u1', 1_000));
      await store.createUpload(session('u2', 1_000));
      const blob = { digest: digestOf('ended'), size: 7 };
      await store.linkBlob('app', blob, 'u1');
      assert.equal(await store.getUpload('u1'), undefined);
      assert.deepEqual(await store.getUpload('u2'), session('u2', 1_000));
      assert.equal((await store.getLinkedBlob('app', blob.digest))?.size, 7);
    },
  );

  storeTest('metadata: touchUpload never moves activity back', async (store) => {
    await store.createUpload(session('u1', 1_000, 5_000));
    await store.touchUpload('u1', 3_000);
    assert.equal((await store.getUpload('u1'))?.updatedAt, 5_000);
  });

  storeTest('metadata: an upload session does not make its repository exist', async (store) => {
    await store.createUpload(session('u1', 1_000));
    assert.equal(await store.repositoryExists('app'), false);
  });

  storeTest('metadata: listUploadsIdleSince returns idle sessions, oldest first', async (store) => {
    const now = Date.now();
    await store.createUpload(session('busy', now - 60_000, now));
    await store.createUpload(session('idle', now - 60_000, now - 30_000));
    await store.createUpload(session('older', now - 90_000, now - 50_000));
    await store.createUpload(session('touched', now - 90_000, now - 80_000));
    await store.touchUpload('touched', now - 1_000);

    const idle = await store.listUploadsIdleSince(now - 10_000);
    assert.deepEqual(
      idle.map((upload) => upload.id),
      ['older', 'idle'],
    );
    assert.deepEqual(idle[0], session('older', now - 90_000, now - 50_000));
    assert.deepEqual(await store.listUploadsIdleSince(now - 100_000), []);
  });
}

function describeConcurrency(storeTest: StoreTest) {
  storeTest('metadata: concurrent putManifest calls all land', async (store) => {
    const labels = Array.from({ length: 40 }, (_, i) => `image-${i}`);
    await Promise.all(labels.map((label) => linkImageBlobs(store, 'app', label)));
    const results = await Promise.all(
      labels.flatMap((label) => [
        store.putManifest('app', imageManifest(label), label),
        store.putManifest('app', imageManifest(label), 'latest'),
      ]),
    );
    assert.ok(results.every((result) => result.ok));

    const tags = await store.listTags('app', { limit: 100 });
    assert.deepEqual(tags, [...labels, 'latest'].sort(byteOrder));
    const latest = await store.resolveTag('app', 'latest');
    assert.ok(labels.some((label) => digestOf(label) === latest?.digest));
  });

  storeTest('metadata: concurrent pushes create a new repository once', async (store) => {
    const labels = Array.from({ length: 20 }, (_, i) => `image-${i}`);
    await Promise.all(labels.map((label) => pushImage(store, 'fresh', label, label)));
    assert.deepEqual(await store.listRepositories({ limit: 10 }), ['fresh']);
    assert.equal((await store.listTags('fresh', { limit: 100 }))?.length, labels.length);
  });
}

/** The order both engines must sort names in: for ASCII, byte order. */
function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function describeRobots(storeTest: StoreTest) {
  const robot = (name: string, id: string) => ({
    id,
    name,
    secretHash: 'ab'.repeat(32),
    scopes: ['repository:ci/*:pull,push', 'registry:catalog:*'],
    createdAt: 1_700_000_000_000,
    expiresAt: 1_700_000_000_000 + 30 * 86_400_000,
  });

  storeTest('metadata: a robot is found by id and by name, as stored', async (store) => {
    const ci = robot('ci', '0'.repeat(32));
    assert.equal(await store.createRobot(ci), true);
    assert.deepEqual(await store.getRobot(ci.id), ci);
    assert.deepEqual(await store.getRobotByName('ci'), ci);
    assert.equal(await store.getRobot('f'.repeat(32)), undefined);
    assert.equal(await store.getRobotByName('nobody'), undefined);
  });

  storeTest('metadata: a robot name is taken once; robots list by name', async (store) => {
    assert.equal(await store.createRobot(robot('zeta', '1'.repeat(32))), true);
    assert.equal(await store.createRobot(robot('alpha', '2'.repeat(32))), true);
    assert.equal(await store.createRobot(robot('zeta', '3'.repeat(32))), false);
    const names = (await store.listRobots()).map((each) => each.name);
    assert.deepEqual(names, ['alpha', 'zeta']);
  });

  storeTest('metadata: deleteRobot is true once, then false', async (store) => {
    await store.createRobot(robot('ci', '4'.repeat(32)));
    assert.equal(await store.deleteRobot('ci'), true);
    assert.equal(await store.deleteRobot('ci'), false);
    assert.equal(await store.getRobot('4'.repeat(32)), undefined);
    assert.deepEqual(await store.listRobots(), []);
  });
}
