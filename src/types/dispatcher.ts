/** The dispatcher shape. Ground floor: imports nothing. */

/**
 * An undici `Dispatcher` (Agent, Pool, ProxyAgent, MockAgent…), typed by shape: any of undici's dispatchers fits.
 * The Client calls its `request()` and, for a dispatcher it created itself, `close()`.
 */
export interface DispatcherLike {
  request(...args: never[]): unknown;
  close?(...args: never[]): unknown;
}
