/**
 * Gathers what is asked during one turn of the event loop and hands it over in one call at the
 * end of the turn (setImmediate): many concurrent requests' small Redis writes become one
 * pipeline — one write and one read — instead of one round trip each. Each item's promise
 * settles with what `send` answers for it, in order; `send` rejecting rejects every item.
 */
export function perTurn<T, R>(send: (items: T[]) => Promise<R[]>): (item: T) => Promise<R> {
  let pending: Array<{ item: T; resolve(value: R): void; reject(error: unknown): void }> | null = null;
  const flush = (batch: NonNullable<typeof pending>) => {
    if (pending === batch) pending = null;
    send(batch.map((p) => p.item)).then(
      (answers) => {
        for (const [i, p] of batch.entries()) p.resolve(answers[i] as R);
      },
      (error: unknown) => {
        for (const p of batch) p.reject(error);
      },
    );
  };
  return (item) =>
    new Promise<R>((resolve, reject) => {
      let batch = pending;
      if (batch === null) {
        const fresh: NonNullable<typeof pending> = [];
        batch = pending = fresh;
        setImmediate(() => flush(fresh));
      }
      batch.push({ item, resolve, reject });
    });
}
