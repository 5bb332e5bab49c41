/**
 * The loopback upstream (bench/support/loopback-upstream.mjs) from a case: started in a process of
 * its own, so its CPU is never counted in the measuring process's, on a free port, and stopped after.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";

/** Runs `measure` against the loopback upstream, started in a process of its own and stopped after. */
export async function withLoopbackUpstream<T>(
  root: string,
  measure: (upstreamUrl: string) => Promise<T>,
): Promise<T> {
  const upstream = spawn(process.execPath, [join(root, "bench", "support", "loopback-upstream.mjs")], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  try {
    const port = await firstLine(upstream, 10_000);
    return await measure(`http://127.0.0.1:${port}`);
  } finally {
    if (upstream.exitCode === null && upstream.pid !== undefined) process.kill(upstream.pid);
  }
}

/** The first line a child prints on stdout (the upstream's port). */
async function firstLine(child: ChildProcess, timeoutMs: number): Promise<string> {
  const stdout = child.stdout;
  if (!stdout) throw new Error("the loopback upstream has no stdout");
  let text = "";
  const timer = setTimeout(() => child.kill(), timeoutMs);
  try {
    for await (const chunk of stdout) {
      text += String(chunk);
      const end = text.indexOf("\n");
      if (end !== -1) return text.slice(0, end).trim();
    }
  } finally {
    clearTimeout(timer);
  }
  throw new Error(`the loopback upstream exited (${String(child.exitCode)}) without printing its port`);
}
