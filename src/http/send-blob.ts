import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { BlobFile, ByteRange } from '../storage/blob-store.js';
import { returnBuffers, spareSize, takeBuffer } from '../storage/spare-buffers.js';
import type { RequestContext } from './context.js';
import type { Headers } from './respond.js';

/**
 * Writes a blob's bytes to the response. With a driver that reads by
 * position, two buffers take turns: one is read into while the socket takes
 * the other, and a buffer is reused only once the socket has taken all of
 * it. A pull then allocates nothing per chunk, which keeps memory flat and
 * the garbage collector idle however many bytes go out. The buffers are
 * no larger than the blob: a 1 KiB layer needs no 2 MiB to go out.
 */

/** Opens the blob first, so that a missing file is still an error response, then writes it. */
export async function sendBlob(
  ctx: RequestContext,
  digest: string,
  range: ByteRange,
  status: number,
  headers: Headers,
) {
  const file = await ctx.registry.blobs.open(digest);
  if (!file) {
    const source = await ctx.registry.blobs.read(digest, range);
    ctx.res.writeHead(status, headers);
    await pipeline(source, ctx.res, { signal: ctx.signal });
    return;
  }
  try {
    ctx.res.writeHead(status, headers);
    await copyRange(file, range, ctx.res, ctx.signal);
  } finally {
    await file.close();
  }
}

async function copyRange(
  file: BlobFile,
  range: ByteRange,
  res: ServerResponse,
  signal: AbortSignal,
) {
  let remaining = range.end - range.start + 1;
  const chunkSize = Math.max(1, Math.min(spareSize, remaining));
  const buffers = [takeBuffer(chunkSize), takeBuffer(chunkSize)];
  let position = range.start;
  let turn = 0;
  let reading = file.read(buffers[0]!, Math.min(chunkSize, remaining), position);

  while (remaining > 0) {
    const count = await reading;
    if (count === 0) throw new Error(`Blob ended ${remaining} bytes early at byte ${position}`);
    const current = buffers[turn]!.subarray(0, count);
    position += count;
    remaining -= count;
    turn ^= 1;
    if (remaining > 0)
      reading = file.read(buffers[turn]!, Math.min(chunkSize, remaining), position);
    await writeChunk(res, current, signal);
  }
  res.end();
  // Only here is every write done: after a failure the socket or a read may
  // still hold a buffer, which is then left to the collector.
  returnBuffers(buffers);
}

/** Resolves once the socket has taken the whole chunk, so its buffer may be reused. */
function writeChunk(res: ServerResponse, chunk: Buffer, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    res.write(chunk, (error) => (error ? reject(error) : resolve()));
  });
}
