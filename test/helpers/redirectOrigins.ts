/**
 * Two origins for the adapters' redirect cases: `home` redirects `/away` to `other`, which answers 401 to everything
 * and records the Authorization it got; `/here` on home redirects within the origin, and any other path answers 401.
 */
import { createServer } from 'node:http';
import { closeServer, listenLocal } from './http.js';

/** The running pair. */
export interface RedirectOrigins {
  homeUrl: string;
  otherUrl: string;
  /** The Authorization header of each request `other` received. */
  seenByOther: (string | undefined)[];
  /** The Authorization header of each request home answered 401 to. */
  deniedAtHome: (string | undefined)[];
  close(): Promise<void>;
}

/** Starts both servers on 127.0.0.1. */
export async function startRedirectOrigins(): Promise<RedirectOrigins> {
  const seenByOther: (string | undefined)[] = [];
  const deniedAtHome: (string | undefined)[] = [];
  const other = createServer((req, res) => {
    seenByOther.push(req.headers.authorization);
    res.writeHead(401, { 'www-authenticate': 'Bearer' }).end();
  });
  const otherUrl = await listenLocal(other);
  const home = createServer((req, res) => {
    if (req.url === '/away') res.writeHead(302, { location: `${otherUrl}/x` }).end();
    else if (req.url === '/here') res.writeHead(302, { location: '/denied' }).end();
    else {
      deniedAtHome.push(req.headers.authorization);
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
    }
  });
  const homeUrl = await listenLocal(home);
  return {
    homeUrl,
    otherUrl,
    seenByOther,
    deniedAtHome,
    close: async () => {
      await closeServer(home);
      await closeServer(other);
    },
  };
}
