import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { createLogger, createSilentLogger, type Logger } from '../../src/log/logger.js';
import { Retention, retentionRulesOf } from '../../src/registry/retention.js';
import { startApiServer, type ApiServer } from '../support/api-server.js';
import {
  ociIndexType,
  ociManifestType,
  pushBlob,
  putManifest,
  request,
  sha256,
} from '../support/oci-client.js';

/**
 * Retention through the registry: images pushed over HTTP, rules from the
 * configuration, a run at a chosen time, then what a client still sees.
 */

const HOUR = 3_600_000;
const later = () => Date.now() + 2 * HOUR;

let server: ApiServer;

before(async () => {
  server = await startApiServer({
    immutability: { tags: [{ repositories: 'frozen/**', tags: ['v*'] }] },
  });
});

after(() => server.close());

interface Pushed {
  digest: string;
  size: number;
  mediaType: string;
}

function retention(rules: unknown[], log: Logger = createSilentLogger()): Retention {
  const config = validateConfig({ retention: { rules } }, 'test');
  const { metadata, rules: registryRules } = server.registry;
  return new Retention(metadata, retentionRulesOf(config), registryRules.immutableTags, log);
}

/** PUTs a manifest document under `reference`, or untagged under its digest. */
async function pushManifest(
  name: string,
  document: { mediaType: string; [key: string]: unknown },
  reference?: string,
) {
  const bytes = Buffer.from(JSON.stringify(document));
  const digest = sha256(bytes);
  const reply = await putManifest(server.url, name, reference ?? digest, bytes, document.mediaType);
  assert.equal(reply.status, 201, reply.body.toString());
  return { digest, size: bytes.length, mediaType: document.mediaType };
}

/** An image of a fresh config and layer; `extra` adds fields such as `subject`. */
async function pushImage(name: string, reference?: string, extra: object = {}): Promise<Pushed> {
  const configBytes = Buffer.from(JSON.stringify({ id: randomUUID() }));
  const layerBytes = randomBytes(64);
  const descriptor = (digest: string, size: number, mediaType: string) => ({
    mediaType,
    digest,
    size,
  });
  const config = await pushBlob(server.url, name, configBytes);
  const layer = await pushBlob(server.url, name, layerBytes);
  const document = {
    schemaVersion: 2,
    mediaType: ociManifestType,
    config: descriptor(config, configBytes.length, 'application/vnd.oci.image.config.v1+json'),
    layers: [descriptor(layer, layerBytes.length, 'application/vnd.oci.image.layer.v1.tar')],
    ...extra,
  };
  return pushManifest(name, document, reference);
}

async function pushIndex(name: string, children: Pushed[], reference?: string) {
  const manifests = children.map((child, i) => ({
    ...child,
    platform: { os: 'linux', architecture: i === 0 ? 'amd64' : 'arm64' },
  }));
  return pushManifest(name, { schemaVersion: 2, mediaType: ociIndexType, manifests }, reference);
}

/** A signature-like artifact whose subject is `subject`, untagged. */
async function pushReferrer(name: string, subject: Pushed) {
  return pushImage(name, undefined, {
    artifactType: 'application/vnd.example.signature',
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
  });
}

async function tagsOf(name: string): Promise<string[]> {
  const reply = await request(`${server.url}/v2/${name}/tags/list`);
  return reply.status === 200 ? reply.json<{ tags: string[] }>().tags : [];
}

async function exists(name: string, manifest: Pushed): Promise<boolean> {
  const reply = await request(`${server.url}/v2/${name}/manifests/${manifest.digest}`, {
    method: 'HEAD',
    headers: { Accept: `${ociManifestType}, ${ociIndexType}` },
  });
  return reply.status === 200;
}

/** Tags pushed one after another, each a little later than the one before. */
async function pushTags(name: string, tags: string[]): Promise<Record<string, Pushed>> {
  const pushed: Record<string, Pushed> = {};
  for (const tag of tags) {
    pushed[tag] = await pushImage(name, tag);
    await sleep(3);
  }
  return pushed;
}

