import assert from 'node:assert/strict';
import { constants } from 'node:perf_hooks';
import { describe, it } from 'node:test';

import { collectGarbage } from '../../src/registry/garbage-collection.js';
import { CollectionCadence } from '../../src/registry/received-bytes.js';
import { collectionKindsDuring } from '../support/collections.js';

describe('received bytes', () => {
  it('received bytes: a collection runs once every 2 MiB received, not before', () => {
    let collections = 0;
    const cadence = new CollectionCadence(() => collections++);
    for (let i = 0; i < 31; i++) cadence.note(64 << 10);
    assert.equal(collections, 0);
    cadence.note(64 << 10);
    assert.equal(collections, 1);
    for (let i = 0; i < 32 * 3; i++) cadence.note(64 << 10);
    assert.equal(collections, 4);
  });

  it('received bytes: the collection is a young-generation collection of V8', async () => {
    const kinds = await collectionKindsDuring(() => {
      for (let i = 0; i < 5; i++) collectGarbage('minor');
    });
    const minor = kinds.filter((kind) => kind === constants.NODE_PERFORMANCE_GC_MINOR);
    assert.ok(minor.length >= 5, `young collections seen: ${minor.length} of ${kinds.length}`);
  });
});
