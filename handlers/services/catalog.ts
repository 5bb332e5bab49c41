import { NotFoundError } from "#shared/errors.ts";
import { json } from "#shared/http.ts";
import { httpHandler } from "#shared/middleware/http-handler.ts";

const PRODUCTS = [
  { id: "p-1", name: "Analytical Engine", price: 1843, currency: "GBP" },
  { id: "p-2", name: "Difference Engine", price: 1822, currency: "GBP" },
  { id: "p-3", name: "Bombe", price: 1940, currency: "GBP" },
];

/**
 * A demo service that lives in a Lambda function rather than behind HTTP: the gateway reaches it
 * through a `lambda` upstream (`GET /v1/products/{id}`), sending an API Gateway v2 event with the
 * rewritten path and the caller's identity headers. It has no HTTP event of its own.
 */
export const handler = httpHandler(async (event) => {
  const match = /^\/products(?:\/([^/]+))?$/.exec(event.rawPath);
  if (!match) throw new NotFoundError(`No catalogue resource at ${event.rawPath}`);
  const id = match[1] && decodeURIComponent(match[1]);
  if (!id) return json(200, { products: PRODUCTS });
  const product = PRODUCTS.find((candidate) => candidate.id === id);
  if (!product) throw new NotFoundError(`No product ${id}`);
  return json(200, {
    ...product,
    servedBy: "lambda",
    caller: event.headers["x-gatehouse-principal"] ?? null,
  });
});
