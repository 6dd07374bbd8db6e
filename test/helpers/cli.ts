/**
 * The command line in this process: `main(args, io)` with output captured, for tests where a
 * real process is not the point (exit codes of the built binary are tested once, spawned).
 */
import { main } from '../../cli/main.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `flowmeter ARGS` in process. `env` is the whole environment the command sees (default:
 * empty, so FLOWMETER_REDIS_URL and the like of the test process do not leak in).
 */
export async function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    stdout: { write: (s: string) => (stdout += s), isTTY: false },
    stderr: { write: (s: string) => (stderr += s), isTTY: false },
    env,
  });
  return { code, stdout, stderr };
}
