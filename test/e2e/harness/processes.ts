/**
 * Host processes started by the e2e tests (e.g. `kube-canary webhook`), always bound to
 * 127.0.0.1. Each one logs to `.cluster/logs/<name>.log` (kept by `make e2e` when a run fails)
 * and is recorded in `.cluster/pids/<name>.pid` as "pid starttime", so `make cluster-down`
 * stops it even if the test runner died first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { clusterDir, repoRoot } from './cluster.js';

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolvePromise(port) : reject(new Error('no port'))));
    });
  });
}

function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export interface HostProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly child: ChildProcess;
  /** exit code once exited, else undefined */
  exitCode(): number | null | undefined;
  /** the process's output so far */
  output(): string;
  /** SIGTERM, wait up to `graceMs`, then SIGKILL; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Start `cmd args` as a child of the test runner, logging to .cluster/logs/<name>.log. */
export function startProcess(name: string, cmd: string, args: readonly string[], opts: StartOptions = {}): HostProcess {
  const logsDir = join(clusterDir, 'logs');
  const pidsDir = join(clusterDir, 'pids');
  mkdirSync(logsDir, { recursive: true });
  mkdirSync(pidsDir, { recursive: true });
  const logFile = join(logsDir, `${name}.log`);
  const pidFile = join(pidsDir, `${name}.pid`);
  const log = createWriteStream(logFile, { flags: 'a' });
  log.write(`# ${new Date().toISOString()} ${cmd} ${args.join(' ')}\n`);

  const child = spawn(cmd, args, {
    cwd: opts.cwd ?? repoRoot,
    env: { ...process.env, ...(opts.env ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${name}: ${cmd}`);
  const pid = child.pid;
  writeFileSync(pidFile, `${pid} ${startTime(pid) ?? ''}\n`);

  let out = '';
  let code: number | null | undefined = undefined;
  const collect = (d: Buffer): void => {
    out += d.toString('utf8');
    log.write(d);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((r) =>
    child.on('exit', (c, signal) => {
      code = c ?? (signal ? -1 : null);
      log.write(`# exited code=${c} signal=${signal}\n`);
      rmSync(pidFile, { force: true });
      r();
    }),
  );

  return {
    name,
    pid,
    logFile,
    child,
    exitCode: () => code,
    output: () => out,
    async stop(graceMs = 5000) {
      if (code !== undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      await new Promise<void>((r) => log.end(r));
    },
  };
}
