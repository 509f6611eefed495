import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { FileSink } from '../../src/storage/file-sink.js';

/** A temporary file holding `initial`, opened as the blob store opens staged files. */
async function withFile(
  initial: Buffer,
  flags: number,
  body: (fd: number, path: string) => Promise<void>,
): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), 'berth-file-sink-'));
  const path = join(directory, 'staged');
  await writeFile(path, initial);
  const fd = openSync(path, flags);
  try {
    await body(fd, path);
  } finally {
    closeSync(fd);
    await rm(directory, { recursive: true, force: true });
  }
}

/** Many chunks offered at once, so that queued chunks go down together. */
function chunksOf(bytes: Buffer, size: number): Readable {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
  return Readable.from(chunks, { objectMode: false });
}

test('file sink: chunks land in order after the starting position', async () => {
  const head = Buffer.from('staged-before:');
  const body = randomBytes(9 << 20);
  await withFile(head, constants.O_RDWR, async (fd, path) => {
    const sink = new FileSink(fd, head.length, { highWaterMark: 1 << 20 });
    await pipeline(chunksOf(body, 64 << 10), sink);
    assert.equal(sink.bytesWritten, body.length);
    assert.deepEqual(await readFile(path), Buffer.concat([head, body]));
  });
});

test('file sink: a failed write fails the stream and counts nothing written', async () => {
  await withFile(Buffer.alloc(0), constants.O_RDONLY, async (fd) => {
    const sink = new FileSink(fd, 0, { highWaterMark: 1 << 20 });
    await assert.rejects(pipeline(chunksOf(randomBytes(3 << 20), 64 << 10), sink), {
      code: 'EBADF',
    });
    await sink.settled();
    assert.equal(sink.bytesWritten, 0);
  });
});

test('file sink: bodies of odd sizes land whole, below and above the copying threshold', async () => {
  for (const [size, chunk] of [
    [100 << 10, 7_000],
    [(3 << 20) + 17, 65_521],
    [1 << 20, 1 << 20],
  ] as const) {
    const body = randomBytes(size);
    await withFile(Buffer.alloc(0), constants.O_RDWR, async (fd, path) => {
      const sink = new FileSink(fd, 0);
      await pipeline(chunksOf(body, chunk), sink);
      assert.equal(sink.bytesWritten, size);
      assert.deepEqual(await readFile(path), body, `${size} bytes in chunks of ${chunk}`);
    });
  }
});

test('file sink: once a failed source has settled it, no write lands', async () => {
  await withFile(Buffer.alloc(0), constants.O_RDWR, async (fd, path) => {
    const sink = new FileSink(fd, 0);
    function* failing() {
      for (let i = 0; i < 40; i++) yield randomBytes(64 << 10);
      throw new Error('client went away');
    }
    await assert.rejects(pipeline(Readable.from(failing()), sink), /client went away/);
    await sink.settled();
    const size = (await readFile(path)).length;
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal((await readFile(path)).length, size);
    assert.ok(size <= 40 * (64 << 10));
  });
});

test('file sink: with direct writes, bodies from aligned and unaligned starts land whole', async () => {
  for (const start of [0, 1000, 4096]) {
    const head = randomBytes(start);
    const body = randomBytes((5 << 20) + 123);
    await withFile(head, constants.O_RDWR, async (fd, path) => {
      const sink = new FileSink(fd, start, { directPath: path });
      await pipeline(chunksOf(body, 65_521), sink);
      assert.equal(sink.bytesWritten, body.length);
      assert.deepEqual(await readFile(path), Buffer.concat([head, body]), `from byte ${start}`);
    });
  }
});
