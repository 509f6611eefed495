import { pino, type Logger } from 'pino';

/**
 * One JSON logger for the process (pino). Request lines are written by the
 * HTTP layer; no header, token or password is ever passed to it, and the
 * redaction below is a second guard should one slip into an error object.
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
      redact: {
        paths: ['*.authorization', '*.password', '*.token', 'headers', 'req.headers'],
        censor: '[redacted]',
      },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ sync: false }),
  );
}

/** A logger that writes nothing, for tests and tools that want silence. */
export function createSilentLogger(): Logger {
  return pino({ level: 'silent' });
}
