import { z } from 'zod';
import { immutabilitySchema, quotasSchema, retentionSchema } from './repository-rules.js';
import { duration } from './units.js';
import { parseDuration } from './duration.js';

/** How often a task runs: zero would mean all the time. */
const interval = duration.refine((value) => parseDuration(value) > 0, 'expected more than 0s');

/**
 * The configuration file. Keys follow CNCF Distribution's `config.yml` where
 * the features overlap, so that an existing file keeps working; Berth's own
 * features get their own sections (`metadata`, `limits`). Every object is
 * strict: an unknown key stops the start with a message that names it.
 * docs/configuration.md describes each key.
 */

const logSchema = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
  /** Accepted for Distribution compatibility; Berth always logs JSON lines. */
  formatter: z.enum(['json', 'text', 'logstash']).default('json'),
  /** Static fields added to every log line. */
  fields: z.record(z.string(), z.string()).default({}),
  accesslog: z.strictObject({ disabled: z.boolean().default(false) }).prefault({}),
});

const httpSchema = z.strictObject({
  /** `host:port`, or `:port` for every interface as Distribution allows. */
  addr: z
    .string()
    .regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]*):\d{1,5}$/, 'expected host:port, e.g. 0.0.0.0:5000')
    .default('0.0.0.0:5000'),
  /** Absolute base URL used in Location headers, when behind a proxy that rewrites the host. */
  host: z.url().optional(),
  /** Answer with relative `Location` headers, as Distribution's option does. */
  relativeurls: z.boolean().default(false),
  /** Extra headers on every response. */
  headers: z.record(z.string(), z.array(z.string())).default({}),
  /** Accepted for Distribution compatibility; upload state needs no shared secret in Berth. */
  secret: z.string().optional(),
  /** HTTPS, with HTTP/2 and HTTP/1.1 on the one port (Distribution's keys). */
  tls: z
    .strictObject({
      certificate: z.string().min(1),
      key: z.string().min(1),
      /** CA certificates that client certificates must chain to; one is then required. */
      clientcas: z.array(z.string().min(1)).min(1).optional(),
      minimumtls: z
        .enum(['tls1.2', 'tls1.3'], {
          message: 'expected tls1.2 or tls1.3: older versions are refused',
        })
        .default('tls1.2'),
    })
    .optional(),
  http2: z.strictObject({ disabled: z.boolean().default(false) }).prefault({}),
});

const storageSchema = z.strictObject({
  filesystem: z
    .strictObject({
      rootdirectory: z.string().min(1).default('./data'),
      /** Accepted for Distribution compatibility; Berth needs no concurrency cap here. */
      maxthreads: z.number().int().min(25).optional(),
    })
    .prefault({}),
  delete: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
  maintenance: z
    .strictObject({
      uploadpurging: z
        .strictObject({
          enabled: z.boolean().default(true),
          age: duration.default('168h'),
          interval: interval.default('24h'),
          dryrun: z.boolean().default(false),
        })
        .prefault({}),
      readonly: z.strictObject({ enabled: z.boolean().default(false) }).prefault({}),
    })
    .prefault({}),
  /** Accepted for Distribution compatibility; Berth caches manifests in memory itself. */
  cache: z.strictObject({ blobdescriptor: z.string().optional() }).optional(),
  redirect: z.strictObject({ disable: z.boolean().default(false) }).optional(),
});

/**
 * Accepted for Distribution compatibility: the registry:2 image's own
 * config.yml carries this section. Berth runs no background health checks.
 */
const healthSchema = z.strictObject({
  storagedriver: z
    .strictObject({
      enabled: z.boolean().default(false),
      interval: duration.default('10s'),
      threshold: z.number().int().min(1).default(1),
    })
    .optional(),
});

const metadataSchema = z.strictObject({
  sqlite: z
    .strictObject({
      /** Default: `berth.db` in the storage root directory. */
      path: z.string().min(1).optional(),
    })
    .optional(),
  postgres: z.strictObject({ url: z.string().min(1) }).optional(),
});

