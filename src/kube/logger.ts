/**
 * Structured JSON logs (pino) for every component. Secrets never reach a log line: request
 * bodies are not logged, and the redact list covers the fields that could carry credentials.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** Lines go to stdout unless `destination` is given (tests capture them with it). */
export function createLogger(component: string, level = process.env.LOG_LEVEL ?? 'info', destination?: DestinationStream): Logger {
  if (level !== 'silent' && pino.levels.values[level] === undefined) {
    throw new Error(`LOG_LEVEL ${JSON.stringify(level)} is not a log level; use one of ${Object.keys(pino.levels.values).join(', ')}, or silent`);
  }
  const options = {
    level,
    base: { component },
    redact: ['*.token', '*.password', '*.authorization', '*.headers.authorization', '*.key', '*.caBundle'],
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

interface LogStream {
  end(): void;
  flushSync(): void;
  once(event: 'close' | 'error', listener: () => void): unknown;
  destroyed?: boolean;
}

/**
 * Resolves once every line logged so far is written out, for a process about to exit. pino writes
 * stdout asynchronously (one write in flight, later lines queued behind it); its exit hook writes
 * the queue synchronously but cannot wait for the write in flight, so the last lines of a process
 * that exits right after logging them could land out of order, or be lost. This ends the stream:
 * log nothing after it (the process should exit). Waits at most `timeoutMs` (a stuck pipe must
 * not hold up the exit). Loggers on a destination other than pino's stdout stream resolve at once.
 */
export function endLogger(log: Logger, timeoutMs = 5000): Promise<void> {
  const stream = (log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as Partial<LogStream> | undefined;
  if (!stream || typeof stream.end !== 'function' || typeof stream.flushSync !== 'function' || typeof stream.once !== 'function' || stream.destroyed) {
    return Promise.resolve();
  }
  const s = stream as LogStream;
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    timer.unref();
    s.once('close', done);
    s.once('error', done);
    s.end();
  });
}
