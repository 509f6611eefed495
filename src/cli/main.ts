#!/usr/bin/env -S node --max-semi-space-size=4
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load.js';
import { runCertCommand } from './cert.js';
import { runManifestCommand, runRepoCommand } from './delete.js';
import { runGcCommand } from './gc.js';
import { runRetentionCommand } from './retention.js';
import { runRobotCommand } from './robots.js';
import { serve } from './serve.js';
import { runUsageCommand } from './usage.js';
import { runUserCommand } from './users.js';
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

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': {
      const { values } = parseArgs({
        args: rest,
        options: { config: { type: 'string', short: 'c' } },
        allowPositionals: false,
      });
      return serve(values.config);
    }
    case 'user':
      return runUserCommand(rest).catch(toCommandError);
    case 'robot':
      return runRobotCommand(rest).catch(toCommandError);
    case 'cert':
      return runCertCommand(rest).catch(toCommandError);
    case 'retention':
      return runRetentionCommand(rest).catch(toCommandError);
    case 'usage':
      return runUsageCommand(rest).catch(toCommandError);
    case 'gc':
      return runGcCommand(rest).catch(toCommandError);
    case 'repo':
      return runRepoCommand(rest).catch(toCommandError);
    case 'manifest':
      return runManifestCommand(rest).catch(toCommandError);
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
