/** Sizes for people: quota messages, `berth usage`. */

const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];

/** In the largest binary unit that keeps the number at least 1: `9.8 MiB`, `512 bytes`. */
export function formatSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/** `formatSize` with the exact count when rounded: `9.8 MiB (10276044 bytes)`. */
export function formatBytes(bytes: number): string {
  return bytes < 1024 ? formatSize(bytes) : `${formatSize(bytes)} (${bytes} bytes)`;
}
