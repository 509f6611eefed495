import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';

/**
 * The token service's signing key: an ECDSA P-256 key (JWT `ES256`), made on
 * the first start and kept in a PEM file readable by its owner only, so that
 * tokens survive a restart and every serving thread signs with the same
 * key. Several threads or instances may start at once: each writes a candidate to a
 * temporary file and hard-links it to the final name, which succeeds for
 * exactly one of them; the others read the winner's key.
 *
 * Limitation: the key is a file, not a row of the metadata store. Instances
 * on several machines must be given the same file (`auth.tokenservice.
 * signingkey`), or each signs with its own key and refuses the others'
 * tokens. There is no rotation: a new key voids every token in circulation.
 */

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The RFC 7638 thumbprint of the public key, sent as the JWT `kid`. */
  keyId: string;
  /** The public key as a JWK, for a JWKS document. */
  publicJwk: JWK;
}

export async function loadOrCreateSigningKey(path: string): Promise<SigningKey> {
  const pem = (await readKey(path)) ?? (await createKey(path));
  const privateKey = createPrivateKey(pem);
  const publicKey = createPublicKey(privateKey);
  const publicJwk = await exportJWK(publicKey);
  const keyId = await calculateJwkThumbprint(publicJwk);
  return { privateKey, publicKey, keyId, publicJwk: { ...publicJwk, kid: keyId, alg: 'ES256' } };
}

async function readKey(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function createKey(path: string): Promise<string> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const candidate = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(candidate, pem, { mode: 0o600, flag: 'wx' });
  try {
    await link(candidate, path);
    return pem;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return readFile(path, 'utf8');
  } finally {
    await rm(candidate, { force: true });
  }
}
