// Minimal ambient types for oauth2orize 1 (it ships no TypeScript declarations).
declare module 'oauth2orize' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  type Middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;
  type ErrorMiddleware = (err: unknown, req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

  /** An oauth2orize server (loosely typed on purpose). */
  interface OAuth2Server {
    exchange(middleware: Middleware): void;
    token(): Middleware;
    errorHandler(): ErrorMiddleware;
  }

  export function createServer(): OAuth2Server;
  export const exchange: {
    clientCredentials(
      issue: (client: unknown, scope: string[] | undefined, done: (err: unknown, accessToken?: string | false, refreshToken?: string | null, params?: Record<string, unknown>) => void) => void,
    ): Middleware;
  };
  const oauth2orize: { createServer: typeof createServer; exchange: typeof exchange };
  export default oauth2orize;
}
