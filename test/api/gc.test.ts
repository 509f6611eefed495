import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import type { CollectionReport } from '../../src/registry/gc.js';
import { createSilentLogger } from '../../src/log/logger.js';
import { startApiServer, type ApiServer } from '../support/api-server.js';
import {
  blobFiles,
  blobPath,
  pullCompletely,
  pushMultiArch,
  pushReferrer,
} from '../support/gc-helpers.js';
import {
  errorCode,
  ociManifestType,
  pushBlob,
  pushImage,
  putManifest,
  request,
  sha256,
} from '../support/oci-client.js';

/**
 * Garbage collection and deletes through the HTTP API, each test on a
 * registry of its own: what goes, what stays (multi-arch images and
 * referrers included), the grace window, dry runs, and the space on disk.
 */

async function withServer(
  body: (server: ApiServer) => Promise<void>,
  config: Record<string, unknown> = {},
) {
  const server = await startApiServer(config);
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

async function collect(server: ApiServer, query = 'grace=0s'): Promise<CollectionReport> {
  const reply = await request(`${server.url}/admin/v1/gc?${query}`, { method: 'POST' });
  assert.equal(reply.status, 200, reply.body.toString());
  return reply.json<CollectionReport>();
}

function deleteManifest(server: ApiServer, name: string, reference: string, query = '') {
  const path = `/admin/v1/repositories/${name}/_manifests/${reference}${query}`;
  return request(`${server.url}${path}`, { method: 'DELETE' });
}

const removedDigests = (report: CollectionReport, kind: string) =>
  report.items
    .filter((item) => item.kind === kind)
    .map((item) => item.digest)
    .sort();

describe('gc: blobs', () => {
  test('gc: a deleted image frees its blobs and manifest bytes; a sharing image still pulls', async () => {
    await withServer(async (server) => {
      const shared = randomBytes(2000);
      const kept = await pushImage(server.url, 'app', 'kept', {}, [shared, randomBytes(500)]);
      const gone = await pushImage(server.url, 'app', 'gone', {}, [shared, randomBytes(700)]);
      assert.equal((await deleteManifest(server, 'app', gone.digest)).status, 200);

      const report = await collect(server);
      const unique = [gone.config, gone.layers[1]!, gone.digest].sort();
      assert.deepEqual(removedDigests(report, 'blob'), unique);
      assert.deepEqual(removedDigests(report, 'link'), [gone.config, gone.layers[1]!].sort());
      assert.equal(report.manifests, 0);
      assert.ok(report.bytesFreed > 700);

      const files = await blobFiles(server.root);
      for (const digest of unique) assert.ok(!files.includes(digest), `${digest} is gone`);
      assert.ok(files.includes(sha256(shared)) && files.includes(kept.digest));
      await pullCompletely(server.url, 'app', 'kept');
      assert.equal((await collect(server)).blobs, 0, 'a second run finds nothing');
    });
  });

  test('gc: nothing younger than the grace window goes', async () => {
    await withServer(async (server) => {
      const image = await pushImage(server.url, 'app', 'v1');
      await pushBlob(server.url, 'app', randomBytes(100));
      assert.equal((await deleteManifest(server, 'app', image.digest)).status, 200);

      const recent = await collect(server, 'grace=1h');
      assert.deepEqual([recent.links, recent.blobs, recent.files], [0, 0, 0]);
      const late = await collect(server, 'grace=0s');
      assert.deepEqual([late.links, late.blobs], [3, 4]);
    });
  });

  test('gc: a blob referenced by a manifest stays after its link is deleted', async () => {
    await withServer(async (server) => {
      const image = await pushImage(server.url, 'app', 'v1');
      const layer = image.layers[0]!;
      const unlinked = await request(`${server.url}/v2/app/blobs/${layer}`, { method: 'DELETE' });
      assert.equal(unlinked.status, 202);

      const report = await collect(server);
      assert.equal(report.blobs, 0);
      assert.ok((await blobFiles(server.root)).includes(layer));
    });
  });

  test('gc: a blob another repository references stays when one repository drops it', async () => {
    await withServer(async (server) => {
      const layer = randomBytes(800);
      await pushImage(server.url, 'one', 'v1', {}, [layer]);
      const two = await pushImage(server.url, 'two', 'v1', {}, [layer]);
      assert.equal((await deleteManifest(server, 'two', two.digest)).status, 200);

      const report = await collect(server);
      assert.ok(!removedDigests(report, 'blob').includes(sha256(layer)));
      assert.ok(removedDigests(report, 'link').includes(sha256(layer)));
      await pullCompletely(server.url, 'one', 'v1');
    });
  });

  test('gc: files no record knows go once older than the grace window', async () => {
    await withServer(async (server) => {
      const old = await strayFile(server.root, 60 * 60_000);
      const fresh = await strayFile(server.root, 0);

      const report = await collect(server, 'grace=30m');
      assert.deepEqual(report.items, [{ kind: 'file', digest: old, size: 5 }]);
      const files = await blobFiles(server.root);
      assert.ok(!files.includes(old) && files.includes(fresh));
    });
  });

  test('gc: a blob a client finds is refreshed, so the manifest pushed after it is accepted', async () => {
    await withServer(
      async (server) => {
        const config = await pushBlob(server.url, 'app', Buffer.from('{"os":"linux"}'));
        const idle = await pushBlob(server.url, 'app', randomBytes(64));
        await sleep(1200);
        const found = await request(`${server.url}/v2/app/blobs/${config}`, { method: 'HEAD' });
        assert.equal(found.status, 200);

        const report = await collect(server, 'grace=1s');
        assert.deepEqual(removedDigests(report, 'link'), [idle]);
        const manifest = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: ociManifestType,
            config: {
              mediaType: 'application/vnd.oci.image.config.v1+json',
              digest: config,
              size: 14,
            },
            layers: [],
          }),
        );
        const pushed = await putManifest(server.url, 'app', 'v1', manifest, ociManifestType);
        assert.equal(pushed.status, 201, pushed.body.toString());
      },
      { gc: { grace: '2s' } },
    );
  });
});

