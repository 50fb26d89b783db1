/** `promise`'s value, or undefined when it takes longer than `ms` (it goes on; a later rejection is dropped). */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  promise.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
