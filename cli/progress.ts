/**
 * Progress of a long run on a terminal: after a second, one line on stderr, rewritten at
 * most twice a second, with the tasks and actions so far. Nothing when stderr is not a TTY.
 */
import type { RunRecord, TaskRecord } from '../core/types.js';
import type { CliStream } from './io.js';

export interface Progress {
  onTask: (run: RunRecord, task: TaskRecord) => void;
  done(): void;
}

export function terminalProgress(stream: CliStream = process.stderr): Progress {
  if (!stream.isTTY) return { onTask: () => undefined, done: () => undefined };
  const started = Date.now();
  let shown = false;
  let last = 0;
  let tasks = 0;
  let actions = 0;
  return {
    onTask(_run, task) {
      tasks++;
      actions += task.actions;
      const now = Date.now();
      if (now - started < 1000 || now - last < 500) return;
      last = now;
      shown = true;
      stream.write(`\r… ${tasks} tasks, ${actions} actions, ${((now - started) / 1000).toFixed(1)} s`);
    },
    done() {
      if (shown) stream.write('\r\u001b[K');
    },
  };
}
