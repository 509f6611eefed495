/**
 * Buffers that blobs stream through, kept between requests in this thread:
 * pulls read into them (http/send-blob.ts) and uploads copy into them
 * (file-sink.ts). Two sizes: 1 MiB for uploads and for pulls that run
 * beside others, 2 MiB for a pull on its own, which then needs half the
 * round trips through the thread pool and the socket (one pull of 256 MiB:
 * 3,140 to 3,200 MB/s against 2,620 to 2,750 with 1 MiB).
 *
 * A buffer made for one request and then dropped is external memory that V8
 * frees only after tens of MB of such memory piled up, and counting it
 * towards the old generation's limit makes V8 mark the whole heap again and
 * again meanwhile: 8 connections pulling raised peak memory by about 40 MB
 * before pulls kept their buffers (docs/performance.md). At most 16 MiB of
 * them wait here per thread.
 */

export const spareSize = 1 << 20;
export const largeSpareSize = 2 << 20;
const keptBytes = 16 << 20;

const spares = new Map<number, Buffer[]>([
  [spareSize, []],
  [largeSpareSize, []],
]);
let kept = 0;

/** A buffer of `size` bytes; a spare one when `size` is one of the two kept. */
export function takeBuffer(size = spareSize): Buffer {
  return takeSpare(size, () => true) ?? Buffer.allocUnsafeSlow(size);
}

/** A kept buffer of `size` bytes that `wanted` accepts, if one waits here. */
export function takeSpare(size: number, wanted: (buffer: Buffer) => boolean): Buffer | undefined {
  const list = spares.get(size) ?? [];
  for (let index = list.length - 1; index >= 0; index--) {
    if (!wanted(list[index]!)) continue;
    kept -= size;
    return list.splice(index, 1)[0];
  }
  return undefined;
}

/** Only for buffers no read or write refers to any longer. */
export function returnBuffers(buffers: Iterable<Buffer>): void {
  for (const buffer of buffers) {
    const list = spares.get(buffer.length);
    if (!list || kept + buffer.length > keptBytes) continue;
    list.push(buffer);
    kept += buffer.length;
  }
}
