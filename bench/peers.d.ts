// Minimal ambient types for the benchmark's peers that ship no TypeScript declarations.
declare module 'simple-oauth2' {
  export interface AccessToken {
    readonly token: { access_token: string; expires_at: Date; [key: string]: unknown };
    expired(expirationWindowSeconds?: number): boolean;
  }
  export class ClientCredentials {
    constructor(options: { client: { id: string; secret: string }; auth: { tokenHost: string; tokenPath?: string }; options?: Record<string, unknown> });
    getToken(params?: { scope?: string | string[] }, httpOptions?: Record<string, unknown>): Promise<AccessToken>;
  }
}

declare module 'undici-oidc-interceptor' {
  import type { Dispatcher } from 'undici';
  export function createOidcInterceptor(options: {
    idpTokenUrl: string;
    clientId: string;
    clientSecret?: string;
    refreshToken?: string;
    scope?: string;
    resource?: string | string[];
    audience?: string;
    retryOnStatusCodes?: number[];
    urls?: string[];
    accessToken?: string;
  }): Dispatcher.DispatcherComposeInterceptor;
}
