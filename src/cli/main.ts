#!/usr/bin/env -S node --max-semi-space-size=4 --optimize-for-size
// V8 lets the young generation grow to 16 MiB per semi-space under a high
// request rate; 4 MiB served manifest GETs as fast and lowered peak memory by
// about 20 MB per serving thread. --optimize-for-size makes V8 grow its
// heaps in smaller steps: the whole benchmark peaked at 132 MiB instead of
// 151 to 153, for small-image pushes about 7% slower and manifest GETs 6%
// faster (docs/performance.md). `npm start`, bench/run.sh and the systemd
// unit in docs/operations.md pass the same flags.
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load.js';
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

interface Command {
  run: (args: string[]) => Promise<void>;
  usage: string;
}

/**
 * The administration commands: what runs them, and their help. Each is
 * loaded when asked for, so that `serve` does not carry the others'
 * modules (and libraries such as bcrypt) in memory.
 */
const commands: Record<string, () => Promise<Command>> = {
  user: async () => {
    const { runUserCommand, userUsage } = await import('./users.js');
    return { run: runUserCommand, usage: userUsage };
  },
  robot: async () => {
    const { runRobotCommand, robotUsage } = await import('./robots.js');
    return { run: runRobotCommand, usage: robotUsage };
  },
  cert: async () => {
    const { runCertCommand, certUsage } = await import('./cert.js');
    return { run: runCertCommand, usage: certUsage };
  },
  retention: async () => {
    const { runRetentionCommand, retentionUsage } = await import('./retention.js');
    return { run: runRetentionCommand, usage: retentionUsage };
  },
  usage: async () => {
    const { runUsageCommand, usageUsage } = await import('./usage.js');
    return { run: runUsageCommand, usage: usageUsage };
  },
  gc: async () => {
    const { runGcCommand, gcUsage } = await import('./gc.js');
    return { run: runGcCommand, usage: gcUsage };
  },
  repo: async () => {
    const { runRepoCommand, repoUsage } = await import('./delete.js');
    return { run: runRepoCommand, usage: repoUsage };
  },
  manifest: async () => {
    const { runManifestCommand, manifestUsage } = await import('./delete.js');
    return { run: runManifestCommand, usage: manifestUsage };
  },
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
    const { serve } = await import('./serve.js');
    return serve(values.config);
  }
  const loadCommand =
    command !== undefined && Object.hasOwn(commands, command) ? commands[command] : undefined;
  if (loadCommand) {
    const administration = await loadCommand();
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
