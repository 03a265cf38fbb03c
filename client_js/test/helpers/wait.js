/**
 * Waiting with a deadline: poll a condition until it holds or time runs out.
 */

/**
 * @template T
 * @param {() => T | Promise<T>} probe returns a truthy value when done
 * @param {{ timeoutMs?: number, intervalMs?: number, what?: string | (() => string | Promise<string>) }} [options]
 *   `what` names the condition in the timeout's error; a function is asked at the timeout (to say what it saw)
 * @returns {Promise<T>}
 */
export async function waitFor (probe, { timeoutMs = 10000, intervalMs = 25, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs
  /** @type {unknown} */
  let lastError = null
  for (;;) {
    try {
      const value = await probe()
      if (value) return value
    } catch (error) {
      lastError = error
    }
    if (Date.now() > deadline) {
      const named = typeof what === 'function' ? await what() : what
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${named}${lastError ? `: ${String(lastError)}` : ''}`)
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