describe('retention', () => {
  it('retention: keeplatest removes all but the newest tags; their manifests stay', async () => {
    const pushed = await pushTags('keep/latest', ['t1', 't2', 't3', 't4', 't5']);
    const report = await retention([{ repositories: 'keep/*', keeplatest: 2 }]).run();

    assert.deepEqual(await tagsOf('keep/latest'), ['t4', 't5']);
    assert.deepEqual(report.repositories, [
      {
        repository: 'keep/latest',
        tags: ['t3', 't2', 't1'].map((name) => ({ name, digest: pushed[name]?.digest })),
        manifests: [],
        skipped: 0,
      },
    ]);
    assert.ok(await exists('keep/latest', pushed.t1!), 'without removeuntaggedafter');
  });

  it('retention: keeptags patterns and removetagsolderthan decide together', async () => {
    await pushTags('keep/patterns', ['dev-1', 'v1.0', 'release-2', 'dev-2', 'latest']);
    const rules = [
      {
        repositories: 'keep/patterns',
        keeplatest: 1,
        keeptags: ['v*', 'release-*'],
        removetagsolderthan: '1h',
      },
    ];
    const now = await retention(rules).run();
    assert.equal(now.tagsRemoved, 0, 'nothing is an hour old yet');

    await retention(rules).run({ now: later() });
    assert.deepEqual(await tagsOf('keep/patterns'), ['latest', 'release-2', 'v1.0']);
  });

  it('retention: untagged manifests go after the duration, tagged ones stay', async () => {
    const first = await pushImage('untagged/app', 'latest');
    const second = await pushImage('untagged/app', 'latest');
    const rules = [{ repositories: 'untagged/**', removeuntaggedafter: '1h' }];

    assert.equal((await retention(rules).run()).manifestsRemoved, 0);
    const report = await retention(rules).run({ now: later() });
    assert.deepEqual(report.repositories[0]?.manifests, [
      { digest: first.digest, mediaType: ociManifestType },
    ]);
    assert.equal(await exists('untagged/app', first), false);
    assert.equal(await exists('untagged/app', second), true);
  });

  it('retention: a tagged multi-arch index keeps its untagged children', async () => {
    const amd64 = await pushImage('multi/app');
    const arm64 = await pushImage('multi/app');
    const index = await pushIndex('multi/app', [amd64, arm64], 'latest');
    const rules = [{ repositories: 'multi/**', removeuntaggedafter: '1h' }];

    assert.equal((await retention(rules).run({ now: later() })).manifestsRemoved, 0);
    for (const manifest of [index, amd64, arm64]) assert.ok(await exists('multi/app', manifest));
  });

  it('retention: an untagged index goes, then its children, not a child shared with a kept one', async () => {
    const amd64 = await pushImage('multi/gone');
    const arm64 = await pushImage('multi/gone');
    const old = await pushIndex('multi/gone', [amd64, arm64]);
    const kept = await pushIndex('multi/gone', [arm64], 'kept');
    const rules = [{ repositories: 'multi/**', removeuntaggedafter: '1h' }];

    const report = await retention(rules).run({ now: later() });
    assert.deepEqual(
      report.repositories[0]?.manifests.map((manifest) => manifest.digest),
      [old.digest, amd64.digest],
    );
    assert.equal(await exists('multi/gone', old), false);
    assert.equal(await exists('multi/gone', amd64), false);
    assert.ok(await exists('multi/gone', arm64));
    assert.ok(await exists('multi/gone', kept));
  });

  it('retention: referrers stay while their subject stays, and go with it', async () => {
    const image = await pushImage('signed/app', 'v1');
    const signature = await pushReferrer('signed/app', image);
    const child = await pushImage('signed/app');
    const index = await pushIndex('signed/app', [child], 'multi');
    const childSbom = await pushReferrer('signed/app', child);
    const rules = [{ repositories: 'signed/**', keeplatest: 1, removeuntaggedafter: '1h' }];

    await sleep(3);
    await pushImage('signed/app', 'newest');
    const report = await retention(rules).run({ now: later() });

    assert.deepEqual(await tagsOf('signed/app'), ['newest']);
    const removed = report.repositories[0]?.manifests.map((manifest) => manifest.digest) ?? [];
    assert.deepEqual(
      new Set(removed),
      new Set([image, signature, index, child, childSbom].map((m) => m.digest)),
    );
    assert.ok(removed.indexOf(image.digest) < removed.indexOf(signature.digest));
    assert.ok(removed.indexOf(index.digest) < removed.indexOf(child.digest));
    assert.ok(removed.indexOf(child.digest) < removed.indexOf(childSbom.digest));
    const referrers = await request(`${server.url}/v2/signed/app/referrers/${image.digest}`);
    assert.deepEqual(referrers.json<{ manifests: unknown[] }>().manifests, []);
  });

  it('retention: a cosign-style signature tag stays with its image and goes with it', async () => {
    const image = await pushImage('cosign/app', 'v1');
    const sigTag = `${image.digest.replace(':', '-')}.sig`;
    const signature = await pushImage('cosign/app', sigTag);
    await sleep(3);
    await pushImage('cosign/app', 'v2');
    const rules = [{ repositories: 'cosign/**', keeplatest: 1, removeuntaggedafter: '1h' }];

    await retention(rules).run();
    assert.deepEqual(await tagsOf('cosign/app'), [sigTag, 'v2']);
    await retention(rules).run({ now: later() });
    assert.deepEqual(await tagsOf('cosign/app'), ['v2']);
    assert.equal(await exists('cosign/app', image), false);
    assert.equal(await exists('cosign/app', signature), false);
  });

  it('retention: a dry run reports what a run removes and changes nothing', async () => {
    await pushTags('dry/app', ['a', 'b', 'c']);
    const untagged = await pushImage('dry/app');
    const rules = [{ repositories: 'dry/**', keeplatest: 1, removeuntaggedafter: '1h' }];
    const now = later();

    const preview = await retention(rules).run({ dryRun: true, now });
    assert.equal(preview.dryRun, true);
    assert.equal(preview.tagsRemoved, 2);
    assert.equal(preview.manifestsRemoved, 3);
    assert.deepEqual(await tagsOf('dry/app'), ['a', 'b', 'c']);
    assert.ok(await exists('dry/app', untagged));

    const run = await retention(rules).run({ now });
    assert.deepEqual(run.repositories, preview.repositories);
    assert.deepEqual(await tagsOf('dry/app'), ['c']);
  });

  it('retention: immutable tags are never removed', async () => {
    await pushTags('frozen/app', ['v1', 'v2', 'dev']);
    await retention([{ repositories: 'frozen/**', keeplatest: 0 }]).run();
    assert.deepEqual(await tagsOf('frozen/app'), ['v1', 'v2']);
  });

  it('retention: the first rule matching a repository is its only rule', async () => {
    await pushTags('first/exempt', ['a', 'b']);
    await pushTags('first/other', ['a', 'b']);
    const rules = [{ repositories: 'first/exempt' }, { repositories: 'first/*', keeplatest: 1 }];
    await retention(rules).run();
    assert.deepEqual(await tagsOf('first/exempt'), ['a', 'b']);
    assert.deepEqual(await tagsOf('first/other'), ['b']);
  });

  it('retention: each run logs its removals per repository and a summary', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        callback();
      },
    });
    const log = createLogger({ level: 'info' }, sink);
    await pushTags('logged/app', ['old', 'new']);
    await retention([{ repositories: 'logged/**', keeplatest: 1 }], log).run();

    const removal = lines.find((line) => line.msg === 'retention removed');
    assert.equal(removal?.repository, 'logged/app');
    assert.deepEqual(
      (removal?.tags as { name: string }[]).map((tag) => tag.name),
      ['old'],
    );
    const summary = lines.find((line) => line.msg === 'retention run');
    assert.equal(summary?.tagsRemoved, 1);
    assert.equal(summary?.dryRun, false);
  });
});
