// Minimal ambient types for oidc-provider (it ships no TypeScript declarations).
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  /** oidc-provider's Provider (loosely typed on purpose). */
  export class Provider {
    constructor(issuer: string, configuration?: Record<string, unknown>);
    readonly issuer: string;
    callback(): (req: IncomingMessage, res: ServerResponse) => unknown;
    on(event: string, listener: (...args: any[]) => void): this;
    [key: string]: any;
  }

  /** oidc-provider's OAuth error classes (InvalidTarget, InvalidScope, ...). */
  export const errors: Record<string, new (...args: any[]) => Error>;

  export default Provider;
}
