/**
 * The request pipeline as composable layers, `(next) => (request) => Promise<response>`,
 * so auth, retry and error mapping can each be read and tested alone.
 */

/** Handles one request. */
export type Handler<Req, Res> = (request: Req) => Promise<Res>;

/** Wraps a handler with one concern. */
export type Layer<Req, Res> = (next: Handler<Req, Res>) => Handler<Req, Res>;

/** Composes layers around a final handler; the first layer is the outermost. */
export function compose<Req, Res>(layers: readonly Layer<Req, Res>[], final: Handler<Req, Res>): Handler<Req, Res> {
  return layers.reduceRight<Handler<Req, Res>>((next, layer) => layer(next), final);
}
