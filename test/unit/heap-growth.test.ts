import assert from 'node:assert/strict';
import { constants } from 'node:perf_hooks';
import { describe, it } from 'node:test';

import { GrowthCheck } from '../../src/registry/heap-growth.js';
import { collectGarbage } from '../../src/registry/garbage-collection.js';
import { collectionKindsDuring } from '../support/collections.js';

const MiB = 1 << 20;

describe('heap growth', () => {
  it('heap growth: a collection runs once the heap grew by 12 MiB since the last one', () => {
    let used = 20 * MiB;
    let collections = 0;
    const check = new GrowthCheck(
      () => used,
      () => {
        collections++;
        used = 22 * MiB;
      },
    );
    used = 31 * MiB;
    check.check();
    assert.equal(collections, 0);
    used = 32 * MiB;
    check.check();
    assert.equal(collections, 1);
    // Measured from what the collection left: 22 MiB.
    used = 33 * MiB;
    check.check();
    assert.equal(collections, 1);
    used = 34 * MiB;
    check.check();
    assert.equal(collections, 2);
  });

  it('heap growth: a heap that shrank on its own moves the mark down', () => {
    let used = 30 * MiB;
    let collections = 0;
    const check = new GrowthCheck(
      () => used,
      () => collections++,
    );
    used = 10 * MiB;
    check.check();
    used = 22 * MiB;
    check.check();
    assert.equal(collections, 1);
  });

  it('heap growth: the collection is a full collection of V8', async () => {
    const kinds = await collectionKindsDuring(() => collectGarbage('full'));
    assert.ok(
      kinds.includes(constants.NODE_PERFORMANCE_GC_MAJOR),
      `kinds of collection seen: ${kinds.join(', ')}`,
    );
  });
});
