// Small shared helpers: sleeping, bounded polling, and killing spawned
// process groups however this process ends.

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const live = new Set();
let hooked = false;

function killLiveGroups() {
  for (const child of live) {
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  live.clear();
}

/** Registers a detached child so its whole group dies with this process. */
export function killAllOnExit(child) {
  if (!hooked) {
    hooked = true;
    process.on('exit', killLiveGroups);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
      process.once(sig, () => {
        killLiveGroups();
        process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 })[sig]);
      });
    }
  }
  live.add(child);
  return () => live.delete(child);
}

/**
 * Calls `fn` every `intervalMs` until it returns a truthy value, and returns
 * that value. Throws after `timeoutMs`, or when `signal` aborts (the test's own
 * timeout), with `describe()` appended so the failure says what was seen.
 */
export async function pollUntil(fn, { timeoutMs, intervalMs = 250, signal, what = 'condition', describe } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError = null;
  for (;;) {
    if (signal && signal.aborted) throw new Error(`aborted while waiting for ${what}`);
    try {
      const v = await fn();
      if (v) return v;
      lastError = null;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const seen = describe ? `\nlast seen: ${await Promise.resolve(describe()).catch((e) => e.message)}` : '';
      const err = lastError ? `\nlast error: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${seen}${err}`);
    }
    await sleep(intervalMs);
  }
}
