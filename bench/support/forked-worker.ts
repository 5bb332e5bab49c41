/** What a forked bench worker sends back over IPC: its measurements, or why it failed. */
export type WorkerResult<M> = { ok: true; measurements: M[] } | { ok: false; error: string };

/**
 * Runs a forked bench worker's `main` with the options the bench passed as argv[2] (JSON), sends the
 * result over the IPC channel and exits: keep-alive sockets to an upstream would hold it open.
 */
export async function runForkedWorker<O, M>(
  name: string,
  main: (options: O) => Promise<M[]>,
): Promise<never> {
  const send = (message: WorkerResult<M>) =>
    new Promise<void>((resolve) => {
      if (!process.send) throw new Error(`${name} runs forked by the bench, with an IPC channel`);
      process.send(message, () => resolve());
    });
  try {
    await send({ ok: true, measurements: await main(JSON.parse(process.argv[2] ?? "{}") as O) });
  } catch (error) {
    await send({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  }
  process.exit(0);
}
