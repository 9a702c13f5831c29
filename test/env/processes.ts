// Child processes of the local stack: each runs in its own process group with its output in a log
// file, and its pid is recorded so `stack down` can clean up after a run that crashed.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';

export interface Managed {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or signal) when the process ends. */
  readonly exited: Promise<number | string>;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  stateDir: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const pidFile = (stateDir: string) => join(stateDir, 'pids');
const scratchFile = (stateDir: string) => join(stateDir, 'scratch');

/**
 * Records a folder outside the state folder (etcd's data on /dev/shm) that belongs to this run, so
 * that `stopRecorded` — the stack's stop, `stack down`, the next start in the folder — removes it.
 */
export function recordScratch(stateDir: string, path: string): void {
  appendFileSync(scratchFile(stateDir), `${path}\n`);
}

/** Removes the recorded scratch folders; only absolute paths named sss-*, whatever the file says. */
function removeScratch(stateDir: string): void {
  const file = scratchFile(stateDir);
  if (!existsSync(file)) return;
  for (const path of readFileSync(file, 'utf8').split('\n')) {
    if (isAbsolute(path) && basename(path).startsWith('sss-')) rmSync(path, { recursive: true, force: true });
  }
  rmSync(file, { force: true });
}

export function startProcess(opts: StartOptions): Managed {
  const logDir = join(opts.stateDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `${opts.name}.log`);
  const fd = openSync(logFile, 'a');
  // detached: a group of its own, so stopping it also stops anything it forked, and a Ctrl-C in the
  // terminal reaches only the parent, which then stops the stack in order.
  const child = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  if (child.pid === undefined) throw new Error(`could not start ${opts.name} (${opts.command})`);
  appendFileSync(pidFile(opts.stateDir), `${child.pid} ${opts.name}\n`);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    child.once('error', () => resolve('spawn-error'));
  });
  return { name: opts.name, pid: child.pid, logFile, child, exited };
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM to the whole group, SIGKILL after the grace period. */
export async function stopGroup(pid: number, graceMs = 10_000): Promise<void> {
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (groupAlive(pid) && Date.now() < deadline) await sleep(100);
  if (groupAlive(pid)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

export async function stopProcess(p: Managed, graceMs?: number): Promise<void> {
  await stopGroup(p.pid, graceMs);
  // The group is gone; wait for node's exit event, but let no timer outlive it (it held every
  // caller, Jest's main process too, 2 s past its end).
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.exited, new Promise((r) => (timer = setTimeout(r, 2_000)))]).finally(() => clearTimeout(timer));
}

/** One process of the stack that can be stopped and started again on the same ports and data. */
export abstract class Component {
  process: Managed | undefined;

  /** Starts the process and returns once it is ready. */
  abstract start(): Promise<void>;

  async stop(): Promise<void> {
    if (this.process) await stopProcess(this.process);
    this.process = undefined;
  }
}

/** The process groups recorded in a state folder, oldest first. */
function recorded(stateDir: string): { pid: number; name: string }[] {
  const file = pidFile(stateDir);
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((parts) => parts.length >= 2 && /^\d+$/.test(parts[0] ?? ''))
    .map(([pid, name]) => ({ pid: Number(pid), name: name! }));
}

/** Stops every group recorded in the state folder, newest first, then removes its scratch folders. */
export async function stopRecorded(stateDir: string): Promise<string[]> {
  const stopped: string[] = [];
  for (const { pid, name } of recorded(stateDir).reverse()) {
    if (groupAlive(pid)) {
      await stopGroup(pid);
      stopped.push(name);
    }
  }
  rmSync(pidFile(stateDir), { force: true });
  removeScratch(stateDir);
  return stopped;
}

const guarded = new Set<string>();

/** SIGKILLs every group recorded in the guarded state folders, synchronously. */
function killGuarded(): void {
  for (const stateDir of guarded) {
    for (const { pid } of recorded(stateDir)) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

let signalsHandled = false;

/**
 * Last resort when the owning process ends without stopping what it started (an uncaught error,
 * Ctrl-C, a CI timeout): SIGKILL every group recorded in the folder, so nothing outlives the run.
 * A signal ends a process without running 'exit' handlers unless the signal is handled, so the
 * common signals are handled too — except in programs that stop things their own way on a
 * signal (the sandbox), which pass `handleSignals: false`.
 */
export function killRecordedOnExit(stateDir: string, handleSignals = true): void {
  if (guarded.size === 0) process.once('exit', killGuarded);
  guarded.add(stateDir);
  if (!handleSignals || signalsHandled) return;
  signalsHandled = true;
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    process.once(signal, () => {
      killGuarded();
      // Exit on the next turn: other copies of this module (Jest loads one per test file) have
      // their own handlers for their own folders, and all listeners of one signal run first.
      setImmediate(() => process.exit(code));
    });
  }
}

export function tailLog(file: string, lines = 40): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
}

/** Runs `fn`, logging `message(seconds so far)` every `everyMs` until it ends: no silent minutes. */
export async function withHeartbeat<T>(
  o: { log: (msg: string) => void; message: (seconds: number) => string; everyMs: number },
  fn: () => Promise<T>,
): Promise<T> {
  const started = Date.now();
  const beat = setInterval(() => o.log(o.message(Math.round((Date.now() - started) / 1000))), o.everyMs);
  try {
    return await fn();
  } finally {
    clearInterval(beat);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it returns true, the process dies, or the timeout passes. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  opts: { timeoutMs: number; process?: Managed; intervalMs?: number },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let died: number | string | undefined;
  void opts.process?.exited.then((c) => (died = c));
  for (;;) {
    if (died !== undefined && opts.process) {
      throw new Error(
        `${what}: ${opts.process.name} exited (${died}) before it was ready. Log tail:\n${tailLog(opts.process.logFile)}`,
      );
    }
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) {
      const tail = opts.process ? `\nLog tail (${opts.process.logFile}):\n${tailLog(opts.process.logFile)}` : '';
      throw new Error(`timed out after ${opts.timeoutMs / 1000} s waiting for ${what}${tail}`);
    }
    await sleep(opts.intervalMs ?? 250);
  }
}

export function writeJson(file: string, value: unknown): void {
  writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}
