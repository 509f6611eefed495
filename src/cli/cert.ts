import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import { hostname, networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

/**
 * `berth cert create`: a self-signed certificate for this machine's names
 * and addresses, made with the `openssl` command (no network needed), for
 * `http.tls.certificate` and `http.tls.key`. Clients trust it by its own
 * file, e.g. docker's `/etc/docker/certs.d/HOST:PORT/ca.crt` (docs/tls.md).
 */

export const certUsage = `Usage: berth cert create [options]

Options:
  --hosts LIST   Names and IP addresses, comma-separated
                 (default: this machine's name, localhost and its addresses)
  --out DIR      Where to write registry.crt and registry.key (default: ./certs)
  --days N       Validity in days (default: 825)
  --force        Overwrite existing files`;

export async function runCertCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      hosts: { type: 'string' },
      out: { type: 'string', default: 'certs' },
      days: { type: 'string', default: '825' },
      force: { type: 'boolean', default: false },
    },
    allowPositionals: true,
  });
  if (positionals[0] !== 'create' || positionals.length > 1) throw new Error(certUsage);
  const days = Number(values.days);
  if (!Number.isInteger(days) || days < 1) throw new Error(`Invalid --days "${values.days}"`);

  const hosts = values.hosts ? splitHosts(values.hosts) : machineHosts();
  const dir = resolve(values.out);
  const files = { cert: join(dir, 'registry.crt'), key: join(dir, 'registry.key') };
  await mkdir(dir, { recursive: true });
  if (!values.force) await refuseExisting([files.cert, files.key]);
  await createSelfSigned(hosts, files, days);

  console.error(`Wrote ${files.cert} and ${files.key} for ${hosts.join(', ')}`);
  console.error('Configure http.tls.certificate and http.tls.key with them; clients');
  console.error(`trust ${files.cert} (docker: /etc/docker/certs.d/HOST:PORT/ca.crt).`);
}

export function splitHosts(list: string): string[] {
  const hosts = list
    .split(',')
    .map((host) => host.trim())
    .filter((host) => host !== '');
  if (hosts.length === 0) throw new Error('--hosts names no host');
  for (const host of hosts) {
    if (isIP(host) === 0 && !/^[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) {
      throw new Error(`Invalid host "${host}": expected a DNS name or an IP address`);
    }
  }
  return [...new Set(hosts)];
}

/** This machine's name, localhost, and every address of its interfaces. */
function machineHosts(): string[] {
  const addresses = Object.values(networkInterfaces())
    .flat()
    .filter((entry) => entry !== undefined)
    .map((entry) => entry.address.replace(/%.*$/, ''));
  return [...new Set([hostname(), 'localhost', ...addresses])];
}

async function refuseExisting(paths: string[]) {
  for (const path of paths) {
    const exists = await stat(path).then(
      () => true,
      () => false,
    );
    if (exists) throw new Error(`${path} exists: use --force to replace it`);
  }
}

/** `openssl req -x509`: an ECDSA P-256 key and a certificate naming every host. */
async function createSelfSigned(
  hosts: string[],
  files: { cert: string; key: string },
  days: number,
) {
  const names = hosts.map((host) => (isIP(host) === 0 ? `DNS:${host}` : `IP:${host}`));
  const commonName = hosts[0] ?? 'localhost';
  // prettier-ignore
  const args = [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', files.key, '-out', files.cert, '-days', String(days),
    '-subj', `/CN=${commonName.replace(/[/=]/g, '_')}`,
    '-addext', `subjectAltName=${names.join(',')}`,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,digitalSignature,keyCertSign',
    '-addext', 'extendedKeyUsage=serverAuth',
  ];
  const child = spawn('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const errors: Buffer[] = [];
  child.stderr.on('data', (chunk: Buffer) => errors.push(chunk));
  const [code] = (await once(child, 'close').catch((error: Error) => {
    throw new Error(`Cannot run openssl (is it installed?): ${error.message}`);
  })) as [number | null];
  if (code !== 0) {
    await rm(files.key, { force: true });
    throw new Error(`openssl failed: ${Buffer.concat(errors).toString().trim()}`);
  }
  await chmod(files.key, 0o600);
}
