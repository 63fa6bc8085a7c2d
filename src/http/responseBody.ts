/**
 * `responseType`: how a response body reaches the caller. `json` (parse it), `text` (a string), `bytes` (a
 * `Uint8Array`, byte for byte) or `stream` (an unread web `ReadableStream<Uint8Array>`, as `fetch`, ky and undici's
 * `Response.body` give it, on every runtime). Without `responseType`, `body` is the text and `result` the parsed
 * JSON when the `content-type` says JSON.
 */
import { ApiError, InvalidOptionError, ResponseParseError } from '../errors.js';
import { describeUrl, type HttpResponse } from './transport.js';

/** The values of a request's `responseType`. */
export type ResponseType = 'json' | 'text' | 'bytes' | 'stream';

const RESPONSE_TYPES: ReadonlySet<string> = new Set<ResponseType>(['json', 'text', 'bytes', 'stream']);

/** Checks a request's `responseType` and maps it to what the transport reads. */
export function transportResponseType(value: unknown): 'text' | 'bytes' | 'stream' {
  if (value === undefined || value === 'json' || value === 'text') return 'text';
  if (value === 'bytes' || value === 'stream') return value;
  throw new InvalidOptionError('responseType', `must be one of ${[...RESPONSE_TYPES].map((t) => `'${t}'`).join(', ')}`);
}

/** Whether a `content-type` is JSON (`application/json`, `application/problem+json`…). */
export function isJsonType(contentType: string | undefined): boolean {
  return contentType !== undefined && (contentType.includes('/json') || contentType.includes('+json'));
}

/** Most bytes of a streamed error body kept in its `ApiError`; the rest is cancelled. */
const MAX_ERROR_BODY = 1024 * 1024;

async function errorText(response: HttpResponse): Promise<string> {
  if (response.bytes) return new TextDecoder().decode(response.bytes);
  if (!response.stream) return response.body;
  const reader = response.stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < MAX_ERROR_BODY) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    void reader.cancel().catch(() => undefined);
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(all.subarray(0, MAX_ERROR_BODY));
}

function parse(response: HttpResponse, method: string, url: string): unknown {
  try {
    return JSON.parse(response.body);
  } catch (error) {
    const type = response.headers['content-type'];
    throw new ResponseParseError(response, `${method} ${describeUrl(url)} answered ${response.statusCode}${type ? ` with content-type ${type}` : ''}, but the body is not valid JSON (${response.body.length} characters); use responseType 'text' to read it as it is`, { cause: error });
  }
}

/** The caller's view of a response: status, headers, body and the parsed JSON `result`. */
export interface ApiResponseParts {
  statusCode: number;
  headers: Record<string, string>;
  body: unknown;
  result: unknown;
}

/** Rejects with the `ApiError` of a non-2xx `response`, its body read as text (and parsed when it is JSON). */
async function rejectWithApiError(response: HttpResponse, what: string): Promise<never> {
  const body = await errorText(response);
  let result: unknown;
  if (body !== '' && isJsonType(response.headers['content-type'])) {
    try {
      result = JSON.parse(body);
    } catch {
      result = undefined;
    }
  }
  throw new ApiError({ statusCode: response.statusCode, headers: response.headers, body, result }, `${what} responded with status ${response.statusCode}`);
}

/**
 * The caller's view of `response`: `{ statusCode, headers, body, result }`, or an `ApiError` for a non-2xx status
 * (its body read as text, whatever the `responseType`).
 */
export function toApiResponse(response: HttpResponse, responseType: ResponseType | undefined, method: string, url: string): ApiResponseParts | Promise<never> {
  // A success is handled synchronously (no promise hop on the hot path), and the URL is described (parsed) only for
  // an error message: that parse costs more than the rest of a successful response's handling.
  if (response.statusCode < 200 || response.statusCode >= 300) return rejectWithApiError(response, `${method} ${describeUrl(url)}`);
  const { statusCode, headers } = response;
  if (responseType === 'bytes') return { statusCode, headers, body: response.bytes ?? new Uint8Array(0), result: undefined };
  if (responseType === 'stream') return { statusCode, headers, body: response.stream, result: undefined };
  if (responseType === 'text') return { statusCode, headers, body: response.body, result: undefined };
  const wantsJson = responseType === 'json' || isJsonType(headers['content-type']);
  const result = wantsJson && response.body !== '' ? parse(response, method, url) : undefined;
  return { statusCode, headers, body: response.body, result };
}
