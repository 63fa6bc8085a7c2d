/** The `dpop` option's shape. Ground floor: imports only other ground-floor types. */
import type { KeyObjectLike, PrivateKeyAlgorithm } from './keys.js';

/** The `dpop` option: `true` for an ephemeral ES256 key, or a key of your own (to share DPoP-bound tokens between processes). */
export type DpopOption =
  | boolean
  | {
      /** A PEM string, a private JWK or a KeyObject (RSA, EC P-256/384/521, Ed25519). */
      privateKey: string | Record<string, unknown> | KeyObjectLike;
      /** The JWS algorithm; default the key's (`ES256` for P-256, `RS256` for RSA, `EdDSA` for Ed25519). */
      algorithm?: PrivateKeyAlgorithm;
    };
