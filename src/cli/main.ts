#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load.js';
import { serve } from './serve.js';
import { version } from './version.js';

/** The `berth` command. */

const usage = `Usage: berth <command> [options]

Commands:
  serve [--config FILE]   Run the registry (default: 0.0.0.0:5000, data in ./data)
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

main(process.argv.slice(2)).catch((error: unknown) => {
  const message =
    error instanceof ConfigError ? error.message : String((error as Error)?.stack ?? error);
  console.error(`berth: ${message}`);
  process.exit(1);
});
