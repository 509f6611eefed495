import { randomUUID } from 'node:crypto';
import { closeSync, constants, openSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spareSize, takeSpare } from './spare-buffers.js';

/**
 * Writes that bypass the page cache (O_DIRECT), for the whole 1 MiB buffers
 * of large uploads (file-sink.ts).
 *
 * Why: on this kind of virtual machine the kernel takes new page-cache
 * pages slowly; 256 MiB written into a new file took 0.65 to 0.8 s, most
 * of a push, and the flush before the commit came on top. Written with
 * O_DIRECT from 1 MiB buffers, the same 256 MiB took 0.21 s including that
 * flush (docs/performance.md). The bytes then reach the disk while the
 * upload streams, and the commit's fdatasync has little left to do.
 *
 * O_DIRECT wants the buffer's memory, the file position and the length
 * aligned to the device's block. Node gives no buffer's address, so a new
 * buffer's aligned offset is found by trying a small direct write to a
 * scratch file. Aligned buffers go back to the spare buffers of pulls and
 * uploads (spare-buffers.ts), marked, so the memory kept stays capped.
 * Where the filesystem refuses O_DIRECT (tmpfs) or no offset works,
 * uploads write through the page cache as before.
 */

/*
 * Limitation: a crash between the creation and the removal of a probe's
 * scratch file (`uploads/.probe-<uuid>`, 4 KiB, a few microseconds apart)
 * leaves that file behind; nothing removes it but an operator.
 */

/** The alignment asked of positions and lengths: 4 KiB covers 512-byte and 4 KiB sectors. */
export const directBlock = 4096;
/** Direct writes are of whole spare buffers. */
export const directSlab = spareSize;

/** Buffers known to be aligned; they wait with the other spare buffers. */
const aligned = new WeakSet<Buffer>();

/** A descriptor of `path` for direct writes, or undefined where O_DIRECT is refused. */
export function openDirect(path: string): number | undefined {
  try {
    return openSync(path, constants.O_WRONLY | constants.O_DIRECT);
  } catch {
    return undefined;
  }
}

/**
 * A buffer of `directSlab` bytes whose memory O_DIRECT accepts, or
 * undefined. A new one is probed with a scratch file beside `stagedPath`.
 */
export function takeAlignedBuffer(stagedPath: string): Buffer | undefined {
  const spare = takeSpare(directSlab, (buffer) => aligned.has(buffer));
  if (spare) return spare;
  const raw = Buffer.allocUnsafeSlow(directSlab + directBlock);
  const probe = join(dirname(stagedPath), `.probe-${randomUUID()}`);
  let fd: number | undefined;
  try {
    fd = openSync(probe, constants.O_WRONLY | constants.O_CREAT | constants.O_DIRECT, 0o600);
    for (let offset = 0; offset < directBlock; offset += 16) {
      if (!writesDirectly(fd, raw, offset)) continue;
      const buffer = raw.subarray(offset, offset + directSlab);
      aligned.add(buffer);
      return buffer;
    }
    return undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
    rmSync(probe, { force: true });
  }
}

function writesDirectly(fd: number, raw: Buffer, offset: number): boolean {
  try {
    writeSync(fd, raw, offset, directBlock, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EINVAL') return false;
    throw error;
  }
}
