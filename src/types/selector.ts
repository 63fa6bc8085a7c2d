/** Which token a call wants. Ground floor: imports nothing. */

/** Which token a request or a manager call wants, when it is not the configured one; each combination is cached apart. */
export interface TokenSelector {
  /** Scopes, instead of the configured `oAuthScopes`. */
  scopes?: string | readonly string[];
  /** RFC 8707 resource indicator(s), instead of the configured `resource`. */
  resource?: string | readonly string[];
  /** The `audience`, instead of the configured one. */
  audience?: string;
}
