/**
 * Structured JSON logs (pino) for every component. Secrets never reach a log line: request
 * bodies are not logged, and the redact list covers the fields that could carry credentials.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(component: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    level,
    base: { component },
    redact: ['*.token', '*.password', '*.authorization', '*.headers.authorization', '*.key', '*.caBundle'],
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
