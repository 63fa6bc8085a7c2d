/**
 * Route matching of the broker's reverse proxy: which route a request target belongs to and the upstream path it
 * becomes (the route's prefix replaced by the upstream's path; the query kept as sent). Targets that are not plain
 * origin-form paths (absolute-form, `*`), and paths that could step out of a route's prefix once an upstream decodes
 * them (`..`, `.`, `..;` as Tomcat reads it, `%2e`, `%2f`, `%5c`, their double encodings `%252e`…, `\`, NUL), are
 * refused before any route is looked at, as is a target whose upstream path would start with `//` (a
 * protocol-relative reference to many URL parsers). Pure.
 */
import type { BrokerRouteConfig } from './config.js';

/** A route ready for matching. */
export interface CompiledRoute {
  readonly config: BrokerRouteConfig;
  /** Index in the configuration (metrics and logs label routes by their path). */
  readonly index: number;
  /** The request prefix without its trailing `/` (`''` for the root route). */
  readonly prefix: string;
  /** The upstream origin, `https://api.example.com`. */
  readonly origin: string;
  /** The upstream path without its trailing `/`. */
  readonly basePath: string;
  /** The upstream path as written, for a request to the prefix itself. */
  readonly rootPath: string;
}

/** Why a request target was refused. */
export type TargetProblem = 'not-origin-form' | 'unsafe-path';

/** A match: the route and the upstream path with query. */
export interface RouteMatch {
  readonly route: CompiledRoute;
  readonly path: string;
}

/** Compiles routes, longest prefix first. */
export function compileRoutes(routes: readonly BrokerRouteConfig[]): CompiledRoute[] {
  return routes
    .map((config, index) => {
      const url = new URL(config.upstream);
      const rootPath = url.pathname || '/';
      return { config, index, prefix: config.path.replace(/\/+$/, ''), origin: url.origin, basePath: rootPath.replace(/\/+$/, ''), rootPath };
    })
    .sort((a, b) => b.prefix.length - a.prefix.length);
}

/**
 * Whether a path (no query) holds a dot segment (also with `;` parameters, `..;x`, which Tomcat and Jetty resolve as
 * `..`), an encoded dot, slash or backslash (also double-encoded, `%252e`, for upstreams that decode twice), a
 * backslash or a NUL.
 */
export function isUnsafePath(path: string): boolean {
  if (path.indexOf('.') < 0 && path.indexOf('%') < 0 && path.indexOf('\\') < 0) return false;
  if (path.indexOf('\\') >= 0 || /%(25)*(2f|5c|00)/i.test(path)) return true;
  const decoded = path.replace(/%(25)*2e/gi, '.');
  for (const segment of decoded.split('/')) {
    const semicolon = segment.indexOf(';');
    const name = semicolon < 0 ? segment : segment.slice(0, semicolon);
    if (name === '.' || name === '..') return true;
  }
  return false;
}

/**
 * The route of request target `target` (as on the request line) and its upstream path, undefined when no route
 * matches, or the problem that makes the target unacceptable.
 */
export function matchRoute(routes: readonly CompiledRoute[], target: string): RouteMatch | TargetProblem | undefined {
  if (target.charCodeAt(0) !== 47 /* / */ || target.charCodeAt(1) === 47) return 'not-origin-form';
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  if (isUnsafePath(path)) return 'unsafe-path';
  for (let i = 0; i < routes.length; i++) {
    const route = routes[i]!;
    const prefix = route.prefix;
    if (!path.startsWith(prefix)) continue;
    if (path.length === prefix.length) return { route, path: q < 0 ? route.rootPath : route.rootPath + target.slice(q) };
    if (path.charCodeAt(prefix.length) !== 47) continue;
    // `/api//evil.example/x` to an upstream with no base path would be `//evil.example/x` upstream.
    if (route.basePath === '' && path.charCodeAt(prefix.length + 1) === 47) return 'unsafe-path';
    return { route, path: route.basePath + (q < 0 ? path.slice(prefix.length) : target.slice(prefix.length)) };
  }
  return undefined;
}

/**
 * A `Location` the route's upstream sent, as the caller must follow it: one that points into the upstream's base path
 * (path-absolute, `/v2/things/`, or absolute on the upstream's origin) comes back under the route's prefix
 * (`/crm/things/`), when that path leads back to the same route (`routes`: every route, for a longer prefix that
 * would take it elsewhere); any other is left as it is. Pure.
 */
export function rewriteLocation(location: string, route: CompiledRoute, routes: readonly CompiledRoute[]): string {
  let path: string;
  if (location.charCodeAt(0) === 47 /* / */) {
    if (location.charCodeAt(1) === 47) return location;
    path = location;
  } else if (location.startsWith(route.origin) && location.charCodeAt(route.origin.length) === 47) path = location.slice(route.origin.length);
  else return location;
  const base = route.basePath;
  if (!path.startsWith(base)) return location;
  const rest = path.slice(base.length);
  if (rest !== '' && rest.charCodeAt(0) !== 47 && rest.charCodeAt(0) !== 63 /* ? */ && rest.charCodeAt(0) !== 35 /* # */) return location;
  const rewritten = route.prefix + (rest === '' || rest.charCodeAt(0) !== 47 ? `/${rest}` : rest);
  const back = matchRoute(routes, rewritten);
  return typeof back === 'object' && back.route === route ? rewritten : location;
}
