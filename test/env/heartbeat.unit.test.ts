// What the sandbox's build and stop (and the control-plane build) print while they wait: a line
// every interval, from the start until the work ends, and none after.
import { jest } from '@jest/globals';
import { withHeartbeat } from './processes.js';

afterEach(() => jest.useRealTimers());

test('a line every interval while the work runs, none once it has ended', async () => {
  jest.useFakeTimers();
  const lines: string[] = [];
  let finish!: (v: string) => void;
  const work = new Promise<string>((r) => (finish = r));
  const running = withHeartbeat(
    { log: (m) => lines.push(m), message: (s) => `still busy (${s} s)`, everyMs: 15_000 },
    () => work,
  );
  await jest.advanceTimersByTimeAsync(14_999);
  expect(lines).toEqual([]);
  await jest.advanceTimersByTimeAsync(31_000);
  expect(lines).toEqual(['still busy (15 s)', 'still busy (30 s)', 'still busy (45 s)']);
  finish('done');
  expect(await running).toBe('done');
  await jest.advanceTimersByTimeAsync(60_000);
  expect(lines).toHaveLength(3);
});

test('a failing work ends the heartbeat too, and its error goes through', async () => {
  jest.useFakeTimers();
  const lines: string[] = [];
  await expect(
    withHeartbeat({ log: (m) => lines.push(m), message: () => 'busy', everyMs: 1_000 }, () =>
      Promise.reject(new Error('boom')),
    ),
  ).rejects.toThrow('boom');
  await jest.advanceTimersByTimeAsync(5_000);
  expect(lines).toEqual([]);
});