/** A file in blobs/ that no record knows, last written `ageMs` ago. */
async function strayFile(root: string, ageMs: number): Promise<string> {
  const bytes = Buffer.from(randomUUID().slice(0, 5));
  const digest = sha256(bytes);
  await mkdir(dirname(blobPath(root, digest)), { recursive: true });
  await writeFile(blobPath(root, digest), bytes);
  const when = new Date(Date.now() - ageMs);
  await utimes(blobPath(root, digest), when, when);
  return digest;
}

describe('gc: untagged manifests', () => {
  test('gc: keeps a tagged index, its children and its signature; removes untagged images', async () => {
    await withServer(async (server) => {
      const index = await pushMultiArch(server.url, 'app', 'v1');
      const signature = await pushReferrer(server.url, 'app', {
        ...index,
        mediaType: 'application/vnd.oci.image.index.v1+json',
      });
      const loose = await pushImage(server.url, 'app', 'tmp');
      await request(`${server.url}/v2/app/manifests/tmp`, { method: 'DELETE' });
      const orphanIndex = await pushMultiArch(server.url, 'app', 'old');
      await request(`${server.url}/v2/app/manifests/old`, { method: 'DELETE' });

      const report = await collect(server, 'grace=0s&untagged=true');
      const expected = [
        loose.digest,
        orphanIndex.digest,
        ...orphanIndex.children.map((c) => c.digest),
      ];
      assert.deepEqual(removedDigests(report, 'manifest'), expected.sort());

      await pullCompletely(server.url, 'app', 'v1');
      await pullCompletely(server.url, 'app', signature.digest);
      const referrers = await request(`${server.url}/v2/app/referrers/${index.digest}`);
      assert.equal(referrers.json<{ manifests: unknown[] }>().manifests.length, 1);
      for (const digest of expected) {
        const reply = await request(`${server.url}/v2/app/manifests/${digest}`);
        assert.equal(reply.status, 404, digest);
      }
    });
  });

  test('gc: an untagged index takes its children and its signature along; nothing stays behind', async () => {
    await withServer(async (server) => {
      const before = await blobFiles(server.root);
      const index = await pushMultiArch(server.url, 'app', 'v1');
      await pushReferrer(server.url, 'app', {
        ...index,
        mediaType: 'application/vnd.oci.image.index.v1+json',
      });
      await request(`${server.url}/v2/app/manifests/v1`, { method: 'DELETE' });

      const report = await collect(server, 'grace=0s&untagged=true');
      assert.equal(report.manifests, 4);
      assert.deepEqual(await blobFiles(server.root), before);
      const catalog = await request(`${server.url}/v2/_catalog`);
      assert.deepEqual(catalog.json(), { repositories: [] });
    });
  });

  test('gc: untagged manifests stay unless gc.untagged is set', async () => {
    await withServer(async (server) => {
      const image = await pushImage(server.url, 'app', 'tmp');
      await request(`${server.url}/v2/app/manifests/tmp`, { method: 'DELETE' });
      assert.equal((await collect(server)).manifests, 0);
      await pullCompletely(server.url, 'app', image.digest);
    });
  });

  test('gc: a dry run lists exactly what the run then removes, and changes nothing', async () => {
    await withServer(async (server) => {
      await pushMultiArch(server.url, 'app', 'v1');
      const dropped = await pushMultiArch(server.url, 'app', 'v2', ['amd64', 'arm64', 's390x']);
      await pushReferrer(server.url, 'app', {
        ...dropped,
        mediaType: 'application/vnd.oci.image.index.v1+json',
      });
      await request(`${server.url}/v2/app/manifests/v2`, { method: 'DELETE' });
      const gone = await pushImage(server.url, 'other', 'v1');
      await deleteManifest(server, 'other', gone.digest);
      await pushBlob(server.url, 'other', randomBytes(50));
      const stray = await strayFile(server.root, 60_000);
      const files = await blobFiles(server.root);

      const dry = await collect(server, 'grace=0s&untagged=true&dryRun=true');
      assert.equal(dry.dryRun, true);
      assert.deepEqual(await blobFiles(server.root), files, 'a dry run removes nothing');
      await pullCompletely(server.url, 'app', dropped.digest);

      const run = await collect(server, 'grace=0s&untagged=true');
      for (const kind of ['manifest', 'link', 'blob', 'file']) {
        assert.deepEqual(removedDigests(run, kind), removedDigests(dry, kind), kind);
      }
      assert.equal(run.bytesFreed, dry.bytesFreed);
      assert.ok(removedDigests(run, 'file').includes(stray));
      await pullCompletely(server.url, 'app', 'v1');
    });
  });
});

