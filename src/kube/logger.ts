/**
 * Structured JSON logs (pino) for every component. Secrets never reach a log line: request
 * bodies are not logged, and the redact list covers the fields that could carry credentials.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** Lines go to stdout unless `destination` is given (tests capture them with it). */
export function createLogger(component: string, level = process.env.LOG_LEVEL ?? 'info', destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { component },
    redact: ['*.token', '*.password', '*.authorization', '*.headers.authorization', '*.key', '*.caBundle'],
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}
