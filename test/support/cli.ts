/** Runs the real `kube-canary` CLI from the sources as a child process, bound to 127.0.0.1. */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** Rejects (with stdout, stderr, code) on a non-zero exit, or after timeoutMs with the process killed. */
export async function runCli(args: string[], timeoutMs = 0, env: NodeJS.ProcessEnv = {}): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: REPO, timeout: timeoutMs, env: { ...process.env, ...env } });
}

export interface CliProcess {
  child: ChildProcess;
  /** Every stdout line so far (JSON log lines). */
  lines: string[];
  /** Resolves with the first JSON log line whose msg matches. */
  waitForLog(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Everything written to stderr so far. */
  stderr(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let buf = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => {
    buf += c.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    waiters.forEach((w) => w());
  });
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    lines,
    stderr: () => stderr,
    waitForLog(msg, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (const l of lines) {
            try {
              const j = JSON.parse(l) as Record<string, unknown>;
              if (j.msg === msg) return resolve(j), true;
            } catch {
              /* not a log line */
            }
          }
          return false;
        };
        if (check()) return;
        const t = setTimeout(() => reject(new Error(`no "${msg}" log line within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
        waiters.push(() => check() && clearTimeout(t));
        void exited.then((code) => reject(new Error(`process exited (${code}) before logging "${msg}"; stderr: ${stderr}`)));
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}
