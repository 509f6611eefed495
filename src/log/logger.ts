import { pino, type Logger } from 'pino';

/**
 * One JSON logger for the process (pino). Request lines are written by the
 * HTTP layer from fields it picks one by one: no header, query string,
 * token or password is ever handed to the logger. (pino's redaction would
 * guard the same thing at a cost on every line, so it is not used.)
 */

export type { Logger } from 'pino';

export interface LoggerOptions {
  level: string;
  fields?: Record<string, string>;
}

export function createLogger(options: LoggerOptions, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level: options.level,
      base: { ...options.fields },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ sync: false }),
  );
}

/** A logger that writes nothing, for tests and tools that want silence. */
export function createSilentLogger(): Logger {
  return pino({ level: 'silent' });
}
