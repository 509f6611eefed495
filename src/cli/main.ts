#!/usr/bin/env -S node --max-semi-space-size=4
// V8 lets the young generation grow to 16 MiB per semi-space under a high
// request rate; 4 MiB served manifest GETs as fast and lowered peak memory by
// about 20 MB per serving thread (docs/performance.md). `npm start` and
// bench/run.sh pass the same flag.
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load.js';
import { certUsage, runCertCommand } from './cert.js';
import { manifestUsage, repoUsage, runManifestCommand, runRepoCommand } from './delete.js';
import { gcUsage, runGcCommand } from './gc.js';
import { retentionUsage, runRetentionCommand } from './retention.js';
import { robotUsage, runRobotCommand } from './robots.js';
import { serve } from './serve.js';
import { runUsageCommand, usageUsage } from './usage.js';
import { runUserCommand, userUsage } from './users.js';
import { version } from './version.js';

/** The `berth` command. */

const usage = `Usage: berth <command> [options]

Commands:
  serve [--config FILE]   Run the registry (default: 0.0.0.0:5000, data in ./data)
  user add|passwd|remove|list NAME
                          Manage the accounts of the htpasswd file
  robot create|list|revoke NAME
                          Manage robot tokens (for CI jobs)
  cert create --hosts NAME,IP,...
                          Make a self-signed TLS certificate (docs/tls.md)
  retention [--dry-run]   Remove tags and untagged manifests by the retention rules
  usage [REPOSITORY] [--json]
                          Bytes stored per repository, unique to it and shared
  gc [--dry-run] [--grace DURATION]
                          Remove what nothing references; safe beside berth serve
  repo delete NAME        Delete a repository
  manifest delete NAME:TAG|NAME@DIGEST [--referrers]
                          Delete a tag, or a manifest and its tags (and referrers)
  version                 Print the version

Configuration: a YAML file in the keys of Distribution's config.yml, with
REGISTRY_SECTION_KEY environment overrides (e.g. REGISTRY_HTTP_ADDR=127.0.0.1:5001).
See docs/configuration.md.`;

const serveUsage = `Usage: berth serve [options]

Runs the registry until SIGINT or SIGTERM.

Options:
  -c, --config FILE      The configuration file (default: the embedded defaults)`;

/** The administration commands: what runs them, and their help. */
const commands: Record<string, { run: (args: string[]) => Promise<void>; usage: string }> = {
  user: { run: runUserCommand, usage: userUsage },
  robot: { run: runRobotCommand, usage: robotUsage },
  cert: { run: runCertCommand, usage: certUsage },
  retention: { run: runRetentionCommand, usage: retentionUsage },
  usage: { run: runUsageCommand, usage: usageUsage },
  gc: { run: runGcCommand, usage: gcUsage },
  repo: { run: runRepoCommand, usage: repoUsage },
  manifest: { run: runManifestCommand, usage: manifestUsage },
};

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  if (command === 'serve') {
    if (wantsHelp) return console.log(serveUsage);
    const { values } = parseArgs({
      args: rest,
      options: { config: { type: 'string', short: 'c' } },
      allowPositionals: false,
    });
    return serve(values.config);
  }
  const administration = command === undefined ? undefined : commands[command];
  if (administration) {
    if (wantsHelp) return console.log(administration.usage);
    return administration.run(rest).catch(toCommandError);
  }
  switch (command) {
    case 'version':
    case '--version':
      console.log(version);
      return;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(usage);
      return;
    default:
      console.error(`berth: unknown command "${command}"\n\n${usage}`);
      process.exitCode = 2;
  }
}

/** The administration commands' failures are the user's to read: the message, no stack. */
class CommandError extends Error {}

function toCommandError(error: unknown): never {
  throw error instanceof Error ? new CommandError(error.message) : error;
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message =
    error instanceof ConfigError || error instanceof CommandError
      ? error.message
      : String((error as Error)?.stack ?? error);
  console.error(`berth: ${message}`);
  process.exit(1);
});