const limitsSchema = z.strictObject({
  /** Largest manifest accepted, in bytes. The OCI spec asks for at least 4 MiB. */
  manifestbytes: z
    .number()
    .int()
    .min(4096)
    .max(64 * 1024 * 1024)
    .default(4 * 1024 * 1024),
});

const serverSchema = z.strictObject({
  /**
   * Threads that serve requests in the one process, all accepting on the
   * one listening socket: `auto` is one per core, at most 8.
   */
  workers: z.union([z.literal('auto'), z.number().int().min(1).max(64)]).default('auto'),
});

/**
 * Authentication and access control: Distribution's `htpasswd` and `token`
 * (one of them), and Berth's own token service, policy and throttle.
 */
const authSchema = z
  .strictObject({
    htpasswd: z
      .strictObject({ realm: z.string().min(1).default('berth'), path: z.string().min(1) })
      .optional(),
    token: z
      .strictObject({
        realm: z.url(),
        service: z.string().min(1),
        issuer: z.string().min(1),
        rootcertbundle: z.string().min(1).optional(),
        /** A JWKS file, or an `https://` URL serving one. */
        jwks: z.string().min(1).optional(),
        /** The realm becomes the token path on the host the client used. */
        autoredirect: z.boolean().default(false),
      })
      .optional(),
    tokenservice: z
      .strictObject({
        enabled: z.boolean().default(false),
        /** The challenge's realm; default: `/auth/token` on the host the client used. */
        realm: z.url().optional(),
        issuer: z.string().min(1).default('berth'),
        service: z.string().min(1).default('berth'),
        expiration: duration.default('5m'),
        refreshexpiration: duration.default('90d'),
        /** Default: `auth/token-signing-key.pem` in the storage root directory. */
        signingkey: z.string().min(1).optional(),
      })
      .optional(),
    policy: z.strictObject({ path: z.string().min(1) }).optional(),
    throttle: z
      .strictObject({
        slowafter: z.number().int().min(1).default(5),
        blockafter: z.number().int().min(1).default(10),
        window: duration.default('15m'),
      })
      .prefault({}),
  })
  .superRefine((auth, ctx) => {
    const problem = (path: string[], message: string) =>
      ctx.addIssue({ code: 'custom', path, message });
    if (auth.htpasswd && auth.token) {
      problem(['token'], 'auth.htpasswd and auth.token cannot both be set: choose one');
    }
    if (auth.token && !auth.token.rootcertbundle && !auth.token.jwks) {
      problem(['token'], 'expected rootcertbundle or jwks: the keys that sign tokens');
    }
    if (auth.tokenservice?.enabled && !auth.htpasswd) {
      problem(['tokenservice'], 'the token service needs auth.htpasswd for its accounts');
    }
    if (auth.policy && !auth.htpasswd && !auth.token) {
      problem(['policy'], 'a policy needs auth.htpasswd or auth.token');
    }
  });

/**
 * Berth's online garbage collection (docs/operations.md, "Garbage
 * collection"): on a schedule in the main thread of `berth serve`, and on demand
 * with `berth gc` or `POST /admin/v1/gc`.
 */
const gcSchema = z.strictObject({
  enabled: z.boolean().default(true),
  interval: interval.default('24h'),
  /** Content younger than this is never removed: uploads and pushes in progress. */
  grace: duration.default('1h'),
  /** Also remove manifests that no tag, index or present subject holds. */
  untagged: z.boolean().default(false),
  /** Scheduled runs log what they would remove and remove nothing. */
  dryrun: z.boolean().default(false),
});

export const configSchema = z.strictObject({
  version: z.union([z.string(), z.number()]).optional(),
  log: logSchema.prefault({}),
  http: httpSchema.prefault({}),
  storage: storageSchema.prefault({}),
  health: healthSchema.optional(),
  metadata: metadataSchema.prefault({}),
  limits: limitsSchema.prefault({}),
  server: serverSchema.prefault({}),
  auth: authSchema.prefault({}),
  retention: retentionSchema.prefault({}),
  immutability: immutabilitySchema.prefault({}),
  quotas: quotasSchema.prefault({}),
  gc: gcSchema.prefault({}),
});

export type Config = z.infer<typeof configSchema>;