describe('deletes', () => {
  test('deletes: a repository delete empties it and drops it from the catalog; gc frees what only it held', async () => {
    await withServer(async (server) => {
      const shared = randomBytes(600);
      await pushImage(server.url, 'team/app', 'v1', {}, [shared]);
      const unique = await pushImage(server.url, 'team/app', 'v2');
      await pushImage(server.url, 'team/other', 'v1', {}, [shared]);
      const session = await request(`${server.url}/v2/team/app/blobs/uploads/`, { method: 'POST' });

      const reply = await request(`${server.url}/admin/v1/repositories/team/app`, {
        method: 'DELETE',
      });
      assert.equal(reply.status, 200, reply.body.toString());
      assert.deepEqual(reply.json(), {
        repository: 'team/app',
        manifests: 2,
        tags: 2,
        blobLinks: 4,
        uploads: 1,
      });
      assert.deepEqual((await request(`${server.url}/v2/_catalog`)).json(), {
        repositories: ['team/other'],
      });
      assert.equal((await request(`${server.url}/v2/team/app/tags/list`)).status, 404);
      assert.equal((await request(`${server.url}/v2/team/app/manifests/v1`)).status, 404);
      assert.equal(
        (await request(`${server.url}/v2/team/app/blobs/${sha256(shared)}`)).status,
        404,
      );
      const location = session.headers.get('location') ?? '';
      assert.equal((await request(`${server.url}${location}`)).status, 404);
      const again = await request(`${server.url}/admin/v1/repositories/team/app`, {
        method: 'DELETE',
      });
      assert.equal(errorCode(again), 'NAME_UNKNOWN');

      const report = await collect(server);
      assert.ok(removedDigests(report, 'blob').includes(unique.layers[0]!));
      assert.ok(!removedDigests(report, 'blob').includes(sha256(shared)));
      await pullCompletely(server.url, 'team/other', 'v1');
    });
  });

  test('deletes: referrers=true takes signatures and SBOMs along, recursively', async () => {
    await withServer(async (server) => {
      const image = await pushImage(server.url, 'app', 'v1');
      const signature = await pushReferrer(server.url, 'app', image);
      const sbom = await pushReferrer(server.url, 'app', image, 'application/spdx+json');
      const countersign = await pushReferrer(server.url, 'app', signature);
      const other = await pushImage(server.url, 'app', 'v2');
      await pushReferrer(server.url, 'app', other);

      const reply = await deleteManifest(server, 'app', image.digest, '?referrers=true');
      assert.equal(reply.status, 200, reply.body.toString());
      const body = reply.json<{ manifests: string[]; tags: number }>();
      const expected = [image.digest, signature.digest, sbom.digest, countersign.digest];
      assert.deepEqual(body.manifests.sort(), expected.sort());
      assert.equal(body.tags, 1);
      const left = await request(`${server.url}/v2/app/referrers/${other.digest}`);
      assert.equal(left.json<{ manifests: unknown[] }>().manifests.length, 1);
    });
  });

  test('deletes: a manifest an index lists answers 409 until the index is gone', async () => {
    await withServer(async (server) => {
      const index = await pushMultiArch(server.url, 'app', 'v1');
      const child = index.children[0]!.digest;
      const viaSpec = await request(`${server.url}/v2/app/manifests/${child}`, {
        method: 'DELETE',
      });
      assert.equal(viaSpec.status, 409);
      assert.equal(errorCode(viaSpec), 'UNSUPPORTED');
      assert.equal((await deleteManifest(server, 'app', child)).status, 409);
      await pullCompletely(server.url, 'app', 'v1');

      assert.equal((await deleteManifest(server, 'app', index.digest)).status, 200);
      assert.equal((await deleteManifest(server, 'app', child)).status, 200);
    });
  });

  test('deletes: a tag delete through /admin/v1 leaves the manifest', async () => {
    await withServer(async (server) => {
      const image = await pushImage(server.url, 'app', 'v1');
      const reply = await deleteManifest(server, 'app', 'v1');
      assert.deepEqual(reply.json(), {
        repository: 'app',
        reference: 'v1',
        manifests: [],
        tags: 1,
      });
      await pullCompletely(server.url, 'app', image.digest);
      assert.equal(errorCode(await deleteManifest(server, 'app', 'v1')), 'MANIFEST_UNKNOWN');
    });
  });

  test('deletes: with storage.delete.enabled false the admin deletes answer 405', async () => {
    await withServer(
      async (server) => {
        await pushImage(server.url, 'app', 'v1');
        const repo = await request(`${server.url}/admin/v1/repositories/app`, { method: 'DELETE' });
        assert.equal(repo.status, 405);
        assert.equal((await deleteManifest(server, 'app', 'v1')).status, 405);
        await pullCompletely(server.url, 'app', 'v1');
      },
      { storage: { delete: { enabled: false } } },
    );
  });

  test('gc: read-only mode refuses a collection but allows a dry run', async () => {
    await withServer(
      async (server) => {
        const refused = await request(`${server.url}/admin/v1/gc`, { method: 'POST' });
        assert.equal(refused.status, 405);
        assert.equal((await collect(server, 'dryRun=true')).dryRun, true);
        const del = await request(`${server.url}/admin/v1/repositories/app`, { method: 'DELETE' });
        assert.equal(del.status, 405);
      },
      { storage: { maintenance: { readonly: { enabled: true } } } },
    );
  });

  test('gc: a collection while another holds the lease answers 409; bad parameters 400', async () => {
    await withServer(async (server) => {
      const now = Date.now();
      const held = await server.registry.metadata.acquireLease(
        'gc',
        'elsewhere/1/x',
        now + 60_000,
        {
          now,
        },
      );
      assert.ok(held);
      const busy = await request(`${server.url}/admin/v1/gc`, { method: 'POST' });
      assert.equal(busy.status, 409);
      assert.match(busy.json<{ errors: { message: string }[] }>().errors[0]!.message, /elsewhere/);
      await server.registry.metadata.releaseLease('gc', 'elsewhere/1/x');

      const bad = await request(`${server.url}/admin/v1/gc?grace=soon`, { method: 'POST' });
      assert.equal(bad.status, 400);
      assert.equal((await request(`${server.url}/admin/v1/gc`)).status, 405);
      assert.equal((await request(`${server.url}/admin/v1/nothing`)).status, 404);
    });
  });
});

