/**
 * The token taken out of an axios error before the caller sees it. An `AxiosError` carries the request's `config`
 * (whose headers hold `Authorization`), the request sent (Node's `ClientRequest`, whose header text and header map
 * hold it, and follow-redirects' copy of the headers; or the fetch adapter's `Request`) and the response (whose body
 * may echo it): `console.error(error)`
 * or a logger's `JSON.stringify` would print the token. Only strings the Client's redactor knows are touched.
 */

/** What an axios error holds, as far as the token is concerned. */
interface ErrorParts {
  config?: { headers?: unknown } | undefined;
  request?: unknown;
  response?: { data?: unknown; headers?: unknown } | undefined;
}

/** The parts of a request object (Node's `ClientRequest`, follow-redirects' `RedirectableRequest`) that hold headers. */
interface RequestParts {
  _header?: unknown;
  _options?: { headers?: unknown } | undefined;
  _currentRequest?: unknown;
  _redirectable?: unknown;
  res?: { headers?: unknown; rawHeaders?: unknown } | undefined;
}

/**
 * Calls `act` with each own key of `headers` (an object or array of headers) whose string value holds a token the
 * redactor knows, and the value redacted. One walk for both ways of taking a token out: delete or redact.
 */
function eachLeaking(headers: unknown, scrub: <T>(value: T) => T, act: (record: Record<string, unknown>, name: string, redacted: string) => void): void {
  if (typeof headers !== 'object' || headers === null) return;
  const record = headers as Record<string, unknown>;
  for (const name of Object.keys(record)) {
    const value = record[name];
    if (typeof value !== 'string') continue;
    const redacted = scrub(value);
    if (redacted !== value) act(record, name, redacted);
  }
}

/**
 * Deletes the headers of `headers` (a plain object or an `AxiosHeaders`) whose value holds a known token. Deleted
 * rather than redacted: a caller that sends `error.config` again (as axios-retry does) then gets a token again,
 * instead of sending `[redacted]` as its own `Authorization`.
 */
function dropLeakingHeaders(headers: unknown, scrub: <T>(value: T) => T): void {
  eachLeaking(headers, scrub, (record, name) => delete record[name]);
}

/** Redacts, in place, the string values of an object or array of headers. */
function redactStrings(headers: unknown, scrub: <T>(value: T) => T): void {
  eachLeaking(headers, scrub, (record, name, redacted) => (record[name] = redacted));
}

/** Redacts the header text and header map of a request that was sent (or failed), and follow-redirects' copy. */
function concealRequest(request: unknown, scrub: <T>(value: T) => T): void {
  if (typeof request !== 'object' || request === null) return;
  // axios's fetch adapter: a WHATWG Request, whose headers may be changed once it was sent.
  if (typeof Request === 'function' && request instanceof Request) {
    const leaking: string[] = [];
    request.headers.forEach((value, name) => {
      if (scrub(value) !== value) leaking.push(name);
    });
    for (const name of leaking) request.headers.delete(name);
    return;
  }
  const parts = request as RequestParts;
  if (typeof parts._header === 'string') parts._header = scrub(parts._header);
  // Node's ClientRequest keeps its headers under a symbol (`kOutHeaders`): `{ name: [name as given, value] }`.
  for (const symbol of Object.getOwnPropertySymbols(request)) {
    if (symbol.description !== 'kOutHeaders') continue;
    const map = (request as Record<symbol, unknown>)[symbol];
    if (typeof map !== 'object' || map === null) continue;
    for (const entry of Object.values(map as Record<string, unknown>)) {
      if (Array.isArray(entry) && typeof entry[1] === 'string') entry[1] = scrub(entry[1]);
    }
  }
  dropLeakingHeaders(parts._options?.headers, scrub);
  // The response it got (Node's IncomingMessage): headers that echo the token.
  const res = parts.res;
  if (typeof res === 'object' && res !== null) {
    redactStrings(res.headers, scrub);
    redactStrings(res.rawHeaders, scrub);
  }
}

/**
 * Takes the Client's tokens out of `error` (an `AxiosError` of a request this adapter authenticated): `config`'s
 * headers that hold one are deleted; the request's header text is redacted (follow-redirects' request and the
 * native one under it); a response body that is a string or parsed JSON, and response headers, are redacted. Other
 * errors are left alone.
 * Called once the request has ended, on the error path only.
 */
export function concealTokens(error: unknown, scrub: <T>(value: T) => T): void {
  if (typeof error !== 'object' || error === null) return;
  const parts = error as ErrorParts;
  dropLeakingHeaders(parts.config?.headers, scrub);
  const request = parts.request as RequestParts | undefined;
  if (typeof request === 'object' && request !== null) {
    const requests = new Set([request, request._currentRequest, request._redirectable, (request._redirectable as RequestParts | undefined)?._currentRequest]);
    for (const each of requests) concealRequest(each, scrub);
  }
  const response = parts.response;
  if (typeof response !== 'object' || response === null) return;
  if (response.data !== undefined) response.data = scrub(response.data);
  // Response headers that echo it (an `AxiosHeaders`, or the fetch adapter's plain object): redacted in place.
  redactStrings(response.headers, scrub);
}
