/** What a long-lived AbortSignal (the progressor's) keeps alive for the calls that were given it. */
import { getEventListeners } from 'node:events';

/**
 * Its 'abort' listeners, and the signals AbortSignal.any() made from it: Node 20 keeps those in
 * an internal set that only shrinks when the signal aborts (read through its symbol; the first
 * test of signalHolds checks that this still sees them).
 */
export function signalHolds(signal: AbortSignal): { listeners: number; dependants: number } {
  const key = Object.getOwnPropertySymbols(signal).find((s) => s.description === 'kDependantSignals');
  // A SafeSet of Node's primordials: a Set, but not of this realm's Set.
  const set = key ? ((signal as unknown as Record<symbol, { size?: unknown } | undefined>)[key]) : undefined;
  return { listeners: getEventListeners(signal, 'abort').length, dependants: typeof set?.size === 'number' ? set.size : 0 };
}

/** Collects the MaxListenersExceededWarnings the process emits until stop() resolves. */
export function watchListenerWarnings(): { stop(): Promise<string[]> } {
  const seen: string[] = [];
  const on = (w: Error) => void (w.name === 'MaxListenersExceededWarning' && seen.push(w.message));
  process.on('warning', on);
  return {
    async stop() {
      // process.emitWarning emits on the next tick.
      await new Promise((r) => setImmediate(r));
      process.off('warning', on);
      return seen;
    },
  };
}
