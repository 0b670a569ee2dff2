/**
 * `work`'s outcome, or `onTimeout()`'s error when `timeoutMs` pass first. The timer never
 * outlives the race; `work` itself goes on (the caller decides what to do with what it holds).
 */
export async function beforeDeadline<T>(work: Promise<T>, timeoutMs: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), timeoutMs);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