describe('upload purging', () => {
  test('uploads: purging removes idle sessions and orphan staging areas, keeps active ones', async () => {
    await withServer(async (server) => {
      const { registry } = server;
      const hourAgo = Date.now() - 3_600_000;
      const idle = randomUUID();
      await registry.blobStore.appendUpload(idle, 0, Readable.from([]));
      await registry.metadata.createUpload({
        id: idle,
        repository: 'app',
        startedAt: hourAgo,
        updatedAt: hourAgo,
      });
      const orphan = randomUUID();
      await registry.blobStore.appendUpload(orphan, 0, Readable.from([]));
      const old = new Date(hourAgo);
      await utimes(`${server.root}/uploads/${orphan}`, old, old);
      const active = await request(`${server.url}/v2/app/blobs/uploads/`, { method: 'POST' });
      const log = createSilentLogger();

      const dry = await registry.uploadPurger.purge({ ageMs: 60_000, dryRun: true, log });
      assert.ok(dry.ran && dry.report.sessions === 1 && dry.report.orphans === 1);
      assert.equal(await registry.blobStore.uploadSize(orphan), 0);

      const run = await registry.uploadPurger.purge({ ageMs: 60_000, dryRun: false, log });
      assert.ok(run.ran && run.report.sessions === 1 && run.report.orphans === 1);
      assert.equal(await registry.blobStore.uploadSize(orphan), undefined);
      const purged = await request(`${server.url}/v2/app/blobs/uploads/${idle}`);
      assert.equal(purged.status, 404);
      const location = active.headers.get('location') ?? '';
      assert.equal((await request(`${server.url}${location}`)).status, 204);
    });
  });
});
