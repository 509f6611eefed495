import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { startApiServer, type ApiServer } from '../support/api-server.js';
import { blobFiles, pullCompletely, pushMultiArch } from '../support/gc-helpers.js';
import { pushImage, request, sha256 } from '../support/oci-client.js';

/**
 * `berth gc`, `berth repo delete` and `berth manifest delete` as separate
 * processes beside a registry that keeps serving: the configuration comes
 * from `REGISTRY_*` variables, as `berth serve` would read it.
 */

const run = promisify(execFile);
const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

let server: ApiServer;

before(async () => {
  server = await startApiServer();
});
after(() => server.close());

async function berth(args: string[], extraEnv: Record<string, string> = {}) {
  const env = {
    ...process.env,
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: server.root,
    REGISTRY_LOG_LEVEL: 'info',
    ...extraEnv,
  };
  return run(process.execPath, [main, ...args], { env });
}

describe('berth gc and deletes', () => {
  test('berth gc: --dry-run lists what would go and the bytes, then a run frees them', async () => {
    const layer = randomBytes(4096);
    const image = await pushImage(server.url, 'cli/app', 'v1', {}, [layer]);
    await pushImage(server.url, 'cli/app', 'v2');
    await request(`${server.url}/v2/cli/app/manifests/${image.digest}`, { method: 'DELETE' });

    const dry = await berth(['gc', '--dry-run', '--grace', '0s']);
    assert.match(dry.stdout, new RegExp(`blob +${sha256(layer)} \\(4\\.0 KiB\\)`));
    assert.match(
      dry.stdout,
      /^Would remove 0 manifests, 2 blob links, 3 blobs, 0 unrecorded files: .* would be freed/m,
    );
    assert.match(dry.stderr, /"msg":"gc would remove"/);
    assert.ok((await blobFiles(server.root)).includes(sha256(layer)));

    const done = await berth(['gc', '--grace', '0s']);
    assert.match(done.stdout, /^Removed 0 manifests, 2 blob links, 3 blobs, 0 unrecorded files: /m);
    assert.match(done.stderr, /"msg":"gc finished"/);
    assert.ok(!(await blobFiles(server.root)).includes(sha256(layer)));
    await pullCompletely(server.url, 'cli/app', 'v2');
  });

  test('berth gc: the default grace window keeps what was just pushed', async () => {
    const image = await pushImage(server.url, 'cli/fresh', 'v1');
    await request(`${server.url}/v2/cli/fresh/manifests/${image.digest}`, { method: 'DELETE' });
    const done = await berth(['gc', '--json']);
    const report = JSON.parse(done.stdout) as { graceMs: number; blobs: number };
    assert.equal(report.graceMs, 3_600_000);
    assert.equal(report.blobs, 0);
  });

  test('berth manifest delete --referrers and berth repo delete', async () => {
    const index = await pushMultiArch(server.url, 'cli/multi', 'v1');
    const child = index.children[0]!.digest;
    const refused = await berth(['manifest', 'delete', `cli/multi@${child}`]).catch(
      (error: { stderr: string }) => error,
    );
    assert.match(refused.stderr, /listed by index/);

    const tag = await berth(['manifest', 'delete', 'cli/multi:v1']);
    assert.match(tag.stdout, /Deleted 0 manifests, 1 tag\./);
    const tree = await berth(['manifest', 'delete', `cli/multi@${index.digest}`, '--referrers']);
    assert.match(tree.stdout, /Deleted 1 manifest, 0 tags\./);

    const repo = await berth(['repo', 'delete', 'cli/multi']);
    assert.match(repo.stdout, /Deleted repository cli\/multi: 2 manifests, 0 tags, 4 blob links/);
    const catalog = await request(`${server.url}/v2/_catalog`);
    assert.ok(!catalog.json<{ repositories: string[] }>().repositories.includes('cli/multi'));

    const disabled = await berth(['repo', 'delete', 'cli/app'], {
      REGISTRY_STORAGE_DELETE_ENABLED: 'false',
    }).catch((error: { stderr: string }) => error);
    assert.match(disabled.stderr, /storage.delete.enabled is false/);
  });
});
